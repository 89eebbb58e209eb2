/*
 * router_line.c -- fbpipe.v1.Record into a JSON line (router_line.h).
 * The record is unpacked with a capped allocator; the line is built with
 * jansson, which escapes every string; plaintext is wiped after use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "common/cipher.h"
#include "common/log.h"
#include "common/pballoc.h"
#include "fbpipe.pb-c.h"
#include "router/router_line.h"

#define SHOW_MAX 64

int
fb_line_time(int64_t seconds, int32_t nanos, char *out, size_t size)
{
    /* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
    struct tm tm;
    time_t t;

    if (seconds < INT64_C(-62135596800) || seconds > INT64_C(253402300799) || nanos < 0 ||
        nanos > 999999999 || size < 32)
        return -1;
    t = (time_t)seconds;
    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)nanos);
    return 0;
}

/* refuse -- why = before + arg (escaped, when not NULL) + after; err. */
static fb_line_err_t
refuse(fb_line_err_t err, char *why, size_t whylen, const char *before, const char *arg,
       const char *after)
{
    char shown[SHOW_MAX * 4 + 8];

    fb_log_show(shown, sizeof(shown), arg ? arg : "", arg ? strlen(arg) : 0, SHOW_MAX);
    snprintf(why, whylen, "%s%s%s", before, arg ? shown : "", after);
    return err;
}

/* decrypt -- the plaintext of r's message (sodium_free it); NULL on failure. */
static uint8_t *
decrypt(const Fbpipe__V1__Record *r, const fb_tenant_t *t, size_t *out_len)
{
    const fb_enc_key_t *k = fb_tenant_enc_key(t, r->key_id);
    size_t mlen = strlen(r->message), bin_len;
    uint8_t *bin = NULL, *plain = NULL;

    if (k == NULL)
        return NULL;
    if (r->cipher == FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX) {
        plain = sodium_malloc(mlen / 2 + 1);
        if (plain != NULL && fb_cipher_open_aesgcm_hex(k->key, r->message, mlen, plain,
                                                       out_len) == 0)
            return plain;
    } else if (r->cipher == FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305) {
        bin = malloc(mlen / 4 * 3 + 3);
        if (bin != NULL &&
            sodium_base642bin(bin, mlen / 4 * 3 + 3, r->message, mlen, NULL, &bin_len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) == 0 &&
            bin_len >= FB_XCHACHA_NONCE + FB_XCHACHA_TAG) {
            plain = sodium_malloc(bin_len);
            if (plain != NULL && fb_cipher_open_xchacha(k->key, t->access_key, r->key_id, bin,
                                                        bin_len, plain, out_len) == 0) {
                free(bin);
                return plain;
            }
        }
        free(bin);
    }
    if (plain != NULL)
        sodium_free(plain);
    return NULL;
}

/* message_value -- the message as a JSON value: parsed when it is JSON,
 * else a string; NULL when it is not UTF-8. */
static json_t *
message_value(const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);

    return v != NULL ? v : json_stringn(text, len);
}

fb_line_err_t
fb_line_from_record(const uint8_t *value, size_t len, const char *key, size_t key_len,
                    const fb_keydb_t *db, bool decrypt_it, fb_line_t *out, char *why,
                    size_t whylen)
{
    Fbpipe__V1__Record *r;
    const Google__Protobuf__Timestamp *ts;
    const fb_tenant_t *t = NULL;
    json_t *obj = NULL, *msg = NULL;
    fb_line_err_t err = FB_LINE_OK;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    char when[40], *text;
    fb_pballoc_t a;
    const char *reason;

    memset(out, 0, sizeof(out->access_key));
    out->text = NULL;
    if (!fb_access_key_valid(key, key_len, &reason)) {
        char k[SHOW_MAX * 4 + 8];
        fb_log_show(k, sizeof(k), key, key_len, SHOW_MAX);
        snprintf(why, whylen, "access key \"%s\" is not a safe file name: %s", k, reason);
        return FB_LINE_BAD_KEY;
    }
    memcpy(out->access_key, key, key_len);
    out->access_key[key_len] = '\0';
    fb_pballoc_init(&a, 4 * len + 4096);
    r = fbpipe__v1__record__unpack(&a.base, len, value);
    if (r == NULL)
        return refuse(FB_LINE_UNDECODABLE, why, whylen, "not a fbpipe.v1.Record", NULL, "");
    if (strcmp(r->accesskey, out->access_key) != 0) {
        err = refuse(FB_LINE_BAD_KEY, why, whylen, "the record's AccessKey \"", r->accesskey,
                     "\" is not its Kafka key");
        goto out;
    }
    ts = r->timestamp != NULL ? r->timestamp : r->received_at;
    if (ts == NULL || fb_line_time(ts->seconds, ts->nanos, when, sizeof(when)) < 0) {
        err = refuse(FB_LINE_UNDECODABLE, why, whylen, "no time, or one out of range", NULL, "");
        goto out;
    }
    if (decrypt_it && r->cipher != FBPIPE__V1__CIPHER__CIPHER_NONE) {
        t = db != NULL ? fb_keydb_find(db, out->access_key, key_len) : NULL;
        plain = t != NULL ? decrypt(r, t, &plain_len) : NULL;
        if (plain == NULL) {
            err = refuse(FB_LINE_UNDECRYPTABLE, why, whylen, "does not decrypt with key \"",
                         r->key_id, "\" of the key database");
            goto out;
        }
        msg = message_value((const char *)plain, plain_len);
    } else {
        msg = message_value(r->message, strlen(r->message));
    }
    if (msg == NULL) {
        err = refuse(FB_LINE_UNDECODABLE, why, whylen, "message is not UTF-8", NULL, "");
        goto out;
    }
    obj = json_object();
    if (obj == NULL || json_object_set_new(obj, "time", json_string(when)) < 0 ||
        json_object_set_new(obj, "tag", json_string(r->tag)) < 0 ||
        json_object_set_new(obj, "agent_id", json_string(r->agent_id)) < 0 ||
        json_object_set_new(obj, "user_id", json_string(r->userid)) < 0 ||
        json_object_set_new(obj, "access_key", json_string(r->accesskey)) < 0 ||
        json_object_set_new(obj, "message", msg) < 0) {
        msg = NULL; /* taken by json_object_set_new even on failure */
        err = refuse(FB_LINE_UNDECODABLE, why, whylen, "a field is not UTF-8, or out of memory",
                     NULL, "");
        goto out;
    }
    msg = NULL;
    text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (text == NULL) {
        err = refuse(FB_LINE_UNDECODABLE, why, whylen, "cannot encode the line", NULL, "");
        goto out;
    }
    out->len = strlen(text);
    out->text = realloc(text, out->len + 2);
    if (out->text == NULL) {
        free(text);
        err = refuse(FB_LINE_UNDECODABLE, why, whylen, "out of memory", NULL, "");
        goto out;
    }
    out->text[out->len++] = '\n';
    out->text[out->len] = '\0';
out:
    json_decref(msg);
    json_decref(obj);
    if (plain != NULL)
        sodium_free(plain);
    fbpipe__v1__record__free_unpacked(r, &a.base);
    return err;
}
