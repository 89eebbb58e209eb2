/*
 * kafka.c -- librdkafka settings, the topic, and which Kafka errors are
 * the record's (see kafka.h).
 *
 * The permanent list is short on purpose: everything else (timeouts,
 * brokers or leaders unavailable, queue full, authorisation) is retried
 * from the ring for as long as it takes, so neither an outage nor an
 * operator's slip ever fails a record. It never starts a client itself
 * but in fb_kafka_topic_probe, which only fbpiped -t calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"

/* fb_kafka_err_permanent -- what is wrong with the record itself: too
 * large, invalid. Everything else, authorisation failures included (an
 * operator's ACL slip), is retried from the ring; INVALID_MSG (a CRC that
 * does not match) is retriable in Kafka's protocol, and the producer
 * bounds its retries itself. */
bool
fb_kafka_err_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
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
 * from [kafka], message.max.bytes (and batch.size) max_bytes or, when 0,
 * kafka.message_max_bytes, then [librdkafka] as it is; NULL after
 * logging. */
rd_kafka_conf_t *
fb_kafka_producer_conf(const fb_conf_t *conf, uint64_t max_bytes)
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
    if (max_bytes == 0)
        max_bytes = conf->message_max_bytes;
    snprintf(num, sizeof(num), "%llu", (unsigned long long)max_bytes);
    rc |= set(kc, "message.max.bytes", num);
    if (max_bytes < 1000000) /* a batch the topic refuses would fail all its records */
        rc |= set(kc, "batch.size", num);
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

/* fb_kafka_min_isr -- kafka.min_insync_replicas, or min(2, replication). */
uint64_t
fb_kafka_min_isr(const fb_conf_t *conf)
{
    if (conf->min_insync_replicas > 0)
        return conf->min_insync_replicas;
    return conf->replication_factor < 2 ? conf->replication_factor : 2;
}

/* admin_wait -- the result event of an admin request on q, or NULL after
 * logging what and where. */
static rd_kafka_event_t *
admin_wait(rd_kafka_queue_t *q, const fb_conf_t *conf, const char *what, int timeout_ms)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);

    if (ev == NULL) {
        fb_log_errorx("%s of topic %s: no answer from %s in %d ms", what, conf->topic,
                      conf->brokers, timeout_ms);
    } else if (rd_kafka_event_error(ev)) {
        fb_log_errorx("%s of topic %s on %s: %s", what, conf->topic, conf->brokers,
                      rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        ev = NULL;
    }
    return ev;
}

/* topic_settings -- min.insync.replicas and max.message.bytes of the
 * topic (DescribeConfigs); left -1 when they cannot be read. */
static void
topic_settings(rd_kafka_t *rk, const fb_conf_t *conf, int timeout_ms, fb_kafka_topic_info_t *info)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                                                conf->topic);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;
    char err[256];

    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, sizeof(err));
    rd_kafka_DescribeConfigs(rk, &cr, 1, opt, q);
    if ((ev = admin_wait(q, conf, "reading the settings", timeout_ms)) != NULL) {
        size_t n = 0, m = 0;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &n);
        if (n == 1 && rd_kafka_ConfigResource_error(rs[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const rd_kafka_ConfigEntry_t **es = rd_kafka_ConfigResource_configs(rs[0], &m);
            for (size_t i = 0; i < m; i++) {
                const char *name = rd_kafka_ConfigEntry_name(es[i]);
                const char *value = rd_kafka_ConfigEntry_value(es[i]);
                if (value == NULL)
                    continue;
                if (strcmp(name, "min.insync.replicas") == 0)
                    info->min_isr = strtoll(value, NULL, 10);
                else if (strcmp(name, "max.message.bytes") == 0)
                    info->max_message = strtoll(value, NULL, 10);
            }
        } else if (n == 1) {
            fb_log_warnx("topic %s: its settings cannot be read: %s (the DescribeConfigs ACL?)",
                         conf->topic, rd_kafka_ConfigResource_error_string(rs[0]));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_ConfigResource_destroy(cr);
}

/* fb_kafka_topic_describe -- see kafka.h. The topic is looked for in the
 * list of every topic, so that the lookup never creates it (a producer's
 * metadata request for one topic may, where brokers auto-create). */
int
fb_kafka_topic_describe(rd_kafka_t *rk, const fb_conf_t *conf, int timeout_ms,
                        fb_kafka_topic_info_t *info)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err;

    *info = (fb_kafka_topic_info_t){-1, -1, -1};
    err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fb_log_errorx("looking up topic %s on %s: %s", conf->topic, conf->brokers,
                      rd_kafka_err2str(err));
        return -1;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, conf->topic) != 0)
            continue;
        if (md->topics[i].err != RD_KAFKA_RESP_ERR_NO_ERROR &&
            md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            fb_log_errorx("looking up topic %s on %s: %s", conf->topic, conf->brokers,
                          rd_kafka_err2str(md->topics[i].err));
            rd_kafka_metadata_destroy(md);
            return -1;
        }
        if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            info->partitions = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    if (info->partitions >= 0)
        topic_settings(rk, conf, timeout_ms, info);
    return 0;
}

