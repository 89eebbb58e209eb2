/*
 * test_ring.c -- the shared-memory ring: layout checks, wrap-around, full
 * lanes, record size limits, corruption, out-of-order acknowledgement,
 * lane hand-over, heartbeats, and writers in other processes.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/clock.h"
#include "common/ring.h"
#include "helpers.h"

#define SEG (1u << 20)

static fb_ring_t *ring;

static void
setup(void)
{
    test_log_capture();
    ring = fb_ring_create(SEG, 4);
    cr_assert_not_null(ring, "%s", test_log_buf);
}

static void
teardown(void)
{
    fb_ring_destroy(ring);
    fb_log_set_sink(NULL, NULL);
}

TestSuite(ring, .init = setup, .fini = teardown);

/* put -- reserve, fill and publish one record. */
static int
put(fb_lane_t *l, const char *key, const void *val, size_t len)
{
    fb_rec_t *rec;
    int rc = fb_lane_reserve(l, strlen(key), len, &rec);

    if (rc < 0)
        return rc;
    memcpy(fb_rec_key(rec), key, strlen(key));
    memcpy(fb_rec_val(rec), val, len);
    fb_lane_publish(l);
    return 0;
}

/* consume_all -- read every published record, mark it done, advance. */
static size_t
consume_all(fb_lane_t *l, uint64_t *read)
{
    fb_rec_t *rec;
    size_t n = 0;

    while (fb_lane_next(l, read, fb_lane_head(l), &rec) == 0) {
        atomic_store(&rec->state, FB_REC_S_DONE);
        n++;
    }
    fb_lane_advance_acked(l);
    return n;
}

Test(ring, layout_is_checked)
{
    const char *why;
    fb_ring_sh_t *sh = ring->sh;

    cr_assert_eq(fb_ring_check(ring->base, SEG, &why), 0);
    cr_assert_eq(sh->n_lanes, 4);
    cr_assert_geq(sh->lane_size, 200000);
    cr_assert_eq(fb_ring_check(ring->base, SEG / 2, &why), -1, "size mismatch");
    cr_assert_str_eq(why, "ring sizes do not match the segment");

    sh->version++;
    cr_assert_eq(fb_ring_check(ring->base, SEG, &why), -1);
    cr_assert_str_eq(why, "ring layout version mismatch");
    sh->version--;
    sh->magic ^= 1;
    cr_assert_eq(fb_ring_check(ring->base, SEG, &why), -1);
    cr_assert_str_eq(why, "bad magic: not an fbpipe ring");
    sh->magic ^= 1;
    ((fb_lane_sh_t *)(ring->base + sh->lanes_off))[3].data_off += SEG;
    cr_assert_eq(fb_ring_check(ring->base, SEG, &why), -1);
    cr_assert_str_eq(why, "lane outside the segment");
}

Test(ring, refuses_impossible_sizes)
{
    cr_assert_null(fb_ring_create(SEG, 0));
    cr_assert_null(fb_ring_create(SEG, 64), "16 KiB lanes are too small");
    cr_assert(strstr(test_log_buf, "64 KiB each at least"), "%s", test_log_buf);
}

Test(ring, wraps_around_many_times_intact)
{
    fb_lane_t l;
    uint64_t read = 0;
    uint8_t val[3000];
    size_t written = 0, got = 0;
    uint64_t expect = 0;

    fb_ring_lane(ring, 1, &l);
    for (int round = 0; round < 2000; round++) {
        /* varying sizes so records straddle the end in every way */
        size_t len = (size_t)(round * 37) % sizeof(val);
        memset(val, round & 0xff, len);
        if (len >= 8)
            memcpy(val, &expect, 8), expect++;
        else
            expect += 0;
        cr_assert_eq(put(&l, "k", val, len), 0, "round %d", round);
        written++;
        if (round % 7 == 0) {
            fb_rec_t *rec;
            while (fb_lane_next(&l, &read, fb_lane_head(&l), &rec) == 0) {
                uint8_t *v = fb_rec_val(rec);
                cr_assert_eq(rec->key_len, 1);
                cr_assert_eq(fb_rec_key(rec)[0], 'k');
                for (size_t i = 8; i < rec->val_len; i++)
                    cr_assert_eq(v[i], v[rec->val_len - 1], "byte %zu", i);
                atomic_store(&rec->state, FB_REC_S_DONE);
                got++;
            }
            fb_lane_advance_acked(&l);
        }
    }
    got += consume_all(&l, &read);
    cr_assert_eq(got, written);
    cr_assert_gt(fb_lane_head(&l), 4 * l.size, "went round the lane several times");
    cr_assert(fb_lane_all_acked(&l));
}

