/*
 * router_line.c -- fbpipe.v1.Record into a JSON line (router_line.h).
 * The record is read in place (common/batch.c's wire reader), strings are
 * checked as UTF-8, the message is kept as compacted JSON when it is JSON
 * (router_json.c) and quoted otherwise; the line is built in the liner's
 * buffer, without allocation once it has grown. Plaintext is wiped after
 * use.
 *
 * A record without a Kafka key (the Go version's api.Event) is read only
 * with FB_LINE_F_LEGACY: named after its own AccessKey, which must name an
 * enabled tenant (the key database stands in for the token no one
 * checked), its time normalised as the ingester does for old agents, its
 * message in the seed format when the tenant has a key, and its line
 * marked "unauthenticated": true.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/batch.h"
#include "common/cipher.h"
#include "common/log.h"
#include "common/record.h"
#include "fbpipe.pb-c.h"
#include "router/router_json.h"
#include "router/router_line.h"

#define SHOW_MAX 64
#define WT_VARINT 0
#define WT_LEN 2

struct fb_liner {
    char *buf;          /* the line */
    size_t cap;
    uint8_t *bin;       /* a decoded ciphertext, then its plaintext */
    size_t bin_cap;
    int64_t cached_sec; /* "YYYY-MM-DDTHH:MM:SS." of cached_sec */
    bool cached;
    char cached_text[80];
};

/* The fields of a Record the line needs, as views into the record. */
typedef struct rec {
    bool has_ts, has_rx;
    int64_t ts_s, rx_s;
    int32_t ts_n, rx_n;
    fb_view_t agent_id, tag, message, user_id, access_key, key_id;
    uint64_t cipher;
    uint64_t agent_seq, batch_seq, agent_epoch;
    bool has_own; /* a field of Record's own (16-20), which no api.Event has */
} rec_t;

fb_liner_t *
fb_liner_new(void)
{
    return calloc(1, sizeof(fb_liner_t));
}

void
fb_liner_free(fb_liner_t *l)
{
    if (l == NULL)
        return;
    if (l->bin != NULL)
        sodium_memzero(l->bin, l->bin_cap);
    free(l->bin);
    free(l->buf);
    free(l);
}

/* grow -- *p holds at least n bytes; 0 or -1. */
static int
grow(void **p, size_t *cap, size_t n, bool wipe)
{
    size_t c = *cap ? *cap : 4096;
    void *q;

    if (n <= *cap)
        return 0;
    while (c < n)
        c *= 2;
    q = malloc(c);
    if (q == NULL)
        return -1;
    if (*p != NULL && wipe)
        sodium_memzero(*p, *cap);
    free(*p);
    *p = q;
    *cap = c;
    return 0;
}

/* seconds_text -- "YYYY-MM-DDTHH:MM:SS." (20 bytes and a NUL, for a time
 * in range); -1 if gmtime fails. */
static int
seconds_text(int64_t seconds, char out[80])
{
    struct tm tm;
    time_t t = (time_t)seconds;

    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return 0;
}

/* nanos_text -- nine digits and 'Z' */
static void
nanos_text(int32_t nanos, char *out)
{
    for (int i = 8; i >= 0; i--) {
        out[i] = (char)('0' + nanos % 10);
        nanos /= 10;
    }
    out[9] = 'Z';
}

int
fb_line_time(int64_t seconds, int32_t nanos, char *out, size_t size)
{
    char text[80];

    if (!fb_ts_in_range(seconds, nanos) || size < 32 || seconds_text(seconds, text) < 0)
        return -1;
    memcpy(out, text, 20);
    nanos_text(nanos, out + 20);
    out[30] = '\0';
    return 0;
}

