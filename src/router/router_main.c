/*
 * router_main.c -- a router process: one Kafka consumer in router.group
 * on the topic, each batch of records turned into lines (router_line.c),
 * written to the per-key files (router_files.c), fsynced per router.fsync,
 * and queued for the remote targets its key names (router_targets.c);
 * the offsets stored are those of the records written, but never at or
 * past the first record a remote target still holds. Offsets are
 * committed periodically by librdkafka and synchronously before
 * partitions are revoked.
 *
 * A record that cannot be decoded, decrypted or named safely, or whose
 * file can never be written (a symbolic link, a directory), or that a
 * remote target refuses for itself, goes to
 * <router.dir>/.dead-letter/router-N.PID.log with the reason, topic,
 * partition and offset. A key whose file the router may not open
 * (permissions: the environment) is spooled in <router.dir>/.spool/<key>.log
 * and moved into its file when it opens again, so that the other keys of
 * its partitions keep flowing. Any other failed write keeps the batch,
 * pauses the partitions, logs once and retries with back-off: nothing is
 * lost, nothing is skipped. A failed sync rolls back instead: the files
 * are cut back to their checkpoint (where offsets were last stored) and
 * the partitions read again from those offsets, for the kernel may have
 * dropped the lines and a second sync would succeed without them. Files
 * are closed when partitions are revoked:
 * their next owner may rotate them. It must never store an offset before
 * its line is written and every remote target of its record has it.
 *
 * A record without a Kafka key is the Go version's: a dead letter naming
 * router.accept_legacy_records while it is off, read under the access key
 * it carries (router_line.c) while it is on. Either way it is logged
 * through the process's rate limiter: anyone who can write to the topic
 * can send such records.
 *
 * With router.dedupe, a record with an identity whose file holds (or
 * buffers) its line already is not written again (router_dedupe.c) but
 * counts as written for its offsets and its tenant's ledger; every path
 * that takes lines out of a file or a buffer unwritten (a roll back, a
 * refusal, another process taking the files: a revoke, SIGUSR1) forgets
 * the keys' sets, loaded again from the files when next needed.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <sodium.h>

#include "common/backoff.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/loaded.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/proc.h"
#include "router/router.h"
#include "router/router_dedupe.h"
#include "router/router_files.h"
#include "router/router_line.h"
#include "router/router_targets.h"

/* a batch: what the consumer has ready, up to this many records or bytes
 * of lines (one write per file and one sync per batch) */
#define BATCH_MAX 100000
#define BATCH_BYTES (32u << 20)
#define BATCH_WAIT_MS 100
#define POLL_MS 100
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 30000
#define SEEK_TIMEOUT_MS 10000
#define REFUSED_KEYS 64 /* keys whose refusals are counted apart; the rest together */
#define TARGETS_FULL_WAIT_MS 250 /* a target full: reading paused this long at a time */

/* records of one refused key sent to the dead letters since its last log
 * line: a key is logged at most once per FB_FILES_REFUSED_MS */
typedef struct refused_tally {
    char key[132];
    char why[512];
    unsigned long count;
    uint64_t logged_ms;
} refused_tally_t;

static volatile sig_atomic_t stop_requested, reopen_requested;

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        reopen_requested = 1;
    else
        stop_requested = 1;
}

typedef struct router {
    const fb_conf_t *conf;
    const fb_keydb_t *keydb;
    unsigned index;
    rd_kafka_t *rk;
    fb_files_t *files, *dead, *spool;
    fb_liner_t *liner;
    fb_dedupe_t *dedupe;   /* router.dedupe, or NULL */
    fb_targets_t *targets; /* s3, elasticsearch, http: NULL when none is configured */
    /* per partition, the offset after the last record written (files) or
     * queued (targets): stored, unless a target still holds an earlier one */
    rd_kafka_topic_partition_list_t *readpos;
    char dead_key[48];
    uint64_t last_sync_ms;
    bool unsynced; /* fsync = INTERVAL: written since the last sync */
    /* fsync = INTERVAL: offsets of lines written and not yet synced, stored
     * only after the sync that covers them */
    rd_kafka_topic_partition_list_t *held;
    /* per partition, the offset of its first record not stored: where a
     * roll back reads again from (the files' checkpoint covers the rest) */
    rd_kafka_topic_partition_list_t *from;
    fb_backoff_t rollback; /* the pause after a roll back, doubled while they recur */
    uint64_t last_rollback_ms;
    /* print_events: the batch's lines, written to stdout once it is written */
    fb_buf_t print;
    bool print_failed;
    unsigned long dead_letters;
    refused_tally_t refused[REFUSED_KEYS + 1]; /* the last: every other key */
    /* the batch being written: its offsets are stored once it is */
    rd_kafka_message_t *ms[BATCH_MAX];
    /* the length of ms[i]'s line while it is in files (0: dead lettered,
     * spooled, or taken back by a refusal) */
    size_t in_files[BATCH_MAX];
    size_t n;
    bool dropped; /* revoked before it could be written: never stored */
    bool transient; /* the consumer could not start for now */
    bool not_ready; /* router.dir cannot be written (yet) */
    bool restart;   /* records that must be read again could not be: exit 1 */
    bool dead_unsynced; /* a sync of a target's dead letter failed: roll back */
    /* the metrics: the batch's counts, added to the zone once it is
     * written, forgotten when it is rolled back (read again) */
    fb_mslot_t *metrics;
    int64_t *pend;        /* per tenant number: PEND_COLS columns */
    unsigned *pend_touched, n_touched, n_pend_tenants;
    int64_t pend_c[FB_MC_N]; /* the router's own counters, for this batch */
    uint64_t metrics_at;  /* monotonic ms: next look at assignment and lag */
} router_t;

/* the ledger's columns a router counts, in its pending tally */
#define PEND_COLS 4
static const fb_mt_t pend_col[PEND_COLS] = {FB_MT_WRITTEN, FB_MT_DEAD_LETTERED, FB_MT_SPOOLED,
                                            FB_MT_BYTES_WRITTEN};

static void store(router_t *r);
static void roll_back(router_t *r, bool seek);
static void pend(router_t *r, const char *key, size_t len, int col, fb_mc_t c, int64_t delta);
static void pend_end(router_t *r, bool commit);
static void print_flush(router_t *r);
static void dead_letter(router_t *r, const rd_kafka_message_t *m, const char *why);
static fb_line_err_t build(router_t *r, const rd_kafka_message_t *m, fb_line_t *line, char *why,
                           size_t whylen);
static bool line_of(router_t *r, const rd_kafka_message_t *m, fb_line_t *line);

/* of_key -- ms[i] is a record of key (a record without a Kafka key
 * names its key inside: built again; it built when taken). */
static bool
of_key(router_t *r, size_t i, const char *key, size_t len, fb_line_t *line)
{
    const rd_kafka_message_t *m = r->ms[i];
    char why[512];

    if (m->key != NULL && (m->key_len != len || memcmp(m->key, key, len) != 0))
        return false;
    if (build(r, m, line, why, sizeof(why)) != FB_LINE_OK)
        fb_panic("router %u: a record of the batch no longer builds (%s)", r->index, why);
    return strcmp(line->access_key, key) == 0;
}

