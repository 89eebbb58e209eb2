/*
 * producer_kafka.c -- librdkafka settings, the topic, and which Kafka
 * errors are permanent.
 *
 * The permanent list is short on purpose: everything else (timeouts,
 * brokers or leaders unavailable, queue full) is retried from the ring for
 * as long as it takes, so an outage never fails a record.
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/log.h"
#include "producer/producer.h"

/* fb_kafka_err_permanent -- what is wrong with the record itself: too
 * large, invalid. Everything else, authorisation failures included (an
 * operator's ACL slip), is retried from the ring. */
bool
fb_kafka_err_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        return true;
    default:
        return false;
    }
}

/* fb_kafka_err_auth -- the cluster refuses this client's principal. */
bool
fb_kafka_err_auth(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
           err == RD_KAFKA_RESP_ERR__AUTHENTICATION;
}

/* fb_kafka_principal -- the principal Kafka sees, as far as the settings
 * tell: "User:NAME" of sasl.username, the client certificate, or
 * User:ANONYMOUS. */
const char *
fb_kafka_principal(const fb_conf_t *conf, char *buf, size_t len)
{
    const char *user = NULL;
    bool cert = false;

    for (size_t i = 0; i < conf->n_rdkafka; i++) {
        if (strcmp(conf->rdkafka[i].key, "sasl.username") == 0)
            user = conf->rdkafka[i].value;
        else if (strcmp(conf->rdkafka[i].key, "ssl.certificate.location") == 0 ||
                 strcmp(conf->rdkafka[i].key, "ssl.certificate.pem") == 0)
            cert = true;
    }
    if (user != NULL)
        snprintf(buf, len, "User:%s", user);
    else
        snprintf(buf, len, "%s", cert ? "the subject of ssl.certificate" : "User:ANONYMOUS");
    return buf;
}

/* on_rdkafka_log -- librdkafka's own messages into fbpipe's log (called
 * from librdkafka's threads; fb_log writes each line with one write).
 * [librdkafka] goes to the producer and the router's consumers alike, so
 * "a producer property, ignored by this consumer" (and the reverse) is
 * only debug. */
static void
on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    fb_log_level_t l = level <= 3 ? FB_LOG_ERROR : level == 4 ? FB_LOG_WARNING
                     : level == 5 ? FB_LOG_NOTICE : level == 6 ? FB_LOG_INFO : FB_LOG_DEBUG;

    if (strcmp(fac, "CONFWARN") == 0 && (strstr(buf, "is a producer property and will be "
                                                     "ignored by this consumer") != NULL ||
                                         strstr(buf, "is a consumer property and will be "
                                                     "ignored by this producer") != NULL))
        l = FB_LOG_DEBUG;
    fb_log_msg(l, 0, "librdkafka %s %s: %s", rk != NULL ? rd_kafka_name(rk) : "", fac, buf);
}

/* set -- one property; logs librdkafka's reason on failure. */
static int
set(rd_kafka_conf_t *kc, const char *key, const char *value)
{
    char err[512];

    if (rd_kafka_conf_set(kc, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fb_log_errorx("librdkafka property %s = %s: %s", key, value, err);
        return -1;
    }
    return 0;
}

/* fb_kafka_producer_conf -- idempotent, acks=all, compression and linger
 * from [kafka], then [librdkafka] as it is; NULL after logging. */
rd_kafka_conf_t *
fb_kafka_producer_conf(const fb_conf_t *conf)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char num[32];
    int rc = 0;

    rc |= set(kc, "bootstrap.servers", conf->brokers);
    rc |= set(kc, "enable.idempotence", "true");
    rc |= set(kc, "acks", "all");
    rc |= set(kc, "compression.codec", conf->compression);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)conf->linger_ms);
    rc |= set(kc, "linger.ms", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)conf->message_max_bytes);
    rc |= set(kc, "message.max.bytes", num);
    /* an outage must never fail a record: no timeout unless configured */
    rc |= set(kc, "message.timeout.ms", "0");
    rc |= fb_kafka_conf_passthrough(kc, conf);
    if (rc != 0) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    return kc;
}

/* fb_kafka_conf_passthrough -- [librdkafka] as it is, and librdkafka's
 * messages into fbpipe's log; 0, or -1 after logging. */
int
fb_kafka_conf_passthrough(rd_kafka_conf_t *kc, const fb_conf_t *conf)
{
    int rc = 0;

    for (size_t i = 0; i < conf->n_rdkafka; i++)
        rc |= set(kc, conf->rdkafka[i].key, conf->rdkafka[i].value);
    rd_kafka_conf_set_log_cb(kc, on_rdkafka_log);
    return rc;
}

