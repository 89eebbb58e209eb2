/*
 * master_run.c -- the master's life: daemonise, pid file, the shared ring,
 * the metrics zone, the children, and the signal loop (TERM graceful stop, INT/QUIT fast
 * stop, HUP reload, USR1 reopen, CHLD reap and respawn), which also looks
 * at the workers' heartbeats every second.
 *
 * It never initialises gRPC or librdkafka and never reads ring contents.
 * A reload validates the whole new configuration first and keeps the old
 * one when it fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/listen_check.h"
#include "common/loaded.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/proc.h"
#include "common/revoke.h"
#include "master/master.h"
#include "metrics/metrics_http.h"
#include "producer/producer.h"
#include "router/router.h"
#include "worker/worker.h"

#define QUICK_STOP_MS 1000
#define LISTEN_WAIT_MS 5000 /* for a previous instance's children to leave */
#define LISTEN_WAIT_STEP_MS 250

static char *pid_path;

/* check_pid_file -- refuse when a live process holds the pid file; run
 * before daemonising, so that the refusal reaches the terminal. */
static int
check_pid_file(const char *path)
{
    FILE *fp = fopen(path, "re");
    long old;

    if (fp == NULL)
        return 0;
    if (fscanf(fp, "%ld", &old) == 1 && old > 0 && old != getpid() && kill((pid_t)old, 0) == 0) {
        fclose(fp);
        fb_log_errorx("%s: fbpiped already running as pid %ld", path, old);
        return -1;
    }
    fclose(fp);
    return 0;
}

/* write_pid_file -- our pid, after check_pid_file. */
static int
write_pid_file(const char *path)
{
    char buf[32];
    int fd, n;

    if (check_pid_file(path) < 0)
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 && errno == ENOENT) {
        /* its directory (/run/fbpipe) is gone after a reboot unless
         * systemd made it: made here, one level, as the metrics zone
         * beside the pid file needs it too */
        char dir[4096];
        const char *slash = strrchr(path, '/');
        if (slash != NULL && slash != path && (size_t)(slash - path) < sizeof(dir)) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
            if (mkdir(dir, 0755) == 0)
                fb_log_info("made %s for the pid file", dir);
            else if (errno != EEXIST)
                fb_log_error("mkdir(%s) for the pid file failed", dir);
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    }
    if (fd < 0) {
        fb_log_error("open(%s) failed", path);
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        fb_log_error("write(%s) failed", path);
        close(fd);
        return -1;
    }
    close(fd);
    pid_path = strdup(path);
    return 0;
}

/* daemonise -- detach from the terminal; the parent returns through exit. */
static int
daemonise(void)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0) {
        fb_log_error("fork() failed");
        return -1;
    }
    if (pid > 0)
        _exit(FB_EXIT_OK);
    if (setsid() < 0) {
        fb_log_error("setsid() failed");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        fb_log_error("fork() failed");
        return -1;
    }
    if (pid > 0)
        _exit(FB_EXIT_OK);
    if (chdir("/") < 0)
        fb_log_warn("chdir(/) failed");
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    fb_log_init("fbpiped", 1);
    return 0;
}

static uid_t run_uid;
static gid_t run_gid;
static bool run_drop;

/* resolve_user -- main.user / main.group to ids, in the master (which
 * keeps root to read secrets again on reload); the children drop. A
 * master that is not root cannot change user: refused here, with why,
 * rather than in every child; the user it already is needs no drop. */
static int
resolve_user(const fb_conf_t *conf)
{
    struct passwd *pw = NULL;
    struct group *gr = NULL;

    run_drop = false;
    if (conf->user[0] == '\0' && conf->group[0] == '\0') {
        if (geteuid() == 0)
            fb_log_warnx("main.user is empty: every process runs as root, also the workers "
                         "that parse what clients send; set main.user (see fbpiped(8), "
                         "SECURITY)");
        return 0;
    }
    if (conf->user[0] != '\0' && (pw = getpwnam(conf->user)) == NULL) {
        fb_log_errorx("main.user: no user \"%s\"", conf->user);
        return -1;
    }
    if (conf->group[0] != '\0' && (gr = getgrnam(conf->group)) == NULL) {
        fb_log_errorx("main.group: no group \"%s\"", conf->group);
        return -1;
    }
    run_gid = gr != NULL ? gr->gr_gid : pw != NULL ? pw->pw_gid : getgid();
    run_uid = pw != NULL ? pw->pw_uid : getuid();
    if (geteuid() != 0) {
        if (run_uid == geteuid() && run_gid == getegid())
            return 0;
        fb_log_errorx("main.user / main.group: fbpiped runs as uid %ld, gid %ld, not as root, "
                      "and cannot start its children as uid %ld, gid %ld: start it as root, "
                      "or empty main.user and main.group",
                      (long)geteuid(), (long)getegid(), (long)run_uid, (long)run_gid);
        return -1;
    }
    run_drop = true;
    fb_log_info("children run as uid %ld, gid %ld", (long)run_uid, (long)run_gid);
    return 0;
}