/* refusals -- the records of keys whose file cannot be written (found by
 * the flush, which dropped the last lines buffered for them): to the
 * spool when permissions are at fault, to the dead letters when the name
 * is. Only the records whose lines were dropped move: the key's latest
 * ones still in files, as many as make the bytes dropped; the lines
 * before them are in the file already (a flush retried after another
 * key's failure, a reopen in between). */
static void
refusals(router_t *r)
{
    const char *key, *why;
    bool to_spool;
    size_t dropped;
    fb_line_t line;

    while ((key = fb_files_next_refusal(r->files, &why, &to_spool, &dropped)) != NULL) {
        size_t len = strlen(key), n = 0, first = r->n, found = 0;
        if (r->dedupe != NULL) /* its lines left the buffer unwritten */
            fb_dedupe_forget(r->dedupe, key);
        for (size_t i = r->n; i-- > 0 && found < dropped;) {
            if (r->in_files[i] != 0 && of_key(r, i, key, len, &line)) {
                found += r->in_files[i];
                first = i;
            }
        }
        if (found != dropped)
            fb_log_errorx("router %u: %s: the flush dropped %zu bytes of its lines, the batch "
                          "holds %zu: moving those (a fault of fbpipe's; please report it)",
                          r->index, key, dropped, found);
        for (size_t i = first; i < r->n; i++) {
            const rd_kafka_message_t *m = r->ms[i];
            if (r->in_files[i] == 0 || !of_key(r, i, key, len, &line))
                continue;
            r->in_files[i] = 0;
            /* counted as written when taken: moved */
            pend(r, key, len, 0, FB_MC_RECORDS_WRITTEN, -1);
            pend(r, key, len, 3, FB_MC_BYTES_WRITTEN, -(int64_t)line.len);
            if (to_spool) {
                if (fb_files_add(r->spool, line.access_key, line.text, line.len) < 0)
                    fb_panic("router %u: out of memory buffering a spooled line", r->index);
                pend(r, key, len, 2, FB_MC_SPOOLED, 1);
            } else {
                dead_letter(r, m, why);
                pend(r, key, len, 1, FB_MC_DEAD_LETTERS_REFUSED, 1);
            }
            n++;
        }
        if (to_spool)
            fb_log_errorx("router %u: %s: %zu records spooled in %s/.spool, the other keys "
                          "flow on (the file is tried again in %d s or on SIGUSR1)",
                          r->index, why, n, r->conf->router_dir, FB_FILES_REFUSED_MS / 1000);
        else
            fb_log_errorx("router %u: %s: %zu records to the dead letters (the key is tried "
                          "again in %d s or on SIGUSR1)",
                          r->index, why, n, FB_FILES_REFUSED_MS / 1000);
    }
}

/* stored -- the offsets in l are stored: what is written is the files'
 * checkpoint, and a roll back reads again from these offsets. */
static void
stored(router_t *r, const rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_offsets_store(r->rk, (rd_kafka_topic_partition_list_t *)l);
    fb_files_checkpoint(r->files);
    fb_files_checkpoint(r->dead);
    fb_files_checkpoint(r->spool);
    if (r->from == NULL)
        return;
    /* the files hold everything read so far: a roll back reads again from
     * there, not from the offsets a target holds back (it has them) */
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(r->from, l->elems[i].topic, l->elems[i].partition);
        const rd_kafka_topic_partition_t *rp =
            r->readpos ? rd_kafka_topic_partition_list_find(r->readpos, l->elems[i].topic,
                                                            l->elems[i].partition)
                       : NULL;
        if (p != NULL)
            p->offset = rp != NULL ? rp->offset : l->elems[i].offset;
    }
}

/* note_from -- m joins the batch: the first record of its partition
 * since the assignment is where a roll back reads again from, until an
 * offset is stored for it. */
static void
note_from(router_t *r, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);

    if (r->from == NULL && (r->from = rd_kafka_topic_partition_list_new(8)) == NULL)
        fb_panic("router %u: out of memory", r->index);
    if (rd_kafka_topic_partition_list_find(r->from, topic, m->partition) == NULL)
        rd_kafka_topic_partition_list_add(r->from, topic, m->partition)->offset = m->offset;
}

/* release_held -- fsync = INTERVAL: the offsets whose lines a sync
 * covered are stored now (a partition revoked meanwhile is refused). */
static void
release_held(router_t *r)
{
    if (r->held == NULL) {
        fb_files_checkpoint(r->files); /* nothing held: nothing written either */
        fb_files_checkpoint(r->dead);
        fb_files_checkpoint(r->spool);
        return;
    }
    stored(r, r->held);
    rd_kafka_topic_partition_list_destroy(r->held);
    r->held = NULL;
}

/* sync_now -- fsync = INTERVAL: sync what was written and store the
 * offsets it covers; 0, or FB_FILES_UNSYNCED with err (roll back). */
static int
sync_now(router_t *r, char *err, size_t errlen)
{
    if (r->unsynced &&
        (fb_files_sync(r->files, err, errlen) < 0 || fb_files_sync(r->dead, err, errlen) < 0 ||
         fb_files_sync(r->spool, err, errlen) < 0))
        return FB_FILES_UNSYNCED;
    r->last_sync_ms = fb_monotonic_ms();
    r->unsynced = false;
    release_held(r);
    return 0;
}

/* interval_sync -- fsync = INTERVAL: everything written since the last
 * sync reaches the disk once the interval has passed, and only then are
 * its offsets stored; 0, or FB_FILES_UNSYNCED with err. */
static int
interval_sync(router_t *r, char *err, size_t errlen)
{
    if (r->conf->fsync != FB_FSYNC_INTERVAL)
        return 0;
    if (r->unsynced && fb_monotonic_ms() - r->last_sync_ms < r->conf->fsync_interval_ms)
        return 0;
    return sync_now(r, err, errlen);
}

/* sync_before_commit -- a revoke or a stop: with fsync = INTERVAL, what
 * was written is synced and its offsets stored now, or the files are cut
 * back and the offsets dropped (read again by the partitions' next
 * owner). */
static void
sync_before_commit(router_t *r)
{
    char err[512];

    if (r->conf->fsync != FB_FSYNC_INTERVAL || sync_now(r, err, sizeof(err)) == 0)
        return;
    fb_log_errorx("router %u: %s; the files are cut back to their last sync and the offsets "
                  "since not stored: the records are read again", r->index, err);
    roll_back(r, false);
}

/* flush_all -- write (and fsync per router.fsync) everything buffered;
 * 0, or -1 (FB_FILES_UNSYNCED: roll back) after logging the first
 * failure. */
static int
flush_all(router_t *r, bool *logged)
{
    char err[512];
    bool sync = r->conf->fsync == FB_FSYNC_BATCH;
    bool wrote = fb_files_pending(r->files) + fb_files_pending(r->dead) +
                     fb_files_pending(r->spool) > 0;
    /* the spool first: a key's file, when it opens, takes in what its
     * spool holds before its new lines */
    int rc = fb_files_flush(r->spool, sync, err, sizeof(err));

    if (rc == 0)
        rc = fb_files_flush(r->files, sync, err, sizeof(err));
    refusals(r); /* even when another key failed: their lines are gone */
    if (rc == 0)
        rc = fb_files_flush(r->spool, sync, err, sizeof(err));
    if (rc == 0)
        rc = fb_files_flush(r->dead, sync, err, sizeof(err));
    /* a spool file moved into its key's file is removed: never append to
     * it through a descriptor kept open */
    fb_files_reopen(r->spool);
    r->unsynced |= wrote;
    if (rc == 0)
        return 0;
    if (rc == FB_FILES_UNSYNCED)
        fb_log_errorx("router %u: %s; the files are cut back to their last sync and the "
                      "records since read again", r->index, err);
    else if (logged == NULL || !*logged)
        fb_log_errorx("router %u: %s; offsets not stored, retrying", r->index, err);
    if (logged != NULL)
        *logged = true;
    return rc;
}

