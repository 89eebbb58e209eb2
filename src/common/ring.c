/*
 * ring.c -- lanes of variable-length records in one shared segment.
 *
 * Each lane has exactly one writer (its worker) and one reader (the
 * producer). The worker publishes with a release store of head; the
 * producer frees space with a release store of acked after Kafka
 * acknowledged the records below it, so a record's bytes stay valid for
 * librdkafka (which is handed pointers into the ring) until then. Waiting
 * never spins: workers sleep on a futex word, the producer on an eventfd.
 * This module never allocates on the data path and never blocks a writer
 * on another lane.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/ring.h"

#define PAGE 4096u

static uint64_t
align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* futex -- shared (not PRIVATE): waiters and wakers are different processes. */
static long
futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, 0);
}

/* fb_ring_lane_size -- the size of each lane of a segment of seg_size
 * bytes cut into n_lanes (as fb_ring_format lays it out); 0 if none fits. */
size_t
fb_ring_lane_size(size_t seg_size, unsigned n_lanes)
{
    uint64_t lanes_off = align_up(sizeof(fb_ring_sh_t), FB_CACHELINE);
    uint64_t data_off = align_up(lanes_off + (uint64_t)n_lanes * sizeof(fb_lane_sh_t), PAGE);

    if (n_lanes == 0 || seg_size <= data_off)
        return 0;
    return (size_t)((seg_size - data_off) / n_lanes / PAGE * PAGE);
}

/* fb_ring_format -- lay out the header and lanes of a zeroed segment. */
int
fb_ring_format(void *base, size_t seg_size, unsigned n_lanes, const char **why)
{
    fb_ring_sh_t *sh = base;
    uint64_t lanes_off = align_up(sizeof(fb_ring_sh_t), FB_CACHELINE);
    uint64_t data_off = align_up(lanes_off + (uint64_t)n_lanes * sizeof(fb_lane_sh_t), PAGE);
    uint64_t lane_size;

    if (n_lanes == 0 || n_lanes > FB_RING_MAX_LANES) {
        *why = "lane count out of range";
        return -1;
    }
    if (seg_size <= data_off) {
        *why = "segment too small";
        return -1;
    }
    lane_size = fb_ring_lane_size(seg_size, n_lanes);
    if (lane_size < FB_RING_LANE_MIN) {
        *why = "segment too small for that many lanes (64 KiB each at least)";
        return -1;
    }
    memset(base, 0, data_off);
    sh->version = FB_RING_VERSION;
    sh->hdr_size = sizeof(fb_ring_sh_t);
    sh->seg_size = seg_size;
    sh->n_lanes = n_lanes;
    sh->lane_sh_size = sizeof(fb_lane_sh_t);
    sh->lanes_off = lanes_off;
    sh->lane_size = lane_size;
    sh->creator_pid = (int32_t)getpid();
    sh->kafka_ok_ms = fb_monotonic_ms(); /* a fresh start counts as reachable */
    for (unsigned i = 0; i < n_lanes; i++) {
        fb_lane_sh_t *l = (fb_lane_sh_t *)((uint8_t *)base + lanes_off) + i;
        l->data_off = data_off + (uint64_t)i * lane_size;
        l->size = lane_size;
    }
    /* the magic last: a half-formatted segment never passes fb_ring_check */
    atomic_thread_fence(memory_order_release);
    sh->magic = FB_RING_MAGIC;
    return 0;
}

/* fb_ring_check -- refuse a segment whose header does not match this build. */
int
fb_ring_check(const void *base, size_t seg_size, const char **why)
{
    const fb_ring_sh_t *sh = base;
    const fb_lane_sh_t *lanes;

    if (seg_size < sizeof(*sh) || sh->magic != FB_RING_MAGIC) {
        *why = "bad magic: not an fbpipe ring";
        return -1;
    }
    if (sh->version != FB_RING_VERSION || sh->hdr_size != sizeof(fb_ring_sh_t) ||
        sh->lane_sh_size != sizeof(fb_lane_sh_t)) {
        *why = "ring layout version mismatch";
        return -1;
    }
    if (sh->seg_size != seg_size || sh->n_lanes == 0 || sh->n_lanes > FB_RING_MAX_LANES ||
        sh->lanes_off + (uint64_t)sh->n_lanes * sizeof(fb_lane_sh_t) > seg_size) {
        *why = "ring sizes do not match the segment";
        return -1;
    }
    lanes = (const fb_lane_sh_t *)((const uint8_t *)base + sh->lanes_off);
    for (unsigned i = 0; i < sh->n_lanes; i++) {
        if (lanes[i].size != sh->lane_size || lanes[i].size % FB_REC_ALIGN != 0 ||
            lanes[i].data_off % PAGE != 0 || lanes[i].data_off + lanes[i].size > seg_size) {
            *why = "lane outside the segment";
            return -1;
        }
    }
    return 0;
}

