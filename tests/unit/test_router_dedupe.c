/*
 * test_router_dedupe.c -- router.dedupe's sets: batches out of order are
 * all written (no high-water mark), a replayed batch is dropped, a
 * partial replay writes only its missing records, the window forgets the
 * oldest batches, a set evicted (memory budget) or forgotten is loaded
 * again from its file (buffered lines, the file, the rotated file), and a
 * roll back takes the identities of the lines it cuts with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

#include "router/router_dedupe.h"
#include "router/router_files.h"

#define EPOCH 0x1122334455667788ULL

TestSuite(dedupe, .init = test_mkdir, .fini = test_rmdir);

static fb_files_t *
files(unsigned keep, uint64_t rotate_size)
{
    fb_files_opts_t o = {.dir = test_dir, .max_open = 4, .rotate_keep = keep,
                         .rotate_size = rotate_size, .durable = true};
    char err[256];
    fb_files_t *f = fb_files_new(&o, err, sizeof(err));

    cr_assert_not_null(f, "%s", err);
    return f;
}

/* check -- fb_dedupe_check of (EPOCH, seq, index) for key. */
static int
check(fb_dedupe_t *d, const char *key, uint64_t seq, uint64_t index)
{
    fb_dedupe_id_t id = {.epoch = EPOCH, .seq = seq, .index = index};

    return fb_dedupe_check(d, key, &id);
}

/* take -- as the router does: the record's line is buffered when its key's
 * set (loaded from the file first) does not hold it; true when buffered. */
static bool
take(fb_dedupe_t *d, fb_files_t *f, const char *key, uint64_t seq, uint64_t index)
{
    char line[160];
    int n;

    if (!fb_dedupe_loaded(d, key))
        cr_assert_eq(fb_dedupe_load(d, f, key, NULL, NULL), 0);
    if (check(d, key, seq, index) == FB_DEDUPE_DUP)
        return false;
    n = snprintf(line, sizeof(line),
                 "{\"time\":\"2026-12-01T00:00:00.000000000Z\",\"fbpipe_id\":\"%016llx-%llu-"
                 "%llu\",\"tag\":\"t\",\"message\":\"m\"}\n",
                 (unsigned long long)EPOCH, (unsigned long long)seq, (unsigned long long)index);
    cr_assert_eq(fb_files_add(f, key, line, (size_t)n), 0);
    return true;
}

static void
flush(fb_files_t *f)
{
    char err[256];

    cr_assert_eq(fb_files_flush(f, true, err, sizeof(err)), 0, "%s", err);
}

/* lines -- lines of dir/file (0 when absent). */
static size_t
lines(const char *file)
{
    char path[256];
    size_t n = 0;
    int c;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", test_dir, file);
    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    while ((c = fgetc(fp)) != EOF)
        n += c == '\n';
    fclose(fp);
    return n;
}

Test(dedupe, batches_out_of_order_are_all_written_and_a_replay_dropped)
{
    fb_dedupe_t *d = fb_dedupe_new(1000, 1 << 20);

    cr_assert_eq(fb_dedupe_start(d, "k"), 0);
    /* batch 5 reaches the partition before batch 4 (a producer's retry):
     * a high-water mark would drop 4 */
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(check(d, "k", 5, i), FB_DEDUPE_NEW);
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(check(d, "k", 4, i), FB_DEDUPE_NEW, "the late batch is written");
    /* then both again (read again after a crash) */
    for (uint64_t i = 0; i < 3; i++) {
        cr_assert_eq(check(d, "k", 4, i), FB_DEDUPE_DUP);
        cr_assert_eq(check(d, "k", 5, i), FB_DEDUPE_DUP);
    }
    /* the same sequence from another agent instance is another batch */
    fb_dedupe_id_t other = {.epoch = EPOCH + 1, .seq = 4, .index = 0};
    cr_assert_eq(fb_dedupe_check(d, "k", &other), FB_DEDUPE_NEW);
    /* and another key's set is its own */
    cr_assert_eq(check(d, "j", 4, 0), FB_DEDUPE_NEW);
    cr_assert_eq(fb_dedupe_ids(d), 8);
    fb_dedupe_free(d);
}

Test(dedupe, a_partial_replay_writes_only_the_missing_records)
{
    fb_dedupe_t *d = fb_dedupe_new(1000, 1 << 20);

    cr_assert_eq(fb_dedupe_start(d, "k"), 0);
    /* records 0, 1 and 4 of batch 9 made it before the crash */
    cr_assert_eq(check(d, "k", 9, 0), FB_DEDUPE_NEW);
    cr_assert_eq(check(d, "k", 9, 1), FB_DEDUPE_NEW);
    cr_assert_eq(check(d, "k", 9, 4), FB_DEDUPE_NEW);
    /* the whole batch again: 2 and 3 are written, and only they */
    int expect[6] = {FB_DEDUPE_DUP, FB_DEDUPE_DUP, FB_DEDUPE_NEW,
                     FB_DEDUPE_NEW, FB_DEDUPE_DUP, FB_DEDUPE_NEW};
    for (uint64_t i = 0; i < 6; i++)
        cr_assert_eq(check(d, "k", 9, i), expect[i], "index %llu", (unsigned long long)i);
    for (uint64_t i = 0; i < 6; i++)
        cr_assert_eq(check(d, "k", 9, i), FB_DEDUPE_DUP);
    cr_assert_eq(fb_dedupe_ids(d), 6);
    /* an index no range can hold is never dropped (at least once) */
    cr_assert_eq(check(d, "k", 9, UINT64_MAX), FB_DEDUPE_NEW);
    cr_assert_eq(check(d, "k", 9, UINT64_MAX), FB_DEDUPE_NEW);
    fb_dedupe_free(d);
}

