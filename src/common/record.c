/*
 * record.c -- turn a client's event into the Kafka record fbpipe writes.
 *
 * AccessKey and UserID always come from the tenant the token was verified
 * for; an event naming another access key is refused, never rewritten
 * silently. Nothing here allocates: the record points into the event and
 * the tenant, which must outlive it until it is packed.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/record.h"

/* fb_utf8_valid -- well-formed UTF-8 without NUL, overlongs or surrogates. */
int
fb_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned c;
        size_t n;
        uint32_t cp;

        /* fast path: 8 bytes of ASCII without NUL at a time */
        while ((size_t)(end - p) >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if ((w & UINT64_C(0x8080808080808080)) != 0 ||
                ((w - UINT64_C(0x0101010101010101)) & ~w & UINT64_C(0x8080808080808080)) != 0)
                break; /* a byte >= 0x80 or a NUL: the careful way */
            p += 8;
        }
        if (p >= end)
            break;
        c = *p;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* fb_ts_normalize -- old agents put nanoseconds into seconds. */
void
fb_ts_normalize(int64_t *seconds, int32_t *nanos)
{
    if (*seconds > FB_TS_SECONDS_MAX) {
        int64_t ns = *seconds;
        *seconds = ns / 1000000000;
        *nanos = (int32_t)(ns % 1000000000);
    }
    if (*nanos < 0 || *nanos > 999999999)
        *nanos = 0;
}

/* check_string -- UTF-8 and at most max bytes; names the field on failure. */
static int
check_string(const char *s, size_t max, const char *field, char *why, size_t whylen)
{
    size_t len = strlen(s);

    if (len > max) {
        snprintf(why, whylen, "%s: %zu bytes, at most %zu", field, len, max);
        return -1;
    }
    if (!fb_utf8_valid(s, len)) {
        snprintf(why, whylen, "%s: not valid UTF-8", field);
        return -1;
    }
    return 0;
}

/* fb_record_from_event -- the record for one seed-API event of tenant t. */
fb_record_err_t
fb_record_from_event(const Api__Event *ev, const fb_tenant_t *t, int64_t now_ns, size_t max_bytes,
                     fb_record_t *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (check_string(ev->agent_id, FB_AGENT_ID_MAX, "agent_id", why, whylen) < 0 ||
        check_string(ev->tag, FB_TAG_MAX, "tag", why, whylen) < 0 ||
        check_string(ev->message, max_bytes, "message", why, whylen) < 0 ||
        check_string(ev->userid, FB_USER_ID_MAX, "UserID", why, whylen) < 0 ||
        check_string(ev->accesskey, FB_ACCESS_KEY_MAX, "AccessKey", why, whylen) < 0)
        return FB_RECORD_INVALID;
    if (ev->accesskey[0] != '\0' && strcmp(ev->accesskey, t->access_key) != 0) {
        snprintf(why, whylen, "event for access key \"%s\" on a token for \"%s\"", ev->accesskey,
                 t->access_key);
        return FB_RECORD_WRONG_KEY;
    }

    fbpipe__v1__record__init(&out->rec);
    google__protobuf__timestamp__init(&out->ts);
    google__protobuf__timestamp__init(&out->received);
    if (ev->timestamp != NULL) {
        out->ts.seconds = ev->timestamp->seconds;
        out->ts.nanos = ev->timestamp->nanos;
        fb_ts_normalize(&out->ts.seconds, &out->ts.nanos);
    } else {
        out->ts.seconds = now_ns / 1000000000;
        out->ts.nanos = (int32_t)(now_ns % 1000000000);
    }
    out->received.seconds = now_ns / 1000000000;
    out->received.nanos = (int32_t)(now_ns % 1000000000);
    out->rec.timestamp = &out->ts;
    out->rec.received_at = &out->received;
    out->rec.agent_id = ev->agent_id;
    out->rec.tag = ev->tag;
    out->rec.message = ev->message;
    out->rec.userid = t->user_id;       /* from the key database */
    out->rec.accesskey = t->access_key; /* from the verified token */
    /* the original agent encrypts exactly when ExchangeConfig gave it a key */
    if (t->n_enc_keys > 0) {
        out->rec.cipher = FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX;
        out->rec.key_id = (char *)t->enc_keys[0].id;
    }
    out->size = fbpipe__v1__record__get_packed_size(&out->rec);
    if (out->size + strlen(t->access_key) > max_bytes) {
        snprintf(why, whylen, "record of %zu bytes is larger than kafka.message_max_bytes (%zu)",
                 out->size + strlen(t->access_key), max_bytes);
        return FB_RECORD_TOO_LARGE;
    }
    return FB_RECORD_OK;
}

/* fb_record_scratch_size -- bytes of scratch for fb_record_from_batch. */
size_t
fb_record_scratch_size(const Fbpipe__V1__BatchRecord *r)
{
    return sodium_base64_ENCODED_LEN(r->payload.len, sodium_base64_VARIANT_ORIGINAL) + 1;
}

