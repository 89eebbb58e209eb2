/*
 * test_keys.c -- the key database: access keys, encryption keys, rotation,
 * lifecycle fields, targets, permissions and hostile files.
 */
#include <criterion/criterion.h>

#include "common/keys.h"
#include "helpers.h"

#define RAW32 "abcdefghijklmnopqrstuvwxyz012345"
#define HEX64 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void
setup(void)
{
    test_mkdir();
    test_log_capture();
}

static void
teardown(void)
{
    fb_log_set_sink(NULL, NULL);
    test_rmdir();
}

TestSuite(keys, .init = setup, .fini = teardown);

static fb_keydb_t *
load(const char *json)
{
    return fb_keydb_load(test_write("keys.json", json, 0640));
}

/* refused -- json must be refused with a message containing want. */
static void
refused(const char *json, const char *want)
{
    fb_keydb_t *db;

    test_log_buf[0] = '\0';
    db = load(json);
    cr_assert_null(db, "accepted: %s", json);
    cr_assert(strstr(test_log_buf, want) != NULL, "wanted \"%s\" in:\n%s", want, test_log_buf);
}

Test(keys, access_key_rules)
{
    static const char *good[] = {"a", "A-b_c.d", "demo-key", "0", "x.log"};
    static const char *bad[] = {"", ".hidden", "../x", "a/b", "a b", "\xc3\xa9", "a\\b", "a:b",
                                "-", /* fine: '-' is allowed */};
    char k128[129], k129[130];
    const char *why;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert(fb_access_key_valid(good[i], strlen(good[i]), &why), "%s", good[i]);
    for (size_t i = 0; i < 8; i++)
        cr_assert_not(fb_access_key_valid(bad[i], strlen(bad[i]), &why), "\"%s\"", bad[i]);
    cr_assert(fb_access_key_valid("-", 1, &why));
    memset(k128, 'k', 128);
    k128[128] = '\0';
    memset(k129, 'k', 129);
    k129[129] = '\0';
    cr_assert(fb_access_key_valid(k128, 128, &why));
    cr_assert_not(fb_access_key_valid(k129, 129, &why));
    cr_assert_str_eq(why, "access key longer than 128 bytes");
    cr_assert_not(fb_access_key_valid("a\0b", 3, &why), "embedded NUL");
    cr_assert_not(fb_access_key_valid(".dead-letter", 12, &why));
    cr_assert_str_eq(why, "access key starts with a dot");
}

Test(keys, encryption_key_forms)
{
    uint8_t out[32];
    const char *why;

    cr_assert_eq(fb_enc_key_decode("", 0, out, &why), 0);
    cr_assert_eq(fb_enc_key_decode(RAW32, 32, out, &why), 1);
    cr_assert_eq(memcmp(out, RAW32, 32), 0, "32 characters are used as raw bytes");
    cr_assert_eq(fb_enc_key_decode(HEX64, 64, out, &why), 1);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(out[i], i, "hex byte %d", i);
    cr_assert_eq(fb_enc_key_decode(RAW32, 31, out, &why), -1);
    cr_assert_eq(fb_enc_key_decode(RAW32 "x", 33, out, &why), -1);
    cr_assert_eq(fb_enc_key_decode(HEX64, 63, out, &why), -1);
    cr_assert_eq(fb_enc_key_decode("zz" HEX64, 64, out, &why), -1);
    cr_assert_str_eq(why, "64 characters that are not all hex digits");
}