/* fb_master_drop_privileges -- in a child right after fork: become
 * main.user / main.group. 0, or -1 after logging. */
int
fb_master_drop_privileges(void)
{
    if (!run_drop)
        return 0;
    if (setgroups(1, &run_gid) < 0 || setgid(run_gid) < 0) {
        fb_log_error("setgid(%ld) failed", (long)run_gid);
        return -1;
    }
    if (setuid(run_uid) < 0) {
        fb_log_error("setuid(%ld) failed", (long)run_uid);
        return -1;
    }
    return 0;
}

/* log_auth_refusals -- the refusal counters the workers keep in the
 * metrics zone (the master never reads the ring's data). */
static void
log_auth_refusals(void)
{
    const fb_metrics_t *m = fb_metrics_zone();
    char line[1024];
    size_t off = 0;
    uint64_t total = 0;

    line[0] = '\0';
    if (m == NULL)
        return;
    for (int i = 1; i < FB_AUTH_N_ERRS; i++) {
        uint64_t n = fb_metrics_role_sum(m, FB_MROLE_WORKER, (fb_mc_t)(FB_MC_AUTH_REFUSED + i));
        if (n == 0 || off >= sizeof(line))
            continue;
        total += n;
        off += (size_t)snprintf(line + off, sizeof(line) - off, " %s=%llu",
                                fb_auth_err_name((fb_auth_err_t)i), (unsigned long long)n);
    }
    fb_log_notice("calls refused by authentication: %llu%s%s", (unsigned long long)total,
                  total ? ":" : "", line);
}

/* name_tenants -- the key database's tenants get their names in the
 * metrics zone (those it names already keep theirs). */
static void
name_tenants(void)
{
    const fb_keydb_t *db = fb_loaded_get()->keydb;
    const char **keys;

    if (db == NULL || fb_metrics_zone() == NULL || db->n_tenants == 0)
        return;
    if ((keys = calloc(db->n_tenants, sizeof(*keys))) == NULL) {
        fb_log_errorx("out of memory naming tenants in the metrics");
        return;
    }
    for (size_t i = 0; i < db->n_tenants; i++)
        keys[i] = db->tenants[i].access_key;
    fb_metrics_name_tenants(fb_metrics_zone(), keys, db->n_tenants);
    free(keys);
}

/* reload -- validate the new configuration whole, with its keys and
 * secrets; on success the workers are replaced by a generation that holds
 * them. On any failure the running configuration stays, whole. */
static fb_conf_t *
reload(fb_conf_t *conf, const char *path, fb_ring_t *ring)
{
    fb_conf_t *next = fb_conf_load(path);

    if (next == NULL || fb_conf_verify(next) < 0 ||
        ((next->ingester_enabled || next->router_enabled) && fb_loaded_replace(next) < 0) ||
        resolve_user(next) < 0) {
        fb_log_errorx("reload of %s failed (see above): keeping the running configuration",
                      path);
        fb_conf_free(next);
        return conf;
    }
    if (next->max_workers != conf->max_workers || next->ring_size != conf->ring_size ||
        next->ingester_enabled != conf->ingester_enabled)
        fb_log_warnx("reload: ingester.ring_size, max_workers and enabled take effect at the "
                     "next start");
    if (next->metrics_max_tenants != conf->metrics_max_tenants)
        fb_log_warnx("reload: metrics.max_tenants takes effect at the next start");
    fb_log_set_level(next->log_level);
    name_tenants(); /* tenants the reload added */
    if (conf->ingester_enabled && next->ingester_enabled &&
        fb_master_reload_workers(next, ring, fb_worker_main) < 0) {
        fb_log_errorx("reload of %s: workers not replaced; they keep the previous keys", path);
    } else {
        fb_log_notice("reloaded %s; [kafka] settings take effect at the next start", path);
    }
    /* the topic's settings may have changed: the producer reads them again */
    fb_master_signal_role(FB_ROLE_PRODUCER, SIGHUP);
    if ((conf->router_enabled || next->router_enabled) &&
        fb_master_reload_routers(next, ring, fb_router_main) < 0)
        fb_log_errorx("reload of %s: a router did not start; it is retried", path);
    /* a new address, or routers that /readyz must wait for, or no more */
    if ((conf->metrics_listen[0] != '\0' || next->metrics_listen[0] != '\0') &&
        (strcmp(next->metrics_listen, conf->metrics_listen) != 0 ||
         next->router_enabled != conf->router_enabled) &&
        fb_master_reload_metrics(next, ring, fb_metrics_main) < 0)
        fb_log_errorx("reload of %s: the metrics child did not start; it is retried", path);
    fb_conf_free(conf);
    return next;
}

