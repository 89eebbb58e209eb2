/*
 * keys.c -- load and validate the key database (keys.json, jansson).
 *
 * Access keys become file names and Kafka keys, so they are checked here
 * once for every later use. Every problem is reported, each once, naming the
 * file, the access key and the field; a database with any problem is refused
 * whole, so a reload never makes things worse. Names from the file are
 * escaped before they reach a log line. This file must never log key
 * material (not even through jansson's "near '...'" error text) and never
 * free a copy of a key without wiping it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/keys.h"
#include "common/log.h"

#define KEYS_SHOW_MAX 64 /* bytes of a name from the file shown in a message */
#define KEYS_SHOW_SIZE (KEYS_SHOW_MAX * 4 + 4)

/* One load: where messages point and how many problems were found. */
typedef struct keys_load {
    const char *path;
    int errors;
} keys_load_t;

static void keys_err(keys_load_t *kl, const char *shown, const char *fmt, ...) FB_PRINTF(3, 4);
static const char *keys_type(const json_t *v);
static bool keys_name_char(unsigned char c);
static char *keys_read(keys_load_t *kl, size_t *len);
static int keys_parse_time(const json_t *v, int64_t *out);
static bool keys_string(keys_load_t *kl, const char *shown, const char *field, const json_t *v,
                        size_t max);
static void keys_load_enc(keys_load_t *kl, const char *shown, json_t *obj, fb_tenant_t *t);
static void keys_load_targets(keys_load_t *kl, const char *shown, const char *name, json_t *list,
                              fb_tenant_t *t);
static void keys_load_unbound(keys_load_t *kl, const char *shown, json_t *obj, fb_tenant_t *t);
static void keys_warn_hex_for_unbound(const keys_load_t *kl, const char *shown, json_t *obj,
                                      const fb_tenant_t *t);
static void keys_load_tenant(keys_load_t *kl, const char *name, json_t *obj, fb_tenant_t *t);
static int keys_tenant_cmp(const void *a, const void *b);

static const char *const keys_fields[] = {
    "AccessKey", "EncryptionKey", "EncryptionKeys",       "UserID",
    "targets",   "disabled",      "allow_unbound_tokens", "unbound_tokens_sha256",
    "tokens_not_before",
};

/* keys_name_char -- [A-Za-z0-9._-], the alphabet of access keys and key ids. */
static bool
keys_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* fb_access_key_valid -- [A-Za-z0-9._-], no leading dot, 1..128 bytes. */
int
fb_access_key_valid(const char *s, size_t len, const char **why)
{
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    if (len == 0) {
        *why = "is empty";
        return 0;
    }
    if (len > FB_ACCESS_KEY_MAX) {
        *why = "is longer than 128 bytes";
        return 0;
    }
    if (s[0] == '.') {
        *why = "starts with a dot";
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (!keys_name_char((unsigned char)s[i])) {
            *why = "has a character outside [A-Za-z0-9._-]";
            return 0;
        }
    }
    return 1;
}

/* fb_key_id_valid -- encryption key ids: [A-Za-z0-9._-], 1..64 bytes. */
int
fb_key_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > FB_KEY_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!keys_name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* fb_enc_key_decode -- "" (none, 0), 32 raw characters or 64 hex digits (1), else -1. */
int
fb_enc_key_decode(const char *s, size_t len, uint8_t out[FB_ENC_KEY_LEN], const char **why)
{
    uint8_t bin[FB_ENC_KEY_LEN];
    const char *dummy;
    size_t bin_len = 0;

    if (why == NULL)
        why = &dummy;
    if (len == 0)
        return 0;
    if (len == FB_ENC_KEY_LEN) {
        memcpy(out, s, FB_ENC_KEY_LEN); /* the seed's form: the characters are the key */
        return 1;
    }
    if (len != 2 * FB_ENC_KEY_LEN) {
        *why = "must be empty, 32 characters or 64 hex digits";
        return -1;
    }
    if (sodium_hex2bin(bin, sizeof(bin), s, len, NULL, &bin_len, NULL) != 0 ||
        bin_len != FB_ENC_KEY_LEN) {
        sodium_memzero(bin, sizeof(bin));
        *why = "has 64 characters that are not all hex digits";
        return -1;
    }
    memcpy(out, bin, FB_ENC_KEY_LEN);
    sodium_memzero(bin, sizeof(bin));
    return 1;
}

