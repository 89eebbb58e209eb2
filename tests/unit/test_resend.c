/*
 * test_resend.c -- the plugin's table of chunks sent without a final
 * answer: a chunk flushed again gets the seqs it had, a chunk answered
 * for good lets them go, an entry in use is never shared, a different
 * split gets new seqs, and a full table forgets its least recently used.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "plugin/resend.h"

static fb_resend_t table;

static void
init(void)
{
    cr_assert_geq(sodium_init(), 0);
    memset(&table, 0, sizeof(table));
}

TestSuite(resend, .init = init);

Test(resend, a_chunk_sent_again_keeps_its_seqs_until_answered)
{
    uint8_t h[FB_RESEND_HASH], other[FB_RESEND_HASH];
    uint64_t next = 10, first, again;
    int i;

    fb_resend_hash("app.log", "chunk-bytes", 11, NULL, 0, h);
    i = fb_resend_take(&table, h, 3, &next, &first);
    cr_assert_geq(i, 0);
    cr_assert_eq(first, 10);
    cr_assert_eq(next, 13);
    fb_resend_release(&table, i, false); /* RETRY: Fluent Bit flushes it again */
    /* another chunk meanwhile */
    fb_resend_hash("app.log", "other-bytes", 11, NULL, 0, other);
    int j = fb_resend_take(&table, other, 2, &next, &again);
    cr_assert_eq(again, 13);
    fb_resend_release(&table, j, true);
    /* the first chunk again: its seqs, nothing new allocated */
    i = fb_resend_take(&table, h, 3, &next, &again);
    cr_assert_eq(again, 10);
    cr_assert_eq(next, 15);
    fb_resend_release(&table, i, true); /* answered OK */
    /* the same bytes once more are another chunk: new seqs */
    i = fb_resend_take(&table, h, 3, &next, &again);
    cr_assert_eq(again, 15);
    cr_assert_eq(next, 18);
}

Test(resend, the_tag_is_part_of_the_chunk)
{
    uint8_t a[FB_RESEND_HASH], b[FB_RESEND_HASH], c[FB_RESEND_HASH];

    fb_resend_hash("ab", "c", 1, NULL, 0, a);
    fb_resend_hash("a", "bc", 2, NULL, 0, b);
    fb_resend_hash("ab", "c", 1, NULL, 0, c);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_eq(memcmp(a, c, sizeof(a)), 0);
}

Test(resend, an_entry_in_use_is_not_shared_and_a_new_split_gets_new_seqs)
{
    uint8_t h[FB_RESEND_HASH];
    uint64_t next = 1, first, second;

    fb_resend_hash("t", "same", 4, NULL, 0, h);
    int i = fb_resend_take(&table, h, 2, &next, &first);
    int j = fb_resend_take(&table, h, 2, &next, &second); /* same bytes, same group */
    cr_assert_neq(i, j);
    cr_assert_eq(first, 1);
    cr_assert_eq(second, 3);
    fb_resend_release(&table, i, false);
    fb_resend_release(&table, j, false);
    /* limits changed: 3 batches now, the old numbering does not fit */
    int k = fb_resend_take(&table, h, 3, &next, &first);
    cr_assert_eq(first, 5);
    cr_assert_eq(next, 8);
    fb_resend_release(&table, k, false);
}

Test(resend, a_full_table_forgets_the_least_recently_used)
{
    uint8_t h[FB_RESEND_HASH];
    uint64_t next = 0, first;

    for (uint32_t n = 0; n < FB_RESEND_MAX + 1; n++) {
        fb_resend_hash("t", &n, sizeof(n), NULL, 0, h);
        int i = fb_resend_take(&table, h, 1, &next, &first);
        cr_assert_geq(i, 0);
        cr_assert_eq(first, n);
        fb_resend_release(&table, i, false);
    }
    /* chunk 0 was forgotten for the last one: new seqs; chunk 1 is kept */
    uint32_t n = 1;
    fb_resend_hash("t", &n, sizeof(n), NULL, 0, h);
    fb_resend_release(&table, fb_resend_take(&table, h, 1, &next, &first), false);
    cr_assert_eq(first, 1);
    n = 0;
    fb_resend_hash("t", &n, sizeof(n), NULL, 0, h);
    fb_resend_take(&table, h, 1, &next, &first);
    cr_assert_eq(first, FB_RESEND_MAX + 1);
}

Test(resend, a_chunk_cut_otherwise_is_another_chunk)
{
    /* 10 events cut 5+5, then (new limits) 3+7: the same number of
     * batches, but batch 2's indices would name other events */
    const uint64_t five_five[] = {1000, 5, 5}, three_seven[] = {1000, 3, 7};
    const uint64_t smaller_records[] = {500, 5, 5};
    uint8_t a[FB_RESEND_HASH], b[FB_RESEND_HASH], c[FB_RESEND_HASH], d[FB_RESEND_HASH];
    uint64_t next = 1, first, again;

    fb_resend_hash("t", "ten events", 10, five_five, 3, a);
    fb_resend_hash("t", "ten events", 10, three_seven, 3, b);
    fb_resend_hash("t", "ten events", 10, smaller_records, 3, c);
    fb_resend_hash("t", "ten events", 10, five_five, 3, d);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_neq(memcmp(a, c, sizeof(a)), 0);
    cr_assert_eq(memcmp(a, d, sizeof(a)), 0);
    int i = fb_resend_take(&table, a, 2, &next, &first);
    fb_resend_release(&table, i, false);
    i = fb_resend_take(&table, b, 2, &next, &again);
    cr_assert_neq(again, first, "a chunk cut otherwise took the seqs of its last cut");
    fb_resend_release(&table, i, false);
    i = fb_resend_take(&table, d, 2, &next, &again);
    cr_assert_eq(again, first);
}
