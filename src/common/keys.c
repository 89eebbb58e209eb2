/*
 * keys.c -- load and validate the key database (keys.json, jansson).
 *
 * Access keys become file names and Kafka keys, so they are checked here
 * once for every later use. Every problem is reported, each once, naming
 * the file, the access key and the field; a database with any problem is
 * refused whole. Never logs key material and never keeps it unwiped.
 */
#include <ctype.h>
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

static const char key_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

/* fb_access_key_valid -- [A-Za-z0-9._-], no leading dot, 1..128 bytes. */
int
fb_access_key_valid(const char *s, size_t len, const char **why)
{
    if (len == 0) {
        *why = "empty access key";
        return 0;
    }
    if (len > FB_ACCESS_KEY_MAX) {
        *why = "access key longer than 128 bytes";
        return 0;
    }
    if (s[0] == '.') {
        *why = "access key starts with a dot";
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || strchr(key_chars, s[i]) == NULL) {
            *why = "access key has a character outside [A-Za-z0-9._-]";
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
        if (s[i] == '\0' || strchr(key_chars, s[i]) == NULL)
            return 0;
    return 1;
}

/* fb_enc_key_decode -- "" (none, 0), 32 raw characters or 64 hex digits (1). */
int
fb_enc_key_decode(const char *s, size_t len, uint8_t out[FB_ENC_KEY_LEN], const char **why)
{
    size_t bin_len;

    if (len == 0)
        return 0;
    if (len == FB_ENC_KEY_LEN) {
        memcpy(out, s, FB_ENC_KEY_LEN); /* the original design's raw form */
        return 1;
    }
    if (len == 2 * FB_ENC_KEY_LEN) {
        if (sodium_hex2bin(out, FB_ENC_KEY_LEN, s, len, NULL, &bin_len, NULL) == 0 &&
            bin_len == FB_ENC_KEY_LEN)
            return 1;
        *why = "64 characters that are not all hex digits";
        return -1;
    }
    *why = "must be empty, 32 characters or 64 hex digits";
    return -1;
}

typedef struct keys_load {
    const char *path;
    int errors;
} keys_load_t;

/* kerr -- one problem with one tenant (key NULL: the file itself). */
static void FB_PRINTF(3, 4)
kerr(keys_load_t *kl, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key != NULL)
        fb_log_errorx("%s: key \"%.140s\": %s", kl->path, key, msg);
    else
        fb_log_errorx("%s: %s", kl->path, msg);
    kl->errors++;
}

/* parse_time -- unix seconds or "YYYY-MM-DDTHH:MM:SSZ" / "+00:00". */
static int
parse_time(json_t *v, int64_t *out)
{
    struct tm tm = {0};
    char tail[8] = "";
    const char *s;
    time_t t;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -1;
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (strlen(s) > 25 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%7s", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, tail) != 7)
        return -1;
    if (strcmp(tail, "Z") != 0 && strcmp(tail, "+00:00") != 0)
        return -1;
    if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t;
    return 0;
}

/* utf8_ok -- jansson strings are valid UTF-8; refuse embedded NULs. */
static bool
string_ok(json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) <= max &&
           strlen(json_string_value(v)) == json_string_length(v);
}

