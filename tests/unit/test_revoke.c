/*
 * test_revoke.c -- the revocation table a reload publishes: which keys it
 * revokes (removed, disabled, tokens_not_before), that it keeps what an
 * earlier reload revoked while it still holds, that a worker's copy
 * follows the generations, and which calls a table ends.
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
