/*
 * master_spawn.c -- fork, reap and respawn the master's children.
 *
 * Contract with a child: exit 0 = clean; exit 2 = fatal configuration
 * error (the master's checks at start and reload find those first), never
 * respawned: the daemon stops; exit 6 = what it needs is not there yet (a
 * router's directory): started again with back-off while the other roles
 * run; anything else, or death by a signal, is a crash:
 * logged with pid, status and signal, and respawned with throttling (a
 * child that dies within FAST_DEATH_MS of its start backs off
 * exponentially up to MAX_BACKOFF_MS). Children die with the master
 * (PR_SET_PDEATHSIG; the kernel checks that signal as it checks kill(2):
 * children of another user get it only from a master with CAP_KILL).
 * Never waits in a signal handler.
 *
 * The watchdog: a worker beats in its lane's header from its event loop
 * (fb_lane_beat); one silent longer than ingester.worker_stall_timeout
 * (stopped, deadlocked, spinning outside its loop) is killed, and the
 * reap above releases its lane and starts another as after a crash. Its
 * listening socket would take new connections from the kernel
 * (SO_REUSEPORT) and never answer them. The master reads the beat words
 * only, never what the lanes hold.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/proc.h"
#include "master/master.h"

#define MAX_CHILDREN 1100
#define FAST_DEATH_MS 10000
#define FIRST_BACKOFF_MS 1000
#define MAX_BACKOFF_MS 60000
#define WATCHDOG_EVERY_MS 1000
#define WATCHDOG_START_MS 30000 /* a starting worker's allowance, at least */
#define METRICS_STOP_MS 2000     /* a reload waits this long for the metrics child, twice */

typedef struct child {
    bool in_use;
    bool alive;
    bool given_up;
    pid_t pid;
    fb_child_role_t role;
    unsigned index; /* a worker's lane */
    char name[32];
    fb_child_main_t fn;
    uint64_t started_ms;
    uint64_t respawn_at_ms;
    fb_backoff_t backoff; /* respawn throttling while it dies young or cannot run yet */
    unsigned crashes;
    bool retiring; /* a worker of an older generation: finishing its calls */
    bool stall_killed; /* the watchdog sent it SIGKILL; not reaped yet */
} child_t;

static child_t children[MAX_CHILDREN];
static bool stopping;
static uint64_t watchdog_at; /* the watchdog's next look */

/* signal_child -- kill(2) one child, logged when refused: a root master
 * without CAP_KILL (a unit's CapabilityBoundingSet) may not signal the
 * children that run as main.user. 0 (also when it is already gone), or -1. */
static int
signal_child(const child_t *c, int sig)
{
    int e;

    if (kill(c->pid, sig) == 0 || errno == ESRCH)
        return 0;
    e = errno;
    fb_log_warnx("kill(%ld, SIG%s) of %s failed: %s%s", (long)c->pid, sigabbrev_np(sig),
                 c->name, strerror(e),
                 e == EPERM ? " (the master needs CAP_KILL to signal children that run as "
                              "main.user)"
                            : "");
    return -1;
}

/* mrole -- where a child's role counts in the metrics zone. */
static fb_mrole_t
mrole(fb_child_role_t role)
{
    switch (role) {
    case FB_ROLE_PRODUCER:
        return FB_MROLE_PRODUCER;
    case FB_ROLE_WORKER:
        return FB_MROLE_WORKER;
    case FB_ROLE_ROUTER:
        return FB_MROLE_ROUTER;
    default:
        return FB_MROLE_METRICS;
    }
}

/* count -- one more of the master's counters by role (starts, crashes). */
static void
count_start(fb_child_role_t role)
{
    fb_metrics_add(fb_metrics_slot(fb_metrics_zone(), FB_MROLE_MASTER, 0),
                   (fb_mc_t)(FB_MC_CHILD_STARTS + mrole(role)), 1);
}

/* count_exit -- a child of role ended, for why. */
static void
count_exit(fb_child_role_t role, fb_mexit_t why)
{
    fb_metrics_add(fb_metrics_slot(fb_metrics_zone(), FB_MROLE_MASTER, 0),
                   (fb_mc_t)(FB_MC_CHILD_EXITS + mrole(role) * FB_MEXIT_N + why), 1);
}