/* load_enc_keys -- EncryptionKey / EncryptionKeys into t. */
static void
load_enc_keys(keys_load_t *kl, const char *name, json_t *obj, fb_tenant_t *t)
{
    json_t *single = json_object_get(obj, "EncryptionKey");
    json_t *list = json_object_get(obj, "EncryptionKeys");
    uint8_t one[FB_ENC_KEY_LEN];
    const char *why;
    size_t n, i;
    int rc = 0;

    t->encryption_key_text = strdup("");
    if (single != NULL) {
        if (!string_ok(single, 1024)) {
            kerr(kl, name, "EncryptionKey: must be a string");
            return;
        }
        rc = fb_enc_key_decode(json_string_value(single), json_string_length(single), one, &why);
        if (rc < 0) {
            kerr(kl, name, "EncryptionKey: %s", why);
            return;
        }
    }
    if (list == NULL) {
        if (rc == 1) {
            t->enc_keys = calloc(1, sizeof(*t->enc_keys));
            if (t->enc_keys == NULL) {
                kerr(kl, name, "out of memory");
                goto out;
            }
            snprintf(t->enc_keys[0].id, sizeof(t->enc_keys[0].id), "default");
            memcpy(t->enc_keys[0].key, one, FB_ENC_KEY_LEN);
            t->n_enc_keys = 1;
            free(t->encryption_key_text);
            t->encryption_key_text = strdup(json_string_value(single));
        }
        goto out;
    }
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > FB_ENC_KEYS_MAX) {
        kerr(kl, name, "EncryptionKeys: must be an array of 1 to %d {\"id\", \"key\"} objects",
             FB_ENC_KEYS_MAX);
        goto out;
    }
    n = json_array_size(list);
    t->enc_keys = calloc(n, sizeof(*t->enc_keys));
    if (t->enc_keys == NULL) {
        kerr(kl, name, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i), *id, *key;
        const char *k;
        if (!json_is_object(e) || json_object_size(e) != 2 ||
            !string_ok(id = json_object_get(e, "id"), FB_KEY_ID_MAX) ||
            !string_ok(key = json_object_get(e, "key"), 1024)) {
            kerr(kl, name, "EncryptionKeys[%zu]: must be {\"id\": string, \"key\": string}", i);
            continue;
        }
        if (!fb_key_id_valid(json_string_value(id), json_string_length(id))) {
            kerr(kl, name, "EncryptionKeys[%zu].id: must be 1-64 characters of [A-Za-z0-9._-]",
                 i);
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->enc_keys[j].id, json_string_value(id)) == 0)
                kerr(kl, name, "EncryptionKeys[%zu].id: \"%s\" is used twice", i,
                     json_string_value(id));
        }
        k = json_string_value(key);
        rc = fb_enc_key_decode(k, json_string_length(key), t->enc_keys[i].key, &why);
        if (rc <= 0) {
            kerr(kl, name, "EncryptionKeys[%zu].key: %s", i, rc == 0 ? "must not be empty" : why);
            continue;
        }
        snprintf(t->enc_keys[i].id, sizeof(t->enc_keys[i].id), "%s", json_string_value(id));
        if (i == 0) {
            free(t->encryption_key_text);
            t->encryption_key_text = strdup(k);
        }
    }
    t->n_enc_keys = n;
    if (single != NULL && json_string_length(single) > 0 &&
        strcmp(json_string_value(single),
               json_string_value(json_object_get(json_array_get(list, 0), "key")) ?: "") != 0)
        kerr(kl, name, "EncryptionKey must be the newest entry of EncryptionKeys (the first)");
out:
    sodium_memzero(one, sizeof(one));
    if (t->encryption_key_text == NULL)
        kerr(kl, name, "out of memory");
}

/* load_tenant -- one member of the top-level object. */
static void
load_tenant(keys_load_t *kl, const char *name, json_t *obj, fb_tenant_t *t)
{
    static const char *const fields[] = {"AccessKey", "EncryptionKey", "EncryptionKeys", "UserID",
                                         "targets", "allow_unbound_tokens", "disabled",
                                         "tokens_not_before"};
    const char *why, *field;
    json_t *v;
    size_t i;

    t->access_key = strdup(name);
    if (t->access_key == NULL) {
        kerr(kl, name, "out of memory");
        return;
    }
    if (!fb_access_key_valid(name, strlen(name), &why)) {
        kerr(kl, name, "%s: access keys become file names: use 1-128 characters of "
                       "[A-Za-z0-9._-], not starting with a dot", why);
        return;
    }
    if (!json_is_object(obj)) {
        kerr(kl, name, "must be an object");
        return;
    }
    json_object_foreach(obj, field, v) {
        bool known = false;
        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            known |= strcmp(field, fields[i]) == 0;
        if (!known)
            kerr(kl, name, "unknown field \"%.64s\"", field);
    }
    if ((v = json_object_get(obj, "AccessKey")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), name) != 0))
        kerr(kl, name, "AccessKey: must equal the member name \"%s\"", name);
    v = json_object_get(obj, "UserID");
    if (v != NULL && !string_ok(v, FB_USER_ID_MAX))
        kerr(kl, name, "UserID: must be a string of at most %d bytes", FB_USER_ID_MAX);
    t->user_id = strdup(v != NULL && json_is_string(v) ? json_string_value(v) : "");
    if (t->user_id == NULL)
        kerr(kl, name, "out of memory");
    load_enc_keys(kl, name, obj, t);

    if ((v = json_object_get(obj, "allow_unbound_tokens")) != NULL) {
        if (!json_is_boolean(v))
            kerr(kl, name, "allow_unbound_tokens: must be true or false");
        t->allow_unbound_tokens = json_is_true(v);
    }
    if ((v = json_object_get(obj, "disabled")) != NULL) {
        if (!json_is_boolean(v))
            kerr(kl, name, "disabled: must be true or false");
        t->disabled = json_is_true(v);
    }
    if ((v = json_object_get(obj, "tokens_not_before")) != NULL &&
        parse_time(v, &t->tokens_not_before) < 0)
        kerr(kl, name, "tokens_not_before: must be unix seconds or an RFC 3339 UTC time "
                       "such as 2026-01-01T00:00:00Z");
    if ((v = json_object_get(obj, "targets")) != NULL) {
        json_t *tg;
        if (!json_is_array(v)) {
            kerr(kl, name, "targets: must be an array");
            return;
        }
        json_array_foreach(v, i, tg) {
            const char *type;
            json_t *val;
            char want[FB_ACCESS_KEY_MAX + 8];

            if (!json_is_object(tg) || json_object_size(tg) != 1) {
                kerr(kl, name, "targets[%zu]: must be an object with one member, such as "
                               "{\"file\": \"%s.log\"}", i, name);
                continue;
            }
            json_object_foreach(tg, type, val) {
                if (strcmp(type, "file") != 0) {
                    kerr(kl, name, "targets[%zu]: target type \"%.32s\" is not supported by "
                                   "this version", i, type);
                    continue;
                }
                snprintf(want, sizeof(want), "%s.log", name);
                if (!json_is_string(val) || strcmp(json_string_value(val), want) != 0) {
                    kerr(kl, name, "targets[%zu].file must be \"%s\"", i, want);
                    continue;
                }
                t->n_file_targets++;
            }
        }
    }
}

