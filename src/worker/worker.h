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
#include "common/metrics.h"
#include "common/revoke.h"
#include "common/ring.h"

/* One call in progress. Completion-queue tags point at an fb_wtag_t: the
 * call's main step, or its acknowledgement kick (both may be pending). */
typedef struct fb_wcall fb_wcall_t;
typedef void (*fb_wcall_step_t)(fb_wcall_t *c, int ok);

typedef enum fb_wtag_kind {
    FB_WTAG_STEP,  /* the call's main step (c->step) */
    FB_WTAG_KICK,  /* the zero-operation batch of the acknowledgement thread */
    FB_WTAG_WRITE, /* a bidi stream's SEND_MESSAGE of an Ack */
} fb_wtag_kind_t;

typedef struct fb_wtag {
    fb_wcall_t *c;
    fb_wtag_kind_t kind;
} fb_wtag_t;

/* A run of records of one call, contiguous in the lane: [from, to). For a
 * native stream one span is exactly one Batch, answered by seq. */
typedef struct fb_span {
    uint64_t from, to;
    fb_wcall_t *c;
    uint64_t seq;
} fb_span_t;

/* An Ack waiting to be sent on a native stream. */
typedef struct fb_ack_out {
    uint64_t seq;
    int code;               /* FBPIPE__V1__ACK_CODE__* */
    uint32_t retry_after_ms;
    char detail[200];
} fb_ack_out_t;

/* Calls open per client address before they authenticate
 * (ingester.max_calls_per_peer), or per access key once they have
 * (ingester.max_calls_per_tenant). */
typedef struct fb_peer_count {
    char *name;
    unsigned calls;
} fb_peer_count_t;

/* requests for new calls a worker keeps posted: gRPC hands a new call
 * over at once instead of queueing it (a queue no limit bounds) */
#define FB_WORKER_REQUESTS 256

typedef struct fb_worker {
    const fb_conf_t *conf;
    fb_ring_t *ring;
    fb_lane_t lane;
    unsigned index;
    pid_t pid; /* this worker's, for its lane and heartbeat */
    grpc_server *server;
    grpc_completion_queue *cq;
    unsigned calls; /* calls alive */
    int shutting_down;
    /* the listening sockets, watched for a stalled accept (worker_listen.c) */
    int listen_fd[4];
    unsigned n_listen;
    uint64_t listen_check_ms, listen_waiting_since_ms;
    bool not_accepting;
    fb_revoked_t *revoked; /* the revocation table, as of its generation */
    uint64_t retire_ms;    /* when it began to retire (drain_timeout) */
    bool drain_ended;
    /* its private memory (worker_memory.c) */
    unsigned long long mem_start;
    uint64_t mem_check_ms, trim_ms;
    fb_auth_t *auth;
    fb_keydb_t *keydb;

    /* spans in lane order, waiting for Kafka; shared with the ack thread */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    fb_span_t *spans;
    size_t span_head, span_len, span_cap;
    uint64_t kicks_done;
    bool ack_stop;
    pthread_t ack_thread;
    fb_mslot_t *metrics; /* this lane's slot in the metrics zone */
    bool ack_started;
    /* calls whose span waits for room in the lane */
    fb_wcall_t **blocked;
    size_t n_blocked, cap_blocked;
    /* open event streams, for token expiry and backpressure timeouts */
    fb_wcall_t *streams;
    fb_peer_count_t *peers, *tenants;
    size_t n_peers, cap_peers, n_tenants, cap_tenants;
    struct fb_batch_rec *recs; /* the records of the batch being taken */
    size_t recs_cap;
    uint64_t last_tick_ms;
} fb_worker_t;

struct fb_wcall {
    fb_worker_t *w;
    fb_wcall_step_t step;
    fb_wtag_t tag, kick_tag, write_tag;
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
    unsigned pending;    /* spans in the lane not yet acknowledged */
    bool eof;            /* the client half-closed (or went away) */
    bool gone;           /* the client went away: no answer */
    bool replied;
    bool grpc_done;      /* the last gRPC event came: free once nothing is pending */
    bool failed;         /* a record was refused for good */
    int32_t fail_err;
    uint64_t events;
    size_t stream_bytes; /* seed: lane bytes of the stream buffered so far */
    char *peer;          /* its client's address (for the log) */
    bool peer_counted;   /* counted in w->peers: not authenticated yet */
    uint64_t auth_gen;   /* the revocation table's generation when it authenticated */
    const char *revoked; /* why a reload revoked it (static), or NULL */
    char *tenant;        /* counted in w->tenants while set */
    fb_wcall_t *next_stream, *prev_stream; /* in w->streams while listed */
    bool listed;
    /* seed streams: events buffered per tenant (metrics zone numbers), for
     * the ledger's "acked" once the stream is answered SUCCESS */
    struct fb_tally {
        unsigned tenant;
        uint64_t n;
    } *tally;
    size_t n_tally, cap_tally;

