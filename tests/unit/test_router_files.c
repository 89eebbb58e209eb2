/*
 * test_router_files.c -- the router's per-key files: lines in order, more
 * keys than descriptors, a symlink or a FIFO refused, a half line cut
 * back, rotation by size without a line split or lost, rotation by age
 * from the file's last write, reopen after an outside rotation, a
 * file-size limit hit then lifted (no half line, nothing lost), a file
 * that can never be written refusing its key alone, hard links refused,
 * and thousands of keys through few descriptors.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#include "router/router_files.h"

TestSuite(files, .init = test_mkdir, .fini = test_rmdir);

/* slurp -- a file of dir (NULL when absent); *len its size. */
static char *
slurp(const char *file, size_t *len)
{
    char path[256], *buf;
    FILE *fp;
    long n;

    snprintf(path, sizeof(path), "%s/%s", test_dir, file);
    fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    buf = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static fb_files_t *
files(size_t max_open, uint64_t rotate_size, unsigned keep)
{
    fb_files_opts_t o = {.dir = test_dir, .max_open = max_open, .rotate_size = rotate_size,
                         .rotate_keep = keep};
    char err[256];
    fb_files_t *f = fb_files_new(&o, err, sizeof(err));

    cr_assert_not_null(f, "%s", err);
    return f;
}

static void
add(fb_files_t *f, const char *key, int i)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "{\"i\":%d}\n", i);

    cr_assert_eq(fb_files_add(f, key, line, (size_t)n), 0);
}

/* count_in_order -- lines of file are {"i":from}..; returns how many. */
static int
count_in_order(const char *text, int from)
{
    int n = 0, i;

    for (const char *p = text; *p; p = strchr(p, '\n') + 1, n++) {
        cr_assert_eq(sscanf(p, "{\"i\":%d}", &i), 1, "a whole line at %d", n);
        cr_assert_eq(i, from + n, "line %d holds %d", n, i);
        cr_assert_not_null(strchr(p, '\n'));
    }
    return n;
}

/* flushed -- a flush that must write everything (synced when sync is set). */
static void
flushed(fb_files_t *f, bool sync)
{
    char err[256];

    cr_assert_eq(fb_files_flush(f, sync, err, sizeof(err)), 0, "%s", err);
}

/* expect_lines -- file holds exactly n lines {"i":from}.. in order. */
static void
expect_lines(const char *file, int from, int n)
{
    size_t len;
    char *text = slurp(file, &len);

    cr_assert_not_null(text, "%s", file);
    cr_assert_eq(count_in_order(text, from), n, "%s", file);
    free(text);
}

/* rotated_lines -- the lines of key's files, oldest (.keep) to newest
 * (.log), which must follow each other in order from 0, each file at most
 * max bytes; how many. */
static int
rotated_lines(const char *key, int keep, size_t max)
{
    char name[64], *text;
    size_t len;
    int next = 0;

    for (int n = keep; n >= 0; n--) {
        if (n > 0)
            snprintf(name, sizeof(name), "%s.log.%d", key, n);
        else
            snprintf(name, sizeof(name), "%s.log", key);
        text = slurp(name, &len);
        if (text == NULL)
            continue;
        cr_assert_leq(len, max, "%s: %zu bytes", name, len);
        next += count_in_order(text, next);
        free(text);
    }
    return next;
}

/* fill -- rounds of per_round lines for each key "<prefix><k>", numbered
 * from 0, flushed after each round (synced when sync is -1 or the round). */
static void
fill(fb_files_t *f, const char *prefix, int keys, int rounds, int per_round, int sync)
{
    char err[256], key[32];

    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < keys; k++)
            for (int i = 0; i < per_round; i++) {
                snprintf(key, sizeof(key), "%s%d", prefix, k);
                add(f, key, round * per_round + i);
            }
        cr_assert_eq(fb_files_flush(f, sync < 0 || sync == round, err, sizeof(err)), 0, "%s",
                     err);
        cr_assert_eq(fb_files_pending(f), 0);
    }
}

/* expect_keys -- every "<prefix><k>.log" holds lines 0..lines-1, in order. */
static void
expect_keys(const char *prefix, int keys, int lines)
{
    char name[48], *text;
    size_t len;

    for (int k = 0; k < keys; k++) {
        snprintf(name, sizeof(name), "%s%d.log", prefix, k);
        text = slurp(name, &len);
        cr_assert_not_null(text, "%s", name);
        cr_assert_eq(count_in_order(text, 0), lines, "%s", name);
        free(text);
    }
}