/* start -- fork one child for slot c. */
static int
start(child_t *c, const fb_conf_t *conf, fb_ring_t *ring)
{
    pid_t master = getpid();
    pid_t pid = fork();

    if (pid < 0) {
        fb_log_error("fork(%s) failed", c->name);
        return -1;
    }
    if (pid == 0) {
        int rc;
        fb_master_signals_reset_child();
        /* die with the master; it may already be gone */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
            _exit(FB_EXIT_FAILURE);
        fb_log_set_role(c->name);
        /* a change of user clears the parent-death signal: set it again */
        if (fb_master_drop_privileges() < 0)
            _exit(FB_EXIT_CONFIG);
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
            _exit(FB_EXIT_FAILURE);
        rc = c->fn(conf, ring, c->index);
        fflush(NULL);
        _exit(rc);
    }
    count_start(c->role);
    c->pid = pid;
    c->alive = true;
    c->stall_killed = false;
    c->started_ms = fb_monotonic_ms();
    fb_log_info("started %s (pid %ld)", c->name, (long)pid);
    return 0;
}

/* fb_master_spawn -- register and start a child. */
int
fb_master_spawn(fb_child_role_t role, unsigned index, const char *name, fb_child_main_t fn,
                const fb_conf_t *conf, fb_ring_t *ring)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        child_t *c = &children[i];
        if (c->in_use)
            continue;
        memset(c, 0, sizeof(*c));
        fb_backoff_init(&c->backoff, FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
        c->in_use = true;
        c->role = role;
        c->index = index;
        c->fn = fn;
        snprintf(c->name, sizeof(c->name), "%s", name);
        return start(c, conf, ring);
    }
    fb_log_errorx("more than %d children", MAX_CHILDREN);
    return -1;
}

/* fb_master_reap -- collect every dead child; returns how many gave up
 * for good (exit 2), so that the master can stop. */
