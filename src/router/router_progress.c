/*
 * router_progress.c -- per-target delivered-through marks (router_progress.h):
 * a chained hash table of (topic, partition) entries on one LRU list, each
 * with its topic id and a small array of marks; files under
 * <dir>/.progress replaced whole (temporary, fsync, rename, fsync of the
 * folder).
 *
 * It must never log, never follow a symbolic link below .progress, never
 * quote a file's contents in a reason (a planted hard link may point at
 * anything), and never answer with a mark it could not read whole and
 * check: anything doubtful is no mark (the records are delivered again).
 *
 * File format, version 1 (every line ends in '\n', fields one space apart):
 *
 *   fbpipe-progress 1
 *   topic <topic>
 *   partition <partition>
 *   id <32 lowercase hex digits: the topic id, all 0 when unknown>
 *   target <name> <offset>        (0..FB_PROGRESS_TARGETS lines, each name once)
 *   end <number of target lines>
 *
 * Offsets are decimal, 0..INT64_MAX, without sign or leading zeros. The
 * topic and partition must be those of the file's name, and "end" its last
 * line: a file copied under another name or cut short is stale.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "router/router_progress.h"

#define SUBDIR ".progress"
#define MAGIC "fbpipe-progress"
#define VERSION 1
#define FILE_MAX 8192    /* bytes of a file: FB_PROGRESS_TARGETS lines fit well */
#define LINE_MAX_LEN 320 /* bytes of a line, '\n' included ("topic" and 249 bytes) */
#define TEMP_PREFIX ".new-"
#define TOPICS_MAX 64 /* topics whose last id is remembered; the oldest replaced */

typedef struct mark {
    char target[FB_PROGRESS_TARGET_MAX + 1];
    int64_t through; /* in memory; FB_PROGRESS_NONE: reset away */
    int64_t base;    /* what a roll back returns to: as last written or read
                      * (FB_PROGRESS_NONE: not in the file) */
} mark_t;

typedef struct part {
    struct part *hnext;       /* hash chain */
    struct part *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    char *topic;
    int32_t partition;
    uint8_t id[FB_PROGRESS_ID_LEN];
    mark_t *marks; /* n_marks of cap_marks, at most FB_PROGRESS_TARGETS */
    size_t n_marks, cap_marks;
    bool changed; /* a mark set or reset since the file was written or read */
    bool rewrite; /* the file must be replaced (stale, marks dropped, id taken) */
    bool staged;  /* sync: renamed into place, waiting for the folder's fsync */
    char *stale;  /* why it was stale, until fb_progress_next_stale takes it */
} part_t;

typedef struct topic_id {
    char *topic;
    uint8_t id[FB_PROGRESS_ID_LEN];
} topic_id_t;

struct fb_progress {
    char *path; /* <dir>/.progress, for messages */
    int dirfd;  /* .progress */
    size_t max_cached, n;
    part_t **buckets;
    size_t n_buckets; /* a power of two */
    part_t *head, *tail;
    topic_id_t topics[TOPICS_MAX];
    size_t n_topics, next_topic;
    size_t n_stale; /* entries with a reason not yet reported */
    char *reported; /* the reason fb_progress_next_stale returned last */
    char reported_topic[FB_PROGRESS_TOPIC_MAX + 1];
};

/* fnv -- FNV-1a 64 of len bytes, continuing from h. */
static uint64_t
fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *s = data;

    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

#define FNV_SEED 1469598103934665603ULL

/* valid_topic -- a Kafka topic name: 1..249 bytes of [A-Za-z0-9._-], not
 * "." or "..". */