/* roll_back -- a sync failed: what was written since the checkpoint may
 * never reach the disk, though a later sync succeeds. Every file is cut
 * back to the checkpoint, the batch and the held offsets dropped, and
 * (seek) every partition read again from its first record not stored; a
 * seek refused ends the process (its successor reads from the commit). */
static void
roll_back(router_t *r, bool seek)
{
    char err[512];
    fb_files_t *all[] = {r->files, r->dead, r->spool};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (fb_files_rollback(all[i], err, sizeof(err)) < 0)
            fb_log_errorx("router %u: %s", r->index, err);
    /* the identities of the lines cut and dropped go with them: the sets
     * are loaded again from the files as they are now */
    if (r->dedupe != NULL)
        fb_dedupe_forget_all(r->dedupe);
    if (r->held != NULL) {
        rd_kafka_topic_partition_list_destroy(r->held);
        r->held = NULL;
    }
    r->unsynced = false;
    r->print.len = 0; /* not written: not printed */
    pend_end(r, false); /* read again: counted then */
    /* read up to where the files were cut back to: nothing beyond is
     * stored before it is written again */
    for (int i = 0; r->readpos != NULL && i < r->readpos->cnt; i++) {
        rd_kafka_topic_partition_t *rp = &r->readpos->elems[i];
        const rd_kafka_topic_partition_t *f =
            r->from ? rd_kafka_topic_partition_list_find(r->from, rp->topic, rp->partition)
                    : NULL;
        if (f != NULL && f->offset >= 0 && f->offset < rp->offset)
            rp->offset = f->offset;
    }
    for (size_t i = 0; i < r->n; i++)
        rd_kafka_message_destroy(r->ms[i]);
    r->n = 0;
    if (!seek || r->from == NULL || r->from->cnt == 0)
        return;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(r->rk, r->from, SEEK_TIMEOUT_MS);
    bool failed = e != NULL;
    if (e != NULL) {
        fb_log_errorx("router %u: cannot read the records again: %s; restarting", r->index,
                      rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    for (int i = 0; !failed && i < r->from->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &r->from->elems[i];
        if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fb_log_errorx("router %u: cannot read partition %d again from offset %lld: %s; "
                          "restarting", r->index, (int)p->partition, (long long)p->offset,
                          rd_kafka_err2str(p->err));
            failed = true;
        }
    }
    if (failed) {
        stop_requested = 1;
        r->restart = true;
        return;
    }
    /* recurring failures wait longer each time: a disk that keeps failing
     * is not read from and written to in a loop */
    uint64_t now = fb_monotonic_ms();
    if (now - r->last_rollback_ms > BACKOFF_MAX_MS * 2)
        fb_backoff_reset(&r->rollback); /* the last one is long past: start afresh */
    fb_backoff_next(&r->rollback);
    r->last_rollback_ms = now;
}

/* rebalance -- flush and commit before partitions are taken away. */
static void
rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
          void *opaque)
{
    router_t *r = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        char list[256] = "";
        size_t at = 0;
        for (int i = 0; i < parts->cnt && at < sizeof(list) - 16; i++)
            at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%d", i ? "," : "",
                                   (int)parts->elems[i].partition);
        fb_log_info("router %u: %d partitions assigned (%s)", r->index, parts->cnt, list);
        if (r->targets != NULL)
            fb_targets_assigned(r->targets, rk, parts);
        rd_kafka_assign(rk, parts);
        return;
    }
    /* revoked: write what is buffered and store its offsets if we can;
     * if not, drop it, so that its next owner alone writes it (read again
     * from the last commit); then commit and let go */
    if (flush_all(r, NULL) == 0) {
        store(r);
        sync_before_commit(r);
        print_flush(r);
    } else {
        fb_log_warnx("router %u: %zu records not written before a rebalance: the files are "
                     "cut back to what is stored and their next owner reads them again",
                     r->index, r->n);
        roll_back(r, false);
    }
    if (r->from != NULL) {
        rd_kafka_topic_partition_list_destroy(r->from);
        r->from = NULL;
    }
    r->dropped = true; /* the main loop neither writes nor stores the batch again */
    rd_kafka_commit(rk, NULL, 0);
    /* what the targets still hold is read again by the partitions' next
     * owner, from the offsets just committed */
    if (r->targets != NULL)
        fb_targets_revoked(r->targets, parts);
    if (r->readpos != NULL) {
        rd_kafka_topic_partition_list_destroy(r->readpos);
        r->readpos = NULL;
    }
    /* the next owner of these keys may write and rotate their files: a
     * descriptor kept would write into a rotated (or removed) file and a
     * stale size, when the partitions come back */
    fb_files_reopen(r->files);
    if (r->dedupe != NULL)
        fb_dedupe_forget_all(r->dedupe);
    rd_kafka_assign(rk, NULL);
    fb_log_info("router %u: partitions revoked", r->index);
}

/* b64 -- base64 (standard, padded) of len bytes as a JSON string, or
 * JSON null for no bytes at all (NULL); NULL when out of memory. */
static json_t *
b64(const void *p, size_t len)
{
    size_t cap;
    char *text;
    json_t *j;

    if (p == NULL)
        return json_null();
    cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    if ((text = malloc(cap)) == NULL)
        return NULL;
    sodium_bin2base64(text, cap, p, len, sodium_base64_VARIANT_ORIGINAL);
    j = json_string(text);
    free(text);
    return j;
}

/* letter_headers -- the record's headers as [{"name", "value"}], base64
 * values (null for a header without one); NULL when out of memory. */
