/*
 * producer_main.c -- entry of the producer process, forked by the master.
 *
 * Installs its own signal handling (TERM: flush and stop; HUP, sent by the
 * master on a reload: read the topic's settings again), checks the ring
 * it inherited, and runs the loop. It must not touch the master's state.
 */
#include <signal.h>
#include <string.h>

#include "common/log.h"
#include "common/proc.h"
#include "producer/producer.h"

static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void
on_hup(int sig)
{
    (void)sig;
    fb_producer_reread_topic();
}

/* fb_producer_main -- the producer process; returns its exit status. */
int
fb_producer_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index)
{
    const char *why;

    (void)index;

    fb_proc_child_signals(on_stop);
    struct sigaction sa = {.sa_handler = on_hup, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    if (fb_ring_check(ring->base, ring->size, &why) < 0) {
        fb_log_errorx("shared ring refused: %s", why);
        return FB_PRODUCER_EXIT_FATAL;
    }
    return fb_producer_run(conf, ring, &stop_requested);
}
