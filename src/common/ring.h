/*
 * ring.h -- the shared-memory ring between ingester workers and the
 * producer: one segment, one single-producer/single-consumer lane per
 * worker, variable-length records that live until Kafka acknowledged them.
 *
 * fb_ring_sh_t and fb_lane_sh_t live in shared memory (offsets, never
 * pointers); fb_ring_t and fb_lane_t are per-process handles into it.
 * Positions are free-running 64-bit byte counts: head (the worker
 * published up to), acked (Kafka acknowledged everything below); the
 * producer's read cursor is private and rebuilt from acked on restart.
 */
#ifndef FB_RING_H
#define FB_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FB_RING_MAGIC 0x31474e4952504246ULL /* "FBPRING1" */
#define FB_RING_VERSION 5
#define FB_CACHELINE 64
#define FB_RING_MAX_LANES 512
#define FB_RING_LANE_MIN (64u * 1024u) /* bytes: fb_ring_format refuses smaller lanes */
#define FB_REC_MAGIC 0xfb7e
#define FB_REC_ALIGN 8

/* Record state, written by the producer before acked passes the record. */
#define FB_REC_S_PENDING 0u
#define FB_REC_S_DONE 1u   /* Kafka acknowledged it */
#define FB_REC_S_FAILED 2u /* permanently refused; err says why */
/* fb_lane_first_failure's err when a header cannot be read: the records
 * are not known to be in Kafka (no librdkafka error is this negative) */
#define FB_REC_ERR_UNREADABLE INT32_MIN

#define FB_REC_F_WRAP (1u << 0) /* filler: the next record starts at offset 0 */

/* Lane ownership. */
#define FB_LANE_FREE 0u
#define FB_LANE_OWNED 1u

/* A worker whose lane the producer quarantined exits with this status:
 * its connections close (agents see UNAVAILABLE and send again), and the
 * master starts another at once, which serves once the lane is reset. */
#define FB_EXIT_LANE_QUARANTINED 3
/* a worker whose listener stopped accepting connections (its descriptors
 * ran out): the master starts another at once */
#define FB_EXIT_NOT_ACCEPTING 4
/* a worker whose private memory grew past ingester.memory_limit + 32 MiB */
#define FB_EXIT_MEMORY 5

/* What a worker was doing at its last heartbeat (fb_lane_sh_t.beat_state):
 * the master's watchdog allows a starting worker longer between beats. */
#define FB_BEAT_STARTING 1u /* from its fork to its loop: claim, grpc_init, bind */
#define FB_BEAT_SERVING 2u  /* from its event loop, every STOP_CHECK_MS */

typedef struct fb_rec {
    uint32_t size;           /* header + key + value, rounded up to FB_REC_ALIGN */
    uint16_t magic;          /* FB_REC_MAGIC: a stray or torn header is caught */
    uint16_t key_len;
    uint32_t val_len;
    uint32_t flags;          /* FB_REC_F_* (worker) */
    _Atomic uint32_t state;  /* FB_REC_S_* (producer) */
    int32_t err;             /* rd_kafka_resp_err_t of a failed record */
} fb_rec_t;

typedef struct fb_lane_sh {
    /* written by the lane's worker */
    _Alignas(FB_CACHELINE) _Atomic uint64_t head;
    _Atomic uint32_t ack_waiters; /* workers asleep on acked_seq */
    /* written by the producer */
    _Alignas(FB_CACHELINE) _Atomic uint64_t acked;
    _Atomic uint32_t acked_seq; /* futex word, bumped whenever acked moves */
    /* ownership, written by whoever claims the lane */
    _Alignas(FB_CACHELINE) _Atomic uint32_t owner_state;
    _Atomic int32_t owner_pid;
    _Atomic uint64_t owner_gen;
    uint64_t data_off; /* from the start of the segment */
    uint64_t size;     /* data bytes, a multiple of FB_REC_ALIGN */
    /* written by the producer: a corrupt record header was found; the
     * owner exits, and the producer resets the lane once nothing of it is
     * in flight (fb_lane_skip_to_head) */
    _Atomic uint32_t quarantined;
    /* written by the process that runs on the lane (its worker, from its
     * fork on, before it claims the lane too), read by the master's
     * watchdog: a worker that stops beating is killed and replaced.
     * One writer at a time: a lane's next worker starts after the last
     * one was reaped. */
    _Alignas(FB_CACHELINE) _Atomic uint64_t beat_ms; /* CLOCK_MONOTONIC ms */
    _Atomic uint32_t beat_state;                     /* FB_BEAT_* */
    _Atomic int32_t beat_pid;                        /* whose beat; 0 = none yet */
} fb_lane_sh_t;

