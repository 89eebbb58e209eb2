/*
 * worker_memory.c -- the worker's watch on its own memory.
 *
 * gRPC 1.51 bounds neither the calls a connection may open and reset at
 * once (HTTP/2 rapid reset) nor what it keeps for them, and its resource
 * quota does not hold them back: a worker's private memory can grow far
 * past ingester.memory_limit and stay there. Twice a second the worker
 * reads its private resident memory (/proc/self/statm: resident less
 * shared, so the ring's shared pages never count); past memory_limit +
 * MEMORY_SLACK it logs and exits at once, and the master starts another
 * (what it wrote to the ring is acknowledged by Kafka regardless, and its
 * clients send again what was not answered). When it has grown past twice
 * its size at start and is quiet, it gives freed memory back to the
 * system (malloc_trim). It never frees or cancels anything of gRPC's.
 */
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/worker.h"

#define MEMORY_CHECK_MS 500
#define MEMORY_SLACK (32ULL << 20)
#define TRIM_EVERY_MS 10000

/* private_bytes -- resident memory not shared with other processes (the
 * ring, libraries), or 0 when it cannot be read. */
static unsigned long long
private_bytes(void)
{
    unsigned long long size, resident, shared;
    FILE *fp = fopen("/proc/self/statm", "re");
    int n;

    if (fp == NULL)
        return 0;
    n = fscanf(fp, "%llu %llu %llu", &size, &resident, &shared);
    fclose(fp);
    if (n != 3 || resident < shared)
        return 0;
    return (resident - shared) * (unsigned long long)sysconf(_SC_PAGESIZE);
}

/* fb_worker_memory_start -- the size at start, the measure of "grown". */
void
fb_worker_memory_start(fb_worker_t *w)
{
    w->mem_start = private_bytes();
}

/* fb_worker_memory_check -- see above; returns only while within bounds. */
void
fb_worker_memory_check(fb_worker_t *w, uint64_t now_ms)
{
    unsigned long long now_bytes, limit = w->conf->memory_limit + MEMORY_SLACK;

    if (now_ms - w->mem_check_ms < MEMORY_CHECK_MS)
        return;
    w->mem_check_ms = now_ms;
    now_bytes = private_bytes();
    if (now_bytes > limit) {
        fb_log_errorx("worker %u: %llu MiB of private memory, above ingester.memory_limit + "
                      "%llu MiB (a flood of calls gRPC keeps, such as HTTP/2 rapid reset?); "
                      "exiting so that a new worker serves", w->index, now_bytes >> 20,
                      MEMORY_SLACK >> 20);
        _exit(FB_EXIT_MEMORY);
    }
    /* a peak is over: what malloc kept is given back */
    if (now_bytes > 2 * w->mem_start + (8ULL << 20) && now_ms - w->trim_ms >= TRIM_EVERY_MS &&
        w->calls <= FB_WORKER_REQUESTS + 64) {
        w->trim_ms = now_ms;
        malloc_trim(0);
        fb_log_debug("worker %u: %llu MiB of private memory, %llu MiB after malloc_trim",
                     w->index, now_bytes >> 20, private_bytes() >> 20);
    }
}