/* check_listen -- at start only: nothing else may listen on the ingester's
 * address. gRPC sets SO_REUSEPORT, so a second server would share the
 * port silently and take part of the connections. The children of a
 * previous instance may take a few seconds to leave: waited for. */
static int
check_listen(const fb_conf_t *conf)
{
    char text[256];

    for (int waited_ms = 0;; waited_ms += LISTEN_WAIT_STEP_MS) {
        switch (fb_listen_check(conf->listen, text, sizeof(text))) {
        case FB_LISTEN_FREE:
            return 0;
        case FB_LISTEN_HELD:
            if (waited_ms == 0)
                fb_log_notice("ingester.listen %s is held by %s: waiting up to %d ms for it to "
                              "leave (the children of a stopped instance do)",
                              conf->listen, text, LISTEN_WAIT_MS);
            if (waited_ms < LISTEN_WAIT_MS)
                break;
            fb_log_errorx("cannot start: %s (ingester.listen) is already in use by %s; stop it, "
                          "or choose another address", conf->listen, text);
            return -1;
        case FB_LISTEN_NOT_LOCAL:
            /* at boot the address may come later: the workers retry */
            fb_log_warnx("ingester.listen %s is not an address of this host (%s): the workers "
                         "retry until it is", conf->listen, text);
            return 0;
        default:
            fb_log_warnx("ingester.listen %s not checked: %s", conf->listen, text);
            return 0;
        }
        usleep(LISTEN_WAIT_STEP_MS * 1000);
    }
}

