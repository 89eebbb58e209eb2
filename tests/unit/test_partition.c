/*
 * test_partition.c -- kafka.partition_by = key_agent: the agent_id found
 * in a packed record (and nothing read past it), Kafka's murmur2, the
 * partition of (access key, agent), its stability and its spread.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>

#include "common/partition.h"
#include "common/ring.h"
#include "proto/fbpipe.pb-c.h"

/* pack -- a Record with agent_id (NULL: none) and a message, packed. */
static uint8_t *
pack(const char *agent, const char *msg, size_t *len)
{
    Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    uint8_t *buf;

    ts.seconds = 1764331200;
    ts.nanos = 123456789;
    r.timestamp = &ts;
    r.agent_id = agent ? (char *)agent : "";
    r.tag = "app";
    r.message = (char *)msg;
    r.userid = "u-acme";
    r.accesskey = "acme";
    r.agent_seq = 7;
    r.received_at = &ts;
    *len = fbpipe__v1__record__get_packed_size(&r);
    buf = malloc(*len);
    cr_assert_not_null(buf);
    fbpipe__v1__record__pack(&r, buf);
    return buf;
}

Test(partition, finds_the_agent_id_of_a_packed_record)
{
    size_t len, alen;
    const uint8_t *agent;
    uint8_t *v = pack("host-17.example", "hello", &len);

    cr_assert_eq(fb_partition_record_agent(v, len, &agent, &alen), 0);
    cr_assert_eq(alen, strlen("host-17.example"));
    cr_assert_eq(memcmp(agent, "host-17.example", alen), 0);
    free(v);
    v = pack(NULL, "no agent", &len); /* proto3: an empty string is not sent */
    cr_assert_eq(fb_partition_record_agent(v, len, &agent, &alen), 0);
    cr_assert_eq(alen, 0);
    free(v);
}

Test(partition, reads_nothing_past_a_cut_record)
{
    size_t len, alen;
    const uint8_t *agent;
    uint8_t *v = pack("agent-1", "a message of some length", &len);

    /* every prefix, each in a buffer of its exact size (ASan sees an overread) */
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, v, n);
        int rc = fb_partition_record_agent(cut, n, &agent, &alen);
        if (rc == 0 && alen > 0)
            cr_assert(agent >= cut && agent + alen <= cut + n, "prefix %zu", n);
        free(cut);
    }
    /* a varint that never ends, a wire type 7 */
    static const uint8_t bad1[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                   0x80, 0x80, 0x80, 0x80, 0x80};
    static const uint8_t bad2[] = {0x0f, 0x01};
    static const uint8_t bad3[] = {0x12, 0x7f, 'a'}; /* agent_id longer than the value */
    cr_assert_eq(fb_partition_record_agent(bad1, sizeof(bad1), &agent, &alen), -1);
    cr_assert_eq(fb_partition_record_agent(bad2, sizeof(bad2), &agent, &alen), -1);
    cr_assert_eq(fb_partition_record_agent(bad3, sizeof(bad3), &agent, &alen), -1);
    free(v);
}

/* Kafka's murmur2 (Utils.murmur2 in the Java client), as its own tests
 * give it: the hash the documentation promises. */
Test(partition, murmur2_is_kafkas)
{
    static const struct {
        const char *s;
        int32_t h;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int32_t want = (int32_t)(((uint32_t)cases[i].h & 0x7fffffffu) % 1000u);
        cr_assert_eq(rd_kafka_msg_partitioner_murmur2(NULL, cases[i].s, strlen(cases[i].s), 1000,
                                                      NULL, NULL),
                     want, "%s", cases[i].s);
    }
}

Test(partition, key_agent_is_murmur2_of_key_nul_agent)
{
    static const char joined[] = "acme\0host-3";

    for (int32_t cnt = 1; cnt <= 64; cnt++) {
        int32_t p = fb_partition_key_agent("acme", 4, "host-3", 6, cnt);
        cr_assert(p >= 0 && p < cnt);
        cr_assert_eq(
            p, rd_kafka_msg_partitioner_murmur2(NULL, joined, sizeof(joined) - 1, cnt, NULL, NULL));
    }
    /* the separator: ("ab", "c") and ("a", "bc") are different agents */
    int differ = 0;
    for (int32_t cnt = 2; cnt <= 64; cnt++)
        differ += fb_partition_key_agent("ab", 2, "c", 1, cnt) !=
                  fb_partition_key_agent("a", 1, "bc", 2, cnt);
    cr_assert_gt(differ, 0);
}

Test(partition, one_tenant_spreads_each_agent_stays)
{
    enum { AGENTS = 1200, PARTS = 12 };
    unsigned per[PARTS] = {0}, eight[4] = {0};
    char agent[32];

    for (int i = 0; i < AGENTS; i++) {
        int n = snprintf(agent, sizeof(agent), "agent-%d", i);
        int32_t p = fb_partition_key_agent("bigtenant", 9, agent, (size_t)n, PARTS);
        cr_assert(p >= 0 && p < PARTS);
        cr_assert_eq(fb_partition_key_agent("bigtenant", 9, agent, (size_t)n, PARTS), p);
        per[p]++;
    }
    for (int p = 0; p < PARTS; p++) /* 100 each on average */
        cr_assert(per[p] >= 60 && per[p] <= 140, "partition %d holds %u agents", p, per[p]);
    /* the integration test's tenant: 8 agents over 4 partitions */
    for (int i = 0; i < 8; i++) {
        int n = snprintf(agent, sizeof(agent), "agent-%d", i);
        eight[fb_partition_key_agent("bigtenant", 9, agent, (size_t)n, 4)]++;
    }
    int used = 0;
    for (int p = 0; p < 4; p++)
        used += eight[p] > 0;
    cr_assert_geq(used, 2);
}

Test(partition, the_callback_reads_the_record_in_the_ring)
{
    size_t len;
    uint8_t *v = pack("agent-42", "hello", &len);
    fb_rec_t *rec = aligned_alloc(8, (sizeof(fb_rec_t) + 4 + len + 7) / 8 * 8);

    cr_assert_not_null(rec);
    memset(rec, 0, sizeof(*rec));
    rec->key_len = 4;
    rec->val_len = (uint32_t)len;
    memcpy(fb_rec_key(rec), "acme", 4);
    memcpy(fb_rec_val(rec), v, len);
    for (int32_t cnt = 1; cnt <= 32; cnt++)
        cr_assert_eq(fb_partition_rec_cb(NULL, "acme", 4, cnt, NULL, rec),
                     fb_partition_key_agent("acme", 4, "agent-42", 8, cnt));
    free(rec);
    free(v);
}