Test(ring, full_lane_pushes_back_until_acked)
{
    fb_lane_t l;
    uint64_t read = 0;
    uint8_t val[1000] = {0};
    int n = 0;

    fb_ring_lane(ring, 0, &l);
    while (put(&l, "key", val, sizeof(val)) == 0)
        n++;
    cr_assert_eq(put(&l, "key", val, sizeof(val)), -EAGAIN, "full stays full");
    cr_assert_eq((uint64_t)n, l.size / fb_rec_size(3, 1000));

    /* reading alone frees nothing: only acknowledgement does */
    fb_rec_t *rec;
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), 0);
    cr_assert_eq(put(&l, "key", val, sizeof(val)), -EAGAIN);
    atomic_store(&rec->state, FB_REC_S_DONE);
    cr_assert_eq(fb_lane_advance_acked(&l), 1);
    cr_assert_eq(put(&l, "key", val, sizeof(val)), 0, "one record's room came back");

    /* a worker holding records it has not checked yet keeps their space */
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), 0);
    l.hold = fb_lane_acked(&l);
    atomic_store(&rec->state, FB_REC_S_DONE);
    cr_assert_eq(fb_lane_advance_acked(&l), 1);
    cr_assert_eq(put(&l, "key", val, sizeof(val)), -EAGAIN, "held below hold");
    l.hold = UINT64_MAX;
    cr_assert_eq(put(&l, "key", val, sizeof(val)), 0, "released");
}

Test(ring, zero_length_and_maximum_records)
{
    fb_lane_t l;
    fb_rec_t *rec;
    uint64_t read = 0;
    size_t max = fb_ring_max_record(ring);

    fb_ring_lane(ring, 2, &l);
    cr_assert_eq(fb_lane_reserve(&l, 0, 0, &rec), 0);
    cr_assert_eq(rec->size, sizeof(fb_rec_t));
    fb_lane_publish(&l);
    cr_assert_eq(fb_lane_reserve(&l, 5, max - sizeof(fb_rec_t) - 5, &rec), 0);
    memset(fb_rec_val(rec), 0xee, rec->val_len);
    fb_lane_publish(&l);
    cr_assert_eq(fb_lane_reserve(&l, 5, max - sizeof(fb_rec_t) - 4, &rec), -EMSGSIZE);
    cr_assert_eq(fb_lane_reserve(&l, 70000, 1, &rec), -EMSGSIZE, "key over 64 KiB");

    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), 0);
    cr_assert_eq(rec->key_len + rec->val_len, 0);
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), 0);
    cr_assert_eq(rec->size, max);
    cr_assert_eq(fb_rec_val(rec)[rec->val_len - 1], 0xee);
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), -EAGAIN);
}

Test(ring, corrupted_header_is_detected)
{
    fb_lane_t l;
    fb_rec_t *rec;
    uint64_t read = 0;
    int32_t err = 12345;

    fb_ring_lane(ring, 0, &l);
    cr_assert_eq(put(&l, "a", "xyz", 3), 0);
    cr_assert_eq(put(&l, "b", "xyz", 3), 0);
    rec = fb_lane_rec_at(&l, fb_rec_size(1, 3));
    rec->magic = 0xdead;
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), 0);
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), -EBADMSG);
    cr_assert_eq(fb_lane_first_failure(&l, 0, fb_lane_head(&l), &err), -EBADMSG);
    /* the worker answers its calls from err: never left unset (#8) */
    cr_assert_eq(err, FB_REC_ERR_UNREADABLE, "err left at %d", (int)err);
    err = 12345;
    cr_assert_eq(fb_lane_first_failure(&l, 0, fb_rec_size(1, 3), &err), 0);
    cr_assert_eq(err, 0, "no failure: err is 0, not left at %d", (int)err);

    fb_lane_rec_at(&l, fb_rec_size(1, 3))->magic = FB_REC_MAGIC;
    fb_lane_rec_at(&l, fb_rec_size(1, 3))->size = 1u << 30; /* beyond the lane */
    read = fb_rec_size(1, 3);
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), -EBADMSG);
    fb_lane_rec_at(&l, fb_rec_size(1, 3))->size = (uint32_t)fb_rec_size(1, 3);
    fb_lane_rec_at(&l, fb_rec_size(1, 3))->val_len = 1000; /* longer than its record */
    cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &rec), -EBADMSG);
}

