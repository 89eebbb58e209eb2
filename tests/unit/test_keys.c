/*
 * test_keys.c -- the key database: access keys, encryption keys and their
 * rotation, lifecycle fields, targets, file checks and hostile files.
 *
 * Every refusal is checked for its precise message and for naming the file,
 * the access key and the field; no test may leave key material in a log.
 */
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <criterion/criterion.h>

#include "common/keys.h"
#include "helpers.h"

#define RAW32 "abcdefghijklmnopqrstuvwxyz012345"
#define HEX64 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX64B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define HEX64B_UPPER "FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100"
/* the bytes of RAW32, written as hex */
#define RAW32_HEX "6162636465666768696a6b6c6d6e6f707172737475767778797a303132333435"

static fb_keydb_t *load(const char *json);
static void refused(const char *json, const char *want);
static void no_secret_logged(const char *secret);

TestSuite(keys, .init = test_setup, .fini = test_teardown);

/* load -- write json to keys.json (mode 0600) and load it, log cleared first. */
static fb_keydb_t *
load(const char *json)
{
    test_log_buf[0] = '\0';
    test_log_count = 0;
    return fb_keydb_load(test_write("keys.json", json, 0600));
}

/* refused -- json is refused, the log holds want, and every line names the file. */
static void
refused(const char *json, const char *want)
{
    fb_keydb_t *db = load(json);
    char prefix[128];
    const char *line, *next;

    cr_assert_null(db, "accepted: %.200s", json);
    cr_assert_geq(test_log_count, 1);
    cr_assert_not_null(strstr(test_log_buf, want), "wanted \"%s\" in:\n%s", want, test_log_buf);
    snprintf(prefix, sizeof(prefix), "%s/keys.json: ", test_dir);
    for (line = test_log_buf; *line != '\0'; line = next) {
        next = strchr(line, '\n');
        next = next != NULL ? next + 1 : line + strlen(line);
        cr_assert_eq(strncmp(line, prefix, strlen(prefix)), 0, "line without the file: %s", line);
    }
}

/* no_secret_logged -- the log never shows key material. */
static void
no_secret_logged(const char *secret)
{
    cr_assert_null(strstr(test_log_buf, secret), "key material logged:\n%s", test_log_buf);
}

Test(keys, access_key_table)
{
    static const struct {
        const char *s;
        size_t len;
        const char *why; /* NULL: valid */
    } cases[] = {
        {"a", 1, NULL},
        {"A-b_c.d", 7, NULL},
        {"demo-key", 8, NULL},
        {"x.log", 5, NULL},
        {"-", 1, NULL},
        {"", 0, "is empty"},
        {".hidden", 7, "starts with a dot"},
        {"..", 2, "starts with a dot"},
        {"../x", 4, "starts with a dot"},
        {"a/b", 3, "has a character outside [A-Za-z0-9._-]"},
        {"a b", 3, "has a character outside [A-Za-z0-9._-]"},
        {"a\\b", 3, "has a character outside [A-Za-z0-9._-]"},
        {"a:b", 3, "has a character outside [A-Za-z0-9._-]"},
        {"a\nb", 3, "has a character outside [A-Za-z0-9._-]"},
        {"\xc3\xa9", 2, "has a character outside [A-Za-z0-9._-]"},
        {"a\0b", 3, "has a character outside [A-Za-z0-9._-]"},
    };
    char k[FB_ACCESS_KEY_MAX + 2];
    const char *why;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        int ok = fb_access_key_valid(cases[i].s, cases[i].len, &why);
        if (cases[i].why == NULL) {
            cr_assert_eq(ok, 1, "case %zu \"%s\" refused: %s", i, cases[i].s, why);
        } else {
            cr_assert_eq(ok, 0, "case %zu \"%s\" accepted", i, cases[i].s);
            cr_assert_str_eq(why, cases[i].why, "case %zu", i);
        }
    }
    memset(k, 'k', sizeof(k));
    cr_assert_eq(fb_access_key_valid(k, 128, &why), 1, "128 bytes is the limit");
    cr_assert_eq(fb_access_key_valid(k, 129, &why), 0);
    cr_assert_str_eq(why, "is longer than 128 bytes");
    /* the length, not a NUL, ends the key: the router passes Kafka keys */
    cr_assert_eq(fb_access_key_valid("acme/../x", 4, &why), 1);
    cr_assert_eq(fb_access_key_valid("a", 1, NULL), 1, "why may be NULL");
    cr_assert_eq(fb_access_key_valid(".", 1, NULL), 0);
}

Test(keys, key_id_rules)
{
    char id[FB_KEY_ID_MAX + 1];

    memset(id, 'i', sizeof(id));
    cr_assert_eq(fb_key_id_valid("k1", 2), 1);
    cr_assert_eq(fb_key_id_valid("2026-01.a_b", 11), 1);
    cr_assert_eq(fb_key_id_valid(id, 64), 1);
    cr_assert_eq(fb_key_id_valid(id, 65), 0);
    cr_assert_eq(fb_key_id_valid("", 0), 0);
    cr_assert_eq(fb_key_id_valid("a/b", 3), 0);
    cr_assert_eq(fb_key_id_valid("a\0b", 3), 0);
}