Test(dedupe, the_window_forgets_the_oldest_batches_first)
{
    fb_dedupe_t *d = fb_dedupe_new(4, 1 << 20);

    cr_assert_eq(fb_dedupe_start(d, "k"), 0);
    for (uint64_t s = 1; s <= 6; s++)
        cr_assert_eq(check(d, "k", s, 0), FB_DEDUPE_NEW);
    cr_assert_eq(fb_dedupe_ids(d), 4);
    /* 3..6 are held; 1 and 2, older than the window, are written again */
    for (uint64_t s = 3; s <= 6; s++)
        cr_assert_eq(check(d, "k", s, 0), FB_DEDUPE_DUP);
    cr_assert_eq(check(d, "k", 1, 0), FB_DEDUPE_NEW);
    fb_dedupe_free(d);
}

Test(dedupe, a_set_is_loaded_again_from_its_file_and_buffer)
{
    fb_files_t *f = files(0, 0);
    fb_dedupe_t *d = fb_dedupe_new(1000, 1 << 20);
    uint64_t read, bytes;

    for (uint64_t s = 1; s <= 3; s++)
        for (uint64_t i = 0; i < 2; i++)
            cr_assert(take(d, f, "k", s, i));
    flush(f);
    cr_assert(take(d, f, "k", 4, 0)); /* buffered, not written yet */
    /* a restart, or the set dropped for memory: only the file tells */
    fb_dedupe_forget_all(d);
    cr_assert_not(fb_dedupe_loaded(d, "k"));
    cr_assert_eq(fb_dedupe_load(d, f, "k", &read, &bytes), 0);
    cr_assert_eq(read, 7);
    cr_assert_gt(bytes, 0);
    cr_assert_eq(fb_dedupe_ids(d), 7);
    for (uint64_t s = 1; s <= 3; s++)
        for (uint64_t i = 0; i < 2; i++)
            cr_assert_not(take(d, f, "k", s, i), "batch %llu", (unsigned long long)s);
    cr_assert_not(take(d, f, "k", 4, 0), "the buffered line counts");
    cr_assert(take(d, f, "k", 4, 1));
    flush(f);
    cr_assert_eq(lines("k.log"), 8);
    /* a new router on the same files knows them all */
    fb_files_free(f);
    fb_dedupe_free(d);
    f = files(0, 0);
    d = fb_dedupe_new(1000, 1 << 20);
    for (uint64_t s = 1; s <= 4; s++)
        cr_assert_not(take(d, f, "k", s, 0));
    cr_assert(take(d, f, "k", 5, 0));
    flush(f);
    cr_assert_eq(lines("k.log"), 9);
    fb_files_free(f);
    fb_dedupe_free(d);
}

Test(dedupe, a_load_reads_the_window_and_the_rotated_file)
{
    /* a file of ~3 lines, then rotated: .log and .log.1 are read */
    fb_files_t *f = files(2, 400);
    fb_dedupe_t *d = fb_dedupe_new(5, 1 << 20);

    for (uint64_t s = 1; s <= 8; s++) {
        cr_assert(take(d, f, "k", s, 0));
        flush(f);
    }
    cr_assert_gt(lines("k.log.1"), 0);
    cr_assert_lt(lines("k.log"), 5, "the window reaches into k.log.1");
    fb_dedupe_forget(d, "k");
    cr_assert_eq(fb_dedupe_load(d, f, "k", NULL, NULL), 0);
    cr_assert_eq(fb_dedupe_ids(d), 5, "the last 5, no more");
    for (uint64_t s = 4; s <= 8; s++)
        cr_assert_eq(check(d, "k", s, 0), FB_DEDUPE_DUP, "batch %llu", (unsigned long long)s);
    cr_assert_eq(check(d, "k", 3, 0), FB_DEDUPE_NEW);
    fb_files_free(f);
    fb_dedupe_free(d);
}

