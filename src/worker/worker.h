/*
 * worker.h -- an ingester worker process: one gRPC server on the shared
 * listen address (SO_REUSEPORT), one completion queue, its own ring lane.
 *
 * gRPC is initialised here, after fork, never in the master. A worker
 * writes only into its own lane.
 */
#ifndef FB_WORKER_H
#define FB_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "common/auth.h"
#include "common/conf.h"
#include "common/keys.h"
#include "common/ring.h"

/* One call in progress. Completion-queue tags point at an fb_wtag_t: the
 * call's main step, or its acknowledgement kick (both may be pending). */
typedef struct fb_wcall fb_wcall_t;
typedef void (*fb_wcall_step_t)(fb_wcall_t *c, int ok);

typedef struct fb_wtag {
    fb_wcall_t *c;
    bool kick; /* the zero-operation batch of the acknowledgement thread */
} fb_wtag_t;

/* A run of records of one call, contiguous in the lane: [from, to). */
typedef struct fb_chunk {
    uint64_t from, to;
    fb_wcall_t *c;
} fb_chunk_t;

typedef struct fb_worker {
    const fb_conf_t *conf;
    fb_ring_t *ring;
    fb_lane_t lane;
    unsigned index;
    grpc_server *server;
    grpc_completion_queue *cq;
    unsigned calls; /* calls alive */
    int shutting_down;
    fb_auth_t *auth;
    fb_keydb_t *keydb;

    /* chunks in lane order, waiting for Kafka; shared with the ack thread */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    fb_chunk_t *chunks;
    size_t chunk_head, chunk_len, chunk_cap;
    uint64_t kicks_done;
    bool ack_stop;
    pthread_t ack_thread;
    bool ack_started;
    /* calls whose chunk waits for room in the lane */
    fb_wcall_t **blocked;
    size_t n_blocked, cap_blocked;
} fb_worker_t;

struct fb_wcall {
    fb_worker_t *w;
    fb_wcall_step_t step;
    fb_wtag_t tag, kick_tag;
    bool kick_pending; /* under w->mu */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *recv;
    int cancelled;
    int sent_initial_md;

    /* event streams */
    fb_auth_result_t auth;
    uint8_t *buf;        /* entries: u16 key len, u32 value len, key, value */
    size_t buf_len, buf_cap, buf_records;
    unsigned pending;    /* chunks in the lane not yet acknowledged */
    bool eof;            /* the client half-closed (or went away) */
    bool gone;           /* the client went away: no answer */
    bool replied;
    bool grpc_done;      /* the last gRPC event came: free once nothing is pending */
    bool failed;         /* a record was refused for good */
    int32_t fail_err;
    uint64_t events;
};

int fb_worker_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);
int fb_worker_load_keys(const fb_conf_t *conf);
void fb_worker_free_keys(void);

/* worker_server.c */
void fb_wcall_finish(fb_wcall_t *c);
void fb_wcall_release(fb_wcall_t *c);
int fb_wcall_reply(fb_wcall_t *c, const ProtobufCMessage *msg, grpc_status_code status,
                   const char *detail, fb_wcall_step_t next);
int fb_wcall_read(fb_wcall_t *c, fb_wcall_step_t next);
uint8_t *fb_wcall_message(fb_wcall_t *c, size_t *len);

/* worker_health.c */
void fb_worker_health_start(fb_wcall_t *c);

/* worker_acks.c */
int fb_worker_acks_start(fb_worker_t *w);
void fb_worker_acks_stop(fb_worker_t *w);
int fb_worker_chunk_flush(fb_wcall_t *c);
void fb_worker_acks_kicked(fb_wcall_t *c);
int fb_wcall_buffer(fb_wcall_t *c, const char *key, size_t key_len, size_t val_len,
                    uint8_t **val);

/* worker_seed.c */
void fb_worker_send_event_start(fb_wcall_t *c);
void fb_worker_exchange_config_start(fb_wcall_t *c);
void fb_worker_seed_settled(fb_wcall_t *c);
int fb_worker_authenticate(fb_wcall_t *c);

#endif /* FB_WORKER_H */