int
fb_master_reap(fb_ring_t *ring)
{
    int given_up = 0, st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        child_t *c = NULL;
        uint64_t lived;
        unsigned wait_ms = 0;

        for (size_t i = 0; i < MAX_CHILDREN; i++)
            if (children[i].in_use && children[i].alive && children[i].pid == pid)
                c = &children[i];
        if (c == NULL)
            continue;
        c->alive = false;
        lived = fb_monotonic_ms() - c->started_ms;
        /* it cannot say it no longer serves: /readyz must not count it. A
         * retiring router's successor has its index, and its slot, already */
        if (!(c->retiring && c->role == FB_ROLE_ROUTER))
            fb_metrics_forget(fb_metrics_slot(fb_metrics_zone(), mrole(c->role), c->index),
                              mrole(c->role));
        if (c->role == FB_ROLE_WORKER && ring != NULL) {
            /* ownership only: the lane goes to the next worker once the
             * producer has acknowledged what this one published */
            fb_lane_t l;
            fb_ring_lane(ring, c->index, &l);
            if (atomic_load(&l.sh->owner_pid) == (int32_t)pid)
                fb_lane_release(&l);
        }
        if (c->retiring) { /* an older generation: never respawned */
            count_exit(c->role, FB_MEXIT_RETIRED);
            fb_log_info("%s (pid %ld) of the previous generation ended (status 0x%x)", c->name,
                        (long)pid, (unsigned)st);
            c->in_use = false;
            continue;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == FB_EXIT_OK) {
            count_exit(c->role, FB_MEXIT_CLEAN);
            fb_log_info("%s (pid %ld) exited cleanly", c->name, (long)pid);
        } else if (c->role == FB_ROLE_WORKER && WIFEXITED(st) &&
                   WEXITSTATUS(st) == FB_EXIT_LANE_QUARANTINED) {
            /* not a crash: its lane is reset by the producer, and the new
             * worker serves once it is */
            count_exit(c->role, FB_MEXIT_LANE_QUARANTINED);
            fb_log_notice("%s (pid %ld) left its quarantined lane; starting another", c->name,
                          (long)pid);
            fb_backoff_reset(&c->backoff);
            c->respawn_at_ms = fb_monotonic_ms();
            continue;
        } else if (c->role == FB_ROLE_WORKER && WIFEXITED(st) &&
                   (WEXITSTATUS(st) == FB_EXIT_NOT_ACCEPTING ||
                    WEXITSTATUS(st) == FB_EXIT_MEMORY)) {
            /* not a crash: it ran out of descriptors and gRPC stopped
             * accepting for good, or a flood of calls grew it past its
             * memory limit; a fresh process serves again */
            count_exit(c->role, WEXITSTATUS(st) == FB_EXIT_MEMORY ? FB_MEXIT_MEMORY
                                                                  : FB_MEXIT_NOT_ACCEPTING);
            fb_log_notice("%s (pid %ld) %s; starting another", c->name, (long)pid,
                          WEXITSTATUS(st) == FB_EXIT_MEMORY ? "exceeded its memory limit"
                                                            : "stopped accepting connections");
            fb_backoff_reset(&c->backoff);
            c->respawn_at_ms = fb_monotonic_ms();
            continue;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == FB_EXIT_NOT_READY) {
            /* what it needs is not there yet (a file system not mounted):
             * it waits, the other roles run on */
            count_exit(c->role, FB_MEXIT_NOT_READY);
            if (stopping)
                continue;
            wait_ms = fb_backoff_next(&c->backoff);
            c->respawn_at_ms = fb_monotonic_ms() + wait_ms;
            fb_log_errorx("%s (pid %ld) cannot run yet (its last lines say why): starting it "
                          "again in %u ms; the other roles run on",
                          c->name, (long)pid, wait_ms);
            continue;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == FB_EXIT_CONFIG) {
            /* at start: the daemon cannot run as configured */
            count_exit(c->role, FB_MEXIT_CONFIG);
            fb_log_errorx("%s (pid %ld) exited with status 2 (configuration error): "
                          "not restarting it", c->name, (long)pid);
            c->given_up = true;
            given_up++;
            continue;
        } else if (WIFEXITED(st)) {
            fb_log_errorx("%s (pid %ld) exited with status %d after %llu ms", c->name,
                          (long)pid, WEXITSTATUS(st), (unsigned long long)lived);
        } else if (WIFSIGNALED(st)) {
            fb_log_errorx("%s (pid %ld) killed by signal %d (%s) after %llu ms", c->name,
                          (long)pid, WTERMSIG(st), strsignal(WTERMSIG(st)),
                          (unsigned long long)lived);
        }
        /* exit 0 outside a stop is counted clean above, and respawned */
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == FB_EXIT_OK))
            count_exit(c->role, FB_MEXIT_CRASH);
        if (stopping)
            continue;
        c->crashes++;
        if (lived < FAST_DEATH_MS)
            wait_ms = fb_backoff_next(&c->backoff);
        else
            fb_backoff_reset(&c->backoff);
        c->respawn_at_ms = fb_monotonic_ms() + wait_ms;
        if (wait_ms > 0)
            fb_log_warnx("restarting %s in %u ms (it died %u time(s))", c->name, wait_ms,
                         c->crashes);
    }
    return given_up;
}

/* fb_master_respawn_due -- restart children whose back-off is over; sets
 * *next_ms to the wait until the next one (-1: none). */
int
fb_master_respawn_due(const fb_conf_t *conf, fb_ring_t *ring, int *next_ms)
{
    uint64_t now = fb_monotonic_ms();

    *next_ms = -1;
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        child_t *c = &children[i];
        if (!c->in_use || c->alive || c->given_up || stopping)
            continue;
        if (c->respawn_at_ms <= now) {
            start(c, conf, ring);
            if (!c->alive) { /* fork failed: try again in a second */
                c->respawn_at_ms = now + 1000;
                *next_ms = 1000;
            }
        } else {
            int wait = (int)(c->respawn_at_ms - now);
            if (*next_ms < 0 || wait < *next_ms)
                *next_ms = wait;
        }
    }
    return 0;
}

