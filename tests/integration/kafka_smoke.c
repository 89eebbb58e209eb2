/*
 * kafka_smoke.c -- proof that the test broker does what fbpipe relies on:
 * an idempotent, acks=all, lz4 producer into a 4-partition topic, then a
 * consumer group that reads every record, in order per key, each key on one
 * partition, and commits. Talks only to the brokers in FBPIPE_KAFKA_BROKERS.
 *
 * usage: kafka_smoke [TOPIC]   (count from FBPIPE_SMOKE_COUNT, default 20000)
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "itest.h"

#define N_KEYS 100
#define N_PARTITIONS 4

static const char *brokers;
static long delivered_ok, delivered_err;

static void
conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];

    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
        die("rd_kafka_conf_set(%s=%s): %s", k, v, err);
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED) {
        delivered_ok++;
    } else {
        delivered_err++;
        fprintf(stderr, "kafka_smoke: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

/* create_topic -- N_PARTITIONS partitions, replication factor 1. */
static void
create_topic(rd_kafka_t *rk, const char *topic)
{
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, N_PARTITIONS, 1, err, sizeof(err));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;
    const rd_kafka_topic_result_t **res;
    size_t n;

    if (nt == NULL)
        die("NewTopic(%s): %s", topic, err);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 60000);
    if (ev == NULL)
        die("CreateTopics(%s): no answer in 60 s", topic);
    if (rd_kafka_event_error(ev))
        die("CreateTopics(%s): %s", topic, rd_kafka_event_error_string(ev));
    res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n != 1 || rd_kafka_topic_result_error(res[0]))
        die("CreateTopics(%s): %s", topic,
            n ? rd_kafka_topic_result_error_string(res[0]) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

static void
produce_all(const char *topic, long count)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[512], key[32], val[160];
    rd_kafka_t *rk;
    double t0;

    conf_set(c, "bootstrap.servers", brokers);
    conf_set(c, "enable.idempotence", "true");
    conf_set(c, "acks", "all");
    conf_set(c, "compression.codec", "lz4");
    conf_set(c, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (rk == NULL)
        die("rd_kafka_new(producer): %s", err);
    create_topic(rk, topic);

    t0 = now_s();
    for (long i = 0; i < count; i++) {
        int k = (int)(i % N_KEYS);
        rd_kafka_resp_err_t e;
        snprintf(key, sizeof(key), "key-%d", k);
        /* per-key sequence number first, then text that compresses */
        snprintf(val, sizeof(val), "%ld {\"seq\":%ld,\"msg\":\"smoke test record for %s\"}",
                 i / N_KEYS, i, key);
        do {
            e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(val, strlen(val)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 100);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (e)
            die("produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush: %d messages still queued after 120 s", rd_kafka_outq_len(rk));
    if (delivered_ok != count || delivered_err != 0)
        die("delivered %ld ok, %ld failed, of %ld", delivered_ok, delivered_err, count);
    {
        char fatal[256];
        if (rd_kafka_fatal_error(rk, fatal, sizeof(fatal)))
            die("idempotent producer fatal error: %s", fatal);
    }
    printf("kafka_smoke: produced %ld records (idempotent, acks=all, lz4) in %.2f s\n", count,
           now_s() - t0);
    rd_kafka_destroy(rk);
}

static void
consume_all(const char *topic, long count)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *sub, *committed;
    long next[N_KEYS] = {0}, seen = 0;
    int key_part[N_KEYS];
    char err[512], group[128];
    rd_kafka_t *rk;
    double deadline;

    for (int i = 0; i < N_KEYS; i++)
        key_part[i] = -1;
    snprintf(group, sizeof(group), "%s-group", topic);
    conf_set(c, "bootstrap.servers", brokers);
    conf_set(c, "group.id", group);
    conf_set(c, "auto.offset.reset", "earliest");
    conf_set(c, "enable.auto.commit", "false");
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (rk == NULL)
        die("rd_kafka_new(consumer): %s", err);
    rd_kafka_poll_set_consumer(rk);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(rk, sub))
        die("subscribe(%s) failed", topic);
    rd_kafka_topic_partition_list_destroy(sub);

    deadline = now_s() + 120;
    while (seen < count) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        int k;
        long seq;

        if (now_s() > deadline)
            die("consumed %ld of %ld records in 120 s", seen, count);
        if (m == NULL)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "kafka_smoke: consumer: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->key_len < 5 || sscanf((const char *)m->key + 4, "%d", &k) != 1 || k < 0 ||
            k >= N_KEYS)
            die("unexpected key at partition %d offset %" PRId64, m->partition, m->offset);
        if (sscanf((const char *)m->payload, "%ld", &seq) != 1)
            die("unexpected value at partition %d offset %" PRId64, m->partition, m->offset);
        if (seq != next[k])
            die("key-%d: got sequence %ld, expected %ld (order broken or record lost)", k, seq,
                next[k]);
        if (key_part[k] != -1 && key_part[k] != m->partition)
            die("key-%d on partitions %d and %d", k, key_part[k], m->partition);
        key_part[k] = m->partition;
        next[k]++;
        seen++;
        rd_kafka_message_destroy(m);
    }
    if (rd_kafka_commit(rk, NULL, 0))
        die("commit failed");

    /* the committed offsets must be the end of every partition */
    committed = rd_kafka_topic_partition_list_new(N_PARTITIONS);
    for (int p = 0; p < N_PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(committed, topic, p);
    if (rd_kafka_committed(rk, committed, 30000))
        die("committed() failed");
    for (int p = 0; p < N_PARTITIONS; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 30000))
            die("watermarks of partition %d", p);
        if (committed->elems[p].offset != hi)
            die("partition %d: committed %" PRId64 ", end %" PRId64, p,
                committed->elems[p].offset, hi);
    }
    {
        int used = 0;
        for (int p = 0; p < N_PARTITIONS; p++)
            for (int k = 0; k < N_KEYS; k++)
                if (key_part[k] == p) {
                    used++;
                    break;
                }
        if (used < 2)
            die("all keys landed on %d partition(s): keys are not spread", used);
    }
    rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("kafka_smoke: consumed %ld records in group %s, per-key order kept, offsets "
           "committed\n", seen, group);
}

int
main(int argc, char **argv)
{
    char topic[128];
    long count = 20000;
    const char *env = getenv("FBPIPE_SMOKE_COUNT");

    itest_name = "kafka_smoke";

    brokers = getenv("FBPIPE_KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0')
        die("FBPIPE_KAFKA_BROKERS is not set");
    if (env != NULL)
        count = strtol(env, NULL, 10);
    if (count < N_KEYS)
        count = N_KEYS;
    if (argc > 1)
        snprintf(topic, sizeof(topic), "%s", argv[1]);
    else
        snprintf(topic, sizeof(topic), "fbpipe-smoke-%ld-%ld", (long)getpid(), (long)time(NULL));
    produce_all(topic, count);
    consume_all(topic, count);
    printf("kafka_smoke: topic %s OK\n", topic);
    return 0;
}