Test(ring, out_of_order_acks_advance_the_contiguous_prefix)
{
    fb_lane_t l;
    fb_rec_t *r[5];
    uint64_t read = 0, end[5];
    int32_t err = 0;

    fb_ring_lane(ring, 3, &l);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(put(&l, "k", "v", 1), 0);
        end[i] = fb_lane_reserved(&l);
    }
    for (int i = 0; i < 5; i++)
        cr_assert_eq(fb_lane_next(&l, &read, fb_lane_head(&l), &r[i]), 0);

    atomic_store(&r[1]->state, FB_REC_S_DONE);
    atomic_store(&r[2]->state, FB_REC_S_DONE);
    cr_assert_eq(fb_lane_advance_acked(&l), 0, "the first is still pending");
    cr_assert_eq(fb_lane_acked(&l), 0);
    atomic_store(&r[0]->state, FB_REC_S_DONE);
    cr_assert_eq(fb_lane_advance_acked(&l), 1);
    cr_assert_eq(fb_lane_acked(&l), end[2], "over 0, 1 and 2 at once");
    atomic_store(&r[4]->state, FB_REC_S_DONE);
    fb_lane_advance_acked(&l);
    cr_assert_eq(fb_lane_acked(&l), end[2], "4 waits for 3");
    r[3]->err = 10; /* RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE */
    atomic_store(&r[3]->state, FB_REC_S_FAILED);
    fb_lane_advance_acked(&l);
    cr_assert_eq(fb_lane_acked(&l), end[4], "a failed record is passed too");

    cr_assert_eq(fb_lane_first_failure(&l, 0, end[2], &err), 0);
    cr_assert_eq(fb_lane_first_failure(&l, end[2], end[4], &err), 1);
    cr_assert_eq(err, 10);
    cr_assert_eq(fb_lane_wait_acked(&l, end[4], 0), 0);
    cr_assert_eq(fb_lane_wait_acked(&l, end[4] + 1, 10), -ETIMEDOUT);
}

Test(ring, lane_hand_over_waits_for_the_previous_owner)
{
    fb_lane_t l, l2;
    uint64_t read = 0;

    fb_ring_lane(ring, 0, &l);
    cr_assert_eq(fb_lane_claim(&l, 100, 1), 0);
    cr_assert_eq(l.sh->owner_gen, 1);
    fb_ring_lane(ring, 0, &l2);
    cr_assert_eq(fb_lane_claim(&l2, 200, 2), -EBUSY, "owned");
    cr_assert_eq(put(&l, "k", "v", 1), 0);
    fb_lane_release(&l); /* the owner is gone, its record is not acked yet */
    cr_assert_eq(fb_lane_claim(&l2, 200, 2), -EAGAIN, "not drained");
    consume_all(&l, &read);
    cr_assert_eq(fb_lane_claim(&l2, 200, 2), 0);
    cr_assert_eq(l2.sh->owner_pid, 200);
    cr_assert_eq(l2.sh->owner_gen, 2);
    cr_assert_eq(fb_lane_reserved(&l2), fb_lane_head(&l2), "the new owner appends");
}