/* refuse -- why = before + arg (escaped, when not NULL) + after; err. */
static fb_line_err_t
refuse(fb_line_err_t err, char *why, size_t whylen, const char *before, const fb_view_t *arg,
       const char *after)
{
    char shown[SHOW_MAX * 4 + 8];

    fb_log_show(shown, sizeof(shown), arg ? (const char *)arg->p : "", arg ? arg->len : 0,
                SHOW_MAX);
    snprintf(why, whylen, "%s%s%s", before, arg ? shown : "", after);
    return err;
}

/* parse -- the Record's fields in place; 0, or -1 when it is not one
 * (the wire types protobuf would refuse, as it would). */
static int
parse(const uint8_t *p, size_t len, rec_t *r)
{
    static const uint8_t nothing[1];
    const uint8_t *end;

    memset(r, 0, sizeof(*r));
    if (p == NULL) { /* a Kafka record without a value (a tombstone) */
        p = nothing;
        len = 0;
    }
    end = p + len;
    /* a field the record leaves out is an empty view of somewhere valid,
     * never of NULL: it is checked, copied and quoted like the others */
    r->agent_id.p = r->tag.p = r->message.p = r->user_id.p = r->access_key.p = r->key_id.p = p;
    while (p < end) {
        uint32_t num;
        unsigned wt;
        uint64_t v = 0;
        fb_view_t b = {0};
        fb_view_t *s = NULL;

        if (fb_pb_field(&p, end, &num, &wt, &v, &b) < 0)
            return -1;
        r->has_own |= num >= 16 && num <= 21;
        switch (num) {
        case 1:
            r->has_ts = true;
            if (wt != WT_LEN || fb_pb_timestamp(b, &r->ts_s, &r->ts_n) < 0)
                return -1;
            continue;
        case 20:
            r->has_rx = true;
            if (wt != WT_LEN || fb_pb_timestamp(b, &r->rx_s, &r->rx_n) < 0)
                return -1;
            continue;
        case 16:
            if (wt != WT_VARINT)
                return -1;
            r->cipher = v;
            continue;
        case 18:
        case 19:
        case 21:
            if (wt != WT_VARINT)
                return -1;
            *(num == 18 ? &r->agent_seq : num == 19 ? &r->batch_seq : &r->agent_epoch) = v;
            continue;
        case 2: s = &r->agent_id; break;
        case 3: s = &r->tag; break;
        case 4: s = &r->message; break;
        case 5: s = &r->user_id; break;
        case 6: s = &r->access_key; break;
        case 17: s = &r->key_id; break;
        default:
            continue; /* unknown fields are skipped, as protobuf does */
        }
        if (wt != WT_LEN)
            return -1;
        *s = b;
    }
    return 0;
}

_Static_assert(FB_CIPHER_XCHACHA == FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305,
               "cipher.h follows fbpipe.proto");
_Static_assert(FB_CIPHER_XCHACHA_V2 == FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2,
               "cipher.h follows fbpipe.proto");

/* decrypt -- r's message decrypted into l->bin (*plain points to it); its
 * length, or -1 when it does not decrypt with the tenant's key of that id. */
