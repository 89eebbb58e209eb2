/*
 * master.h -- the master process: creates the shared ring, forks and
 * supervises the children, handles signals.
 *
 * The master never initialises gRPC or librdkafka (neither survives fork)
 * and never reads ring contents: it creates the segment and watches lane
 * ownership and the workers' heartbeats only.
 */
#ifndef FB_MASTER_H
#define FB_MASTER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/ring.h"

#define FB_EXIT_OK 0
#define FB_EXIT_FAILURE 1
#define FB_EXIT_CONFIG 2 /* configuration error: never respawned */
#define FB_EXIT_USAGE 64

typedef struct fb_master_opts {
    const char *conf_path;
    const char *pid_file; /* NULL: main.pid_file when daemonised */
    bool foreground;
} fb_master_opts_t;

/* master_sig.c: handlers only set flags and write to the self-pipe */
extern volatile sig_atomic_t fb_sig_child, fb_sig_term, fb_sig_quick, fb_sig_hup, fb_sig_usr1;
int fb_master_signals_init(void);
int fb_master_signal_fd(void);
void fb_master_signals_read(void);
void fb_master_signals_reset_child(void);

/* master_spawn.c */
typedef enum fb_child_role {
    FB_ROLE_PRODUCER,
    FB_ROLE_WORKER,
    FB_ROLE_ROUTER,
    FB_ROLE_METRICS,
} fb_child_role_t;
typedef int (*fb_child_main_t)(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);

int fb_master_spawn(fb_child_role_t role, unsigned index, const char *name, fb_child_main_t fn,
                    const fb_conf_t *conf, fb_ring_t *ring);
int fb_master_reap(fb_ring_t *ring);
int fb_master_respawn_due(const fb_conf_t *conf, fb_ring_t *ring, int *next_ms);
void fb_master_watchdog(const fb_conf_t *conf, fb_ring_t *ring, int *next_ms);
unsigned fb_master_stop_children(int sig, unsigned grace_ms);
unsigned fb_master_children(void);
void fb_master_signal_children(int sig);
void fb_master_signal_role(fb_child_role_t role, int sig);

int fb_master_reload_workers(const fb_conf_t *conf, fb_ring_t *ring,
                             fb_child_main_t worker_main);
int fb_master_reload_routers(const fb_conf_t *conf, fb_ring_t *ring,
                             fb_child_main_t router_main);
int fb_master_reload_metrics(const fb_conf_t *conf, fb_ring_t *ring,
                             fb_child_main_t metrics_main);

/* master_notify.c: systemd's notification socket ($NOTIFY_SOCKET) */
int fb_master_notify_init(void);
void fb_master_notify(const char *state);

/* master_run.c */
int fb_master_run(fb_conf_t *conf, const fb_master_opts_t *opts);
int fb_master_drop_privileges(void);

/* master_cmd.c: what the subcommands share (see there) */
void fb_cmd_err(const char *cmd, const char *fmt, ...) FB_PRINTF(2, 3);
/* getopt_long returned c (':' or an unknown option): said, with usage; FB_EXIT_USAGE */
int fb_cmd_bad_option(const char *cmd, int c, char **argv, void (*usage)(FILE *));
/* after the options: 0, or an operand said with usage and FB_EXIT_USAGE */
int fb_cmd_no_operands(const char *cmd, int argc, char **argv, void (*usage)(FILE *));
/* the metrics zone beside pid_file (NULL: conf_path's main.pid_file), its
 * path into path; NULL after saying why, with *rc the exit status */
struct fb_metrics *fb_cmd_zone(const char *cmd, const char *conf_path, const char *pid_file,
                               char *path, size_t cap, int *rc);

/* master_status.c: `fbpiped status ...` (argv[0] is "status"); an FB_EXIT_* status */
int fb_status_main(int argc, char **argv);

/* token.c: `fbpiped token ...` (argv[0] is "token"); returns an FB_EXIT_* status */
int fb_token_main(int argc, char **argv);

/* master_ledger.c: `fbpiped ledger [--json] [-c FILE] [-p PIDFILE]` (argv[0]
 * is "ledger"): where each tenant's events are; an FB_EXIT_* status */
int fb_ledger_main(int argc, char **argv);

#endif /* FB_MASTER_H */
