/*
 * ring-bench.c -- throughput of the shared-memory ring across processes,
 * beside a plain single-producer single-consumer copy between the same
 * two processes over shared memory (the fair baseline) and a memcpy in
 * one process (a ceiling no two-process queue reaches).
 *
 * Each side passes the same records (key of 8 bytes, value of 64 B,
 * 256 B or 4 KiB) through an area of the lane's size. Ring: a forked
 * writer fills lane 0, publishing every 64 records; this process reads
 * each record, marks it done and moves acked every 1,024 at most, as the
 * producer does. SPSC: a forked writer copies an 8-byte header, the key
 * and the value into a shared byte queue, publishing its head every 64
 * records; this process reads each header and moves its tail every
 * 1,024 at most. memcpy: one process copies the values. Each side has
 * one untimed warm-up of a tenth of the records. What is not
 * equal: the ring's full writer sleeps on fb_lane_wait_acked, the SPSC
 * writer yields (sched_yield) until there is room, and the ring's reader
 * writes each record's state where the SPSC reader only reads. Sides
 * alternate in rounds (FBPIPE_BENCH_ROUNDS, default 3); prints min and
 * median rates, the per-round ratios to SPSC, CPU per million records of
 * each process and the load average (bench_rounds.h); asserts nothing.
 *
 * usage: ring-bench [RECORDS]   (default 5000000; FBPIPE_BENCH_RECORDS)
 */
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_events.h"
#include "bench_rounds.h"
#include "common/log.h"
#include "common/ring.h"

#define PUBLISH_EVERY 64
#define ACK_EVERY 1024
#define SPSC_PAD UINT32_MAX /* a header that says: wrap to the start */

/* the SPSC queue, in memory shared by the two processes */
typedef struct spsc_sh {
    alignas(64) _Atomic uint64_t head; /* bytes published by the writer */
    alignas(64) _Atomic uint64_t tail; /* bytes released by the reader */
    alignas(64) uint8_t data[];
} spsc_sh_t;

static double through_ring(fb_ring_t *ring, long n, size_t val_len, double *cw, double *cr);
static double through_spsc(spsc_sh_t *q, size_t size, long n, size_t val_len, double *cw,
                           double *cr);
static double through_memcpy(long n, size_t val_len, size_t area, double *cpu);

/* through_ring -- seconds to pass n records of val_len through a lane. */
static double
through_ring(fb_ring_t *ring, long n, size_t val_len, double *cw, double *cr)
{
    uint8_t *src = malloc(val_len);
    double t0, c0 = bench_cpu_self(), k0 = bench_cpu_children();
    fb_lane_t l;
    uint64_t read;
    long got = 0;
    pid_t pid;
    int st;

    memset(src, 'v', val_len);
    fb_ring_lane(ring, 0, &l);
    read = fb_lane_acked(&l);
    t0 = bench_now();
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
            if (++k == ACK_EVERY)
                break;
        }
        fb_lane_advance_acked(&l);
    }
    waitpid(pid, &st, 0);
    t0 = bench_now() - t0;
    *cr = bench_cpu_self() - c0;
    *cw = bench_cpu_children() - k0;
    free(src);
    return t0;
}

/* through_spsc -- seconds to pass n records of val_len through q. */
static double
through_spsc(spsc_sh_t *q, size_t size, long n, size_t val_len, double *cw, double *cr)
{
    size_t rec_len = (8 + 8 + val_len + 7) & ~(size_t)7;
    double t0, c0 = bench_cpu_self(), k0 = bench_cpu_children();
    uint64_t read;
    long got = 0;
    pid_t pid;
    int st;

    atomic_store(&q->head, 0);
    atomic_store(&q->tail, 0);
    read = 0;
    t0 = bench_now();
    pid = fork();
    if (pid == 0) {
        uint8_t *src = malloc(val_len);
        uint64_t head = 0;
        memset(src, 'v', val_len);
        for (long i = 0; i < n; i++) {
            size_t at = head % size, need = rec_len;
            if (at + rec_len > size) /* no record wraps: pad to the end */
                need += size - at;
            /* acquire: pairs with the reader's release of tail */
            while (head + need - atomic_load_explicit(&q->tail, memory_order_acquire) > size) {
                /* release: pairs with the reader's acquire of head */
                atomic_store_explicit(&q->head, head, memory_order_release);
                sched_yield();
            }
            if (need != rec_len) {
                uint32_t pad[2] = {SPSC_PAD, 0};
                if (size - at >= 8)
                    memcpy(q->data + at, pad, 8);
                head += size - at;
                at = 0;
            }
            uint32_t hdr[2] = {8, (uint32_t)val_len};
            memcpy(q->data + at, hdr, 8);
            memcpy(q->data + at + 8, "key-0001", 8);
            memcpy(q->data + at + 16, src, val_len);
            head += rec_len;
            if (i % PUBLISH_EVERY == PUBLISH_EVERY - 1)
                atomic_store_explicit(&q->head, head, memory_order_release); /* as above */
        }
        atomic_store_explicit(&q->head, head, memory_order_release); /* as above */
        _exit(0);
    }
    while (got < n) {
        /* acquire: pairs with the writer's release of head */
        uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
        int k = 0;

        while (read < head && k < ACK_EVERY) {
            size_t at = read % size;
            uint32_t hdr[2];
            if (size - at < 8) {
                read += size - at;
                continue;
            }
            memcpy(hdr, q->data + at, 8);
            if (hdr[0] == SPSC_PAD) {
                read += size - at;
                continue;
            }
            read += (8 + hdr[0] + hdr[1] + 7) & ~(uint64_t)7;
            got++;
            k++;
        }
        /* release: pairs with the writer's acquire of tail */
        atomic_store_explicit(&q->tail, read, memory_order_release);
    }
    waitpid(pid, &st, 0);
    t0 = bench_now() - t0;
    *cr = bench_cpu_self() - c0;
    *cw = bench_cpu_children() - k0;
    return t0;
}

