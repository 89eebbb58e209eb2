/*
 * partition.h -- kafka.partition_by = key_agent: the partition of a record
 * from its tenant (the Kafka key, the access key) and its agent.
 *
 * partition = (murmur2(access_key || 0x00 || agent_id) & 0x7fffffff) mod
 * the topic's partition count, murmur2 being Kafka's own (the Java
 * client's Utils.murmur2, librdkafka's murmur2 partitioner), so that any
 * Kafka tool can tell where an agent's records go. Every record of one
 * agent lands on one partition (its order kept), the agents of a tenant
 * spread over the partitions. Records without an agent_id hash as an
 * empty one (one partition per tenant, as partition_by = key would).
 */
#ifndef FB_PARTITION_H
#define FB_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* The agent_id (field 2) of a packed fbpipe.v1.Record: 0 with *agent and
 * *len (0 when there is none), -1 when the bytes are not protobuf. Reads
 * nothing outside val[0..vlen). */
int fb_partition_record_agent(const uint8_t *val, size_t vlen, const uint8_t **agent, size_t *len);

/* The partition of (key, agent) among partition_cnt (> 0); see above. Key
 * and agent beyond FB_ACCESS_KEY_MAX and FB_AGENT_ID_MAX bytes (refused at
 * ingest) count up to those. */
int32_t fb_partition_key_agent(const void *key, size_t klen, const void *agent, size_t alen,
                               int32_t partition_cnt);

/* A librdkafka partitioner (rd_kafka_topic_conf_set_partitioner_cb) for
 * records whose message opaque is their fb_rec_t in the ring: the
 * partition of their key and the agent_id in their value. */
struct rd_kafka_topic_s;
int32_t fb_partition_rec_cb(const struct rd_kafka_topic_s *rkt, const void *key, size_t klen,
                            int32_t partition_cnt, void *rkt_opaque, void *msg_opaque);

#endif /* FB_PARTITION_H */
