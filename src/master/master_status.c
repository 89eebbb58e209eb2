/*
 * master_status.c -- `fbpiped status [-c CONF] [-p PIDFILE]`: what a
 * running daemon is doing, from its metrics zone (beside its pid file):
 * the master, then each process slot by role with its pid, whether that
 * process is alive, since when, and its state (a worker serving and its
 * lane's fill, the producer's Kafka and records in flight, a router's
 * partitions and lag).
 *
 * A command: it reads the zone and never writes it, and never signals a
 * process (kill with signal 0 tells whether it is alive).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "master/master.h"

static const char *const role_name[FB_MROLE_N] = {"master", "producer", "worker", "router",
                                                  "metrics"};

static bool
alive(uint64_t pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static void
since(uint64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL)
        snprintf(out, cap, "-");
    else
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* state -- one slot's state in words. */
static void
state(const fb_metrics_t *m, fb_mrole_t role, unsigned i, char *out, size_t cap)
{
#define G(c) ((unsigned long long)fb_metrics_get(m, role, i, (c)))
    switch (role) {
    case FB_MROLE_PRODUCER:
        snprintf(out, cap, "Kafka %s, %llu records in flight, %llu delivered",
                 G(FB_MC_KAFKA_UP) ? "up" : "DOWN", G(FB_MC_IN_FLIGHT),
                 G(FB_MC_RECORDS_DELIVERED));
        break;
    case FB_MROLE_WORKER:
        snprintf(out, cap, "%s, lane %llu of %llu bytes in use, %llu events acked",
                 G(FB_MC_SERVING) ? "serving" : "not serving", G(FB_MC_RING_FILL),
                 G(FB_MC_RING_SIZE), G(FB_MC_EVENTS_ACKED));
        break;
    case FB_MROLE_ROUTER:
        snprintf(out, cap, "%llu partitions, lag %llu, %llu records written",
                 G(FB_MC_ASSIGNED), G(FB_MC_CONSUMER_LAG), G(FB_MC_RECORDS_WRITTEN));
        break;
    case FB_MROLE_MASTER: {
        unsigned long long starts = 0, crashes = 0;
        for (int r = 0; r < FB_MROLE_N; r++) { /* counted by role */
            starts += G(FB_MC_CHILD_STARTS + r);
            crashes += G(FB_MC_CHILD_EXITS + r * FB_MEXIT_N + FB_MEXIT_CRASH);
        }
        snprintf(out, cap, "%llu child starts, %llu crashes", starts, crashes);
        break;
    }
    default:
        snprintf(out, cap, "-");
    }
#undef G
}

static void
status_usage(FILE *fp)
{
    fprintf(fp, "usage: fbpiped status [-c FILE] [-p PIDFILE]\n"
                "  -c FILE       configuration file (default %s/fbpipe.conf): its main.pid_file\n"
                "  -p PIDFILE    the running daemon's pid file (overrides main.pid_file)\n",
            FB_SYSCONFDIR);
}

int
fb_status_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *conf_path = FB_SYSCONFDIR "/fbpipe.conf", *pid_file = NULL;
    char path[4096], when[32], what[256];
    fb_metrics_t *m;
    int c, rc, down = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': conf_path = optarg; break;
        case 'p': pid_file = optarg; break;
        case 'h': status_usage(stdout); return FB_EXIT_OK;
        default: return fb_cmd_bad_option("status", c, argv, status_usage);
        }
    }
    if (fb_cmd_no_operands("status", argc, argv, status_usage) != 0)
        return FB_EXIT_USAGE;
    if ((m = fb_cmd_zone("status", conf_path, pid_file, path, sizeof(path), &rc)) == NULL)
        return rc;
    if (!alive((uint64_t)fb_metrics_pid(m))) {
        printf("fbpiped (pid %d) is not running; its metrics zone %s is left from it\n",
               (int)fb_metrics_pid(m), path);
        fb_metrics_free(m);
        return FB_EXIT_FAILURE;
    }
    since((uint64_t)fb_metrics_started(m), when, sizeof(when));
    printf("fbpiped pid %d, running since %s, %u tenants named\n", (int)fb_metrics_pid(m), when,
           fb_metrics_tenants(m));
    printf("%-8s %4s %8s %-5s %-20s %s\n", "ROLE", "SLOT", "PID", "ALIVE", "SINCE", "STATE");
    for (int r = 0; r < FB_MROLE_N; r++)
        for (unsigned i = 0; i < fb_metrics_slots(m, (fb_mrole_t)r); i++) {
            uint64_t pid = fb_metrics_get(m, (fb_mrole_t)r, i, FB_MC_PID);
            bool up = alive(pid);
            if (pid == 0)
                continue; /* never used: a lane kept for reloads, a role not run */
            since(fb_metrics_get(m, (fb_mrole_t)r, i, FB_MC_STARTED), when, sizeof(when));
            state(m, (fb_mrole_t)r, i, what, sizeof(what));
            printf("%-8s %4u %8llu %-5s %-20s %s%s\n", role_name[r], i, (unsigned long long)pid,
                   up ? "yes" : "NO", when, up ? "" : "gone; last: ", what);
            down += !up && r != FB_MROLE_WORKER; /* a lane's last worker may have retired */
        }
    fb_metrics_free(m);
    return down ? FB_EXIT_FAILURE : FB_EXIT_OK;
}
