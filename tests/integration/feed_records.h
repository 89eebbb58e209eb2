/*
 * feed_records.h -- produce fbpipe.v1.Record messages straight into a
 * Kafka topic, as the ingester writes them, for the router's tests and
 * router-bench: n events spread round-robin over `keys` access keys, each
 * key's events numbered in order, plaintext or encrypted; or, with
 * no_key, api.Event values without a Kafka key, as the Go version writes
 * them (nanoseconds in the timestamp's seconds, as its agents send). Never
 * used by fbpiped itself.
 */
#ifndef FB_FEED_RECORDS_H
#define FB_FEED_RECORDS_H

#include <stddef.h>
#include <stdint.h>

/* FEED_XCHACHA: the first version of XChaCha20-Poly1305 (older agents'
 * records), FEED_XCHACHA2: the second (cipher.h) */
typedef enum feed_cipher { FEED_PLAIN, FEED_XCHACHA, FEED_AESGCM, FEED_XCHACHA2 } feed_cipher_t;

typedef struct feed_opts {
    const char *brokers, *topic;
    const char *prefix;   /* access keys are <prefix><i>, or <prefix> when keys == 1 */
    unsigned keys;
    long n;               /* events in all */
    long start;           /* the first event number of each key */
    size_t pad;           /* messages padded with 'x' to this many bytes (0: none) */
    long rate;            /* about this many events a second (0: as fast as it goes) */
    const char *user_id;
    int no_key;           /* api.Event values, no Kafka key (FEED_AESGCM or FEED_PLAIN) */
    feed_cipher_t cipher;
    uint64_t epoch;       /* non-zero: records carry an identity (router.dedupe): agent_epoch
                           * epoch, batch_seq = number / batch, agent_seq = number % batch,
                           * number being the key's event number (start + j / keys) */
    unsigned batch;       /* events per batch with epoch (0: 100) */
    char key_id[65];
    uint8_t key[32];
    unsigned agents;      /* 0: every record from agent "feed"; else event j from
                           * agent "agent-<j / keys % agents>" */
    int key_agent;        /* partitioned as kafka.partition_by = key_agent
                           * (common/partition.h), else by the key */
    /* when set, called with each record as produced (router-bench) */
    void (*each)(const char *key, const uint8_t *rec, size_t len, void *arg);
    void *arg;
} feed_opts_t;

/* Event j goes to key j % keys and carries the message
 * {"k":"<key>","i":<start + j / keys>,"p":"xx..."}. Returns 0 once Kafka
 * acknowledged every record, or -1 with err. */
int feed_records(const feed_opts_t *o, char *err, size_t errlen);

#endif /* FB_FEED_RECORDS_H */
