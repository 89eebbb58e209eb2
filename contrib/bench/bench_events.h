/*
 * bench_events.h -- what the benchmarks share: the clock and the events
 * (256-byte JSON-like log lines of random words and ids, which lz4 cannot
 * shrink much). Never used by fbpiped itself.
 */
#ifndef FB_BENCH_EVENTS_H
#define FB_BENCH_EVENTS_H

#define BENCH_REC 256

double bench_now(void);
/* n events of BENCH_REC bytes each, back to back (free()); not NUL-terminated. */
char *bench_make_events(long n);

#endif /* FB_BENCH_EVENTS_H */