Test(keys, encryption_key_forms)
{
    uint8_t out[32];
    char hex[65];
    const char *why = NULL;

    cr_assert_eq(fb_enc_key_decode("", 0, out, &why), 0, "empty: no encryption");

    cr_assert_eq(fb_enc_key_decode(RAW32, 32, out, &why), 1);
    cr_assert_eq(memcmp(out, RAW32, 32), 0, "32 characters are used as the raw bytes");

    cr_assert_eq(fb_enc_key_decode(HEX64, 64, out, &why), 1);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(out[i], i, "hex byte %d is %u", i, out[i]);
    cr_assert_eq(fb_enc_key_decode(HEX64B, 64, out, &why), 1);
    cr_assert_eq(out[0], 0xff);
    cr_assert_eq(out[1], 0xee);
    cr_assert_eq(out[15], 0x00);
    cr_assert_eq(fb_enc_key_decode("FFEEDDCCBBAA99887766554433221100"
                                   "FFEEDDCCBBAA99887766554433221100",
                                   64, out, &why),
                 1, "upper-case hex");
    cr_assert_eq(out[0], 0xff);

    memset(out, 0x5a, sizeof(out));
    cr_assert_eq(fb_enc_key_decode(RAW32, 31, out, &why), -1);
    cr_assert_str_eq(why, "must be empty, 32 characters or 64 hex digits");
    cr_assert_eq(fb_enc_key_decode(RAW32 "x", 33, out, &why), -1);
    cr_assert_eq(fb_enc_key_decode(HEX64, 63, out, &why), -1);
    cr_assert_str_eq(why, "must be empty, 32 characters or 64 hex digits");
    cr_assert_eq(fb_enc_key_decode(HEX64 "0", 65, out, &why), -1);
    cr_assert_eq(fb_enc_key_decode(RAW32 RAW32, 64, out, &why), -1, "64 characters, not hex");
    cr_assert_str_eq(why, "has 64 characters that are not all hex digits");
    cr_assert_eq(fb_enc_key_decode("0g" HEX64, 64, out, &why), -1);
    cr_assert_eq(fb_enc_key_decode(" 0" HEX64, 64, out, &why), -1, "no leading space");
    memcpy(hex, HEX64, sizeof(hex));
    hex[63] = ':';
    cr_assert_eq(fb_enc_key_decode(hex, 64, out, &why), -1, "last digit not hex");
    for (size_t i = 0; i < sizeof(out); i++)
        cr_assert_eq(out[i], 0x5a, "out touched by a refused key");
    cr_assert_eq(fb_enc_key_decode("short", 5, out, NULL), -1, "why may be NULL");
}

Test(keys, full_database)
{
    fb_keydb_t *db = load(
        "{\"zeta\": {\"AccessKey\": \"zeta\", \"EncryptionKey\": \"" RAW32 "\","
        "            \"UserID\": \"u-z\","
        "            \"targets\": [{\"file\": \"zeta.log\"}]},"
        " \"acme\": {\"AccessKey\": \"acme\", \"EncryptionKey\": \"" HEX64 "\","
        "            \"UserID\": \"\xc3\xa9t\xc3\xa9\", \"targets\": [{\"file\": \"acme.log\"}],"
        "            \"EncryptionKeys\": [{\"id\": \"k2\", \"key\": \"" HEX64 "\"},"
        "                                 {\"id\": \"k1\", \"key\": \"" RAW32 "\"}],"
        "            \"unbound_tokens_sha256\": [\"" HEX64 "\", \"" HEX64B_UPPER "\"],"
        "            \"disabled\": false,"
        "            \"tokens_not_before\": 1767225600},"
        " \"plain\": {\"EncryptionKey\": \"\", \"disabled\": true, \"unbound_tokens_sha256\": [],"
        "             \"tokens_not_before\": \"2026-01-01T00:00:00Z\"}}");
    const fb_tenant_t *t;

    cr_assert_not_null(db, "%s", test_log_buf);
    /* acme: a hex key and unbound tokens, the one warning */
    cr_assert_eq(test_log_count, 1, "%s", test_log_buf);
    cr_assert_not_null(strstr(test_log_buf, "key \"acme\": EncryptionKey is 64 hex digits"),
                       "%s", test_log_buf);
    cr_assert_eq(db->n_tenants, 3);
    cr_assert_str_eq(db->tenants[0].access_key, "acme", "sorted");
    cr_assert_str_eq(db->tenants[1].access_key, "plain");
    cr_assert_str_eq(db->tenants[2].access_key, "zeta");
    cr_assert_not_null(strstr(db->path, "keys.json"));

    t = fb_keydb_find(db, "acme", 4);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->access_key, "acme");
    cr_assert_str_eq(t->user_id, "\xc3\xa9t\xc3\xa9", "UTF-8 kept");
    cr_assert_eq(t->n_enc_keys, 2);
    cr_assert_str_eq(t->enc_keys[0].id, "k2", "newest first is current");
    cr_assert_eq(t->enc_keys[0].key[0], 0);
    cr_assert_eq(t->enc_keys[0].key[31], 31);
    cr_assert_str_eq(t->enc_keys[1].id, "k1");
    cr_assert_eq(memcmp(t->enc_keys[1].key, RAW32, 32), 0);
    cr_assert_str_eq(t->encryption_key_text, HEX64, "the seed API returns it verbatim");
    cr_assert_eq(t->n_unbound_tokens, 2);
    cr_assert_eq(t->unbound_tokens[0][1], 0x01);
    cr_assert_eq(t->unbound_tokens[1][0], 0xff, "upper-case hex read too");
    cr_assert(fb_tenant_lists_unbound(t, t->unbound_tokens[1]));
    cr_assert_not(t->disabled);
    cr_assert_eq(t->tokens_not_before, 1767225600);
    cr_assert_eq(t->n_file_targets, 1);

    t = fb_keydb_find(db, "zeta", 4);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->user_id, "u-z");
    cr_assert_eq(t->n_enc_keys, 1, "a lone EncryptionKey is one key");
    cr_assert_str_eq(t->enc_keys[0].id, "default");
    cr_assert_eq(memcmp(t->enc_keys[0].key, RAW32, 32), 0);
    cr_assert_str_eq(t->encryption_key_text, RAW32);
    cr_assert_eq(t->n_unbound_tokens, 0, "default: no unbound token");
    cr_assert_not(fb_tenant_lists_unbound(t, (const uint8_t *)RAW32));
    cr_assert_not(t->disabled, "default false");
    cr_assert_eq(t->tokens_not_before, 0, "default unset");
    cr_assert_eq(t->n_file_targets, 1);

    t = fb_keydb_find(db, "plain", 5);
    cr_assert_not_null(t);
    cr_assert_eq(t->n_enc_keys, 0, "empty EncryptionKey: no encryption");
    cr_assert_null(t->enc_keys);
    cr_assert_str_eq(t->encryption_key_text, "");
    cr_assert_str_eq(t->user_id, "", "absent UserID is empty");
    cr_assert(t->disabled);
    cr_assert_eq(t->tokens_not_before, 1767225600, "RFC 3339 and unix seconds agree");
    cr_assert_eq(t->n_file_targets, 0);
    cr_assert_null(fb_tenant_enc_key(t, "default"));
    fb_keydb_free(db);
}

