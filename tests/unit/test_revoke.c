/*
 * test_revoke.c -- the revocation table a reload publishes: which keys it
 * revokes (removed, disabled, tokens_not_before), that it keeps what an
 * earlier reload revoked while it still holds, that a worker's copy
 * follows the generations, which calls a table ends, and the unbound
 * tokens a tenant stops listing.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "common/revoke.h"
#include "helpers.h"

TestSuite(revoke, .init = test_setup, .fini = test_teardown);

static fb_keydb_t *
load(const char *json)
{
    fb_keydb_t *db = fb_keydb_load(test_write("keys.json", json, 0600));

    cr_assert_not_null(db, "%s", test_log_buf);
    return db;
}

static fb_auth_result_t
call(const char *key, int64_t iat, const char *kid)
{
    fb_auth_result_t a;

    memset(&a, 0, sizeof(a));
    snprintf(a.access_key, sizeof(a.access_key), "%s", key);
    a.has_iat = true;
    a.iat = iat;
    snprintf(a.kid, sizeof(a.kid), "%s", kid);
    return a;
}

Test(revoke, a_reload_revokes_removed_disabled_and_older_tokens)
{
    fb_keydb_t *before = load("{\"a\": {}, \"b\": {}, \"c\": {}, \"d\": {}}");
    fb_keydb_t *after = load("{\"b\": {\"disabled\": true}, \"c\": {\"tokens_not_before\": 1000},"
                             " \"d\": {}, \"e\": {}}");
    fb_revoke_t *r = fb_revoke_create();
    fb_revoked_t *t = calloc(1, sizeof(*t));
    const char *why;

    cr_assert_not_null(r);
    cr_assert_not(fb_revoke_refresh(r, t), "generation 0: nothing to copy");
    fb_revoke_publish(r, before, NULL, after, NULL);
    cr_assert_eq(fb_revoke_generation(r), 1);
    cr_assert(fb_revoke_refresh(r, t));
    cr_assert_eq(t->generation, 1);
    cr_assert_eq(t->n_keys, 3, "a (removed), b (disabled), c (tokens_not_before)");
    fb_auth_result_t a = call("a", 2000, ""), b = call("b", 2000, ""), c_old = call("c", 999, ""),
                     c_new = call("c", 1000, ""), d = call("d", 0, ""), e = call("e", 0, "");
    cr_assert(fb_revoked_check(t, &a, "a", &why));
    cr_assert_str_eq(why, "its access key was disabled or removed");
    cr_assert(fb_revoked_check(t, &b, "b", &why));
    cr_assert(fb_revoked_check(t, &c_old, "c", &why));
    cr_assert_not(fb_revoked_check(t, &c_new, "c", &why), "issued at tokens_not_before: valid");
    cr_assert_not(fb_revoked_check(t, &d, "d", &why));
    cr_assert_not(fb_revoked_check(t, &e, "e", &why));
    /* an unbound token writing for a revoked tenant (the event's key) */
    fb_auth_result_t u = call("", 2000, "");
    cr_assert(fb_revoked_check(t, &u, "b", &why));
    cr_assert_not(fb_revoked_check(t, &u, "d", &why));
    cr_assert_not(fb_revoke_refresh(r, t), "unchanged");
    free(t);
    fb_revoke_free(r);
    fb_keydb_free(before);
    fb_keydb_free(after);
}

Test(revoke, what_an_earlier_reload_revoked_stays_while_it_holds)
{
    fb_keydb_t *one = load("{\"a\": {}, \"b\": {}}");
    fb_keydb_t *two = load("{\"b\": {}}");             /* a removed */
    fb_keydb_t *three = load("{\"b\": {}, \"z\": {}}"); /* a still absent */
    fb_keydb_t *four = load("{\"a\": {}, \"b\": {}, \"z\": {}}"); /* a back */
    fb_revoke_t *r = fb_revoke_create();
    fb_revoked_t *t = calloc(1, sizeof(*t));
    fb_auth_result_t a = call("a", 2000, "");
    const char *why;

    fb_revoke_publish(r, one, NULL, two, NULL);
    fb_revoke_publish(r, two, NULL, three, NULL);
    cr_assert(fb_revoke_refresh(r, t));
    cr_assert_eq(t->generation, 2);
    cr_assert(fb_revoked_check(t, &a, "a", &why), "an older generation may still drain");
    fb_revoke_publish(r, three, NULL, four, NULL);
    cr_assert(fb_revoke_refresh(r, t));
    cr_assert_eq(t->n_keys, 0, "a is valid again");
    free(t);
    fb_revoke_free(r);
    fb_keydb_free(one);
    fb_keydb_free(two);
    fb_keydb_free(three);
    fb_keydb_free(four);
}