/* through_memcpy -- seconds to memcpy n values into a lane-sized buffer. */
static double
through_memcpy(long n, size_t val_len, size_t area, double *cpu)
{
    uint8_t *src = malloc(val_len), *dst = malloc(area);
    double t0, c0;
    size_t off = 0;

    memset(src, 'v', val_len);
    memset(dst, 0, area);
    c0 = bench_cpu_self();
    t0 = bench_now();
    for (long i = 0; i < n; i++) {
        if (off + val_len > area)
            off = 0;
        memcpy(dst + off, src, val_len);
        off += val_len;
    }
    t0 = bench_now() - t0;
    *cpu = bench_cpu_self() - c0;
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
    static const char *const names[] = {"spsc-shm", "fbpipe-ring", "memcpy-1-process"};
    const char *env = getenv("FBPIPE_BENCH_RECORDS");
    long base = argc > 1 ? atol(argv[1]) : env ? atol(env) : 5000000;
    int rounds = bench_rounds();
    fb_ring_t *ring;
    spsc_sh_t *q;
    size_t area;

    fb_log_init("ring-bench", 0);
    ring = fb_ring_create(64u << 20, 2);
    if (ring == NULL)
        return 1;
    area = (size_t)ring->sh->lane_size;
    q = mmap(NULL, sizeof(*q) + area, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) {
        perror("ring-bench: mmap");
        return 1;
    }
    memset(q->data, 0, area);
    printf("ring-bench: 1 writer process -> 1 reader process through %zu bytes, publish every "
           "%d records; %d rounds, sides alternating\n", area, PUBLISH_EVERY, rounds);
    bench_print_load("ring-bench", "before");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        long n = sizes[i] >= 4096 ? base / 8 : base;
        char config[64];
        bench_run_t r;

        snprintf(config, sizeof(config), "value=%zuB", sizes[i]);
        bench_run_init(&r, "ring-bench", config, 3, names);
        { /* warm-up, the same for each side: page faults, caches */
            double cw, cr;
            through_spsc(q, area, n / 10, sizes[i], &cw, &cr);
            through_ring(ring, n / 10, sizes[i], &cw, &cr);
            through_memcpy(n / 10, sizes[i], area, &cr);
        }
        for (int k = 0; k < rounds; k++) {
            double cw, cr, t;
            t = through_spsc(q, area, n, sizes[i], &cw, &cr);
            bench_run_add(&r, 0, (double)n, t);
            bench_run_cpu(&r, 0, "writer", cw);
            bench_run_cpu(&r, 0, "reader", cr);
            t = through_ring(ring, n, sizes[i], &cw, &cr);
            bench_run_add(&r, 1, (double)n, t);
            bench_run_cpu(&r, 1, "writer", cw);
            bench_run_cpu(&r, 1, "reader", cr);
            t = through_memcpy(n, sizes[i], area, &cr);
            bench_run_add(&r, 2, (double)n, t);
            bench_run_cpu(&r, 2, "copier", cr);
        }
        bench_run_print(&r);
    }
    printf("ratio = a side's records/s / spsc-shm's in the same round (1.0 = as fast)\n");
    bench_print_load("ring-bench", "after");
    munmap(q, sizeof(*q) + area);
    fb_ring_destroy(ring);
    return 0;
}