Test(keys, seed_shape)
{
    fb_keydb_t *db;
    const fb_tenant_t *t;

    /* etc/keys.json as shipped, and the original shape with a key */
    db = load("{\n  \"demo-key\": {\n    \"AccessKey\": \"demo-key\",\n"
              "    \"EncryptionKey\": \"\",\n    \"UserID\": \"demo-user\",\n"
              "    \"targets\": [ { \"file\": \"demo-key.log\" } ]\n"
              "  },\n  \"t2\": {\"AccessKey\": \"t2\", \"EncryptionKey\": \"" RAW32 "\","
              " \"UserID\": \"u2\", \"targets\": [{\"file\": \"t2.log\"}]}\n}\n");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(db->n_tenants, 2);
    t = fb_keydb_find(db, "demo-key", 8);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->user_id, "demo-user");
    cr_assert_eq(t->n_enc_keys, 0);
    cr_assert_eq(t->n_file_targets, 1);
    t = fb_keydb_find(db, "t2", 2);
    cr_assert_eq(t->n_enc_keys, 1);
    cr_assert_str_eq(t->encryption_key_text, RAW32);
    fb_keydb_free(db);

    /* no optional field at all; no target; an empty database */
    db = load("{\"bare\": {}, \"none\": {\"targets\": []}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    t = fb_keydb_find(db, "bare", 4);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->user_id, "");
    cr_assert_str_eq(t->encryption_key_text, "");
    cr_assert_eq(t->n_enc_keys, 0);
    cr_assert_eq(t->n_file_targets, 0);
    fb_keydb_free(db);
    db = load("{}");
    cr_assert_not_null(db);
    cr_assert_eq(db->n_tenants, 0);
    cr_assert_null(fb_keydb_find(db, "x", 1));
    fb_keydb_free(db);
}

Test(keys, rotation_lookup)
{
    fb_keydb_t *db;
    const fb_tenant_t *t;
    const fb_enc_key_t *k;

    /* EncryptionKey absent: the newest entry is current */
    db = load("{\"a\": {\"EncryptionKeys\": [{\"id\": \"2026-06\", \"key\": \"" HEX64B "\"},"
              " {\"id\": \"2026-01\", \"key\": \"" HEX64 "\"}, {\"id\": \"old\", \"key\": \"" RAW32
              "\"}]},"
              " \"b\": {\"EncryptionKey\": \"\","
              "        \"EncryptionKeys\": [{\"id\": \"only\", \"key\": \""
              RAW32 "\"}]},"
              " \"c\": {\"EncryptionKey\": \"" RAW32 "\", \"EncryptionKeys\": [{\"id\": \"x\","
              " \"key\": \"" RAW32_HEX "\"}]}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    t = fb_keydb_find(db, "a", 1);
    cr_assert_eq(t->n_enc_keys, 3);
    cr_assert_str_eq(t->encryption_key_text, HEX64B);
    k = fb_tenant_enc_key(t, "2026-01");
    cr_assert_not_null(k, "a previous key still decrypts");
    cr_assert_str_eq(k->id, "2026-01");
    cr_assert_eq(k->key[5], 5);
    k = fb_tenant_enc_key(t, "old");
    cr_assert_not_null(k);
    cr_assert_eq(memcmp(k->key, RAW32, 32), 0);
    cr_assert_eq(fb_tenant_enc_key(t, "2026-06"), &t->enc_keys[0]);
    cr_assert_eq(fb_tenant_enc_key(t, "2026-06")->key[0], 0xff);
    cr_assert_null(fb_tenant_enc_key(t, "2026-12"));
    cr_assert_null(fb_tenant_enc_key(t, "default"), "no default id with EncryptionKeys");
    cr_assert_null(fb_tenant_enc_key(t, ""));
    cr_assert_null(fb_tenant_enc_key(t, NULL));

    t = fb_keydb_find(db, "b", 1);
    cr_assert_eq(t->n_enc_keys, 1, "empty EncryptionKey with EncryptionKeys");
    cr_assert_str_eq(t->encryption_key_text, RAW32);

    /* the same bytes written as 32 characters and as hex are the same key;
     * the seed API gets EncryptionKey as written */
    t = fb_keydb_find(db, "c", 1);
    cr_assert_eq(t->n_enc_keys, 1);
    cr_assert_str_eq(t->enc_keys[0].id, "x");
    cr_assert_str_eq(t->encryption_key_text, RAW32);
    fb_keydb_free(db);
}

Test(keys, rotation_mismatch)
{
    refused("{\"acme\": {\"EncryptionKey\": \"" RAW32 "\", \"EncryptionKeys\": "
            "[{\"id\": \"k2\", \"key\": \"" HEX64 "\"},"
            " {\"id\": \"k1\", \"key\": \"" RAW32 "\"}]}}",
            "key \"acme\": EncryptionKey must be the newest entry of EncryptionKeys");
    cr_assert_eq(test_log_count, 1, "%s", test_log_buf);
    no_secret_logged(RAW32);
    no_secret_logged(HEX64);
}

Test(keys, encryption_keys_entries)
{
    char *json = malloc(65 * 120 + 64);
    size_t n;

    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"" HEX64 "\"}, "
            "{\"id\": \"j\", \"key\": \"" HEX64B "\"}, {\"id\": \"k\", \"key\": \"" RAW32 "\"}]}}",
            "key \"acme\": EncryptionKeys[2].id: \"k\" is used twice (EncryptionKeys[0])");
    cr_assert_eq(test_log_count, 1, "%s", test_log_buf);
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"" HEX64 "\"}, "
            "{\"id\": \"k\", \"key\": \"" HEX64B "\"}, {\"id\": \"k\", \"key\": \"" RAW32 "\"}]}}",
            "EncryptionKeys[1].id: \"k\" is used twice (EncryptionKeys[0])");
    cr_assert_eq(test_log_count, 2, "each duplicate reported once: %s", test_log_buf);
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"bad/id\", \"key\": \"" HEX64 "\"}]}}",
            "key \"acme\": EncryptionKeys[0].id: \"bad/id\" must be 1-64 characters of "
            "[A-Za-z0-9._-]");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"\", \"key\": \"" HEX64 "\"}]}}",
            "EncryptionKeys[0].id: \"\" must be 1-64 characters");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": 7, \"key\": \"" HEX64 "\"}]}}",
            "key \"acme\": EncryptionKeys[0].id: must be a string, not a number");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"key\": \"" HEX64 "\"}]}}",
            "key \"acme\": EncryptionKeys[0].id: is missing");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\"}]}}",
            "key \"acme\": EncryptionKeys[0].key: is missing");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"\"}]}}",
            "key \"acme\": EncryptionKeys[0].key: must not be empty");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"" HEX64 "\"},"
            " {\"id\": \"j\", \"key\": \"tooshort\"}]}}",
            "key \"acme\": EncryptionKeys[1].key: must be 32 characters or 64 hex digits");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"" RAW32 RAW32 "\"}]}}",
            "EncryptionKeys[0].key: has 64 characters that are not all hex digits");
    no_secret_logged(RAW32);
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\": \"" HEX64 "\","
            " \"note\": \"x\"}]}}",
            "key \"acme\": EncryptionKeys[0]: unknown field \"note\"");
    refused("{\"acme\": {\"EncryptionKeys\": [\"" HEX64 "\"]}}",
            "key \"acme\": EncryptionKeys[0]: must be an object");
    refused("{\"acme\": {\"EncryptionKeys\": []}}",
            "key \"acme\": EncryptionKeys: must have 1 to 64 entries, not 0");
    refused("{\"acme\": {\"EncryptionKeys\": {\"id\": \"k\", \"key\": \"" HEX64 "\"}}}",
            "key \"acme\": EncryptionKeys: must be an array");

    /* 64 entries are fine, 65 are not */
    n = (size_t)sprintf(json, "{\"acme\": {\"EncryptionKeys\": [");
    for (int i = 0; i < 65; i++)
        n += (size_t)sprintf(json + n, "%s{\"id\": \"k%d\", \"key\": \"" HEX64 "\"}",
                             i ? ", " : "", i);
    strcpy(json + n, "]}}");
    refused(json, "key \"acme\": EncryptionKeys: must have 1 to 64 entries, not 65");
    *strrchr(json, '{') = '\0';
    strcpy(strrchr(json, ',') , "]}}");
    fb_keydb_t *db = load(json);
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(db->tenants[0].n_enc_keys, 64);
    cr_assert_not_null(fb_tenant_enc_key(&db->tenants[0], "k63"));
    fb_keydb_free(db);
    free(json);
}