/* topic_warn -- what the topic has that the settings do not want; says
 * each once per process. 0, or -1 when records would be refused for it
 * (max.message.bytes below kafka.message_max_bytes). */
static int
topic_warn(const fb_conf_t *conf, const fb_kafka_topic_info_t *t, bool every_time)
{
    static bool said_parts, said_isr, said_size;
    uint64_t isr = fb_kafka_min_isr(conf);
    int rc = 0;

    if ((uint64_t)t->partitions != conf->partitions && (every_time || !said_parts)) {
        fb_log_warnx("topic %s has %d partitions, kafka.partitions says %llu; using it as it is",
                     conf->topic, t->partitions, (unsigned long long)conf->partitions);
        said_parts = true;
    }
    if (t->min_isr >= 0 && (uint64_t)t->min_isr < isr && (every_time || !said_isr)) {
        fb_log_warnx("topic %s has min.insync.replicas = %lld, below %llu "
                     "(kafka.min_insync_replicas): an acknowledged record may live on fewer "
                     "brokers than that", conf->topic, t->min_isr, (unsigned long long)isr);
        said_isr = true;
    }
    if (t->max_message >= 0 && (uint64_t)t->max_message < conf->message_max_bytes) {
        if (every_time || !said_size)
            fb_log_errorx("topic %s has max.message.bytes = %lld, below kafka.message_max_bytes "
                          "= %llu: a record between the two would be refused with its "
                          "batch-mates; lower kafka.message_max_bytes to %lld or raise the "
                          "topic's", conf->topic, t->max_message,
                          (unsigned long long)conf->message_max_bytes, t->max_message);
        said_size = true;
        rc = -1;
    }
    return rc;
}

/* fb_kafka_topic_ensure -- see kafka.h. */
int
fb_kafka_topic_ensure(rd_kafka_t *rk, const fb_conf_t *conf, int timeout_ms,
                      fb_kafka_topic_info_t *info)
{
    fb_kafka_topic_info_t t;
    char err[512], num[32];
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    rd_kafka_AdminOptions_t *opt;
    const rd_kafka_topic_result_t **res;
    size_t n;
    int rc = -1;

    if (fb_kafka_topic_describe(rk, conf, timeout_ms, &t) < 0)
        return -1;
    if (info != NULL)
        *info = t;
    if (t.partitions >= 0) {
        topic_warn(conf, &t, false);
        return 0; /* exists: nothing to create (and maybe no right to) */
    }
    nt = rd_kafka_NewTopic_new(conf->topic, (int)conf->partitions, (int)conf->replication_factor,
                               err, sizeof(err));
    if (nt == NULL) {
        fb_log_errorx("topic %s: %s", conf->topic, err);
        return -1;
    }
    snprintf(num, sizeof(num), "%llu", (unsigned long long)fb_kafka_min_isr(conf));
    rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", num);
    q = rd_kafka_queue_new(rk);
    opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, sizeof(err));
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    if ((ev = admin_wait(q, conf, "creating", timeout_ms)) != NULL) {
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t e = n == 1 ? rd_kafka_topic_result_error(res[0])
                                       : RD_KAFKA_RESP_ERR__FAIL;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            fb_log_notice("created topic %s: %llu partitions, replication factor %llu, "
                          "min.insync.replicas %s", conf->topic,
                          (unsigned long long)conf->partitions,
                          (unsigned long long)conf->replication_factor, num);
            rc = 0;
        } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = 0; /* another process created it meanwhile */
        } else {
            fb_log_errorx("creating topic %s: %s", conf->topic,
                          n == 1 ? rd_kafka_topic_result_error_string(res[0]) : "no result");
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    /* the brokers learn of a new topic a moment after its creation: a
     * consumer that subscribes before is told it does not exist, and
     * looks again only at its next metadata refresh, minutes later */
    for (uint64_t until = fb_monotonic_ms() + (uint64_t)timeout_ms;
         rc == 0 && t.partitions < 0 && fb_monotonic_ms() < until;) {
        usleep(100000);
        if (fb_kafka_topic_describe(rk, conf, timeout_ms, &t) < 0)
            break;
    }
    if (rc == 0 && info != NULL)
        *info = t;
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
    rd_kafka_conf_t *kc = fb_kafka_producer_conf(conf, 0);
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
        fb_kafka_topic_info_t t;
        rd_kafka_metadata_destroy(md);
        if (fb_kafka_topic_describe(rk, conf, timeout_ms, &t) < 0)
            rc = -1;
        else if (t.partitions < 0)
            fb_log_notice("kafka: topic %s does not exist yet; the producer creates it with %llu "
                          "partitions, replication factor %llu, min.insync.replicas %llu",
                          conf->topic, (unsigned long long)conf->partitions,
                          (unsigned long long)conf->replication_factor,
                          (unsigned long long)fb_kafka_min_isr(conf));
        else if (topic_warn(conf, &t, true) < 0)
            rc = -1;
        else
            fb_log_notice("kafka: topic %s exists with %d partitions", conf->topic,
                          t.partitions);
    }
    rd_kafka_destroy(rk);
    return rc;
}
