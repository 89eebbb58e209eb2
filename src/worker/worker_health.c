/*
 * worker_health.c -- grpc.health.v1.Health/Check on every worker.
 *
 * SERVING while the producer has reached Kafka within
 * ingester.kafka_unavailable_after, NOT_SERVING after that. The service
 * may be "" (the server), "api.EventService" or "fbpipe.v1.Ingest";
 * any other name is NOT_FOUND, as the health protocol says.
 *
 * No token is asked for, so a check is as hostile as any call: it is
 * admitted by the per-peer limit (ingester.max_calls_per_peer) before it
 * gets here, and its request is unpacked with the capped allocator. It
 * never logs what a client can make it do.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/pballoc.h"
#include "health.pb-c.h"
#include "worker/worker.h"

/* got_request -- answer the Check. */
static void
got_request(fb_wcall_t *c, int ok)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    Grpc__Health__V1__HealthCheckRequest *req;
    const fb_ring_sh_t *rs = c->w->ring->sh;
    uint64_t ok_ms, now = fb_monotonic_ms();
    fb_pballoc_t a;
    uint8_t *buf;
    size_t len = 0;

    if (!ok || c->recv == NULL) {
        fb_wcall_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, "no request message", NULL);
        return;
    }
    buf = fb_wcall_message(c, &len);
    fb_pballoc_init(&a, 4 * len + 4096);
    req = buf ? grpc__health__v1__health_check_request__unpack(&a.base, len, buf) : NULL;
    free(buf);
    if (req == NULL) {
        fb_wcall_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest",
                       NULL);
        return;
    }
    if (req->service[0] != '\0' && strcmp(req->service, "api.EventService") != 0 &&
        strcmp(req->service, "fbpipe.v1.Ingest") != 0) {
        grpc__health__v1__health_check_request__free_unpacked(req, &a.base);
        fb_wcall_reply(c, NULL, GRPC_STATUS_NOT_FOUND, "unknown service", NULL);
        return;
    }
    grpc__health__v1__health_check_request__free_unpacked(req, &a.base);
    ok_ms = atomic_load_explicit(&rs->kafka_ok_ms, memory_order_relaxed);
    resp.status = now - ok_ms <= c->w->conf->kafka_unavailable_after_ms
                      ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    fb_wcall_reply(c, &resp.base, GRPC_STATUS_OK, NULL, NULL);
}

/* fb_worker_health_start -- a new Check call: read its request. */
void
fb_worker_health_start(fb_wcall_t *c)
{
    if (fb_wcall_read(c, got_request) < 0)
        fb_wcall_finish(c);
}