Test(keys, full_database)
{
    fb_keydb_t *db = load(
        "{\"zeta\": {\"AccessKey\": \"zeta\", \"EncryptionKey\": \"" RAW32 "\", \"UserID\": \"u-z\","
        " \"targets\": [{\"file\": \"zeta.log\"}]},"
        " \"acme\": {\"EncryptionKeys\": [{\"id\": \"k2\", \"key\": \"" HEX64 "\"},"
        "                                  {\"id\": \"k1\", \"key\": \"" RAW32 "\"}],"
        "            \"UserID\": \"u-a\", \"allow_unbound_tokens\": true, \"disabled\": false,"
        "            \"tokens_not_before\": \"2026-01-01T00:00:00Z\"},"
        " \"plain\": {\"EncryptionKey\": \"\", \"disabled\": true, \"tokens_not_before\": 1700000000}}");
    const fb_tenant_t *t;

    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(db->n_tenants, 3);
    cr_assert_str_eq(db->tenants[0].access_key, "acme", "sorted");

    t = fb_keydb_find(db, "zeta", 4);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->user_id, "u-z");
    cr_assert_eq(t->n_enc_keys, 1);
    cr_assert_str_eq(t->enc_keys[0].id, "default");
    cr_assert_str_eq(t->encryption_key_text, RAW32);
    cr_assert_eq(t->n_file_targets, 1);

    t = fb_keydb_find(db, "acme", 4);
    cr_assert_eq(t->n_enc_keys, 2);
    cr_assert_str_eq(t->enc_keys[0].id, "k2", "newest first is current");
    cr_assert_str_eq(t->encryption_key_text, HEX64);
    cr_assert_eq(t->enc_keys[0].key[31], 31);
    cr_assert_eq(memcmp(fb_tenant_enc_key(t, "k1")->key, RAW32, 32), 0, "previous key kept");
    cr_assert_null(fb_tenant_enc_key(t, "k0"));
    cr_assert(t->allow_unbound_tokens);
    cr_assert_eq(t->tokens_not_before, 1767225600);

    t = fb_keydb_find(db, "plain", 5);
    cr_assert_eq(t->n_enc_keys, 0);
    cr_assert_str_eq(t->encryption_key_text, "");
    cr_assert(t->disabled);
    cr_assert_eq(t->tokens_not_before, 1700000000);
    cr_assert_str_eq(t->user_id, "");

    cr_assert_null(fb_keydb_find(db, "acm", 3));
    cr_assert_null(fb_keydb_find(db, "acmee", 5));
    cr_assert_null(fb_keydb_find(db, "acme\0x", 6), "embedded NUL is another key");
    cr_assert_not_null(fb_keydb_find(db, "acmeXYZ", 4), "length, not NUL, ends the key");
    cr_assert_eq(test_log_count, 0);
    fb_keydb_free(db);
}

