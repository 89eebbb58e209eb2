/*
 * keys.h -- the key database (keys.json): tenants, their access keys,
 * user ids, encryption keys and token lifecycle.
 *
 * Loading validates everything; a loaded database is read-only and can be
 * swapped whole on reload. Never logs key material.
 */
#ifndef FB_KEYS_H
#define FB_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_ACCESS_KEY_MAX 128
#define FB_KEY_ID_MAX 64
#define FB_USER_ID_MAX 256
#define FB_ENC_KEY_LEN 32
#define FB_ENC_KEYS_MAX 64
#define FB_KEYDB_FILE_MAX (64 * 1024 * 1024)

typedef struct fb_enc_key {
    char id[FB_KEY_ID_MAX + 1];
    uint8_t key[FB_ENC_KEY_LEN];
} fb_enc_key_t;

typedef struct fb_tenant {
    char *access_key;
    char *user_id;
    char *encryption_key_text; /* the current key as written in the file, "" if none */
    fb_enc_key_t *enc_keys;    /* newest first: [0] is current */
    size_t n_enc_keys;         /* 0 = the tenant does not encrypt */
    bool allow_unbound_tokens;
    bool disabled;
    int64_t tokens_not_before; /* unix seconds, 0 = unset */
    size_t n_file_targets;
} fb_tenant_t;

typedef struct fb_keydb {
    fb_tenant_t *tenants; /* sorted by access_key */
    size_t n_tenants;
    char *path;
} fb_keydb_t;

int fb_access_key_valid(const char *s, size_t len, const char **why);
int fb_key_id_valid(const char *s, size_t len);
int fb_enc_key_decode(const char *s, size_t len, uint8_t out[FB_ENC_KEY_LEN], const char **why);

fb_keydb_t *fb_keydb_load(const char *path);
void fb_keydb_free(fb_keydb_t *db);
const fb_tenant_t *fb_keydb_find(const fb_keydb_t *db, const char *access_key, size_t len);
const fb_enc_key_t *fb_tenant_enc_key(const fb_tenant_t *t, const char *key_id);

#endif /* FB_KEYS_H */
