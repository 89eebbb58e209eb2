/*
 * test_router_line.c -- Kafka records into the router's JSON lines: the
 * fields and time format, messages kept as JSON or as strings, decryption
 * with the current or a previous key (both ciphers), and every refusal a
 * hostile record deserves (for the dead-letter file); records without a
 * Kafka key (the Go version's api.Event values), refused naming
 * router.accept_legacy_records or read under their own AccessKey and
 * marked unauthenticated.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>

#include "api.pb-c.h"
#include "common/cipher.h"
#include "fbpipe.pb-c.h"
#include "router/router_dedupe.h"
#include "router/router_line.h"

static fb_enc_key_t keys[2] = {{.id = "k2"}, {.id = "k1"}};
static fb_tenant_t tenants[1] = {{.access_key = "acme", .user_id = "u-acme",
                                  .encryption_key_text = "x", .enc_keys = keys,
                                  .n_enc_keys = 2}};
static fb_keydb_t db = {.tenants = tenants, .n_tenants = 1};

static void
init(void)
{
    cr_assert_eq(fb_cipher_init(), 0);
    for (int i = 0; i < 32; i++) {
        keys[0].key[i] = (uint8_t)i;
        keys[1].key[i] = (uint8_t)(100 + i);
    }
}

TestSuite(line, .init = init);

/* record -- a packed Record of acme (caller frees). */
static uint8_t *
record(const char *access_key, const char *message, int cipher, const char *key_id,
       int64_t seconds, size_t *len)
{
    Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    uint8_t *buf;

    ts.seconds = seconds;
    ts.nanos = 42;
    r.timestamp = &ts;
    r.agent_id = "agent-1";
    r.tag = "app.log";
    r.message = (char *)message;
    r.userid = "u-acme";
    r.accesskey = (char *)access_key;
    r.cipher = (Fbpipe__V1__Cipher)cipher;
    r.key_id = (char *)key_id;
    *len = fbpipe__v1__record__get_packed_size(&r);
    buf = malloc(*len);
    fbpipe__v1__record__pack(&r, buf);
    return buf;
}

/* line -- the line of a record under key, or NULL with why. */
static json_t *
line(const uint8_t *v, size_t len, const char *key, int decrypt, fb_line_err_t *err, char *why)
{
    fb_line_t out;
    json_t *j = NULL;

    *err = fb_line_from_record(v, len, key, strlen(key), &db, decrypt, &out, why, 256);
    if (*err == FB_LINE_OK) {
        cr_assert_eq(out.text[out.len - 1], '\n');
        cr_assert_null(memchr(out.text, '\n', out.len - 1), "one line");
        j = json_loadb(out.text, out.len, 0, NULL);
        cr_assert_not_null(j, "valid JSON: %s", out.text);
        free(out.text);
    }
    return j;
}

Test(line, time_is_rfc3339_utc_with_nanoseconds)
{
    char t[40];

    cr_assert_eq(fb_line_time(1764331200, 42, t, sizeof(t)), 0);
    cr_assert_str_eq(t, "2025-11-28T12:00:00.000000042Z");
    cr_assert_eq(fb_line_time(0, 0, t, sizeof(t)), 0);
    cr_assert_str_eq(t, "1970-01-01T00:00:00.000000000Z");
    cr_assert_eq(fb_line_time(INT64_C(253402300800), 0, t, sizeof(t)), -1);
    cr_assert_eq(fb_line_time(INT64_C(-62135596801), 0, t, sizeof(t)), -1);
    cr_assert_eq(fb_line_time(0, 1000000000, t, sizeof(t)), -1);
}

