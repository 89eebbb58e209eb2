/*
 * fuzz_line.c -- libFuzzer target: the router's decode, decrypt and render
 * of one Kafka record (router/router_line.c: fb_line_build with one liner
 * kept across runs, as a router thread keeps it, or fb_line_from_record),
 * with a key database (loaded by fb_keydb_load) that holds a tenant with
 * two XChaCha20 keys, one with a seed-format AES key and one without.
 *
 * Input: one byte of flags (bit 0: decrypt, bit 1: fb_line_from_record,
 * bit 2: records without a key accepted, bit 3: no Kafka key, the n bytes
 * of key skipped all the same), one byte n, n bytes of Kafka key, then the
 * record value.
 *
 * Oracles besides the sanitizers: a refusal's reason is printable; a line
 * is one line of JSON (jansson reads it; only numbers beyond what jansson
 * holds and NUL in a key, which jansson cannot hold, are let through) with
 * the fields the router promises, named after the Kafka key; a record
 * without one only when accepted, named after a tenant of the database
 * and marked "unauthenticated": true.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cipher.h"
#include "common/keys.h"
#include "fuzz.h"
#include "router/router_line.h"

static fb_keydb_t *db;
static fb_liner_t *liner;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (fb_cipher_init() < 0)
        abort();
    fuzz_log_start(true);
    db = fuzz_keydb(FUZZ_KEYS_JSON);
    liner = fb_liner_new();
    if (liner == NULL)
        abort();
    return 0;
}

/* check_line -- one JSON object on one line, named after the key (a
 * record without one: after a tenant, and marked). */
static void
check_line(const fb_line_t *out, const char *key, size_t key_len)
{
    bool legacy = key == NULL;
    static const char *const fields[] = {"time",    "tag",        "agent_id",
                                         "user_id", "access_key", "message"};
    json_error_t jerr;
    json_t *j, *v;

    FUZZ_CHECK(out->len >= 2 && out->text[out->len - 1] == '\n', "not a line");
    FUZZ_CHECK(memchr(out->text, '\n', out->len - 1) == NULL, "more than one line");
    FUZZ_CHECK(out->unauthenticated == legacy, "marked %d", (int)out->unauthenticated);
    if (legacy) {
        key = out->access_key;
        key_len = strlen(key);
        FUZZ_CHECK(fb_keydb_find(db, key, key_len) != NULL, "file %s names no tenant", key);
    }
    FUZZ_CHECK(strlen(out->access_key) == key_len && memcmp(out->access_key, key, key_len) == 0,
               "file named %s", out->access_key);
    j = json_loadb(out->text, out->len, JSON_ALLOW_NUL, &jerr);
    if (j == NULL) {
        FUZZ_CHECK(json_error_code(&jerr) == json_error_numeric_overflow ||
                       json_error_code(&jerr) == json_error_null_byte_in_key,
                   "not JSON (%s): %.*s", jerr.text, (int)out->len, out->text);
        return;
    }
    FUZZ_CHECK(json_is_object(j) && json_object_size(j) == (legacy ? 7u : 6u),
               "not the router's object");
    FUZZ_CHECK(!legacy || json_is_true(json_object_get(j, "unauthenticated")), "not marked");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        FUZZ_CHECK(json_object_get(j, fields[i]) != NULL, "no %s", fields[i]);
    v = json_object_get(j, "access_key");
    FUZZ_CHECK(json_is_string(v) && json_string_length(v) == key_len &&
                   memcmp(json_string_value(v), key, key_len) == 0,
               "access_key is not the Kafka key");
    json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_line_err_t err;
    fb_line_t out;
    const char *key;
    size_t key_len;
    bool own;
    unsigned flags;
    char why[256];

    if (size < 2 || (size_t)data[1] > size - 2)
        return 0;
    fuzz_log_start(true);
    flags = (data[0] & 1 ? FB_LINE_F_DECRYPT : 0u) | (data[0] & 4 ? FB_LINE_F_LEGACY : 0u);
    own = data[0] & 2;
    key_len = data[1];
    key = data[0] & 8 ? NULL : (const char *)data + 2;
    data += 2 + key_len;
    size -= 2 + key_len;
    why[0] = '\0';
    if (own)
        err = fb_line_from_record(data, size, key, key_len, db, flags, &out, why, sizeof(why));
    else
        err = fb_line_build(liner, data, size, key, key_len, db, flags, &out, why, sizeof(why));
    if (err != FB_LINE_OK) {
        FUZZ_CHECK(err == FB_LINE_UNDECODABLE || err == FB_LINE_BAD_KEY ||
                       err == FB_LINE_UNDECRYPTABLE ||
                       (err == FB_LINE_LEGACY_OFF && key == NULL && !(flags & FB_LINE_F_LEGACY)),
                   "refusal kind %d", (int)err);
        FUZZ_CHECK(why[0] != '\0' && fuzz_printable(why, strlen(why)), "refusal: %s", why);
        return 0;
    }
    check_line(&out, key, key_len);
    if (own)
        free(out.text);
    return 0;
}
