/*
 * router_targets.c -- queues, delivery and holds of a router's remote
 * targets (s3, elasticsearch, http); see router_targets.h. Each target
 * delivers from a thread of its own, so that a store that hangs holds up
 * only its own records; the router's thread takes records in, reads the
 * holds and writes the dead letters. One mutex per target guards its
 * queues; a request is made without it, on records the router's thread
 * only appends after (a revoke waits for the request to end). Must never
 * let a record's offset be stored before every target acknowledged it,
 * never drop a record for anything but the target's refusal of that
 * record, and never follow a symbolic link under router.dir/.targets.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/backoff.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "router/router_bulk.h"
#include "router/router_gzip.h"
#include "router/router_post.h"
#include "router/router_s3.h"
#include "router/router_targets.h"

#define PARK_FIRST_MS 1000
#define PARK_MAX_MS 60000
#define STILL_FAILING_MS 60000 /* a failing target is logged again this often */
#define IDLE_WAKE_MS 200       /* a delivery thread looks at its quiet keys this often */
#define BULK_DOCS 5000         /* documents per _bulk */
#define POST_RECORDS 1000      /* records per POST */
#define POST_BYTES (4u << 20)  /* bytes of lines per POST */
#define BUCKETS 4096           /* of the streams' hash table */
#define MARKS_MAX 256          /* bytes of a marks file */
#define WHY_MAX 512            /* bytes of a refused record's reason */
#define MARKS_MAGIC "fbpipe-target-marks 1\n"

typedef struct stream stream_t;
typedef struct part part_t;

/* where an entry is, besides its partition's list */
enum { IN_QUEUE, IN_STREAM, IN_REFUSED };

/* one record a target holds, with a copy of what it needs: its line, and
 * the record itself for a dead letter */
typedef struct entry {
    struct entry *pprev, *pnext; /* its partition's, in offset order */
    struct entry *qprev, *qnext; /* its queue, stream or the refused list */
    part_t *part;
    stream_t *stream;
    int64_t offset, time_s, timestamp;
    int where;
    bool cut_after; /* s3: an object ends with this record */
    bool has_key;
    bool ledger;     /* counted written in the tenant's ledger once delivered */
    unsigned tenant; /* its number in the metrics zone (looked up by the router's thread:
                      * the zone's lookup cache is the process's, unlocked) */
    size_t cost;
    char *line, *key, *value;
    char *access_key; /* the line's: the file a line would go to */
    size_t line_len, key_len, len;
    rd_kafka_headers_t *hdrs;
    char *why; /* refused: the target's reason */
} entry_t;

/* a target's records of one partition */
struct part {
    char *topic;
    int32_t partition;
    entry_t *head, *tail;
    int64_t taken; /* the highest offset taken (queued or delivered), -1: none */
};

/* s3 and http: a key's records of one partition, in offset order */
struct stream {
    stream_t *next; /* in its bucket */
    part_t *part;
    char key[FB_ACCESS_KEY_MAX + 1];
    entry_t *head, *tail;
    /* s3: the records after the last cut (the object being filled) */
    entry_t *open;
    size_t open_count, open_bytes;
    int64_t open_time; /* its first record's own time */
    uint64_t opened_ms;
    unsigned cuts; /* objects cut and not yet stored */
    /* s3: the marks (MARKS_MAGIC file): uploaded through; an object
     * that ends at intent (cut by the wall clock) */
    int64_t through, intent;
};

struct fb_target {
    fb_targets_t *ts;
    const fb_conf_target_t *c;
    fb_s3_t *s3;
    fb_bulk_t *bulk;
    fb_bulk_body_t *body;
    fb_post_t *post;
    /* guarded by mu: everything below but the clients and buffers, which
     * only the delivery thread uses */
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    pthread_t thread;
    bool started, stop, paused, busy;
    bool flushing; /* stopping: every open object is cut now */
    part_t **parts; /* each allocated once: entries and streams point at them */
    size_t n_parts, cap_parts;
    stream_t **buckets;
    size_t scan; /* the bucket the next look starts from: every stream gets its turn */
    entry_t *qhead, *qtail;       /* elasticsearch */
    entry_t *rhead, *rtail;       /* refused, for the router's dead letters */
    size_t pending;
    uint64_t bytes;
    fb_backoff_t backoff;
    uint64_t parked_until, failing_since, logged_ms;
    unsigned long failures;
    /* the delivery thread's own */
    entry_t **work; /* the records of the request being made */
    size_t work_cap;
    fb_buf_t buf; /* a request's body */
    char (*whys)[WHY_MAX]; /* http: each record's reason when refused (POST_RECORDS) */
};

struct fb_targets {
    const fb_conf_t *conf;
    unsigned index;
    fb_target_refuse_fn cb;
    void *cb_arg;
    fb_mslot_t *metrics; /* the router's slot, NULL without a zone */
    fb_target_t *t;
    size_t n;
    /* the partitions assigned and whether the group has committed an
     * offset for them (the S3 marks are trusted only then) */
    rd_kafka_topic_partition_list_t *committed;
};

/* ---- memory (the caller holds t->mu) ---------------------------------- */

static part_t *
part_of(fb_target_t *t, const char *topic, int32_t partition, bool make)
{
    for (size_t i = 0; i < t->n_parts; i++)
        if (t->parts[i]->partition == partition && strcmp(t->parts[i]->topic, topic) == 0)
            return t->parts[i];
    if (!make)
        return NULL;
    if (t->n_parts == t->cap_parts) {
        size_t cap = t->cap_parts ? t->cap_parts * 2 : 16;
        part_t **a = realloc(t->parts, cap * sizeof(*a));
        if (a == NULL)
            return NULL;
        t->parts = a;
        t->cap_parts = cap;
    }
    part_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->topic = strdup(topic)) == NULL) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->taken = -1;
    t->parts[t->n_parts++] = p;
    return p;
}

