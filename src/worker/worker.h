/*
 * worker.h -- an ingester worker process: one gRPC server on the shared
 * listen address (SO_REUSEPORT), one completion queue, its own ring lane.
 *
 * gRPC is initialised here, after fork, never in the master. A worker
 * writes only into its own lane.
 */
#ifndef FB_WORKER_H
#define FB_WORKER_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "common/conf.h"
#include "common/ring.h"

/* One call in progress; the completion-queue tag points at its step. */
typedef struct fb_wcall fb_wcall_t;
typedef void (*fb_wcall_step_t)(fb_wcall_t *c, int ok);

typedef struct fb_worker {
    const fb_conf_t *conf;
    fb_ring_t *ring;
    fb_lane_t lane;
    unsigned index;
    grpc_server *server;
    grpc_completion_queue *cq;
    unsigned calls;       /* calls alive */
    int shutting_down;
} fb_worker_t;

struct fb_wcall {
    fb_worker_t *w;
    fb_wcall_step_t step;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *recv;
    int cancelled;
    int sent_initial_md;
};

int fb_worker_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);

/* worker_server.c */
void fb_wcall_finish(fb_wcall_t *c);
int fb_wcall_reply(fb_wcall_t *c, const ProtobufCMessage *msg, grpc_status_code status,
                   const char *detail, fb_wcall_step_t next);
int fb_wcall_read(fb_wcall_t *c, fb_wcall_step_t next);
uint8_t *fb_wcall_message(fb_wcall_t *c, size_t *len);

/* worker_health.c */
void fb_worker_health_start(fb_wcall_t *c);

#endif /* FB_WORKER_H */