static bool
valid_topic(const char *t)
{
    size_t n = 0;

    if (t == NULL)
        return false;
    for (; t[n] != '\0'; n++) {
        char c = t[n];
        if (n >= FB_PROGRESS_TOPIC_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0 && strcmp(t, ".") != 0 && strcmp(t, "..") != 0;
}

/* valid_target -- 1..32 bytes of [a-z0-9_-]. */
static bool
valid_target(const char *t)
{
    size_t n = 0;

    if (t == NULL)
        return false;
    for (; t[n] != '\0'; n++) {
        char c = t[n];
        if (n >= FB_PROGRESS_TARGET_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* file_name -- <topic>-<partition> into out (NAME_MAX + 1 bytes); 0, or
 * -1 with err when the topic or partition is invalid or the name too long
 * for a file name. */
static int
file_name(const fb_progress_t *p, char *out, const char *topic, int32_t partition, char *err,
          size_t errlen)
{
    if (!valid_topic(topic)) {
        fb_errf(err, errlen, "%s: invalid topic name (1 to %d bytes of [A-Za-z0-9._-]): refused",
            p->path, FB_PROGRESS_TOPIC_MAX);
        return -1;
    }
    if (partition < 0) {
        fb_errf(err, errlen, "%s: topic %s: invalid partition %" PRId32 ": refused", p->path, topic,
            partition);
        return -1;
    }
    int n = snprintf(out, NAME_MAX + 1, "%s-%" PRId32, topic, partition);
    if (n < 0 || n > NAME_MAX) {
        fb_errf(err, errlen, "%s: %s-%" PRId32 ": too long for a file name: refused", p->path, topic,
            partition);
        return -1;
    }
    return 0;
}

/* temp_name -- the temporary of a file name: TEMP_PREFIX and 16 hex
 * digits of its hash (a final name always ends in "-<digits>", so none
 * can be mistaken for the other). */
static void
temp_name(char *out, size_t len, const char *name)
{
    snprintf(out, len, TEMP_PREFIX "%016" PRIx64, fnv(FNV_SEED, name, strlen(name)));
}

static bool
id_zero(const uint8_t *id)
{
    for (size_t i = 0; i < FB_PROGRESS_ID_LEN; i++)
        if (id[i] != 0)
            return false;
    return true;
}

/* hex -- id as 32 lowercase hex digits into out (33 bytes). */
static void
hex(char *out, const uint8_t *id)
{
    for (size_t i = 0; i < FB_PROGRESS_ID_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static uint64_t
part_hash(const char *topic, int32_t partition)
{
    return fnv(fnv(FNV_SEED, topic, strlen(topic) + 1), &partition, sizeof(partition));
}

fb_progress_t *
fb_progress_open(const fb_progress_opts_t *o, char *err, size_t errlen)
{
    fb_progress_t *p;
    int top = -1;
    bool made = false;

    if (o == NULL || o->dir == NULL) {
        fb_errf(err, errlen, "no router.dir given");
        return NULL;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        fb_errf(err, errlen, "out of memory");
        return NULL;
    }
    p->dirfd = -1;
    p->max_cached = o->max_cached ? o->max_cached : FB_PROGRESS_CACHED;
    p->n_buckets = 16;
    while (p->n_buckets < p->max_cached && p->n_buckets < 16384)
        p->n_buckets *= 2;
    p->buckets = calloc(p->n_buckets, sizeof(*p->buckets));
    size_t plen = strlen(o->dir) + sizeof("/" SUBDIR);
    p->path = malloc(plen);
    if (p->buckets == NULL || p->path == NULL) {
        fb_errf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(p->path, plen, "%s/" SUBDIR, o->dir);
    top = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0) {
        fb_errf(err, errlen, "open(%s) failed: %s", o->dir, strerror(errno));
        goto fail;
    }
    if (mkdirat(top, SUBDIR, 0750) == 0)
        made = true;
    else if (errno != EEXIST) {
        fb_errf(err, errlen, "mkdir(%s) failed: %s", p->path, strerror(errno));
        goto fail;
    }
    p->dirfd = openat(top, SUBDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (p->dirfd < 0) {
        fb_errf(err, errlen, "%s: %s", p->path,
            errno == ELOOP || errno == ENOTDIR ? "not a directory (a symbolic link?): refused"
                                               : strerror(errno));
        goto fail;
    }
    /* a folder just made is in its parent only once the parent is synced */
    if (made && fsync(top) < 0) {
        fb_errf(err, errlen, "fsync(%s) failed: %s", o->dir, strerror(errno));
        goto fail;
    }
    close(top);
    return p;
fail:
    if (top >= 0)
        close(top);
    fb_progress_close(p);
    return NULL;
}

static void
part_free(part_t *e)
{
    free(e->marks);
    free(e->topic);
    free(e->stale);
    free(e);
}

/* unlink_part -- e out of the table and the LRU list (not freed). */
static void
unlink_part(fb_progress_t *p, part_t *e)
{
    part_t **pp = &p->buckets[e->hash & (p->n_buckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        p->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        p->tail = e->prev;
    if (e->stale != NULL)
        p->n_stale--;
    p->n--;
}

void
fb_progress_close(fb_progress_t *p)
{
    if (p == NULL)
        return;
    for (part_t *e = p->head, *next; e != NULL; e = next) {
        next = e->next;
        part_free(e);
    }
    for (size_t i = 0; i < p->n_topics; i++)
        free(p->topics[i].topic);
    if (p->dirfd >= 0)
        close(p->dirfd);
    free(p->buckets);
    free(p->path);
    free(p->reported);
    free(p);
}

/* find -- the entry of (topic, partition) in memory, made the most
 * recently used; NULL when there is none. */
static part_t *
find(fb_progress_t *p, const char *topic, int32_t partition)
{
    uint64_t h = part_hash(topic, partition);
    part_t *e = p->buckets[h & (p->n_buckets - 1)];

    while (e != NULL && !(e->hash == h && e->partition == partition && !strcmp(e->topic, topic)))
        e = e->hnext;
    if (e == NULL || e == p->head)
        return e;
    e->prev->next = e->next; /* not the head: it has a prev */
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        p->tail = e->prev;
    e->prev = NULL;
    e->next = p->head;
    p->head->prev = e;
    p->head = e;
    return e;
}

static bool
dirty(const part_t *e)
{
    return e->changed || e->rewrite;
}

/* trim -- drop the least recently used entries whose marks are on disk
 * (and whose staleness is reported) while there are more than
 * max_cached, never keep: entries not on disk stay, past the bound. */
static void
trim(fb_progress_t *p, const part_t *keep)
{
    part_t *e = p->tail;

    while (p->n > p->max_cached && e != NULL) {
        part_t *prev = e->prev;
        if (e != keep && !dirty(e) && e->stale == NULL) {
            unlink_part(p, e);
            part_free(e);
        }
        e = prev;
    }
}

/* last_id -- the last id given for topic (NULL: none remembered). */
static const uint8_t *
last_id(const fb_progress_t *p, const char *topic)
{
    for (size_t i = 0; i < p->n_topics; i++)
        if (strcmp(p->topics[i].topic, topic) == 0)
            return p->topics[i].id;
    return NULL;
}

/* remember_id -- id is the topic's now (not zero); 0, or -1 when out of
 * memory. */
static int
remember_id(fb_progress_t *p, const char *topic, const uint8_t *id)
{
    topic_id_t *t = NULL;

    for (size_t i = 0; i < p->n_topics && t == NULL; i++)
        if (strcmp(p->topics[i].topic, topic) == 0)
            t = &p->topics[i];
    if (t == NULL) {
        char *copy = strdup(topic);
        if (copy == NULL)
            return -1;
        if (p->n_topics < TOPICS_MAX) {
            t = &p->topics[p->n_topics++];
        } else {
            t = &p->topics[p->next_topic];
            p->next_topic = (p->next_topic + 1) % TOPICS_MAX;
            free(t->topic);
        }
        t->topic = copy;
    }
    memcpy(t->id, id, FB_PROGRESS_ID_LEN);
    return 0;
}

/* drop_marks -- e has no marks at all, not even to roll back to, and its
 * file is replaced at the next sync. */
static void
drop_marks(part_t *e)
{
    e->n_marks = 0;
    e->changed = false;
    e->rewrite = true;
}

/* add_mark -- room for one more mark in e (below FB_PROGRESS_TARGETS);
 * NULL when out of memory. */
static mark_t *
add_mark(part_t *e)
{
    if (e->n_marks == e->cap_marks) {
        size_t cap = e->cap_marks ? e->cap_marks * 2 : 2;
        mark_t *m = realloc(e->marks, cap * sizeof(*m));
        if (m == NULL)
            return NULL;
        e->marks = m;
        e->cap_marks = cap;
    }
    return &e->marks[e->n_marks++];
}

/* ---- reading a file ---- */

/* parse_offset -- s[0..len) as 0..INT64_MAX, digits only, no leading zero;
 * 0 or -1. */
static int
parse_offset(const char *s, size_t len, int64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 19 || (s[0] == '0' && len > 1))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit in 64 bits */
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* parse_hex -- 32 lowercase hex digits into id; 0 or -1. */
static int
parse_hex(const char *s, size_t len, uint8_t *id)
{
    if (len != 2 * FB_PROGRESS_ID_LEN)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                                             : -1;
        if (d < 0)
            return -1;
        if (i % 2 == 0)
            id[i / 2] = (uint8_t)(d << 4);
        else
            id[i / 2] |= (uint8_t)d;
    }
    return 0;
}

/* field -- line starts with word and one space: the rest in *rest, *rlen. */
static bool
field(const char *line, size_t len, const char *word, const char **rest, size_t *rlen)
{
    size_t w = strlen(word);

    if (len <= w || memcmp(line, word, w) != 0 || line[w] != ' ')
        return false;
    *rest = line + w + 1;
    *rlen = len - w - 1;
    return true;
}

/* parse -- buf[0..len) as a file of (topic, partition): its id and marks
 * into e; 0, -1 with why (stale; never quoting the file), or -2 when out
 * of memory. */
static int
parse(part_t *e, uint8_t *id, const char *buf, size_t len, char *why, size_t whylen)
{
    const char *rest, *nul = memchr(buf, '\0', len);
    size_t rlen, at = 0, n_lines = 0, ended = 0;
    int64_t v;

    e->n_marks = 0;
    if (len == 0) {
        fb_errf(why, whylen, "empty");
        return -1;
    }
    if (nul != NULL) {
        fb_errf(why, whylen, "a NUL byte at byte %zu", (size_t)(nul - buf));
        return -1;
    }
    if (buf[len - 1] != '\n') {
        fb_errf(why, whylen, "cut short (no newline at its end)");
        return -1;
    }
    while (at < len) {
        const char *line = buf + at, *nl = memchr(line, '\n', len - at);
        size_t ll = (size_t)(nl - line); /* there is one: the last byte is '\n' */
        unsigned no = (unsigned)++n_lines;
        at += ll + 1;
        if (ll + 1 > LINE_MAX_LEN) {
            fb_errf(why, whylen, "line %u: longer than %d bytes", no, LINE_MAX_LEN);
            return -1;
        }
        if (ended) {
            fb_errf(why, whylen, "line %u: after the end line", no);
            return -1;
        }
        if (no == 1) {
            if (!field(line, ll, MAGIC, &rest, &rlen)) {
                fb_errf(why, whylen, "not a progress file (line 1)");
                return -1;
            }
            if (parse_offset(rest, rlen, &v) < 0) {
                fb_errf(why, whylen, "line 1: not a version number");
                return -1;
            }
            if (v != VERSION) {
                fb_errf(why, whylen, "version %" PRId64 ", this fbpipe reads version %d", v, VERSION);
                return -1;
            }
        } else if (no == 2) {
            if (!field(line, ll, "topic", &rest, &rlen) || rlen != strlen(e->topic) ||
                memcmp(rest, e->topic, rlen) != 0) {
                fb_errf(why, whylen, "line 2: not the topic of its name (%s)", e->topic);
                return -1;
            }
        } else if (no == 3) {
            if (!field(line, ll, "partition", &rest, &rlen) || parse_offset(rest, rlen, &v) < 0 ||
                v != e->partition) {
                fb_errf(why, whylen, "line 3: not the partition of its name (%" PRId32 ")",
                    e->partition);
                return -1;
            }
        } else if (no == 4) {
            if (!field(line, ll, "id", &rest, &rlen) || parse_hex(rest, rlen, id) < 0) {
                fb_errf(why, whylen, "line 4: not a topic id (32 lowercase hex digits)");
                return -1;
            }
        } else if (field(line, ll, "end", &rest, &rlen)) {
            if (parse_offset(rest, rlen, &v) < 0 || v != (int64_t)e->n_marks) {
                fb_errf(why, whylen, "line %u: the end line does not count %zu target lines", no,
                    e->n_marks);
                return -1;
            }
            ended = no;
        } else if (field(line, ll, "target", &rest, &rlen)) {
            const char *sp = memchr(rest, ' ', rlen);
            size_t tlen = sp ? (size_t)(sp - rest) : 0;
            char target[FB_PROGRESS_TARGET_MAX + 1];
            if (sp == NULL || tlen == 0 || tlen > FB_PROGRESS_TARGET_MAX) {
                fb_errf(why, whylen, "line %u: not a target line", no);
                return -1;
            }
            memcpy(target, rest, tlen);
            target[tlen] = '\0';
            if (!valid_target(target)) {
                fb_errf(why, whylen, "line %u: not a target name", no);
                return -1;
            }
            if (parse_offset(sp + 1, rlen - tlen - 1, &v) < 0) {
                fb_errf(why, whylen, "line %u: target %s: not an offset (0 to %" PRId64 ")", no, target,
                    INT64_MAX);
                return -1;
            }
            for (size_t i = 0; i < e->n_marks; i++)
                if (strcmp(e->marks[i].target, target) == 0) {
                    fb_errf(why, whylen, "line %u: target %s a second time", no, target);
                    return -1;
                }
            if (e->n_marks == FB_PROGRESS_TARGETS) {
                fb_errf(why, whylen, "line %u: more than %d targets", no, FB_PROGRESS_TARGETS);
                return -1;
            }
            mark_t *m = add_mark(e);
            if (m == NULL)
                return -2;
            memcpy(m->target, target, tlen + 1);
            m->through = m->base = v;
        } else {
            fb_errf(why, whylen, "line %u: neither a target nor the end line", no);
            return -1;
        }
    }
    if (!ended) {
        fb_errf(why, whylen, n_lines < 4 ? "cut short (no header)" : "cut short (no end line)");
        return -1;
    }
    return 0;
}

/* read_all -- up to max bytes of fd into buf; the count, or -1. */
static ssize_t
read_all(int fd, char *buf, size_t max)
{
    size_t len = 0;

    while (len < max) {
        ssize_t n = read(fd, buf + len, max - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    return (ssize_t)len;
}

/* check_stat -- why st is not what a progress file is; NULL when it is. */
static const char *
check_stat(const struct stat *st)
{
    if (S_ISLNK(st->st_mode))
        return "a symbolic link: refused, not followed";
    if (!S_ISREG(st->st_mode))
        return "not a regular file: refused";
    if (st->st_nlink != 1)
        return "a file with more than one name (a hard link): refused";
    if (st->st_size > FILE_MAX)
        return "larger than a progress file can be";
    return NULL;
}

/*
 * load_file -- e's marks from its file, checked against want (the topic's
 * id now; NULL or zero: unknown). 0: read (none when there is no file);
 * FB_PROGRESS_STALE with why: e has no marks and is to be rewritten;
 * -1 with why: the file cannot be read (e unchanged but for its marks).
 */
static int
load_file(fb_progress_t *p, part_t *e, const uint8_t *want, char *why, size_t whylen)
{
    char name[NAME_MAX + 1], temp[32], buf[FILE_MAX + 1], have[33], now[33], reason[192];
    uint8_t id[FB_PROGRESS_ID_LEN];
    const char *bad;
    struct stat st;
    ssize_t len;
    int fd, rc;

    snprintf(name, sizeof(name), "%s-%" PRId32, e->topic, e->partition);
    temp_name(temp, sizeof(temp), name);
    /* a crash's leftover is never read; the owner of the partition removes it */
    (void)unlinkat(p->dirfd, temp, 0);
    e->n_marks = 0;
    memset(e->id, 0, sizeof(e->id));
    if (want != NULL)
        memcpy(e->id, want, sizeof(e->id));
    if (fstatat(p->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        fb_errf(why, whylen, "%s/%s: stat failed: %s", p->path, name, strerror(errno));
        return -1;
    }
    if ((bad = check_stat(&st)) != NULL)
        goto stale;
    fd = openat(p->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) /* removed meanwhile */
            return 0;
        if (errno == ELOOP) {
            bad = "a symbolic link: refused, not followed";
            goto stale;
        }
        fb_errf(why, whylen, "%s/%s: open failed: %s", p->path, name, strerror(errno));
        return -1;
    }
    /* what is read is what is checked: the descriptor's file, not the name's */
    if (fstat(fd, &st) < 0) {
        fb_errf(why, whylen, "%s/%s: fstat failed: %s", p->path, name, strerror(errno));
        close(fd);
        return -1;
    }
    if ((bad = check_stat(&st)) != NULL) {
        close(fd);
        goto stale;
    }
    len = read_all(fd, buf, sizeof(buf));
    if (len < 0) {
        fb_errf(why, whylen, "%s/%s: read failed: %s", p->path, name, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    if ((size_t)len > FILE_MAX) {
        bad = "larger than a progress file can be";
        goto stale;
    }
    if ((rc = parse(e, id, buf, (size_t)len, reason, sizeof(reason))) == -2) {
        fb_errf(why, whylen, "%s/%s: out of memory", p->path, name);
        return -1;
    }
    if (rc < 0) {
        fb_errf(why, whylen, "%s/%s: %s: its marks are dropped", p->path, name, reason);
        rc = FB_PROGRESS_STALE;
        goto dropped;
    }
    if (want != NULL && !id_zero(want) && !id_zero(id) &&
        memcmp(want, id, FB_PROGRESS_ID_LEN) != 0) {
        hex(have, id);
        hex(now, want);
        fb_errf(why, whylen,
            "%s/%s: written for topic id %s, the topic's id is now %s (made again?): its "
            "marks are dropped",
            p->path, name, have, now);
        rc = FB_PROGRESS_STALE;
        goto dropped;
    }
    if (want == NULL || id_zero(want))
        memcpy(e->id, id, sizeof(e->id));
    else if (id_zero(id))
        e->rewrite = true; /* the file takes the id now known */
    return 0;
stale:
    fb_errf(why, whylen, "%s/%s: %s: its marks are dropped", p->path, name, bad);
    rc = FB_PROGRESS_STALE;
dropped:
    drop_marks(e);
    return rc;
}

/* add_part -- a new entry for (topic, partition) read from its file
 * against want; *rc as load_file. NULL when it cannot be read (or no
 * memory), with why. */
static part_t *
add_part(fb_progress_t *p, const char *topic, int32_t partition, const uint8_t *want, int *rc,
         char *why, size_t whylen)
{
    part_t *e = calloc(1, sizeof(*e));

    if (e == NULL || (e->topic = strdup(topic)) == NULL) {
        free(e);
        fb_errf(why, whylen, "%s: out of memory", p->path);
        return NULL;
    }
    e->partition = partition;
    e->hash = part_hash(topic, partition);
    *rc = load_file(p, e, want, why, whylen);
    if (*rc < 0) {
        part_free(e);
        return NULL;
    }
    size_t b = e->hash & (p->n_buckets - 1);
    e->hnext = p->buckets[b];
    p->buckets[b] = e;
    e->next = p->head;
    if (p->head != NULL)
        p->head->prev = e;
    p->head = e;
    if (p->tail == NULL)
        p->tail = e;
    p->n++;
    trim(p, e);
    return e;
}

/* need -- the entry of (topic, partition), read from its file when it is
 * not in memory (a stale file kept for fb_progress_next_stale); NULL with
 * err when the names are invalid or the file cannot be read. */
static part_t *
need(fb_progress_t *p, const char *topic, int32_t partition, char *err, size_t errlen)
{
    char name[NAME_MAX + 1], why[512];
    part_t *e;
    int rc;

    if (file_name(p, name, topic, partition, err, errlen) < 0)
        return NULL;
    if ((e = find(p, topic, partition)) != NULL)
        return e;
    if ((e = add_part(p, topic, partition, last_id(p, topic), &rc, why, sizeof(why))) == NULL) {
        fb_errf(err, errlen, "%s", why);
        return NULL;
    }
    if (rc == FB_PROGRESS_STALE && (e->stale = strdup(why)) != NULL)
        p->n_stale++;
    return e;
}

int
fb_progress_load(fb_progress_t *p, const char *topic, int32_t partition, const uint8_t *id,
                 char *why, size_t whylen)
{
    char name[NAME_MAX + 1], have[33], now[33];
    bool known = id != NULL && !id_zero(id);
    part_t *e;
    int rc;

    if (file_name(p, name, topic, partition, why, whylen) < 0)
        return -1;
    if (known && remember_id(p, topic, id) < 0) {
        fb_errf(why, whylen, "%s: out of memory", p->path);
        return -1;
    }
    if ((e = find(p, topic, partition)) == NULL)
        return add_part(p, topic, partition, id, &rc, why, whylen) ? rc : -1;
    if (e->stale != NULL) { /* found stale since: said now */
        fb_errf(why, whylen, "%s", e->stale);
        free(e->stale);
        e->stale = NULL;
        p->n_stale--;
        rc = FB_PROGRESS_STALE;
    } else {
        rc = 0;
    }
    if (!known)
        return rc;
    if (id_zero(e->id)) {
        memcpy(e->id, id, sizeof(e->id));
        e->rewrite = true;
    } else if (memcmp(e->id, id, FB_PROGRESS_ID_LEN) != 0) {
        hex(have, e->id);
        hex(now, id);
        fb_errf(why, whylen,
            "%s/%s: marks of topic id %s, the topic's id is now %s (made again?): they are "
            "dropped",
            p->path, name, have, now);
        memcpy(e->id, id, sizeof(e->id));
        drop_marks(e);
        rc = FB_PROGRESS_STALE;
    }
    return rc;
}

int
fb_progress_check_bounds(fb_progress_t *p, const char *topic, int32_t partition,
                         int64_t high_watermark, char *why, size_t whylen)
{
    part_t *e = need(p, topic, partition, why, whylen);

    if (e == NULL)
        return -1;
    if (high_watermark < 0)
        return 0;
    for (size_t i = 0; i < e->n_marks; i++) {
        const mark_t *m = &e->marks[i];
        int64_t top = m->through > m->base ? m->through : m->base;
        if (top >= high_watermark) {
            fb_errf(why, whylen,
                "%s/%s-%" PRId32 ": target %s marked through offset %" PRId64
                ", at or past the partition's end (%" PRId64 "): the log is not the one "
                "marked, every mark of the partition is dropped",
                p->path, topic, partition, m->target, top, high_watermark);
            drop_marks(e);
            return FB_PROGRESS_STALE;
        }
    }
    return 0;
}

static mark_t *
find_mark(part_t *e, const char *target)
{
    for (size_t i = 0; i < e->n_marks; i++)
        if (strcmp(e->marks[i].target, target) == 0)
            return &e->marks[i];
    return NULL;
}

/* compact -- marks neither in memory nor in the file leave the array. */
static void
compact(part_t *e)
{
    size_t k = 0;

    for (size_t i = 0; i < e->n_marks; i++)
        if (e->marks[i].through != FB_PROGRESS_NONE || e->marks[i].base != FB_PROGRESS_NONE)
            e->marks[k++] = e->marks[i];
    e->n_marks = k;
}

int64_t
fb_progress_get(fb_progress_t *p, const char *target, const char *topic, int32_t partition)
{
    part_t *e;
    mark_t *m;

    if (!valid_target(target) || (e = need(p, topic, partition, NULL, 0)) == NULL)
        return FB_PROGRESS_NONE;
    m = find_mark(e, target);
    return m ? m->through : FB_PROGRESS_NONE;
}

/* put -- target's mark to through; backwards only when back is set. */
static int
put(fb_progress_t *p, const char *target, const char *topic, int32_t partition, int64_t through,
    bool back, char *err, size_t errlen)
{
    part_t *e;
    mark_t *m;

    if (!valid_target(target)) {
        fb_errf(err, errlen, "%s: invalid target name (1 to %d bytes of [a-z0-9_-]): refused", p->path,
            FB_PROGRESS_TARGET_MAX);
        return -1;
    }
    if (through < (back ? FB_PROGRESS_NONE : 0)) {
        fb_errf(err, errlen, "%s/%s-%" PRId32 ": target %s: invalid offset %" PRId64 ": refused",
            p->path, topic, partition, target, through);
        return -1;
    }
    if ((e = need(p, topic, partition, err, errlen)) == NULL)
        return -1;
    if ((m = find_mark(e, target)) == NULL) {
        if (through == FB_PROGRESS_NONE)
            return 0;
        if (e->n_marks == FB_PROGRESS_TARGETS) {
            fb_errf(err, errlen, "%s/%s-%" PRId32 ": more than %d targets: %s refused", p->path, topic,
                partition, FB_PROGRESS_TARGETS, target);
            return -1;
        }
        if ((m = add_mark(e)) == NULL) {
            fb_errf(err, errlen, "%s: out of memory", p->path);
            return -1;
        }
        snprintf(m->target, sizeof(m->target), "%s", target);
        m->through = m->base = FB_PROGRESS_NONE;
    }
    if (through == m->through)
        return 0;
    if (through < m->through && !back) {
        fb_errf(err, errlen,
            "%s/%s-%" PRId32 ": target %s: mark would move back from %" PRId64 " to %" PRId64
            ": refused",
            p->path, topic, partition, target, m->through, through);
        return -1;
    }
    m->through = through;
    e->changed = true;
    compact(e);
    return 0;
}

int
fb_progress_set(fb_progress_t *p, const char *target, const char *topic, int32_t partition,
                int64_t through, char *err, size_t errlen)
{
    return put(p, target, topic, partition, through, false, err, errlen);
}

int
fb_progress_reset(fb_progress_t *p, const char *target, const char *topic, int32_t partition,
                  int64_t through, char *err, size_t errlen)
{
    return put(p, target, topic, partition, through, true, err, errlen);
}

bool
fb_progress_skip(fb_progress_t *p, const char *target, const char *topic, int32_t partition,
                 int64_t offset)
{
    int64_t mark = fb_progress_get(p, target, topic, partition);

    return offset >= 0 && mark != FB_PROGRESS_NONE && offset <= mark;
}

int64_t
fb_progress_min_next(fb_progress_t *p, const char *topic, int32_t partition,
                     const char *const targets[], size_t n)
{
    int64_t min = INT64_MAX;
    part_t *e;

    if (n == 0 || (e = need(p, topic, partition, NULL, 0)) == NULL)
        return FB_PROGRESS_NONE;
    for (size_t i = 0; i < n; i++) {
        const mark_t *m = valid_target(targets[i]) ? find_mark(e, targets[i]) : NULL;
        if (m == NULL || m->through == FB_PROGRESS_NONE)
            return FB_PROGRESS_NONE;
        /* a mark at INT64_MAX cannot be passed: nothing after it to store */
        int64_t next = m->through == INT64_MAX ? INT64_MAX : m->through + 1;
        if (next < min)
            min = next;
    }
    return min;
}

/* ---- writing ---- */

/* render -- e's file into buf (FILE_MAX bytes); its length. */
static size_t
render(const part_t *e, char *buf)
{
    char id[33];
    size_t len, n = 0;

    hex(id, e->id);
    for (size_t i = 0; i < e->n_marks; i++)
        n += e->marks[i].through != FB_PROGRESS_NONE;
    len = (size_t)snprintf(buf, FILE_MAX, MAGIC " %d\ntopic %s\npartition %" PRId32 "\nid %s\n",
                           VERSION, e->topic, e->partition, id);
    for (size_t i = 0; i < e->n_marks; i++)
        if (e->marks[i].through != FB_PROGRESS_NONE)
            len += (size_t)snprintf(buf + len, FILE_MAX - len, "target %s %" PRId64 "\n",
                                    e->marks[i].target, e->marks[i].through);
    len += (size_t)snprintf(buf + len, FILE_MAX - len, "end %zu\n", n);
    return len;
}

/* write_file -- e's file replaced by its marks in memory: the temporary
 * written, fsynced, renamed over it (the folder's fsync is the caller's);
 * 0, or -1 with err (the old file is untouched, the temporary removed). */
static int
write_file(fb_progress_t *p, const part_t *e, char *err, size_t errlen)
{
    char name[NAME_MAX + 1], temp[32], buf[FILE_MAX];
    const char *what = "open";
    size_t len = render(e, buf), off = 0;
    int fd, saved;

    snprintf(name, sizeof(name), "%s-%" PRId32, e->topic, e->partition);
    temp_name(temp, sizeof(temp), name);
    /* O_EXCL: a leftover (or anything planted there) is never written through */
    if (unlinkat(p->dirfd, temp, 0) < 0 && errno != ENOENT) {
        fb_errf(err, errlen, "%s/%s (for %s): cannot remove it: %s", p->path, temp, name,
            strerror(errno));
        return -1;
    }
    fd = openat(p->dirfd, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                0640);
    if (fd < 0)
        goto fail;
    what = "write";
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            goto fail;
        }
        off += (size_t)n;
    }
    what = "fsync";
    if (fsync(fd) < 0)
        goto fail;
    what = "close";
    saved = close(fd);
    fd = -1;
    if (saved < 0)
        goto fail;
    what = "rename";
    if (renameat(p->dirfd, temp, p->dirfd, name) < 0)
        goto fail;
    return 0;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    (void)unlinkat(p->dirfd, temp, 0);
    fb_errf(err, errlen, "%s/%s: %s of its replacement (%s) failed: %s", p->path, name, what, temp,
        strerror(saved));
    return -1;
}

int
fb_progress_sync(fb_progress_t *p, char *err, size_t errlen)
{
    size_t staged = 0;
    int rc = 0;

    for (part_t *e = p->head; e != NULL; e = e->next) {
        char why[512];
        if (!dirty(e))
            continue;
        if (write_file(p, e, why, sizeof(why)) < 0) {
            if (rc == 0)
                fb_errf(err, errlen, "%s", why);
            rc = -1;
            continue;
        }
        e->staged = true;
        staged++;
    }
    /* the new names last only once the folder is synced: until then the
     * entries stay to be written again */
    if (staged > 0 && fsync(p->dirfd) < 0) {
        if (rc == 0)
            fb_errf(err, errlen, "fsync(%s) failed: %s", p->path, strerror(errno));
        rc = -1;
        for (part_t *e = p->head; e != NULL; e = e->next)
            e->staged = false;
        return rc;
    }
    for (part_t *e = p->head; e != NULL; e = e->next) {
        if (!e->staged)
            continue;
        e->staged = false;
        for (size_t i = 0; i < e->n_marks; i++)
            e->marks[i].base = e->marks[i].through;
        compact(e);
        e->changed = e->rewrite = false;
    }
    trim(p, NULL);
    return rc;
}

bool
fb_progress_unsynced(fb_progress_t *p, const char *topic, int32_t partition)
{
    part_t *e = valid_topic(topic) && partition >= 0 ? find(p, topic, partition) : NULL;

    return e != NULL && dirty(e);
}

void
fb_progress_rollback(fb_progress_t *p)
{
    for (part_t *e = p->head; e != NULL; e = e->next) {
        if (!e->changed)
            continue;
        for (size_t i = 0; i < e->n_marks; i++)
            e->marks[i].through = e->marks[i].base;
        compact(e);
        e->changed = false;
    }
    trim(p, NULL);
}

void
fb_progress_forget(fb_progress_t *p, const char *topic, int32_t partition)
{
    part_t *e = valid_topic(topic) && partition >= 0 ? find(p, topic, partition) : NULL;

    if (e != NULL) {
        unlink_part(p, e);
        part_free(e);
    }
}

const char *
fb_progress_next_stale(fb_progress_t *p, const char **topic, int32_t *partition)
{
    for (part_t *e = p->head; p->n_stale > 0 && e != NULL; e = e->next) {
        if (e->stale == NULL)
            continue;
        free(p->reported);
        p->reported = e->stale;
        e->stale = NULL;
        p->n_stale--;
        snprintf(p->reported_topic, sizeof(p->reported_topic), "%s", e->topic);
        *topic = p->reported_topic;
        *partition = e->partition;
        return p->reported;
    }
    return NULL;
}

size_t
fb_progress_cached(const fb_progress_t *p)
{
    return p->n;
}
