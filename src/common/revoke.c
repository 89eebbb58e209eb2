/*
 * revoke.c -- the table of what reloads revoked (see revoke.h): built by
 * the master from the key databases and token keys before and after a
 * reload, published in shared memory under a sequence lock, copied by the
 * workers. It never holds key material and never blocks a reader for
 * longer than one copy.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "common/revoke.h"

typedef struct shared {
    _Atomic uint64_t seq; /* odd while the master writes the table */
    fb_revoked_t table;
} shared_t;

struct fb_revoke {
    shared_t *sh;       /* MAP_SHARED: inherited by every child */
    fb_revoked_t *next; /* the master's scratch table */
};

fb_revoke_t *
fb_revoke_create(void)
{
    fb_revoke_t *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->next = calloc(1, sizeof(*r->next))) == NULL) {
        fb_log_errorx("out of memory for the revocation table");
        free(r);
        return NULL;
    }
    r->sh = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                 0);
    if (r->sh == MAP_FAILED) {
        fb_log_error("mmap(revocation table, %zu bytes) failed", sizeof(shared_t));
        free(r->next);
        free(r);
        return NULL;
    }
    return r; /* zero-filled: generation 0, nothing revoked */
}

void
fb_revoke_free(fb_revoke_t *r)
{
    if (r == NULL)
        return;
    munmap(r->sh, sizeof(shared_t));
    free(r->next);
    free(r);
}

static int
cmp_key(const void *a, const void *b)
{
    return strcmp(((const fb_revoke_key_t *)a)->key, ((const fb_revoke_key_t *)b)->key);
}

/* add_key -- key revoked as db says (absent or disabled: every token;
 * tokens_not_before: tokens issued before it); false when the table is
 * full. Keys already in t are skipped. */
static bool
add_key(fb_revoked_t *t, const fb_keydb_t *db, const char *key)
{
    const fb_tenant_t *tn = fb_keydb_find(db, key, strlen(key));
    int64_t not_before;

    if (tn == NULL || tn->disabled)
        not_before = FB_REVOKE_ALL;
    else if (tn->tokens_not_before > 0)
        not_before = tn->tokens_not_before;
    else
        return true; /* valid as it is */
    for (uint32_t i = 0; i < t->n_keys; i++)
        if (strcmp(t->keys[i].key, key) == 0)
            return true;
    if (t->n_keys == FB_REVOKE_KEYS_MAX)
        return false;
    memcpy(t->keys[t->n_keys].key, key, strlen(key) + 1); /* an access key: <= 128 bytes */
    t->keys[t->n_keys++].not_before = not_before;
    return true;
}

/* add_unbound -- (key, sha256) revoked when db's tenant key no longer
 * lists the fingerprint (a key disabled or removed is revoked whole, by
 * add_key); false when the table is full. Pairs already in t are skipped. */
static bool
add_unbound(fb_revoked_t *t, const fb_keydb_t *db, const char *key,
            const uint8_t sha256[FB_TOKEN_SHA256_LEN])
{
    const fb_tenant_t *tn = fb_keydb_find(db, key, strlen(key));

    if (tn == NULL || tn->disabled || fb_tenant_lists_unbound(tn, sha256))
        return true;
    for (uint32_t i = 0; i < t->n_unbound; i++)
        if (strcmp(t->unbound[i].key, key) == 0 &&
            memcmp(t->unbound[i].token_sha256, sha256, FB_TOKEN_SHA256_LEN) == 0)
            return true;
    if (t->n_unbound == FB_REVOKE_UNBOUND_MAX)
        return false;
    memcpy(t->unbound[t->n_unbound].key, key, strlen(key) + 1);
    memcpy(t->unbound[t->n_unbound++].token_sha256, sha256, FB_TOKEN_SHA256_LEN);
    return true;
}