Test(files, lines_in_order_per_key_with_more_keys_than_descriptors)
{
    fb_files_t *f = files(2, 0, 0);

    fill(f, "key-", 5, 3, 10, -1);
    expect_keys("key-", 5, 30);
    fb_files_free(f);
}

Test(files, many_files_synced_at_once)
{
    fb_files_t *f = files(8, 0, 0);

    fill(f, "many-", 40, 2, 1, -1); /* more files than one fdatasync after another */
    expect_keys("many-", 40, 2);
    fb_files_free(f);
}

Test(files, refuses_a_symlink_and_a_fifo)
{
    fb_files_t *f = files(4, 0, 0);
    char path[256], target[256], err[256];
    size_t len;

    snprintf(target, sizeof(target), "%s/elsewhere", test_dir);
    snprintf(path, sizeof(path), "%s/evil.log", test_dir);
    cr_assert_eq(symlink(target, path), 0);
    add(f, "evil", 1);
    cr_assert_eq(fb_files_flush(f, false, err, sizeof(err)), -1);
    cr_assert(strstr(err, "symbolic link") != NULL, "%s", err);
    cr_assert_null(slurp("elsewhere", &len), "nothing written through the link");
    cr_assert_gt(fb_files_pending(f), 0, "kept for later");
    fb_files_free(f);

    f = files(4, 0, 0);
    snprintf(path, sizeof(path), "%s/pipe.log", test_dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    add(f, "pipe", 1);
    cr_assert_eq(fb_files_flush(f, false, err, sizeof(err)), -1);
    cr_assert(strstr(err, "pipe.log") != NULL, "%s", err);
    fb_files_free(f);
}

Test(files, names_a_symlink_or_a_fifo_before_buffering)
{
    fb_files_t *f = files(4, 0, 0);
    char path[256], err[256] = "";

    snprintf(path, sizeof(path), "%s/evil.log", test_dir);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/pipe.log", test_dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(fb_files_refused(f, "evil", err, sizeof(err)), 1);
    cr_assert(strstr(err, "evil.log: is a symbolic link") != NULL, "%s", err);
    cr_assert_eq(fb_files_refused(f, "pipe", err, sizeof(err)), 1);
    cr_assert(strstr(err, "pipe.log: not a regular file") != NULL, "%s", err);
    cr_assert_eq(fb_files_refused(f, "fresh", err, sizeof(err)), 0, "absent: created later");
    add(f, "plain", 1);
    flushed(f, false);
    cr_assert_eq(fb_files_refused(f, "plain", err, sizeof(err)), 0, "open and regular");
    fb_files_free(f);
}

Test(files, discard_drops_only_what_is_not_written)
{
    fb_files_t *f = files(4, 0, 0);
    char *text;
    size_t len;

    add(f, "k", 0);
    flushed(f, false);
    add(f, "k", 1);
    cr_assert_gt(fb_files_pending(f), 0);
    fb_files_discard(f);
    cr_assert_eq(fb_files_pending(f), 0);
    add(f, "k", 1);
    flushed(f, false);
    text = slurp("k.log", &len);
    cr_assert_not_null(text);
    cr_assert_eq(count_in_order(text, 0), 2, "the discarded line is not written twice");
    free(text);
    fb_files_free(f);
}

Test(files, a_half_line_left_by_a_crash_is_cut_back)
{
    fb_files_t *f = files(4, 0, 0);
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/acme.log", test_dir);
    fp = fopen(path, "w");
    fputs("{\"i\":0}\n{\"i\":1}\n{\"i\":2", fp); /* the crash came mid-line */
    fclose(fp);
    add(f, "acme", 2);
    flushed(f, false);
    expect_lines("acme.log", 0, 3);
    fb_files_free(f);
}

Test(files, rotation_by_size_splits_no_line)
{
    fb_files_t *f = files(4, 100, 3);
    char name[32], *text;
    size_t len;
    int total = 0, next = 0;

    for (int i = 0; i < 40; i++) {
        add(f, "acme", i);
        flushed(f, false);
    }
    /* oldest to newest: .3 .2 .1 then .log; each whole, in order, <= 100 bytes */
    for (int n = 3; n >= 0; n--) {
        if (n > 0)
            snprintf(name, sizeof(name), "acme.log.%d", n);
        else
            snprintf(name, sizeof(name), "acme.log");
        text = slurp(name, &len);
        cr_assert_not_null(text, "%s", name);
        cr_assert_leq(len, 100, "%s: %zu bytes", name, len);
        if (next == 0)
            sscanf(text, "{\"i\":%d}", &next);
        int c = count_in_order(text, next);
        next += c;
        total += c;
        free(text);
    }
    cr_assert_eq(next, 40, "the newest line is the last written");
    cr_assert_null(slurp("acme.log.4", &len), "rotate_keep = 3");
    cr_assert_gt(total, 0);
    fb_files_free(f);
}

Test(files, one_large_flush_is_split_across_rotated_files)
{
    fb_files_t *f = files(4, 100, 20);

    for (int i = 0; i < 60; i++) /* ~500 bytes in one flush */
        add(f, "big", i);
    flushed(f, false);
    cr_assert_eq(rotated_lines("big", 20, 100), 60, "every line, in order, across the files");
    fb_files_free(f);
}

Test(files, reopen_after_an_outside_rotation)
{
    fb_files_t *f = files(4, 0, 0);
    char from[256], to[256], err[256], *text;
    size_t len;

    add(f, "acme", 0);
    cr_assert_eq(fb_files_flush(f, false, err, sizeof(err)), 0);
    snprintf(from, sizeof(from), "%s/acme.log", test_dir);
    snprintf(to, sizeof(to), "%s/acme.log.old", test_dir);
    cr_assert_eq(rename(from, to), 0);
    fb_files_reopen(f);
    add(f, "acme", 1);
    cr_assert_eq(fb_files_flush(f, false, err, sizeof(err)), 0);
    text = slurp("acme.log", &len);
    cr_assert_str_eq(text, "{\"i\":1}\n");
    free(text);
    fb_files_free(f);
}

Test(files, a_full_file_leaves_no_half_line_and_loses_nothing)
{
    fb_files_t *f = files(4, 0, 0);
    struct rlimit rl = {.rlim_cur = 1000, .rlim_max = RLIM_INFINITY};
    char err[256], *text;
    size_t len;
    int i = 0, failed = 0;

    signal(SIGXFSZ, SIG_IGN); /* write then fails with EFBIG */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    while (!failed && i < 1000) {
        for (int k = 0; k < 7; k++)
            add(f, "acme", i++);
        failed = fb_files_flush(f, false, err, sizeof(err)) < 0;
    }
    cr_assert(failed, "the limit was hit");
    text = slurp("acme.log", &len);
    cr_assert(len == 0 || text[len - 1] == '\n', "no half line");
    free(text);
    rl.rlim_cur = RLIM_INFINITY;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    flushed(f, false);
    text = slurp("acme.log", &len);
    cr_assert_eq(count_in_order(text, 0), i, "every line, once, in order");
    free(text);
    fb_files_free(f);
}

static fb_files_t *
files_refusing(size_t max_open)
{
    fb_files_opts_t o = {.dir = test_dir, .max_open = max_open, .refusals = true};
    char err[256];
    fb_files_t *f = fb_files_new(&o, err, sizeof(err));

    cr_assert_not_null(f, "%s", err);
    return f;
}

Test(files, a_file_that_can_never_be_written_refuses_its_key_only)
{
    fb_files_t *f = files_refusing(4);
    char path[256], err[256] = "", *text;
    const char *key, *why = NULL;
    size_t len;
    bool sp;

    size_t dropped;

    add(f, "good", 0);
    add(f, "bad", 0);
    add(f, "bad", 10);
    add(f, "link", 0);
    /* planted after the lines were taken (after fb_files_refused) */
    snprintf(path, sizeof(path), "%s/bad.log", test_dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/link.log", test_dir);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    cr_assert_eq(fb_files_flush(f, true, err, sizeof(err)), 0, "the others are written: %s", err);
    cr_assert_eq(fb_files_pending(f), 0, "the refused lines are handed back, not kept");
    expect_lines("good.log", 0, 1);
    int seen = 0;
    while ((key = fb_files_next_refusal(f, &why, &sp, &dropped)) != NULL) {
        cr_assert(!sp, "a name's fault is for the dead letters");
        if (strcmp(key, "bad") == 0) {
            cr_assert(strstr(why, "bad.log: Is a directory") != NULL, "%s", why);
            cr_assert_eq(dropped, strlen("{\"i\":0}\n{\"i\":10}\n"), "both lines dropped");
        } else if (strcmp(key, "link") == 0) {
            cr_assert(strstr(why, "link.log: is a symbolic link: refused") != NULL, "%s", why);
            cr_assert_eq(dropped, strlen("{\"i\":0}\n"));
        }
        else
            cr_assert_fail("refused %s", key);
        seen++;
    }
    cr_assert_eq(seen, 2, "each refusal told once");
    /* refused for a while, without looking at the file again */
    snprintf(path, sizeof(path), "%s/bad.log", test_dir);
    cr_assert_eq(rmdir(path), 0);
    cr_assert_eq(fb_files_refused(f, "bad", err, sizeof(err)), 1);
    cr_assert(strstr(err, "Is a directory") != NULL, "%s", err);
    /* until a reopen, which looks again: mended, written */
    fb_files_reopen(f);
    cr_assert_eq(fb_files_refused(f, "bad", err, sizeof(err)), 0, "%s", err);
    add(f, "bad", 1);
    flushed(f, false);
    cr_assert_null(fb_files_next_refusal(f, &why, &sp, &dropped));
    text = slurp("bad.log", &len);
    cr_assert_str_eq(text, "{\"i\":1}\n");
    free(text);
    cr_assert_null(slurp("passwd", &len));
    fb_files_free(f);
}

/* A key written by one flush and refused by a later one (its file moved
 * away and replaced, then a reopen): only the lines buffered since are
 * dropped and counted, so the caller moves only their records. */
Test(files, a_refusal_counts_only_the_lines_it_dropped)
{
    fb_files_t *f = files_refusing(4);
    char path[256], moved[256];
    const char *why = NULL;
    size_t dropped, len;
    bool sp;
    char *text;

    add(f, "k", 0);
    add(f, "k", 1);
    flushed(f, false);
    snprintf(path, sizeof(path), "%s/k.log", test_dir);
    snprintf(moved, sizeof(moved), "%s/k.log.1", test_dir);
    cr_assert_eq(rename(path, moved), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    fb_files_reopen(f);
    add(f, "k", 2);
    flushed(f, false);
    cr_assert_str_eq(fb_files_next_refusal(f, &why, &sp, &dropped), "k");
    cr_assert_eq(dropped, strlen("{\"i\":2}\n"), "only the line since: %zu", dropped);
    cr_assert_null(fb_files_next_refusal(f, &why, &sp, &dropped));
    text = slurp("k.log.1", &len);
    cr_assert_str_eq(text, "{\"i\":0}\n{\"i\":1}\n", "the first flush's lines stay written");
    free(text);
    fb_files_free(f);
}

Test(files, a_file_with_other_hard_links_is_refused)
{
    fb_files_t *f = files_refusing(4);
    char path[256], other[256], err[256] = "";
    const char *why = NULL;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/hard.log", test_dir);
    snprintf(other, sizeof(other), "%s/elsewhere", test_dir);
    fp = fopen(other, "w");
    fputs("{\"i\":0}\n", fp);
    fclose(fp);
    cr_assert_eq(link(other, path), 0);
    cr_assert_eq(fb_files_refused(f, "hard", err, sizeof(err)), 1);
    cr_assert(strstr(err, "hard.log: has other hard links: refused") != NULL, "%s", err);
    add(f, "hard", 1);
    flushed(f, false);
    bool sp;
    size_t dropped;
    cr_assert_str_eq(fb_files_next_refusal(f, &why, &sp, &dropped), "hard");
    cr_assert_eq(dropped, strlen("{\"i\":1}\n"));
    cr_assert(!sp);
    cr_assert(strstr(why, "has other hard links") != NULL, "%s", why);
    size_t len;
    char *text = slurp("elsewhere", &len);
    cr_assert_str_eq(text, "{\"i\":0}\n", "nothing written through the link");
    free(text);
    fb_files_free(f);
}

/* as_nobody -- root opens any file: become a user permissions bind, in
 * this test's own process, owning dir */
static void
as_nobody(void)
{
    if (geteuid() != 0)
        return;
    cr_assert_eq(chown(test_dir, 65534, 65534), 0); /* and the teardown may remove it */
    cr_assert_eq(setgid(65534), 0);
    cr_assert_eq(setuid(65534), 0);
}

/* files_spooling -- refusals, with a spool in dir/.spool of max bytes per key. */
static fb_files_t *
files_spooling(uint64_t max, fb_files_t **spool)
{
    char sdir[256], err[256];
    fb_files_opts_t o = {.dir = test_dir, .max_open = 4, .refusals = true, .spool_dir = sdir,
                         .spool_max = max};
    fb_files_opts_t so = {.dir = sdir, .max_open = 4, .nofollow = true};
    fb_files_t *f;

    snprintf(sdir, sizeof(sdir), "%s/.spool", test_dir);
    cr_assert_eq(mkdir(sdir, 0750), 0);
    f = fb_files_new(&o, err, sizeof(err));
    cr_assert_not_null(f, "%s", err);
    *spool = fb_files_new(&so, err, sizeof(err));
    cr_assert_not_null(*spool, "%s", err);
    return f;
}

Test(files, a_file_it_may_not_open_is_spooled_then_moved_in_order)
{
    fb_files_t *spool, *f;
    const char *why = NULL;
    char path[256], err[256];
    bool sp = false;
    size_t len;
    int fd;

    as_nobody();
    f = files_spooling(1 << 20, &spool);
    snprintf(path, sizeof(path), "%s/locked.log", test_dir);
    fd = open(path, O_CREAT | O_WRONLY, 0);
    cr_assert_geq(fd, 0);
    close(fd);
    add(f, "good", 0);
    add(f, "locked", 0);
    flushed(f, true);
    expect_lines("good.log", 0, 1);
    size_t dropped;
    cr_assert_str_eq(fb_files_next_refusal(f, &why, &sp, &dropped), "locked");
    cr_assert(sp, "permissions are the environment's: spooled");
    cr_assert(strstr(why, "locked.log: Permission denied") != NULL, "%s", why);
    cr_assert_eq(fb_files_refused(f, "locked", err, sizeof(err)), FB_FILES_SPOOL, "%s", err);
    /* the caller spools what was handed back, and what comes meanwhile */
    add(spool, "locked", 0);
    add(spool, "locked", 1);
    flushed(spool, true);
    expect_lines(".spool/locked.log", 0, 2);
    /* mended: at its next open the file takes in the spool first, then
     * the new lines; the spool file is gone */
    cr_assert_eq(chmod(path, 0640), 0);
    fb_files_reopen(f);
    cr_assert_eq(fb_files_refused(f, "locked", err, sizeof(err)), 0, "%s", err);
    add(f, "locked", 2);
    flushed(f, true);
    expect_lines("locked.log", 0, 3);
    cr_assert_null(slurp(".spool/locked.log", &len), "the spool file is removed");
    fb_files_free(f);
    fb_files_free(spool);
}

Test(files, a_full_spool_retries_instead_and_keeps_the_lines)
{
    fb_files_t *spool, *f;
    const char *why = NULL;
    char path[256], err[256];
    size_t dropped;
    bool sp;
    int fd;

    as_nobody();
    f = files_spooling(8, &spool); /* one line fills it */
    snprintf(path, sizeof(path), "%s/.spool/locked.log", test_dir);
    fd = open(path, O_CREAT | O_WRONLY, 0640);
    cr_assert_eq(write(fd, "{\"i\":0}\n", 8), 8);
    close(fd);
    snprintf(path, sizeof(path), "%s/locked.log", test_dir);
    fd = open(path, O_CREAT | O_WRONLY, 0);
    close(fd);
    add(f, "locked", 1);
    cr_assert_eq(fb_files_flush(f, true, err, sizeof(err)), -1, "retried, not refused");
    cr_assert(strstr(err, "Permission denied") != NULL, "%s", err);
    cr_assert_null(fb_files_next_refusal(f, &why, &sp, &dropped));
    cr_assert_gt(fb_files_pending(f), 0, "the line stays buffered");
    cr_assert_eq(chmod(path, 0640), 0);
    flushed(f, true);
    expect_lines("locked.log", 0, 2);
    fb_files_free(f);
    fb_files_free(spool);
}

Test(files, rotation_by_age_follows_the_files_last_write)
{
    fb_files_opts_t o = {.dir = test_dir, .max_open = 4, .rotate_age_ms = 86400000, .rotate_keep = 3};
    struct timespec old[2];
    char path[256], err[256], *text;
    size_t len;
    fb_files_t *f;
    FILE *fp;

    /* written two days ago, by another process or before a restart */
    snprintf(path, sizeof(path), "%s/acme.log", test_dir);
    fp = fopen(path, "w");
    fputs("{\"i\":0}\n", fp);
    fclose(fp);
    clock_gettime(CLOCK_REALTIME, &old[0]);
    old[0].tv_sec -= 2 * 86400;
    old[1] = old[0];
    cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
    f = fb_files_new(&o, err, sizeof(err));
    cr_assert_not_null(f, "%s", err);
    add(f, "acme", 1);
    flushed(f, false);
    text = slurp("acme.log.1", &len);
    cr_assert_not_null(text, "the old day's file rotated before the first write of today");
    cr_assert_str_eq(text, "{\"i\":0}\n");
    free(text);
    /* written today: no second rotation, even after a close and reopen */
    fb_files_reopen(f);
    add(f, "acme", 2);
    flushed(f, false);
    expect_lines("acme.log", 1, 2);
    cr_assert_null(slurp("acme.log.2", &len));
    fb_files_free(f);
}

Test(files, thousands_of_keys_through_few_descriptors)
{
    fb_files_t *f = files(64, 0, 0);

    /* more than the keys remembered (idle ones are forgotten); synced once,
     * more files than one fdatasync each is worth */
    fill(f, "t-", 5000, 3, 1, 1);
    expect_keys("t-", 5000, 3);
    fb_files_free(f);
}

Test(files, many_files_synced_while_rotating)
{
    fb_files_t *f = files(8, 100, 50);
    char key[16];

    for (int k = 0; k < 40; k++) /* more files than descriptors, each rotated */
        for (int i = 0; i < 30; i++) {
            snprintf(key, sizeof(key), "rot-%d", k);
            add(f, key, i);
        }
    flushed(f, true);
    cr_assert_eq(fb_files_pending(f), 0);
    for (int k = 0; k < 40; k++) {
        snprintf(key, sizeof(key), "rot-%d", k);
        cr_assert_eq(rotated_lines(key, 50, 100), 30, "%s: every line, in order", key);
    }
    fb_files_free(f);
}

/* rolled_back -- a roll back that must cut every file it should. */
static void
rolled_back(fb_files_t *f)
{
    char err[256];

    cr_assert_eq(fb_files_rollback(f, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(fb_files_pending(f), 0, "what was buffered is dropped");
}

Test(files, a_roll_back_cuts_every_file_to_its_checkpoint)
{
    fb_files_t *f = files(1, 0, 0); /* one descriptor: a's is closed when b's opens */

    for (int i = 0; i < 10; i++) {
        add(f, "a", i);
        add(f, "b", i);
    }
    flushed(f, true);
    fb_files_checkpoint(f);
    for (int i = 10; i < 20; i++) {
        add(f, "a", i);
        add(f, "b", i);
    }
    flushed(f, true);
    add(f, "a", 20); /* buffered, not written */
    rolled_back(f);
    expect_lines("a.log", 0, 10);
    expect_lines("b.log", 0, 10);
    /* read again from the checkpoint: written after it, in order */
    for (int i = 10; i < 15; i++)
        add(f, "a", i);
    flushed(f, true);
    expect_lines("a.log", 0, 15);
    fb_files_free(f);
}

Test(files, a_roll_back_leaves_a_file_replaced_from_outside)
{
    fb_files_t *f = files(4, 0, 0);
    char from[256], to[256];
    FILE *fp;

    add(f, "acme", 0);
    flushed(f, true);
    fb_files_checkpoint(f);
    add(f, "acme", 1);
    flushed(f, true);
    fb_files_reopen(f); /* closed with a line past the checkpoint */
    snprintf(from, sizeof(from), "%s/acme.log", test_dir);
    snprintf(to, sizeof(to), "%s/acme.log.old", test_dir);
    cr_assert_eq(rename(from, to), 0);
    cr_assert_not_null(fp = fopen(from, "w"));
    fputs("{\"i\":7}\n{\"i\":8}\n", fp);
    fclose(fp);
    rolled_back(f);
    expect_lines("acme.log", 7, 2); /* not this router's file: untouched */
    expect_lines("acme.log.old", 0, 2);
    fb_files_free(f);
}

Test(files, a_roll_back_never_cuts_what_another_router_wrote)
{
    fb_files_t *f = files(4, 0, 0);
    char path[256];
    FILE *fp;

    add(f, "acme", 0);
    flushed(f, true);
    fb_files_checkpoint(f);
    fb_files_reopen(f); /* settled, then its partition went elsewhere */
    snprintf(path, sizeof(path), "%s/acme.log", test_dir);
    cr_assert_not_null(fp = fopen(path, "a"));
    fputs("{\"i\":1}\n{\"i\":2}\n", fp); /* the other router, stored there */
    fclose(fp);
    add(f, "acme", 3); /* the partition is back */
    flushed(f, true);
    rolled_back(f);
    expect_lines("acme.log", 0, 3);
    fb_files_free(f);
}

Test(files, a_roll_back_cuts_only_the_current_file_of_a_rotated_key)
{
    fb_files_opts_t o = {.dir = test_dir, .max_open = 4, .rotate_size = 100, .rotate_keep = 20,
                         .durable = true};
    char err[256];
    fb_files_t *f = fb_files_new(&o, err, sizeof(err));
    size_t len;
    char *text;

    cr_assert_not_null(f, "%s", err);
    for (int i = 0; i < 5; i++)
        add(f, "big", i);
    flushed(f, false);
    fb_files_checkpoint(f);
    for (int i = 5; i < 60; i++) /* several rotations in one flush, not synced */
        add(f, "big", i);
    flushed(f, false);
    rolled_back(f);
    /* the rotated files were synced first: their lines stay (they come
     * again as duplicates); the current file is cut to its checkpoint */
    text = slurp("big.log", &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, 0, "big.log: %zu bytes after the roll back", len);
    free(text);
    cr_assert_gt(rotated_lines("big", 20, 100), 5);
    fb_files_free(f);
}

/* Two routers on one key's file (partition_by = key_agent, or the old and
 * the new owner around a rebalance): here two handles in turn. */
Test(files, a_roll_back_never_cuts_lines_another_router_appended_after)
{
    fb_files_t *a = files(4, 0, 0), *b = files(4, 0, 0);

    add(a, "acme", 0);
    flushed(a, false); /* not synced, not checkpointed */
    add(b, "acme", 1);
    flushed(b, true);
    fb_files_checkpoint(b); /* b stored its offsets: line 1 must stay */
    rolled_back(a);         /* a's sync failed */
    expect_lines("acme.log", 0, 2); /* a's line stays too: a duplicate when read again */
    add(a, "acme", 2);      /* a goes on after the lines b wrote */
    flushed(a, true);
    expect_lines("acme.log", 0, 3);
    fb_files_free(a);
    fb_files_free(b);
}

static bool
count_line(const char *line, size_t len, void *arg)
{
    (void)line;
    (void)len;
    ++*(size_t *)arg;
    return true;
}

/* A roll back that had to leave this router's own unsynced lines in the
 * file (another router appended after them): router.dedupe must never
 * load that file's lines, or the records read again would be dropped as
 * written while their lines may not be on disk. */
Test(files, a_file_left_uncut_by_a_roll_back_is_never_read_for_dedupe)
{
    fb_files_t *a = files(4, 0, 0), *b = files(4, 0, 0);
    size_t n = 0;

    add(a, "acme", 0);
    flushed(a, true);
    fb_files_checkpoint(a);
    fb_files_tail(a, "acme", 1 << 20, count_line, &n, NULL);
    cr_assert_eq(n, 1, "a synced file's lines are read: %zu", n);
    add(a, "acme", 1);
    flushed(a, false); /* not synced */
    add(b, "acme", 2);
    flushed(b, true);
    fb_files_checkpoint(b);
    rolled_back(a); /* a's sync failed; line 1 stays (b wrote after it) */
    expect_lines("acme.log", 0, 3);
    n = 0;
    fb_files_tail(a, "acme", 1 << 20, count_line, &n, NULL);
    cr_assert_eq(n, 0, "%zu lines of a file holding unsynced lines read for dedupe", n);
    fb_files_free(a);
    fb_files_free(b);
}

Test(files, two_routers_rotate_a_file_once_within_its_size)
{
    fb_files_t *a = files(4, 100, 20), *b = files(4, 100, 20);
    int i = 0;

    /* each writes in turn; each finds the file as the other left it (its
     * size, its rotation), so no file grows past 100 bytes and none is
     * rotated twice (a file rotated twice would leave one short) */
    for (int round = 0; round < 12; round++) {
        fb_files_t *f = round % 2 ? b : a;
        for (int k = 0; k < 5; k++)
            add(f, "acme", i++);
        flushed(f, false);
    }
    cr_assert_eq(rotated_lines("acme", 20, 100), i);
    for (int n = 1; n <= 20; n++) {
        char name[32], *text;
        size_t len;
        snprintf(name, sizeof(name), "acme.log.%d", n);
        if ((text = slurp(name, &len)) == NULL)
            continue;
        cr_assert_gt(len, 100 - 10, "%s holds %zu bytes: rotated before it was full", name,
                     len);
        free(text);
    }
    fb_files_free(a);
    fb_files_free(b);
}

/* writer -- a router in a child process: lines "w<id> <seq> <pad>\n" for
 * one key, flushed in batches, rotated by size, a tenth of the batches
 * rolled back (as after a failed sync) and written again, as the records
 * read again from the stored offsets would be. */
static void
writer(int id, int lines)
{
    fb_files_t *f = files(4, 4096, 300);
    char line[80], err[256];
    int seq = 0;

    srandom((unsigned)(getpid() * 7919));
    while (seq < lines) {
        int from = seq, batch = 1 + (int)(random() % 40);
        for (int again = 0; again < 2; again++) {
            for (seq = from; seq < from + batch && seq < lines; seq++) {
                int n = snprintf(line, sizeof(line), "w%d %d %.*s\n", id, seq,
                                 (int)(random() % 40), "........................................");
                if (fb_files_add(f, "shared", line, (size_t)n) != 0)
                    _exit(3);
            }
            if (fb_files_flush(f, false, err, sizeof(err)) != 0)
                _exit(4);
            if (again == 0 && random() % 10 == 0) {
                if (fb_files_rollback(f, err, sizeof(err)) != 0)
                    _exit(5);
                continue; /* the same records read again */
            }
            fb_files_checkpoint(f);
            break;
        }
    }
    fb_files_free(f);
    _exit(0);
}

Test(files, two_processes_append_rotate_and_roll_back_one_file, .timeout = 120)
{
    enum { WRITERS = 2, LINES = 8000 };
    pid_t pid[WRITERS];
    unsigned char *seen[WRITERS];
    int files_seen = 0;

    for (int w = 0; w < WRITERS; w++) {
        pid[w] = fork();
        cr_assert_geq(pid[w], 0);
        if (pid[w] == 0)
            writer(w, LINES);
        seen[w] = calloc(LINES, 1);
    }
    for (int w = 0; w < WRITERS; w++) {
        int st;
        cr_assert_eq(waitpid(pid[w], &st, 0), pid[w]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d: status %d", w, st);
    }
    for (int n = 300; n >= 0; n--) {
        char name[32], *text;
        size_t len;
        if (n > 0)
            snprintf(name, sizeof(name), "shared.log.%d", n);
        else
            snprintf(name, sizeof(name), "shared.log");
        if ((text = slurp(name, &len)) == NULL)
            continue;
        files_seen++;
        /* within rotate_size (no file written past it, none rotated by
         * both), and rotated only when the next line did not fit */
        cr_assert_leq(len, 4096, "%s: %zu bytes", name, len);
        if (n > 0)
            cr_assert_gt(len, 4096 - 80, "%s: %zu bytes, rotated twice?", name, len);
        for (char *p = text, *nl; *p; p = nl + 1) {
            int w, seq, pad = -1;
            cr_assert_not_null(nl = strchr(p, '\n'), "%s: a half line at its end", name);
            cr_assert_eq(sscanf(p, "w%d %d %n", &w, &seq, &pad), 2, "%s: a torn line: %.*s",
                         name, (int)(nl - p), p);
            cr_assert(w >= 0 && w < WRITERS && seq >= 0 && seq < LINES && pad > 0);
            for (char *c = p + pad; c < nl; c++)
                cr_assert_eq(*c, '.', "%s: a torn line: %.*s", name, (int)(nl - p), p);
            seen[w][seq] = 1;
        }
        free(text);
    }
    cr_assert_gt(files_seen, 10);
    for (int w = 0; w < WRITERS; w++) {
        for (int i = 0; i < LINES; i++)
            cr_assert(seen[w][i], "writer %d: line %d lost", w, i);
        free(seen[w]);
    }
}

Test(files, a_file_locked_too_long_fails_the_flush_and_keeps_its_lines)
{
    fb_files_opts_t o = {.dir = test_dir, .max_open = 4, .lock_wait_ms = 300};
    char err[256], path[256];
    fb_files_t *f = fb_files_new(&o, err, sizeof(err));
    int fd;

    cr_assert_not_null(f, "%s", err);
    add(f, "acme", 0);
    flushed(f, false);
    /* another process (a router stopped while it held the lock) */
    snprintf(path, sizeof(path), "%s/acme.log", test_dir);
    cr_assert_geq(fd = open(path, O_RDWR), 0);
    cr_assert_eq(flock(fd, LOCK_EX), 0);
    add(f, "acme", 1);
    cr_assert_eq(fb_files_flush(f, false, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "acme.log: locked by another process for over 300 ms"), "%s",
                       err);
    cr_assert_gt(fb_files_pending(f), 0);
    expect_lines("acme.log", 0, 1);
    close(fd); /* let go: the lines come */
    flushed(f, false);
    expect_lines("acme.log", 0, 2);
    fb_files_free(f);
}