static void
list_ends(fb_target_t *t, entry_t *e, entry_t ***head, entry_t ***tail)
{
    if (e->where == IN_STREAM) {
        *head = &e->stream->head;
        *tail = &e->stream->tail;
    } else if (e->where == IN_REFUSED) {
        *head = &t->rhead;
        *tail = &t->rtail;
    } else {
        *head = &t->qhead;
        *tail = &t->qtail;
    }
}

/* list_out -- e leaves its queue, stream or the refused list. */
static void
list_out(fb_target_t *t, entry_t *e)
{
    entry_t **head, **tail;

    list_ends(t, e, &head, &tail);
    if (e->qprev) e->qprev->qnext = e->qnext; else *head = e->qnext;
    if (e->qnext) e->qnext->qprev = e->qprev; else *tail = e->qprev;
    if (e->where == IN_STREAM && e->stream->open == e)
        e->stream->open = e->qnext;
    e->qprev = e->qnext = NULL;
}

/* list_in -- e joins the end of the list where says. */
static void
list_in(fb_target_t *t, entry_t *e, int where)
{
    entry_t **head, **tail;

    e->where = where;
    list_ends(t, e, &head, &tail);
    e->qprev = *tail;
    e->qnext = NULL;
    if (*tail) (*tail)->qnext = e; else *head = e;
    *tail = e;
}

/* forget -- e leaves everything, and memory. */
static void
forget(fb_target_t *t, entry_t *e)
{
    part_t *p = e->part;

    list_out(t, e);
    if (e->pprev) e->pprev->pnext = e->pnext; else p->head = e->pnext;
    if (e->pnext) e->pnext->pprev = e->pprev; else p->tail = e->pprev;
    t->pending--;
    t->bytes -= e->cost;
    if (e->hdrs != NULL)
        rd_kafka_headers_destroy(e->hdrs);
    free(e->why);
    free(e);
}

/* to_refused -- e, refused by the store for itself, waits for the
 * router's thread to write its dead letter; it still holds its offset. */
static void
to_refused(fb_target_t *t, entry_t *e, const char *why)
{
    list_out(t, e);
    free(e->why);
    e->why = strdup(why);
    list_in(t, e, IN_REFUSED);
}

static unsigned
bucket_of(const char *key, int32_t partition)
{
    uint64_t h = fb_hash_more(fb_hash_str(key), &partition, sizeof(partition));

    return (unsigned)(h % BUCKETS);
}

/* ---- S3 marks ------------------------------------------------------------ */

/* marks_path -- router.dir/.targets/<target>/<key>/<topic>-<partition>;
 * with make, the folders are made (0750), none a symbolic link. */
