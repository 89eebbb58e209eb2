/*
 * chunk.c -- Fluent Bit chunks into events (chunk.h): each record checked
 * by a bounded, iterative walk of the msgpack bytes, then unpacked with
 * msgpack-c and its body rendered as JSON into a reused buffer.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "plugin/chunk.h"

/* ---- the check ------------------------------------------------------ */

static uint64_t
be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* check -- one whole value at *p: 1 when well-formed and at most
 * FB_CHUNK_MAX_DEPTH deep, 2 when well-formed but deeper, 0 when it is
 * malformed or cut; *p moves past it (when well-formed). Iterative: a
 * count of the values still owed at each level. An empty container counts
 * as a level too: msgpack-c refuses to open one past its bound as well. */
static int
check(const uint8_t **pp, const uint8_t *end)
{
    uint64_t owed[FB_CHUNK_MAX_DEPTH + 2];
    unsigned depth = 0;
    bool deep = false;
    const uint8_t *p = *pp;

    owed[0] = 1;
    for (;;) {
        uint64_t len = 0, n = 0; /* bytes to skip; elements it holds */
        unsigned hdr = 1;
        bool container = false;
        uint8_t c;

        while (owed[depth] == 0) {
            if (depth == 0) {
                *pp = p;
                return deep ? 2 : 1;
            }
            depth--;
        }
        if (p >= end)
            return 0;
        owed[depth]--;
        c = *p;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        } else if (c >= 0x80 && c <= 0x8f) {
            n = 2u * (c & 0x0f);
            container = true;
        } else if (c >= 0x90 && c <= 0x9f) {
            n = c & 0x0f;
            container = true;
        } else if (c >= 0xa0 && c <= 0xbf) {
            len = c & 0x1f;
        } else {
            static const struct { uint8_t lenbytes, fixed, kind; } t[0x20] = {
                /* kind: 0 plain, 1 length follows, 2 array count, 3 map count, 4 ext (+1 type) */
                [0x04] = {1, 0, 1}, [0x05] = {2, 0, 1}, [0x06] = {4, 0, 1},   /* bin */
                [0x07] = {1, 0, 4}, [0x08] = {2, 0, 4}, [0x09] = {4, 0, 4},   /* ext */
                [0x0a] = {0, 4, 0}, [0x0b] = {0, 8, 0},                         /* float */
                [0x0c] = {0, 1, 0}, [0x0d] = {0, 2, 0}, [0x0e] = {0, 4, 0}, [0x0f] = {0, 8, 0},
                [0x10] = {0, 1, 0}, [0x11] = {0, 2, 0}, [0x12] = {0, 4, 0}, [0x13] = {0, 8, 0},
                [0x14] = {0, 2, 0}, [0x15] = {0, 3, 0}, [0x16] = {0, 5, 0}, [0x17] = {0, 9, 0},
                [0x18] = {0, 17, 0},                                             /* fixext */
                [0x19] = {1, 0, 1}, [0x1a] = {2, 0, 1}, [0x1b] = {4, 0, 1},   /* str */
                [0x1c] = {2, 0, 2}, [0x1d] = {4, 0, 2},                         /* array */
                [0x1e] = {2, 0, 3}, [0x1f] = {4, 0, 3},                         /* map */
            };
            unsigned i = c - 0xc0;
            if (c == 0xc1 || (t[i].lenbytes == 0 && t[i].fixed == 0))
                return 0;
            hdr += t[i].lenbytes;
            if ((uint64_t)(end - p) < hdr)
                return 0;
            if (t[i].lenbytes == 0) {
                len = t[i].fixed;
            } else {
                uint64_t v = be(p + 1, t[i].lenbytes);
                container = t[i].kind == 2 || t[i].kind == 3;
                if (t[i].kind == 2)
                    n = v;
                else if (t[i].kind == 3)
                    n = 2 * v;
                else
                    len = v + (t[i].kind == 4);
            }
        }
        if ((uint64_t)(end - p) < hdr + len)
            return 0;
        p += hdr + len;
        if (container) {
            if (n > (uint64_t)(end - p)) /* every element takes a byte at least */
                return 0;
            if (depth + 1 > FB_CHUNK_MAX_DEPTH) {
                deep = true;
                owed[depth] += n; /* deeper levels are only counted */
            } else if (n > 0) {
                owed[++depth] = n;
            }
        }
    }
}