static json_t *
letter_headers(const rd_kafka_headers_t *hdrs)
{
    json_t *a = json_array();
    const char *name;
    const void *val;
    size_t len;

    if (a == NULL || hdrs == NULL)
        return a;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        json_t *h = json_pack("{s:s%, s:o}", "name", name, strlen(name), "value", b64(val, len));
        if (h == NULL || json_array_append_new(a, h) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* dead_letter -- one refused record, whole (key, value, headers, topic,
 * partition, offset, timestamp), with the reason and when: enough for
 * `fbpiped replay` to put it back once the cause is fixed. Out of memory
 * aborts: the records are read again from the last commit, never lost. */
static void
dead_letter_of(router_t *r, const fb_target_refused_t *m, const char *why)
{
    char now[40];
    int64_t ns = fb_wall_ns();
    time_t sec = (time_t)(ns / 1000000000);
    struct tm tm;
    int64_t ts = m->timestamp;

    gmtime_r(&sec, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(now + strlen(now), sizeof(now) - strlen(now), ".%09lldZ",
             (long long)(ns % 1000000000));
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:o, s:o, s:o}", "reason", why,
                          "time", now, "topic", m->topic, "partition",
                          (int)m->partition, "offset", (json_int_t)m->offset, "timestamp",
                          (json_int_t)ts, "key", b64(m->key, m->key_len), "value",
                          b64(m->value ? m->value : "", m->len), "headers",
                          letter_headers(m->headers));
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    size_t len = text ? strlen(text) : 0;

    if (text == NULL)
        fb_panic("router %u: cannot write the dead letter of %s [%d] at %lld (%s)", r->index,
                 m->topic, (int)m->partition, (long long)m->offset,
                 o ? "out of memory" : "out of memory, or a reason not valid UTF-8");
    text[len] = '\n';
    if (fb_files_add(r->dead, r->dead_key, text, len + 1) < 0)
        fb_panic("router %u: out of memory buffering a dead letter", r->index);
    r->dead_letters++;
    free(text);
    json_decref(o);
}

/* dead_letter -- a record of the batch to the dead letters. */
static void
dead_letter(router_t *r, const rd_kafka_message_t *m, const char *why)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t tstype;
    fb_target_refused_t f = {.topic = rd_kafka_topic_name(m->rkt), .partition = m->partition,
                             .offset = m->offset,
                             .timestamp = rd_kafka_message_timestamp(m, &tstype),
                             .key = m->key, .key_len = m->key_len, .value = m->payload,
                             .len = m->len};

    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        f.headers = hdrs;
    dead_letter_of(r, &f, why);
}

/* target_refused -- a record a target refused for itself: its dead
 * letter written and synced now, before the target forgets it (and its
 * offset may be stored); -1 when that failed (the target keeps it). */
static int
target_refused(void *arg, const fb_target_refused_t *rec, const char *why)
{
    router_t *r = arg;
    char err[512];

    dead_letter_of(r, rec, why);
    int rc = fb_files_flush(r->dead, r->conf->fsync != FB_FSYNC_NONE, err, sizeof(err));
    if (rc == FB_FILES_UNSYNCED)
        r->dead_unsynced = true; /* what the flush wrote may be lost: the main loop rolls back */
    if (rc < 0) {
        /* tried again after every batch: said once in a while */
        fb_log_limited(FB_LOG_ERROR, "dead letter of a target not written",
                       "router %u: %s; the record stays with its target", r->index, err);
        return -1; /* written again with the target's next try: twice rather than never */
    }
    /* on disk: never cut back by a roll back, for the target forgets the
     * record now (a record of the batch read again may be a dead letter
     * twice) */
    fb_files_checkpoint(r->dead);
    fb_log_limited(FB_LOG_WARNING, "record refused by a target",
                   "router %u: %s [%d] at offset %lld to the dead letters: %s", r->index,
                   rec->topic, (int)rec->partition, (long long)rec->offset, why);
    fb_metrics_add(r->metrics, FB_MC_DEAD_LETTERS_TARGET, 1);
    if (rec->ledger) /* not written anywhere: its tenant's ledger says where it is */
        fb_metrics_tenant_add(r->metrics, fb_metrics_tenant(fb_metrics_zone(), rec->access_key,
                                                             strlen(rec->access_key)),
                              FB_MT_DEAD_LETTERED, 1);
    return 0;
}

/* tally_refused -- one more record of a refused key's to the dead letters. */
static void
tally_refused(router_t *r, const char *key, const char *why)
{
    refused_tally_t *t = &r->refused[REFUSED_KEYS];

    for (size_t i = 0; i < REFUSED_KEYS; i++) {
        if (strcmp(r->refused[i].key, key) == 0 || r->refused[i].key[0] == '\0') {
            t = &r->refused[i];
            break;
        }
    }
    if (t->key[0] == '\0')
        snprintf(t->key, sizeof(t->key), "%s", t == &r->refused[REFUSED_KEYS] ? "*" : key);
    snprintf(t->why, sizeof(t->why), "%s", why);
    t->count++;
}

/* log_refused -- after a batch: each refused key once per refusal period,
 * with the records sent to the dead letters since its last line. */
static void
log_refused(router_t *r)
{
    uint64_t now = fb_monotonic_ms();

    for (size_t i = 0; i <= REFUSED_KEYS; i++) {
        refused_tally_t *t = &r->refused[i];
        if (t->count == 0 || (t->logged_ms != 0 && now - t->logged_ms < FB_FILES_REFUSED_MS))
            continue;
        if (i == REFUSED_KEYS)
            fb_log_errorx("router %u: %lu records of other refused keys to the dead letters "
                          "(the last: %s)", r->index, t->count, t->why);
        else
            fb_log_errorx("router %u: %s: %lu records to the dead letters (the key is tried "
                          "again in %d s or on SIGUSR1)", r->index, t->why, t->count,
                          FB_FILES_REFUSED_MS / 1000);
        t->count = 0;
        t->logged_ms = now;
    }
}

/* pend -- delta in key's column col (records: 0 written, 1 dead
 * lettered, 2 spooled; 3 bytes written) and in the router's counter c,
 * for the batch. */
static void
pend(router_t *r, const char *key, size_t len, int col, fb_mc_t c, int64_t delta)
{
    fb_metrics_t *z = fb_metrics_zone();
    unsigned t;

    if (z == NULL)
        return;
    if (c != FB_MC_N)
        r->pend_c[c] += delta;
    if (r->pend == NULL) {
        r->n_pend_tenants = (unsigned)r->conf->metrics_max_tenants + 1;
        r->pend = calloc((size_t)r->n_pend_tenants * PEND_COLS, sizeof(*r->pend));
        r->pend_touched = calloc(r->n_pend_tenants, sizeof(*r->pend_touched));
        if (r->pend == NULL || r->pend_touched == NULL)
            fb_panic("router %u: out of memory for the metrics tally", r->index);
    }
    t = fb_metrics_tenant(z, key, len);
    if (t >= r->n_pend_tenants)
        return;
    bool fresh = true;
    for (int k = 0; k < PEND_COLS; k++)
        fresh &= r->pend[(size_t)t * PEND_COLS + k] == 0;
    if (fresh)
        r->pend_touched[r->n_touched++] = t;
    r->pend[(size_t)t * PEND_COLS + col] += delta;
}

/* pend_end -- the batch is written (commit) or read again (forget). */
static void
pend_end(router_t *r, bool commit)
{
    for (unsigned i = 0; i < r->n_touched; i++) {
        unsigned t = r->pend_touched[i];
        for (int k = 0; k < PEND_COLS; k++) {
            int64_t *v = &r->pend[(size_t)t * PEND_COLS + k];
            if (commit && *v > 0)
                fb_metrics_tenant_add(r->metrics, t, pend_col[k], (uint64_t)*v);
            *v = 0;
        }
    }
    r->n_touched = 0;
    for (int c = 0; c < FB_MC_N; c++) {
        if (commit && r->pend_c[c] > 0)
            fb_metrics_add(r->metrics, (fb_mc_t)c, (uint64_t)r->pend_c[c]);
        r->pend_c[c] = 0;
    }
}

/* watch_assignment -- every few seconds: partitions assigned, how many
 * records each is behind its end (the cached high watermarks), and what
 * the spool holds. */