void
fb_revoke_publish(fb_revoke_t *r, const fb_keydb_t *old_db, const fb_auth_t *old_auth,
                  const fb_keydb_t *db, const fb_auth_t *auth)
{
    const fb_revoked_t *prev = &r->sh->table; /* only the master writes it */
    fb_revoked_t *t = r->next;
    char kids[FB_REVOKE_KIDS_MAX][FB_AUTH_KID_MAX + 1];
    size_t n_kids;
    bool full = prev->all;

    memset(t, 0, sizeof(*t));
    t->generation = prev->generation + 1;
    /* every key the running calls may hold: the old database's and those
     * revoked before (an older generation may still be draining) */
    for (size_t i = 0; old_db != NULL && i < old_db->n_tenants && !full; i++)
        full = !add_key(t, db, old_db->tenants[i].access_key);
    for (uint32_t i = 0; i < prev->n_keys && !full; i++)
        full = !add_key(t, db, prev->keys[i].key);
    qsort(t->keys, t->n_keys, sizeof(t->keys[0]), cmp_key);
    for (size_t i = 0; old_db != NULL && i < old_db->n_tenants && !full; i++) {
        const fb_tenant_t *tn = &old_db->tenants[i];
        for (size_t j = 0; j < tn->n_unbound_tokens && !full; j++)
            full = !add_unbound(t, db, tn->access_key, tn->unbound_tokens[j]);
    }
    for (uint32_t i = 0; i < prev->n_unbound && !full; i++)
        full = !add_unbound(t, db, prev->unbound[i].key, prev->unbound[i].token_sha256);
    n_kids = fb_auth_removed_kids(old_auth, auth, kids, FB_REVOKE_KIDS_MAX);
    for (size_t i = 0; i < n_kids && i < FB_REVOKE_KIDS_MAX; i++)
        memcpy(t->kids[t->n_kids++], kids[i], sizeof(t->kids[0]));
    for (uint32_t i = 0; i < prev->n_kids && !full; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < t->n_kids && !seen; j++)
            seen = strcmp(t->kids[j], prev->kids[i]) == 0;
        if (seen)
            continue;
        if (t->n_kids == FB_REVOKE_KIDS_MAX)
            full = true;
        else
            memcpy(t->kids[t->n_kids++], prev->kids[i], sizeof(t->kids[0]));
    }
    full |= n_kids > FB_REVOKE_KIDS_MAX;
    t->all = full;
    if (full)
        fb_log_warnx("reload: more revocations than the table holds (%d keys, %d key ids, %d "
                     "unbound tokens): every call opened before this reload is ended; agents "
                     "reconnect",
                     FB_REVOKE_KEYS_MAX, FB_REVOKE_KIDS_MAX, FB_REVOKE_UNBOUND_MAX);
    else if (t->n_keys > 0 || t->n_kids > 0 || t->n_unbound > 0)
        fb_log_notice("reload: %u access keys, %u token key ids and %u unbound tokens revoked; "
                      "calls opened before it end",
                      t->n_keys, t->n_kids, t->n_unbound);
    /* sequence lock: readers retry while seq is odd or changed */
    atomic_fetch_add_explicit(&r->sh->seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    memcpy(&r->sh->table, t, sizeof(*t));
    atomic_thread_fence(memory_order_release);
    atomic_fetch_add_explicit(&r->sh->seq, 1, memory_order_acq_rel);
}

uint64_t
fb_revoke_generation(const fb_revoke_t *r)
{
    uint64_t s = atomic_load_explicit(&r->sh->seq, memory_order_acquire);

    return s / 2; /* one per publication */
}

bool
fb_revoke_refresh(const fb_revoke_t *r, fb_revoked_t *out)
{
    for (;;) {
        uint64_t s1 = atomic_load_explicit(&r->sh->seq, memory_order_acquire);
        if (s1 / 2 == out->generation && (s1 & 1) == 0)
            return false;
        if (s1 & 1) {
            usleep(100);
            continue;
        }
        memcpy(out, &r->sh->table, sizeof(*out));
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&r->sh->seq, memory_order_acquire) == s1) {
            out->generation = s1 / 2;
            return true;
        }
    }
}

bool
fb_revoked_check(const fb_revoked_t *t, const fb_auth_result_t *a, const char *key,
                 const char **why)
{
    if (t->all) {
        *why = "the key database was reloaded";
        return true;
    }
    for (uint32_t i = 0; i < t->n_kids; i++)
        if (strcmp(t->kids[i], a->kid) == 0) {
            *why = "the key that verified its token was removed or changed";
            return true;
        }
    /* an unbound token's stream as a whole (opened before the reload):
     * ended when any tenant dropped its fingerprint; its agent reconnects
     * and the new keys say which tenants still take it */
    for (uint32_t i = 0; a->unbound && (key == NULL || key[0] == '\0') && i < t->n_unbound; i++)
        if (memcmp(t->unbound[i].token_sha256, a->token_sha256, FB_TOKEN_SHA256_LEN) == 0) {
            *why = "an access key no longer lists its unbound token";
            return true;
        }
    return fb_revoked_check_key(t, a, key, why);
}

bool
fb_revoked_check_key(const fb_revoked_t *t, const fb_auth_result_t *a, const char *key,
                     const char **why)
{
    fb_revoke_key_t probe;
    const fb_revoke_key_t *e;

    if (key == NULL || key[0] == '\0')
        return false;
    for (uint32_t i = 0; a->unbound && i < t->n_unbound; i++)
        if (strcmp(t->unbound[i].key, key) == 0 &&
            memcmp(t->unbound[i].token_sha256, a->token_sha256, FB_TOKEN_SHA256_LEN) == 0) {
            *why = "the access key no longer lists its unbound token";
            return true;
        }
    snprintf(probe.key, sizeof(probe.key), "%s", key);
    e = bsearch(&probe, t->keys, t->n_keys, sizeof(t->keys[0]), cmp_key);
    if (e == NULL)
        return false;
    if (e->not_before == FB_REVOKE_ALL) {
        *why = "its access key was disabled or removed";
        return true;
    }
    if (!a->has_iat || a->iat < e->not_before) {
        *why = "its token was issued before the access key's tokens_not_before";
        return true;
    }
    return false;
}
