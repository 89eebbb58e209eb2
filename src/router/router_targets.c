/*
 * router_targets.c -- queues, delivery and holds of a router's remote
 * targets (s3, elasticsearch, http); see router_targets.h. Must never
 * let a record's offset be stored before every target acknowledged it,
 * never drop a record for anything but the target's refusal of that
 * record, and never follow a symbolic link under router.dir/.targets.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secret.h"
#include "router/router_bulk.h"
#include "router/router_gzip.h"
#include "router/router_post.h"
#include "router/router_s3.h"
#include "router/router_targets.h"

#define PARK_FIRST_MS 1000
#define PARK_MAX_MS 60000
#define STILL_FAILING_MS 60000 /* a failing target is logged again this often */
#define BULK_DOCS 5000         /* documents per _bulk */
#define POST_RECORDS 1000      /* records per POST */
#define POST_BYTES (4u << 20)  /* bytes of lines per POST */
#define BUCKETS 4096           /* of the streams' hash table */
#define MARKS_MAX 256          /* bytes of a marks file */
#define MARKS_MAGIC "fbpipe-target-marks 1\n"

typedef struct stream stream_t;
typedef struct part part_t;

/* one record a target holds, with a copy of what it needs: its line, and
 * the record itself for a dead letter */
typedef struct entry {
    struct entry *pprev, *pnext; /* its partition's, in offset order */
    struct entry *qprev, *qnext; /* the target's queue (elasticsearch) or its stream's */
    part_t *part;
    stream_t *stream;
    int64_t offset, time_s, timestamp;
    bool cut_after; /* s3: an object ends with this record */
    bool has_key;
    size_t cost;
    char *line, *key, *value;
    char *access_key; /* the line's: the file a line would go to */
    size_t line_len, key_len, len;
    rd_kafka_headers_t *hdrs;
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
    bool uploaded_unmarked; /* stored, its mark not yet written */
};

struct fb_target {
    fb_targets_t *ts;
    const fb_conf_target_t *c;
    fb_s3_t *s3;
    fb_bulk_t *bulk;
    fb_bulk_body_t *body;
    entry_t **bulk_entries;
    fb_post_t *post;
    part_t *parts;
    size_t n_parts;
    stream_t **buckets;
    size_t scan; /* the bucket the next pump starts from: every stream gets its turn */
    entry_t *qhead, *qtail;
    size_t pending;
    uint64_t bytes;
    fb_backoff_t backoff;
    uint64_t parked_until, failing_since, logged_ms;
    unsigned long failures;
    char *buf; /* a request's body */
    size_t buf_cap;
};

struct fb_targets {
    const fb_conf_t *conf;
    unsigned index;
    fb_target_refuse_fn cb;
    void *cb_arg;
    fb_target_t *t;
    size_t n;
    /* the partitions assigned and whether the group has committed an
     * offset for them (the S3 marks are trusted only then) */
    rd_kafka_topic_partition_list_t *committed;
};

/* ---- memory ------------------------------------------------------------ */

static part_t *
part_of(fb_target_t *t, const char *topic, int32_t partition, bool make)
{
    for (size_t i = 0; i < t->n_parts; i++)
        if (t->parts[i].partition == partition && strcmp(t->parts[i].topic, topic) == 0)
            return &t->parts[i];
    if (!make)
        return NULL;
    /* parts never move while entries point at them: grown by a fixed
     * step, and the router's partitions are few (at most the topic's) */
    if (t->n_parts % 64 == 0) {
        part_t *p = realloc(t->parts, (t->n_parts + 64) * sizeof(*p));
        if (p == NULL)
            return NULL;
        if (p != t->parts) { /* entries and streams point at parts: fix them */
            for (size_t i = 0; i < t->n_parts; i++) {
                for (entry_t *e = p[i].head; e != NULL; e = e->pnext)
                    e->part = &p[i];
            }
            for (size_t b = 0; t->buckets != NULL && b < BUCKETS; b++)
                for (stream_t *s = t->buckets[b]; s != NULL; s = s->next)
                    s->part = p + (s->part - t->parts);
        }
        t->parts = p;
    }
    part_t *p = &t->parts[t->n_parts];
    if ((p->topic = strdup(topic)) == NULL)
        return NULL;
    p->partition = partition;
    p->head = p->tail = NULL;
    p->taken = -1;
    t->n_parts++;
    return p;
}