/* ---- rendering ------------------------------------------------------ */

typedef struct out {
    char *buf;
    size_t len, cap, max;
    bool over, nomem;
} out_t;

static bool
room(out_t *o, size_t n)
{
    if (o->len + n > o->max) {
        o->over = true;
        return false;
    }
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        char *b;
        while (cap < o->len + n)
            cap *= 2;
        b = realloc(o->buf, cap);
        if (b == NULL) {
            o->nomem = true;
            return false;
        }
        o->buf = b;
        o->cap = cap;
    }
    return true;
}

static void
put(out_t *o, const char *s, size_t n)
{
    if (room(o, n)) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}

/* utf8_len -- the length of a well-formed UTF-8 sequence at s, 0 if none. */
static size_t
utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* put_string -- a JSON string of s; bytes that are not UTF-8 become U+FFFD. */
static void
put_string(out_t *o, const char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;

    put(o, "\"", 1);
    for (size_t i = 0; i < n && !o->over && !o->nomem;) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) {
            put(o, s + i, run - i);
            i = run;
            continue;
        }
        if (u[i] >= 0x80) {
            size_t l = utf8_len(u + i, n - i);
            if (l == 0) {
                put(o, "\xef\xbf\xbd", 3);
                i++;
            } else {
                put(o, s + i, l);
                i += l;
            }
            continue;
        }
        char esc[6] = {'\\', 'u', '0', '0', hexd[u[i] >> 4], hexd[u[i] & 15]};
        switch (u[i]) {
        case '"': put(o, "\\\"", 2); break;
        case '\\': put(o, "\\\\", 2); break;
        case '\n': put(o, "\\n", 2); break;
        case '\r': put(o, "\\r", 2); break;
        case '\t': put(o, "\\t", 2); break;
        default: put(o, esc, 6);
        }
        i++;
    }
    put(o, "\"", 1);
}

static void
put_base64(out_t *o, const char *data, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)data;

    put(o, "\"", 1);
    for (size_t i = 0; i < n && !o->over && !o->nomem; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < n ? (uint32_t)u[i + 1] << 8 : 0) |
                     (i + 2 < n ? u[i + 2] : 0);
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        put(o, q, 4);
    }
    put(o, "\"", 1);
}

static void render(out_t *o, const msgpack_object *v);

/* render_key -- a map key: a string as it is, anything else as the string
 * of its JSON text. */
static void
render_key(out_t *o, const msgpack_object *k)
{
    out_t tmp = {.max = o->max};

    if (k->type == MSGPACK_OBJECT_STR) {
        put_string(o, k->via.str.ptr, k->via.str.size);
        return;
    }
    render(&tmp, k);
    if (tmp.nomem)
        o->nomem = true;
    else if (tmp.over)
        o->over = true;
    else
        put_string(o, tmp.buf, tmp.len);
    free(tmp.buf);
}

