/*
 * revoke.h -- what a reload revoked, published by the master to every
 * worker through shared memory, so that streams opened before the reload
 * stop writing for a tenant disabled, deleted or whose tokens were revoked
 * (tokens_not_before), for tokens a removed or changed key verified, and
 * for unbound legacy tokens whose fingerprint a tenant no longer lists.
 *
 * Workers run unprivileged and cannot read the key database again; the
 * master maps this table before it forks, rewrites it on each reload
 * (a sequence lock: odd while it writes) and workers copy it whenever its
 * generation changes. Entries carry no key material, only access keys,
 * token key ids and SHA-256 fingerprints of unbound tokens (what
 * keys.json holds of them). The table is bounded: past its limits it
 * says "everything opened before generation N", and workers end those
 * calls whole (the agents reconnect and authenticate again).
 */
#ifndef FB_REVOKE_H
#define FB_REVOKE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/auth.h"
#include "common/keys.h"

#define FB_REVOKE_KEYS_MAX 4096
#define FB_REVOKE_KIDS_MAX 64
#define FB_REVOKE_UNBOUND_MAX 256
#define FB_REVOKE_ALL INT64_MAX /* not_before: every token of the key */

typedef struct fb_revoke_key {
    char key[FB_ACCESS_KEY_MAX + 1];
    int64_t not_before; /* tokens issued before (unix s) are refused; FB_REVOKE_ALL */
} fb_revoke_key_t;

/* An unbound token a tenant listed and no longer lists. */
typedef struct fb_revoke_unbound {
    char key[FB_ACCESS_KEY_MAX + 1];
    uint8_t token_sha256[FB_TOKEN_SHA256_LEN];
} fb_revoke_unbound_t;

/* What a worker holds: a copy of the table at one generation. */
typedef struct fb_revoked {
    uint64_t generation;
    bool all;           /* the table overflowed: every call counts as revoked */
    uint32_t n_keys, n_kids, n_unbound;
    fb_revoke_key_t keys[FB_REVOKE_KEYS_MAX]; /* sorted by key (bytewise) */
    char kids[FB_REVOKE_KIDS_MAX][FB_AUTH_KID_MAX + 1];
    fb_revoke_unbound_t unbound[FB_REVOKE_UNBOUND_MAX];
} fb_revoked_t;

typedef struct fb_revoke fb_revoke_t;

/* The shared table, empty (generation 0); in the master before any fork.
 * NULL after logging. */
fb_revoke_t *fb_revoke_create(void);
void fb_revoke_free(fb_revoke_t *r);

/* The master, on a reload from (old_db, old_auth) to (db, auth): the keys
 * deleted or disabled, the tokens_not_before raised, the key ids removed
 * or changed, the unbound_tokens_sha256 entries a tenant dropped, added to
 * what earlier reloads revoked and still holds.
 * Returns how many keys and kids the new table holds; logs a summary. */
void fb_revoke_publish(fb_revoke_t *r, const fb_keydb_t *old_db, const fb_auth_t *old_auth,
                       const fb_keydb_t *db, const fb_auth_t *auth);

/* The generation of the shared table (cheap: one atomic load). */
uint64_t fb_revoke_generation(const fb_revoke_t *r);

/* Copy the table into out when its generation differs from out's; true
 * when out changed. */
bool fb_revoke_refresh(const fb_revoke_t *r, fb_revoked_t *out);

/* Whether a call authenticated as a (its access key, iat, kid) is revoked
 * by t; *why a static phrase when it is. key is the tenant the call
 * writes for (a bound token's key, or an event's for an unbound one; ""
 * for an unbound stream as a whole: ended when any key dropped its
 * fingerprint). */
bool fb_revoked_check(const fb_revoked_t *t, const fb_auth_result_t *a, const char *key,
                      const char **why);
/* The same for the access key alone (and an unbound token's fingerprint
 * under it; no key ids, no overflow): what a call
 * that authenticated after t was published is still subject to. */
bool fb_revoked_check_key(const fb_revoked_t *t, const fb_auth_result_t *a, const char *key,
                          const char **why);

#endif /* FB_REVOKE_H */