/* topic_partitions -- the topic's partition count from metadata, -1 if unknown. */
static int
topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;

    if (rkt == NULL)
        return -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* fb_kafka_topic_ensure -- create the topic if missing, or check it.
 * 0 when it exists; -1 after logging (unreachable, refused). */
int
fb_kafka_topic_ensure(rd_kafka_t *rk, const fb_conf_t *conf, int timeout_ms)
{
    char err[512];
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    rd_kafka_AdminOptions_t *opt;
    const rd_kafka_topic_result_t **res;
    size_t n;
    int rc = -1, parts;

    nt = rd_kafka_NewTopic_new(conf->topic, (int)conf->partitions, (int)conf->replication_factor,
                               err, sizeof(err));
    if (nt == NULL) {
        fb_log_errorx("topic %s: %s", conf->topic, err);
        return -1;
    }
    q = rd_kafka_queue_new(rk);
    opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, sizeof(err));
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev == NULL) {
        fb_log_errorx("creating topic %s: no answer from %s in %d ms", conf->topic,
                      conf->brokers, timeout_ms);
    } else if (rd_kafka_event_error(ev)) {
        fb_log_errorx("creating topic %s on %s: %s", conf->topic, conf->brokers,
                      rd_kafka_event_error_string(ev));
    } else {
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        if (n == 1 && rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            fb_log_notice("created topic %s: %llu partitions, replication factor %llu",
                          conf->topic, (unsigned long long)conf->partitions,
                          (unsigned long long)conf->replication_factor);
            rc = 0;
        } else if (n == 1 &&
                   rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            parts = topic_partitions(rk, conf->topic, timeout_ms);
            if (parts >= 0 && (uint64_t)parts != conf->partitions)
                fb_log_warnx("topic %s has %d partitions, kafka.partitions says %llu; using it "
                             "as it is", conf->topic, parts,
                             (unsigned long long)conf->partitions);
            rc = 0;
        } else {
            fb_log_errorx("creating topic %s: %s", conf->topic,
                          n == 1 ? rd_kafka_topic_result_error_string(res[0]) : "no result");
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* fb_kafka_topic_probe -- for fbpiped -t: make the producer's client (so
 * librdkafka judges the settings together), then say whether the topic
 * exists and matches, when a broker answers within timeout_ms. Never an
 * error when Kafka is unreachable (the producer waits for it). -1 when
 * librdkafka refuses the settings or a reachable cluster the topic. A
 * short-lived client: only in the -t process, never in the master. */
int
fb_kafka_topic_probe(const fb_conf_t *conf, int timeout_ms)
{
    rd_kafka_conf_t *kc = fb_kafka_producer_conf(conf);
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err;
    char errstr[512];
    rd_kafka_t *rk;
    int rc = 0;

    if (kc == NULL)
        return -1;
    rd_kafka_conf_set(kc, "log_level", "0", errstr, sizeof(errstr));
    /* the producer's own settings: librdkafka judges their combination */
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    if (rk == NULL) {
        fb_log_errorx("kafka: librdkafka refuses the producer settings: %s", errstr);
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fb_log_notice("kafka: %s did not answer in %d ms (%s): topic %s not checked",
                      conf->brokers, timeout_ms, rd_kafka_err2str(err), conf->topic);
    } else {
        int found = -1;
        for (int i = 0; i < md->topic_cnt; i++)
            if (strcmp(md->topics[i].topic, conf->topic) == 0)
                found = i;
        if (found < 0)
            fb_log_notice("kafka: topic %s does not exist yet; the producer creates it with %llu "
                          "partitions, replication factor %llu", conf->topic,
                          (unsigned long long)conf->partitions,
                          (unsigned long long)conf->replication_factor);
        else if (md->topics[found].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fb_log_errorx("kafka: topic %s: %s", conf->topic,
                          rd_kafka_err2str(md->topics[found].err));
            rc = -1;
        } else if ((uint64_t)md->topics[found].partition_cnt != conf->partitions)
            fb_log_warnx("kafka: topic %s has %d partitions, kafka.partitions says %llu",
                         conf->topic, md->topics[found].partition_cnt,
                         (unsigned long long)conf->partitions);
        else
            fb_log_notice("kafka: topic %s exists with %d partitions", conf->topic,
                          md->topics[found].partition_cnt);
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return rc;
}