/* keys_err -- one problem with one tenant (shown NULL: with the file itself). */
static void
keys_err(keys_load_t *kl, const char *shown, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (shown != NULL)
        fb_log_errorx("%s: key \"%s\": %s", kl->path, shown, msg);
    else
        fb_log_errorx("%s: %s", kl->path, msg);
    kl->errors++;
}

/* keys_type -- the JSON type of v, for "must be X, not Y" messages. */
static const char *
keys_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "a number";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* keys_string -- v is a string of at most max bytes without NUL; reports otherwise. */
static bool
keys_string(keys_load_t *kl, const char *shown, const char *field, const json_t *v, size_t max)
{
    if (!json_is_string(v)) {
        keys_err(kl, shown, "%s: must be a string, not %s", field, keys_type(v));
        return false;
    }
    if (json_string_length(v) > max) {
        keys_err(kl, shown, "%s: must be at most %zu bytes, not %zu", field, max,
                 json_string_length(v));
        return false;
    }
    /* jansson refuses \u0000 and invalid UTF-8 while parsing; this is the
     * second line of defence should the load flags ever change. */
    if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL) {
        keys_err(kl, shown, "%s: must not contain a NUL byte", field);
        return false;
    }
    return true;
}

/* keys_parse_time -- unix seconds, or "YYYY-MM-DDTHH:MM:SSZ" / "...+00:00". */
static int
keys_parse_time(const json_t *v, int64_t *out)
{
    static const char form[] = "dddd-dd-ddTdd:dd:dd";
    struct tm tm = {0}, back;
    const char *s;
    size_t len;
    time_t t;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > FB_KEYDB_TIME_MAX)
            return -1;
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len != 20 && len != 25)
        return -1;
    if (len == 20 ? strcmp(s + 19, "Z") != 0 : strcmp(s + 19, "+00:00") != 0)
        return -1;
    for (size_t i = 0; i < sizeof(form) - 1; i++) {
        if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != form[i])
            return -1;
    }
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    back = tm;
    t = timegm(&tm);
    /* timegm normalises 2026-02-30 to March 2nd: refuse what it had to move */
    if (t == (time_t)-1 || tm.tm_mday != back.tm_mday || tm.tm_mon != back.tm_mon)
        return -1;
    *out = (int64_t)t;
    return 0;
}