Test(keys, wrong_types)
{
    refused("{\"acme\": {\"UserID\": 5}}", "key \"acme\": UserID: must be a string, not a number");
    refused("{\"acme\": {\"UserID\": null}}", "key \"acme\": UserID: must be a string, not null");
    refused("{\"acme\": {\"disabled\": \"yes\"}}",
            "key \"acme\": disabled: must be true or false, not a string");
    refused("{\"acme\": {\"disabled\": 0}}", "key \"acme\": disabled: must be true or false");
    refused("{\"acme\": {\"targets\": {\"file\": \"acme.log\"}}}",
            "key \"acme\": targets: must be an array, not an object");
    refused("{\"acme\": {\"targets\": \"acme.log\"}}", "key \"acme\": targets: must be an array");
    refused("{\"acme\": {\"EncryptionKey\": 5}}",
            "key \"acme\": EncryptionKey: must be a string, not a number");
    refused("{\"acme\": {\"AccessKey\": true}}", "key \"acme\": AccessKey: must be a string");
    refused("{\"acme\": []}", "key \"acme\": must be an object, not an array");
    refused("{\"acme\": \"secret\"}", "key \"acme\": must be an object, not a string");
}

Test(keys, unbound_tokens_name_each_token)
{
    fb_keydb_t *db;
    const fb_tenant_t *t;
    uint8_t other[32] = {0};

    /* the boolean that let any unbound token act for the key is refused,
     * saying what to write instead */
    refused("{\"acme\": {\"allow_unbound_tokens\": true}}",
            "key \"acme\": allow_unbound_tokens is no longer read: it let every token without "
            "the key claim act for this key. List the fingerprint of each such token this key "
            "accepts instead, \"unbound_tokens_sha256\": [\"<64 hex digits>\", ...] (fbpiped "
            "token --fingerprint - prints one), and remove allow_unbound_tokens");
    refused("{\"acme\": {\"allow_unbound_tokens\": true, \"unbound_tokens_sha256\": [\"" HEX64
            "\"]}}", "allow_unbound_tokens is no longer read");
    refused("{\"acme\": {\"allow_unbound_tokens\": 1}}", "allow_unbound_tokens is no longer read");
    /* false widened nothing: accepted, with a warning to remove it */
    db = load("{\"acme\": {\"allow_unbound_tokens\": false}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(db->tenants[0].n_unbound_tokens, 0);
    cr_assert_not_null(strstr(test_log_buf, "key \"acme\": allow_unbound_tokens is no longer "
                                            "read (false is what no unbound_tokens_sha256 means): "
                                            "remove it"), "%s", test_log_buf);
    fb_keydb_free(db);

    db = load("{\"acme\": {\"unbound_tokens_sha256\": [\"" HEX64 "\"]}, \"zeta\": {}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    t = fb_keydb_find(db, "acme", 4);
    cr_assert_eq(t->n_unbound_tokens, 1);
    for (int i = 0; i < 32; i++)
        other[i] = (uint8_t)i;
    cr_assert(fb_tenant_lists_unbound(t, other), "HEX64 is bytes 0..31");
    other[31] ^= 1;
    cr_assert_not(fb_tenant_lists_unbound(t, other), "one bit off");
    other[31] ^= 1;
    cr_assert_not(fb_tenant_lists_unbound(fb_keydb_find(db, "zeta", 4), other),
                  "listed by acme, not by zeta");
    cr_assert_not(fb_tenant_lists_unbound(NULL, other));
    fb_keydb_free(db);

    refused("{\"acme\": {\"unbound_tokens_sha256\": \"" HEX64 "\"}}",
            "key \"acme\": unbound_tokens_sha256: must be an array of SHA-256 fingerprints "
            "(64 hex digits each), not a string");
    refused("{\"acme\": {\"unbound_tokens_sha256\": [\"abc\"]}}",
            "key \"acme\": unbound_tokens_sha256[0]: must be 64 hex digits (the SHA-256 of one "
            "token, as fbpiped token --fingerprint prints it), not 3 characters");
    refused("{\"acme\": {\"unbound_tokens_sha256\": [\"" HEX64 "\", \"" RAW32 RAW32 "\"]}}",
            "unbound_tokens_sha256[1]: must be 64 hex digits (the SHA-256 of one token, as "
            "fbpiped token --fingerprint prints it), not 64 characters with a non-hex one");
    refused("{\"acme\": {\"unbound_tokens_sha256\": [\" " HEX64 "\"]}}", "not 65 characters");
    refused("{\"acme\": {\"unbound_tokens_sha256\": [42]}}",
            "unbound_tokens_sha256[0]: must be a string of 64 hex digits, not a number");
    refused("{\"acme\": {\"unbound_tokens_sha256\": [\"" HEX64 "\", \"" HEX64B "\", \""
            HEX64 "\"]}}", "key \"acme\": unbound_tokens_sha256[2]: listed twice");
}

Test(keys, unbound_tokens_at_most_1024)
{
    size_t per = 2 * 32 + 4, size = 64 + 1025 * per;
    char *json = malloc(size), *o = json;
    fb_keydb_t *db;

    cr_assert_not_null(json);
    o += sprintf(o, "{\"acme\": {\"unbound_tokens_sha256\": [");
    for (int i = 0; i < 1025; i++)
        o += sprintf(o, "%s\"%060x%04x\"", i ? "," : "", 0, (unsigned)i);
    strcpy(o, "]}}");
    refused(json, "unbound_tokens_sha256: must have at most 1024 entries, not 1025");
    strcpy(strrchr(json, ','), "]}}");
    db = load(json);
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(db->tenants[0].n_unbound_tokens, 1024);
    fb_keydb_free(db);
    free(json);
}

Test(keys, encryption_key_field)
{
    refused("{\"acme\": {\"EncryptionKey\": \"too-short\"}}",
            "keys.json: key \"acme\": EncryptionKey: "
            "must be empty, 32 characters or 64 hex digits");
    cr_assert_eq(test_log_count, 1);
    no_secret_logged("too-short");
    refused("{\"acme\": {\"EncryptionKey\": \"" RAW32 RAW32 "\"}}",
            "key \"acme\": EncryptionKey: has 64 characters that are not all hex digits");
    no_secret_logged(RAW32);
}

Test(keys, user_id_limits)
{
    char json[600];
    fb_keydb_t *db;

    snprintf(json, sizeof(json), "{\"acme\": {\"UserID\": \"%0256d\"}}", 0);
    db = load(json);
    cr_assert_not_null(db, "256 bytes is the limit: %s", test_log_buf);
    cr_assert_eq(strlen(db->tenants[0].user_id), 256);
    fb_keydb_free(db);
    snprintf(json, sizeof(json), "{\"acme\": {\"UserID\": \"%0257d\"}}", 0);
    refused(json, "key \"acme\": UserID: must be at most 256 bytes, not 257");
    /* jansson refuses NUL and invalid UTF-8 while parsing */
    refused("{\"acme\": {\"UserID\": \"x\\u0000y\"}}", "line 1, column");
    refused("{\"acme\": {\"UserID\": \"\xff\"}}", "line 1, column");
}

Test(keys, targets)
{
    fb_keydb_t *db;

    refused("{\"acme\": {\"targets\": [{\"file\": \"other.log\"}]}}",
            "key \"acme\": targets[0].file must be \"acme.log\"");
    refused("{\"acme\": {\"targets\": [{\"file\": \"../acme.log\"}]}}",
            "targets[0].file must be \"acme.log\"");
    refused("{\"acme\": {\"targets\": [{\"file\": \"acme.log\\u0000x\"}]}}", "line 1");
    refused("{\"acme\": {\"targets\": [{\"file\": \"acme\"}]}}",
            "targets[0].file must be \"acme.log\"");
    refused("{\"acme\": {\"targets\": [{\"file\": 1}]}}", "targets[0].file must be \"acme.log\"");
    refused("{\"acme\": {\"targets\": [{\"file\": \"acme.log\"}, {\"s3\": {\"bucket\": \"b\"}}]}}",
            "key \"acme\": targets[1]: must be a target name such as \"file\", or "
            "{\"file\": \"acme.log\"}, not another object");
    refused("{\"acme\": {\"targets\": [{\"file\": \"acme.log\", \"s3\": \"b\"}]}}",
            "key \"acme\": targets[0]: must be a target name");
    refused("{\"acme\": {\"targets\": [{}]}}", "targets[0]: must be a target name");
    refused("{\"acme\": {\"targets\": [1]}}",
            "targets[0]: must be a target name such as \"file\", or {\"file\": \"acme.log\"}, "
            "not a number");
    refused("{\"acme\": {\"targets\": [\"acme.log\"]}}",
            "targets[0]: \"acme.log\" is not a target name: it has a character outside "
            "[a-z0-9_-]");
    refused("{\"acme\": {\"targets\": [\"Archive\"]}}", "\"Archive\" is not a target name");
    refused("{\"acme\": {\"targets\": [\"\"]}}", "targets[0]: \"\" is not a target name: it is "
                                                  "empty");
    refused("{\"acme\": {\"targets\": [\"a23456789012345678901234567890123\"]}}",
            "is longer than 32 bytes");
    refused("{\"acme\": {\"targets\": [{\"file\": \"acme.log\"}, {\"file\": \"acme.log\"}]}}",
            "key \"acme\": targets[1]: \"file\" is listed twice");
    refused("{\"acme\": {\"targets\": [{\"file\": \"acme.log\"}, \"file\"]}}",
            "key \"acme\": targets[1]: \"file\" is listed twice");
    refused("{\"acme\": {\"targets\": [\"archive\", \"file\", \"archive\"]}}",
            "key \"acme\": targets[2]: \"archive\" is listed twice");
    refused("{\"acme\": {\"targets\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", "
            "\"i\", \"j\", \"k\", \"l\", \"m\", \"n\", \"o\", \"p\", \"q\"]}}",
            "targets: must have at most 16 entries, not 17");

    /* the first version's form still loads, as the name "file" */
    db = load("{\"acme\": {\"targets\": [{\"file\": \"acme.log\"}]}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(db->tenants[0].n_file_targets, 1);
    cr_assert_eq(db->tenants[0].n_targets, 1);
    cr_assert_str_eq(db->tenants[0].targets[0], "file");
    fb_keydb_free(db);

    /* names, in file order; none: the [router] default (n_targets 0) */
    db = load("{\"acme\": {\"targets\": [\"archive\", \"file\", \"search-eu_1\"]},"
              " \"bare\": {}, \"empty\": {\"targets\": []}, \"remote\": {\"targets\": "
              "[\"archive\"]}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    const fb_tenant_t *t = fb_keydb_find(db, "acme", 4);
    cr_assert_eq(t->n_targets, 3);
    cr_assert_str_eq(t->targets[0], "archive");
    cr_assert_str_eq(t->targets[1], "file");
    cr_assert_str_eq(t->targets[2], "search-eu_1");
    cr_assert_eq(t->n_file_targets, 1);
    t = fb_keydb_find(db, "bare", 4);
    cr_assert_eq(t->n_targets, 0);
    cr_assert_null(t->targets);
    cr_assert_eq(t->n_file_targets, 0);
    t = fb_keydb_find(db, "empty", 5);
    cr_assert_eq(t->n_targets, 0);
    t = fb_keydb_find(db, "remote", 6);
    cr_assert_eq(t->n_targets, 1);
    cr_assert_eq(t->n_file_targets, 0, "file is not listed");
    fb_keydb_free(db);
}

Test(keys, target_name_valid)
{
    const char *why = NULL;

    cr_assert(fb_target_name_valid("file", 4, NULL));
    cr_assert(fb_target_name_valid("a-b_0", 5, &why));
    cr_assert_not(fb_target_name_valid("", 0, &why));
    cr_assert_str_eq(why, "is empty");
    cr_assert_not(fb_target_name_valid("A", 1, &why));
    cr_assert_str_eq(why, "has a character outside [a-z0-9_-]");
    cr_assert_not(fb_target_name_valid("a.b", 3, &why));
    cr_assert_not(fb_target_name_valid("a b", 3, &why));
    cr_assert(fb_target_name_valid("abcdefghijklmnopqrstuvwxyz012345", 32, &why));
    cr_assert_not(fb_target_name_valid("abcdefghijklmnopqrstuvwxyz0123456", 33, &why));
    cr_assert_str_eq(why, "is longer than 32 bytes");
}

Test(keys, unknown_field_and_access_key_mismatch)
{
    refused("{\"acme\": {\"disable\": true}}", "key \"acme\": unknown field \"disable\"");
    cr_assert_eq(test_log_count, 1, "%s", test_log_buf);
    refused("{\"acme\": {\"encryptionKey\": \"\"}}", "unknown field \"encryptionKey\"");
    refused("{\"acme\": {\"AccessKey\": \"other\"}}",
            "key \"acme\": AccessKey: \"other\" must equal the member name \"acme\"");
    refused("{\"acme\": {\"AccessKey\": \"acm\"}}", "must equal the member name \"acme\"");
    refused("{\"acme\": {\"AccessKey\": \"acmee\"}}", "must equal the member name \"acme\"");
}

Test(keys, bad_access_keys_in_file)
{
    refused("{\"../etc\": {\"UserID\": \"x\"}}",
            "key \"../etc\": access key starts with a dot");
    refused("{\"a/../../etc\": {}}",
            "key \"a/../../etc\": access key has a character outside [A-Za-z0-9._-]");
    refused("{\"\": {}}", "key \"\": access key is empty");
    refused("{\"a b\": {}}", "key \"a b\": access key has a character outside");
    /* a control character is shown escaped: no forged log lines */
    refused("{\"a\\nfbpiped: fake\": {}}", "key \"a\\x0afbpiped: fake\": access key has");
    cr_assert_eq(test_log_count, 1);
    refused("{\"q\\\"x\": {}}", "key \"q\\x22x\"");
    /* the rest of a tenant with a bad key is still checked */
    refused("{\"a/b\": {\"disabled\": 1}}", "key \"a/b\": disabled: must be true or false");
}

Test(keys, json_level_refusals)
{
    refused("{\"acme\": {}, \"acme\": {}}", "line 1, column");
    cr_assert_not_null(strstr(test_log_buf, "duplicate object key"), "%s", test_log_buf);
    refused("{\"acme\": {\"UserID\": \"a\", \"UserID\": \"b\"}}", "duplicate object key");
    refused("{\"acme\": {", "line 1, column 10");
    refused("{\"acme\":\n  {\"UserID\": \"u\"\n", "line 3, column");
    refused("", "line 1");
    refused("{} {}", "line 1");
    refused("[{\"acme\": {}}]", "must be a JSON object of access keys, not an array");
    refused("\"acme\"", "line 1, column 6: '[' or '{' expected");
    refused("null", "'[' or '{' expected");
}

Test(keys, syntax_error_never_shows_key_material)
{
    /* jansson quotes the token it stopped at when it is short: here, a key */
    refused("{\"acme\": {\"EncryptionKey\" \"s3cr3t-0123\"}}", "line 1, column 39: ':' expected");
    no_secret_logged("s3cr3t");
    refused("{\"acme\": {\"UserID\": \"u\", \"EncryptionKey\": \"s3cr3t-0123\" 1}}",
            "'}' expected");
    no_secret_logged("s3cr3t");
    refused("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k\", \"key\" \"" HEX64 "\"}]}}",
            "line 1, column");
    no_secret_logged("000102030405060708");
    refused("{\"acme\": {}, \"acme\": {}}", "duplicate object key");
}

Test(keys, file_permissions)
{
    static const mode_t bad[] = {0644, 0604, 0602, 0601, 0666, 0607};
    static const mode_t good[] = {0600, 0640, 0660, 0400, 0440};
    char want[64];
    fb_keydb_t *db;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_log_buf[0] = '\0';
        cr_assert_null(fb_keydb_load(test_write("keys.json", "{}", bad[i])), "mode %o", bad[i]);
        snprintf(want, sizeof(want), "is accessible by others (mode %04o); chmod o-rwx",
                 (unsigned)bad[i]);
        cr_assert_not_null(strstr(test_log_buf, want), "%s", test_log_buf);
        cr_assert_not_null(strstr(test_log_buf, "keys.json: is accessible"));
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        test_log_buf[0] = '\0';
        db = fb_keydb_load(test_write("keys.json", "{\"a\": {}}", good[i]));
        cr_assert_not_null(db, "mode %o: %s", good[i], test_log_buf);
        cr_assert_eq(db->n_tenants, 1);
        fb_keydb_free(db);
    }
}

Test(keys, file_kinds)
{
    char path[256], link[256];
    fb_keydb_t *db;
    int fd;

    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load("/nonexistent/keys.json"));
    cr_assert_not_null(strstr(test_log_buf, "open(/nonexistent/keys.json) failed: "
                                            "No such file or directory"),
                       "%s", test_log_buf);

    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load(test_dir));
    cr_assert_not_null(strstr(test_log_buf, ": is not a regular file"), "%s", test_log_buf);

    /* a FIFO must not hang the load */
    snprintf(path, sizeof(path), "%s/fifo", test_dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load(path));
    cr_assert_not_null(strstr(test_log_buf, "fifo: is not a regular file"), "%s", test_log_buf);

    /* more than 64 MiB (sparse) is refused before it is read */
    snprintf(path, sizeof(path), "%s/big.json", test_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)FB_KEYDB_FILE_MAX + 1), 0);
    close(fd);
    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load(path));
    cr_assert_not_null(strstr(test_log_buf, "is 67108865 bytes, more than the 67108864"), "%s",
                       test_log_buf);

    /* a symlink is followed; the checks apply to its target */
    snprintf(link, sizeof(link), "%s/link.json", test_dir);
    cr_assert_eq(symlink(test_write("keys.json", "{\"a\": {}}", 0600), link), 0);
    db = fb_keydb_load(link);
    cr_assert_not_null(db, "%s", test_log_buf);
    fb_keydb_free(db);
    test_write("keys.json", "{\"a\": {}}", 0644);
    test_log_buf[0] = '\0';
    cr_assert_null(fb_keydb_load(link));
    cr_assert_not_null(strstr(test_log_buf, "is accessible by others (mode 0644)"));
}

