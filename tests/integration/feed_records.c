/*
 * feed_records.c -- Records straight into Kafka for the router's tests and
 * benchmark (feed_records.h). Acks=all and idempotence, so that every
 * record is in the topic once, in order per key, when it returns 0. The
 * topic is created (4 partitions) when missing. With no_key, api.Event
 * values without a Kafka key (the Go version's), spread over the
 * partitions by librdkafka. With key_agent, each record goes to the
 * partition fbpiped's producer would choose with kafka.partition_by =
 * key_agent (common/partition.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/batch.h"
#include "common/cipher.h"
#include "common/partition.h"
#include "api.pb-c.h"
#include "feed_records.h"
#include "fbpipe.pb-c.h"

static long failed;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        failed++;
}

/* create_topic -- the topic with 4 partitions, unless it exists; 0 or -1. */
static int
create_topic(rd_kafka_t *rk, const char *topic, char *err, size_t errlen)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 4, 1, err, errlen);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;
    const rd_kafka_topic_result_t **res;
    size_t n = 0;
    int rc = -1;

    if (nt == NULL) {
        rd_kafka_queue_destroy(q);
        return -1;
    }
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev != NULL && !rd_kafka_event_error(ev)) {
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        if (n == 1 && (rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ||
                       rd_kafka_topic_result_error(res[0]) ==
                           RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS))
            rc = 0;
        else
            snprintf(err, errlen, "creating %s: %s", topic,
                     n == 1 ? rd_kafka_topic_result_error_string(res[0]) : "no result");
    } else {
        snprintf(err, errlen, "creating %s: %s", topic,
                 ev ? rd_kafka_event_error_string(ev) : "no answer in 30 s");
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    return rc;
}

/* partition_count -- the topic's partitions, from the brokers; -1 with err. */
static int32_t
partition_count(rd_kafka_t *rk, const char *topic, char *err, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    int32_t n = -1;

    for (int tries = 0; rkt != NULL && n <= 0 && tries < 30; tries++) {
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        if (n <= 0)
            usleep(200000);
    }
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (n <= 0)
        snprintf(err, errlen, "%s: no partition count from the brokers", topic);
    return n > 0 ? n : -1;
}

/* key_name -- the i-th access key. */
static void
key_name(const feed_opts_t *o, unsigned i, char *out, size_t size)
{
    if (o->keys == 1)
        snprintf(out, size, "%s", o->prefix);
    else
        snprintf(out, size, "%s%u", o->prefix, i);
}

/* message -- the event's text (and, encrypted, its stored form) into buf. */
static size_t
message(const feed_opts_t *o, const char *key, long i, char *buf, size_t size, char *plain)
{
    int n = snprintf(plain, 512, "{\"k\":\"%s\",\"i\":%ld,\"p\":\"", key, i);
    size_t len = (size_t)n;

    while (len + 2 < o->pad && len < 480)
        plain[len++] = 'x';
    plain[len++] = '"';
    plain[len++] = '}';
    if (o->cipher == FEED_PLAIN) {
        memcpy(buf, plain, len);
        return len;
    }
    if (o->cipher == FEED_AESGCM) {
        fb_cipher_seal_aesgcm_hex(o->key, (const uint8_t *)plain, len, buf);
        return strlen(buf);
    }
    uint8_t sealed[FB_XCHACHA_NONCE + 512 + FB_XCHACHA_TAG];
    if (fb_cipher_seal_xchacha(o->cipher == FEED_XCHACHA2 ? FB_CIPHER_XCHACHA_V2
                                                          : FB_CIPHER_XCHACHA,
                               o->key, key, o->key_id, (const uint8_t *)plain, len, sealed) < 0) {
        fprintf(stderr, "feed_records: cannot seal for key \"%s\", key id \"%s\"\n", key,
                o->key_id);
        exit(1);
    }
    (void)size;
    return fb_base64(sealed, FB_XCHACHA_NONCE + len + FB_XCHACHA_TAG, buf);
}

