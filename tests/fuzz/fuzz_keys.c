/*
 * fuzz_keys.c -- libFuzzer target: the key database loader
 * (common/keys.c, fb_keydb_load) on keys.json text, written into a memory
 * file (mode 0640) that the loader opens by path, as it opens keys.json.
 *
 * Oracles besides the sanitizers: every log line is printable and never
 * holds an encryption key of the input (found by reading the input with
 * jansson here); a database refused logs an error, one that loads logs
 * none (warnings may be); a database that loads is sorted, finds each tenant, has
 * valid and distinct key ids, and keeps as current key text the key that
 * is first in its list.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/keys.h"
#include "fuzz.h"

static int fd;
static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fd = fuzz_memfd("keys.json", 0640, path);
    return 0;
}

/* The input, for key_not_logged. */
static const uint8_t *input;
static size_t input_len;

/* occurrences -- how often s[0..n) is in the input. */
static size_t
occurrences(const char *s, size_t n)
{
    const uint8_t *p = input, *end = input + input_len, *hit;
    size_t count = 0;

    while (n > 0 && (hit = memmem(p, (size_t)(end - p), s, n)) != NULL) {
        count++;
        p = hit + 1;
    }
    return count;
}

/* key_not_logged -- s (one of uses key values), if it could be key
 * material, is not in the log, unless the input holds it elsewhere too
 * (say as a field name, which is shown). */
static void
key_not_logged(const json_t *s, size_t uses)
{
    if (!json_is_string(s) || json_string_length(s) < 16 ||
        occurrences(json_string_value(s), json_string_length(s)) > uses)
        return;
    FUZZ_CHECK(strstr(fuzz_log_text, json_string_value(s)) == NULL,
               "an encryption key in the log:\n%s", fuzz_log_text);
}

/* count_value -- how many key values of root equal s. */
static size_t
count_value(json_t *root, const json_t *s)
{
    const char *name;
    size_t n = 0, i;
    json_t *t, *e;

    json_object_foreach(root, name, t) {
        n += json_equal(json_object_get(t, "EncryptionKey"), (json_t *)s);
        json_array_foreach(json_object_get(t, "EncryptionKeys"), i, e)
            n += json_equal(json_object_get(e, "key"), (json_t *)s);
    }
    return n;
}

/* keys_not_logged -- no EncryptionKey(s) of the input's tenants in the log. */
static void
keys_not_logged(const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, 0, NULL), *t, *e, *k;
    const char *name;
    size_t i;

    input = data;
    input_len = size;
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    json_object_foreach(root, name, t) {
        k = json_object_get(t, "EncryptionKey");
        key_not_logged(k, count_value(root, k));
        json_array_foreach(json_object_get(t, "EncryptionKeys"), i, e) {
            k = json_object_get(e, "key");
            key_not_logged(k, count_value(root, k));
        }
    }
    json_decref(root);
}

/* check_db -- what a loaded database promises. */
static void
check_db(const fb_keydb_t *db)
{
    for (size_t i = 0; i < db->n_tenants; i++) {
        const fb_tenant_t *t = &db->tenants[i];
        size_t len = strlen(t->access_key);
        uint8_t key[FB_ENC_KEY_LEN];

        FUZZ_CHECK(fb_access_key_valid(t->access_key, len, NULL), "invalid access key loaded");
        FUZZ_CHECK(i == 0 || strcmp(db->tenants[i - 1].access_key, t->access_key) < 0,
                   "tenants not sorted");
        FUZZ_CHECK(fb_keydb_find(db, t->access_key, len) == t, "tenant %zu not found", i);
        FUZZ_CHECK(strlen(t->user_id) <= FB_USER_ID_MAX, "UserID too long");
        FUZZ_CHECK(t->tokens_not_before >= 0 && t->tokens_not_before <= FB_KEYDB_TIME_MAX,
                   "tokens_not_before out of range");
        FUZZ_CHECK(t->n_enc_keys <= FB_ENC_KEYS_MAX, "%zu keys", t->n_enc_keys);
        for (size_t k = 0; k < t->n_enc_keys; k++) {
            const char *id = t->enc_keys[k].id;
            FUZZ_CHECK(fb_key_id_valid(id, strlen(id)), "invalid key id loaded");
            FUZZ_CHECK(fb_tenant_enc_key(t, id) == &t->enc_keys[k], "key id %s twice", id);
        }
        if (t->n_enc_keys == 0) {
            FUZZ_CHECK(t->encryption_key_text[0] == '\0', "key text without keys");
        } else {
            FUZZ_CHECK(fb_enc_key_decode(t->encryption_key_text, strlen(t->encryption_key_text),
                                         key, NULL) == 1 &&
                           memcmp(key, t->enc_keys[0].key, FB_ENC_KEY_LEN) == 0,
                       "the current key text is not the first key");
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_keydb_t *db;

    fuzz_log_start(true);
    fuzz_memfd_put(fd, data, size);
    db = fb_keydb_load(path);
    keys_not_logged(data, size);
    if (db != NULL) {
        FUZZ_CHECK(fuzz_log_errors == 0, "a database loaded with errors logged:\n%s",
                   fuzz_log_text);
        check_db(db);
    } else {
        FUZZ_CHECK(fuzz_log_errors > 0, "a database refused without an error logged");
    }
    fb_keydb_free(db);
    return 0;
}