Test(dedupe, a_load_reads_at_most_its_bytes)
{
    fb_files_t *f = files(0, 0);
    fb_dedupe_t *d = fb_dedupe_new(1000, 1 << 20);

    for (uint64_t s = 1; s <= 200; s++)
        cr_assert(take(d, f, "k", s, 0));
    flush(f);
    /* a router started afresh, reading 4 KiB of ~100-byte lines: not all 200 */
    fb_dedupe_free(d);
    d = fb_dedupe_new(1000, 1 << 20);
    fb_dedupe_set_load_max(d, 4096);
    cr_assert_eq(fb_dedupe_load(d, f, "k", NULL, NULL), 0);
    cr_assert_gt(fb_dedupe_ids(d), 0);
    cr_assert_lt(fb_dedupe_ids(d), 200, "%llu", (unsigned long long)fb_dedupe_ids(d));
    cr_assert_eq(check(d, "k", 200, 0), FB_DEDUPE_DUP, "the newest are read");
    cr_assert_eq(check(d, "k", 1, 0), FB_DEDUPE_NEW, "the oldest are not: written again");
    fb_files_free(f);
    fb_dedupe_free(d);
}

Test(dedupe, the_memory_budget_evicts_idle_keys_and_they_load_again)
{
    fb_files_t *f = files(0, 0);
    fb_dedupe_t *d = fb_dedupe_new(1000, 256 << 10);
    char key[16];

    for (int k = 0; k < 3000; k++) {
        snprintf(key, sizeof(key), "key%d", k);
        for (uint64_t i = 0; i < 4; i++)
            cr_assert(take(d, f, key, 1, i * 2)); /* 4 ranges per batch */
        if (k % 100 == 99)
            flush(f);
    }
    flush(f);
    cr_assert_leq(fb_dedupe_memory(d), 256 << 10);
    cr_assert_lt(fb_dedupe_keys(d), 3000, "some sets were evicted");
    cr_assert(!fb_dedupe_loaded(d, "key0"), "the least recently used first");
    /* every replay is still dropped, evicted or not */
    for (int k = 0; k < 3000; k += 7) {
        snprintf(key, sizeof(key), "key%d", k);
        for (uint64_t i = 0; i < 4; i++)
            cr_assert_not(take(d, f, key, 1, i * 2), "%s", key);
        cr_assert(take(d, f, key, 1, 1));
    }
    cr_assert_leq(fb_dedupe_memory(d), 256 << 10);
    fb_files_free(f);
    fb_dedupe_free(d);
}

Test(dedupe, a_roll_back_takes_the_identities_of_the_lines_it_cuts)
{
    fb_files_t *f = files(0, 0);
    fb_dedupe_t *d = fb_dedupe_new(1000, 1 << 20);
    char err[256];

    cr_assert(take(d, f, "k", 1, 0));
    flush(f);
    fb_files_checkpoint(f); /* offsets stored */
    cr_assert(take(d, f, "k", 2, 0));
    cr_assert(take(d, f, "k", 2, 1));
    flush(f);
    cr_assert(take(d, f, "k", 3, 0)); /* buffered */
    cr_assert_eq(lines("k.log"), 3);
    /* a sync failed: the file is cut back to the checkpoint, the buffer
     * dropped, and the router forgets the sets (router_main.c roll_back) */
    cr_assert_eq(fb_files_rollback(f, err, sizeof(err)), 0, "%s", err);
    fb_dedupe_forget_all(d);
    cr_assert_eq(lines("k.log"), 1);
    /* the records read again are written again, but the one the file kept */
    cr_assert_not(take(d, f, "k", 1, 0));
    cr_assert(take(d, f, "k", 2, 0));
    cr_assert(take(d, f, "k", 2, 1));
    cr_assert(take(d, f, "k", 3, 0));
    flush(f);
    cr_assert_eq(lines("k.log"), 4);
    fb_files_free(f);
    fb_dedupe_free(d);
}

Test(dedupe, a_file_end_with_half_a_line_and_foreign_lines_add_nothing)
{
    char path[256];
    FILE *fp;
    fb_files_t *f = files(0, 0);
    fb_dedupe_t *d = fb_dedupe_new(1000, 1 << 20);

    snprintf(path, sizeof(path), "%s/k.log", test_dir);
    fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fprintf(fp, "{\"time\":\"2026-12-01T00:00:00.000000000Z\",\"fbpipe_id\":\"%016llx-1-0\"}\n",
            (unsigned long long)EPOCH);
    fprintf(fp, "not a line of fbpipe's\n{\"time\":\"2026\"}\n\n");
    /* a crash in the middle of a line: the line is not in the file */
    fprintf(fp, "{\"time\":\"2026-12-01T00:00:00.000000000Z\",\"fbpipe_id\":\"%016llx-2-0\"",
            (unsigned long long)EPOCH);
    fclose(fp);
    cr_assert_eq(fb_dedupe_load(d, f, "k", NULL, NULL), 0);
    cr_assert_eq(fb_dedupe_ids(d), 1);
    cr_assert_eq(check(d, "k", 1, 0), FB_DEDUPE_DUP);
    cr_assert_eq(check(d, "k", 2, 0), FB_DEDUPE_NEW);
    fb_files_free(f);
    fb_dedupe_free(d);
}