/* fb_master_run -- until stopped; returns the exit status. */
int
fb_master_run(fb_conf_t *conf, const fb_master_opts_t *opts)
{
    const char *pidf = opts->pid_file ? opts->pid_file : opts->foreground ? NULL : conf->pid_file;
    fb_ring_t *ring = NULL;
    fb_revoke_t *revocations = NULL;
    int rc = FB_EXIT_FAILURE;

    if (pidf != NULL && check_pid_file(pidf) < 0)
        goto out;
    if (conf->ingester_enabled && check_listen(conf) < 0)
        goto out;
    if (!opts->foreground && daemonise() < 0)
        goto out;
    if (pidf != NULL && write_pid_file(pidf) < 0)
        goto out;
    fb_log_set_role("master");
    fb_master_notify_init();
    if (fb_master_signals_init() < 0)
        goto out;
    {
        /* every child inherits it: a worker's connections are descriptors */
        unsigned long long was, now;
        if (fb_proc_raise_nofile(&was, &now) < 0)
            fb_log_warn("raising the descriptor limit (RLIMIT_NOFILE) failed");
        else if (now < 4096)
            fb_log_warnx("descriptor limit %llu (RLIMIT_NOFILE, its hard limit): a worker serves "
                         "at most about %llu connections; raise LimitNOFILE", now,
                         now > FB_NOFILE_RESERVE ? now - FB_NOFILE_RESERVE : 0);
        else if (now != was)
            fb_log_info("descriptor limit raised from %llu to %llu (RLIMIT_NOFILE)", was, now);
    }
    /* only the ingester uses the ring: routers alone need none */
    if (conf->ingester_enabled &&
        (ring = fb_ring_create(conf->ring_size, (unsigned)conf->max_workers)) == NULL)
        goto out;
    /* the counters every process adds to: beside the pid file, so that
     * fbpiped ledger and status can read them */
    {
        char zpath[4096];
        fb_metrics_t *zone = fb_metrics_create(
            pidf != NULL && fb_metrics_path(pidf, zpath, sizeof(zpath)) == 0 ? zpath : NULL,
            (unsigned)conf->metrics_max_tenants,
            conf->ingester_enabled ? (unsigned)conf->max_workers : 1,
            conf->router_enabled ? (unsigned)conf->router_workers : 1);
        if (zone == NULL)
            goto out;
        fb_metrics_use(zone);
        fb_metrics_take_slot(zone, FB_MROLE_MASTER, 0);
    }
    /* what a reload revokes reaches the calls already open */
    if ((revocations = fb_revoke_create()) == NULL)
        goto out;
    fb_loaded_set_revoke(revocations);
    /* secrets, keys and TLS files may be readable by root only: the master
     * loads them (again on reload); children inherit them and drop */
    if ((conf->ingester_enabled || conf->router_enabled) && fb_loaded_replace(conf) < 0) {
        rc = FB_EXIT_CONFIG;
        goto out;
    }
    name_tenants();
    if (resolve_user(conf) < 0) {
        rc = FB_EXIT_CONFIG;
        goto out;
    }
    if (ring != NULL)
        fb_log_notice("fbpiped starting: ring %llu bytes, %llu lanes of %llu bytes",
                      (unsigned long long)conf->ring_size, (unsigned long long)conf->max_workers,
                      (unsigned long long)ring->sh->lane_size);
    else
        fb_log_notice("fbpiped starting: routers only (no ring)");
    if (conf->ingester_enabled) {
        if (fb_master_spawn(FB_ROLE_PRODUCER, 0, "producer", fb_producer_main, conf, ring) < 0)
            goto out;
        for (unsigned i = 0; i < conf->workers; i++) {
            char name[32];
            snprintf(name, sizeof(name), "worker[%u]", i);
            if (fb_master_spawn(FB_ROLE_WORKER, i, name, fb_worker_main, conf, ring) < 0)
                goto out;
        }
    }
    if (conf->router_enabled) {
        for (unsigned i = 0; i < conf->router_workers; i++) {
            char name[32];
            snprintf(name, sizeof(name), "router[%u]", i);
            if (fb_master_spawn(FB_ROLE_ROUTER, i, name, fb_router_main, conf, ring) < 0)
                goto out;
        }
    }
    /* it reads the zone only; one that cannot listen is restarted with
     * back-off like any child, and the other roles run on */
    if (conf->metrics_listen[0] != '\0' &&
        fb_master_spawn(FB_ROLE_METRICS, 0, "metrics", fb_metrics_main, conf, ring) < 0)
        goto out;

    fb_master_notify("READY=1");
    for (;;) {
        struct pollfd pfd = {.fd = fb_master_signal_fd(), .events = POLLIN};
        int next_ms;

        fb_master_respawn_due(conf, ring, &next_ms);
        fb_master_watchdog(conf, ring, &next_ms); /* stuck workers */
        if (poll(&pfd, 1, next_ms) < 0 && errno != EINTR)
            fb_log_warn("poll(self-pipe) failed");
        fb_master_signals_read();
        if (fb_sig_child) {
            fb_sig_child = 0;
            if (fb_master_reap(ring) > 0) {
                fb_master_notify("STOPPING=1");
                fb_log_errorx("a child cannot run with this configuration: stopping");
                fb_master_stop_children(SIGTERM, (unsigned)conf->shutdown_timeout_ms);
                rc = FB_EXIT_CONFIG;
                goto out;
            }
        }
        if (fb_sig_term) {
            fb_sig_term = 0;
            fb_master_notify("STOPPING=1");
            fb_log_notice("TERM: stopping gracefully (at most %llu ms)",
                          (unsigned long long)conf->shutdown_timeout_ms);
            rc = fb_master_stop_children(SIGTERM, (unsigned)conf->shutdown_timeout_ms) > 0
                     ? FB_EXIT_FAILURE
                     : FB_EXIT_OK;
            goto out;
        }
        if (fb_sig_quick) {
            fb_sig_quick = 0;
            fb_master_notify("STOPPING=1");
            fb_log_notice("INT/QUIT: stopping now");
            rc = fb_master_stop_children(SIGTERM, QUICK_STOP_MS) > 0 ? FB_EXIT_FAILURE
                                                                     : FB_EXIT_OK;
            goto out;
        }
        if (fb_sig_hup) {
            fb_sig_hup = 0;
            fb_master_notify("RELOADING=1");
            conf = reload(conf, opts->conf_path, ring);
            fb_master_notify("READY=1");
        }
        if (fb_sig_usr1) {
            fb_sig_usr1 = 0;
            fb_master_signal_children(SIGUSR1);
            if (ring != NULL)
                log_auth_refusals();
        }
    }
out:
    if (ring != NULL)
        log_auth_refusals();
    fb_loaded_free();
    fb_loaded_set_revoke(NULL);
    fb_revoke_free(revocations);
    fb_ring_destroy(ring);
    fb_metrics_free(fb_metrics_zone());
    fb_metrics_use(NULL);
    if (pid_path != NULL) {
        if (unlink(pid_path) < 0 && errno != ENOENT)
            fb_log_warn("unlink(%s) failed", pid_path);
        free(pid_path);
    }
    fb_conf_free(conf);
    fb_log_notice("fbpiped stopped");
    return rc;
}