    /* native streams (fbpipe.v1.Ingest/Stream) */
    bool native;
    bool reading;        /* a RECV_MESSAGE is posted */
    bool writing;        /* a SEND_MESSAGE is posted */
    grpc_byte_buffer *send_bb;
    uint64_t buf_seq;    /* seq of the batch in buf */
    uint64_t blocked_since_ms; /* the batch in buf waits for room since, 0 = not */
    bool on_blocked;     /* in w->blocked */
    uint64_t *inflight;  /* seqs read and not yet answered */
    uint32_t *inflight_n; /* their records (for the metrics) */
    unsigned n_inflight;
    uint64_t inflight_sent; /* seq of the Ack being written */
    fb_ack_out_t *acks;  /* answered, waiting to be sent (FIFO) */
    unsigned ack_head, n_acks;
    grpc_status_code end_status; /* the status to close with, once acks are out */
    char end_detail[200];
    bool ending;         /* end_status is set: no more reads */
};

int fb_worker_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);
/* worker_server.c: count events of tenant key in column col (and in the
 * worker's counter c when not FB_MC_N) */
void fb_worker_count(fb_worker_t *w, const char *key, fb_mc_t c, fb_mt_t col, uint64_t n);

/* worker_server.c */
void fb_wcall_finish(fb_wcall_t *c);
void fb_wcall_release(fb_wcall_t *c);
int fb_wcall_reply(fb_wcall_t *c, const ProtobufCMessage *msg, grpc_status_code status,
                   const char *detail, fb_wcall_step_t next);
int fb_wcall_read(fb_wcall_t *c, fb_wcall_step_t next);
uint8_t *fb_wcall_message(fb_wcall_t *c, size_t *len);
int fb_wcall_slice(fb_wcall_t *c, grpc_slice *out);

void fb_worker_stream_list(fb_wcall_t *c);
void fb_worker_stream_unlist(fb_wcall_t *c);
void fb_worker_count_refusal(fb_worker_t *w, fb_auth_err_t err);
/* The largest record (key and value) the topic takes: the producer's word
 * (the topic's max.message.bytes) when it has one, kafka.message_max_bytes
 * until then. */
size_t fb_worker_record_max(const fb_worker_t *w);
void fb_wcall_advance(fb_wcall_t *c);

/* worker_health.c */
void fb_worker_health_start(fb_wcall_t *c);

/* worker_memory.c */
void fb_worker_memory_start(fb_worker_t *w);
void fb_worker_memory_check(fb_worker_t *w, uint64_t now_ms);

/* worker_listen.c */
void fb_worker_listen_find(fb_worker_t *w, int port);
bool fb_worker_listen_stalled(fb_worker_t *w, uint64_t now_ms);

/* worker_acks.c */
int fb_worker_acks_start(fb_worker_t *w);
void fb_worker_acks_stop(fb_worker_t *w);
int fb_worker_span_write(fb_wcall_t *c);
int fb_worker_span_put(fb_wcall_t *c);
void fb_worker_unblock(fb_wcall_t *c);
void fb_worker_acks_kicked(fb_wcall_t *c);
int fb_wcall_buffer(fb_wcall_t *c, const char *key, size_t key_len, size_t val_len,
                    uint8_t **val);

/* worker_native.c */
void fb_worker_exchange_start(fb_wcall_t *c);
void fb_worker_stream_start(fb_wcall_t *c);
void fb_worker_native_acked(fb_wcall_t *c, uint64_t seq, int32_t err);
void fb_worker_native_advance(fb_wcall_t *c);
void fb_worker_native_written(fb_wcall_t *c, int ok);
void fb_worker_native_tick(fb_wcall_t *c, uint64_t now_ms, int64_t now_s);

/* worker_seed.c */
void fb_worker_send_event_start(fb_wcall_t *c);
void fb_worker_seed_tick(fb_wcall_t *c, uint64_t now_ms, int64_t now_s);
void fb_worker_exchange_config_start(fb_wcall_t *c);
void fb_worker_seed_advance(fb_wcall_t *c);
int fb_worker_authenticate(fb_wcall_t *c);
const char *fb_worker_revoked(fb_wcall_t *c, const char *key);
int fb_worker_refuse_revoked(fb_wcall_t *c, const char *key);
int fb_worker_tenant_admit(fb_wcall_t *c);
void fb_worker_refuse(fb_wcall_t *c, const fb_auth_result_t *r);
void fb_worker_print(const char *access_key, const char *text, size_t len, bool decrypted);

#endif /* FB_WORKER_H */