/* watch_worker -- kill c when its heartbeat is older than allowed. */
static void
watch_worker(child_t *c, const fb_conf_t *conf, fb_ring_t *ring, uint64_t now)
{
    uint64_t beat, limit = conf->worker_stall_timeout_ms, silent;
    uint32_t state;
    fb_lane_t l;

    fb_ring_lane(ring, c->index, &l);
    /* before its first beat (or a beat older than its fork: a lane's last
     * worker with the same pid) it counts as starting since its fork */
    if (fb_lane_last_beat(&l, c->pid, &beat, &state) < 0 || beat < c->started_ms) {
        beat = c->started_ms;
        state = FB_BEAT_STARTING;
    }
    /* starting (waiting for its lane beats too; grpc_init and binding do
     * not) gets at least WATCHDOG_START_MS */
    if (state != FB_BEAT_SERVING && limit < WATCHDOG_START_MS)
        limit = WATCHDOG_START_MS;
    if (now <= beat || (silent = now - beat) <= limit)
        return;
    fb_log_errorx("%s (pid %ld) silent for %llu ms while %s (limit %llu ms, "
                  "ingester.worker_stall_timeout): stopped or hung; killing it%s",
                  c->name, (long)c->pid, (unsigned long long)silent,
                  state == FB_BEAT_SERVING ? "serving" : "starting", (unsigned long long)limit,
                  c->retiring ? " (retiring: not replaced)" : ", another takes its lane");
    if (signal_child(c, SIGKILL) < 0)
        return;
    c->stall_killed = true;
}

/* fb_master_watchdog -- about every second, kill the workers whose
 * heartbeat is too old (see the top of this file); lowers *next_ms
 * (-1: none) to the wait until the next look. */
void
fb_master_watchdog(const fb_conf_t *conf, fb_ring_t *ring, int *next_ms)
{
    uint64_t now = fb_monotonic_ms();
    int wait;

    if (conf->worker_stall_timeout_ms == 0 || ring == NULL || stopping)
        return;
    if (now >= watchdog_at) {
        watchdog_at = now + WATCHDOG_EVERY_MS;
        for (size_t i = 0; i < MAX_CHILDREN; i++) {
            child_t *c = &children[i];
            if (c->in_use && c->alive && c->role == FB_ROLE_WORKER && !c->stall_killed)
                watch_worker(c, conf, ring, now);
        }
    }
    wait = (int)(watchdog_at - now);
    if (*next_ms < 0 || wait < *next_ms)
        *next_ms = wait;
}

unsigned
fb_master_children(void)
{
    unsigned n = 0;

    for (size_t i = 0; i < MAX_CHILDREN; i++)
        n += children[i].in_use && children[i].alive;
    return n;
}

/* fb_master_signal_children -- forward a signal (USR1: reopen). */
void
fb_master_signal_children(int sig)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].in_use && children[i].alive)
            signal_child(&children[i], sig);
}

/* fb_master_signal_role -- a signal to the live children of one role. */
void
fb_master_signal_role(fb_child_role_t role, int sig)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].in_use && children[i].alive && children[i].role == role)
            signal_child(&children[i], sig);
}

/* lanes_busy -- mark the lanes of every worker slot in use; free ones. */
static unsigned
lanes_busy(bool *busy, unsigned n_lanes)
{
    unsigned n_free = n_lanes;

    memset(busy, 0, n_lanes * sizeof(*busy));
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        const child_t *c = &children[i];
        if (c->in_use && c->role == FB_ROLE_WORKER && c->index < n_lanes && !busy[c->index]) {
            busy[c->index] = true;
            n_free--;
        }
    }
    return n_free;
}

/* stop_retiring -- TERM the workers still finishing an older generation's
 * calls (their clients see the calls end and send again what was not
 * acknowledged); wait up to grace_ms, then KILL. */