/* keys_load_enc -- EncryptionKey and EncryptionKeys into t (current key first). */
static void
keys_load_enc(keys_load_t *kl, const char *shown, json_t *obj, fb_tenant_t *t)
{
    json_t *single = json_object_get(obj, "EncryptionKey");
    json_t *list = json_object_get(obj, "EncryptionKeys");
    uint8_t one[FB_ENC_KEY_LEN];
    const char *text = "", *why = "";
    bool first_ok = false;
    int have_one = 0;
    size_t n;

    if (single != NULL && keys_string(kl, shown, "EncryptionKey", single, SIZE_MAX)) {
        have_one = fb_enc_key_decode(json_string_value(single), json_string_length(single), one,
                                     &why);
        if (have_one < 0)
            keys_err(kl, shown, "EncryptionKey: %s", why);
        else if (have_one == 1)
            text = json_string_value(single);
    }

    if (list == NULL) {
        if (have_one == 1) {
            t->enc_keys = calloc(1, sizeof(*t->enc_keys));
            if (t->enc_keys == NULL) {
                keys_err(kl, shown, "calloc(1, %zu) failed: out of memory", sizeof(*t->enc_keys));
                goto done;
            }
            t->n_enc_keys = 1;
            snprintf(t->enc_keys[0].id, sizeof(t->enc_keys[0].id), "default");
            memcpy(t->enc_keys[0].key, one, FB_ENC_KEY_LEN);
        }
        goto done;
    }
    if (!json_is_array(list)) {
        keys_err(kl, shown, "EncryptionKeys: must be an array of {\"id\": ..., \"key\": ...}, "
                            "newest first, not %s", keys_type(list));
        goto done;
    }
    n = json_array_size(list);
    if (n == 0 || n > FB_ENC_KEYS_MAX) {
        keys_err(kl, shown, "EncryptionKeys: must have 1 to %d entries, not %zu", FB_ENC_KEYS_MAX,
                 n);
        goto done;
    }
    t->enc_keys = calloc(n, sizeof(*t->enc_keys));
    if (t->enc_keys == NULL) {
        keys_err(kl, shown, "calloc(%zu, %zu) failed: out of memory", n, sizeof(*t->enc_keys));
        goto done;
    }
    t->n_enc_keys = n; /* so that a failed load still wipes what was decoded */
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i), *id, *key, *v;
        char field[64], idshown[KEYS_SHOW_SIZE];
        const char *member;
        bool ok = true;
        int rc;

        if (!json_is_object(e)) {
            keys_err(kl, shown, "EncryptionKeys[%zu]: must be an object {\"id\": ..., "
                                "\"key\": ...}, not %s", i, keys_type(e));
            continue;
        }
        json_object_foreach(e, member, v) {
            if (strcmp(member, "id") != 0 && strcmp(member, "key") != 0) {
                fb_log_show(idshown, sizeof(idshown), member, strlen(member), KEYS_SHOW_MAX);
                keys_err(kl, shown, "EncryptionKeys[%zu]: unknown field \"%s\"", i, idshown);
                ok = false;
            }
        }
        snprintf(field, sizeof(field), "EncryptionKeys[%zu].id", i);
        id = json_object_get(e, "id");
        if (id == NULL) {
            keys_err(kl, shown, "%s: is missing", field);
            ok = false;
        } else if (keys_string(kl, shown, field, id, SIZE_MAX)) {
            const char *s = json_string_value(id);
            size_t len = json_string_length(id);

            fb_log_show(idshown, sizeof(idshown), s, len, KEYS_SHOW_MAX);
            if (!fb_key_id_valid(s, len)) {
                keys_err(kl, shown, "%s: \"%s\" must be 1-64 characters of [A-Za-z0-9._-]", field,
                         idshown);
                ok = false;
            } else {
                for (size_t j = 0; j < i; j++) {
                    if (strcmp(t->enc_keys[j].id, s) == 0) {
                        keys_err(kl, shown, "%s: \"%s\" is used twice (EncryptionKeys[%zu])",
                                 field, idshown, j);
                        ok = false;
                        break;
                    }
                }
                /* keep the id even after a problem so later duplicates are found */
                memcpy(t->enc_keys[i].id, s, len + 1);
            }
        } else {
            ok = false;
        }
        snprintf(field, sizeof(field), "EncryptionKeys[%zu].key", i);
        key = json_object_get(e, "key");
        if (key == NULL) {
            keys_err(kl, shown, "%s: is missing", field);
            continue;
        }
        if (!keys_string(kl, shown, field, key, SIZE_MAX))
            continue;
        rc = fb_enc_key_decode(json_string_value(key), json_string_length(key),
                               t->enc_keys[i].key, &why);
        if (rc == 0)
            keys_err(kl, shown, "%s: must not be empty", field);
        else if (rc < 0 && json_string_length(key) == 2 * FB_ENC_KEY_LEN)
            keys_err(kl, shown, "%s: %s", field, why);
        else if (rc < 0)
            keys_err(kl, shown, "%s: must be 32 characters or 64 hex digits", field);
        else if (i == 0 && ok)
            first_ok = true;
    }
    if (have_one == 1 && first_ok &&
        sodium_memcmp(one, t->enc_keys[0].key, FB_ENC_KEY_LEN) != 0)
        keys_err(kl, shown, "EncryptionKey must be the newest entry of EncryptionKeys "
                            "(EncryptionKeys[0].key), or empty");
    if (have_one != 1 && first_ok)
        text = json_string_value(json_object_get(json_array_get(list, 0), "key"));

