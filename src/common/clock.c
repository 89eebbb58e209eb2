/*
 * clock.c -- the monotonic and wall clocks in the units fbpipe counts in
 * (see clock.h). It never sleeps and never sets a clock.
 */
#include <stdint.h>
#include <time.h>

#include "common/clock.h"

/* fb_monotonic_ms -- CLOCK_MONOTONIC in ms: the same clock in every process. */
uint64_t
fb_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* fb_monotonic_us -- CLOCK_MONOTONIC in us: latencies and short deadlines. */
uint64_t
fb_monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* fb_wall_ns -- CLOCK_REALTIME in ns: event times, token checks, rotation by age. */
int64_t
fb_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
