/*
 * router_dedupe.c -- router.dedupe's sets (router_dedupe.h). A hash table
 * of keys (chained); per key, a hash table of its batches (epoch, seq),
 * chained, each with the sorted, disjoint ranges [lo, hi) of the indices
 * written, and a queue of its batches in the order they were first seen,
 * whose oldest are forgotten past the window. Keys carry a use clock; past
 * the memory budget the least recently used keys' sets are dropped whole.
 * Never logs; reads files only through fb_files_tail.
 */
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "router/router_dedupe.h"

#define KEY_BUCKETS0 64
#define BATCH_BUCKETS0 8
#define LOAD_MAX_DEFAULT (16ULL << 20) /* a file's tail read for one load, at most */
#define FIELD ",\"fbpipe_id\":\""
#define FIELD_AT 40 /* {"time":"YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ" */

typedef struct range {
    uint64_t lo, hi;
} range_t;

typedef struct batch {
    struct batch *next;  /* in its bucket */
    struct batch *older; /* the queue: towards the newest... */
    struct batch *newer;
    uint64_t epoch, seq;
    range_t *r;          /* sorted, disjoint, not adjacent */
    size_t n, cap;
    uint64_t count;      /* indices held */
} batch_t;

typedef struct kset {
    struct kset *next;   /* in its bucket */
    char *key;
    uint64_t used;       /* the use clock */
    batch_t **tab;       /* buckets */
    size_t cap, n;       /* buckets, batches */
    batch_t *oldest, *newest;
    uint64_t ids;
    size_t mem;
} kset_t;

struct fb_dedupe {
    size_t window, budget;
    uint64_t load_max;  /* bytes of files read by one load, at most */
    kset_t **tab;
    size_t cap, n;
    uint64_t clock;
    size_t mem;
    uint64_t ids;
};

static uint64_t
hash_batch(uint64_t epoch, uint64_t seq)
{
    uint64_t h = epoch ^ (seq * 0x9E3779B97F4A7C15ULL);

    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 29);
}

fb_dedupe_t *
fb_dedupe_new(size_t window, size_t memory)
{
    fb_dedupe_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->window = window ? window : 1;
    d->budget = memory;
    d->load_max = LOAD_MAX_DEFAULT;
    d->cap = KEY_BUCKETS0;
    d->tab = calloc(d->cap, sizeof(*d->tab));
    if (d->tab == NULL) {
        free(d);
        return NULL;
    }
    d->mem = sizeof(*d) + d->cap * sizeof(*d->tab);
    return d;
}

static void
batch_free(kset_t *k, batch_t *b)
{
    k->mem -= sizeof(*b) + b->cap * sizeof(*b->r);
    k->ids -= b->count;
    free(b->r);
    free(b);
}

/* kset_free -- k's memory and identities leave d's totals. */
static void
kset_free(fb_dedupe_t *d, kset_t *k)
{
    batch_t *b = k->oldest;

    d->mem -= k->mem;
    d->ids -= k->ids;
    while (b != NULL) {
        batch_t *next = b->newer;
        free(b->r);
        free(b);
        b = next;
    }
    free(k->tab);
    free(k->key);
    free(k);
}

void
fb_dedupe_free(fb_dedupe_t *d)
{
    if (d == NULL)
        return;
    fb_dedupe_forget_all(d);
    free(d->tab);
    free(d);
}

