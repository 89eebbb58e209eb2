/*
 * loaded.c -- the daemon-wide key set the master loads and its children
 * inherit: key database, token keys, TLS files (see loaded.h).
 *
 * It replaces the set whole or not at all, and wipes secrets it lets go.
 * It must never be called to load in a child: children run unprivileged
 * and keep what the master loaded before the fork.
 */
#include <string.h>

#include "common/loaded.h"
#include "common/secret.h"

static void loaded_wipe(fb_loaded_t *l);

static fb_loaded_t loaded;
static fb_revoke_t *revocations; /* the master's, inherited by the workers */

/* loaded_wipe -- wipe and free one set. */
static void
loaded_wipe(fb_loaded_t *l)
{
    fb_keydb_free(l->keydb);
    fb_auth_free(l->auth);
    if (l->tls_cert != NULL)
        fb_secret_free(l->tls_cert, l->tls_cert_len);
    if (l->tls_key != NULL)
        fb_secret_free(l->tls_key, l->tls_key_len);
    if (l->tls_ca != NULL)
        fb_secret_free(l->tls_ca, l->tls_ca_len);
    memset(l, 0, sizeof(*l));
}

/* fb_loaded_replace -- the key database, the token keys and the TLS
 * files, in the master. Replaces what was loaded only when all of it
 * loads: 0, or -1 after logging (the previous set stays). */
int
fb_loaded_replace(const fb_conf_t *conf)
{
    fb_loaded_t next = {0};

    next.keydb = fb_keydb_load(conf->keys_file);
    /* the targets a key names are the configuration's: the pair loads whole */
    if (next.keydb != NULL && fb_keydb_check_targets(next.keydb, conf) < 0) {
        loaded_wipe(&next);
        return -1;
    }
    next.auth = next.keydb ? fb_auth_new(conf) : NULL;
    if (next.auth == NULL ||
        (conf->tls_cert[0] != '\0' &&
         (fb_secret_read(conf->tls_cert, 0, 1, &next.tls_cert, &next.tls_cert_len) < 0 ||
          fb_secret_read(conf->tls_key, FB_SECRET_F_PRIVATE, 1, &next.tls_key,
                         &next.tls_key_len) < 0)) ||
        (conf->tls_client_ca[0] != '\0' &&
         fb_secret_read(conf->tls_client_ca, 0, 1, &next.tls_ca, &next.tls_ca_len) < 0)) {
        loaded_wipe(&next);
        return -1;
    }
    /* what the running calls may no longer do, for the workers */
    if (revocations != NULL && loaded.keydb != NULL)
        fb_revoke_publish(revocations, loaded.keydb, loaded.auth, next.keydb, next.auth);
    loaded_wipe(&loaded);
    loaded = next;
    return 0;
}

/* fb_loaded_free -- wipe and free what fb_loaded_replace loaded. */
void
fb_loaded_free(void)
{
    loaded_wipe(&loaded);
}

/* fb_loaded_get -- the set loaded in the master (a child's inherited copy). */
const fb_loaded_t *
fb_loaded_get(void)
{
    return &loaded;
}

/* fb_loaded_set_revoke -- see loaded.h. */
void
fb_loaded_set_revoke(fb_revoke_t *r)
{
    revocations = r;
}

/* fb_loaded_revoke -- the revocation table, or NULL. */
fb_revoke_t *
fb_loaded_revoke(void)
{
    return revocations;
}