Test(keys, tokens_not_before)
{
    static const struct {
        const char *json;
        int64_t want;
    } good[] = {
        {"0", 0},
        {"1767225600", 1767225600},
        {"\"2026-01-01T00:00:00Z\"", 1767225600},
        {"\"2026-01-01T00:00:00+00:00\"", 1767225600},
        {"\"1970-01-01T00:00:00Z\"", 0},
        {"\"2024-02-29T23:59:59Z\"", 1709251199},
        {"253402300799", INT64_C(253402300799)},
    };
    static const char *const bad[] = {
        "-1",
        "1.5",
        "1767225600000", /* milliseconds */
        "true",
        "\"yesterday\"",
        "\"1767225600\"",
        "\"2026-01-01T00:00:00+02:00\"",
        "\"2026-01-01T00:00:00-00:00\"",
        "\"2026-01-01 00:00:00Z\"",
        "\"2026-01-01T00:00:00\"",
        "\"2026-01-01T00:00:00.5Z\"",
        "\"2026-1-01T00:00:00Z\"",
        "\" 2026-01-01T00:00:00Z\"",
        "\"2026-01-01T00:00:00Zjunk\"",
        "\"2026-02-30T00:00:00Z\"",
        "\"2025-02-29T00:00:00Z\"",
        "\"2026-13-01T00:00:00Z\"",
        "\"2026-01-01T24:00:00Z\"",
        "\"2026-01-01T00:00:60Z\"",
        "\"1969-12-31T23:59:59Z\"",
        "\"+026-01-01T00:00:00Z\"",
    };
    char json[256];
    fb_keydb_t *db;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(json, sizeof(json), "{\"acme\": {\"tokens_not_before\": %s}}", good[i].json);
        db = load(json);
        cr_assert_not_null(db, "%s: %s", good[i].json, test_log_buf);
        cr_assert_eq(db->tenants[0].tokens_not_before, good[i].want, "%s", good[i].json);
        fb_keydb_free(db);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{\"acme\": {\"tokens_not_before\": %s}}", bad[i]);
        refused(json, "key \"acme\": tokens_not_before: must be unix seconds (0 to "
                      "253402300799) or an RFC 3339 UTC time such as \"2026-01-01T00:00:00Z\"");
    }
}