done:
    sodium_memzero(one, sizeof(one));
    t->encryption_key_text = strdup(text);
    if (t->encryption_key_text == NULL)
        keys_err(kl, shown, "strdup(EncryptionKey) failed: out of memory");
}

/* fb_target_name_valid -- [a-z0-9_-], 1..32 bytes. */
int
fb_target_name_valid(const char *s, size_t len, const char **why)
{
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    if (len == 0) {
        *why = "is empty";
        return 0;
    }
    if (len > FB_TARGET_NAME_MAX) {
        *why = "is longer than 32 bytes";
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            *why = "has a character outside [a-z0-9_-]";
            return 0;
        }
    }
    return 1;
}

/* keys_load_targets -- "targets": names of targets ("file", "archive",
 * ...), or the first version's {"file": "<access key>.log"}, which is
 * "file". Whether a name is a target of fbpipe.conf is for
 * fb_keydb_check_targets to say. */
static void
keys_load_targets(keys_load_t *kl, const char *shown, const char *name, json_t *list,
                  fb_tenant_t *t)
{
    size_t name_len = strlen(name), i, n;
    const char *why;
    json_t *tg;

    if (!json_is_array(list)) {
        keys_err(kl, shown, "targets: must be an array, not %s", keys_type(list));
        return;
    }
    n = json_array_size(list);
    if (n > FB_TARGETS_MAX) {
        keys_err(kl, shown, "targets: must have at most %d entries, not %zu", FB_TARGETS_MAX, n);
        return;
    }
    if (n == 0)
        return;
    t->targets = calloc(n, sizeof(*t->targets));
    if (t->targets == NULL) {
        keys_err(kl, shown, "calloc(%zu, %zu) failed: out of memory", n, sizeof(*t->targets));
        return;
    }
    json_array_foreach(list, i, tg) {
        char tg_shown[KEYS_SHOW_SIZE];
        const char *target, *file;
        json_t *val;
        size_t len;
        bool twice = false;

        if (json_is_string(tg)) {
            target = json_string_value(tg);
            len = json_string_length(tg);
            fb_log_show(tg_shown, sizeof(tg_shown), target, len, KEYS_SHOW_MAX);
            if (memchr(target, '\0', len) != NULL || !fb_target_name_valid(target, len, &why)) {
                keys_err(kl, shown, "targets[%zu]: \"%s\" is not a target name: it %s "
                                    "(1-32 characters of [a-z0-9_-])",
                         i, tg_shown, memchr(target, '\0', len) != NULL ? "holds a NUL byte"
                                                                        : why);
                continue;
            }
        } else if (json_is_object(tg) && json_object_size(tg) == 1 &&
                   json_object_get(tg, "file") != NULL) {
            /* the first version's form, which could only name the file */
            val = json_object_get(tg, "file");
            file = json_string_value(val);
            len = json_string_length(val);
            if (!json_is_string(val) || len != name_len + 4 || memcmp(file, name, name_len) != 0 ||
                memcmp(file + name_len, ".log", 4) != 0) {
                keys_err(kl, shown, "targets[%zu].file must be \"%s.log\"", i, shown);
                continue;
            }
            target = "file";
        } else {
            keys_err(kl, shown, "targets[%zu]: must be a target name such as \"file\", or "
                                "{\"file\": \"%s.log\"}, not %s",
                     i, shown,
                     json_is_object(tg) ? "another object" : keys_type(tg));
            continue;
        }
        /* a target listed twice would get every record twice */
        for (size_t j = 0; j < t->n_targets; j++)
            twice = twice || strcmp(t->targets[j], target) == 0;
        if (twice) {
            fb_log_show(tg_shown, sizeof(tg_shown), target, strlen(target), KEYS_SHOW_MAX);
            keys_err(kl, shown, "targets[%zu]: \"%s\" is listed twice", i, tg_shown);
            continue;
        }
        t->targets[t->n_targets] = strdup(target);
        if (t->targets[t->n_targets] == NULL) {
            keys_err(kl, shown, "strdup(target) failed: out of memory");
            continue;
        }
        t->n_targets++;
        if (strcmp(target, "file") == 0)
            t->n_file_targets = 1;
    }
}