static int
marks_path(const fb_target_t *t, const char *key, const part_t *p, char *out, size_t len,
           bool make)
{
    const char *parts[] = {".targets", t->c->name, key};
    size_t at = (size_t)snprintf(out, len, "%s", t->ts->conf->router_dir);
    struct stat st;

    for (size_t i = 0; i < 3; i++) {
        at += (size_t)snprintf(out + at, at < len ? len - at : 0, "/%s", parts[i]);
        if (at >= len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (make && mkdir(out, 0750) < 0 && errno != EEXIST)
            return -1;
        if (make && (lstat(out, &st) < 0 || !S_ISDIR(st.st_mode))) {
            errno = ENOTDIR;
            return -1;
        }
    }
    at += (size_t)snprintf(out + at, at < len ? len - at : 0, "/%s-%" PRId32, p->topic,
                           p->partition);
    if (at >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* marks_load -- the stream's marks from its file, when the partition's
 * marks can be trusted; none otherwise (everything from the stored
 * offset is delivered again: at least once, never lost). */
static void
marks_load(const fb_target_t *t, stream_t *s, bool trusted)
{
    char path[4096], buf[MARKS_MAX + 1];
    long long through, intent;
    int n, fd;
    ssize_t got;

    s->through = s->intent = -1;
    if (!trusted || marks_path(t, s->key, s->part, path, sizeof(path), false) < 0)
        return;
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        if (errno != ENOENT)
            fb_log_warn("router %u: target %s: cannot read %s: its objects may be stored again",
                        t->ts->index, t->c->name, path);
        return;
    }
    got = read(fd, buf, MARKS_MAX);
    close(fd);
    if (got < 0 || got == MARKS_MAX) {
        fb_log_warnx("router %u: target %s: %s cannot be read whole: ignored, its objects "
                     "may be stored again", t->ts->index, t->c->name, path);
        return;
    }
    buf[got] = '\0';
    n = 0;
    if (sscanf(buf, MARKS_MAGIC "through %lld\ncut %lld\n%n", &through, &intent, &n) != 2 ||
        n != (int)got || through < -1 || intent < -1 || (intent >= 0 && intent <= through)) {
        fb_log_warnx("router %u: target %s: %s is not a marks file of this version: ignored, "
                     "its objects may be stored again", t->ts->index, t->c->name, path);
        return;
    }
    s->through = through;
    s->intent = intent;
}

/* marks_save -- through and intent for (key, p): a temporary file
 * written and renamed over the old one, so that the file is the old
 * marks or the new ones, whole. Not synced: a router killed at any moment
 * leaves them in the page cache, and what only a power loss can undo is
 * at worst an object stored again (marks too old: duplicates, never a
 * record skipped); a sync per object cost half of the throughput with
 * many keys. */
static int
marks_save(const fb_target_t *t, const char *key, const part_t *p, int64_t through,
           int64_t intent, char *err, size_t errlen)
{
    char path[4096], tmp[4200], text[MARKS_MAX];
    int fd, len, e;

    if (marks_path(t, key, p, path, sizeof(path), true) < 0) {
        fb_errf(err, errlen, "cannot make the folder of the marks of %s [%d] under %s/.targets: "
                "%s", key, (int)p->partition, t->ts->conf->router_dir, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    len = snprintf(text, sizeof(text), MARKS_MAGIC "through %lld\ncut %lld\n",
                   (long long)through, (long long)intent);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0 || write(fd, text, (size_t)len) != len) {
        e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        fb_errf(err, errlen, "cannot write %s: %s", tmp, strerror(e));
        return -1;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        fb_errf(err, errlen, "cannot replace %s: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

/* ---- streams ------------------------------------------------------------- */

static bool
trusted(const fb_targets_t *ts, const char *topic, int32_t partition)
{
    const rd_kafka_topic_partition_t *p =
        ts->committed ? rd_kafka_topic_partition_list_find(ts->committed, topic, partition)
                      : NULL;

    return p != NULL && p->offset >= 0;
}

static stream_t *
stream_of(fb_target_t *t, part_t *p, const char *key)
{
    unsigned b = bucket_of(key, p->partition);

    for (stream_t *s = t->buckets[b]; s != NULL; s = s->next)
        if (s->part == p && strcmp(s->key, key) == 0)
            return s;
    stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->part = p;
    snprintf(s->key, sizeof(s->key), "%s", key);
    s->through = s->intent = -1;
    if (t->c->type == FB_TARGET_S3)
        marks_load(t, s, trusted(t->ts, p->topic, p->partition));
    s->next = t->buckets[b];
    t->buckets[b] = s;
    return s;
}

/* cut -- s3: the records after the last cut make an object. */
static void
cut(stream_t *s)
{
    if (s->open == NULL)
        return;
    s->tail->cut_after = true;
    s->cuts++;
    s->open = NULL;
    s->open_count = s->open_bytes = 0;
}

/* cut_before -- s3: the object being filled ends with the record
 * before e (e is the stream's tail). */
static void
cut_before(stream_t *s, entry_t *e)
{
    e->qprev->cut_after = true;
    s->cuts++;
    s->open = NULL;
    s->open_count = s->open_bytes = 0;
}

/* s3_append -- e joins its stream's object being filled, which is cut
 * first when e would go past max_records or max_bytes, or when e's own
 * time is max_age past its first record's: functions of the records, so
 * that the same records read again make the same objects. An object
 * whose end was written down (cut by the wall clock) ends there. */
static void
s3_append(fb_target_t *t, stream_t *s, entry_t *e)
{
    const fb_conf_target_t *c = t->c;

    /* e is the stream's tail already: a cut before e ends the object at
     * the record that precedes it */
    if (s->intent >= 0 && e->offset > s->intent) {
        /* the object written down ends before e: its last records were
         * not read again (sent to the dead letters before) */
        if (s->open != NULL)
            cut_before(s, e);
        s->intent = -1;
    }
    if (s->open != NULL && s->intent < 0 &&
        (s->open_count >= c->max_records || s->open_bytes + e->line_len > c->max_bytes ||
         (e->time_s > s->open_time &&
          (uint64_t)(e->time_s - s->open_time) * 1000 >= c->max_age_ms)))
        cut_before(s, e);
    if (s->open == NULL) {
        s->open = e;
        s->open_time = e->time_s;
        s->opened_ms = fb_monotonic_ms();
    }
    s->open_count++;
    s->open_bytes += e->line_len;
    if (s->intent >= 0 && e->offset >= s->intent) {
        cut(s);
        s->intent = -1; /* reached (its file keeps it until the object is stored) */
    }
}

/* ---- taking records (the router's thread) ----------------------------------- */

int
fb_target_take(fb_target_t *t, const rd_kafka_message_t *m, const fb_line_t *line, bool ledger)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    stream_t *s = NULL;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t tstype;
    size_t akl = strlen(line->access_key);
    size_t cost = sizeof(entry_t) + line->len + m->key_len + m->len + akl + 4;
    int rc = -1;

    pthread_mutex_lock(&t->mu);
    part_t *p = part_of(t, topic, m->partition, true);
    if (p == NULL)
        goto out;
    rc = 0;
    if (m->offset <= p->taken)
        goto out; /* read again: queued or delivered already */
    if (t->c->type != FB_TARGET_ELASTICSEARCH) {
        rc = -1;
        if ((s = stream_of(t, p, line->access_key)) == NULL)
            goto out;
        rc = 0;
        if (m->offset <= s->through) {
            p->taken = m->offset; /* in an object stored before a restart */
            goto out;
        }
    }
    rc = -1;
    entry_t *e = calloc(1, cost);
    if (e == NULL)
        goto out;
    e->line = (char *)(e + 1);
    memcpy(e->line, line->text, line->len);
    e->line_len = line->len;
    e->key = e->line + line->len + 1;
    e->has_key = m->key != NULL;
    if (m->key_len > 0)
        memcpy(e->key, m->key, m->key_len);
    e->key_len = m->key_len;
    e->value = e->key + m->key_len + 1;
    if (m->len > 0)
        memcpy(e->value, m->payload, m->len);
    e->len = m->len;
    e->access_key = e->value + m->len + 1;
    memcpy(e->access_key, line->access_key, akl + 1);
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h != NULL &&
        (e->hdrs = rd_kafka_headers_copy(h)) == NULL) {
        free(e);
        goto out;
    }
    e->offset = m->offset;
    if (ledger && fb_metrics_zone() != NULL) {
        e->ledger = true;
        e->tenant = fb_metrics_tenant(fb_metrics_zone(), line->access_key, akl);
    }
    e->time_s = line->time_s;
    e->timestamp = rd_kafka_message_timestamp(m, &tstype);
    e->cost = cost;
    e->part = p;
    e->stream = s;
    e->pprev = p->tail;
    if (p->tail) p->tail->pnext = e; else p->head = e;
    p->tail = e;
    list_in(t, e, s ? IN_STREAM : IN_QUEUE);
    p->taken = m->offset;
    t->pending++;
    t->bytes += cost;
    if (t->c->type == FB_TARGET_S3)
        s3_append(t, s, e);
    if (t->c->type != FB_TARGET_S3 || s->cuts > 0)
        pthread_cond_signal(&t->wake);
    rc = 0;
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ---- outcomes (the delivery thread, holding t->mu) ---------------------------- */

/* done -- e is at its target: counted, and forgotten. A record sent
 * again after a crash is counted again (a document answered 409 too: the
 * router killed before it counted the first answer is indistinguishable),
 * as a line written again is. */
static void
done(fb_target_t *t, entry_t *e)
{
    fb_metrics_add(t->ts->metrics, FB_MC_TARGET_DELIVERED, 1);
    if (e->ledger) {
        fb_metrics_tenant_add(t->ts->metrics, e->tenant, FB_MT_WRITTEN, 1);
        fb_metrics_tenant_add(t->ts->metrics, e->tenant, FB_MT_BYTES_WRITTEN, e->line_len);
    }
    forget(t, e);
}

/* park -- the target failed (the environment's or the operator's doing):
 * it rests for a back-off, logged when it starts failing and once a
 * minute while it goes on. */
static void
park(fb_target_t *t, const char *what)
{
    uint64_t now = fb_monotonic_ms();
    unsigned wait = fb_backoff_spread(fb_backoff_next(&t->backoff), (uint32_t)random());

    t->parked_until = now + wait;
    t->failures++;
    fb_metrics_add(t->ts->metrics, FB_MC_TARGET_FAILURES, 1);
    if (t->failing_since == 0) {
        t->failing_since = now;
        t->logged_ms = now;
        fb_log_errorx("router %u: target %s: %s; its %zu records wait (their offsets are not "
                      "stored), tried again in %.1f s", t->ts->index, t->c->name, what,
                      t->pending, wait / 1000.0);
    } else if (now - t->logged_ms >= STILL_FAILING_MS) {
        t->logged_ms = now;
        fb_log_errorx("router %u: target %s: still failing for %llu s (%lu attempts, %zu "
                      "records wait): %s", t->ts->index, t->c->name,
                      (unsigned long long)((now - t->failing_since) / 1000), t->failures,
                      t->pending, what);
    }
}

static void
delivered(fb_target_t *t)
{
    if (t->failing_since != 0)
        fb_log_notice("router %u: target %s: delivering again after %llu s", t->ts->index,
                      t->c->name,
                      (unsigned long long)((fb_monotonic_ms() - t->failing_since) / 1000));
    t->failing_since = 0;
    t->failures = 0;
    fb_backoff_reset(&t->backoff);
}

/* ---- requests (the delivery thread, without t->mu) ----------------------------- */

/* work_room -- t->work holds n entries */
static int
work_room(fb_target_t *t, size_t n)
{
    if (n <= t->work_cap)
        return 0;
    entry_t **w = realloc(t->work, n * sizeof(*w));
    if (w == NULL)
        return -1;
    t->work = w;
    t->work_cap = n;
    return 0;
}

/* body_of -- the lines of w[0..n) into t->buf; its length, or -1. */
static ssize_t
body_of(fb_target_t *t, entry_t *const *w, size_t n)
{
    t->buf.len = 0;
    for (size_t i = 0; i < n; i++)
        if (fb_buf_put(&t->buf, w[i]->line, w[i]->line_len) < 0)
            return -1;
    return (ssize_t)t->buf.len;
}

/* ---- S3 -------------------------------------------------------------------------- */

/* s3_next -- a stream whose first object is cut, or whose open object a
 * quiet key has kept past flush_after (its end is written down and it is
 * cut); NULL when none. Holds t->mu. */
static stream_t *
s3_next(fb_target_t *t)
{
    uint64_t now = fb_monotonic_ms();

    /* every quiet key's object past flush_after first, so that a busy key
     * never holds the others' offsets back */
    for (size_t b = 0; b < BUCKETS; b++) {
        for (stream_t *s = t->buckets[b]; s != NULL; s = s->next) {
            if (s->cuts == 0 && s->open != NULL &&
                (t->flushing || now - s->opened_ms >= t->c->flush_after_ms)) {
                char err[512];
                /* written down before the object is sent: made the same
                 * after a crash, though the clock cut it */
                if (marks_save(t, s->key, s->part, s->through, s->tail->offset, err,
                               sizeof(err)) < 0) {
                    park(t, err);
                    return NULL;
                }
                cut(s);
            }
        }
    }
    /* then the streams in turn, from the one after the last served */
    for (size_t i = 0; i < BUCKETS; i++) {
        size_t b = (t->scan + i) % BUCKETS;
        for (stream_t *s = t->buckets[b]; s != NULL; s = s->next) {
            if (s->cuts > 0) {
                t->scan = (b + 1) % BUCKETS;
                return s;
            }
        }
    }
    return NULL;
}

/* s3_work -- one object stored (or refused), its mark written; false
 * when no object is due. Holds t->mu, dropped during the request. */
static bool
s3_work(fb_target_t *t)
{
    const fb_conf_target_t *c = t->c;
    stream_t *s = s3_next(t);
    char name[FB_S3_NAME_MAX + 1], err[FB_S3_ERR_LEN];
    uint8_t *gz = NULL;
    size_t gz_len = 0, n = 0;
    fb_s3_result_t rc;

    if (s == NULL)
        return false;
    for (entry_t *e = s->head; e != NULL; e = e->qnext) {
        if (work_room(t, n + 1) < 0) {
            park(t, "out of memory making an object");
            return true;
        }
        t->work[n++] = e;
        if (e->cut_after)
            break;
    }
    entry_t *first = t->work[0], *last = t->work[n - 1];
    char key[FB_ACCESS_KEY_MAX + 1];
    snprintf(key, sizeof(key), "%s", s->key);
    part_t *p = s->part;
    int64_t intent = s->intent;
    t->busy = true;
    pthread_mutex_unlock(&t->mu);

    ssize_t len = body_of(t, t->work, n);
    if (len < 0 || (c->gzip && fb_gzip(t->buf.data, (size_t)len, 6, &gz, &gz_len) < 0)) {
        rc = FB_S3_RETRY;
        fb_errf(err, sizeof(err), "out of memory making an object");
    } else if (fb_s3_object_name(name, sizeof(name), c->prefix, key, first->time_s, p->topic,
                                 p->partition, first->offset, last->offset, c->gzip) < 0) {
        rc = FB_S3_REFUSED;
        fb_errf(err, sizeof(err), "no valid object name for %s [%d] %lld-%lld (the prefix, "
                "key and topic must make one)", key, (int)p->partition,
                (long long)first->offset, (long long)last->offset);
    } else {
        rc = fb_s3_put(t->s3, name, gz ? (const void *)gz : t->buf.data, gz ? gz_len : (size_t)len,
                       "application/x-ndjson", gz ? "gzip" : NULL, err, sizeof(err));
    }
    free(gz);
    /* stored: its last offset written down before its records are
     * forgotten (a marks file that cannot be written: the object is put
     * again, the same, at the next try) */
    if (rc == FB_S3_OK &&
        marks_save(t, key, p, last->offset, intent > last->offset ? intent : -1, err,
                   sizeof(err)) < 0)
        rc = FB_S3_RETRY;

    pthread_mutex_lock(&t->mu);
    t->busy = false;
    pthread_cond_broadcast(&t->idle);
    if (rc == FB_S3_RETRY) {
        park(t, err);
        return true;
    }
    if (rc == FB_S3_OK)
        s->through = last->offset;
    s->cuts--;
    for (size_t i = 0; i < n; i++) {
        if (rc == FB_S3_OK)
            done(t, t->work[i]);
        else
            to_refused(t, t->work[i], err);
    }
    if (rc == FB_S3_OK)
        delivered(t);
    return true;
}

/* ---- OpenSearch ------------------------------------------------------------------ */

/* bulk_work -- one bulk of the queue's first records; false when the
 * queue is empty. Holds t->mu, dropped during the request. */
static bool
bulk_work(fb_target_t *t)
{
    char err[512], index[FB_BULK_INDEX_MAX + 1], id[FB_BULK_ID_MAX + 1];
    size_t n = 0, sent = 0;
    fb_bulk_result_t res;
    int *verdict;

    if (t->qhead == NULL)
        return false;
    if (work_room(t, BULK_DOCS) < 0) {
        park(t, "out of memory making a bulk");
        return true;
    }
    for (entry_t *e = t->qhead; e != NULL && n < BULK_DOCS; e = e->qnext)
        t->work[n++] = e;
    t->busy = true;
    pthread_mutex_unlock(&t->mu);

    /* per record: 0 in the bulk, 1 refused before it (err kept below) */
    char (*whys)[256] = calloc(n, sizeof(*whys));
    verdict = calloc(n, sizeof(*verdict));
    size_t in_body[BULK_DOCS];
    fb_bulk_body_clear(t->body);
    for (size_t i = 0; whys != NULL && verdict != NULL && i < n; i++) {
        entry_t *e = t->work[i];
        int rc = -1;
        err[0] = '\0';
        if (fb_bulk_index_name(t->c->index, e->access_key, (time_t)e->time_s, index, err,
                               sizeof(err)) == 0) {
            if (fb_bulk_doc_id(id, e->part->topic, e->part->partition, e->offset) == 0)
                rc = fb_bulk_body_add(t->body, index, id, e->line, e->line_len, err,
                                      sizeof(err));
            else
                fb_errf(err, sizeof(err), "no document id fits in %d bytes", FB_BULK_ID_MAX);
        }
        if (rc == FB_BULK_E_FULL) {
            n = i; /* the rest: the next bulk */
            break;
        }
        if (rc != 0) {
            verdict[i] = 1;
            snprintf(whys[i], sizeof(whys[i]), "%s", err);
        } else {
            in_body[sent++] = i;
        }
    }
    int whole = -1;
    if (whys != NULL && verdict != NULL && n > 0)
        whole = sent == 0 ? 0 : fb_bulk_send(t->bulk, t->body, &res);

    pthread_mutex_lock(&t->mu);
    t->busy = false;
    pthread_cond_broadcast(&t->idle);
    if (whys == NULL || verdict == NULL || n == 0) {
        park(t, "out of memory making a bulk"); /* n == 0: not even one document fitted */
    } else {
        bool retry = false;
        for (size_t k = 0; whole == 0 && k < sent; k++) {
            const fb_bulk_item_t *it = &res.items[k];
            entry_t *e = t->work[in_body[k]];
            if (it->verdict == FB_BULK_RETRY) {
                retry = true;
            } else if (it->verdict == FB_BULK_REFUSED) {
                snprintf(err, sizeof(err), "refused by the index (status %d, %s: %s)",
                         it->status, it->type, it->reason);
                to_refused(t, e, err);
            } else {
                done(t, e);
            }
        }
        for (size_t i = 0; i < n; i++)
            if (verdict[i] == 1)
                to_refused(t, t->work[i], whys[i]);
        if (whole < 0 || retry)
            park(t, whole < 0 ? res.error
                    : res.error[0] ? res.error : "some documents are to be sent again");
        else
            delivered(t);
    }
    free(whys);
    free(verdict);
    return true;
}

/* ---- HTTP -------------------------------------------------------------------------- */

/* post -- w[0..n) (one key and partition) in one POST; halved on a
 * refusal until the record at fault is alone. Each outcome in out[]:
 * FB_POST_OK, FB_POST_REFUSED (why in whys[0]... kept per record) or
 * FB_POST_RETRY (stop). Returns false on RETRY. Without t->mu. */
static bool
post(fb_target_t *t, entry_t *const *w, size_t n, int *out, char (*whys)[WHY_MAX], char *err,
     size_t errlen)
{
    char idem[FB_POST_KEY_MAX + 64];
    const part_t *p = w[0]->part;
    ssize_t len = body_of(t, w, n);

    if (len < 0) {
        fb_errf(err, errlen, "out of memory making a request");
        return false;
    }
    int il = snprintf(idem, sizeof(idem), "%s-%d-%lld-%lld", p->topic, (int)p->partition,
                      (long long)w[0]->offset, (long long)w[n - 1]->offset);
    if (il < 0 || il > FB_POST_KEY_MAX) { /* a long topic name: its hash stands for it */
        uint64_t h = fb_hash_str(p->topic);
        snprintf(idem, sizeof(idem), "t%016llx-%d-%lld-%lld", (unsigned long long)h,
                 (int)p->partition, (long long)w[0]->offset, (long long)w[n - 1]->offset);
    }
    fb_post_result_t rc = fb_post_send(t->post, t->buf.data, (size_t)len, idem, err, errlen);
    if (rc == FB_POST_RETRY)
        return false;
    if (rc != FB_POST_OK && n > 1)
        return post(t, w, n / 2, out, whys, err, errlen) &&
               post(t, w + n / 2, n - n / 2, out + n / 2, whys + n / 2, err, errlen);
    out[0] = rc == FB_POST_OK ? FB_POST_OK : FB_POST_REFUSED;
    if (rc != FB_POST_OK)
        snprintf(whys[0], WHY_MAX, "%s", err); /* the record's own reason */
    for (size_t i = 1; i < n; i++) /* n > 1 only when OK */
        out[i] = FB_POST_OK;
    return true;
}

/* http_work -- one stream's first records in one POST; false when no
 * stream has any. Holds t->mu, dropped during the request. */
static bool
http_work(fb_target_t *t)
{
    stream_t *s = NULL;
    size_t n = 0, bytes = 0;
    char err[1024];
    int out[POST_RECORDS];

    for (size_t i = 0; i < BUCKETS && s == NULL; i++) {
        size_t b = (t->scan + i) % BUCKETS;
        for (stream_t *x = t->buckets[b]; x != NULL && s == NULL; x = x->next)
            if (x->head != NULL) {
                s = x;
                t->scan = (b + 1) % BUCKETS; /* the next key's turn next */
            }
    }
    if (s == NULL)
        return false;
    if (work_room(t, POST_RECORDS) < 0) {
        park(t, "out of memory making a request");
        return true;
    }
    for (entry_t *e = s->head; e != NULL && n < POST_RECORDS &&
                               (n == 0 || bytes + e->line_len <= POST_BYTES); e = e->qnext) {
        t->work[n++] = e;
        bytes += e->line_len;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = FB_POST_RETRY;
    t->busy = true;
    pthread_mutex_unlock(&t->mu);
    err[0] = '\0';
    bool ok = post(t, t->work, n, out, t->whys, err, sizeof(err));
    pthread_mutex_lock(&t->mu);
    t->busy = false;
    pthread_cond_broadcast(&t->idle);
    /* what was answered, whatever came after */
    for (size_t i = 0; i < n; i++) {
        if (out[i] == FB_POST_OK)
            done(t, t->work[i]);
        else if (out[i] == FB_POST_REFUSED)
            to_refused(t, t->work[i], t->whys[i]);
    }
    if (!ok)
        park(t, err);
    else
        delivered(t);
    return true;
}

/* ---- the delivery thread ------------------------------------------------------------- */

/* rest -- wait until woken, parked_until, or IDLE_WAKE_MS (a quiet key's
 * object may come due): the router's thread takes t->mu meanwhile. */
static void
rest(fb_target_t *t)
{
    uint64_t now = fb_monotonic_ms(), wait = IDLE_WAKE_MS;
    struct timespec ts;

    if (!t->paused && now < t->parked_until && t->parked_until - now < wait)
        wait = t->parked_until - now;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(wait / 1000);
    ts.tv_nsec += (long)(wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&t->wake, &t->mu, &ts);
}

static void *
deliver(void *arg)
{
    fb_target_t *t = arg;

    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        bool worked = false;
        if (!t->paused && fb_monotonic_ms() >= t->parked_until) {
            switch (t->c->type) {
            case FB_TARGET_S3:
                worked = s3_work(t);
                break;
            case FB_TARGET_ELASTICSEARCH:
                worked = bulk_work(t);
                break;
            default:
                worked = http_work(t);
                break;
            }
        }
        if (!worked && !t->stop)
            rest(t);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- the router's thread ------------------------------------------------------------- */

/* quiesce -- the delivery thread holds no record now, nor takes any until
 * resume: for changes to what it might be sending. Takes t->mu. */
static void
quiesce(fb_target_t *t)
{
    pthread_mutex_lock(&t->mu);
    t->paused = true;
    while (t->busy)
        pthread_cond_wait(&t->idle, &t->mu);
}

static void
resume(fb_target_t *t)
{
    t->paused = false;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->mu);
}

void
fb_targets_flush(fb_targets_t *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        pthread_mutex_lock(&ts->t[i].mu);
        ts->t[i].flushing = true;
        pthread_cond_signal(&ts->t[i].wake);
        pthread_mutex_unlock(&ts->t[i].mu);
    }
}

void
fb_targets_refusals(fb_targets_t *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        fb_target_t *t = &ts->t[i];
        pthread_mutex_lock(&t->mu);
        while (t->rhead != NULL) {
            entry_t *e = t->rhead;
            fb_target_refused_t r = {.target = t->c->name, .topic = e->part->topic,
                                     .partition = e->part->partition, .offset = e->offset,
                                     .timestamp = e->timestamp,
                                     .key = e->has_key ? e->key : NULL, .key_len = e->key_len,
                                     .value = e->value, .len = e->len, .headers = e->hdrs,
                                     .access_key = e->access_key, .ledger = e->ledger};
            char why[1024];
            snprintf(why, sizeof(why), "target %s: %s", t->c->name, e->why ? e->why : "refused");
            /* the dead letter is written without the lock: the delivery
             * thread never touches the refused list but to add to it */
            pthread_mutex_unlock(&t->mu);
            int rc = ts->cb(ts->cb_arg, &r, why);
            pthread_mutex_lock(&t->mu);
            if (rc < 0)
                break; /* tried again after the next batch */
            forget(t, e);
        }
        pthread_mutex_unlock(&t->mu);
    }
}

int64_t
fb_targets_hold(fb_targets_t *ts, const char *topic, int32_t partition)
{
    int64_t hold = -1;

    for (size_t i = 0; i < ts->n; i++) {
        fb_target_t *t = &ts->t[i];
        pthread_mutex_lock(&t->mu);
        const part_t *p = part_of(t, topic, partition, false);
        if (p != NULL && p->head != NULL && (hold < 0 || p->head->offset < hold))
            hold = p->head->offset;
        pthread_mutex_unlock(&t->mu);
    }
    return hold;
}

size_t
fb_targets_pending(fb_targets_t *ts, size_t *failing)
{
    size_t n = 0, f = 0;

    for (size_t i = 0; i < ts->n; i++) {
        pthread_mutex_lock(&ts->t[i].mu);
        n += ts->t[i].pending;
        f += ts->t[i].failing_since != 0;
        pthread_mutex_unlock(&ts->t[i].mu);
    }
    if (failing != NULL)
        *failing = f;
    return n;
}

bool
fb_targets_full(fb_targets_t *ts)
{
    bool full = false;

    for (size_t i = 0; i < ts->n && !full; i++) {
        pthread_mutex_lock(&ts->t[i].mu);
        full = ts->t[i].bytes >= ts->t[i].c->buffer_max;
        pthread_mutex_unlock(&ts->t[i].mu);
    }
    return full;
}

fb_target_t *
fb_targets_find(fb_targets_t *ts, const char *name)
{
    for (size_t i = 0; ts != NULL && i < ts->n; i++)
        if (strcmp(ts->t[i].c->name, name) == 0)
            return &ts->t[i];
    return NULL;
}

void
fb_targets_assigned(fb_targets_t *ts, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *c;
    rd_kafka_resp_err_t err;

    if (ts->n == 0 || (c = rd_kafka_topic_partition_list_copy(parts)) == NULL)
        return; /* no list: no marks trusted */
    err = rd_kafka_committed(rk, c, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fb_log_warnx("router %u: the group's committed offsets cannot be read (%s): the S3 "
                     "targets' marks are not trusted, objects may be stored again",
                     ts->index, rd_kafka_err2str(err));
        for (int i = 0; i < c->cnt; i++)
            c->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    }
    for (int i = 0; i < c->cnt; i++)
        if (c->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            c->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    if (ts->committed != NULL)
        rd_kafka_topic_partition_list_destroy(ts->committed);
    ts->committed = c;
}

void
fb_targets_revoked(fb_targets_t *ts, const rd_kafka_topic_partition_list_t *parts)
{
    for (size_t i = 0; i < ts->n; i++) {
        fb_target_t *t = &ts->t[i];
        quiesce(t);
        for (int k = 0; k < parts->cnt; k++) {
            part_t *p = part_of(t, parts->elems[k].topic, parts->elems[k].partition, false);
            if (p == NULL)
                continue;
            while (p->head != NULL)
                forget(t, p->head);
            p->taken = -1;
            for (size_t b = 0; t->buckets != NULL && b < BUCKETS; b++) {
                for (stream_t **sp = &t->buckets[b]; *sp != NULL;) {
                    stream_t *s = *sp;
                    if (s->part == p) {
                        *sp = s->next;
                        free(s);
                    } else {
                        sp = &s->next;
                    }
                }
            }
        }
        resume(t);
    }
    if (ts->committed != NULL) {
        rd_kafka_topic_partition_list_destroy(ts->committed);
        ts->committed = NULL;
    }
}

/* client -- t's client from its settings and credentials file. */
static int
client(fb_target_t *t, char *err, size_t errlen)
{
    const fb_conf_target_t *c = t->c;
    char why[512] = "";
    int rc = -1;

    if (c->type == FB_TARGET_S3) {
        fb_s3_credentials_t cred;
        if (fb_s3_credentials_load(c->credentials_file, &cred, why, sizeof(why)) < 0) {
            fb_errf(err, errlen, "target %s: %s", c->name, why);
            return -1;
        }
        fb_s3_opts_t o = {.endpoint = c->endpoint, .region = c->region, .bucket = c->bucket,
                          .path_style = c->path_style, .access_key_id = cred.id,
                          .secret_access_key = cred.secret,
                          .ca_file = c->ca_file[0] ? c->ca_file : NULL,
                          .connect_timeout_ms = (long)c->connect_timeout_ms,
                          .timeout_ms = (long)c->timeout_ms};
        t->s3 = fb_s3_client_new(&o, why, sizeof(why));
        fb_s3_credentials_wipe(&cred);
        if (t->s3 == NULL)
            fb_errf(err, errlen, "target %s: %s", c->name, why);
        return t->s3 ? 0 : -1;
    }
    char *secret = NULL;
    bool api_key = c->api_key_file != NULL && c->api_key_file[0] != '\0';
    const char *file = api_key ? c->api_key_file
                       : c->credentials_file[0] ? c->credentials_file : NULL;
    if (file != NULL && fb_bulk_secret_read(file, &secret, why, sizeof(why)) < 0) {
        fb_errf(err, errlen, "target %s: %s", c->name, why);
        return -1;
    }
    if (c->type == FB_TARGET_ELASTICSEARCH) {
        fb_bulk_opts_t o = {.url = c->url, .basic_auth = api_key ? NULL : secret,
                            .api_key = api_key ? secret : NULL,
                            .ca_file = c->ca_file[0] ? c->ca_file : NULL,
                            .connect_timeout_ms = (long)c->connect_timeout_ms,
                            .timeout_ms = (long)c->timeout_ms, .gzip = c->gzip};
        t->bulk = fb_bulk_new(&o, why, sizeof(why));
        t->body = t->bulk ? fb_bulk_body_new() : NULL;
        rc = t->body ? 0 : -1;
    } else {
        fb_post_opts_t o = {.url = c->url, .headers = (const char *const *)c->headers,
                            .n_headers = c->n_headers, .basic_auth = secret,
                            .ca_file = c->ca_file[0] ? c->ca_file : NULL,
                            .connect_timeout_ms = (long)c->connect_timeout_ms,
                            .timeout_ms = (long)c->timeout_ms, .gzip = c->gzip};
        t->post = fb_post_new(&o, why, sizeof(why));
        t->whys = t->post ? calloc(POST_RECORDS, sizeof(*t->whys)) : NULL;
        rc = t->whys ? 0 : -1;
    }
    if (secret != NULL)
        fb_bulk_secret_free(secret);
    if (rc < 0)
        fb_errf(err, errlen, "target %s: %s", c->name, why[0] ? why : "out of memory");
    return rc;
}

fb_targets_t *
fb_targets_new(const fb_conf_t *conf, unsigned router_index, fb_mslot_t *metrics,
               fb_target_refuse_fn cb, void *cb_arg, char *err, size_t errlen)
{
    fb_targets_t *ts = calloc(1, sizeof(*ts));

    if (ts == NULL || (conf->n_targets > 0 &&
                       (ts->t = calloc(conf->n_targets, sizeof(*ts->t))) == NULL)) {
        free(ts);
        fb_errf(err, errlen, "out of memory");
        return NULL;
    }
    ts->conf = conf;
    ts->index = router_index;
    ts->metrics = metrics;
    ts->cb = cb;
    ts->cb_arg = cb_arg;
    for (size_t i = 0; i < conf->n_targets; i++) {
        fb_target_t *t = &ts->t[ts->n++];
        t->ts = ts;
        t->c = &conf->targets[i];
        pthread_mutex_init(&t->mu, NULL);
        pthread_cond_init(&t->wake, NULL);
        pthread_cond_init(&t->idle, NULL);
        fb_backoff_init(&t->backoff, PARK_FIRST_MS, PARK_MAX_MS);
        if (t->c->type != FB_TARGET_ELASTICSEARCH &&
            (t->buckets = calloc(BUCKETS, sizeof(*t->buckets))) == NULL) {
            fb_errf(err, errlen, "out of memory");
            fb_targets_free(ts);
            return NULL;
        }
        if (client(t, err, errlen) < 0) {
            fb_targets_free(ts);
            return NULL;
        }
    }
    for (size_t i = 0; i < ts->n; i++) {
        int rc = pthread_create(&ts->t[i].thread, NULL, deliver, &ts->t[i]);
        if (rc != 0) {
            fb_errf(err, errlen, "cannot start the delivery thread of target %s: %s",
                    ts->t[i].c->name, strerror(rc));
            fb_targets_free(ts);
            return NULL;
        }
        ts->t[i].started = true;
    }
    return ts;
}

void
fb_targets_free(fb_targets_t *ts)
{
    if (ts == NULL)
        return;
    for (size_t i = 0; i < ts->n; i++) {
        fb_target_t *t = &ts->t[i];
        if (t->started) {
            pthread_mutex_lock(&t->mu);
            t->stop = true;
            pthread_cond_signal(&t->wake);
            pthread_mutex_unlock(&t->mu);
            pthread_join(t->thread, NULL);
        }
        for (size_t k = 0; k < t->n_parts; k++) {
            while (t->parts[k]->head != NULL)
                forget(t, t->parts[k]->head);
            free(t->parts[k]->topic);
            free(t->parts[k]);
        }
        free(t->parts);
        for (size_t b = 0; t->buckets != NULL && b < BUCKETS; b++)
            for (stream_t *s = t->buckets[b], *next; s != NULL; s = next) {
                next = s->next;
                free(s);
            }
        free(t->buckets);
        fb_s3_client_free(t->s3);
        fb_bulk_free(t->bulk);
        fb_bulk_body_free(t->body);
        fb_post_free(t->post);
        free(t->work);
        fb_buf_free(&t->buf);
        free(t->whys);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->wake);
        pthread_cond_destroy(&t->idle);
    }
    free(ts->t);
    if (ts->committed != NULL)
        rd_kafka_topic_partition_list_destroy(ts->committed);
    free(ts);
}