static void
entry_free(entry_t *e)
{
    if (e->hdrs != NULL)
        rd_kafka_headers_destroy(e->hdrs);
    free(e);
}

/* unlink -- e leaves its partition, its queue or stream, and memory. */
static void
unlink_entry(fb_target_t *t, entry_t *e)
{
    part_t *p = e->part;
    stream_t *s = e->stream;

    if (e->pprev) e->pprev->pnext = e->pnext; else p->head = e->pnext;
    if (e->pnext) e->pnext->pprev = e->pprev; else p->tail = e->pprev;
    entry_t **head = s ? &s->head : &t->qhead, **tail = s ? &s->tail : &t->qtail;
    if (e->qprev) e->qprev->qnext = e->qnext; else *head = e->qnext;
    if (e->qnext) e->qnext->qprev = e->qprev; else *tail = e->qprev;
    if (s != NULL && s->open == e)
        s->open = e->qnext;
    t->pending--;
    t->bytes -= e->cost;
    entry_free(e);
}

static unsigned
bucket_of(const char *key, int32_t partition)
{
    uint32_t h = 2166136261u;

    for (const char *c = key; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    h = (h ^ (uint32_t)partition) * 16777619u;
    return h % BUCKETS;
}

/* ---- S3 marks ------------------------------------------------------------ */

/* marks_path -- router.dir/.targets/<target>/<key>/<topic>-<partition>;
 * with make, the folders are made (0750), none a symbolic link. */
static int
marks_path(fb_target_t *t, const stream_t *s, char *out, size_t len, bool make)
{
    const char *parts[] = {".targets", t->c->name, s->key};
    size_t at = (size_t)snprintf(out, len, "%s", t->ts->conf->router_dir);
    struct stat st;

    for (size_t i = 0; i < 3; i++) {
        at += (size_t)snprintf(out + at, at < len ? len - at : 0, "/%s", parts[i]);
        if (at >= len)
            return -1;
        if (make && mkdir(out, 0750) < 0 && errno != EEXIST)
            return -1;
        if (make && (lstat(out, &st) < 0 || !S_ISDIR(st.st_mode))) {
            errno = ENOTDIR;
            return -1;
        }
    }
    at += (size_t)snprintf(out + at, at < len ? len - at : 0, "/%s-%" PRId32, s->part->topic,
                           s->part->partition);
    return at < len ? 0 : -1;
}

/* marks_load -- the stream's marks from its file, when the partition's
 * marks can be trusted; none otherwise (everything from the stored
 * offset is delivered again: at least once, never lost). */
static void
marks_load(fb_target_t *t, stream_t *s, bool trusted)
{
    char path[4096], buf[MARKS_MAX + 1];
    long long through, intent;
    int n, fd;
    ssize_t got;

    s->through = s->intent = -1;
    if (!trusted || marks_path(t, s, path, sizeof(path), false) < 0)
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

/* marks_save -- through and intent, durably: a temporary file written
 * and synced, renamed over the old one, the folder synced. */
static int
marks_save(fb_target_t *t, stream_t *s, int64_t through, int64_t intent, char *err,
           size_t errlen)
{
    char path[4096], tmp[4200], text[MARKS_MAX];
    int fd, len;

    if (marks_path(t, s, path, sizeof(path), true) < 0) {
        fb_errf(err, errlen, "cannot make the folder of the marks of %s [%d]: %s", s->key,
                (int)s->part->partition, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    len = snprintf(text, sizeof(text), MARKS_MAGIC "through %lld\ncut %lld\n",
                   (long long)through, (long long)intent);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        fb_errf(err, errlen, "cannot write %s: %s", path, strerror(e));
        return -1;
    }
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        int rc = fsync(fd);
        close(fd);
        if (rc == 0) {
            s->through = through;
            s->intent = intent;
            return 0;
        }
    }
    fb_errf(err, errlen, "cannot sync the folder %s: %s", path, strerror(errno));
    return -1;
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

/* s3_append -- e joins its stream's object being filled, which is cut
 * first when e would go past max_records or max_bytes, or when e's own
 * time is max_age past its first record's: functions of the records, so
 * that the same records read again make the same objects. An object
 * whose end was written down (cut by the wall clock) ends there. */
static void
s3_append(fb_target_t *t, stream_t *s, entry_t *e)
{
    const fb_conf_target_t *c = t->c;

    if (s->open != NULL && s->intent < 0 &&
        (s->open_count >= c->max_records || s->open_bytes + e->line_len > c->max_bytes ||
         (e->time_s > s->open_time &&
          (uint64_t)(e->time_s - s->open_time) * 1000 >= c->max_age_ms)))
        cut(s);
    if (s->open != NULL && s->intent >= 0 && e->offset > s->intent)
        cut(s);
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

/* ---- taking records -------------------------------------------------------- */

int
fb_target_take(fb_target_t *t, const rd_kafka_message_t *m, const fb_line_t *line)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    part_t *p = part_of(t, topic, m->partition, true);
    stream_t *s = NULL;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t tstype;

    if (p == NULL)
        return -1;
    if (m->offset <= p->taken)
        return 0; /* read again: queued or delivered already */
    if (t->c->type != FB_TARGET_ELASTICSEARCH) {
        if ((s = stream_of(t, p, line->access_key)) == NULL)
            return -1;
        if (m->offset <= s->through) {
            p->taken = m->offset; /* in an object stored before a restart */
            return 0;
        }
    }
    size_t akl = strlen(line->access_key);
    size_t cost = sizeof(entry_t) + line->len + m->key_len + m->len + akl + 4;
    entry_t *e = calloc(1, cost);
    if (e == NULL)
        return -1;
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
        return -1;
    }
    e->offset = m->offset;
    e->time_s = line->time_s;
    e->timestamp = rd_kafka_message_timestamp(m, &tstype);
    e->cost = cost;
    e->part = p;
    e->stream = s;
    e->pprev = p->tail;
    if (p->tail) p->tail->pnext = e; else p->head = e;
    p->tail = e;
    entry_t **head = s ? &s->head : &t->qhead, **tail = s ? &s->tail : &t->qtail;
    e->qprev = *tail;
    if (*tail) (*tail)->qnext = e; else *head = e;
    *tail = e;
    p->taken = m->offset;
    t->pending++;
    t->bytes += cost;
    if (t->c->type == FB_TARGET_S3)
        s3_append(t, s, e);
    return 0;
}

/* ---- outcomes ---------------------------------------------------------------- */

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

/* refuse -- e to the dead letters (the caller's); 0 once there, -1 if
 * not (it stays). */
static int
refuse(fb_target_t *t, entry_t *e, const char *why)
{
    fb_target_refused_t r = {.target = t->c->name, .topic = e->part->topic,
                             .partition = e->part->partition, .offset = e->offset,
                             .timestamp = e->timestamp, .key = e->has_key ? e->key : NULL,
                             .key_len = e->key_len, .value = e->value, .len = e->len,
                             .headers = e->hdrs};
    char text[1024];

    snprintf(text, sizeof(text), "target %s: %s", t->c->name, why);
    return t->ts->cb(t->ts->cb_arg, &r, text);
}

/* body_of -- the lines of n entries from e on into t->buf; its length,
 * or -1 out of memory. */
static ssize_t
body_of(fb_target_t *t, entry_t *e, size_t n)
{
    size_t len = 0;

    for (entry_t *x = e; x != NULL && n-- > 0; x = x->qnext) {
        if (len + x->line_len > t->buf_cap) {
            size_t cap = t->buf_cap ? t->buf_cap : 65536;
            while (cap < len + x->line_len)
                cap *= 2;
            char *b = realloc(t->buf, cap);
            if (b == NULL)
                return -1;
            t->buf = b;
            t->buf_cap = cap;
        }
        memcpy(t->buf + len, x->line, x->line_len);
        len += x->line_len;
    }
    return (ssize_t)len;
}

/* ---- S3 ------------------------------------------------------------------------ */

/* s3_put -- the stream's first object (from its head to the first cut),
 * stored; its mark written; its records forgotten. 0, or -1 (parked). */
static int
s3_put(fb_target_t *t, stream_t *s)
{
    const fb_conf_target_t *c = t->c;
    entry_t *first = s->head, *last = first;
    size_t n = 1;
    char name[FB_S3_NAME_MAX + 1], err[FB_S3_ERR_LEN];
    uint8_t *gz = NULL;
    size_t gz_len = 0;
    fb_s3_result_t rc = FB_S3_OK;

    while (!last->cut_after) {
        last = last->qnext;
        n++;
    }
    if (!s->uploaded_unmarked) {
        ssize_t len = body_of(t, first, n);
        if (len < 0 || (c->gzip && fb_gzip(t->buf, (size_t)len, 6, &gz, &gz_len) < 0)) {
            park(t, "out of memory making an object");
            return -1;
        }
        if (fb_s3_object_name(name, sizeof(name), c->prefix, s->key, first->time_s,
                              first->part->topic, first->part->partition, first->offset,
                              last->offset, c->gzip) < 0) {
            rc = FB_S3_REFUSED;
            fb_errf(err, sizeof(err), "no valid object name for %s [%d] %lld-%lld (prefix, "
                    "key or topic)", s->key, (int)first->part->partition,
                    (long long)first->offset, (long long)last->offset);
        } else {
            rc = fb_s3_put(t->s3, name, gz ? (const void *)gz : t->buf,
                           gz ? gz_len : (size_t)len, "application/x-ndjson",
                           gz ? "gzip" : NULL, err, sizeof(err));
        }
        free(gz);
        if (rc == FB_S3_RETRY) {
            park(t, err);
            return -1;
        }
        if (rc == FB_S3_REFUSED) {
            for (entry_t *x = first; n-- > 0; x = x->qnext)
                if (refuse(t, x, err) < 0) {
                    park(t, "a refused object's records could not be written to the dead "
                            "letters");
                    return -1;
                }
        }
        s->uploaded_unmarked = true;
    }
    if (marks_save(t, s, last->offset, -1, err, sizeof(err)) < 0) {
        park(t, err);
        return -1;
    }
    s->uploaded_unmarked = false;
    s->cuts--;
    for (entry_t *x = s->head, *next; x != NULL; x = next) {
        next = x->qnext;
        bool end = x->cut_after;
        unlink_entry(t, x);
        if (end)
            break;
    }
    if (rc == FB_S3_OK)
        delivered(t);
    return 0;
}

static void
pump_s3(fb_target_t *t, uint64_t until)
{
    uint64_t now = fb_monotonic_ms();

    for (size_t i = 0; i < BUCKETS && fb_monotonic_ms() < until; i++) {
        size_t b = (t->scan + i) % BUCKETS;
        for (stream_t *s = t->buckets[b]; s != NULL; s = s->next) {
            /* a quiet key's object, once it has waited flush_after: its
             * end written down first, so that it is made the same again */
            if (s->cuts == 0 && s->open != NULL && now - s->opened_ms >= t->c->flush_after_ms) {
                char err[512];
                if (marks_save(t, s, s->through, s->tail->offset, err, sizeof(err)) < 0) {
                    park(t, err);
                    return;
                }
                cut(s);
                s->intent = -1;
            }
            while (s->cuts > 0) {
                if (fb_monotonic_ms() >= until)
                    return;
                if (s3_put(t, s) < 0)
                    return;
            }
        }
        t->scan = (b + 1) % BUCKETS;
    }
}

/* ---- OpenSearch ------------------------------------------------------------------ */

static void
pump_bulk(fb_target_t *t, uint64_t until)
{
    char err[512], index[FB_BULK_INDEX_MAX + 1], id[FB_BULK_ID_MAX + 1];
    fb_bulk_result_t res;

    while (t->qhead != NULL && fb_monotonic_ms() < until) {
        size_t n = 0;
        entry_t *e = t->qhead;
        fb_bulk_body_clear(t->body);
        while (e != NULL && n < BULK_DOCS) {
            entry_t *next = e->qnext;
            int rc = -1;
            err[0] = '\0';
            if (fb_bulk_index_name(t->c->index, e->access_key, (time_t)e->time_s, index, err,
                                   sizeof(err)) == 0 &&
                fb_bulk_doc_id(id, e->part->topic, e->part->partition, e->offset) == 0)
                rc = fb_bulk_body_add(t->body, index, id, e->line, e->line_len, err,
                                      sizeof(err));
            else if (err[0] == '\0')
                snprintf(err, sizeof(err), "no document id fits");
            if (rc == FB_BULK_E_FULL)
                break;
            if (rc != 0) { /* the document itself */
                if (refuse(t, e, err) < 0) {
                    park(t, "a refused document could not be written to the dead letters");
                    return;
                }
                unlink_entry(t, e);
            } else {
                t->bulk_entries[n++] = e;
            }
            e = next;
        }
        if (n == 0)
            continue;
        if (fb_bulk_send(t->bulk, t->body, &res) < 0) {
            park(t, res.error);
            return;
        }
        bool retry = false;
        for (size_t i = 0; i < n; i++) {
            entry_t *x = t->bulk_entries[i];
            const fb_bulk_item_t *it = &res.items[i];
            if (it->verdict == FB_BULK_RETRY) {
                retry = true;
                continue;
            }
            if (it->verdict == FB_BULK_REFUSED) {
                snprintf(err, sizeof(err), "refused by the index (status %d, %s: %s)",
                         it->status, it->type, it->reason);
                if (refuse(t, x, err) < 0) {
                    retry = true;
                    continue;
                }
            }
            unlink_entry(t, x);
        }
        if (retry) {
            park(t, res.error[0] ? res.error : "some documents are to be sent again");
            return;
        }
        delivered(t);
    }
}

/* ---- HTTP -------------------------------------------------------------------------- */

/* post -- n records of s from e on in one POST; halves on a refusal
 * until the record at fault is alone (a dead letter). 0, or -1 parked. */
static int
post(fb_target_t *t, stream_t *s, entry_t *e, size_t n)
{
    char err[1024], idem[320];
    entry_t *last = e;

    for (size_t i = 1; i < n; i++)
        last = last->qnext;
    ssize_t len = body_of(t, e, n);
    if (len < 0) {
        park(t, "out of memory making a request");
        return -1;
    }
    snprintf(idem, sizeof(idem), "%s-%d-%lld-%lld", s->part->topic, (int)s->part->partition,
             (long long)e->offset, (long long)last->offset);
    fb_post_result_t rc = fb_post_send(t->post, t->buf, (size_t)len, idem, err, sizeof(err));
    if (rc == FB_POST_RETRY) {
        park(t, err);
        return -1;
    }
    if (rc != FB_POST_OK && n > 1) {
        entry_t *mid = e;
        for (size_t i = 0; i < n / 2; i++)
            mid = mid->qnext;
        if (post(t, s, e, n / 2) < 0)
            return -1;
        return post(t, s, mid, n - n / 2);
    }
    if (rc != FB_POST_OK && refuse(t, e, err) < 0) {
        park(t, "a refused record could not be written to the dead letters");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        entry_t *next = e->qnext;
        unlink_entry(t, e);
        e = next;
    }
    if (rc == FB_POST_OK)
        delivered(t);
    return 0;
}

static void
pump_http(fb_target_t *t, uint64_t until)
{
    for (size_t i = 0; i < BUCKETS && fb_monotonic_ms() < until; i++) {
        size_t b = (t->scan + i) % BUCKETS;
        for (stream_t *s = t->buckets[b]; s != NULL; s = s->next) {
            while (s->head != NULL) {
                if (fb_monotonic_ms() >= until)
                    return;
                size_t n = 0, bytes = 0;
                for (entry_t *e = s->head; e != NULL && n < POST_RECORDS &&
                                           (n == 0 || bytes + e->line_len <= POST_BYTES);
                     e = e->qnext) {
                    n++;
                    bytes += e->line_len;
                }
                if (post(t, s, s->head, n) < 0)
                    return;
            }
        }
        t->scan = (b + 1) % BUCKETS;
    }
}

/* ---- the set ------------------------------------------------------------------------- */

void
fb_targets_pump(fb_targets_t *ts, uint64_t budget_ms)
{
    uint64_t now = fb_monotonic_ms(), until = now + budget_ms;

    for (size_t i = 0; i < ts->n; i++) {
        fb_target_t *t = &ts->t[i];
        if (now < t->parked_until)
            continue;
        switch (t->c->type) {
        case FB_TARGET_S3:
            pump_s3(t, until);
            break;
        case FB_TARGET_ELASTICSEARCH:
            pump_bulk(t, until);
            break;
        case FB_TARGET_HTTP:
            pump_http(t, until);
            break;
        default:
            break;
        }
    }
}

int64_t
fb_targets_hold(fb_targets_t *ts, const char *topic, int32_t partition)
{
    int64_t hold = -1;

    for (size_t i = 0; i < ts->n; i++) {
        const part_t *p = part_of(&ts->t[i], topic, partition, false);
        if (p != NULL && p->head != NULL && (hold < 0 || p->head->offset < hold))
            hold = p->head->offset;
    }
    return hold;
}

size_t
fb_targets_pending(const fb_targets_t *ts)
{
    size_t n = 0;

    for (size_t i = 0; i < ts->n; i++)
        n += ts->t[i].pending;
    return n;
}

bool
fb_targets_full(const fb_targets_t *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        if (ts->t[i].bytes >= ts->t[i].c->buffer_max)
            return true;
    return false;
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
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err;

    if (ts->n == 0 || c == NULL) {
        if (c != NULL)
            rd_kafka_topic_partition_list_destroy(c);
        return;
    }
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
    if (ts->committed == NULL) {
        ts->committed = c;
        return;
    }
    for (int i = 0; i < c->cnt; i++) {
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(
            ts->committed, c->elems[i].topic, c->elems[i].partition);
        if (p == NULL)
            p = rd_kafka_topic_partition_list_add(ts->committed, c->elems[i].topic,
                                                  c->elems[i].partition);
        p->offset = c->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(c);
}

void
fb_targets_revoked(fb_targets_t *ts, const rd_kafka_topic_partition_list_t *parts)
{
    for (size_t i = 0; i < ts->n; i++) {
        fb_target_t *t = &ts->t[i];
        for (int k = 0; k < parts->cnt; k++) {
            part_t *p = part_of(t, parts->elems[k].topic, parts->elems[k].partition, false);
            if (p == NULL)
                continue;
            while (p->head != NULL)
                unlink_entry(t, p->head);
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
    char why[512];
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
    const char *file = c->credentials_file[0] ? c->credentials_file
                       : c->api_key_file && c->api_key_file[0] ? c->api_key_file : NULL;
    if (file != NULL && fb_bulk_secret_read(file, &secret, why, sizeof(why)) < 0) {
        fb_errf(err, errlen, "target %s: %s", c->name, why);
        return -1;
    }
    if (c->type == FB_TARGET_ELASTICSEARCH) {
        bool api_key = c->api_key_file && c->api_key_file[0];
        fb_bulk_opts_t o = {.url = c->url, .basic_auth = api_key ? NULL : secret,
                            .api_key = api_key ? secret : NULL,
                            .ca_file = c->ca_file[0] ? c->ca_file : NULL,
                            .connect_timeout_ms = (long)c->connect_timeout_ms,
                            .timeout_ms = (long)c->timeout_ms, .gzip = c->gzip};
        t->bulk = fb_bulk_new(&o, why, sizeof(why));
        t->body = t->bulk ? fb_bulk_body_new() : NULL;
        t->bulk_entries = t->body ? calloc(BULK_DOCS, sizeof(*t->bulk_entries)) : NULL;
        rc = t->bulk_entries ? 0 : -1;
    } else {
        fb_post_opts_t o = {.url = c->url, .headers = (const char *const *)c->headers,
                            .n_headers = c->n_headers, .basic_auth = secret,
                            .ca_file = c->ca_file[0] ? c->ca_file : NULL,
                            .connect_timeout_ms = (long)c->connect_timeout_ms,
                            .timeout_ms = (long)c->timeout_ms, .gzip = c->gzip};
        t->post = fb_post_new(&o, why, sizeof(why));
        rc = t->post ? 0 : -1;
    }
    if (secret != NULL)
        fb_bulk_secret_free(secret);
    if (rc < 0)
        fb_errf(err, errlen, "target %s: %s", c->name, why[0] ? why : "out of memory");
    return rc;
}

fb_targets_t *
fb_targets_new(const fb_conf_t *conf, unsigned router_index, fb_target_refuse_fn cb,
               void *cb_arg, char *err, size_t errlen)
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
    ts->cb = cb;
    ts->cb_arg = cb_arg;
    for (size_t i = 0; i < conf->n_targets; i++) {
        fb_target_t *t = &ts->t[ts->n++];
        t->ts = ts;
        t->c = &conf->targets[i];
        fb_backoff_init(&t->backoff, PARK_FIRST_MS, PARK_MAX_MS);
        if ((t->c->type != FB_TARGET_ELASTICSEARCH &&
             (t->buckets = calloc(BUCKETS, sizeof(*t->buckets))) == NULL)) {
            fb_errf(err, errlen, "out of memory");
            fb_targets_free(ts);
            return NULL;
        }
        if (client(t, err, errlen) < 0) {
            fb_targets_free(ts);
            return NULL;
        }
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
        for (size_t k = 0; k < t->n_parts; k++) {
            while (t->parts[k].head != NULL)
                unlink_entry(t, t->parts[k].head);
            free(t->parts[k].topic);
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
        free(t->bulk_entries);
        fb_post_free(t->post);
        free(t->buf);
    }
    free(ts->t);
    if (ts->committed != NULL)
        rd_kafka_topic_partition_list_destroy(ts->committed);
    free(ts);
}