/* fb_ring_create -- map, format, and make the producer's doorbell. */
fb_ring_t *
fb_ring_create(size_t seg_size, unsigned n_lanes)
{
    fb_ring_t *r = calloc(1, sizeof(*r));
    const char *why;

    if (r == NULL) {
        fb_log_error("calloc(fb_ring_t) failed");
        return NULL;
    }
    r->doorbell_fd = -1;
    r->base = mmap(NULL, seg_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r->base == MAP_FAILED) {
        fb_log_error("mmap(MAP_SHARED, %zu) failed", seg_size);
        r->base = NULL;
        goto fail;
    }
    r->size = seg_size;
    r->owner = true;
    r->sh = (fb_ring_sh_t *)r->base;
    if (fb_ring_format(r->base, seg_size, n_lanes, &why) < 0) {
        fb_log_errorx("ring of %zu bytes with %u lanes: %s", seg_size, n_lanes, why);
        goto fail;
    }
    r->doorbell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->doorbell_fd < 0) {
        fb_log_error("eventfd() failed");
        goto fail;
    }
    return r;
fail:
    fb_ring_destroy(r);
    return NULL;
}

/* fb_ring_destroy -- unmap and close; tolerates NULL and half-built. */
void
fb_ring_destroy(fb_ring_t *r)
{
    if (r == NULL)
        return;
    if (r->base != NULL && r->owner)
        munmap(r->base, r->size);
    if (r->doorbell_fd >= 0)
        close(r->doorbell_fd);
    free(r);
}

/* fb_ring_lane -- a handle on lane index (bounds checked by the caller). */
void
fb_ring_lane(fb_ring_t *r, unsigned index, fb_lane_t *out)
{
    fb_lane_sh_t *lanes = (fb_lane_sh_t *)(r->base + r->sh->lanes_off);

    if (index >= r->sh->n_lanes)
        fb_panic("lane %u of %u", index, r->sh->n_lanes);
    out->ring = r;
    out->sh = &lanes[index];
    out->data = r->base + out->sh->data_off;
    out->size = out->sh->size;
    out->index = index;
    out->hold = UINT64_MAX;
    /* pairs with the worker's release store of head in fb_lane_publish */
    out->reserved = atomic_load_explicit(&out->sh->head, memory_order_acquire);
}

/* fb_ring_max_record -- the largest record a lane takes (half a lane). */
size_t
fb_ring_max_record(const fb_ring_t *r)
{
    return (size_t)(r->sh->lane_size / 2 / FB_REC_ALIGN * FB_REC_ALIGN);
}

/* fb_lane_claim -- take a free lane for (pid, gen) once its last owner's
 * records are all acknowledged; -EBUSY if owned, -EAGAIN while some are
 * not acknowledged. */
int
fb_lane_claim(fb_lane_t *l, pid_t pid, uint64_t gen)
{
    uint32_t expect = FB_LANE_FREE;

    if (!fb_lane_all_acked(l))
        return -EAGAIN;
    if (!atomic_compare_exchange_strong(&l->sh->owner_state, &expect, FB_LANE_OWNED))
        return -EBUSY;
    atomic_store(&l->sh->owner_pid, (int32_t)pid);
    atomic_store(&l->sh->owner_gen, gen);
    l->reserved = atomic_load_explicit(&l->sh->head, memory_order_acquire);
    return 0;
}

/* fb_lane_release -- give the lane up (the master does it for a dead worker). */
void
fb_lane_release(fb_lane_t *l)
{
    atomic_store(&l->sh->owner_pid, 0);
    atomic_store(&l->sh->owner_state, FB_LANE_FREE);
}