static long
decrypt(fb_liner_t *l, const rec_t *r, const fb_tenant_t *t, const uint8_t **plain)
{
    char key_id[FB_KEY_ID_MAX + 1];
    const fb_enc_key_t *k;
    size_t out_len = 0, bin_len = 0, half = r->message.len + 64;

    if (r->key_id.len > FB_KEY_ID_MAX)
        return -1;
    memcpy(key_id, r->key_id.p, r->key_id.len);
    key_id[r->key_id.len] = '\0';
    k = fb_tenant_enc_key(t, key_id);
    if (k == NULL || grow((void **)&l->bin, &l->bin_cap, 2 * half, true) < 0)
        return -1;
    *plain = l->bin;
    if (r->cipher == FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX) {
        if (fb_cipher_open_aesgcm_hex(k->key, (const char *)r->message.p, r->message.len,
                                      l->bin, &out_len) == 0)
            return (long)out_len;
    } else if (r->cipher <= FB_CIPHER_XCHACHA_V2 && fb_cipher_is_xchacha((int)r->cipher)) {
        /* decoded into the second half, opened into the first; each
         * version with its own associated data (cipher.h) */
        if (sodium_base642bin(l->bin + half, half, (const char *)r->message.p, r->message.len,
                              NULL, &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
            bin_len >= FB_XCHACHA_NONCE + FB_XCHACHA_TAG &&
            fb_cipher_open_xchacha((int)r->cipher, k->key, t->access_key, key_id, l->bin + half,
                                   bin_len, l->bin, &out_len) == 0)
            return (long)out_len;
    }
    return -1;
}

/* decrypt_legacy -- a record without a key: its message in the seed
 * format (the Go version's agents encrypt exactly when the tenant has a
 * key), opened with the tenant's keys in turn, newest first, for the
 * record names none; AES-GCM authenticates, so a wrong key never opens it.
 * Its length in l->bin (*plain), or -1. */
static long
decrypt_legacy(fb_liner_t *l, const rec_t *r, const fb_tenant_t *t, const uint8_t **plain)
{
    size_t out_len = 0;

    if (grow((void **)&l->bin, &l->bin_cap, r->message.len / 2 + 1, true) < 0)
        return -1;
    *plain = l->bin;
    for (size_t i = 0; i < t->n_enc_keys; i++)
        if (fb_cipher_open_aesgcm_hex(t->enc_keys[i].key, (const char *)r->message.p,
                                      r->message.len, l->bin, &out_len) == 0)
            return (long)out_len;
    return -1;
}

/* legacy_key -- a record without a Kafka key: why it cannot be read (its
 * kind, why filled), or FB_LINE_OK with *t the tenant its AccessKey names. */
static fb_line_err_t
legacy_key(const rec_t *r, const fb_keydb_t *db, const fb_tenant_t **t, char *why, size_t whylen)
{
    char shown[SHOW_MAX * 4 + 8];
    const char *reason;

    if (r->has_own)
        return refuse(FB_LINE_UNDECODABLE, why, whylen,
                      "a record without a key that has fields of fbpipe.v1.Record's own "
                      "(16-20): neither the Go version's nor fbpipe's", NULL, "");
    fb_log_show(shown, sizeof(shown), (const char *)r->access_key.p, r->access_key.len, SHOW_MAX);
    if (!fb_access_key_valid((const char *)r->access_key.p, r->access_key.len, &reason)) {
        snprintf(why, whylen, "a record without a key: its AccessKey \"%s\" is not a safe file "
                 "name: %s", shown, reason);
        return FB_LINE_BAD_KEY;
    }
    *t = fb_keydb_find(db, (const char *)r->access_key.p, r->access_key.len);
    if (*t == NULL) {
        snprintf(why, whylen, "a record without a key: its AccessKey \"%s\" is no tenant of the "
                 "key database", shown);
        return FB_LINE_BAD_KEY;
    }
    if ((*t)->disabled) {
        snprintf(why, whylen, "a record without a key: its AccessKey \"%s\" is disabled in the "
                 "key database", shown);
        return FB_LINE_BAD_KEY;
    }
    return FB_LINE_OK;
}

/* put -- append n bytes at *o */
static char *
put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

fb_line_err_t
fb_line_build(fb_liner_t *l, const uint8_t *value, size_t len, const char *key, size_t key_len,
              const fb_keydb_t *db, unsigned flags, fb_line_t *out, char *why, size_t whylen)
{
    const fb_tenant_t *t = NULL; /* a record without a key: the tenant it names */
    const char *msg, *reason;
    size_t msg_len, need;
    bool wipe = false, legacy = key == NULL;
    fb_line_err_t err;
    int64_t sec;
    int32_t nanos;
    long compact;
    rec_t r;
    char *o;

    out->access_key[0] = '\0';
    out->text = NULL;
    out->len = 0;
    out->unauthenticated = false;
    out->has_id = false;
    out->epoch = out->seq = out->index = 0;
    if (legacy && !(flags & FB_LINE_F_LEGACY)) {
        snprintf(why, whylen, "a record without a key, as the Go version writes: set "
                              "router.accept_legacy_records = yes to read them");
        return FB_LINE_LEGACY_OFF;
    }
    if (!legacy && !fb_access_key_valid(key, key_len, &reason)) {
        char k[SHOW_MAX * 4 + 8];
        fb_log_show(k, sizeof(k), key, key_len, SHOW_MAX);
        snprintf(why, whylen, "access key \"%s\" is not a safe file name: %s", k, reason);
        return FB_LINE_BAD_KEY;
    }
    if (parse(value, len, &r) < 0)
        return refuse(FB_LINE_UNDECODABLE, why, whylen,
                      legacy ? "a record without a key that is not an api.Event"
                             : "not a fbpipe.v1.Record", NULL, "");
    if (legacy) {
        if ((err = legacy_key(&r, db, &t, why, whylen)) != FB_LINE_OK)
            return err;
        key = (const char *)r.access_key.p;
        key_len = r.access_key.len;
        /* the Go version's agents put nanoseconds into seconds, and it
         * wrote them as they came: normalised as fbpipe's ingester does */
        if (r.has_ts)
            fb_ts_normalize(&r.ts_s, &r.ts_n);
    } else if (r.access_key.len != key_len || memcmp(r.access_key.p, key, key_len) != 0) {
        return refuse(FB_LINE_BAD_KEY, why, whylen, "the record's AccessKey \"", &r.access_key,
                      "\" is not its Kafka key");
    }
    memcpy(out->access_key, key, key_len);
    out->access_key[key_len] = '\0';
    if (!fb_utf8_valid((const char *)r.tag.p, r.tag.len) ||
        !fb_utf8_valid((const char *)r.agent_id.p, r.agent_id.len) ||
        !fb_utf8_valid((const char *)r.user_id.p, r.user_id.len) ||
        !fb_utf8_valid((const char *)r.key_id.p, r.key_id.len))
        return refuse(FB_LINE_UNDECODABLE, why, whylen, "a field is not UTF-8", NULL, "");
    sec = r.has_ts ? r.ts_s : r.rx_s;
    nanos = r.has_ts ? r.ts_n : r.rx_n;
    if ((!r.has_ts && !r.has_rx) || !fb_ts_in_range(sec, nanos))
        return refuse(FB_LINE_UNDECODABLE, why, whylen, "no time, or one out of range", NULL, "");
    out->time_s = sec;
    if (!l->cached || l->cached_sec != sec) {
        if (seconds_text(sec, l->cached_text) < 0)
            return refuse(FB_LINE_UNDECODABLE, why, whylen, "a time out of range", NULL, "");
        l->cached_sec = sec;
        l->cached = true;
    }
    msg = (const char *)r.message.p;
    msg_len = r.message.len;
    if (legacy && (flags & FB_LINE_F_DECRYPT) && t->n_enc_keys > 0) {
        const uint8_t *plain = NULL;
        long n = decrypt_legacy(l, &r, t, &plain);
        if (n < 0)
            return refuse(FB_LINE_UNDECRYPTABLE, why, whylen,
                          "a record without a key: its message does not decrypt in the seed "
                          "format (AES-256-GCM, hex) with a key of \"", &r.access_key,
                          "\" in the key database");
        msg = (const char *)plain;
        msg_len = (size_t)n;
        wipe = true;
    } else if (!legacy && (flags & FB_LINE_F_DECRYPT) &&
               r.cipher != FBPIPE__V1__CIPHER__CIPHER_NONE) {
        const fb_tenant_t *kt = db != NULL ? fb_keydb_find(db, key, key_len) : NULL;
        const uint8_t *plain = NULL;
        long n = kt != NULL ? decrypt(l, &r, kt, &plain) : -1;
        if (n < 0)
            return refuse(FB_LINE_UNDECRYPTABLE, why, whylen, "does not decrypt with key \"",
                          &r.key_id, "\" of the key database");
        msg = (const char *)plain;
        msg_len = (size_t)n;
        wipe = true;
    }
    if (!fb_utf8_valid(msg, msg_len)) {
        if (wipe)
            sodium_memzero(l->bin, msg_len);
        return refuse(FB_LINE_UNDECODABLE, why, whylen, "message is not UTF-8", NULL, "");
    }
    need = 272 + 6 * (r.tag.len + r.agent_id.len + r.user_id.len + key_len + msg_len);
    if (grow((void **)&l->buf, &l->cap, need, false) < 0) {
        if (wipe)
            sodium_memzero(l->bin, msg_len);
        return refuse(FB_LINE_UNDECODABLE, why, whylen, "out of memory", NULL, "");
    }
    o = put(l->buf, "{\"time\":\"", 9);
    o = put(o, l->cached_text, 20);
    nanos_text(nanos, o);
    o += 10;
    /* the identity right after the time, at a fixed place, before any
     * field a client chooses: a load finds it there (router_dedupe.c) */
    if (!legacy && r.agent_epoch != 0 && (flags & FB_LINE_F_ID))
        o += sprintf(o, "\",\"fbpipe_id\":\"%016llx-%llu-%llu", (unsigned long long)r.agent_epoch,
                     (unsigned long long)r.batch_seq, (unsigned long long)r.agent_seq);
    o = put(o, "\",\"tag\":", 8);
    o += fb_json_quote((const char *)r.tag.p, r.tag.len, o);
    o = put(o, ",\"agent_id\":", 12);
    o += fb_json_quote((const char *)r.agent_id.p, r.agent_id.len, o);
    o = put(o, ",\"user_id\":", 11);
    o += fb_json_quote((const char *)r.user_id.p, r.user_id.len, o);
    o = put(o, ",\"access_key\":", 14);
    o += fb_json_quote(key, key_len, o);
    /* the access key and user id above are what the client asserted: no
     * token vouched for them (a field of the line, not another file, so
     * that the tenant's file stays one ordered history across a cut-over
     * and a consumer can still tell these lines apart) */
    if (legacy)
        o = put(o, ",\"unauthenticated\":true", 23);
    o = put(o, ",\"message\":", 11);
    compact = fb_json_compact(msg, msg_len, o);
    o += compact >= 0 ? (size_t)compact : fb_json_quote(msg, msg_len, o);
    o = put(o, "}\n", 2);
    if (wipe)
        sodium_memzero(l->bin, msg_len);
    out->text = l->buf;
    out->len = (size_t)(o - l->buf);
    out->unauthenticated = legacy;
    out->has_id = !legacy && r.agent_epoch != 0;
    out->epoch = r.agent_epoch;
    out->seq = r.batch_seq;
    out->index = r.agent_seq;
    return FB_LINE_OK;
}

fb_line_err_t
fb_line_from_record(const uint8_t *value, size_t len, const char *key, size_t key_len,
                    const fb_keydb_t *db, unsigned flags, fb_line_t *out, char *why,
                    size_t whylen)
{
    fb_liner_t *l = fb_liner_new();
    fb_line_err_t err;

    if (l == NULL) {
        snprintf(why, whylen, "out of memory");
        return FB_LINE_UNDECODABLE;
    }
    err = fb_line_build(l, value, len, key, key_len, db, flags, out, why, whylen);
    if (err == FB_LINE_OK) {
        out->text = malloc(out->len + 1);
        if (out->text == NULL) {
            err = FB_LINE_UNDECODABLE;
            snprintf(why, whylen, "out of memory");
        } else {
            memcpy(out->text, l->buf, out->len);
            out->text[out->len] = '\0';
        }
    }
    fb_liner_free(l);
    return err;
}
