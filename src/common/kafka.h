/*
 * kafka.h -- what every role that talks to Kafka shares: librdkafka
 * settings from [kafka] and [librdkafka], which errors are the record's
 * and which the environment's, the principal the cluster sees, and the
 * topic: looked up first, created only when missing (with
 * kafka.min_insync_replicas), its limits read back with DescribeConfigs.
 *
 * It never starts a client of its own in the master: callers pass the
 * client they made after fork (fbpiped -t makes a short-lived one).
 */
#ifndef FB_KAFKA_H
#define FB_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/conf.h"

/* What is wrong with the record itself (too large, invalid): fails it.
 * Everything else is retried. */
bool fb_kafka_err_permanent(rd_kafka_resp_err_t err);
/* The cluster refuses this client's principal (an ACL slip). */
bool fb_kafka_err_auth(rd_kafka_resp_err_t err);
/* "User:NAME" of sasl.username, the client certificate, or User:ANONYMOUS. */
const char *fb_kafka_principal(const fb_conf_t *conf, char *buf, size_t len);

/* The producer's settings: idempotent, acks=all, compression, linger,
 * message.max.bytes (and batch.size) max_bytes or, when 0,
 * kafka.message_max_bytes, then [librdkafka]; NULL after logging. */
rd_kafka_conf_t *fb_kafka_producer_conf(const fb_conf_t *conf, uint64_t max_bytes);
/* [librdkafka] onto kc (producer or consumer) and fbpipe's log callback;
 * 0, or -1 after logging the property librdkafka refused. */
int fb_kafka_conf_passthrough(rd_kafka_conf_t *kc, const fb_conf_t *conf);
/* kafka.min_insync_replicas, or min(2, replication_factor) when 0. */
uint64_t fb_kafka_min_isr(const fb_conf_t *conf);

/* What the cluster says of the topic. */
typedef struct fb_kafka_topic_info {
    int partitions;            /* -1: the topic does not exist */
    long long min_isr;         /* min.insync.replicas, -1 if not read */
    long long max_message;     /* max.message.bytes, -1 if not read */
} fb_kafka_topic_info_t;

/* The topic as the cluster has it: metadata first, then its settings.
 * 0 and *info, or -1 after logging (no answer within timeout_ms, refused). */
int fb_kafka_topic_describe(rd_kafka_t *rk, const fb_conf_t *conf, int timeout_ms,
                            fb_kafka_topic_info_t *info);
/* The topic exists when this returns 0: looked up first, created only when
 * missing (CreateTopics on an existing topic without the CREATE ACL is
 * refused, not "already exists"); a topic with fewer partitions, a lower
 * min.insync.replicas or a smaller max.message.bytes than the settings
 * is logged once as a warning; *info (when not NULL) says what the topic
 * had (partitions -1: it was created). -1 after logging. */
int fb_kafka_topic_ensure(rd_kafka_t *rk, const fb_conf_t *conf, int timeout_ms,
                          fb_kafka_topic_info_t *info);
/* fbpiped -t: librdkafka judges the producer's settings; a reachable
 * cluster is asked about the topic (mismatches are warnings, a
 * max.message.bytes below kafka.message_max_bytes an error). Never an
 * error when Kafka does not answer. 0, or -1. */
int fb_kafka_topic_probe(const fb_conf_t *conf, int timeout_ms);

#endif /* FB_KAFKA_H */
