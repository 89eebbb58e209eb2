/*
 * clock.h -- the clocks every process reads: CLOCK_MONOTONIC for
 * intervals, time-outs, heartbeats and back-off (the same clock in every
 * process, so a time one process writes into shared memory means the
 * same to another), CLOCK_REALTIME for event times, token checks and
 * rotation by age.
 *
 * It only reads clocks: it never sleeps, never sets a clock and keeps no
 * state.
 */
#ifndef FB_CLOCK_H
#define FB_CLOCK_H

#include <stdint.h>

uint64_t fb_monotonic_ms(void);
uint64_t fb_monotonic_us(void);
int64_t fb_wall_ns(void);

#endif /* FB_CLOCK_H */