Test(keys, reports_every_problem)
{
    refused("{\"a/b\": {},"
            " \"c\": {\"UserID\": 1, \"disabled\": 0, \"Foo\": 2,"
            "        \"targets\": [{\"file\": \"x.log\"}, {\"s3\": 1}]},"
            " \"d\": {\"EncryptionKey\": \"short\", \"tokens_not_before\": \"soon\"}}",
            "key \"a/b\": access key has a character outside");
    cr_assert_eq(test_log_count, 8, "%s", test_log_buf);
    cr_assert_not_null(strstr(test_log_buf, "key \"c\": UserID: must be a string"));
    cr_assert_not_null(strstr(test_log_buf, "key \"c\": disabled: must be true or false"));
    cr_assert_not_null(strstr(test_log_buf, "key \"c\": unknown field \"Foo\""));
    cr_assert_not_null(strstr(test_log_buf, "key \"c\": targets[0].file must be \"c.log\""));
    cr_assert_not_null(strstr(test_log_buf, "key \"c\": targets[1]: must be a target name"));
    cr_assert_not_null(strstr(test_log_buf, "key \"d\": EncryptionKey: must be empty"));
    cr_assert_not_null(strstr(test_log_buf, "key \"d\": tokens_not_before: must be"));
}

Test(keys, hostile_files)
{
    size_t size = 2 * 1024 * 1024;
    char *buf = malloc(size);
    const char *nl;
    size_t n;

    /* a 4 KB access key: refused, and shown capped */
    strcpy(buf, "{\"");
    memset(buf + 2, 'k', 4096);
    strcpy(buf + 2 + 4096, "\": {\"disabled\": 2}}");
    refused(buf, "access key is longer than 128 bytes");
    cr_assert_not_null(strstr(test_log_buf, "kkk...\": access key"), "%s", test_log_buf);
    for (const char *line = test_log_buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
        cr_assert_lt(nl - line, 1024, "a line of %td bytes", nl - line);

    /* deep nesting: jansson's depth limit refuses it, no stack overflow */
    memset(buf, '[', 100000);
    buf[100000] = '\0';
    refused(buf, "line 1, column");
    n = (size_t)sprintf(buf, "{\"acme\": {\"UserID\": ");
    memset(buf + n, '[', 100000);
    buf[n + 100000] = '\0';
    refused(buf, "line 1, column");

    /* a huge UserID and a huge EncryptionKey */
    n = (size_t)sprintf(buf, "{\"acme\": {\"UserID\": \"");
    memset(buf + n, 'u', 1024 * 1024);
    strcpy(buf + n + 1024 * 1024, "\"}}");
    refused(buf, "key \"acme\": UserID: must be at most 256 bytes, not 1048576");
    n = (size_t)sprintf(buf, "{\"acme\": {\"EncryptionKey\": \"");
    memset(buf + n, 'e', 1024 * 1024);
    strcpy(buf + n + 1024 * 1024, "\"}}");
    refused(buf, "key \"acme\": EncryptionKey: must be empty, 32 characters or 64 hex digits");
    no_secret_logged("eeee");

    /* many tenants, all found by binary search */
    n = (size_t)sprintf(buf, "{");
    for (int i = 0; i < 2000; i++)
        n += (size_t)sprintf(buf + n, "%s\"t%d\": {}", i ? ", " : "", (i * 7919) % 2000);
    strcpy(buf + n, "}");
    fb_keydb_t *db = load(buf);
    cr_assert_not_null(db, "%.300s", test_log_buf);
    cr_assert_eq(db->n_tenants, 2000);
    for (size_t i = 1; i < db->n_tenants; i++)
        cr_assert_lt(strcmp(db->tenants[i - 1].access_key, db->tenants[i].access_key), 0);
    for (int i = 0; i < 2000; i++) {
        char k[16];
        int len = snprintf(k, sizeof(k), "t%d", i);
        const fb_tenant_t *t = fb_keydb_find(db, k, (size_t)len);
        cr_assert_not_null(t, "%s", k);
        cr_assert_str_eq(t->access_key, k);
    }
    fb_keydb_free(db);
    free(buf);
}

Test(keys, find_by_bytes)
{
    fb_keydb_t *db = load("{\"acme\": {}, \"acme-2\": {}, \"b\": {}}");
    char k[FB_ACCESS_KEY_MAX + 8];

    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_str_eq(fb_keydb_find(db, "acme", 4)->access_key, "acme");
    cr_assert_str_eq(fb_keydb_find(db, "acme-2", 6)->access_key, "acme-2");
    cr_assert_str_eq(fb_keydb_find(db, "acme-2", 4)->access_key, "acme",
                     "the length, not a NUL, ends the key");
    cr_assert_null(fb_keydb_find(db, "acm", 3));
    cr_assert_null(fb_keydb_find(db, "acme-", 5));
    cr_assert_null(fb_keydb_find(db, "acme\0x", 6), "an embedded NUL is another key");
    cr_assert_null(fb_keydb_find(db, "ACME", 4), "case matters");
    cr_assert_null(fb_keydb_find(db, "", 0));
    memset(k, 'b', sizeof(k));
    cr_assert_null(fb_keydb_find(db, k, sizeof(k)), "longer than any access key");
    cr_assert_null(fb_keydb_find(NULL, "acme", 4));
    fb_keydb_free(db);
}

Test(keys, free_tolerates_null_and_half_built)
{
    fb_keydb_t *db = calloc(1, sizeof(*db));

    fb_keydb_free(NULL);
    /* a database whose second tenant was never filled in */
    db->tenants = calloc(2, sizeof(*db->tenants));
    db->n_tenants = 2;
    db->tenants[0].access_key = strdup("a");
    db->tenants[0].enc_keys = calloc(1, sizeof(fb_enc_key_t));
    db->tenants[0].n_enc_keys = 1;
    cr_assert_not_null(db->tenants[0].enc_keys);
    fb_keydb_free(db);
    db = calloc(1, sizeof(*db));
    db->n_tenants = 3; /* tenants never allocated */
    fb_keydb_free(db);
    cr_assert_eq(test_log_count, 0, "freeing logs nothing");
}

/* the Go version's agents take a 64-hex-digit key's characters as its
 * bytes, which AES-256 refuses: a tenant that lets them in is warned
 * about, naming the tenant and the field, never the key; loaded all the
 * same (fbpipe reads the key correctly) */
Test(keys, a_hex_key_for_the_go_versions_agents_is_warned_about)
{
    static const char want[] =
        "key \"acme\": EncryptionKey is 64 hex digits and unbound_tokens_sha256 lets the Go "
        "version's agents send for this key: they use the 64 characters as the key, which "
        "AES-256 refuses, and drop every event while reporting success. Make its current key "
        "one of 32 characters (the characters are the key), keeping this one as a previous "
        "entry of EncryptionKeys (fbpipe.conf(5), KEY DATABASE)";
    fb_keydb_t *db;

    db = load("{\"acme\": {\"EncryptionKey\": \"" HEX64 "\", \"unbound_tokens_sha256\": [\"" HEX64B
              "\"]}, \"zeta\": {\"EncryptionKey\": \"" HEX64B "\"}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_not_null(strstr(test_log_buf, want), "%s", test_log_buf);
    cr_assert_null(strstr(test_log_buf, "zeta"), "no unbound tokens, no warning: %s",
                   test_log_buf);
    cr_assert_eq(test_log_count, 1);
    no_secret_logged(HEX64);
    no_secret_logged(HEX64B);
    fb_keydb_free(db);
    /* the current key of a list */
    db = load("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k2\", \"key\": \"" HEX64B_UPPER
              "\"}, {\"id\": \"default\", \"key\": \"" RAW32 "\"}], \"unbound_tokens_sha256\": [\""
              HEX64 "\"]}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_not_null(strstr(test_log_buf, "key \"acme\": EncryptionKeys[0].key is 64 hex "
                                            "digits and unbound_tokens_sha256"),
                       "%s", test_log_buf);
    no_secret_logged(HEX64B_UPPER);
    fb_keydb_free(db);
    /* the cure: a 32-character current key, the hex one kept after it */
    db = load("{\"acme\": {\"EncryptionKeys\": [{\"id\": \"k2\", \"key\": \"" RAW32
              "\"}, {\"id\": \"default\", \"key\": \"" HEX64 "\"}], \"unbound_tokens_sha256\": [\""
              HEX64B "\"]}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(test_log_count, 0, "%s", test_log_buf);
    fb_keydb_free(db);
    /* without unbound tokens, or without a key: nothing to say */
    db = load("{\"acme\": {\"EncryptionKey\": \"" HEX64 "\", \"unbound_tokens_sha256\": []}, "
              "\"zeta\": {\"EncryptionKey\": \"\", \"unbound_tokens_sha256\": [\"" HEX64 "\"]}}");
    cr_assert_not_null(db, "%s", test_log_buf);
    cr_assert_eq(test_log_count, 0, "%s", test_log_buf);
    fb_keydb_free(db);
}
