/*
 * test_hash.c -- common/hash.c is FNV-1a, 64 bits: the published vectors,
 * and a hash continued over parts equals the hash of the whole.
 */
#include <criterion/criterion.h>

#include "common/hash.h"

Test(hash, fnv1a_64_vectors)
{
    cr_assert_eq(fb_hash_str(""), 0xcbf29ce484222325ULL);
    cr_assert_eq(fb_hash_str("a"), 0xaf63dc4c8601ec8cULL);
    cr_assert_eq(fb_hash_str("foobar"), 0x85944171f73967e8ULL);
}

Test(hash, continued_over_parts)
{
    uint64_t h = fb_hash_more(FB_HASH_INIT, "foo", 3);

    cr_assert_eq(fb_hash_more(h, "bar", 3), fb_hash_str("foobar"));
    cr_assert_eq(fb_hash_more(FB_HASH_INIT, "x", 0), FB_HASH_INIT);
}
