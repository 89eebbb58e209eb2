/*
 * files-bench.c -- the router's per-key files (router_files.h) without
 * Kafka: CPU per key and batch of fb_files_flush once every file exists
 * and is open, beside a plain write() of the same line to the same open
 * files (the floor: what any writer pays), so that what the module adds
 * per file and batch (its table, the lock and name check of each file,
 * the rotation checks) shows by itself.
 *
 * K keys (default 10,000; FBPIPE_BENCH_KEYS), one 300-byte line per key
 * per batch, no sync, no rotation; an untimed batch opens (first:
 * creates) the files before each timed round of either side. Sides alternate in rounds of 10
 * batches (FBPIPE_BENCH_ROUNDS, default 3) in a fresh directory under TMPDIR; prints the minimum
 * and median CPU per key and batch of each side; asserts nothing.
 *
 * usage: files-bench
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_rounds.h"
#include "router/router_files.h"

#define BATCHES 10
#define LINE 300

/* cpu_s -- this process's CPU seconds so far. */
static double
cpu_s(void)
{
    struct rusage u;

    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int
main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int keys = getenv("FBPIPE_BENCH_KEYS") ? atoi(getenv("FBPIPE_BENCH_KEYS")) : 10000;
    int rounds = bench_rounds();
    char dir[512], key[32], line[LINE], err[512], cmd[600];
    double *mod = calloc((size_t)rounds, sizeof(double)),
           *plain = calloc((size_t)rounds, sizeof(double));
    int *fds = calloc((size_t)(keys > 0 ? keys : 1), sizeof(int));

    if (keys < 1 || keys > 1000000 || mod == NULL || plain == NULL || fds == NULL) {
        fprintf(stderr, "files-bench: FBPIPE_BENCH_KEYS: 1 to 1000000\n");
        return 2;
    }
    /* each side keeps every file open while it runs */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)keys + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)keys + 64 ? rl.rlim_max : (rlim_t)keys + 64;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    snprintf(dir, sizeof(dir), "%s/files-bench-XXXXXX", tmp);
    if (mkdtemp(dir) == NULL) {
        perror("files-bench: mkdtemp");
        return 1;
    }
    memset(line, 'x', LINE - 1);
    line[LINE - 1] = '\n';
    fb_files_opts_t o = {.dir = dir, .max_open = (size_t)keys + 16};
    fb_files_t *f = fb_files_new(&o, err, sizeof(err));
    if (f == NULL) {
        fprintf(stderr, "files-bench: %s\n", err);
        return 1;
    }
    printf("files-bench: %d keys, one %d-byte line per key per batch, %d batches per round, no "
           "sync; %d rounds, sides alternating\n",
           keys, LINE, BATCHES, rounds);
    for (int r = 0; r < rounds; r++) {
        double c = 0;
        /* the module: an untimed batch opens (first: creates) the files */
        for (int b = -1; b < BATCHES; b++) {
            if (b == 0)
                c = cpu_s();
            for (int k = 0; k < keys; k++) {
                snprintf(key, sizeof(key), "t%d", k);
                fb_files_add(f, key, line, LINE);
            }
            if (fb_files_flush(f, false, err, sizeof(err)) != 0) {
                fprintf(stderr, "files-bench: %s\n", err);
                return 1;
            }
            fb_files_checkpoint(f);
        }
        mod[r] = (cpu_s() - c) / keys / BATCHES * 1e6;
        fb_files_reopen(f); /* its descriptors closed for the other side's */
        /* plain write(): the files opened untimed */
        for (int k = 0; k < keys; k++) {
            char path[600];
            snprintf(path, sizeof(path), "%s/plain%d.log", dir, k);
            fds[k] = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
            if (fds[k] < 0) {
                perror("files-bench: open");
                return 1;
            }
        }
        c = cpu_s();
        for (int b = 0; b < BATCHES; b++)
            for (int k = 0; k < keys; k++)
                if (write(fds[k], line, LINE) != LINE) {
                    perror("files-bench: write");
                    return 1;
                }
        plain[r] = (cpu_s() - c) / keys / BATCHES * 1e6;
        for (int k = 0; k < keys; k++)
            close(fds[k]);
    }
    qsort(mod, (size_t)rounds, sizeof(double), cmp_d);
    qsort(plain, (size_t)rounds, sizeof(double), cmp_d);
    printf("  fb_files_flush   min %.2f us, median %.2f us CPU per key and batch\n", mod[0],
           mod[rounds / 2]);
    printf("  plain write()    min %.2f us, median %.2f us CPU per key and batch\n", plain[0],
           plain[rounds / 2]);
    printf("row:\tcpu_us\tfiles-bench\tkeys=%d\tfb_files_flush\t%.3f\t%.3f\t%d\n", keys, mod[0],
           mod[rounds / 2], rounds);
    printf("row:\tcpu_us\tfiles-bench\tkeys=%d\tplain-write\t%.3f\t%.3f\t%d\n", keys, plain[0],
           plain[rounds / 2], rounds);
    fb_files_free(f);
    free(fds);
    free(mod);
    free(plain);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