/* fb_record_from_batch -- see record.h. */
fb_record_err_t
fb_record_from_batch(const Fbpipe__V1__Batch *b, size_t i, const fb_tenant_t *t, int64_t now_ns,
                     size_t max_bytes, char *scratch, fb_record_t *out, char *why, size_t whylen)
{
    const Fbpipe__V1__BatchRecord *r = b->records[i];
    const char *payload = (const char *)r->payload.data;
    size_t len = r->payload.len;

    memset(out, 0, sizeof(*out));
    if (check_string(b->agent_id, FB_AGENT_ID_MAX, "agent_id", why, whylen) < 0 ||
        check_string(b->tag, FB_TAG_MAX, "tag", why, whylen) < 0)
        return FB_RECORD_INVALID;
    if (len > max_bytes) {
        snprintf(why, whylen, "payload of %zu bytes is larger than kafka.message_max_bytes (%zu)",
                 len, max_bytes);
        return FB_RECORD_TOO_LARGE;
    }
    fbpipe__v1__record__init(&out->rec);
    switch (r->enc) {
    case FBPIPE__V1__CIPHER__CIPHER_NONE:
        if (t->n_enc_keys > 0) {
            snprintf(why, whylen, "access key \"%s\" encrypts its events: a plaintext record "
                     "is refused", t->access_key);
            return FB_RECORD_INVALID;
        }
        if (r->key_id[0] != '\0') {
            snprintf(why, whylen, "key_id set on a plaintext record");
            return FB_RECORD_INVALID;
        }
        if (!fb_utf8_valid(payload, len)) {
            snprintf(why, whylen, "payload: not valid UTF-8");
            return FB_RECORD_INVALID;
        }
        memcpy(scratch, payload, len);
        scratch[len] = '\0';
        break;
    case FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305:
        if (t->n_enc_keys == 0) {
            snprintf(why, whylen, "access key \"%s\" has no encryption key", t->access_key);
            return FB_RECORD_INVALID;
        }
        if (fb_tenant_enc_key(t, r->key_id) == NULL) {
            snprintf(why, whylen, "key_id \"%.64s\" is not a key of access key \"%s\"",
                     fb_key_id_valid(r->key_id, strlen(r->key_id)) ? r->key_id : "?",
                     t->access_key);
            return FB_RECORD_INVALID;
        }
        if (len < 24 + 16) {
            snprintf(why, whylen, "encrypted payload of %zu bytes is shorter than nonce and tag",
                     len);
            return FB_RECORD_INVALID;
        }
        sodium_bin2base64(scratch, fb_record_scratch_size(r), r->payload.data, len,
                          sodium_base64_VARIANT_ORIGINAL);
        out->rec.cipher = FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305;
        out->rec.key_id = r->key_id;
        break;
    default:
        snprintf(why, whylen, "cipher %d is not accepted on this API", (int)r->enc);
        return FB_RECORD_INVALID;
    }
    google__protobuf__timestamp__init(&out->ts);
    google__protobuf__timestamp__init(&out->received);
    if (r->time != NULL) {
        out->ts.seconds = r->time->seconds;
        out->ts.nanos = r->time->nanos;
        fb_ts_normalize(&out->ts.seconds, &out->ts.nanos);
    } else {
        out->ts.seconds = now_ns / 1000000000;
        out->ts.nanos = (int32_t)(now_ns % 1000000000);
    }
    out->received.seconds = now_ns / 1000000000;
    out->received.nanos = (int32_t)(now_ns % 1000000000);
    out->rec.timestamp = &out->ts;
    out->rec.received_at = &out->received;
    out->rec.agent_id = b->agent_id;
    out->rec.tag = b->tag;
    out->rec.message = scratch;
    out->rec.userid = t->user_id;
    out->rec.accesskey = t->access_key;
    out->rec.batch_seq = b->seq;
    out->rec.agent_seq = i;
    out->size = fbpipe__v1__record__get_packed_size(&out->rec);
    if (out->size + strlen(t->access_key) > max_bytes) {
        snprintf(why, whylen, "record of %zu bytes is larger than kafka.message_max_bytes (%zu)",
                 out->size + strlen(t->access_key), max_bytes);
        return FB_RECORD_TOO_LARGE;
    }
    return FB_RECORD_OK;
}

/* varint -- one base-128 varint at *p (at most 10 bytes); -1 if cut. */
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

/* fb_batch_peek -- see record.h. */
int
fb_batch_peek(const uint8_t *p, size_t len, uint64_t *seq, size_t *n_records)
{
    const uint8_t *end = p + len;
    uint64_t key, v;

    *seq = 0;
    *n_records = 0;
    while (p < end) {
        if (varint(&p, end, &key) < 0 || key >> 3 == 0)
            return -1;
        switch (key & 7) {
        case 0: /* varint */
            if (varint(&p, end, &v) < 0)
                return -1;
            if (key >> 3 == 1)
                *seq = v;
            break;
        case 1: /* 64-bit */
            if ((size_t)(end - p) < 8)
                return -1;
            p += 8;
            break;
        case 2: /* length-delimited */
            if (varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            p += v;
            if (key >> 3 == 4)
                (*n_records)++;
            break;
        case 5: /* 32-bit */
            if ((size_t)(end - p) < 4)
                return -1;
            p += 4;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* fb_batch_unpack_budget -- generous for real batches, bounded for all. */
size_t
fb_batch_unpack_budget(size_t len, size_t n_records)
{
    /* each BatchRecord: its struct, a Timestamp, a key id, a pointer */
    return 2 * len + n_records * 256 + 16384;
}

/* fb_record_pack -- serialise into dst (r->size bytes). */
size_t
fb_record_pack(const fb_record_t *r, uint8_t *dst)
{
    return fbpipe__v1__record__pack(&r->rec, dst);
}