static void
watch_assignment(router_t *r)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    uint64_t now = fb_monotonic_ms(), lag = 0, held[FB_METRICS_PARTITIONS] = {0};
    uint64_t spool_bytes, spool_files;

    if (r->metrics == NULL || now < r->metrics_at || r->rk == NULL)
        return;
    r->metrics_at = now + 5000;
    if (r->targets != NULL) {
        size_t failing, pending = fb_targets_pending(r->targets, &failing);
        fb_metrics_set(r->metrics, FB_MC_TARGET_PENDING, pending);
        fb_metrics_set(r->metrics, FB_MC_TARGET_FAILING, failing);
    }
    if (r->dedupe != NULL)
        fb_metrics_set(r->metrics, FB_MC_DEDUPE_MEMORY, fb_dedupe_memory(r->dedupe));
    if (fb_files_usage(r->spool, &spool_bytes, &spool_files) == 0) {
        fb_metrics_set(r->metrics, FB_MC_SPOOL_BYTES, spool_bytes);
        fb_metrics_set(r->metrics, FB_MC_SPOOL_FILES, spool_files);
    }
    if (rd_kafka_assignment(r->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return;
    rd_kafka_position(r->rk, parts);
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo, hi, behind;
        if (rd_kafka_get_watermark_offsets(r->rk, p->topic, p->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
            continue; /* not fetched yet: unknown, not shown */
        if (p->offset >= 0)
            behind = hi > p->offset ? hi - p->offset : 0;
        else if (hi == lo)
            behind = 0; /* nothing consumed here yet, and nothing to consume */
        else
            continue; /* no position yet: unknown, not shown as 0 */
        lag += (uint64_t)behind;
        if (p->partition >= 0 && p->partition < FB_METRICS_PARTITIONS)
            held[p->partition] = 1 + (uint64_t)behind;
    }
    for (int p = 0; p < FB_METRICS_PARTITIONS; p++)
        fb_metrics_set(r->metrics, (fb_mc_t)(FB_MC_PARTITION_LAG + p), held[p]);
    fb_metrics_set(r->metrics, FB_MC_ASSIGNED, (uint64_t)parts->cnt);
    fb_metrics_set(r->metrics, FB_MC_CONSUMER_LAG, lag);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* build -- m's JSON line (router_line.c) with the router's settings;
 * nothing else. A record without a Kafka key at all (NULL, not an empty
 * one) is the Go version's. */
static fb_line_err_t
build(router_t *r, const rd_kafka_message_t *m, fb_line_t *line, char *why, size_t whylen)
{
    unsigned flags = (r->conf->router_decrypt ? FB_LINE_F_DECRYPT : 0u) |
                     (r->conf->router_accept_legacy ? FB_LINE_F_LEGACY : 0u) |
                     (r->conf->router_dedupe ? FB_LINE_F_ID : 0u);

    return fb_line_build(r->liner, m->payload, m->len, (const char *)m->key,
                         m->key ? m->key_len : 0, r->keydb, flags, line, why, whylen);
}

/* line_of -- m as its JSON line; false after sending it to the dead
 * letters (undecodable, undecryptable, an unsafe name, no key while
 * router.accept_legacy_records is off). Records without a key are
 * logged, rate-limited: whoever writes to the topic chooses them. */
static bool
line_of(router_t *r, const rd_kafka_message_t *m, fb_line_t *line)
{
    char why[512];
    fb_line_err_t err = build(r, m, line, why, sizeof(why));

    if (err == FB_LINE_OK) {
        if (line->unauthenticated)
            fb_log_limited(FB_LOG_NOTICE, "record without a key written",
                           "router %u: a record without a key (%s [%d] at offset %lld) written "
                           "to %s.log, marked unauthenticated (router.accept_legacy_records)",
                           r->index, rd_kafka_topic_name(m->rkt), (int)m->partition,
                           (long long)m->offset, line->access_key);
        return true;
    }
    dead_letter(r, m, why);
    pend(r, m->key ? m->key : "", m->key ? m->key_len : 0, 1, FB_MC_DEAD_LETTERS_UNREADABLE, 1);
    if (m->key == NULL)
        fb_log_limited(FB_LOG_WARNING,
                       err == FB_LINE_LEGACY_OFF ? "record without a key: setting off"
                                                 : "record without a key refused",
                       "router %u: %s [%d] at offset %lld to the dead letters: %s", r->index,
                       rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
                       why);
    return false;
}

/* print_add -- a written line, for standard output. */
static void
print_add(router_t *r, const char *text, size_t len)
{
    if (fb_buf_put(&r->print, text, len) < 0)
        fb_panic("router %u: out of memory buffering printed lines", r->index);
}

/* print_flush -- the batch's lines to standard output, shared with the
 * other processes: whole lines per write, at most PIPE_BUF bytes unless a
 * line is longer, so that no line is cut by another's (a pipe keeps such
 * writes whole). A failed write is logged once and printing goes on. */
static void
print_flush(router_t *r)
{
    size_t at = 0;

    while (at < r->print.len) {
        const char *p = r->print.data + at, *nl;
        size_t n = r->print.len - at;
        if (n > PIPE_BUF) { /* the whole lines within PIPE_BUF, or the one longer line */
            nl = memrchr(p, '\n', PIPE_BUF);
            if (nl == NULL)
                nl = memchr(p + PIPE_BUF, '\n', n - PIPE_BUF);
            n = nl ? (size_t)(nl - p) + 1 : n;
        }
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!r->print_failed)
                fb_log_warn("router %u: write(stdout) of printed events failed", r->index);
            r->print_failed = true;
            break;
        }
        at += (size_t)w;
    }
    r->print.len = 0;
}

/* to_targets -- the line of m to each remote target its key names; true
 * when the key names the file target too. A key of the key database
 * that names none, or a key it does not hold, has [router] targets. */
static bool
to_targets(router_t *r, const rd_kafka_message_t *m, const fb_line_t *line)
{
    if (r->targets == NULL)
        return true; /* no [target] configured: every key's list is "file" */
    const fb_tenant_t *t =
        r->keydb ? fb_keydb_find(r->keydb, line->access_key, strlen(line->access_key)) : NULL;
    char *const *names = r->conf->router_targets;
    size_t n = r->conf->n_router_targets;
    bool file = false, first = true;

    if (t != NULL && t->n_targets > 0) {
        names = t->targets;
        n = t->n_targets;
    }
    if (n == 0)
        return true; /* no list at all: files, as before targets existed */
    for (size_t i = 0; i < n; i++)
        file |= strcmp(names[i], "file") == 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "file") == 0)
            continue;
        fb_target_t *tg = fb_targets_find(r->targets, names[i]);
        if (tg == NULL) /* the configuration's checks refuse this */
            fb_panic("router %u: %s names target \"%s\", which is not configured",
                     r->index, line->access_key, names[i]);
        /* the ledger counts a record written once: at its file, or else
         * at its first target */
        bool ledger = !file && first;
        first = false;
        if (fb_target_take(tg, m, line, ledger) < 0)
            fb_panic("router %u: out of memory queueing a record for target %s", r->index,
                     names[i]);
    }
    return file;
}

/* duplicate -- router.dedupe: line's file holds or buffers it already
 * (see router_dedupe.h); it counts as written in its tenant's ledger (it
 * is in its file: the gap "not yet written" closes) and as a duplicate.
 * A record without an identity, or one the set has no memory for, is
 * written (at least once). */