Test(line, json_messages_are_kept_as_json_others_as_strings)
{
    fb_line_err_t err;
    char why[256];
    size_t len;
    uint8_t *v = record("acme", "{\"log\":\"hi\",\"n\":3}", 0, "", 1764331200, &len);
    json_t *j = line(v, len, "acme", 0, &err, why);

    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    cr_assert_str_eq(json_string_value(json_object_get(j, "time")),
                     "2025-11-28T12:00:00.000000042Z");
    cr_assert_str_eq(json_string_value(json_object_get(j, "tag")), "app.log");
    cr_assert_str_eq(json_string_value(json_object_get(j, "agent_id")), "agent-1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "user_id")), "u-acme");
    cr_assert_str_eq(json_string_value(json_object_get(j, "access_key")), "acme");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "message"), "n")), 3);
    json_decref(j);
    free(v);
    v = record("acme", "plain \"text\"\nwith a newline", 0, "", 1764331200, &len);
    j = line(v, len, "acme", 0, &err, why);
    cr_assert_str_eq(json_string_value(json_object_get(j, "message")),
                     "plain \"text\"\nwith a newline");
    json_decref(j);
    free(v);
}

Test(line, a_pretty_printed_message_fits_on_one_line)
{
    fb_line_err_t err;
    char why[256];
    size_t len;
    uint8_t *v = record("acme", "{\n  \"log\": \"caf\xc3\xa9\",\n  \"a\": [1, 2]\n}\n", 0, "",
                        1764331200, &len);
    json_t *j = line(v, len, "acme", 0, &err, why), *m;

    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    m = json_object_get(j, "message");
    cr_assert(json_is_object(m));
    cr_assert_str_eq(json_string_value(json_object_get(m, "log")), "caf\xc3\xa9");
    cr_assert_eq(json_array_size(json_object_get(m, "a")), 2);
    json_decref(j);
    free(v);
}

Test(line, unknown_fields_are_skipped_and_wrong_wire_types_refused)
{
    fb_line_err_t err;
    char why[256];
    size_t len;
    uint8_t *v = record("acme", "{}", 0, "", 1, &len), *w = malloc(len + 8);
    json_t *j;

    /* field 99 (varint 7) appended: a newer writer's field */
    memcpy(w, v, len);
    w[len] = 0x98; w[len + 1] = 0x06; w[len + 2] = 0x07;
    j = line(w, len + 3, "acme", 0, &err, why);
    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    json_decref(j);
    /* field 4 (message) as a varint */
    memcpy(w, v, len);
    w[len] = 0x20; w[len + 1] = 0x01;
    cr_assert_null(line(w, len + 2, "acme", 0, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECODABLE);
    free(w);
    free(v);
}

Test(line, decrypts_both_ciphers_with_current_and_previous_keys)
{
    static const char msg[] = "{\"secret\":1}";
    uint8_t box[sizeof(msg) - 1 + 40];
    char b64[200], hex[2 * (28 + sizeof(msg)) + 1], why[256];
    fb_line_err_t err;
    size_t len;
    uint8_t *v;
    json_t *j;

    /* XChaCha20-Poly1305 (the first version) under the previous key k1 */
    fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA, keys[1].key, "acme", "k1", (const uint8_t *)msg,
                           sizeof(msg) - 1, box);
    sodium_bin2base64(b64, sizeof(b64), box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    v = record("acme", b64, 2, "k1", 1, &len);
    j = line(v, len, "acme", 1, &err, why);
    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "message"), "secret")), 1);
    json_decref(j);
    /* without decrypt: the ciphertext as a string */
    j = line(v, len, "acme", 0, &err, why);
    cr_assert_str_eq(json_string_value(json_object_get(j, "message")), b64);
    json_decref(j);
    free(v);
    /* the second version under the current key k2 */
    fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA_V2, keys[0].key, "acme", "k2", (const uint8_t *)msg,
                           sizeof(msg) - 1, box);
    sodium_bin2base64(b64, sizeof(b64), box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    v = record("acme", b64, 3, "k2", 1, &len);
    j = line(v, len, "acme", 1, &err, why);
    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "message"), "secret")), 1);
    json_decref(j);
    free(v);
    /* the seed format under the current key */
    cr_assert_eq(fb_cipher_seal_aesgcm_hex(keys[0].key, (const uint8_t *)msg, sizeof(msg) - 1,
                                           hex), 0);
    v = record("acme", hex, 1, "k2", 1, &len);
    j = line(v, len, "acme", 1, &err, why);
    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "message"), "secret")), 1);
    json_decref(j);
    free(v);
}

