/*
 * router_targets.h -- a router's destinations beyond files: the
 * [target NAME] sections of type s3, elasticsearch and http
 * (docs/router-targets.md).
 *
 * Each record of a key that names such a target is taken into that
 * target's queue in memory (a copy: its line, and the record itself for
 * the dead letters) and delivered by the target's own thread, so that a
 * store that hangs holds up nothing else: S3 objects cut by
 * the records (max_records, max_bytes, the records' own max_age) or, for
 * a quiet key, after flush_after; OpenSearch bulks of documents whose ids
 * are their topic, partition and offset; HTTP POSTs of a key's records
 * with an Idempotency-Key of their offsets. A record stays queued until
 * its target acknowledged it, and the router stores no offset of a
 * partition at or past the first record a target still holds
 * (fb_targets_hold): Kafka keeps every record until every target has it.
 *
 * A target that fails (the store's or the operator's doing: refused
 * connections, timeouts, 5xx, 429, credentials) is parked for a back-off
 * (1 s doubling to 60 s) and logged once per episode; the other targets
 * and the files flow on. Only a record the target refuses for itself (a
 * document the index mapping refuses, an object name the store refuses,
 * a POST of that record alone answered 400, 413 or 422) goes to the dead
 * letters, through the caller's callback. A target holding buffer_max
 * bytes makes fb_targets_full true: the caller stops reading meanwhile.
 *
 * S3 objects are made again the same after a crash: each (target, key,
 * partition) has a small file under router.dir/.targets/<target>/<key>/
 * with the last offset uploaded (its records are skipped when read
 * again) and, before an object cut by the wall clock is sent, where it
 * ends. The marks are trusted only for partitions the group has
 * committed an offset for (a topic made again has none).
 *
 * Never writes to files of keys or to the dead letters itself; never
 * stores offsets (the caller does, below the holds).
 */
#ifndef FB_ROUTER_TARGETS_H
#define FB_ROUTER_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/conf.h"
#include "common/metrics.h"
#include "router/router_line.h"

typedef struct fb_targets fb_targets_t;
typedef struct fb_target fb_target_t;

/* A record a target refused, whole, for the dead letters. */
typedef struct fb_target_refused {
    const char *target; /* the target's name */
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /* the record's Kafka timestamp (ms), -1 if none */
    const void *key;   /* NULL for a record without a Kafka key */
    size_t key_len;
    const void *value;
    size_t len;
    const rd_kafka_headers_t *headers; /* NULL if none */
    const char *access_key; /* the line's: its tenant */
    bool ledger;            /* the ledger counts this record at this target (see take) */
} fb_target_refused_t;

/* The caller's dead letter for a refused record: 0 once it is durable
 * (the target forgets the record), -1 when it could not be written (the
 * record stays and the target tries again later). */
typedef int (*fb_target_refuse_fn)(void *arg, const fb_target_refused_t *rec, const char *why);

/* Every remote target of conf, with clients made, credentials read and
 * delivery threads started; NULL with why in err (a configuration the
 * router cannot use). curl_global_init must have run. */
fb_targets_t *fb_targets_new(const fb_conf_t *conf, unsigned router_index, fb_mslot_t *metrics,
                             fb_target_refuse_fn cb, void *cb_arg, char *err, size_t errlen);
void fb_targets_free(fb_targets_t *ts);

/* The remote target named name, or NULL (file, or unknown). */
fb_target_t *fb_targets_find(fb_targets_t *ts, const char *name);

/* Queue m (whose line is line) for t; a record t has taken already (read
 * again after a roll back or a seek) or, for S3, uploaded already (its
 * mark) is skipped. ledger: the tenant's ledger counts the record written
 * when t delivers it (its key has no file target, and t is its first).
 * 0, or -1 out of memory. */
int fb_target_take(fb_target_t *t, const rd_kafka_message_t *m, const fb_line_t *line,
                   bool ledger);

/* The records the targets refused for themselves, each to the caller's
 * callback (the dead letters), then forgotten; one the callback could not
 * write stays, for the next call. Delivery itself runs in a thread per
 * target, started by fb_targets_new. */
void fb_targets_refusals(fb_targets_t *ts);

/* Stopping: S3 objects still being filled are cut now (and written
 * down first, as for flush_after), so that what is held can be delivered. */
void fb_targets_flush(fb_targets_t *ts);

/* The offset of the first record of (topic, partition) some target still
 * holds, or -1 when none holds any. */
int64_t fb_targets_hold(fb_targets_t *ts, const char *topic, int32_t partition);

/* Records queued, over all targets; with failing, the targets failing
 * now (parked after a failure, not yet delivering again). */
size_t fb_targets_pending(fb_targets_t *ts, size_t *failing);

/* true while a target holds buffer_max bytes or more. */
bool fb_targets_full(fb_targets_t *ts);

/* Partitions assigned: which have a committed offset (marks trusted). */
void fb_targets_assigned(fb_targets_t *ts, rd_kafka_t *rk,
                         const rd_kafka_topic_partition_list_t *parts);

/* Partitions revoked: every record of theirs forgotten (their next owner
 * reads them again from the offsets stored). */
void fb_targets_revoked(fb_targets_t *ts, const rd_kafka_topic_partition_list_t *parts);

#endif /* FB_ROUTER_TARGETS_H */