Test(revoke, key_ids_and_the_key_only_check)
{
    fb_revoked_t *t = calloc(1, sizeof(*t));
    fb_auth_result_t k1 = call("a", 2000, "k1"), k2 = call("a", 2000, "k2");
    const char *why;

    t->generation = 3;
    t->n_kids = 1;
    snprintf(t->kids[0], sizeof(t->kids[0]), "k1");
    cr_assert(fb_revoked_check(t, &k1, "a", &why));
    cr_assert_str_eq(why, "the key that verified its token was removed or changed");
    cr_assert_not(fb_revoked_check(t, &k2, "a", &why));
    cr_assert_not(fb_revoked_check_key(t, &k1, "a", &why), "key ids are not the key's");
    t->all = true;
    cr_assert(fb_revoked_check(t, &k2, "a", &why), "an overflowed table ends every call");
    cr_assert_not(fb_revoked_check_key(t, &k2, "a", &why));
    free(t);
}

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static fb_auth_result_t
unbound_call(uint8_t fill)
{
    fb_auth_result_t a = call("", 2000, "");

    a.unbound = true;
    memset(a.token_sha256, fill, sizeof(a.token_sha256));
    return a;
}

Test(revoke, an_unbound_token_a_tenant_no_longer_lists)
{
    fb_keydb_t *one = load("{\"a\": {\"unbound_tokens_sha256\": [\"" FP_A "\", \"" FP_B "\"]},"
                           " \"b\": {\"unbound_tokens_sha256\": [\"" FP_A "\"]}}");
    fb_keydb_t *two = load("{\"a\": {\"unbound_tokens_sha256\": [\"" FP_B "\"]},"
                           " \"b\": {\"unbound_tokens_sha256\": [\"" FP_A "\"]}}");
    fb_keydb_t *three = load("{\"a\": {\"unbound_tokens_sha256\": [\"" FP_B "\"]}, \"b\": {}}");
    fb_keydb_t *four = load("{\"a\": {\"unbound_tokens_sha256\": [\"" FP_A "\", \"" FP_B "\"]},"
                            " \"b\": {\"unbound_tokens_sha256\": [\"" FP_A "\"]}}");
    fb_revoke_t *r = fb_revoke_create();
    fb_revoked_t *t = calloc(1, sizeof(*t));
    fb_auth_result_t ua = unbound_call(0xaa), ub = unbound_call(0xbb);
    const char *why;

    /* a drops fingerprint A; b keeps it */
    fb_revoke_publish(r, one, NULL, two, NULL);
    cr_assert(fb_revoke_refresh(r, t));
    cr_assert_eq(t->n_unbound, 1);
    cr_assert_eq(t->n_keys, 0, "no key is revoked whole");
    cr_assert(fb_revoked_check_key(t, &ua, "a", &why), "token A writing for a");
    cr_assert_str_eq(why, "the access key no longer lists its unbound token");
    cr_assert_not(fb_revoked_check_key(t, &ua, "b", &why), "b still lists A");
    cr_assert_not(fb_revoked_check_key(t, &ub, "a", &why), "a still lists B");
    cr_assert(fb_revoked_check(t, &ua, "", &why), "a stream of token A opened before: ended");
    cr_assert_str_eq(why, "an access key no longer lists its unbound token");
    cr_assert_not(fb_revoked_check_key(t, &ua, "", &why),
                  "authenticated since: the keys it writes for decide");
    cr_assert_not(fb_revoked_check(t, &ub, "", &why));
    fb_auth_result_t bound = call("a", 2000, "");
    memset(bound.token_sha256, 0xaa, sizeof(bound.token_sha256));
    cr_assert_not(fb_revoked_check(t, &bound, "a", &why), "a bound token is not unbound");

    /* b drops A too; a's entry still holds */
    fb_revoke_publish(r, two, NULL, three, NULL);
    cr_assert(fb_revoke_refresh(r, t));
    cr_assert_eq(t->n_unbound, 2);
    cr_assert(fb_revoked_check_key(t, &ua, "a", &why));
    cr_assert(fb_revoked_check_key(t, &ua, "b", &why));

    /* listed again: nothing revoked */
    fb_revoke_publish(r, three, NULL, four, NULL);
    cr_assert(fb_revoke_refresh(r, t));
    cr_assert_eq(t->n_unbound, 0);
    cr_assert_not(fb_revoked_check(t, &ua, "", &why));
    free(t);
    fb_revoke_free(r);
    fb_keydb_free(one);
    fb_keydb_free(two);
    fb_keydb_free(three);
    fb_keydb_free(four);
}

Test(revoke, a_removed_tenant_revokes_whole_not_per_unbound_token)
{
    fb_keydb_t *one = load("{\"a\": {\"unbound_tokens_sha256\": [\"" FP_A "\"]}, \"b\": {}}");
    fb_keydb_t *two = load("{\"b\": {}}");
    fb_revoke_t *r = fb_revoke_create();
    fb_revoked_t *t = calloc(1, sizeof(*t));
    fb_auth_result_t ua = unbound_call(0xaa);
    const char *why;

    fb_revoke_publish(r, one, NULL, two, NULL);
    cr_assert(fb_revoke_refresh(r, t));
    cr_assert_eq(t->n_unbound, 0, "the key's own entry covers its tokens");
    cr_assert_eq(t->n_keys, 1);
    cr_assert(fb_revoked_check_key(t, &ua, "a", &why));
    cr_assert_str_eq(why, "its access key was disabled or removed");
    free(t);
    fb_revoke_free(r);
    fb_keydb_free(one);
    fb_keydb_free(two);
}
