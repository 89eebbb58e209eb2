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

#include "common/batch.h"
#include "common/log.h"
#include "common/record.h"

/* fb_utf8_valid -- well-formed UTF-8 without NUL, overlongs or surrogates. */
int
fb_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end;

    if (len == 0) /* s may be NULL then: even adding 0 to it is undefined */
        return 1;
    end = p + len;
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

/* fb_ts_in_range -- a normalised time that can be stored and written:
 * year 1 to year 9999, nanos within the second. The ingesters refuse
 * what the router could not write. */
bool
fb_ts_in_range(int64_t seconds, int32_t nanos)
{
    return seconds >= FB_TS_FIRST && seconds <= FB_TS_LAST && nanos >= 0 && nanos <= 999999999;
}

/* fb_ts_check -- 0, or -1 with why naming the time refused. */
int
fb_ts_check(int64_t seconds, int32_t nanos, char *why, size_t whylen)
{
    if (fb_ts_in_range(seconds, nanos))
        return 0;
    snprintf(why, whylen, "timestamp: %lld s is out of range (0001-01-01T00:00:00Z to "
             "9999-12-31T23:59:59Z)", (long long)seconds);
    return -1;
}

/* fb_event_check_nul -- the string fields of a packed api.Event, read on
 * the wire: protobuf-c hands them over NUL-terminated, so a NUL byte inside
 * one would silently cut the text after it. 0, or -1 with why naming the
 * field (-1 too for what is not protobuf: the caller has unpacked it). */
int
fb_event_check_nul(const uint8_t *msg, size_t len, char *why, size_t whylen)
{
    static const char *const names[] = {NULL, NULL, "agent_id", "tag", "message", "UserID",
                                        "AccessKey"};
    const uint8_t *p = msg, *end = msg + len;

    while (p < end) {
        uint32_t num;
        unsigned wt;
        uint64_t v;
        fb_view_t bytes = {0};

        if (fb_pb_field(&p, end, &num, &wt, &v, &bytes) < 0) {
            snprintf(why, whylen, "malformed api.Event");
            return -1;
        }
        if (wt == 2 && num >= 2 && num <= 6 && memchr(bytes.p, 0, bytes.len) != NULL) {
            snprintf(why, whylen, "%s: contains a NUL byte", names[num]);
            return -1;
        }
    }
    return 0;
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
        /* the client's bytes: escaped before they reach a log line or a status */
        char shown[FB_ACCESS_KEY_MAX * 4 + 8];
        fb_log_show(shown, sizeof(shown), ev->accesskey, strlen(ev->accesskey),
                    FB_ACCESS_KEY_MAX);
        snprintf(why, whylen, "event for access key \"%s\" on a token for \"%s\"", shown,
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
        if (fb_ts_check(out->ts.seconds, out->ts.nanos, why, whylen) < 0)
            return FB_RECORD_INVALID;
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
        snprintf(why, whylen, "record of %zu bytes is larger than the largest record Kafka takes (%zu)",
                 out->size + strlen(t->access_key), max_bytes);
        return FB_RECORD_TOO_LARGE;
    }
    return FB_RECORD_OK;
}

/* fb_record_pack -- serialise into dst (r->size bytes). */
size_t
fb_record_pack(const fb_record_t *r, uint8_t *dst)
{
    return fbpipe__v1__record__pack(&r->rec, dst);
}