static void
stop_retiring(fb_ring_t *ring, unsigned grace_ms)
{
    uint64_t deadline = fb_monotonic_ms() + grace_ms;
    bool left = false;

    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].in_use && children[i].retiring && children[i].alive) {
            fb_log_warnx("%s (pid %ld) of an older generation still has open calls: "
                         "stopping it to make room", children[i].name, (long)children[i].pid);
            signal_child(&children[i], SIGTERM);
        }
    for (;;) {
        left = false;
        fb_master_reap(ring);
        for (size_t i = 0; i < MAX_CHILDREN; i++)
            left |= children[i].in_use && children[i].retiring && children[i].alive;
        if (!left)
            return;
        if (fb_monotonic_ms() >= deadline)
            break;
        usleep(20000);
    }
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].in_use && children[i].retiring && children[i].alive &&
            signal_child(&children[i], SIGKILL) < 0)
            return; /* it stays; waiting for it would never end */
    while (left) {
        usleep(10000);
        fb_master_reap(ring);
        left = false;
        for (size_t i = 0; i < MAX_CHILDREN; i++)
            left |= children[i].in_use && children[i].retiring && children[i].alive;
    }
}

/* fb_master_reload_workers -- a new generation of workers, forked now so
 * that they hold the keys and settings the master just loaded, on free
 * lanes; the current workers retire: they stop accepting calls and exit
 * once their open calls are over (no connection is dropped). 0, or -1
 * (nothing changed) when there are not enough lanes. */
int
fb_master_reload_workers(const fb_conf_t *conf, fb_ring_t *ring, fb_child_main_t worker_main)
{
    unsigned n_lanes = ring->sh->n_lanes, started = 0, retired = 0;
    bool busy[512 + 1];

    if (n_lanes > 512)
        n_lanes = 512;
    if (lanes_busy(busy, n_lanes) < conf->workers) {
        stop_retiring(ring, (unsigned)conf->shutdown_timeout_ms);
        if (lanes_busy(busy, n_lanes) < conf->workers) {
            fb_log_errorx("reload: %llu workers need as many free lanes, and only %u of "
                          "ingester.max_workers = %u are free: workers not replaced",
                          (unsigned long long)conf->workers, lanes_busy(busy, n_lanes),
                          n_lanes);
            return -1;
        }
    }
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        child_t *c = &children[i];
        if (!c->in_use || c->role != FB_ROLE_WORKER || c->retiring)
            continue;
        c->retiring = true;
        retired++;
        if (c->alive)
            signal_child(c, SIGUSR2); /* stop accepting, finish the open calls */
        else
            c->in_use = false;     /* was waiting to be respawned */
    }
    for (unsigned lane = 0; lane < n_lanes && started < conf->workers; lane++) {
        char name[32];
        if (busy[lane])
            continue;
        snprintf(name, sizeof(name), "worker[%u]", lane);
        if (fb_master_spawn(FB_ROLE_WORKER, lane, name, worker_main, conf, ring) < 0)
            return -1;
        started++;
    }
    fb_log_notice("reload: %u workers started with the new keys and settings; %u retiring "
                  "once their open calls end", started, retired);
    return 0;
}

/* fb_master_reload_routers -- the routers restarted with the keys and
 * settings the master just loaded: the running ones stop gracefully (write
 * what they hold, commit, leave the group: their partitions go to the new
 * ones), and router.workers new ones start, none of it counted as a crash.
 * 0, or -1 when a fork failed (the master respawns it later). */
int
fb_master_reload_routers(const fb_conf_t *conf, fb_ring_t *ring, fb_child_main_t router_main)
{
    unsigned retired = 0;
    int rc = 0;

    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        child_t *c = &children[i];
        if (!c->in_use || c->role != FB_ROLE_ROUTER || c->retiring)
            continue;
        c->retiring = true;
        retired++;
        if (c->alive)
            signal_child(c, SIGTERM);
        else
            c->in_use = false; /* was waiting to be respawned */
    }
    for (unsigned i = 0; conf->router_enabled && i < conf->router_workers; i++) {
        char name[32];
        snprintf(name, sizeof(name), "router[%u]", i);
        if (fb_master_spawn(FB_ROLE_ROUTER, i, name, router_main, conf, ring) < 0)
            rc = -1;
    }
    fb_log_notice("reload: %u routers started with the new keys and settings; %u stopping",
                  conf->router_enabled ? (unsigned)conf->router_workers : 0, retired);
    return rc;
}