/* fb_lane_all_acked -- everything published has been acknowledged. */
bool
fb_lane_all_acked(const fb_lane_t *l)
{
    /* both pair with the release stores of their writers */
    return atomic_load_explicit(&l->sh->acked, memory_order_acquire) ==
           atomic_load_explicit(&l->sh->head, memory_order_acquire);
}

/* fb_lane_beat -- the lane's worker (pid) is alive and doing state. */
void
fb_lane_beat(fb_lane_t *l, pid_t pid, uint32_t state)
{
    atomic_store_explicit(&l->sh->beat_ms, fb_monotonic_ms(), memory_order_relaxed);
    atomic_store_explicit(&l->sh->beat_state, state, memory_order_relaxed);
    /* pairs with the acquire load in fb_lane_last_beat: who sees this pid
     * sees a time and state it wrote, never those of the lane's last worker */
    atomic_store_explicit(&l->sh->beat_pid, (int32_t)pid, memory_order_release);
}

/* fb_lane_last_beat -- when pid last beat on the lane, and doing what:
 * 0, or -ENOENT when it has not beaten there yet. */
int
fb_lane_last_beat(const fb_lane_t *l, pid_t pid, uint64_t *ms, uint32_t *state)
{
    /* pairs with the release store in fb_lane_beat */
    if (atomic_load_explicit(&l->sh->beat_pid, memory_order_acquire) != (int32_t)pid)
        return -ENOENT;
    *ms = atomic_load_explicit(&l->sh->beat_ms, memory_order_relaxed);
    *state = atomic_load_explicit(&l->sh->beat_state, memory_order_relaxed);
    return 0;
}

/* fb_rec_size -- bytes a record of key_len + val_len takes in a lane. */
size_t
fb_rec_size(size_t key_len, size_t val_len)
{
    return (size_t)align_up(sizeof(fb_rec_t) + key_len + val_len, FB_REC_ALIGN);
}

char *
fb_rec_key(fb_rec_t *rec)
{
    return (char *)(rec + 1);
}

uint8_t *
fb_rec_val(fb_rec_t *rec)
{
    return (uint8_t *)(rec + 1) + rec->key_len;
}

/* fb_lane_reserve -- room for one record after the last reserved one;
 * -EAGAIN when the lane is full (back-pressure), -EMSGSIZE when too big. */
int
fb_lane_reserve(fb_lane_t *l, size_t key_len, size_t val_len, fb_rec_t **out)
{
    uint64_t need, pos = l->reserved, off, contiguous, skip = 0, acked;
    fb_rec_t *rec;

    if (key_len > UINT16_MAX || val_len > UINT32_MAX)
        return -EMSGSIZE;
    need = fb_rec_size(key_len, val_len);
    if (need > l->size / 2)
        return -EMSGSIZE;
    off = pos % l->size;
    contiguous = l->size - off;
    if (contiguous < need)
        skip = contiguous;
    /* pairs with the producer's release store in fb_lane_advance_acked:
     * everything below acked is no longer read by anyone */
    acked = atomic_load_explicit(&l->sh->acked, memory_order_acquire);
    if (l->hold < acked)
        acked = l->hold; /* the worker still has to read failures there */
    if (pos + skip + need - acked > l->size)
        return -EAGAIN;
    if (skip >= sizeof(fb_rec_t)) {
        rec = (fb_rec_t *)(l->data + off);
        rec->size = (uint32_t)skip;
        rec->magic = FB_REC_MAGIC;
        rec->key_len = 0;
        rec->val_len = 0;
        rec->flags = FB_REC_F_WRAP;
        rec->err = 0;
        atomic_store_explicit(&rec->state, FB_REC_S_DONE, memory_order_relaxed);
    }
    pos += skip;
    rec = (fb_rec_t *)(l->data + pos % l->size);
    rec->size = (uint32_t)need;
    rec->magic = FB_REC_MAGIC;
    rec->key_len = (uint16_t)key_len;
    rec->val_len = (uint32_t)val_len;
    rec->flags = 0;
    rec->err = 0;
    atomic_store_explicit(&rec->state, FB_REC_S_PENDING, memory_order_relaxed);
    l->reserved = pos + need;
    *out = rec;
    return 0;
}

