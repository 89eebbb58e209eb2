/*
 * loaded.h -- the daemon-wide key set: the key database, the token keys
 * and the TLS files the master loads (again on each reload) and every
 * child inherits through fork, and the revocation table a reload
 * publishes to.
 *
 * Only the master loads or replaces the set: secrets, keys and TLS files
 * may be readable by root alone, and the children drop privileges after
 * fork. A child only reads what it inherited and never loads again; it
 * may wipe its copy when it exits.
 */
#ifndef FB_LOADED_H
#define FB_LOADED_H

#include <stddef.h>
#include <stdint.h>

#include "common/auth.h"
#include "common/conf.h"
#include "common/keys.h"
#include "common/revoke.h"

typedef struct fb_loaded {
    fb_keydb_t *keydb; /* NULL until loaded */
    fb_auth_t *auth;
    uint8_t *tls_cert, *tls_key, *tls_ca; /* NULL when not configured */
    size_t tls_cert_len, tls_key_len, tls_ca_len;
} fb_loaded_t;

/* master: load the set conf names; it replaces the current one only when
 * all of it loads (and publishes what the change revokes): 0, or -1 after
 * logging, the current set kept */
int fb_loaded_replace(const fb_conf_t *conf);
/* wipe and free the set (master at exit; a child at exit) */
void fb_loaded_free(void);
/* the set as loaded (fields NULL when nothing is) */
const fb_loaded_t *fb_loaded_get(void);

/* The revocation table the master publishes to on each replacement (set
 * before the first fork, so that every child inherits it), or NULL. */
void fb_loaded_set_revoke(fb_revoke_t *r);
fb_revoke_t *fb_loaded_revoke(void);

#endif /* FB_LOADED_H */