static bool
duplicate(router_t *r, const fb_line_t *line, size_t klen)
{
    fb_dedupe_id_t id = {.epoch = line->epoch, .seq = line->seq, .index = line->index};
    uint64_t lines, bytes;

    if (!line->has_id) {
        r->pend_c[FB_MC_DEDUPE_NO_ID]++;
        return false;
    }
    if (!fb_dedupe_loaded(r->dedupe, line->access_key)) {
        if (fb_dedupe_load(r->dedupe, r->files, line->access_key, &lines, &bytes) < 0) {
            fb_log_limited(FB_LOG_ERROR, "dedupe: out of memory",
                           "router %u: %s: out of memory loading its identities: its records "
                           "are written without deduplication", r->index, line->access_key);
            return false;
        }
        fb_metrics_add(r->metrics, FB_MC_DEDUPE_LOADS, 1);
        fb_log_debug("router %u: %s: identities loaded from its last %llu lines (%llu bytes)",
                     r->index, line->access_key, (unsigned long long)lines,
                     (unsigned long long)bytes);
    }
    switch (fb_dedupe_check(r->dedupe, line->access_key, &id)) {
    case FB_DEDUPE_DUP:
        pend(r, line->access_key, klen, 0, FB_MC_DUPLICATES_DROPPED, 1);
        return true;
    case FB_DEDUPE_NEW:
        return false;
    default:
        fb_log_limited(FB_LOG_ERROR, "dedupe: out of memory",
                       "router %u: %s: out of memory for an identity: its record is written "
                       "without deduplication", r->index, line->access_key);
        return false;
    }
}

/* take -- one record into its file's buffer, or the dead letters, or
 * the spool, and into the queues of its remote targets; the length of
 * its line when into its file's buffer, else 0. */
static size_t
take(router_t *r, const rd_kafka_message_t *m)
{
    fb_line_t line;
    char why[512];
    size_t in_files = 0;

    if (!line_of(r, m, &line))
        return 0;
    size_t klen = strlen(line.access_key);
    if (!to_targets(r, m, &line)) {
        if (r->conf->router_print_events)
            print_add(r, line.text, line.len);
        return 0;
    }
    switch (fb_files_refused(r->files, line.access_key, why, sizeof(why))) {
    case FB_FILES_DEAD:
        dead_letter(r, m, why);
        tally_refused(r, line.access_key, why);
        pend(r, line.access_key, klen, 1, FB_MC_DEAD_LETTERS_REFUSED, 1);
        return 0;
    case FB_FILES_SPOOL:
        /* up to spool_max; past it, its file again: a refusal there is
         * retried with the partitions paused, nothing dropped */
        if (fb_files_key_bytes(r->spool, line.access_key) < r->conf->spool_max) {
            if (fb_files_add(r->spool, line.access_key, line.text, line.len) < 0)
                fb_panic("router %u: out of memory buffering a spooled line", r->index);
            pend(r, line.access_key, klen, 2, FB_MC_SPOOLED, 1);
            break;
        }
        /* fall through */
    default:
        if (r->dedupe != NULL && duplicate(r, &line, klen))
            return 0; /* its line is in its file already: neither written nor printed */
        if (fb_files_add(r->files, line.access_key, line.text, line.len) < 0)
            fb_panic("router %u: out of memory buffering a line", r->index);
        pend(r, line.access_key, klen, 0, FB_MC_RECORDS_WRITTEN, 1);
        pend(r, line.access_key, klen, 3, FB_MC_BYTES_WRITTEN, (int64_t)line.len);
        in_files = line.len;
    }
    if (r->conf->router_print_events)
        print_add(r, line.text, line.len);
    return in_files;
}

/* poll_one -- a polled message into the batch. After a revoke the old
 * batch is over (written and stored, or dropped) and a new one begins; a
 * message that does not fit is read again (seek back), never skipped. */
static void
poll_one(router_t *r, rd_kafka_message_t *m)
{
    if (r->dropped) {
        for (size_t i = 0; i < r->n; i++)
            rd_kafka_message_destroy(r->ms[i]);
        r->n = 0;
        r->dropped = false;
    }
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            fb_log_warnx("router %u: %s", r->index, rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return;
    }
    if (r->n == BATCH_MAX) {
        rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
        rd_kafka_message_destroy(m);
        return;
    }
    r->in_files[r->n] = take(r, m);
    note_from(r, m);
    r->ms[r->n++] = m;
}

/* store_offsets -- each partition's offset after its last record read,
 * or the first record a target still holds when that is earlier: Kafka
 * keeps every record until every target has it. */