/* keys_load_unbound -- unbound_tokens_sha256 into t, and the refusal of the
 * boolean it replaces. allow_unbound_tokens: true let every token without
 * the key claim act for the tenant; reading it as a list of none would
 * silently lock out the agents that rely on it, reading it as before would
 * keep the widest grant. Neither is silent: true is refused with what to
 * write instead; false (what no list means) is accepted with a warning. */
static void
keys_load_unbound(keys_load_t *kl, const char *shown, json_t *obj, fb_tenant_t *t)
{
    json_t *old = json_object_get(obj, "allow_unbound_tokens");
    json_t *list = json_object_get(obj, "unbound_tokens_sha256");
    size_t n, bin_len;
    const char *end;
    json_t *e;

    if (old != NULL && json_is_false(old))
        fb_log_warnx("%s: key \"%s\": allow_unbound_tokens is no longer read (false is what "
                     "no unbound_tokens_sha256 means): remove it", kl->path, shown);
    else if (old != NULL)
        keys_err(kl, shown, "allow_unbound_tokens is no longer read: it let every token without "
                            "the key claim act for this key. List the fingerprint of each such "
                            "token this key accepts instead, \"unbound_tokens_sha256\": "
                            "[\"<64 hex digits>\", ...] (fbpiped token --fingerprint - prints "
                            "one), and remove allow_unbound_tokens");
    if (list == NULL)
        return;
    if (!json_is_array(list)) {
        keys_err(kl, shown, "unbound_tokens_sha256: must be an array of SHA-256 fingerprints "
                            "(64 hex digits each), not %s", keys_type(list));
        return;
    }
    n = json_array_size(list);
    if (n > FB_UNBOUND_TOKENS_MAX) {
        keys_err(kl, shown, "unbound_tokens_sha256: must have at most %d entries, not %zu",
                 FB_UNBOUND_TOKENS_MAX, n);
        return;
    }
    if (n == 0)
        return;
    t->unbound_tokens = calloc(n, sizeof(*t->unbound_tokens));
    if (t->unbound_tokens == NULL) {
        keys_err(kl, shown, "calloc(%zu, %zu) failed: out of memory", n,
                 sizeof(*t->unbound_tokens));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t *fp = t->unbound_tokens[t->n_unbound_tokens];

        e = json_array_get(list, i);
        if (!json_is_string(e)) {
            keys_err(kl, shown, "unbound_tokens_sha256[%zu]: must be a string of 64 hex "
                                "digits, not %s", i, keys_type(e));
            continue;
        }
        if (json_string_length(e) != 2 * FB_TOKEN_SHA256_LEN ||
            sodium_hex2bin(fp, FB_TOKEN_SHA256_LEN, json_string_value(e), json_string_length(e),
                           NULL, &bin_len, &end) != 0 ||
            bin_len != FB_TOKEN_SHA256_LEN || end != json_string_value(e) + json_string_length(e)) {
            keys_err(kl, shown, "unbound_tokens_sha256[%zu]: must be 64 hex digits (the SHA-256 "
                                "of one token, as fbpiped token --fingerprint prints it), not "
                                "%zu characters%s", i, json_string_length(e),
                     json_string_length(e) == 2 * FB_TOKEN_SHA256_LEN ? " with a non-hex one"
                                                                      : "");
            continue;
        }
        for (size_t j = 0; j < t->n_unbound_tokens; j++) {
            if (memcmp(t->unbound_tokens[j], fp, FB_TOKEN_SHA256_LEN) == 0) {
                keys_err(kl, shown, "unbound_tokens_sha256[%zu]: listed twice", i);
                fp = NULL;
                break;
            }
        }
        if (fp != NULL)
            t->n_unbound_tokens++;
    }
}

