/*
 * partition.c -- kafka.partition_by = key_agent (partition.h): which
 * partition a record goes to. Called by librdkafka from any of its
 * threads, possibly several times per record: it reads the record in the
 * ring and must never write into it, allocate or log.
 */
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/batch.h"
#include "common/keys.h"
#include "common/partition.h"
#include "common/record.h"
#include "common/ring.h"

/* fb_partition_record_agent -- see partition.h. */
int
fb_partition_record_agent(const uint8_t *val, size_t vlen, const uint8_t **agent, size_t *len)
{
    const uint8_t *p = val, *end = val + vlen;

    *agent = val;
    *len = 0;
    while (p < end) {
        uint32_t num;
        unsigned wt;
        uint64_t v;
        fb_view_t bytes;
        if (fb_pb_field(&p, end, &num, &wt, &v, &bytes) < 0)
            return -1;
        if (num == 2 && wt == 2) { /* Record.agent_id, length-delimited */
            *agent = bytes.p;
            *len = bytes.len;
            return 0;
        }
    }
    return 0;
}

/* fb_partition_key_agent -- see partition.h: the bytes hashed are put
 * side by side for librdkafka's murmur2 partitioner (Kafka's hash). */
int32_t
fb_partition_key_agent(const void *key, size_t klen, const void *agent, size_t alen,
                       int32_t partition_cnt)
{
    uint8_t buf[FB_ACCESS_KEY_MAX + 1 + FB_AGENT_ID_MAX];

    if (klen > FB_ACCESS_KEY_MAX)
        klen = FB_ACCESS_KEY_MAX;
    if (alen > FB_AGENT_ID_MAX)
        alen = FB_AGENT_ID_MAX;
    if (klen > 0)
        memcpy(buf, key, klen);
    buf[klen] = 0;
    if (alen > 0)
        memcpy(buf + klen + 1, agent, alen);
    /* with a key (never NULL here) this is murmur2 & 0x7fffffff mod cnt */
    return rd_kafka_msg_partitioner_murmur2(NULL, buf, klen + 1 + alen, partition_cnt, NULL, NULL);
}

/* fb_partition_rec_cb -- see partition.h. A value that is not protobuf
 * (never written by fbpipe) goes where its key alone sends it. */
int32_t
fb_partition_rec_cb(const struct rd_kafka_topic_s *rkt, const void *key, size_t klen,
                    int32_t partition_cnt, void *rkt_opaque, void *msg_opaque)
{
    fb_rec_t *rec = msg_opaque;
    const uint8_t *agent;
    size_t alen;

    (void)rkt;
    (void)rkt_opaque;
    if (fb_partition_record_agent(fb_rec_val(rec), rec->val_len, &agent, &alen) < 0)
        alen = 0;
    return fb_partition_key_agent(key, klen, agent, alen, partition_cnt);
}