/* fb_lane_publish -- make every reserved record visible to the producer. */
void
fb_lane_publish(fb_lane_t *l)
{
    fb_ring_sh_t *rs = l->ring->sh;

    /* pairs with the producer's acquire load of head (fb_lane_head) */
    atomic_store_explicit(&l->sh->head, l->reserved, memory_order_release);
    /* store head, then load producer_sleeping: pairs with the seq_cst
     * fence in fb_ring_producer_sleep_begin, so either the producer sees
     * the new head or this sees it asleep and rings */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&rs->producer_sleeping, memory_order_relaxed) &&
        l->ring->doorbell_fd >= 0) {
        uint64_t one = 1;
        if (write(l->ring->doorbell_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            fb_log_warn("write(doorbell) failed");
    }
}

/* fb_lane_abandon -- drop what was reserved but not published. */
void
fb_lane_abandon(fb_lane_t *l)
{
    l->reserved = atomic_load_explicit(&l->sh->head, memory_order_relaxed);
}

uint64_t
fb_lane_reserved(const fb_lane_t *l)
{
    return l->reserved;
}

uint64_t
fb_lane_acked(const fb_lane_t *l)
{
    /* pairs with the release store in fb_lane_advance_acked */
    return atomic_load_explicit(&l->sh->acked, memory_order_acquire);
}

uint64_t
fb_lane_head(const fb_lane_t *l)
{
    /* pairs with the release store in fb_lane_publish */
    return atomic_load_explicit(&l->sh->head, memory_order_acquire);
}

/* fb_lane_wait_acked -- sleep until acked >= pos: 0, or -ETIMEDOUT
 * (timeout_ms < 0 waits for ever). */
int
fb_lane_wait_acked(fb_lane_t *l, uint64_t pos, int timeout_ms)
{
    struct timespec end, now, left;

    clock_gettime(CLOCK_MONOTONIC, &end);
    if (timeout_ms >= 0) {
        end.tv_sec += timeout_ms / 1000;
        end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (end.tv_nsec >= 1000000000L) {
            end.tv_sec++;
            end.tv_nsec -= 1000000000L;
        }
    }
    for (;;) {
        uint32_t seq = atomic_load_explicit(&l->sh->acked_seq, memory_order_acquire);

        if (fb_lane_acked(l) >= pos)
            return 0;
        if (timeout_ms >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = end.tv_sec - now.tv_sec;
            left.tv_nsec = end.tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_sec--;
                left.tv_nsec += 1000000000L;
            }
            if (left.tv_sec < 0)
                return -ETIMEDOUT;
        }
        /* count ourselves before sleeping: the producer wakes only when
         * ack_waiters > 0, and it bumps acked_seq before it looks */
        atomic_fetch_add(&l->sh->ack_waiters, 1);
        futex(&l->sh->acked_seq, FUTEX_WAIT, seq, timeout_ms >= 0 ? &left : NULL);
        atomic_fetch_sub(&l->sh->ack_waiters, 1);
    }
}

/* rec_at -- the header at *pos, after skipping an end of lane too short
 * for a header (an implicit wrap, which moves *pos); NULL if it is not a
 * header this module wrote. */
static fb_rec_t *
rec_at(fb_lane_t *l, uint64_t *pos)
{
    uint64_t off = *pos % l->size;
    fb_rec_t *rec;

    if (l->size - off < sizeof(fb_rec_t)) {
        *pos += l->size - off;
        off = 0;
    }
    rec = (fb_rec_t *)(l->data + off);
    if (rec->magic != FB_REC_MAGIC || rec->size < sizeof(fb_rec_t) ||
        rec->size % FB_REC_ALIGN != 0 || rec->size > l->size - off ||
        (!(rec->flags & FB_REC_F_WRAP) &&
         sizeof(fb_rec_t) + rec->key_len + (uint64_t)rec->val_len > rec->size))
        return NULL;
    return rec;
}

/* fb_lane_first_failure -- after acked passed [from, to): 1 and the error
 * of the first failed record, 0 if none failed (*err = 0), -EBADMSG if a
 * header is corrupt (*err = FB_REC_ERR_UNREADABLE): *err is always set.
 * Call it before reserving again: the space below acked is reused. */