int
feed_records(const feed_opts_t *o, char *err, size_t errlen)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char key[256], plain[512], text[2048], agent[32] = "feed";
    uint8_t packed[4096];
    int32_t parts = 0, part = RD_KAFKA_PARTITION_UA;
    struct timespec now;

    failed = 0;
    if (fb_cipher_init() < 0) {
        snprintf(err, errlen, "sodium_init failed");
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    if (rd_kafka_conf_set(kc, "bootstrap.servers", o->brokers, err, errlen) ||
        rd_kafka_conf_set(kc, "enable.idempotence", "true", err, errlen) ||
        rd_kafka_conf_set(kc, "linger.ms", "5", err, errlen) ||
        rd_kafka_conf_set(kc, "compression.codec", "lz4", err, errlen)) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, errlen);
    if (rk == NULL)
        return -1;
    if (create_topic(rk, o->topic, err, errlen) < 0) {
        rd_kafka_destroy(rk);
        return -1;
    }
    if (o->key_agent && (parts = partition_count(rk, o->topic, err, errlen)) < 0) {
        rd_kafka_destroy(rk);
        return -1;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    for (long j = 0; j < o->n; j++) {
        Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        size_t mlen, plen;

        key_name(o, (unsigned)(j % o->keys), key, sizeof(key));
        mlen = message(o, key, o->start + j / o->keys, text, sizeof(text) - 1, plain);
        text[mlen] = '\0';
        ts.seconds = now.tv_sec;
        ts.nanos = (int32_t)(j % 1000000000);
        r.timestamp = &ts;
        if (o->agents > 0)
            snprintf(agent, sizeof(agent), "agent-%lu",
                     (unsigned long)(j / o->keys) % o->agents);
        r.agent_id = agent;
        r.tag = "feed.test";
        r.message = text;
        r.userid = (char *)(o->user_id ? o->user_id : "");
        r.accesskey = key;
        r.agent_seq = (uint64_t)j;
        if (o->epoch != 0) { /* the same event number, the same identity */
            uint64_t num = (uint64_t)(o->start + j / o->keys), per = o->batch ? o->batch : 100;
            r.agent_epoch = o->epoch;
            r.batch_seq = num / per;
            r.agent_seq = num % per;
        }
        if (o->cipher != FEED_PLAIN) {
            r.cipher = o->cipher == FEED_XCHACHA    ? FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305
                       : o->cipher == FEED_XCHACHA2 ? FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2
                                                    : FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX;
            r.key_id = (char *)o->key_id;
        }
        if (o->no_key) { /* the fields Record shares with api.Event, as the Go version wrote them */
            Api__Event ev = API__EVENT__INIT;
            ts.seconds = now.tv_sec * INT64_C(1000000000) + j % 1000000000;
            ts.nanos = 0;
            ev.timestamp = &ts;
            ev.agent_id = r.agent_id;
            ev.tag = r.tag;
            ev.message = r.message;
            ev.userid = r.userid;
            ev.accesskey = r.accesskey;
            plen = api__event__pack(&ev, packed);
        } else {
            plen = fbpipe__v1__record__pack(&r, packed);
        }
        if (o->each != NULL)
            o->each(key, packed, plen, o->arg);
        if (o->key_agent)
            part = fb_partition_key_agent(key, strlen(key), agent, strlen(agent), parts);
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_PARTITION(part),
                                 RD_KAFKA_V_KEY(o->no_key ? NULL : key, o->no_key ? 0 : strlen(key)),
                                 RD_KAFKA_V_VALUE(packed, plen),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
        if (o->rate > 0 && j % (o->rate / 100 + 1) == 0) /* paced: 100 steps a second */
            usleep(10000);
    }
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR || failed > 0) {
        snprintf(err, errlen, "%ld records not delivered (of %ld)",
                 failed + rd_kafka_outq_len(rk), o->n);
        rd_kafka_destroy(rk);
        return -1;
    }
    rd_kafka_destroy(rk);
    return 0;
}
