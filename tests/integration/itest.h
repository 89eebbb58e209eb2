/*
 * itest.h -- small helpers shared by the integration test programs:
 * failing loudly and a monotonic clock. Header-only.
 */
#ifndef FB_ITEST_H
#define FB_ITEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *itest_name = "itest";

/* die -- "NAME: FAIL: reason" on stderr, exit 1. */
static inline void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: FAIL: ", itest_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* now_s -- monotonic seconds. */
static inline double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif /* FB_ITEST_H */
