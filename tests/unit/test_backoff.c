/*
 * test_backoff.c -- the doubling back-off of the master's respawns, the
 * router's retried writes and roll backs, and the producer's new Kafka
 * clients and the agent's reconnects: the same waits as the copies it
 * replaced, a cap that holds without overflow, a reset that starts
 * afresh, and the agent's spread.
 */
#include <limits.h>

#include <criterion/criterion.h>

#include "common/backoff.h"

/* old_step -- what master_spawn.c, router_main.c and producer_loop.c
 * each computed before: 0 means no wait yet. */
static unsigned
old_step(unsigned last, unsigned initial, unsigned max)
{
    if (last == 0)
        return initial;
    return last * 2 > max ? max : last * 2;
}

/* same_as_before -- 20 steps, a reset, 5 more, as the old code did. */
static void
same_as_before(unsigned initial, unsigned max)
{
    fb_backoff_t b;
    unsigned old = 0;

    fb_backoff_init(&b, initial, max);
    cr_assert_eq(fb_backoff_last(&b), 0);
    for (int i = 0; i < 25; i++) {
        if (i == 20) {
            fb_backoff_reset(&b);
            old = 0;
            cr_assert_eq(fb_backoff_last(&b), 0);
        }
        old = old_step(old, initial, max);
        cr_assert_eq(fb_backoff_next(&b), old, "(%u, %u) step %d", initial, max, i);
        cr_assert_eq(fb_backoff_last(&b), old);
    }
}

Test(backoff, master_respawn)
{
    static const unsigned want[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    fb_backoff_t b;

    fb_backoff_init(&b, 1000, 60000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_eq(fb_backoff_next(&b), want[i], "step %zu", i);
    same_as_before(1000, 60000);
}

Test(backoff, router_writes_and_roll_backs)
{
    static const unsigned want[] = {250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
    fb_backoff_t b;

    fb_backoff_init(&b, 250, 30000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_eq(fb_backoff_next(&b), want[i], "step %zu", i);
    same_as_before(250, 30000);
}

Test(backoff, producer_fatal_errors)
{
    static const unsigned want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    fb_backoff_t b;

    fb_backoff_init(&b, 1000, 30000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_eq(fb_backoff_next(&b), want[i], "step %zu", i);
    same_as_before(1000, 30000);
}

Test(backoff, reset_starts_afresh)
{
    fb_backoff_t b;

    fb_backoff_init(&b, 100, 1000);
    for (int i = 0; i < 10; i++)
        fb_backoff_next(&b);
    cr_assert_eq(fb_backoff_last(&b), 1000);
    fb_backoff_reset(&b);
    cr_assert_eq(fb_backoff_last(&b), 0);
    cr_assert_eq(fb_backoff_next(&b), 100);
    cr_assert_eq(fb_backoff_next(&b), 200);
}

Test(backoff, odd_caps)
{
    fb_backoff_t b;

    /* a cap that is no power of two of the first wait is reached exactly */
    fb_backoff_init(&b, 1000, 2999);
    cr_assert_eq(fb_backoff_next(&b), 1000);
    cr_assert_eq(fb_backoff_next(&b), 2000);
    cr_assert_eq(fb_backoff_next(&b), 2999);
    cr_assert_eq(fb_backoff_next(&b), 2999);
    same_as_before(1000, 2999);
    same_as_before(7, 7);
    same_as_before(3, 1001);
}

Test(backoff, no_overflow)
{
    fb_backoff_t b;
    unsigned prev = 0, w = 0;

    /* doubling near UINT_MAX must stop at the cap, never wrap to less */
    fb_backoff_init(&b, 1, UINT_MAX);
    for (int i = 0; i < 40; i++) {
        w = fb_backoff_next(&b);
        cr_assert_geq(w, prev, "step %d: %u after %u", i, w, prev);
        prev = w;
    }
    cr_assert_eq(w, UINT_MAX);
    fb_backoff_init(&b, UINT_MAX / 2 + 1, UINT_MAX);
    cr_assert_eq(fb_backoff_next(&b), UINT_MAX / 2 + 1);
    cr_assert_eq(fb_backoff_next(&b), UINT_MAX);
}

Test(backoff, bad_limits)
{
    fb_backoff_t b;

    /* a first wait of 0 would never grow: it waits 1 ms instead */
    fb_backoff_init(&b, 0, 100);
    cr_assert_eq(fb_backoff_next(&b), 1);
    cr_assert_eq(fb_backoff_next(&b), 2);
    /* a cap below the first wait: the first wait, always */
    fb_backoff_init(&b, 500, 100);
    cr_assert_eq(fb_backoff_next(&b), 500);
    cr_assert_eq(fb_backoff_next(&b), 500);
}

/* the agent's reconnects: 500 ms doubling to 30 s, each spread over
 * 75%..125% of itself, and the spread reaches both ends */
Test(backoff, agent_reconnect_spread)
{
    static const unsigned want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
    fb_backoff_t b;

    fb_backoff_init(&b, 500, 30000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        unsigned w = fb_backoff_next(&b);
        cr_assert_eq(w, want[i], "step %zu", i);
        cr_assert_eq(fb_backoff_spread(w, 0), w * 3 / 4);
        cr_assert_eq(fb_backoff_spread(w, w / 2), w * 3 / 4 + w / 2);
        for (uint32_t r = 0; r < 5000; r += 7) {
            unsigned s = fb_backoff_spread(w, r * 2654435761u);
            cr_assert(s >= w * 3 / 4 && s <= w * 3 / 4 + w / 2, "%u from %u", s, w);
        }
    }
    /* the largest wait does not wrap round to a short one */
    cr_assert_eq(fb_backoff_spread(UINT_MAX, 0), (unsigned)((uint64_t)UINT_MAX * 3 / 4));
    cr_assert_eq(fb_backoff_spread(UINT_MAX, UINT32_MAX), UINT_MAX);
}