static void
store_offsets(router_t *r)
{
    rd_kafka_topic_partition_list_t *l;

    if (r->readpos == NULL || r->readpos->cnt == 0)
        return;
    if ((l = rd_kafka_topic_partition_list_copy(r->readpos)) == NULL)
        fb_panic("router %u: out of memory", r->index);
    for (int i = 0; r->targets != NULL && i < l->cnt; i++) {
        int64_t hold = fb_targets_hold(r->targets, l->elems[i].topic, l->elems[i].partition);
        if (hold >= 0 && hold < l->elems[i].offset)
            l->elems[i].offset = hold;
    }
    if (r->conf->fsync == FB_FSYNC_INTERVAL) { /* stored after the next sync */
        if (r->held == NULL) {
            r->held = l;
            return;
        }
        for (int i = 0; i < l->cnt; i++) {
            rd_kafka_topic_partition_t *h = rd_kafka_topic_partition_list_find(
                r->held, l->elems[i].topic, l->elems[i].partition);
            if (h == NULL)
                h = rd_kafka_topic_partition_list_add(r->held, l->elems[i].topic,
                                                      l->elems[i].partition);
            if (l->elems[i].offset > h->offset)
                h->offset = l->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    /* a partition revoked meanwhile is refused here, and read again by
     * its next owner */
    stored(r, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* store -- the batch is written (files) and queued (targets): where its
 * partitions are read up to, and the offsets that allows. */
static void
store(router_t *r)
{
    if (r->n == 0 || r->dropped)
        return;
    if (r->readpos == NULL && (r->readpos = rd_kafka_topic_partition_list_new(8)) == NULL)
        fb_panic("router %u: out of memory", r->index);
    for (size_t i = 0; i < r->n; i++) {
        const rd_kafka_message_t *m = r->ms[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(r->readpos, topic, m->partition);
        if (p == NULL)
            p = rd_kafka_topic_partition_list_add(r->readpos, topic, m->partition);
        if (m->offset + 1 > p->offset)
            p->offset = m->offset + 1;
    }
    store_offsets(r);
}

/* consumer -- the group's consumer on the topic; NULL after logging. */
static rd_kafka_t *
consumer(router_t *r)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics;
    char err[512];
    rd_kafka_t *rk;
    struct {
        const char *k, *v;
    } set[] = {
        {"bootstrap.servers", r->conf->brokers},
        {"group.id", r->conf->router_group},
        {"enable.auto.commit", "true"},
        {"enable.auto.offset.store", "false"}, /* stored after the write only */
        {"auto.offset.reset", "earliest"},
        {"auto.commit.interval.ms", "1000"},
        /* a router killed with SIGKILL gives its partitions back after this */
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "2000"},
        /* fetch ahead enough for a whole batch (BATCH_MAX) while one is written */
        {"max.partition.fetch.bytes", "4194304"},
        {"queued.min.messages", "200000"},
    };

    /* [librdkafka] (security, tuning) first, so that these win: conf.c
     * refuses the ones they set */
    if (fb_kafka_conf_passthrough(kc, r->conf) < 0) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        if (rd_kafka_conf_set(kc, set[i].k, set[i].v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fb_log_errorx("router %u: %s: %s", r->index, set[i].k, err);
            rd_kafka_conf_destroy(kc);
            return NULL;
        }
    rd_kafka_conf_set_opaque(kc, r);
    rd_kafka_conf_set_rebalance_cb(kc, rebalance);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (rk == NULL) {
        fb_log_errorx("router %u: rd_kafka_new: %s", r->index, err);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    /* the topic, created as the producer would if the routers come first
     * (a subscription to a missing topic waits for a metadata refresh) */
    if (fb_kafka_topic_ensure(rk, r->conf, 30000, NULL) < 0) {
        rd_kafka_destroy(rk);
        r->transient = true; /* the broker, not the configuration: restarted */
        return NULL;
    }
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, r->conf->topic, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(rk, topics) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fb_log_errorx("router %u: cannot subscribe to %s", r->index, r->conf->topic);
        rd_kafka_topic_partition_list_destroy(topics);
        rd_kafka_destroy(rk);
        return NULL;
    }
    rd_kafka_topic_partition_list_destroy(topics);
    return rk;
}

/* open_files -- the output folder, the dead-letter and spool folders,
 * with room for router.max_open_files descriptors. */
static int
open_files(router_t *r)
{
    fb_files_opts_t o = {.dir = r->conf->router_dir, .max_open = r->conf->max_open_files,
                         .rotate_size = r->conf->rotate_size,
                         .rotate_age_ms = r->conf->rotate_age_ms,
                         .rotate_keep = (unsigned)r->conf->rotate_keep,
                         .refusals = true,
                         .durable = r->conf->fsync != FB_FSYNC_NONE,
                         .metrics = r->metrics};
    struct rlimit rl;
    rlim_t want = (rlim_t)r->conf->max_open_files + 64;

    char dead[4096], spooldir[4096], err[512];

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        struct rlimit more = rl;
        more.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &more) == 0)
            rl = more;
        if (rl.rlim_cur < want) { /* never more than the process may open */
            fb_log_warnx("router %u: router.max_open_files = %llu needs %llu descriptors and "
                         "the limit is %llu: files will be closed and opened more often",
                         r->index, (unsigned long long)r->conf->max_open_files,
                         (unsigned long long)want, (unsigned long long)rl.rlim_cur);
            o.max_open = rl.rlim_cur > 128 ? (size_t)(rl.rlim_cur - 64) : 64;
        }
    }

    snprintf(dead, sizeof(dead), "%s/.dead-letter", r->conf->router_dir);
    snprintf(spooldir, sizeof(spooldir), "%s/.spool", r->conf->router_dir);
    if (mkdir(dead, 0750) < 0 && errno != EEXIST) {
        fb_log_error("router %u: mkdir(%s) failed", r->index, dead);
        return -1;
    }
    if (mkdir(spooldir, 0750) < 0 && errno != EEXIST) {
        fb_log_error("router %u: mkdir(%s) failed", r->index, spooldir);
        return -1;
    }
    if (r->conf->spool_max > 0) {
        o.spool_dir = spooldir;
        o.spool_max = r->conf->spool_max;
    }
    r->files = fb_files_new(&o, err, sizeof(err));
    /* the dead letters are fbpipe's own: never through a planted link,
     * never refused (a failure there is retried, nothing is dropped) */
    o.dir = dead;
    o.max_open = 1;
    o.metrics = NULL; /* the gauges and latencies are the key files' */
    o.refusals = false;
    o.nofollow = true;
    o.spool_dir = NULL;
    r->dead = r->files ? fb_files_new(&o, err, sizeof(err)) : NULL;
    /* the spool: fbpipe's own as well, one file per key, never rotated */
    o.dir = spooldir;
    o.max_open = 16;
    o.rotate_size = 0;
    o.rotate_age_ms = 0;
    r->spool = r->dead ? fb_files_new(&o, err, sizeof(err)) : NULL;
    if (r->spool == NULL) {
        fb_log_errorx("router %u: %s", r->index, err);
        return -1;
    }
    /* one file per process: during a reload the old and the new router N
     * run side by side, and each file has a single writer */
    snprintf(r->dead_key, sizeof(r->dead_key), "router-%u.%ld", r->index, (long)getpid());
    return 0;
}

/* reopen_if_asked -- SIGUSR1: every file opened again at its next write
 * (what is buffered stays, and goes to the new files). */
static void
reopen_if_asked(router_t *r)
{
    if (!reopen_requested)
        return;
    reopen_requested = 0;
    fb_files_reopen(r->files);
    fb_files_reopen(r->dead);
    if (r->dedupe != NULL) /* the files may have been rotated or cut from outside */
        fb_dedupe_forget_all(r->dedupe);
    fb_log_info("router %u: files reopened (SIGUSR1)", r->index);
}

/* backoff_wait -- the partitions paused while a write keeps failing; the
 * group is still served. A message polled meanwhile joins the batch. A
 * signal (stop, reopen) ends the wait within POLL_MS. */
static void
backoff_wait(router_t *r, unsigned ms)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    uint64_t until = fb_monotonic_ms() + ms;

    if (rd_kafka_assignment(r->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        while (!stop_requested && !reopen_requested && fb_monotonic_ms() < until)
            usleep(POLL_MS * 1000);
        return;
    }
    rd_kafka_pause_partitions(r->rk, a);
    while (!stop_requested && !reopen_requested && !r->dropped) {
        uint64_t now = fb_monotonic_ms();
        if (now >= until)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, (int)(until - now < POLL_MS
                                                                       ? until - now : POLL_MS));
        if (m != NULL)
            poll_one(r, m);
    }
    rd_kafka_resume_partitions(r->rk, a);
    rd_kafka_topic_partition_list_destroy(a);
}

/* refusals_then_store -- the targets' refused records to the dead
 * letters, then the offsets the holds allow; a failed sync of the dead
 * letters rolls back instead (what that flush wrote may be lost). */
static void
refusals_then_store(router_t *r)
{
    fb_targets_refusals(r->targets);
    if (!r->dead_unsynced) {
        store_offsets(r);
        return;
    }
    r->dead_unsynced = false;
    fb_log_errorx("router %u: a sync of the dead letters failed; the files are cut back to "
                  "their last sync and the records since read again", r->index);
    roll_back(r, true);
    backoff_wait(r, fb_backoff_last(&r->rollback));
}

/* drain_targets -- stopping: what the targets hold is delivered for up
 * to half of main.shutdown_timeout; the rest is read again from the
 * offsets stored, by the next router. */
static void
drain_targets(router_t *r)
{
    uint64_t until = fb_monotonic_ms() + r->conf->shutdown_timeout_ms / 2;

    if (r->targets == NULL || r->restart)
        return;
    fb_targets_flush(r->targets);
    while (fb_targets_pending(r->targets, NULL) > 0 && fb_monotonic_ms() < until) {
        fb_targets_refusals(r->targets);
        if (fb_targets_pending(r->targets, NULL) > 0)
            usleep(POLL_MS * 1000);
    }
    if (fb_targets_pending(r->targets, NULL) > 0)
        fb_log_notice("router %u: %zu records not yet at their targets: read again by the "
                      "next router", r->index, fb_targets_pending(r->targets, NULL));
    store_offsets(r);
}

