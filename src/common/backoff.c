/*
 * backoff.c -- the doubling back-off of every retry (see backoff.h).
 * It must never sleep or read a clock: callers wait in their own loops,
 * which keep serving signals while they do.
 */
#include <limits.h>

#include "common/backoff.h"

/* fb_backoff_init -- a back-off that starts at initial_ms, capped at max_ms. */
void
fb_backoff_init(fb_backoff_t *b, unsigned initial_ms, unsigned max_ms)
{
    b->initial_ms = initial_ms > 0 ? initial_ms : 1;
    b->max_ms = max_ms >= b->initial_ms ? max_ms : b->initial_ms;
    b->last_ms = 0;
}

/* fb_backoff_next -- the wait before the next attempt. Doubling stops at
 * the cap without overflowing: last_ms > max_ms / 2 means twice it is
 * above the cap. */
unsigned
fb_backoff_next(fb_backoff_t *b)
{
    if (b->last_ms == 0)
        b->last_ms = b->initial_ms;
    else
        b->last_ms = b->last_ms > b->max_ms / 2 ? b->max_ms : b->last_ms * 2;
    return b->last_ms;
}

/* fb_backoff_reset -- the thing retried works again. */
void
fb_backoff_reset(fb_backoff_t *b)
{
    b->last_ms = 0;
}

/* fb_backoff_last -- the last wait given, 0 after a reset. */
unsigned
fb_backoff_last(const fb_backoff_t *b)
{
    return b->last_ms;
}

/* fb_backoff_spread -- wait_ms * 3/4 plus random modulo wait_ms/2 + 1:
 * 75% to 125% of it, computed in 64 bits and held at UINT_MAX. */
unsigned
fb_backoff_spread(unsigned wait_ms, uint32_t random)
{
    uint64_t w = (uint64_t)wait_ms * 3 / 4 + random % ((uint64_t)wait_ms / 2 + 1);

    return w > UINT_MAX ? UINT_MAX : (unsigned)w;
}