static kset_t **
kslot(fb_dedupe_t *d, const char *key)
{
    kset_t **p = &d->tab[fb_hash_str(key) & (d->cap - 1)];

    while (*p != NULL && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

static kset_t *
kfind(fb_dedupe_t *d, const char *key)
{
    return *kslot(d, key);
}

void
fb_dedupe_set_load_max(fb_dedupe_t *d, uint64_t bytes)
{
    d->load_max = bytes;
}

bool
fb_dedupe_loaded(fb_dedupe_t *d, const char *key)
{
    return kfind(d, key) != NULL;
}

static void
unlink_key(fb_dedupe_t *d, kset_t *k)
{
    kset_t **p = kslot(d, k->key);

    *p = k->next;
    d->n--;
    kset_free(d, k);
}

void
fb_dedupe_forget(fb_dedupe_t *d, const char *key)
{
    kset_t *k = kfind(d, key);

    if (k != NULL)
        unlink_key(d, k);
}

void
fb_dedupe_forget_all(fb_dedupe_t *d)
{
    for (size_t i = 0; i < d->cap; i++)
        while (d->tab[i] != NULL) {
            kset_t *k = d->tab[i];
            d->tab[i] = k->next;
            d->n--;
            kset_free(d, k);
        }
}

size_t
fb_dedupe_memory(const fb_dedupe_t *d)
{
    return d->mem;
}

uint64_t
fb_dedupe_ids(const fb_dedupe_t *d)
{
    return d->ids;
}

size_t
fb_dedupe_keys(const fb_dedupe_t *d)
{
    return d->n;
}

/* grow_keys -- double the key table (load at most 1); 0 or -1. */
static int
grow_keys(fb_dedupe_t *d)
{
    size_t cap = d->cap * 2;
    kset_t **tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return -1;
    for (size_t i = 0; i < d->cap; i++)
        while (d->tab[i] != NULL) {
            kset_t *k = d->tab[i];
            d->tab[i] = k->next;
            k->next = tab[fb_hash_str(k->key) & (cap - 1)];
            tab[fb_hash_str(k->key) & (cap - 1)] = k;
        }
    free(d->tab);
    d->mem += (cap - d->cap) * sizeof(*tab);
    d->tab = tab;
    d->cap = cap;
    return 0;
}

/* over_budget -- past the memory budget, the least recently used sets
 * but keep are dropped until a quarter of the budget is free (one scan
 * serves many loads). */
static void
over_budget(fb_dedupe_t *d, const kset_t *keep)
{
    while (d->mem > d->budget - d->budget / 4 && d->n > 1) {
        kset_t *lru = NULL;
        for (size_t i = 0; i < d->cap; i++)
            for (kset_t *k = d->tab[i]; k != NULL; k = k->next)
                if (k != keep && (lru == NULL || k->used < lru->used))
                    lru = k;
        if (lru == NULL)
            return;
        unlink_key(d, lru);
    }
}

int
fb_dedupe_start(fb_dedupe_t *d, const char *key)
{
    kset_t **p = kslot(d, key), *k;

    if (*p != NULL)
        unlink_key(d, *p);
    if (d->n + 1 > d->cap && grow_keys(d) < 0)
        return -1;
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return -1;
    k->key = strdup(key);
    k->cap = BATCH_BUCKETS0;
    k->tab = calloc(k->cap, sizeof(*k->tab));
    if (k->key == NULL || k->tab == NULL) {
        free(k->key);
        free(k->tab);
        free(k);
        return -1;
    }
    k->used = ++d->clock;
    k->mem = sizeof(*k) + strlen(key) + 1 + k->cap * sizeof(*k->tab);
    d->mem += k->mem;
    p = kslot(d, key); /* the table may have grown */
    k->next = *p;
    *p = k;
    d->n++;
    if (d->mem > d->budget)
        over_budget(d, k);
    return 0;
}

static batch_t **
bslot(kset_t *k, uint64_t epoch, uint64_t seq)
{
    batch_t **p = &k->tab[hash_batch(epoch, seq) & (k->cap - 1)];

    while (*p != NULL && ((*p)->epoch != epoch || (*p)->seq != seq))
        p = &(*p)->next;
    return p;
}

/* grow_batches -- double k's batch table; 0 or -1. */
static int
grow_batches(fb_dedupe_t *d, kset_t *k)
{
    size_t cap = k->cap * 2;
    batch_t **tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return -1;
    for (size_t i = 0; i < k->cap; i++)
        while (k->tab[i] != NULL) {
            batch_t *b = k->tab[i];
            size_t j = hash_batch(b->epoch, b->seq) & (cap - 1);
            k->tab[i] = b->next;
            b->next = tab[j];
            tab[j] = b;
        }
    free(k->tab);
    k->mem += (cap - k->cap) * sizeof(*tab);
    d->mem += (cap - k->cap) * sizeof(*tab);
    k->tab = tab;
    k->cap = cap;
    return 0;
}

/* drop_oldest -- k's oldest batch is forgotten (past the window). */
static void
drop_oldest(fb_dedupe_t *d, kset_t *k)
{
    batch_t *b = k->oldest, **p = bslot(k, b->epoch, b->seq);
    size_t mem = k->mem;
    uint64_t ids = k->ids;

    *p = b->next;
    k->oldest = b->newer;
    if (k->oldest != NULL)
        k->oldest->older = NULL;
    else
        k->newest = NULL;
    k->n--;
    batch_free(k, b);
    d->mem -= mem - k->mem;
    d->ids -= ids - k->ids;
}

/* find_range -- the first range of b whose hi > i (b->n when none). */
static size_t
find_range(const batch_t *b, uint64_t i)
{
    size_t lo = 0, hi = b->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->r[mid].hi <= i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* add_index -- i into b's ranges (not held); 0 or -1. */
static int
add_index(fb_dedupe_t *d, kset_t *k, batch_t *b, size_t at, uint64_t i)
{
    bool left = at > 0 && b->r[at - 1].hi == i;
    bool right = at < b->n && b->r[at].lo == i + 1;

    if (left && right) { /* fills the gap between two ranges */
        b->r[at - 1].hi = b->r[at].hi;
        memmove(b->r + at, b->r + at + 1, (b->n - at - 1) * sizeof(*b->r));
        b->n--;
    } else if (left) {
        b->r[at - 1].hi = i + 1;
    } else if (right) {
        b->r[at].lo = i;
    } else {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 1;
            range_t *r = realloc(b->r, cap * sizeof(*r));
            if (r == NULL)
                return -1;
            k->mem += (cap - b->cap) * sizeof(*r);
            d->mem += (cap - b->cap) * sizeof(*r);
            b->r = r;
            b->cap = cap;
        }
        memmove(b->r + at + 1, b->r + at, (b->n - at) * sizeof(*b->r));
        b->r[at].lo = i;
        b->r[at].hi = i + 1;
        b->n++;
    }
    b->count++;
    k->ids++;
    d->ids++;
    return 0;
}

/* check -- see fb_dedupe_check, for k. */
static int
check(fb_dedupe_t *d, kset_t *k, const fb_dedupe_id_t *id)
{
    batch_t **p = bslot(k, id->epoch, id->seq), *b = *p;

    if (id->index == UINT64_MAX)
        return FB_DEDUPE_NEW; /* no range can end past it: never held, written */
    if (b != NULL) {
        size_t at = find_range(b, id->index);
        if (at < b->n && b->r[at].lo <= id->index)
            return FB_DEDUPE_DUP;
        if (add_index(d, k, b, at, id->index) < 0)
            return -1;
    } else {
        if (k->n + 1 > k->cap && grow_batches(d, k) < 0)
            return -1;
        if ((b = calloc(1, sizeof(*b))) == NULL)
            return -1;
        b->epoch = id->epoch;
        b->seq = id->seq;
        k->mem += sizeof(*b);
        d->mem += sizeof(*b);
        if (add_index(d, k, b, 0, id->index) < 0) {
            k->mem -= sizeof(*b);
            d->mem -= sizeof(*b);
            free(b);
            return -1;
        }
        p = bslot(k, id->epoch, id->seq);
        b->next = *p;
        *p = b;
        b->older = k->newest;
        if (k->newest != NULL)
            k->newest->newer = b;
        else
            k->oldest = b;
        k->newest = b;
        k->n++;
    }
    /* the window: the oldest batches go, never the one just added */
    while (k->ids > d->window && k->oldest != b)
        drop_oldest(d, k);
    return FB_DEDUPE_NEW;
}

int
fb_dedupe_check(fb_dedupe_t *d, const char *key, const fb_dedupe_id_t *id)
{
    kset_t *k = kfind(d, key);

    if (k == NULL && fb_dedupe_start(d, key) < 0)
        return -1;
    if (k == NULL)
        k = kfind(d, key);
    k->used = ++d->clock;
    int rc = check(d, k, id);
    if (d->mem > d->budget)
        over_budget(d, k);
    return rc;
}

/* parse_u64 -- decimal digits at *p (at least one, no leading zero but
 * "0", no overflow) up to end; advances *p. 0 or -1. */
static int
parse_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;

    *v = 0;
    if (s >= end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] >= '0' &&
                                              s[1] <= '9'))
        return -1;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        uint64_t digit = (uint64_t)(*s - '0');
        if (*v > (UINT64_MAX - digit) / 10)
            return -1;
        *v = *v * 10 + digit;
    }
    *p = s;
    return 0;
}