/* keys_warn_hex_for_unbound -- a tenant that lets the Go version's agents
 * in (it lists unbound tokens) and whose current key is 64 hex digits:
 * those agents take the key's 64 characters as its bytes, which AES-256
 * refuses, and drop every event while they report success. fbpipe reads
 * the key correctly, so the file is not wrong: a warning, not an error,
 * naming the tenant and the field, never the key. */
static void
keys_warn_hex_for_unbound(const keys_load_t *kl, const char *shown, json_t *obj,
                          const fb_tenant_t *t)
{
    json_t *single = json_object_get(obj, "EncryptionKey");

    if (t->n_unbound_tokens == 0 || t->encryption_key_text == NULL ||
        strlen(t->encryption_key_text) != 2 * FB_ENC_KEY_LEN)
        return;
    fb_log_warnx("%s: key \"%s\": %s is 64 hex digits and unbound_tokens_sha256 lets the Go "
                 "version's agents send for this key: they use the 64 characters as the key, "
                 "which AES-256 refuses, and drop every event while reporting success. Make its "
                 "current key one of 32 characters (the characters are the key), keeping this one "
                 "as a previous entry of EncryptionKeys (fbpipe.conf(5), KEY DATABASE)",
                 kl->path, shown,
                 json_is_string(single) && json_string_length(single) > 0
                     ? "EncryptionKey"
                     : "EncryptionKeys[0].key");
}

/* keys_load_tenant -- one member of the top-level object; reports every problem. */
static void
keys_load_tenant(keys_load_t *kl, const char *name, json_t *obj, fb_tenant_t *t)
{
    char shown[KEYS_SHOW_SIZE], other[KEYS_SHOW_SIZE];
    size_t name_len = strlen(name);
    const char *why, *field;
    bool known;
    json_t *v;

    fb_log_show(shown, sizeof(shown), name, name_len, KEYS_SHOW_MAX);
    t->access_key = strdup(name);
    if (t->access_key == NULL) {
        keys_err(kl, shown, "strdup(access key) failed: out of memory");
        return;
    }
    if (!fb_access_key_valid(name, name_len, &why))
        keys_err(kl, shown, "access key %s: access keys become file names, use 1-128 "
                            "characters of [A-Za-z0-9._-], not starting with a dot", why);
    if (!json_is_object(obj)) {
        keys_err(kl, shown, "must be an object, not %s", keys_type(obj));
        return;
    }

    json_object_foreach(obj, field, v) {
        known = false;
        for (size_t i = 0; i < sizeof(keys_fields) / sizeof(keys_fields[0]); i++)
            known = known || strcmp(field, keys_fields[i]) == 0;
        if (!known) {
            fb_log_show(other, sizeof(other), field, strlen(field), KEYS_SHOW_MAX);
            keys_err(kl, shown, "unknown field \"%s\"", other);
        }
    }

    v = json_object_get(obj, "AccessKey");
    if (v != NULL && keys_string(kl, shown, "AccessKey", v, SIZE_MAX) &&
        (json_string_length(v) != name_len || memcmp(json_string_value(v), name, name_len) != 0)) {
        fb_log_show(other, sizeof(other), json_string_value(v), json_string_length(v), KEYS_SHOW_MAX);
        keys_err(kl, shown, "AccessKey: \"%s\" must equal the member name \"%s\"", other, shown);
    }

    v = json_object_get(obj, "UserID");
    t->user_id = strdup(v != NULL && keys_string(kl, shown, "UserID", v, FB_USER_ID_MAX)
                            ? json_string_value(v)
                            : "");
    if (t->user_id == NULL)
        keys_err(kl, shown, "strdup(UserID) failed: out of memory");

    keys_load_enc(kl, shown, obj, t);

    keys_load_unbound(kl, shown, obj, t);

    keys_warn_hex_for_unbound(kl, shown, obj, t);

    v = json_object_get(obj, "disabled");
    if (v != NULL && !json_is_boolean(v))
        keys_err(kl, shown, "disabled: must be true or false, not %s", keys_type(v));
    t->disabled = json_is_true(v);

    v = json_object_get(obj, "tokens_not_before");
    if (v != NULL && keys_parse_time(v, &t->tokens_not_before) < 0)
        keys_err(kl, shown, "tokens_not_before: must be unix seconds (0 to %lld) or an RFC 3339 "
                            "UTC time such as \"2026-01-01T00:00:00Z\"",
                 (long long)FB_KEYDB_TIME_MAX);

    v = json_object_get(obj, "targets");
    if (v != NULL)
        keys_load_targets(kl, shown, name, v, t);
}