Test(ring, heartbeat_belongs_to_its_pid)
{
    fb_lane_t l, other;
    uint64_t ms = 0, before = fb_monotonic_ms();
    uint32_t state = 0;
    const char *why;
    pid_t pid;
    int st;

    /* a segment of the previous layout (3 lines a lane, no beat) is refused */
    ring->sh->lane_sh_size = 3 * FB_CACHELINE;
    cr_assert_eq(fb_ring_check(ring->base, SEG, &why), -1);
    cr_assert_str_eq(why, "ring layout version mismatch");
    ring->sh->lane_sh_size = sizeof(fb_lane_sh_t);

    fb_ring_lane(ring, 2, &l);
    cr_assert_eq(fb_lane_last_beat(&l, 100, &ms, &state), -ENOENT, "no beat yet");
    fb_lane_beat(&l, 100, FB_BEAT_STARTING);
    cr_assert_eq(fb_lane_last_beat(&l, 100, &ms, &state), 0);
    cr_assert_eq(state, FB_BEAT_STARTING);
    cr_assert_geq(ms, before);
    cr_assert_eq(fb_lane_last_beat(&l, 200, &ms, &state), -ENOENT,
                 "the lane's last worker's beat is not the next one's");
    fb_ring_lane(ring, 3, &other);
    cr_assert_eq(fb_lane_last_beat(&other, 100, &ms, &state), -ENOENT, "per lane");

    /* the worker beats from its own process; the master reads it */
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        usleep(20000);
        fb_lane_beat(&l, getpid(), FB_BEAT_SERVING);
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert_eq(fb_lane_last_beat(&l, pid, &ms, &state), 0);
    cr_assert_eq(state, FB_BEAT_SERVING);
    cr_assert_geq(ms, before + 20);
    cr_assert_eq(fb_lane_last_beat(&l, 100, &ms, &state), -ENOENT);
}

/* writer -- a child process writing n sequenced records into lane idx. */
static void
writer(unsigned idx, uint64_t n)
{
    fb_lane_t l;
    char key[16];

    fb_ring_lane(ring, idx, &l);
    snprintf(key, sizeof(key), "lane-%u", idx);
    for (uint64_t i = 0; i < n; i++) {
        fb_rec_t *rec;
        int rc;
        while ((rc = fb_lane_reserve(&l, strlen(key), 200, &rec)) == -EAGAIN)
            fb_lane_wait_acked(&l, fb_lane_acked(&l) + 1, 1000); /* sleeps, never spins */
        if (rc < 0)
            _exit(10);
        memcpy(fb_rec_key(rec), key, strlen(key));
        memset(fb_rec_val(rec), 'x', 200);
        memcpy(fb_rec_val(rec), &i, sizeof(i));
        if (i % 16 == 15 || i == n - 1)
            fb_lane_publish(&l);
    }
    /* block until everything this process wrote is acknowledged */
    if (fb_lane_wait_acked(&l, fb_lane_reserved(&l), 30000) < 0)
        _exit(11);
    _exit(0);
}

Test(ring, writers_in_other_processes, .timeout = 60)
{
    const unsigned nw = 3;
    const uint64_t n = 50000; /* several times the lane: writers block on full */
    uint64_t next[3] = {0}, read[3] = {0};
    pid_t pids[3];
    unsigned done = 0;

    for (unsigned w = 0; w < nw; w++) {
        pids[w] = fork();
        cr_assert_neq(pids[w], -1);
        if (pids[w] == 0)
            writer(w, n);
    }
    while (done < nw) {
        done = 0;
        for (unsigned w = 0; w < nw; w++) {
            fb_lane_t l;
            fb_rec_t *rec;
            fb_ring_lane(ring, w, &l);
            while (fb_lane_next(&l, &read[w], fb_lane_head(&l), &rec) == 0) {
                uint64_t seq;
                memcpy(&seq, fb_rec_val(rec), sizeof(seq));
                cr_assert_eq(seq, next[w], "lane %u: got %lu, want %lu", w,
                             (unsigned long)seq, (unsigned long)next[w]);
                next[w]++;
                atomic_store(&rec->state, FB_REC_S_DONE);
            }
            fb_lane_advance_acked(&l);
            done += next[w] == n;
        }
        usleep(100);
    }
    for (unsigned w = 0; w < nw; w++) {
        int st;
        cr_assert_eq(waitpid(pids[w], &st, 0), pids[w]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %u status %d", w, st);
    }
}
