/*
 * ring_corrupt.c -- the fault audit's ring fault: map the shared-memory
 * ring of a running fbpiped and corrupt the header of one record that is
 * published and not yet acknowledged, in one lane, as a stray write or a
 * bit flip would. Test-only; needs root (it opens the mapping through
 * /proc/PID/map_files) or the daemon's uid with CAP_SYS_ADMIN.
 *
 * usage: ring_corrupt PID SEG_SIZE [TIMEOUT_S]
 * PID is a process that maps the ring (the master), SEG_SIZE the ring's
 * size in bytes (ingester.ring_size). The producer (its pid is in the
 * ring header) is stopped with SIGSTOP while a lane is chosen and its
 * record at acked is overwritten, then continued, so the record cannot be
 * acknowledged in between. Prints "lane L owner PID position P" and exits
 * 0; exits 1 when no lane had an unacknowledged record within TIMEOUT_S
 * (default 20) or the segment is not an fbpipe ring. Changes nothing but
 * the one record header's magic.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/ring.h"

/* find_segment -- the address range of PID's shared mapping of SIZE bytes. */
static int
find_segment(const char *pid, unsigned long long size, char *range, size_t len)
{
    char path[64], line[512];
    FILE *f;
    int found = 0;

    snprintf(path, sizeof(path), "/proc/%s/maps", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ring_corrupt: fopen(%s): %s\n", path, strerror(errno));
        return -1;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long lo, hi;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 && hi - lo == size &&
            perms[3] == 's' && perms[1] == 'w') {
            snprintf(range, len, "%llx-%llx", lo, hi);
            found = 1;
        }
    }
    fclose(f);
    if (!found)
        fprintf(stderr, "ring_corrupt: no shared mapping of %llu bytes in %s\n", size, path);
    return found ? 0 : -1;
}

/* busy_lane -- some owned lane holds records not yet acknowledged. */
static bool
busy_lane(fb_ring_t *r)
{
    for (unsigned i = 0; i < r->sh->n_lanes; i++) {
        fb_lane_t l;
        fb_ring_lane(r, i, &l);
        if (atomic_load(&l.sh->owner_state) == FB_LANE_OWNED &&
            atomic_load(&l.sh->head) > atomic_load(&l.sh->acked))
            return true;
    }
    return false;
}

int
main(int argc, char **argv)
{
    char range[64], path[128];
    unsigned long long size;
    double timeout = argc > 3 ? atof(argv[3]) : 20.0;
    const char *why;
    fb_ring_t r = {.doorbell_fd = -1};
    struct timespec t0, now, nap = {0, 1000000};
    int fd;

    if (argc < 3) {
        fprintf(stderr, "usage: ring_corrupt PID SEG_SIZE [TIMEOUT_S]\n");
        return 64;
    }
    size = strtoull(argv[2], NULL, 10);
    if (find_segment(argv[1], size, range, sizeof(range)) < 0)
        return 1;
    snprintf(path, sizeof(path), "/proc/%s/map_files/%s", argv[1], range);
    fd = open(path, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "ring_corrupt: open(%s): %s\n", path, strerror(errno));
        return 1;
    }
    r.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (r.base == MAP_FAILED) {
        fprintf(stderr, "ring_corrupt: mmap(%s): %s\n", path, strerror(errno));
        return 1;
    }
    r.sh = (fb_ring_sh_t *)r.base;
    r.size = size;
    if (fb_ring_check(r.base, size, &why) < 0) {
        fprintf(stderr, "ring_corrupt: %s: %s\n", path, why);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t producer = atomic_load(&r.sh->producer_pid);

        if (producer > 0 && busy_lane(&r) && kill(producer, SIGSTOP) == 0) {
            /* let the stop land: a stopped producer moves no acked */
            nanosleep(&nap, NULL);
            for (unsigned i = 0; i < r.sh->n_lanes; i++) {
                fb_lane_t l;
                fb_ring_lane(&r, i, &l);
                uint64_t head = atomic_load(&l.sh->head), acked = atomic_load(&l.sh->acked);
                if (atomic_load(&l.sh->owner_state) != FB_LANE_OWNED || head <= acked)
                    continue;
                uint64_t off = acked % l.size;
                if (l.size - off < sizeof(fb_rec_t))
                    off = 0; /* an implicit wrap */
                fb_rec_t *rec = (fb_rec_t *)(l.data + off);
                if (rec->magic != FB_REC_MAGIC || (rec->flags & FB_REC_F_WRAP))
                    continue;
                rec->magic = 0xdead;
                kill(producer, SIGCONT);
                printf("lane %u owner %d position %llu\n", i, (int)atomic_load(&l.sh->owner_pid),
                       (unsigned long long)acked);
                return 0;
            }
            kill(producer, SIGCONT);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 > timeout) {
            fprintf(stderr, "ring_corrupt: no lane held an unacknowledged record in %.0f s\n",
                    timeout);
            return 1;
        }
        nap.tv_nsec = 200000; /* 0.2 ms between looks, the producer running */
        nanosleep(&nap, NULL);
        nap.tv_nsec = 1000000;
    }
}
