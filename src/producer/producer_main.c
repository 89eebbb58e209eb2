/*
 * producer_main.c -- entry of the producer process, forked by the master.
 *
 * Installs its own signal handling (TERM: flush and stop), checks the ring
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

/* fb_producer_main -- the producer process; returns its exit status. */
int
fb_producer_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index)
{
    const char *why;

    (void)index;

    fb_proc_child_signals(on_stop);
    if (fb_ring_check(ring->base, ring->size, &why) < 0) {
        fb_log_errorx("shared ring refused: %s", why);
        return FB_PRODUCER_EXIT_FATAL;
    }
    return fb_producer_run(conf, ring, &stop_requested);
}
