/*
 * keys.h -- the key database (keys.json): tenants, their access keys, user
 * ids, encryption keys (with rotation) and token lifecycle.
 *
 * Loading validates everything and refuses the file whole on any problem; a
 * loaded database is read-only, so it can be shared by threads and swapped
 * whole on reload. Never logs key material.
 */
#ifndef FB_KEYS_H
#define FB_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_ACCESS_KEY_MAX 128                 /* bytes; access keys become file names */
#define FB_KEY_ID_MAX 64                      /* bytes of an encryption key id */
#define FB_USER_ID_MAX 256                    /* bytes of a UserID */
#define FB_ENC_KEY_LEN 32                     /* every encryption key is 256 bits */
#define FB_ENC_KEYS_MAX 64                    /* entries of EncryptionKeys per tenant */
#define FB_KEYDB_FILE_MAX (64 * 1024 * 1024)  /* bytes of keys.json */
#define FB_KEYDB_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define FB_TOKEN_SHA256_LEN 32                /* bytes of a token fingerprint */
#define FB_UNBOUND_TOKENS_MAX 1024            /* entries of unbound_tokens_sha256 per tenant */
#define FB_TARGET_NAME_MAX 32                 /* bytes of a target's name */
#define FB_TARGETS_MAX 16                     /* targets a tenant may name */


typedef struct fb_enc_key {
    char id[FB_KEY_ID_MAX + 1]; /* "default" for a lone EncryptionKey */
    uint8_t key[FB_ENC_KEY_LEN];
} fb_enc_key_t;

typedef struct fb_tenant {
    char *access_key;
    char *user_id;             /* "" when absent */
    char *encryption_key_text; /* the current key as written in the file, "" if none */
    fb_enc_key_t *enc_keys;    /* newest first: [0] is current */
    size_t n_enc_keys;         /* 0 = the tenant does not encrypt */
    /* SHA-256 of each token without the key claim (the original API's
     * tokens) that may act for this tenant; none when n_unbound_tokens is 0 */
    uint8_t (*unbound_tokens)[FB_TOKEN_SHA256_LEN];
    size_t n_unbound_tokens;
    bool disabled;
    int64_t tokens_not_before; /* unix seconds, 0 = unset */
    /* the names in "targets", in file order ({"file": "<key>.log"} is
     * "file"); none (n_targets 0): the [router] targets of fbpipe.conf */
    char **targets;
    size_t n_targets;
    size_t n_file_targets; /* 1 if "file" is one of them, else 0 */
} fb_tenant_t;

typedef struct fb_keydb {
    fb_tenant_t *tenants; /* sorted by access_key (bytewise) */
    size_t n_tenants;
    char *path;
} fb_keydb_t;

/* 1 if s[0..len) is an access key ([A-Za-z0-9._-], no leading dot, 1..128
 * bytes; s need not be NUL-terminated), else 0 with *why a static phrase
 * ("starts with a dot", ...). why may be NULL. */
int fb_access_key_valid(const char *s, size_t len, const char **why);

/* 1 if s[0..len) is an encryption key id ([A-Za-z0-9._-], 1..64 bytes), else 0. */
int fb_key_id_valid(const char *s, size_t len);

/* 1: out holds the key (32 characters are the raw bytes, 64 hex digits are
 * decoded); 0: s is empty (no encryption); -1: neither, *why a static phrase.
 * why may be NULL. out is untouched unless 1 is returned. */
int fb_enc_key_decode(const char *s, size_t len, uint8_t out[FB_ENC_KEY_LEN], const char **why);

/* 1 if s[0..len) is a target name ([a-z0-9_-], 1..32 bytes), else 0 with
 * *why a static phrase. why may be NULL. "file" is valid (the built-in
 * target's name); fbpipe.conf refuses it as a [target] section. */
int fb_target_name_valid(const char *s, size_t len, const char **why);

/* The whole database, or NULL after logging every problem (fb_log_errorx). */
fb_keydb_t *fb_keydb_load(const char *path);

/* Wipe every key and free; tolerates NULL and a half-built database. */
void fb_keydb_free(fb_keydb_t *db);

/* The tenant of access_key[0..len) (need not be NUL-terminated), or NULL. */
const fb_tenant_t *fb_keydb_find(const fb_keydb_t *db, const char *access_key, size_t len);

/* The tenant's key with this id (current or previous), or NULL. */
const fb_enc_key_t *fb_tenant_enc_key(const fb_tenant_t *t, const char *key_id);

/* 1 if the tenant lists this token fingerprint in unbound_tokens_sha256, else 0. */
int fb_tenant_lists_unbound(const fb_tenant_t *t, const uint8_t sha256[FB_TOKEN_SHA256_LEN]);

#endif /* FB_KEYS_H */