typedef struct fb_ring_sh {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;     /* sizeof(fb_ring_sh_t) */
    uint64_t seg_size;
    uint32_t n_lanes;
    uint32_t lane_sh_size; /* sizeof(fb_lane_sh_t) */
    uint64_t lanes_off;
    uint64_t lane_size;
    int32_t creator_pid;
    uint32_t pad0;
    _Atomic uint64_t generation;
    /* the producer's doorbell: writers ring it only while it sleeps */
    _Alignas(FB_CACHELINE) _Atomic uint32_t producer_sleeping;
    _Atomic int32_t producer_pid;
    /* CLOCK_MONOTONIC ms of the producer's last contact with Kafka (the
     * health check turns NOT_SERVING when it is too old) */
    _Atomic uint64_t kafka_ok_ms;
    /* the largest record (key and value) the topic takes: the smaller of
     * kafka.message_max_bytes and the topic's max.message.bytes, from the
     * producer; 0 until it is known (the workers use the setting) */
    _Atomic uint64_t record_max;
    /* (the counters live in the metrics zone, common/metrics.h) */
} fb_ring_sh_t;

_Static_assert(sizeof(fb_rec_t) == 24, "record header layout");
_Static_assert(sizeof(fb_rec_t) % FB_REC_ALIGN == 0, "record header alignment");
_Static_assert(offsetof(fb_lane_sh_t, acked) == FB_CACHELINE, "head and acked share a line");
_Static_assert(offsetof(fb_lane_sh_t, owner_state) == 2 * FB_CACHELINE, "lane layout");
_Static_assert(offsetof(fb_lane_sh_t, beat_ms) == 3 * FB_CACHELINE, "lane layout");
_Static_assert(sizeof(fb_lane_sh_t) == 4 * FB_CACHELINE, "lane header size");
_Static_assert(offsetof(fb_ring_sh_t, producer_sleeping) == FB_CACHELINE, "ring header layout");
_Static_assert(sizeof(fb_ring_sh_t) == 2 * FB_CACHELINE, "ring header size");

typedef struct fb_ring {
    fb_ring_sh_t *sh;
    uint8_t *base;
    size_t size;
    int doorbell_fd; /* eventfd, created before fork; -1 = none */
    bool owner;      /* this handle mapped the segment */
} fb_ring_t;

typedef struct fb_lane {
    fb_ring_t *ring;
    fb_lane_sh_t *sh;
    uint8_t *data;
    uint64_t size;
    uint64_t reserved; /* worker: end of reserved, not yet published */
    uint64_t hold;     /* worker: never reuse space at or above this, even if
                        * acked (records whose failures are not read yet) */
    unsigned index;
} fb_lane_t;

/* master / tests: the segment */
fb_ring_t *fb_ring_create(size_t seg_size, unsigned n_lanes);
void fb_ring_destroy(fb_ring_t *r);
size_t fb_ring_lane_size(size_t seg_size, unsigned n_lanes);
int fb_ring_format(void *base, size_t seg_size, unsigned n_lanes, const char **why);
int fb_ring_check(const void *base, size_t seg_size, const char **why);
void fb_ring_lane(fb_ring_t *r, unsigned index, fb_lane_t *out);
size_t fb_ring_max_record(const fb_ring_t *r);

/* lane ownership */
int fb_lane_claim(fb_lane_t *l, pid_t pid, uint64_t gen);
void fb_lane_release(fb_lane_t *l);
bool fb_lane_all_acked(const fb_lane_t *l);

/* heartbeat: the worker beats, the master's watchdog reads */
void fb_lane_beat(fb_lane_t *l, pid_t pid, uint32_t state);
int fb_lane_last_beat(const fb_lane_t *l, pid_t pid, uint64_t *ms, uint32_t *state);

/* worker side */
size_t fb_rec_size(size_t key_len, size_t val_len);
int fb_lane_reserve(fb_lane_t *l, size_t key_len, size_t val_len, fb_rec_t **rec);
char *fb_rec_key(fb_rec_t *rec);
uint8_t *fb_rec_val(fb_rec_t *rec);
void fb_lane_publish(fb_lane_t *l);
void fb_lane_abandon(fb_lane_t *l);
uint64_t fb_lane_reserved(const fb_lane_t *l);
uint64_t fb_lane_acked(const fb_lane_t *l);
int fb_lane_wait_acked(fb_lane_t *l, uint64_t pos, int timeout_ms);
int fb_lane_first_failure(fb_lane_t *l, uint64_t from, uint64_t to, int32_t *err);

/* producer side */
int fb_lane_next(fb_lane_t *l, uint64_t *read, uint64_t head, fb_rec_t **rec);
fb_rec_t *fb_lane_rec_at(fb_lane_t *l, uint64_t pos);
int fb_lane_advance_acked(fb_lane_t *l);
void fb_lane_skip_to_head(fb_lane_t *l);
uint64_t fb_lane_head(const fb_lane_t *l);
void fb_ring_producer_sleep_begin(fb_ring_t *r);
void fb_ring_producer_sleep_end(fb_ring_t *r);

#endif /* FB_RING_H */