Test(keys, seed_shape_and_empty)
{
    fb_keydb_t *db = load("{\"k\": {\"AccessKey\": \"k\", \"EncryptionKey\": \"\", "
                          "\"UserID\": \"u\", \"targets\": []}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    fb_keydb_free(db);
    db = load("{}");
    cr_assert_not_null(db);
    cr_assert_eq(db->n_tenants, 0);
    cr_assert_null(fb_keydb_find(db, "x", 1));
    fb_keydb_free(db);
}

Test(keys, refusals_name_key_and_field)
{
    refused("{\"../etc/passwd\": {}}", "key \"../etc/passwd\": access key starts with a dot");
    refused("{\"a/../../etc\": {}}",
            "key \"a/../../etc\": access key has a character outside [A-Za-z0-9._-]");
    refused("{\".dead-letter\": {}}", "access key starts with a dot");
    refused("{\"a\": {\"EncryptionKey\": \"short\"}}",
            "key \"a\": EncryptionKey: must be empty, 32 characters or 64 hex digits");
    refused("{\"a\": {\"EncryptionKey\": 5}}", "EncryptionKey: must be a string");
    refused("{\"a\": {\"UserID\": 5}}", "key \"a\": UserID: must be a string");
    refused("{\"a\": {\"disabled\": \"yes\"}}", "key \"a\": disabled: must be true or false");
    refused("{\"a\": {\"allow_unbound_tokens\": 1}}", "allow_unbound_tokens: must be true or false");
    refused("{\"a\": {\"targets\": {\"file\": \"a.log\"}}}", "targets: must be an array");
    refused("{\"a\": {\"targets\": [{\"file\": \"b.log\"}]}}", "targets[0].file must be \"a.log\"");
    refused("{\"a\": {\"targets\": [{\"file\": \"../a.log\"}]}}", "targets[0].file must be");
    refused("{\"a\": {\"targets\": [{\"s3\": \"bucket\"}]}}",
            "targets[0]: target type \"s3\" is not supported by this version");
    refused("{\"a\": {\"disable\": true}}", "key \"a\": unknown field \"disable\"");
    refused("{\"a\": {\"AccessKey\": \"b\"}}", "AccessKey: must equal the member name \"a\"");
    refused("{\"a\": []}", "key \"a\": must be an object");
    refused("{\"a\": {\"tokens_not_before\": \"yesterday\"}}", "tokens_not_before: must be");
    refused("{\"a\": {\"tokens_not_before\": -1}}", "tokens_not_before: must be");
    refused("{\"a\": {\"tokens_not_before\": \"2026-01-01T00:00:00+02:00\"}}", "tokens_not_before");
}

Test(keys, rotation_rules)
{
    refused("{\"a\": {\"EncryptionKey\": \"" RAW32 "\", \"EncryptionKeys\": "
            "[{\"id\": \"k2\", \"key\": \"" HEX64 "\"}, {\"id\": \"k1\", \"key\": \"" RAW32 "\"}]}}",
            "EncryptionKey must be the newest entry of EncryptionKeys");
    refused("{\"a\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"" HEX64 "\"}, "
            "{\"id\": \"k\", \"key\": \"" RAW32 "\"}]}}",
            "EncryptionKeys[1].id: \"k\" is used twice");
    refused("{\"a\": {\"EncryptionKeys\": [{\"id\": \"bad/id\", \"key\": \"" HEX64 "\"}]}}",
            "EncryptionKeys[0].id: must be 1-64 characters");
    refused("{\"a\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"\"}]}}",
            "EncryptionKeys[0].key: must not be empty");
    refused("{\"a\": {\"EncryptionKeys\": []}}", "EncryptionKeys: must be an array of 1 to 64");
    refused("{\"a\": {\"EncryptionKeys\": [{\"id\": \"k\"}]}}",
            "EncryptionKeys[0]: must be {\"id\": string, \"key\": string}");

    /* the same key in both places is fine */
    fb_keydb_t *db = load("{\"a\": {\"EncryptionKey\": \"" HEX64 "\", \"EncryptionKeys\": "
                          "[{\"id\": \"k2\", \"key\": \"" HEX64 "\"}]}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_str_eq(db->tenants[0].enc_keys[0].id, "k2");
    fb_keydb_free(db);
}

Test(keys, reports_every_problem)
{
    refused("{\"a/b\": {}, \"c\": {\"UserID\": 1, \"disabled\": 0}}", "key \"a/b\"");
    cr_assert_eq(test_log_count, 3, "%s", test_log_buf);
}

Test(keys, file_level_refusals)
{
    refused("{\"a\": {}, \"a\": {}}", "duplicate object key");
    refused("{\"a\": {", "line 1, column");
    refused("[1, 2]", "must be a JSON object of access keys");
    refused("", "line 1");

    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load(test_write("keys.json", "{}", 0644)));
    cr_assert(strstr(test_log_buf, "is accessible by others (mode 0644)"), "%s", test_log_buf);
    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load(test_write("keys.json", "{}", 0604)));
    fb_keydb_t *db = fb_keydb_load(test_write("keys.json", "{}", 0640));
    cr_assert_not_null(db, "group access is allowed");
    fb_keydb_free(db);

    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load("/nonexistent/keys.json"));
    cr_assert(strstr(test_log_buf, "open(/nonexistent/keys.json) failed"), "%s", test_log_buf);
    cr_assert_null(fb_keydb_load(test_dir));
}

Test(keys, hostile_files)
{
    char *big = malloc(8192 + 64);
    char *deep = malloc(200000);
    size_t n = 0;

    /* a 4 KB access key */
    strcpy(big, "{\"");
    memset(big + 2, 'k', 4096);
    strcpy(big + 2 + 4096, "\": {}}");
    refused(big, "access key longer than 128 bytes");

    /* deep nesting: jansson's depth limit refuses it, no stack overflow */
    for (int i = 0; i < 50000; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    refused(deep, "line 1");

    /* a huge UserID */
    n = (size_t)snprintf(deep, 200000, "{\"a\": {\"UserID\": \"");
    memset(deep + n, 'u', 100000);
    strcpy(deep + n + 100000, "\"}}");
    refused(deep, "UserID: must be a string of at most 256 bytes");
    /* a NUL inside a JSON string: jansson refuses it while parsing */
    refused("{\"a\": {\"UserID\": \"x\\u0000y\"}}", "line 1, column 27");
    free(big);
    free(deep);
}
