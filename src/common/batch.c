/*
 * batch.c -- fbpipe.v1.Batch from the wire and fbpipe.v1.Record to it,
 * without protobuf-c in between (see batch.h). The reader trusts nothing:
 * every length is checked against what is left before it is used.
 */
#include <stdio.h>
#include <string.h>

#include "common/batch.h"
#include "common/cipher.h"
#include "common/log.h"

/* protobuf wire types */
#define WT_VARINT 0
#define WT_I64 1
#define WT_LEN 2
#define WT_I32 5

/* ---- reading ----------------------------------------------------------- */

#define field fb_pb_field

/* varint -- one base-128 varint (at most 10 bytes); -1 if cut or too long. */
static int
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;

    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -1;
        x |= (uint64_t)(**p & 0x7f) << shift;
        if ((*(*p)++ & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int
fb_pb_field(const uint8_t **p, const uint8_t *end, uint32_t *num, unsigned *wt, uint64_t *v,
            fb_view_t *bytes)
{
    uint64_t key;

    if (varint(p, end, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    *num = (uint32_t)(key >> 3);
    *wt = (unsigned)(key & 7);
    switch (*wt) {
    case WT_VARINT:
        return varint(p, end, v);
    case WT_I64:
        if ((size_t)(end - *p) < 8)
            return -1;
        *p += 8;
        return 0;
    case WT_I32:
        if ((size_t)(end - *p) < 4)
            return -1;
        *p += 4;
        return 0;
    case WT_LEN:
        if (varint(p, end, v) < 0 || *v > (uint64_t)(end - *p))
            return -1;
        bytes->p = *p;
        bytes->len = (size_t)*v;
        *p += *v;
        return 0;
    default: /* groups (3, 4) are not proto3; 6 and 7 do not exist */
        return -1;
    }
}

int
fb_batch_peek(const uint8_t *p, size_t len, uint64_t *seq, size_t *n_records)
{
    const uint8_t *end = p + len;
    uint32_t num;
    unsigned wt;
    uint64_t v;
    fb_view_t b;

    *seq = 0;
    *n_records = 0;
    while (p < end) {
        if (field(&p, end, &num, &wt, &v, &b) < 0)
            return -1;
        if (num == 1 && wt == WT_VARINT)
            *seq = v;
        else if (num == 4 && wt == WT_LEN)
            (*n_records)++;
    }
    return 0;
}

int
fb_pb_timestamp(fb_view_t m, int64_t *seconds, int32_t *nanos)
{
    const uint8_t *p = m.p, *end = m.p + m.len;
    uint32_t num;
    unsigned wt;
    uint64_t v;
    fb_view_t b;

    while (p < end) {
        if (field(&p, end, &num, &wt, &v, &b) < 0)
            return -1;
        if ((num == 1 || num == 2) && wt != WT_VARINT)
            return -1;
        if (num == 1)
            *seconds = (int64_t)v;
        else if (num == 2)
            *nanos = (int32_t)v;
    }
    return 0;
}

/* parse_time -- google.protobuf.Timestamp. */
static int
parse_time(fb_view_t m, fb_batch_rec_t *r)
{
    r->has_time = true;
    r->seconds = 0;
    r->nanos = 0;
    return fb_pb_timestamp(m, &r->seconds, &r->nanos);
}

/* parse_rec -- one BatchRecord. */
static int
parse_rec(fb_view_t m, fb_batch_rec_t *r)
{
    const uint8_t *p = m.p, *end = m.p + m.len;
    uint32_t num;
    unsigned wt;
    uint64_t v;
    fb_view_t b;

    memset(r, 0, sizeof(*r));
    r->payload.p = r->key_id.p = m.p; /* empty views point somewhere valid */
    while (p < end) {
        if (field(&p, end, &num, &wt, &v, &b) < 0)
            return -1;
        switch (num) {
        case 1:
            if (wt != WT_LEN || parse_time(b, r) < 0)
                return -1;
            break;
        case 2:
            if (wt != WT_LEN)
                return -1;
            r->payload = b;
            break;
        case 3:
            if (wt != WT_VARINT)
                return -1;
            r->enc = v;
            break;
        case 4:
            if (wt != WT_LEN)
                return -1;
            r->key_id = b;
            break;
        default: /* a field of a newer agent: skipped */
            break;
        }
    }
    return 0;
}

int
fb_batch_parse(const uint8_t *p, size_t len, fb_batch_rec_t *recs, size_t cap, fb_batch_t *out)
{
    const uint8_t *end = p + len;
    uint32_t num;
    unsigned wt;
    uint64_t v;
    fb_view_t b;

    memset(out, 0, sizeof(*out));
    out->tag.p = out->agent_id.p = p;
    out->recs = recs;
    while (p < end) {
        if (field(&p, end, &num, &wt, &v, &b) < 0)
            return -1;
        switch (num) {
        case 1:
            if (wt != WT_VARINT)
                return -1;
            out->seq = v;
            break;
        case 5:
            if (wt != WT_VARINT)
                return -1;
            out->epoch = v;
            break;
        case 2:
        case 3:
            if (wt != WT_LEN)
                return -1;
            *(num == 2 ? &out->tag : &out->agent_id) = b;
            break;
        case 4:
            if (wt != WT_LEN || out->n == cap || parse_rec(b, &recs[out->n]) < 0)
                return -1;
            out->n++;
            break;
        default:
            break;
        }
    }
    return 0;
}

/* ---- checking ---------------------------------------------------------- */

/* check_view -- UTF-8 (no NUL) and at most max bytes; names the field. */
static int
check_view(fb_view_t s, size_t max, const char *field_name, char *why, size_t whylen)
{
    if (s.len > max) {
        snprintf(why, whylen, "%s: %zu bytes, at most %zu", field_name, s.len, max);
        return -1;
    }
    if (memchr(s.p, 0, s.len) != NULL) {
        snprintf(why, whylen, "%s: contains a NUL byte", field_name);
        return -1;
    }
    if (!fb_utf8_valid((const char *)s.p, s.len)) {
        snprintf(why, whylen, "%s: not valid UTF-8", field_name);
        return -1;
    }
    return 0;
}

fb_record_err_t
fb_batch_check(const fb_batch_t *b, char *why, size_t whylen)
{
    if (check_view(b->agent_id, FB_AGENT_ID_MAX, "agent_id", why, whylen) < 0 ||
        check_view(b->tag, FB_TAG_MAX, "tag", why, whylen) < 0)
        return FB_RECORD_INVALID;
    return FB_RECORD_OK;
}

/* key_of -- the tenant's key named by the record, or NULL. */
static const fb_enc_key_t *
key_of(const fb_tenant_t *t, fb_view_t id)
{
    char name[FB_KEY_ID_MAX + 1];

    if (id.len == 0 || id.len > FB_KEY_ID_MAX || !fb_key_id_valid((const char *)id.p, id.len))
        return NULL;
    memcpy(name, id.p, id.len);
    name[id.len] = '\0';
    return fb_tenant_enc_key(t, name);
}

fb_record_err_t
fb_batch_record_check(const fb_batch_t *b, size_t i, const fb_tenant_t *t, int64_t now_ns,
                      size_t max_bytes, size_t *size, char *why, size_t whylen)
{
    const fb_batch_rec_t *r = &b->recs[i];

    if (r->payload.len > max_bytes) {
        snprintf(why, whylen, "payload of %zu bytes is larger than the largest record Kafka takes (%zu)",
                 r->payload.len, max_bytes);
        return FB_RECORD_TOO_LARGE;
    }
    if (r->has_time) { /* as it will be written */
        int64_t sec = r->seconds;
        int32_t ns = r->nanos;
        fb_ts_normalize(&sec, &ns);
        if (fb_ts_check(sec, ns, why, whylen) < 0)
            return FB_RECORD_INVALID;
    }
    switch (r->enc) {
    case 0: /* CIPHER_NONE */
        if (t->n_enc_keys > 0) {
            snprintf(why, whylen, "access key \"%s\" encrypts its events: a plaintext record "
                     "is refused", t->access_key);
            return FB_RECORD_INVALID;
        }
        if (r->key_id.len != 0) {
            snprintf(why, whylen, "key_id set on a plaintext record");
            return FB_RECORD_INVALID;
        }
        if (check_view(r->payload, max_bytes, "payload", why, whylen) < 0)
            return FB_RECORD_INVALID;
        break;
    case FB_CIPHER_XCHACHA:    /* CIPHER_XCHACHA20POLY1305, of agents before _V2 */
    case FB_CIPHER_XCHACHA_V2: /* CIPHER_XCHACHA20POLY1305_V2 */
        if (t->n_enc_keys == 0) {
            snprintf(why, whylen, "access key \"%s\" has no encryption key", t->access_key);
            return FB_RECORD_INVALID;
        }
        if (key_of(t, r->key_id) == NULL) {
            char shown[FB_KEY_ID_MAX + 8];
            fb_log_show(shown, sizeof(shown), (const char *)r->key_id.p, r->key_id.len,
                        FB_KEY_ID_MAX);
            snprintf(why, whylen, "key_id \"%s\" is not a key of access key \"%s\"", shown,
                     t->access_key);
            return FB_RECORD_INVALID;
        }
        if (r->payload.len < 24 + 16) {
            snprintf(why, whylen, "encrypted payload of %zu bytes is shorter than nonce and tag",
                     r->payload.len);
            return FB_RECORD_INVALID;
        }
        break;
    default:
        snprintf(why, whylen, "cipher %llu is not accepted on this API",
                 (unsigned long long)r->enc);
        return FB_RECORD_INVALID;
    }
    *size = fb_batch_record_write(b, i, t, now_ns, NULL);
    if (*size + strlen(t->access_key) > max_bytes) {
        snprintf(why, whylen, "record of %zu bytes is larger than the largest record Kafka takes (%zu)",
                 *size + strlen(t->access_key), max_bytes);
        return FB_RECORD_TOO_LARGE;
    }
    return FB_RECORD_OK;
}

/* ---- writing ----------------------------------------------------------- */

/* A writer that only counts while p is NULL. */
typedef struct out {
    uint8_t *p;
    size_t n;
} out_t;

static void
put_byte(out_t *o, uint8_t c)
{
    if (o->p != NULL)
        o->p[o->n] = c;
    o->n++;
}

static void
put_varint(out_t *o, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(o, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(o, (uint8_t)v);
}

static size_t
varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void
put_key(out_t *o, uint32_t num, unsigned wt)
{
    put_varint(o, (uint64_t)num << 3 | wt);
}

/* put_bytes -- a length-delimited field, left out when empty (proto3). */
static void
put_bytes(out_t *o, uint32_t num, const void *p, size_t len)
{
    if (len == 0)
        return;
    put_key(o, num, WT_LEN);
    put_varint(o, len);
    if (o->p != NULL)
        memcpy(o->p + o->n, p, len);
    o->n += len;
}

static void
put_uint(out_t *o, uint32_t num, uint64_t v)
{
    if (v == 0)
        return;
    put_key(o, num, WT_VARINT);
    put_varint(o, v);
}

/* put_time -- a Timestamp submessage (always present, as protobuf-c
 * writes a set message even when empty). */
static void
put_time(out_t *o, uint32_t num, int64_t seconds, int32_t nanos)
{
    /* int64/int32 are varints of their two's complement, 10 bytes if negative */
    uint64_t s = (uint64_t)seconds, ns = (uint64_t)(int64_t)nanos;
    size_t len = (s ? 1 + varint_len(s) : 0) + (ns ? 1 + varint_len(ns) : 0);

    put_key(o, num, WT_LEN);
    put_varint(o, len);
    put_uint(o, 1, s);
    put_uint(o, 2, ns);
}

size_t
fb_base64(const uint8_t *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < len ? a[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

size_t
fb_batch_record_write(const fb_batch_t *b, size_t i, const fb_tenant_t *t, int64_t now_ns,
                      uint8_t *dst)
{
    const fb_batch_rec_t *r = &b->recs[i];
    out_t o = {.p = dst, .n = 0};
    int64_t sec = now_ns / 1000000000;
    int32_t ns = (int32_t)(now_ns % 1000000000);

    /* 1 timestamp: the record's (normalised), or the time it arrived */
    if (r->has_time) {
        int64_t s = r->seconds;
        int32_t n = r->nanos;
        fb_ts_normalize(&s, &n);
        put_time(&o, 1, s, n);
    } else {
        put_time(&o, 1, sec, ns);
    }
    put_bytes(&o, 2, b->agent_id.p, b->agent_id.len);
    put_bytes(&o, 3, b->tag.p, b->tag.len);
    /* 4 message: the payload, or the base64 of the ciphertext */
    if (r->enc == 0) {
        put_bytes(&o, 4, r->payload.p, r->payload.len);
    } else if (r->payload.len > 0) {
        size_t b64 = (r->payload.len + 2) / 3 * 4;
        put_key(&o, 4, WT_LEN);
        put_varint(&o, b64);
        if (o.p != NULL)
            fb_base64(r->payload.p, r->payload.len, (char *)o.p + o.n);
        o.n += b64;
    }
    put_bytes(&o, 5, t->user_id, strlen(t->user_id));
    put_bytes(&o, 6, t->access_key, strlen(t->access_key));
    put_uint(&o, 16, r->enc);
    if (r->enc != 0)
        put_bytes(&o, 17, r->key_id.p, r->key_id.len);
    put_uint(&o, 18, i);
    put_uint(&o, 19, b->seq);
    put_time(&o, 20, sec, ns);
    put_uint(&o, 21, b->epoch); /* none for 0: as before epochs */
    return o.n;
}