/* keys_tenant_cmp -- bytewise order of access keys, as fb_keydb_find expects. */
static int
keys_tenant_cmp(const void *a, const void *b)
{
    return strcmp(((const fb_tenant_t *)a)->access_key, ((const fb_tenant_t *)b)->access_key);
}

/* keys_read -- the whole file, after checking type, size and permissions on the fd. */
static char *
keys_read(keys_load_t *kl, size_t *len)
{
    struct stat st;
    char *buf = NULL, extra;
    size_t n = 0;
    ssize_t r;
    int fd;

    /* O_NONBLOCK: a FIFO put in place of the file must not hang a reload */
    fd = open(kl->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        fb_log_error("open(%s) failed", kl->path);
        kl->errors++;
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        fb_log_error("fstat(%s) failed", kl->path);
        kl->errors++;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        keys_err(kl, NULL, "is not a regular file");
        goto fail;
    }
    if (st.st_mode & S_IRWXO) {
        keys_err(kl, NULL, "is accessible by others (mode %04o); chmod o-rwx %s",
                 (unsigned)(st.st_mode & 07777), kl->path);
        goto fail;
    }
    if (st.st_size > FB_KEYDB_FILE_MAX) {
        keys_err(kl, NULL, "is %lld bytes, more than the %d a key database may have",
                 (long long)st.st_size, FB_KEYDB_FILE_MAX);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fb_log_error("malloc(%lld) for %s failed", (long long)st.st_size + 1, kl->path);
        kl->errors++;
        goto fail;
    }
    while (n < (size_t)st.st_size) {
        r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fb_log_error("read(%s) failed", kl->path);
            kl->errors++;
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    do {
        r = read(fd, &extra, 1);
    } while (r < 0 && errno == EINTR);
    if (n != (size_t)st.st_size || r != 0) {
        keys_err(kl, NULL, "changed while being read; try again");
        goto fail;
    }
    buf[n] = '\0';
    *len = n;
    close(fd);
    return buf;

fail:
    if (buf != NULL) {
        sodium_memzero(buf, (size_t)st.st_size);
        free(buf);
    }
    close(fd);
    return NULL;
}

/* fb_keydb_load -- the whole database, or NULL after logging every problem. */
fb_keydb_t *
fb_keydb_load(const char *path)
{
    keys_load_t kl = {.path = path, .errors = 0};
    fb_keydb_t *db = NULL;
    json_error_t jerr;
    json_t *root = NULL, *v;
    const char *name;
    char *text, *near;
    size_t len = 0, n;

    text = keys_read(&kl, &len);
    if (text == NULL)
        goto fail;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    sodium_memzero(text, len);
    free(text);
    if (root == NULL) {
        /* jansson quotes the token it stopped at, which may be a key */
        near = strstr(jerr.text, " near ");
        if (near != NULL)
            *near = '\0';
        keys_err(&kl, NULL, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        keys_err(&kl, NULL, "must be a JSON object of access keys, not %s", keys_type(root));
        goto fail;
    }
    db = calloc(1, sizeof(*db));
    if (db == NULL) {
        keys_err(&kl, NULL, "calloc(1, %zu) failed: out of memory", sizeof(*db));
        goto fail;
    }
    db->path = strdup(path);
    n = json_object_size(root);
    db->tenants = calloc(n > 0 ? n : 1, sizeof(*db->tenants));
    if (db->path == NULL || db->tenants == NULL) {
        keys_err(&kl, NULL, "calloc(%zu, %zu) failed: out of memory", n, sizeof(*db->tenants));
        goto fail;
    }
    json_object_foreach(root, name, v) {
        keys_load_tenant(&kl, name, v, &db->tenants[db->n_tenants]);
        db->n_tenants++;
    }
    if (kl.errors > 0)
        goto fail;
    qsort(db->tenants, db->n_tenants, sizeof(*db->tenants), keys_tenant_cmp);
    json_decref(root);
    return db;

fail:
    json_decref(root);
    fb_keydb_free(db);
    return NULL;
}

/* fb_keydb_free -- wipe the keys and free; tolerates NULL and half-built. */
void
fb_keydb_free(fb_keydb_t *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; db->tenants != NULL && i < db->n_tenants; i++) {
        fb_tenant_t *t = &db->tenants[i];

        free(t->access_key);
        free(t->user_id);
        if (t->encryption_key_text != NULL) {
            sodium_memzero(t->encryption_key_text, strlen(t->encryption_key_text));
            free(t->encryption_key_text);
        }
        if (t->enc_keys != NULL) {
            sodium_memzero(t->enc_keys, t->n_enc_keys * sizeof(*t->enc_keys));
            free(t->enc_keys);
        }
        free(t->unbound_tokens);
        for (size_t j = 0; j < t->n_targets; j++)
            free(t->targets[j]);
        free(t->targets);
    }
    free(db->tenants);
    free(db->path);
    free(db);
}

/* fb_keydb_find -- the tenant of access_key[0..len) (not NUL-terminated), or NULL. */
const fb_tenant_t *
fb_keydb_find(const fb_keydb_t *db, const char *access_key, size_t len)
{
    size_t lo = 0, hi;

    if (db == NULL || access_key == NULL || len == 0 || len > FB_ACCESS_KEY_MAX)
        return NULL;
    hi = db->n_tenants;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = db->tenants[mid].access_key;
        size_t klen = strlen(k);
        int c = memcmp(k, access_key, klen < len ? klen : len);

        if (c == 0)
            c = klen < len ? -1 : klen > len ? 1 : 0;
        if (c == 0)
            return &db->tenants[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* fb_tenant_enc_key -- a tenant's key by id, current or previous; NULL if none. */
const fb_enc_key_t *
fb_tenant_enc_key(const fb_tenant_t *t, const char *key_id)
{
    if (t == NULL || key_id == NULL)
        return NULL;
    for (size_t i = 0; i < t->n_enc_keys; i++)
        if (strcmp(t->enc_keys[i].id, key_id) == 0)
            return &t->enc_keys[i];
    return NULL;
}

/* fb_tenant_lists_unbound -- the fingerprint is in t's unbound_tokens_sha256. */
int
fb_tenant_lists_unbound(const fb_tenant_t *t, const uint8_t sha256[FB_TOKEN_SHA256_LEN])
{
    int found = 0;

    if (t == NULL || sha256 == NULL)
        return 0;
    /* every entry compared: the time does not say which one matched */
    for (size_t i = 0; i < t->n_unbound_tokens; i++)
        found |= sodium_memcmp(t->unbound_tokens[i], sha256, FB_TOKEN_SHA256_LEN) == 0;
    return found;
}