static void
render(out_t *o, const msgpack_object *v)
{
    char num[40];
    int n;

    switch (v->type) {
    case MSGPACK_OBJECT_NIL:
        put(o, "null", 4);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        v->via.boolean ? put(o, "true", 4) : put(o, "false", 5);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v->via.u64);
        put(o, num, (size_t)n);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = snprintf(num, sizeof(num), "%lld", (long long)v->via.i64);
        put(o, num, (size_t)n);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(v->via.f64)) {
            put(o, "null", 4);
            break;
        }
        n = snprintf(num, sizeof(num), "%.17g", v->via.f64);
        put(o, num, (size_t)n);
        if (strpbrk(num, ".eE") == NULL)
            put(o, ".0", 2); /* stays a float for a JSON reader */
        break;
    case MSGPACK_OBJECT_STR:
        put_string(o, v->via.str.ptr, v->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        put_base64(o, v->via.bin.ptr, v->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        put_base64(o, v->via.ext.ptr, v->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        put(o, "[", 1);
        for (uint32_t i = 0; i < v->via.array.size && !o->over && !o->nomem; i++) {
            if (i)
                put(o, ",", 1);
            render(o, &v->via.array.ptr[i]);
        }
        put(o, "]", 1);
        break;
    case MSGPACK_OBJECT_MAP:
        put(o, "{", 1);
        for (uint32_t i = 0; i < v->via.map.size && !o->over && !o->nomem; i++) {
            if (i)
                put(o, ",", 1);
            render_key(o, &v->via.map.ptr[i].key);
            put(o, ":", 1);
            render(o, &v->via.map.ptr[i].val);
        }
        put(o, "}", 1);
        break;
    }
}

/* ---- records -------------------------------------------------------- */

/* event_time -- the time of a record header; 1, 0 for a group marker, -1
 * when it is not a time. */
static int
event_time(const msgpack_object *t, int64_t *sec, int32_t *nsec)
{
    switch (t->type) {
    case MSGPACK_OBJECT_EXT:
        if (t->via.ext.type != 0 || t->via.ext.size != 8)
            return -1;
        *sec = (int64_t)be((const uint8_t *)t->via.ext.ptr, 4);
        *nsec = (int32_t)be((const uint8_t *)t->via.ext.ptr + 4, 4);
        if (*sec == 0xffffffff || *sec == 0xfffffffe)
            return 0;
        return *nsec >= 0 && *nsec <= 999999999 ? 1 : -1;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (t->via.u64 > INT64_MAX)
            return -1;
        *sec = (int64_t)t->via.u64;
        *nsec = 0;
        return 1;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return t->via.i64 == -1 || t->via.i64 == -2 ? 0 : -1;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        double f = t->via.f64;
        if (!isfinite(f) || f < 0 || f > 9.2e18)
            return -1;
        *sec = (int64_t)f;
        *nsec = (int32_t)((f - (double)*sec) * 1e9);
        if (*nsec > 999999999)
            *nsec = 999999999;
        return 1;
    }
    default:
        return -1;
    }
}

int
fb_chunk_events(const void *data, size_t size, size_t max_json, fb_chunk_cb_t cb, void *arg,
                fb_chunk_stats_t *st)
{
    const uint8_t *p = data, *end = p + size;
    out_t o = {.max = max_json};
    msgpack_unpacked u;
    int rc = 0;

    memset(st, 0, sizeof(*st));
    msgpack_unpacked_init(&u);
    while (p < end && rc == 0) {
        const uint8_t *start = p;
        int ok = check(&p, end);
        size_t off = 0;

        if (ok == 0) {
            st->bad_bytes = (size_t)(end - start);
            break;
        }
        if (ok == 2) {
            st->refused++;
            continue;
        }
        if (msgpack_unpack_next(&u, (const char *)start, (size_t)(p - start), &off) !=
            MSGPACK_UNPACK_SUCCESS) {
            /* checked, yet msgpack-c will not read it: one record refused,
             * never the whole chunk retried (it would fail the same way) */
            st->refused++;
            continue;
        }
        /* [header, body], header = [time, metadata] or time */
        const msgpack_object *r = &u.data, *t;
        if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 2) {
            st->refused++;
            continue;
        }
        t = &r->via.array.ptr[0];
        if (t->type == MSGPACK_OBJECT_ARRAY)
            t = t->via.array.size >= 1 ? &t->via.array.ptr[0] : NULL;
        fb_chunk_event_t ev = {0};
        int kind = t != NULL ? event_time(t, &ev.seconds, &ev.nanos) : -1;
        if (kind == 0) {
            st->groups++;
            continue;
        }
        if (kind < 0) {
            st->refused++;
            continue;
        }
        o.len = 0;
        o.over = false;
        render(&o, &r->via.array.ptr[1]);
        if (o.nomem) {
            rc = -1;
            break;
        }
        if (o.over) {
            st->refused++;
            continue;
        }
        ev.json = o.buf;
        ev.len = o.len;
        st->events++;
        rc = cb(&ev, arg);
    }
    msgpack_unpacked_destroy(&u);
    free(o.buf);
    return rc;
}