static int
tenant_cmp(const void *a, const void *b)
{
    return strcmp(((const fb_tenant_t *)a)->access_key, ((const fb_tenant_t *)b)->access_key);
}

/* read_file -- the whole file, after checking type, size and permissions. */
static char *
read_file(keys_load_t *kl, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd;

    fd = open(kl->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fb_log_error("open(%s) failed", kl->path);
        kl->errors++;
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        fb_log_error("fstat(%s) failed", kl->path);
        kl->errors++;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        kerr(kl, NULL, "not a regular file");
        goto out;
    }
    if (st.st_mode & S_IRWXO) {
        kerr(kl, NULL, "is accessible by others (mode %04o): it holds encryption keys; "
                       "chmod o-rwx it", (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size > FB_KEYDB_FILE_MAX) {
        kerr(kl, NULL, "%lld bytes, more than the %d a key database may have",
             (long long)st.st_size, FB_KEYDB_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        kerr(kl, NULL, "out of memory");
        goto out;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                fb_log_error("read(%s) failed", kl->path);
            else
                kerr(kl, NULL, "file shrank while being read");
            kl->errors++;
            free(buf);
            buf = NULL;
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
out:
    close(fd);
    return buf;
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
    char *text;
    size_t len = 0, i = 0;

    text = read_file(&kl, &len);
    if (text == NULL)
        return NULL;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    sodium_memzero(text, len);
    free(text);
    if (root == NULL) {
        kerr(&kl, NULL, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        kerr(&kl, NULL, "must be a JSON object of access keys");
        goto fail;
    }
    db = calloc(1, sizeof(*db));
    if (db == NULL || (db->path = strdup(path)) == NULL)
        goto nomem;
    db->tenants = calloc(json_object_size(root) ? json_object_size(root) : 1,
                         sizeof(*db->tenants));
    if (db->tenants == NULL)
        goto nomem;
    json_object_foreach(root, name, v) {
        load_tenant(&kl, name, v, &db->tenants[i]);
        db->n_tenants = ++i;
    }
    if (kl.errors > 0)
        goto fail;
    qsort(db->tenants, db->n_tenants, sizeof(*db->tenants), tenant_cmp);
    json_decref(root);
    return db;

nomem:
    kerr(&kl, NULL, "out of memory");
fail:
    json_decref(root);
    fb_keydb_free(db);
    return NULL;
}

/* fb_keydb_free -- wipe keys and free; tolerates NULL and half-built. */
void
fb_keydb_free(fb_keydb_t *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->n_tenants; i++) {
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
    }
    free(db->tenants);
    free(db->path);
    free(db);
}

/* fb_keydb_find -- the tenant of an access key (not NUL-terminated), or NULL. */
const fb_tenant_t *
fb_keydb_find(const fb_keydb_t *db, const char *access_key, size_t len)
{
    size_t lo = 0, hi = db->n_tenants;

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
    for (size_t i = 0; i < t->n_enc_keys; i++)
        if (strcmp(t->enc_keys[i].id, key_id) == 0)
            return &t->enc_keys[i];
    return NULL;
}
