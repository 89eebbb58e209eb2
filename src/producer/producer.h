/*
 * producer.h -- the producer process: drains every ring lane into one
 * idempotent librdkafka producer and publishes acknowledgements back.
 *
 * fb_producer_run() is the very loop the daemon runs; tests call it in a
 * forked child on a ring they made. It must only be called after fork:
 * librdkafka starts threads.
 */
#ifndef FB_PRODUCER_H
#define FB_PRODUCER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "common/conf.h"
#include "common/ring.h"

/* exit codes of the producer process */
#define FB_PRODUCER_EXIT_OK 0
#define FB_PRODUCER_EXIT_FATAL 1 /* respawn: the new producer resumes from acked */
#define FB_PRODUCER_EXIT_CONFIG 2

int fb_producer_run(const fb_conf_t *conf, fb_ring_t *ring, volatile sig_atomic_t *stop);
int fb_producer_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);

/* producer_kafka.c */
bool fb_kafka_err_permanent(rd_kafka_resp_err_t err);
bool fb_kafka_err_auth(rd_kafka_resp_err_t err);
const char *fb_kafka_principal(const fb_conf_t *conf, char *buf, size_t len);
rd_kafka_conf_t *fb_kafka_producer_conf(const fb_conf_t *conf);
/* [librdkafka] onto kc (producer or consumer) and fbpipe's log callback;
 * 0, or -1 after logging the property librdkafka refused. */
int fb_kafka_conf_passthrough(rd_kafka_conf_t *kc, const fb_conf_t *conf);
int fb_kafka_topic_ensure(rd_kafka_t *rk, const fb_conf_t *conf, int timeout_ms);
int fb_kafka_topic_probe(const fb_conf_t *conf, int timeout_ms);

#endif /* FB_PRODUCER_H */