int
fb_router_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index)
{
    router_t *r = calloc(1, sizeof(*r));
    fb_backoff_t backoff; /* of a failed write, retried */
    char err[512];
    int rc = 0;

    (void)ring;
    if (r == NULL) {
        fb_log_errorx("router %u: out of memory", index);
        return 1;
    }
    fb_backoff_init(&backoff, BACKOFF_FIRST_MS, BACKOFF_MAX_MS);
    fb_backoff_init(&r->rollback, BACKOFF_FIRST_MS, BACKOFF_MAX_MS);
    r->conf = conf;
    r->keydb = fb_loaded_get()->keydb; /* the master's, inherited */
    r->index = index;
    r->metrics = fb_metrics_take_slot(fb_metrics_zone(), FB_MROLE_ROUTER, index);
    fb_proc_child_signals(on_signal);
    signal(SIGUSR1, on_signal);
    if ((conf->router_decrypt || conf->router_accept_legacy) && r->keydb == NULL) {
        fb_log_errorx("router %u: no key database loaded to decrypt with or to name the "
                      "tenants of records without a key", index);
        free(r);
        return 2;
    }
    r->liner = fb_liner_new();
    if (conf->router_dedupe &&
        (r->dedupe = fb_dedupe_new(conf->dedupe_window, conf->dedupe_memory)) == NULL) {
        fb_log_errorx("router %u: out of memory", index);
        fb_liner_free(r->liner);
        free(r);
        return 1;
    }
    if (r->dedupe != NULL)
        fb_dedupe_set_load_max(r->dedupe, conf->dedupe_load_max);
    if (r->liner != NULL && open_files(r) < 0)
        r->not_ready = true; /* router.dir missing, not writable: not mounted yet? */
    /* the targets' clients, before librdkafka starts its threads */
    if (r->liner != NULL && !r->not_ready && conf->n_targets > 0) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fb_log_errorx("router %u: curl_global_init failed", index);
            r->transient = true;
        } else if ((r->targets = fb_targets_new(conf, index, r->metrics, target_refused, r, err,
                                                sizeof(err))) == NULL) {
            fb_log_errorx("router %u: %s", index, err);
        }
    }
    if (r->liner == NULL || r->not_ready || (conf->n_targets > 0 && r->targets == NULL) ||
        (r->rk = consumer(r)) == NULL) {
        rc = r->not_ready ? FB_EXIT_NOT_READY : r->transient ? 1 : 2;
        fb_targets_free(r->targets);
        fb_liner_free(r->liner);
        fb_dedupe_free(r->dedupe);
        fb_files_free(r->files);
        fb_files_free(r->dead);
        fb_files_free(r->spool);
        free(r);
        return rc;
    }
    fb_log_info("router %u consuming %s in group %s into %s", index, conf->topic,
                conf->router_group, conf->router_dir);
    if (conf->router_accept_legacy)
        fb_log_notice("router %u: router.accept_legacy_records = yes: records without a key "
                      "(the Go version's) are written under the AccessKey they carry, "
                      "marked \"unauthenticated\": true", index);
    r->last_sync_ms = fb_monotonic_ms();
    while (!stop_requested) {
        bool logged = false;

        reopen_if_asked(r);
        /* a batch: what arrives within one poll interval, at most BATCH_MAX */
        r->n = 0;
        r->dropped = false;
        /* a target holding buffer_max: no more reading until it takes some
         * (a record polled meanwhile starts the batch) */
        while (r->targets != NULL && fb_targets_full(r->targets) && !stop_requested &&
               r->n == 0) {
            refusals_then_store(r);
            if (fb_targets_full(r->targets))
                backoff_wait(r, TARGETS_FULL_WAIT_MS);
        }
        uint64_t first_ms = 0;
        while (r->n < BATCH_MAX && fb_files_pending(r->files) < BATCH_BYTES) {
            /* once a record is in, gather what comes within BATCH_WAIT_MS:
             * one sync for many records */
            int wait = POLL_MS;
            if (r->n > 0) {
                uint64_t age = fb_monotonic_ms() - first_ms;
                if (age >= BATCH_WAIT_MS)
                    break;
                wait = (int)(BATCH_WAIT_MS - age);
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, wait);
            if (m == NULL) {
                if (r->n == 0 || r->conf->fsync != FB_FSYNC_BATCH)
                    break;
                continue;
            }
            if (r->n == 0)
                first_ms = fb_monotonic_ms();
            poll_one(r, m);
        }
        /* written (and synced) first, then the offsets; on failure, pause
         * and retry: the batch stays in memory, nothing is skipped; a
         * failed sync rolls back and reads the records again */
        int flushed = -1;
        while (!r->dropped && (flushed = flush_all(r, &logged)) < 0 && !stop_requested) {
            unsigned wait_ms = fb_backoff_next(&backoff);
            if (flushed == FB_FILES_UNSYNCED) {
                roll_back(r, true);
                backoff_wait(r, fb_backoff_last(&r->rollback));
                logged = false; /* logged as a roll back, not a retry */
                break;
            }
            backoff_wait(r, wait_ms);
            reopen_if_asked(r); /* logrotate may have made room */
        }
        if (logged && !stop_requested && !r->dropped)
            fb_log_notice("router %u: writing again", index);
        if (!r->dropped)
            print_flush(r); /* what is written, as it is written */
        pend_end(r, !r->dropped && flushed >= 0); /* the metrics: what the batch became */
        watch_assignment(r);
        log_refused(r);
        fb_log_limited_flush(false); /* records without a key: their lines held back */
        if (fb_files_pending(r->files) == 0 && fb_files_pending(r->dead) == 0 &&
            fb_files_pending(r->spool) == 0) {
            fb_backoff_reset(&backoff);
            store(r);
        }
        if (r->targets != NULL && !r->dropped)
            refusals_then_store(r);
        if (!stop_requested && interval_sync(r, err, sizeof(err)) < 0) {
            fb_log_errorx("router %u: %s; the files are cut back to their last sync and the "
                          "records since read again", index, err);
            roll_back(r, true);
            backoff_wait(r, fb_backoff_last(&r->rollback));
        }
        for (size_t i = 0; i < r->n; i++)
            rd_kafka_message_destroy(r->ms[i]);
        r->n = 0;
    }
    /* stop: what is written is stored; commit it and leave the group */
    if (flush_all(r, NULL) < 0) {
        roll_back(r, false);
        rc = 1;
    }
    if (r->restart)
        rc = 1;
    drain_targets(r);
    sync_before_commit(r);
    print_flush(r);
    rd_kafka_commit(r->rk, NULL, 0);
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    fb_files_free(r->files);
    fb_files_free(r->dead);
    fb_files_free(r->spool);
    fb_liner_free(r->liner);
    fb_dedupe_free(r->dedupe);
    fb_targets_free(r->targets);
    if (r->readpos != NULL)
        rd_kafka_topic_partition_list_destroy(r->readpos);
    fb_log_limited_flush(true);
    fb_log_info("router %u stopped (%lu dead letters)", index, r->dead_letters);
    if (r->from != NULL)
        rd_kafka_topic_partition_list_destroy(r->from);
    fb_buf_free(&r->print);
    free(r->pend);
    free(r->pend_touched);
    free(r);
    return rc;
}