bool
fb_dedupe_line_id(const char *line, size_t len, fb_dedupe_id_t *id)
{
    const char *p, *end = line + len;

    if (len < FIELD_AT + sizeof(FIELD) - 1 + 16 || memcmp(line, "{\"time\":\"", 9) != 0 ||
        line[FIELD_AT - 1] != '"' || memcmp(line + FIELD_AT, FIELD, sizeof(FIELD) - 1) != 0)
        return false;
    p = line + FIELD_AT + sizeof(FIELD) - 1;
    id->epoch = 0;
    for (int i = 0; i < 16; i++, p++) {
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (v < 0)
            return false;
        id->epoch = id->epoch << 4 | (uint64_t)v;
    }
    if (id->epoch == 0 || p >= end || *p++ != '-' || parse_u64(&p, end, &id->seq) < 0 ||
        p >= end || *p++ != '-' || parse_u64(&p, end, &id->index) < 0 || p >= end || *p != '"')
        return false;
    return true;
}

/* The identities a load reads, newest first, added oldest first. */
typedef struct loading {
    fb_dedupe_id_t *ids;
    size_t n, cap, want;
    uint64_t lines;
    bool failed;
} loading_t;

static bool
load_line(const char *line, size_t len, void *arg)
{
    loading_t *l = arg;
    fb_dedupe_id_t id;

    l->lines++;
    if (!fb_dedupe_line_id(line, len, &id))
        return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        fb_dedupe_id_t *ids = realloc(l->ids, cap * sizeof(*ids));
        if (ids == NULL) {
            l->failed = true;
            return false;
        }
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return l->n < l->want;
}

int
fb_dedupe_load(fb_dedupe_t *d, fb_files_t *files, const char *key, uint64_t *lines,
               uint64_t *bytes)
{
    loading_t l = {.want = d->window};
    kset_t *k;

    fb_files_tail(files, key, d->load_max, load_line, &l, bytes);
    if (lines != NULL)
        *lines = l.lines;
    if (l.failed || fb_dedupe_start(d, key) < 0) {
        free(l.ids);
        return -1;
    }
    k = kfind(d, key);
    /* an identity not added (out of memory) leaves a set that holds
     * less than the file: its record may be written twice, never lost */
    for (size_t i = l.n; i-- > 0;)
        (void)check(d, k, &l.ids[i]);
    free(l.ids);
    if (d->mem > d->budget)
        over_budget(d, k);
    return 0;
}