Test(line, refuses_what_cannot_be_decrypted)
{
    static const char msg[] = "{\"secret\":1}";
    uint8_t box[sizeof(msg) - 1 + 40];
    char b64[200], why[256];
    fb_line_err_t err;
    size_t len;
    uint8_t *v;

    fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA, keys[1].key, "acme", "k1", (const uint8_t *)msg,
                           sizeof(msg) - 1, box);
    sodium_bin2base64(b64, sizeof(b64), box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    v = record("acme", b64, 3, "k1", 1, &len); /* relabelled as the second version */
    cr_assert_null(line(v, len, "acme", 1, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE);
    free(v);
    v = record("acme", b64, 2, "k2", 1, &len); /* named the wrong key */
    cr_assert_null(line(v, len, "acme", 1, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE);
    free(v);
    v = record("acme", b64, 2, "k9", 1, &len); /* no such key */
    cr_assert_null(line(v, len, "acme", 1, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE);
    cr_assert(strstr(why, "k9") != NULL, "%s", why);
    free(v);
    b64[10] = b64[10] == 'A' ? 'B' : 'A'; /* tampered */
    v = record("acme", b64, 2, "k1", 1, &len);
    cr_assert_null(line(v, len, "acme", 1, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE);
    free(v);
    v = record("acme", "not base64 !!", 2, "k1", 1, &len);
    cr_assert_null(line(v, len, "acme", 1, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE);
    free(v);
}

/* two tenants whose names and key ids collide when concatenated, with the
 * same key bytes: a record of ("ab", "c") moved in Kafka to "a" under key
 * id "bc" opens under the first version and is refused under the second */
Test(line, v2_record_moved_to_a_colliding_tenant_is_refused)
{
    static const char msg[] = "{\"secret\":1}";
    static fb_enc_key_t k_ab[1] = {{.id = "c"}}, k_a[1] = {{.id = "bc"}};
    static fb_tenant_t two[2] = {
        {.access_key = "a", .user_id = "u-acme", .encryption_key_text = "x", .enc_keys = k_a,
         .n_enc_keys = 1},
        {.access_key = "ab", .user_id = "u-acme", .encryption_key_text = "x", .enc_keys = k_ab,
         .n_enc_keys = 1},
    };
    fb_keydb_t cdb = {.tenants = two, .n_tenants = 2};
    uint8_t box[sizeof(msg) - 1 + 40];
    char b64[200], why[256];
    fb_line_t out;
    size_t len;
    uint8_t *v;

    memcpy(k_ab[0].key, keys[0].key, 32);
    memcpy(k_a[0].key, keys[0].key, 32);
    for (int c = FB_CIPHER_XCHACHA; c <= FB_CIPHER_XCHACHA_V2; c++) {
        fb_cipher_seal_xchacha(c, keys[0].key, "ab", "c", (const uint8_t *)msg, sizeof(msg) - 1,
                               box);
        sodium_bin2base64(b64, sizeof(b64), box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
        v = record("ab", b64, c, "c", 1, &len);
        cr_assert_eq(fb_line_from_record(v, len, "ab", 2, &cdb, 1, &out, why, sizeof(why)),
                     FB_LINE_OK, "%s", why);
        free(out.text);
        free(v);
        v = record("a", b64, c, "bc", 1, &len);
        cr_assert_eq(fb_line_from_record(v, len, "a", 1, &cdb, 1, &out, why, sizeof(why)),
                     c == FB_CIPHER_XCHACHA ? FB_LINE_OK : FB_LINE_UNDECRYPTABLE,
                     "cipher %d: %s", c, why);
        if (c == FB_CIPHER_XCHACHA)
            free(out.text); /* the first version's collision, kept for its old records */
        free(v);
    }
}

/* a cipher beyond 32 bits is not a version of XChaCha20-Poly1305 */
Test(line, a_huge_cipher_value_is_no_cipher)
{
    static const char msg[] = "{\"secret\":1}";
    uint8_t box[sizeof(msg) - 1 + 40], *v, *w;
    char b64[200], why[256];
    fb_line_err_t err;
    size_t len;
    json_t *j;

    fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA, keys[0].key, "acme", "k2", (const uint8_t *)msg,
                           sizeof(msg) - 1, box);
    sodium_bin2base64(b64, sizeof(b64), box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    v = record("acme", b64, 2, "k2", 1, &len);
    j = line(v, len, "acme", 1, &err, why);
    cr_assert_not_null(j, "%s", why);
    json_decref(j);
    /* field 16 (key 0x80 0x01) = 2 becomes 2^32 + 2 */
    w = malloc(len + 8);
    for (size_t i = 0; i + 2 < len; i++) {
        if (v[i] == 0x80 && v[i + 1] == 0x01 && v[i + 2] == 0x02) {
            static const uint8_t big[] = {0x82, 0x80, 0x80, 0x80, 0x10};
            memcpy(w, v, i + 2);
            memcpy(w + i + 2, big, sizeof(big));
            memcpy(w + i + 2 + sizeof(big), v + i + 3, len - i - 3);
            cr_assert_null(line(w, len + 4, "acme", 1, &err, why));
            cr_assert_eq(err, FB_LINE_UNDECRYPTABLE, "%s", why);
            free(w);
            free(v);
            return;
        }
    }
    cr_assert_fail("no field 16 in the record");
}

Test(line, refuses_hostile_records)
{
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0x01};
    char big[4097], why[256];
    fb_line_err_t err;
    size_t len;
    uint8_t *v;

    cr_assert_null(line(garbage, sizeof(garbage), "acme", 0, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECODABLE);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *bad_keys[] = {"../../etc/passwd", "", big, ".dead-letter", "a/b", "a\nb"};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        v = record(bad_keys[i], "{}", 0, "", 1, &len);
        cr_assert_null(line(v, len, bad_keys[i], 0, &err, why), "key %zu", i);
        cr_assert_eq(err, FB_LINE_BAD_KEY, "key %zu: %s", i, why);
        cr_assert_null(strchr(why, '\n'), "why is one line: %s", why);
        free(v);
    }
    /* a record whose AccessKey is not its Kafka key */
    v = record("zeta", "{}", 0, "", 1, &len);
    cr_assert_null(line(v, len, "acme", 0, &err, why));
    cr_assert_eq(err, FB_LINE_BAD_KEY);
    free(v);
    /* a time out of range */
    v = record("acme", "{}", 0, "", INT64_C(999999999999), &len);
    cr_assert_null(line(v, len, "acme", 0, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECODABLE);
    free(v);
    /* a message that is not UTF-8 */
    v = record("acme", "\xff\xfe", 0, "", 1, &len);
    cr_assert_null(line(v, len, "acme", 0, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECODABLE);
    free(v);
}

/* found by fuzz_line (#10): fields a record leaves out, and a Kafka record
 * without a value (a tombstone), were read through null pointers */
Test(line, absent_fields_and_an_absent_value)
{
    Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    uint8_t buf[64];
    fb_line_t out;
    char why[256];
    size_t len;
    json_t *j;
    fb_line_err_t err;

    ts.seconds = 1764331200;
    r.timestamp = &ts;
    r.accesskey = "acme";
    len = fbpipe__v1__record__pack(&r, buf);
    j = line(buf, len, "acme", 1, &err, why);
    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    cr_assert_str_eq(json_string_value(json_object_get(j, "tag")), "");
    cr_assert_str_eq(json_string_value(json_object_get(j, "message")), "");
    json_decref(j);
    /* claims a cipher but has no key id and no message */
    r.cipher = FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305;
    len = fbpipe__v1__record__pack(&r, buf);
    cr_assert_null(line(buf, len, "acme", 1, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE, "%s", why);
    /* no value: an empty Record, whose AccessKey "" is not the key */
    err = fb_line_from_record(NULL, 0, "acme", 4, &db, true, &out, why, sizeof(why));
    cr_assert_eq(err, FB_LINE_BAD_KEY, "%s", why);
}

/* ---- records without a Kafka key: the Go version's api.Event values ---- */

/* the seed's key form: 32 characters, used as the key's bytes */
#define KEY32 "0123456789abcdef0123456789ABCDEF"
#define OFF_REASON                                                                               \
    "a record without a key, as the Go version writes: set router.accept_legacy_records = yes " \
    "to read them"

static fb_enc_key_t legacy_keys[2] = {{.id = "new"}, {.id = "default"}};
static fb_tenant_t legacy_tenants[4] = {
    {.access_key = "acme", .user_id = "u-acme", .encryption_key_text = ""},
    {.access_key = "crypt", .user_id = "u-crypt", .encryption_key_text = "x",
     .enc_keys = legacy_keys, .n_enc_keys = 2},
    {.access_key = "gone", .user_id = "u-gone", .encryption_key_text = "", .disabled = true},
    {.access_key = "once", .user_id = "u-once", .encryption_key_text = "x",
     .enc_keys = legacy_keys + 1, .n_enc_keys = 1},
};
static fb_keydb_t legacy_db = {.tenants = legacy_tenants, .n_tenants = 4};

/* event -- a packed api.Event (caller frees): what the Go version writes. */
static uint8_t *
event(const char *access_key, const char *user_id, const char *message, int64_t seconds,
      size_t *len)
{
    Api__Event ev = API__EVENT__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    uint8_t *buf;

    ts.seconds = seconds;
    ts.nanos = 7;
    ev.timestamp = &ts;
    ev.agent_id = "go-agent";
    ev.tag = "app.log";
    ev.message = (char *)message;
    ev.userid = (char *)user_id;
    ev.accesskey = (char *)access_key;
    *len = api__event__get_packed_size(&ev);
    buf = malloc(*len);
    api__event__pack(&ev, buf);
    return buf;
}

/* legacy -- the line of a value without a Kafka key, or NULL with why. */
static json_t *
legacy(const uint8_t *v, size_t len, unsigned flags, fb_line_err_t *err, char *why)
{
    fb_line_t out;
    json_t *j = NULL;

    *err = fb_line_from_record(v, len, NULL, 0, &legacy_db, flags, &out, why, 256);
    if (*err == FB_LINE_OK) {
        cr_assert(out.unauthenticated);
        cr_assert_eq(out.text[out.len - 1], '\n');
        cr_assert_null(memchr(out.text, '\n', out.len - 1), "one line");
        j = json_loadb(out.text, out.len, 0, NULL);
        cr_assert_not_null(j, "valid JSON: %s", out.text);
        cr_assert_str_eq(json_string_value(json_object_get(j, "access_key")), out.access_key);
        free(out.text);
    }
    return j;
}

TestSuite(legacy, .init = init);

Test(legacy, off_the_reason_names_the_setting)
{
    fb_line_err_t err;
    char why[256];
    size_t len;
    uint8_t *v = event("acme", "u-acme", "{\"a\":1}", 1764331200, &len);

    cr_assert_null(legacy(v, len, 0, &err, why));
    cr_assert_eq(err, FB_LINE_LEGACY_OFF);
    cr_assert_str_eq(why, OFF_REASON);
    cr_assert_null(legacy(v, len, FB_LINE_F_DECRYPT, &err, why));
    cr_assert_eq(err, FB_LINE_LEGACY_OFF);
    cr_assert_str_eq(why, OFF_REASON);
    /* off, even a value that is no record at all says what to set */
    cr_assert_null(legacy((const uint8_t *)"\xff", 1, 0, &err, why));
    cr_assert_str_eq(why, OFF_REASON);
    free(v);
}

Test(legacy, on_a_line_for_the_tenant_it_names_marked_unauthenticated)
{
    fb_line_err_t err;
    char why[256];
    size_t len;
    /* the Go version's agents put nanoseconds into seconds */
    uint8_t *v = event("acme", "u-claimed", "{\"log\":\"hi\"}", INT64_C(1764331200) * 1000000000 + 5,
                       &len);
    json_t *j = legacy(v, len, FB_LINE_F_LEGACY, &err, why), *m;

    cr_assert_eq(err, FB_LINE_OK, "%s", why);
    cr_assert_eq(json_object_size(j), 7);
    cr_assert_str_eq(json_string_value(json_object_get(j, "access_key")), "acme");
    /* the record's, not the key database's u-acme: the line says what was asserted */
    cr_assert_str_eq(json_string_value(json_object_get(j, "user_id")), "u-claimed");
    cr_assert(json_is_true(json_object_get(j, "unauthenticated")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "agent_id")), "go-agent");
    cr_assert_str_eq(json_string_value(json_object_get(j, "time")),
                     "2025-11-28T12:00:00.000000005Z");
    m = json_object_get(j, "message");
    cr_assert_str_eq(json_string_value(json_object_get(m, "log")), "hi");
    json_decref(j);
    free(v);
}

Test(legacy, keyed_records_are_unaffected_by_the_setting)
{
    fb_line_t a, b;
    char why[256];
    size_t len;
    uint8_t *v = record("acme", "{\"x\":1}", 0, "", 1764331200, &len);

    cr_assert_eq(fb_line_from_record(v, len, "acme", 4, &db, 0, &a, why, sizeof(why)), FB_LINE_OK);
    cr_assert_eq(fb_line_from_record(v, len, "acme", 4, &db, FB_LINE_F_LEGACY, &b, why,
                                     sizeof(why)), FB_LINE_OK);
    cr_assert_not(a.unauthenticated);
    cr_assert_not(b.unauthenticated);
    cr_assert_eq(a.len, b.len);
    cr_assert_eq(memcmp(a.text, b.text, a.len), 0);
    cr_assert_null(strstr(a.text, "unauthenticated"));
    free(a.text);
    free(b.text);
    /* an empty Kafka key is a key, and no safe name: not a record without one */
    cr_assert_eq(fb_line_from_record(v, len, "", 0, &db, FB_LINE_F_LEGACY, &a, why, sizeof(why)),
                 FB_LINE_BAD_KEY);
    cr_assert(strstr(why, "is not a safe file name: is empty") != NULL, "%s", why);
    free(v);
}

Test(legacy, a_key_that_names_no_tenant_or_no_safe_file_is_a_dead_letter)
{
    static const struct {
        const char *key, *why;
    } cases[] = {
        {"zeta", "a record without a key: its AccessKey \"zeta\" is no tenant of the key "
                 "database"},
        {"gone", "a record without a key: its AccessKey \"gone\" is disabled in the key "
                 "database"},
        {"", "a record without a key: its AccessKey \"\" is not a safe file name: is empty"},
        {"../acme", "a record without a key: its AccessKey \"../acme\" is not a safe file name: "
                    "starts with a dot"},
        {"a/b", "a record without a key: its AccessKey \"a/b\" is not a safe file name: has a "
                "character outside [A-Za-z0-9._-]"},
        {"a\nb", "a record without a key: its AccessKey \"a\\x0ab\" is not a safe file name: "
                 "has a character outside [A-Za-z0-9._-]"},
    };
    fb_line_err_t err;
    char why[256];
    size_t len;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *v = event(cases[i].key, "u", "{}", 1, &len);
        cr_assert_null(legacy(v, len, FB_LINE_F_LEGACY, &err, why), "case %zu", i);
        cr_assert_eq(err, FB_LINE_BAD_KEY, "case %zu: %s", i, why);
        cr_assert_str_eq(why, cases[i].why);
        free(v);
    }
    /* not an api.Event */
    cr_assert_null(legacy((const uint8_t *)"\x0a\xff\xff\x01", 4, FB_LINE_F_LEGACY, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECODABLE);
    cr_assert_str_eq(why, "a record without a key that is not an api.Event");
    /* fbpipe's own Record without its key, with fields of its own (a
     * cipher): neither kind, never guessed (without them, it is an
     * api.Event byte for byte) */
    uint8_t *v = record("acme", "{}", 2, "k1", 1, &len);
    cr_assert_null(legacy(v, len, FB_LINE_F_LEGACY, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECODABLE);
    cr_assert(strstr(why, "fields of fbpipe.v1.Record's own (16-20)") != NULL, "%s", why);
    free(v);
}

Test(legacy, an_encrypted_message_decrypts_as_the_seed_format_does)
{
    static const char msg[] = "{\"secret\":\"s3\"}";
    uint8_t key[FB_ENC_KEY_LEN];
    char hex[2 * (28 + sizeof(msg)) + 1], why[256];
    fb_line_err_t err;
    size_t len;
    uint8_t *v;
    json_t *j;

    /* the tenant's EncryptionKey as the Go version's agents use it: 32
     * characters, their bytes the key; rotated since ("default" second) */
    cr_assert_eq(fb_enc_key_decode(KEY32, 32, key, NULL), 1);
    cr_assert_eq(memcmp(key, KEY32, 32), 0);
    memcpy(legacy_keys[1].key, key, sizeof(key));
    memset(legacy_keys[0].key, 0x5a, sizeof(key));
    cr_assert_eq(fb_cipher_seal_aesgcm_hex(key, (const uint8_t *)msg, sizeof(msg) - 1, hex), 0);
    for (const char *t = "crypt"; t != NULL; t = strcmp(t, "crypt") == 0 ? "once" : NULL) {
        v = event(t, "u", hex, 1764331200, &len);
        j = legacy(v, len, FB_LINE_F_LEGACY | FB_LINE_F_DECRYPT, &err, why);
        cr_assert_eq(err, FB_LINE_OK, "%s: %s", t, why);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "message"),
                                                           "secret")), "s3");
        json_decref(j);
        /* without router.decrypt: the hex text as it came */
        j = legacy(v, len, FB_LINE_F_LEGACY, &err, why);
        cr_assert_str_eq(json_string_value(json_object_get(j, "message")), hex);
        json_decref(j);
        free(v);
    }
    /* tampered, or under a key the tenant does not have */
    hex[70] = hex[70] == '0' ? '1' : '0';
    v = event("crypt", "u", hex, 1764331200, &len);
    cr_assert_null(legacy(v, len, FB_LINE_F_LEGACY | FB_LINE_F_DECRYPT, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE);
    cr_assert_str_eq(why, "a record without a key: its message does not decrypt in the seed "
                          "format (AES-256-GCM, hex) with a key of \"crypt\" in the key database");
    free(v);
    /* plain JSON from a tenant with a key: the agents encrypt, so it does not decrypt */
    v = event("crypt", "u", "{\"a\":1}", 1764331200, &len);
    cr_assert_null(legacy(v, len, FB_LINE_F_LEGACY | FB_LINE_F_DECRYPT, &err, why));
    cr_assert_eq(err, FB_LINE_UNDECRYPTABLE);
    free(v);
}

/* id_line -- the line of a Record with agent_epoch, batch_seq, agent_seq,
 * built with flags (caller frees out->text). */
static fb_line_err_t
id_line(uint64_t epoch, uint64_t seq, uint64_t index, const char *message, unsigned flags,
        fb_line_t *out)
{
    Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char why[256];
    uint8_t buf[512];
    size_t len;

    ts.seconds = 1764331200;
    r.timestamp = &ts;
    r.agent_id = "agent-1";
    r.tag = "app.log";
    r.message = (char *)message;
    r.userid = "u-acme";
    r.accesskey = "acme";
    r.agent_epoch = epoch;
    r.batch_seq = seq;
    r.agent_seq = index;
    len = fbpipe__v1__record__pack(&r, buf);
    return fb_line_from_record(buf, len, "acme", 4, &db, flags, out, why, sizeof(why));
}

Test(line, with_dedupe_a_record_with_an_epoch_names_itself_right_after_time)
{
    fb_line_t out;
    fb_dedupe_id_t id;
    json_t *j;

    cr_assert_eq(id_line(0x0123456789abcdefULL, 77, 3, "{\"n\":1}", FB_LINE_F_ID, &out),
                 FB_LINE_OK);
    cr_assert(out.has_id);
    cr_assert_eq(out.epoch, 0x0123456789abcdefULL);
    cr_assert_eq(out.seq, 77);
    cr_assert_eq(out.index, 3);
    j = json_loadb(out.text, out.len, 0, NULL);
    cr_assert_not_null(j, "valid JSON: %s", out.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "fbpipe_id")),
                     "0123456789abcdef-77-3");
    cr_assert_str_eq(json_string_value(json_object_get(j, "tag")), "app.log");
    json_decref(j);
    /* and the dedupe sets read it back from the line alone */
    cr_assert(fb_dedupe_line_id(out.text, out.len, &id));
    cr_assert_eq(id.epoch, 0x0123456789abcdefULL);
    cr_assert_eq(id.seq, 77);
    cr_assert_eq(id.index, 3);
    free(out.text);
    /* without the flag, the line is as before: no field, but the record's
     * identity is still known to the caller */
    cr_assert_eq(id_line(0x0123456789abcdefULL, 77, 3, "x", 0, &out), FB_LINE_OK);
    cr_assert_null(strstr(out.text, "fbpipe_id"));
    cr_assert(out.has_id);
    cr_assert_not(fb_dedupe_line_id(out.text, out.len, &id));
    free(out.text);
    /* epoch 0: an agent from before epochs, no identity */
    cr_assert_eq(id_line(0, 77, 3, "x", FB_LINE_F_ID, &out), FB_LINE_OK);
    cr_assert_null(strstr(out.text, "fbpipe_id"));
    cr_assert_not(out.has_id);
    free(out.text);
}

Test(line, a_message_cannot_forge_an_identity)
{
    fb_line_t out;
    fb_dedupe_id_t id;

    /* the message's own "fbpipe_id" is inside "message", never where the
     * identity is read */
    cr_assert_eq(id_line(0, 1, 0, "{\"fbpipe_id\":\"0123456789abcdef-1-0\"}", FB_LINE_F_ID,
                         &out), FB_LINE_OK);
    cr_assert_not(fb_dedupe_line_id(out.text, out.len, &id));
    free(out.text);
    const char *hostile[] = {
        "{\"time\":\"2025-11-28T12:00:00.000000000Z\",\"fbpipe_id\":\"0000000000000000-1-0\"}\n",
        "{\"time\":\"2025-11-28T12:00:00.000000000Z\",\"fbpipe_id\":\"0123456789ABCDEF-1-0\"}\n",
        "{\"time\":\"2025-11-28T12:00:00.000000000Z\",\"fbpipe_id\":\"0123456789abcdef-01-0\"}\n",
        "{\"time\":\"2025-11-28T12:00:00.000000000Z\",\"fbpipe_id\":\"0123456789abcdef-1-\"}\n",
        "{\"time\":\"2025-11-28T12:00:00.000000000Z\",\"fbpipe_id\":\"0123456789abcdef-1-"
        "18446744073709551616\"}\n",
        "{\"time\":\"2025-11-28T12:00:00.000000000Z\",\"fbpipe_id\":\"0123456789abcdef-1-2",
        "{\"time\":\"2025-11-28T12:00:00.000000000Z\",\"tag\":\"0123456789abcdef-1-2\"}\n",
        "{\"time\":\"2025",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
        cr_assert_not(fb_dedupe_line_id(hostile[i], strlen(hostile[i]), &id), "%s", hostile[i]);
}