/* metrics_left -- a metrics child of the previous configuration still runs. */
static bool
metrics_left(void)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].in_use && children[i].retiring && children[i].alive &&
            children[i].role == FB_ROLE_METRICS)
            return true;
    return false;
}

/* fb_master_reload_metrics -- the metrics child started again with the
 * configuration just loaded (its address, the roles /readyz waits for).
 * The running one is stopped first (TERM, KILL after METRICS_STOP_MS), so
 * that the new one can bind the same address; none is started when
 * metrics.listen is empty now. 0, or -1 when the fork failed (retried
 * like a crash). */
int
fb_master_reload_metrics(const fb_conf_t *conf, fb_ring_t *ring, fb_child_main_t metrics_main)
{
    uint64_t deadline = fb_monotonic_ms() + METRICS_STOP_MS;
    bool killed = false;

    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        child_t *c = &children[i];
        if (!c->in_use || c->role != FB_ROLE_METRICS || c->retiring)
            continue;
        c->retiring = true;
        if (c->alive)
            signal_child(c, SIGTERM);
        else
            c->in_use = false; /* was waiting to be respawned */
    }
    while (metrics_left()) {
        if (fb_monotonic_ms() >= deadline) {
            if (killed)
                break; /* the new one backs off until the address is free */
            for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (children[i].in_use && children[i].retiring && children[i].alive &&
                    children[i].role == FB_ROLE_METRICS)
                    signal_child(&children[i], SIGKILL);
            killed = true;
            deadline = fb_monotonic_ms() + METRICS_STOP_MS;
        }
        usleep(10000);
        fb_master_reap(ring);
    }
    if (conf->metrics_listen[0] == '\0')
        return 0;
    return fb_master_spawn(FB_ROLE_METRICS, 0, "metrics", metrics_main, conf, ring);
}

/* fb_master_stop_children -- sig to all, wait up to grace_ms, then KILL.
 * Returns how many children the master may not kill (0 unless it lacks
 * CAP_KILL): they are left running. */
unsigned
fb_master_stop_children(int sig, unsigned grace_ms)
{
    uint64_t deadline = fb_monotonic_ms() + grace_ms;

    stopping = true;
    /* the workers first: their open batches still get Kafka's acks from
     * the producer; then the producer, which flushes the ring */
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].in_use && children[i].alive && children[i].role != FB_ROLE_PRODUCER)
            signal_child(&children[i], sig);
    while (fb_monotonic_ms() < deadline) {
        bool left = false;
        fb_master_reap(NULL);
        for (size_t i = 0; i < MAX_CHILDREN; i++)
            left |= children[i].in_use && children[i].alive &&
                    children[i].role != FB_ROLE_PRODUCER;
        if (!left)
            break;
        usleep(20000);
    }
    fb_master_signal_children(sig);
    while (fb_master_children() > 0 && fb_monotonic_ms() < deadline) {
        fb_master_reap(NULL);
        if (fb_master_children() > 0)
            usleep(20000);
    }
    if (fb_master_children() > 0) {
        unsigned refused = 0;
        for (size_t i = 0; i < MAX_CHILDREN; i++) {
            if (children[i].in_use && children[i].alive) {
                fb_log_warnx("%s (pid %ld) still running after %u ms: killing it",
                             children[i].name, (long)children[i].pid, grace_ms);
                refused += signal_child(&children[i], SIGKILL) < 0;
            }
        }
        /* a child the master may not kill would be waited for forever. Its
         * parent-death signal does not reach it either: the kernel checks
         * it against the dying master's credentials as it does kill(2) */
        if (refused > 0)
            fb_log_errorx("%u children could not be killed and keep running as main.user: "
                          "stop them by other means (systemd's KillMode=mixed does), and "
                          "give the master CAP_KILL", refused);
        while (fb_master_children() > refused) {
            fb_master_reap(NULL);
            if (fb_master_children() > refused)
                usleep(10000);
        }
        return refused;
    }
    return 0;
}