int
fb_lane_first_failure(fb_lane_t *l, uint64_t from, uint64_t to, int32_t *err)
{
    uint64_t pos = from;

    *err = 0;
    while (pos < to) {
        fb_rec_t *rec = rec_at(l, &pos);

        if (rec == NULL) {
            *err = FB_REC_ERR_UNREADABLE;
            return -EBADMSG;
        }
        /* acquire: the producer's state and err writes come before acked */
        if (atomic_load_explicit(&rec->state, memory_order_acquire) == FB_REC_S_FAILED) {
            *err = rec->err;
            return 1;
        }
        pos += rec->size;
    }
    return 0;
}

/* fb_lane_next -- the producer's next record at *read below head, skipping
 * fillers; advances *read past it. 0, -EAGAIN (none), -EBADMSG (corrupt). */
int
fb_lane_next(fb_lane_t *l, uint64_t *read, uint64_t head, fb_rec_t **out)
{
    while (*read < head) {
        uint64_t at = *read;
        fb_rec_t *rec = rec_at(l, read);

        if (rec == NULL) {
            *read = at;
            return -EBADMSG;
        }
        *read += rec->size;
        if (rec->flags & FB_REC_F_WRAP)
            continue;
        *out = rec;
        return 0;
    }
    return -EAGAIN;
}

/* fb_lane_rec_at -- the record header at a lane position. */
fb_rec_t *
fb_lane_rec_at(fb_lane_t *l, uint64_t pos)
{
    return (fb_rec_t *)(l->data + pos % l->size);
}

/* fb_lane_advance_acked -- move acked over the contiguous prefix of done
 * or failed records; wake sleeping workers. 1 if it moved, 0 if not,
 * -EBADMSG on a corrupt header. Producer only. */
int
fb_lane_advance_acked(fb_lane_t *l)
{
    uint64_t start = atomic_load_explicit(&l->sh->acked, memory_order_relaxed);
    uint64_t head = fb_lane_head(l), pos = start;

    while (pos < head) {
        uint64_t at = pos;
        fb_rec_t *rec = rec_at(l, &pos);

        if (rec == NULL) {
            pos = at;
            if (pos != start)
                break; /* publish what is good; the caller sees it next time */
            return -EBADMSG;
        }
        if (atomic_load_explicit(&rec->state, memory_order_relaxed) == FB_REC_S_PENDING)
            break;
        pos += rec->size;
    }
    if (pos == start)
        return 0;
    /* pairs with the acquire loads of acked in fb_lane_reserve,
     * fb_lane_acked and fb_lane_first_failure */
    atomic_store_explicit(&l->sh->acked, pos, memory_order_release);
    atomic_fetch_add(&l->sh->acked_seq, 1);
    if (atomic_load(&l->sh->ack_waiters) > 0)
        futex(&l->sh->acked_seq, FUTEX_WAKE, INT_MAX, NULL);
    return 1;
}

/* fb_lane_skip_to_head -- a quarantined lane, its owner gone and nothing
 * of it in flight: everything published counts as settled (acked =
 * head), so that a new owner may claim it; the records skipped were never
 * acknowledged to an agent. Clears the quarantine. Producer only. */
void
fb_lane_skip_to_head(fb_lane_t *l)
{
    /* pairs with the acquire loads of acked (fb_lane_all_acked, the claim) */
    atomic_store_explicit(&l->sh->acked, fb_lane_head(l), memory_order_release);
    atomic_store(&l->sh->quarantined, 0);
    atomic_fetch_add(&l->sh->acked_seq, 1);
    if (atomic_load(&l->sh->ack_waiters) > 0)
        futex(&l->sh->acked_seq, FUTEX_WAKE, INT_MAX, NULL);
}

/* fb_ring_producer_sleep_begin -- announce sleep, then re-check lanes. */
void
fb_ring_producer_sleep_begin(fb_ring_t *r)
{
    atomic_store_explicit(&r->sh->producer_sleeping, 1, memory_order_relaxed);
    /* pairs with the fence in fb_lane_publish */
    atomic_thread_fence(memory_order_seq_cst);
}

/* fb_ring_producer_sleep_end -- awake: clear the flag and the doorbell. */
void
fb_ring_producer_sleep_end(fb_ring_t *r)
{
    uint64_t v;

    atomic_store_explicit(&r->sh->producer_sleeping, 0, memory_order_relaxed);
    if (r->doorbell_fd >= 0 && read(r->doorbell_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        fb_log_warn("read(doorbell) failed");
}
