/*
 * backoff.h -- a doubling back-off: the first wait, then twice the last,
 * never more than a cap, until reset. Wherever fbpipe retries something
 * that keeps failing (a child that dies young, a write or a sync that
 * fails, a Kafka client with a fatal error), it waits what this says, so
 * that a fault is never retried in a tight loop.
 *
 * It only computes waits: it never sleeps, reads no clock, draws no
 * random number and logs nothing; the caller decides what counts as a success (reset).
 */
#ifndef FB_BACKOFF_H
#define FB_BACKOFF_H

#include <stdint.h>

typedef struct fb_backoff {
    unsigned initial_ms; /* the first wait after a reset (> 0) */
    unsigned max_ms;     /* the cap (>= initial_ms) */
    unsigned last_ms;    /* the last wait given; 0: none since the reset */
} fb_backoff_t;

void fb_backoff_init(fb_backoff_t *b, unsigned initial_ms, unsigned max_ms);
/* the next wait: initial_ms after a reset, then doubled, at most max_ms */
unsigned fb_backoff_next(fb_backoff_t *b);
/* a success: the next wait is initial_ms again */
void fb_backoff_reset(fb_backoff_t *b);
/* the last wait fb_backoff_next gave; 0 after a reset */
unsigned fb_backoff_last(const fb_backoff_t *b);
/* wait_ms spread over 75% to 125% of itself by random (any uniformly
 * random value, e.g. randombytes_random()), so that many clients that
 * lost the same server do not come back at the same instant */
unsigned fb_backoff_spread(unsigned wait_ms, uint32_t random);

#endif /* FB_BACKOFF_H */
