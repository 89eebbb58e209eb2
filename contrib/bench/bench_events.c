/*
 * bench_events.c -- the benchmarks' clock and events (bench_events.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_events.h"

double
bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_make_events -- n records of JSON-like text with random words and ids. */
char *
bench_make_events(long n)
{
    static const char *words[] = {"connection", "timeout", "user", "request", "GET", "POST",
                                  "upstream", "cache", "miss", "hit", "error", "retry", "pod",
                                  "node", "disk", "latency", "ms", "ok", "denied", "payload"};
    char *buf = malloc((size_t)n * BENCH_REC);

    for (long i = 0; i < n; i++) {
        char *r = buf + (size_t)i * BENCH_REC;
        int len = snprintf(r, BENCH_REC,
                           "{\"ts\":\"2026-11-28T12:%02ld:%02ld.%06ldZ\",\"host\":\"node-%03ld\","
                           "\"level\":\"info\",\"req\":\"%08lx%08lx\",\"msg\":\"",
                           i / 60 % 60, i % 60, random() % 1000000, random() % 500,
                           (unsigned long)random(), (unsigned long)random());
        while (len < BENCH_REC - 3) {
            const char *w = words[random() % 20];
            int wl = (int)strlen(w);
            if (len + wl + 1 > BENCH_REC - 3)
                break;
            memcpy(r + len, w, (size_t)wl);
            len += wl;
            r[len++] = ' ';
        }
        while (len < BENCH_REC - 2)
            r[len++] = 'x';
        r[BENCH_REC - 2] = '"';
        r[BENCH_REC - 1] = '}';
    }
    return buf;
}
