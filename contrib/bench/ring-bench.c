/*
 * ring-bench.c -- throughput of the shared-memory ring across processes,
 * next to memcpy of the same bytes.
 *
 * A forked writer fills lane 0 with records (key of 8 bytes, value of
 * 64 B, 256 B or 4 KiB), publishing every 64 records; this process reads
 * each record, marks it done and moves acked, as the producer does. The
 * baseline copies the same number of value bytes with memcpy in one
 * process. Prints records/s, GB/s and the ratio; asserts nothing.
 *
 * usage: ring-bench [RECORDS]   (default 5000000; FBPIPE_BENCH_RECORDS)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ring.h"

#define PUBLISH_EVERY 64

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* through_ring -- seconds to pass n records of val_len through a lane. */
static double
through_ring(fb_ring_t *ring, long n, size_t val_len)
{
    uint8_t *src = malloc(val_len);
    fb_lane_t l;
    uint64_t read;
    long got = 0;
    double t0;
    pid_t pid;
    int st;

    memset(src, 'v', val_len);
    fb_ring_lane(ring, 0, &l);
    read = fb_lane_acked(&l);
    t0 = now_s();
    pid = fork();
    if (pid == 0) {
        fb_lane_t w;
        fb_ring_lane(ring, 0, &w);
        for (long i = 0; i < n; i++) {
            fb_rec_t *rec;
            while (fb_lane_reserve(&w, 8, val_len, &rec) != 0) {
                fb_lane_publish(&w);
                fb_lane_wait_acked(&w, fb_lane_acked(&w) + 1, 100);
            }
            memcpy(fb_rec_key(rec), "key-0001", 8);
            memcpy(fb_rec_val(rec), src, val_len);
            if (i % PUBLISH_EVERY == PUBLISH_EVERY - 1)
                fb_lane_publish(&w);
        }
        fb_lane_publish(&w);
        _exit(0);
    }
    while (got < n) {
        uint64_t head = fb_lane_head(&l);
        fb_rec_t *rec;
        int k = 0;

        while (fb_lane_next(&l, &read, head, &rec) == 0) {
            atomic_store_explicit(&rec->state, FB_REC_S_DONE, memory_order_relaxed);
            got++;
            if (++k == 1024)
                break;
        }
        fb_lane_advance_acked(&l);
    }
    waitpid(pid, &st, 0);
    free(src);
    return now_s() - t0;
}

/* through_memcpy -- seconds to memcpy n values into a lane-sized buffer. */
static double
through_memcpy(long n, size_t val_len, size_t area)
{
    uint8_t *src = malloc(val_len), *dst = malloc(area);
    size_t off = 0;
    double t0;

    memset(src, 'v', val_len);
    memset(dst, 0, area);
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (off + val_len > area)
            off = 0;
        memcpy(dst + off, src, val_len);
        off += val_len;
    }
    t0 = now_s() - t0;
    if (dst[val_len / 2] != 'v') /* keep the copies observable */
        abort();
    free(src);
    free(dst);
    return t0;
}

int
main(int argc, char **argv)
{
    static const size_t sizes[] = {64, 256, 4096};
    const char *env = getenv("FBPIPE_BENCH_RECORDS");
    long base = argc > 1 ? atol(argv[1]) : env ? atol(env) : 5000000;
    fb_ring_t *ring;

    fb_log_init("ring-bench", 0);
    ring = fb_ring_create(64u << 20, 2);
    if (ring == NULL)
        return 1;
    printf("ring-bench: 1 writer process -> 1 reader process, lane of %llu bytes, "
           "publish every %d records\n", (unsigned long long)ring->sh->lane_size, PUBLISH_EVERY);
    printf("%8s %12s %14s %10s %14s %10s %8s\n", "record", "records", "ring rec/s", "ring GB/s",
           "memcpy rec/s", "memcpy GB/s", "ratio");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        long n = sizes[i] >= 4096 ? base / 8 : base;
        double tr = through_ring(ring, n, sizes[i]);
        double tm = through_memcpy(n, sizes[i], ring->sh->lane_size);
        double bytes = (double)n * (double)sizes[i];
        printf("%7zuB %12ld %14.0f %10.2f %14.0f %10.2f %8.2f\n", sizes[i], n, n / tr,
               bytes / tr / 1e9, n / tm, bytes / tm / 1e9, tr / tm);
    }
    printf("ratio = ring time / memcpy time (1.0 = as fast as memcpy)\n");
    fb_ring_destroy(ring);
    return 0;
}
