/*
 * test_router_progress.c -- per-target delivered-through marks: marks of
 * several targets and partitions back across a close and an open, the
 * file's exact text, a temporary left by a crash ignored and removed,
 * corrupt files of every kind stale with a reason (never a mark, never a
 * crash) and replaced at the next sync, topic ids compared, marks past
 * the high watermark dropped, marks that refuse to move back, skip and
 * min_next, syncs that fail (a directory in the file's place, a file-size
 * limit: both hold for root) keeping the marks for the next one, symbolic
 * and hard links refused and never followed, a roll back, and the memory
 * bound reading dropped partitions again from disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "router/router_progress.h"

static char dir[] = "/tmp/fbpipe-progress-XXXXXX";

static void
setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(progress, .init = setup, .fini = teardown);

static const uint8_t ID_A[FB_PROGRESS_ID_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t ID_B[FB_PROGRESS_ID_LEN] = {0xff, 2,  3,  4,  5,  6,  7,  8,
                                                 9,    10, 11, 12, 13, 14, 15, 16};

static fb_progress_t *
opened(size_t max_cached)
{
    fb_progress_opts_t o = {.dir = dir, .max_cached = max_cached};
    char err[512];
    fb_progress_t *p = fb_progress_open(&o, err, sizeof(err));

    cr_assert_not_null(p, "%s", err);
    return p;
}

/* path -- dir/.progress/name (static, two at a time). */
static const char *
path(const char *name)
{
    static char buf[2][512];
    static int n;
    char *b = buf[n++ % 2];

    snprintf(b, 512, "%s/.progress/%s", dir, name);
    return b;
}

/* put_file -- name in .progress holds text (len bytes; 0: strlen). */
static void
put_file(const char *name, const char *text, size_t len)
{
    int fd = open(path(name), O_WRONLY | O_CREAT | O_TRUNC, 0640);

    if (len == 0)
        len = strlen(text);

    cr_assert_geq(fd, 0, "%s", name);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* slurp -- a file's text (NULL when absent). */
static char *
slurp(const char *file)
{
    char *buf = calloc(1, 16384);
    int fd = open(file, O_RDONLY);
    ssize_t n;

    if (fd < 0) {
        free(buf);
        return NULL;
    }
    n = read(fd, buf, 16383);
    close(fd);
    cr_assert_geq(n, 0);
    return buf;
}

static void
set_ok(fb_progress_t *p, const char *target, const char *topic, int32_t part, int64_t through)
{
    char err[512];

    cr_assert_eq(fb_progress_set(p, target, topic, part, through, err, sizeof(err)), 0, "%s", err);
}

static void
sync_ok(fb_progress_t *p)
{
    char err[512];

    cr_assert_eq(fb_progress_sync(p, err, sizeof(err)), 0, "%s", err);
}

static int
load(fb_progress_t *p, const char *topic, int32_t part, const uint8_t *id, char *why)
{
    why[0] = '\0';
    return fb_progress_load(p, topic, part, id, why, 512);
}

/* temp_of -- the temporary name of a file name, as the module makes it
 * (FNV-1a 64 of the name, 16 hex digits). */
static void
temp_of(char *out, size_t len, const char *name)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    snprintf(out, len, ".new-%016" PRIx64, h);
}

Test(progress, round_trip_across_close_and_open)
{
    fb_progress_t *p = opened(0);
    char why[512];
    struct stat st;

    cr_assert_eq(stat(path(""), &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0750);
    cr_assert_eq(load(p, "logs", 0, ID_A, why), 0, "%s", why);
    cr_assert_eq(load(p, "logs", 1, ID_A, why), 0, "%s", why);
    cr_assert_eq(load(p, "other.topic_x-y", 7, NULL, why), 0, "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE);
    set_ok(p, "file", "logs", 0, 41);
    set_ok(p, "archive", "logs", 0, 17);
    set_ok(p, "file", "logs", 1, 0);
    set_ok(p, "search-1", "other.topic_x-y", 7, INT64_MAX);
    cr_assert(fb_progress_unsynced(p, "logs", 0));
    sync_ok(p);
    cr_assert_not(fb_progress_unsynced(p, "logs", 0));
    fb_progress_close(p);

    char *text = slurp(path("logs-0"));
    cr_assert_not_null(text);
    cr_assert_str_eq(text, "fbpipe-progress 1\ntopic logs\npartition 0\n"
                           "id 0102030405060708090a0b0c0d0e0f10\n"
                           "target file 41\ntarget archive 17\nend 2\n");
    free(text);
    cr_assert_eq(stat(path("logs-0"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640);

    p = opened(0);
    cr_assert_eq(load(p, "logs", 0, ID_A, why), 0, "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 41);
    cr_assert_eq(fb_progress_get(p, "archive", "logs", 0), 17);
    cr_assert_eq(fb_progress_get(p, "search", "logs", 0), FB_PROGRESS_NONE);
    /* without a load first: read when first used */
    cr_assert_eq(fb_progress_get(p, "file", "logs", 1), 0);
    cr_assert_eq(fb_progress_get(p, "archive", "logs", 1), FB_PROGRESS_NONE);
    cr_assert_eq(fb_progress_get(p, "search-1", "other.topic_x-y", 7), INT64_MAX);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 2), FB_PROGRESS_NONE);
    cr_assert_null(fb_progress_next_stale(p, &(const char *){NULL}, &(int32_t){0}));
    /* nothing changed: nothing written, no file for a partition without marks */
    sync_ok(p);
    cr_assert_eq(stat(path("logs-2"), &st), -1);
    fb_progress_close(p);
}

Test(progress, a_crash_leaves_the_old_file_whole)
{
    fb_progress_t *p = opened(0);
    char why[512], temp[64], other[64];
    struct stat st;

    set_ok(p, "file", "logs", 3, 100);
    sync_ok(p);
    fb_progress_close(p);
    /* a crash while the next version was written: its temporary half
     * written; another left from long ago; a name that only looks like one */
    temp_of(temp, sizeof(temp), "logs-3");
    temp_of(other, sizeof(other), "logs-4");
    put_file(temp, "fbpipe-progress 1\ntopic logs\npartition 3\nid 00", 0);
    put_file(other,
             "fbpipe-progress 1\ntopic logs\npartition 4\nid 0000000000000000000000"
             "0000000000\ntarget file 999\nend 1\n",
             0);
    put_file("logs-3.new", "garbage", 0);

    p = opened(0);
    cr_assert_eq(load(p, "logs", 3, NULL, why), 0, "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 3), 100);
    cr_assert_eq(stat(path(temp), &st), -1, "the partition's temporary is removed");
    /* a temporary is never read, even a whole one */
    cr_assert_eq(fb_progress_get(p, "file", "logs", 4), FB_PROGRESS_NONE);
    cr_assert_eq(stat(path(other), &st), -1);
    set_ok(p, "file", "logs", 3, 200);
    sync_ok(p);
    cr_assert_eq(stat(path(temp), &st), -1, "renamed into place");
    fb_progress_close(p);
    p = opened(0);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 3), 200);
    fb_progress_close(p);
}

typedef struct corrupt_case {
    const char *text;
    size_t len; /* 0: strlen */
    const char *reason;
} corrupt_case_t;

#define HEAD "fbpipe-progress 1\ntopic logs\npartition 5\nid 00000000000000000000000000000000\n"

Test(progress, corrupt_files_are_stale_never_a_mark)
{
    static char huge[9000], longline[600];
    memset(huge, 'a', sizeof(huge) - 1);
    snprintf(longline, sizeof(longline), HEAD "target file 1%0400d\nend 1\n", 0);
    const corrupt_case_t cases[] = {
        {"", 0, "empty"},
        {"", 1, "a NUL byte"},
        {HEAD "target file 10\n", 0, "no end line"},
        {HEAD "target file 10\nend 1", 0, "no newline"},
        {"fbpipe-progress 1\ntopic logs\n", 0, "no header"},
        {"hello world\n", 0, "not a progress file"},
        {"\x7f"
         "ELF\x02\x01\x01\n",
         0, "not a progress file"},
        {"fbpipe-progress 2\ntopic logs\npartition 5\nid 00000000000000000000000000000000\n"
         "target file 10\nend 1\n",
         0, "version 2"},
        {"fbpipe-progress x\n", 0, "not a version number"},
        {HEAD "target file -5\nend 1\n", 0, "not an offset"},
        {HEAD "target file 9223372036854775808\nend 1\n", 0, "not an offset"},
        {HEAD "target file 18446744073709551626\nend 1\n", 0, "not an offset"},
        {HEAD "target file 010\nend 1\n", 0, "not an offset"},
        {HEAD "target file +10\nend 1\n", 0, "not an offset"},
        {HEAD "target file 10 \nend 1\n", 0, "not an offset"},
        {HEAD "target file 10\ntarget file 12\nend 2\n", 0, "a second time"},
        {HEAD "target File 10\nend 1\n", 0, "not a target name"},
        {HEAD "target file\nend 1\n", 0, "not a target line"},
        {HEAD "target  10\nend 1\n", 0, "not a target line"},
        {HEAD "target file 10\r\nend 1\n", 0, "not an offset"},
        {HEAD "target file 10\nend 2\n", 0, "does not count"},
        {HEAD "target file 10\nend 1\ntarget archive 3\n", 0, "after the end"},
        {HEAD "bogus\nend 0\n", 0, "neither a target"},
        {HEAD "target file 1\0\nend 1\n", sizeof(HEAD "target file 1\0\nend 1\n") - 1,
         "a NUL byte"},
        {"fbpipe-progress 1\ntopic other\npartition 5\nid 00000000000000000000000000000000\n"
         "end 0\n",
         0, "not the topic"},
        {"fbpipe-progress 1\ntopic logs\npartition 6\nid 00000000000000000000000000000000\n"
         "end 0\n",
         0, "not the partition"},
        {"fbpipe-progress 1\ntopic logs\npartition 5\nid 0000000000000000000000000000000G\n"
         "end 0\n",
         0, "not a topic id"},
        {longline, 0, "longer than"},
        {huge, 0, "larger than"},
    };

    fb_progress_close(opened(0)); /* makes .progress */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const corrupt_case_t *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        char why[512];

        put_file("logs-5", c->text, len);
        fb_progress_t *p = opened(0);
        cr_assert_eq(load(p, "logs", 5, ID_A, why), FB_PROGRESS_STALE, "case %zu", i);
        cr_assert_not_null(strstr(why, c->reason), "case %zu: %s", i, why);
        cr_assert_not_null(strstr(why, "logs-5"), "case %zu names the file: %s", i, why);
        cr_assert_eq(fb_progress_get(p, "file", "logs", 5), FB_PROGRESS_NONE, "case %zu", i);
        cr_assert_not(fb_progress_skip(p, "file", "logs", 5, 0));
        cr_assert(fb_progress_unsynced(p, "logs", 5), "case %zu: to be rewritten", i);
        /* the next sync replaces it: no longer stale */
        sync_ok(p);
        fb_progress_close(p);
        p = opened(0);
        cr_assert_eq(load(p, "logs", 5, ID_A, why), 0, "case %zu: %s", i, why);
        cr_assert_eq(fb_progress_get(p, "file", "logs", 5), FB_PROGRESS_NONE);
        fb_progress_close(p);
    }
}

Test(progress, a_file_of_another_topic_id_is_stale)
{
    fb_progress_t *p = opened(0);
    char why[512];

    cr_assert_eq(load(p, "logs", 0, ID_A, why), 0, "%s", why);
    set_ok(p, "file", "logs", 0, 50);
    set_ok(p, "file", "logs", 1, 60); /* id learnt from partition 0's load */
    sync_ok(p);
    fb_progress_close(p);

    p = opened(0);
    /* the same id, or an unknown one: the marks stand */
    cr_assert_eq(load(p, "logs", 0, ID_A, why), 0, "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 50);
    fb_progress_close(p);
    p = opened(0);
    cr_assert_eq(load(p, "logs", 0, NULL, why), 0, "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 50);
    fb_progress_close(p);

    /* the topic made again: another id */
    p = opened(0);
    cr_assert_eq(load(p, "logs", 0, ID_B, why), FB_PROGRESS_STALE);
    cr_assert_not_null(strstr(why, "topic id 0102030405060708090a0b0c0d0e0f10"), "%s", why);
    cr_assert_not_null(strstr(why, "ff02030405060708090a0b0c0d0e0f10"), "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE);
    /* read later without a load: checked against the id the caller gave last */
    cr_assert_eq(fb_progress_get(p, "file", "logs", 1), FB_PROGRESS_NONE);
    const char *topic = NULL;
    int32_t part = -1;
    const char *stale = fb_progress_next_stale(p, &topic, &part);
    cr_assert_not_null(stale);
    cr_assert_str_eq(topic, "logs");
    cr_assert_eq(part, 1);
    cr_assert_not_null(strstr(stale, "made again"), "%s", stale);
    cr_assert_null(fb_progress_next_stale(p, &topic, &part));
    /* marks in memory are checked too */
    set_ok(p, "file", "logs", 0, 5);
    cr_assert_eq(load(p, "logs", 0, ID_A, why), FB_PROGRESS_STALE);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE);
    sync_ok(p);
    fb_progress_close(p);

    /* a file with no id takes the one known now */
    put_file("logs-9",
             "fbpipe-progress 1\ntopic logs\npartition 9\nid "
             "00000000000000000000000000000000\ntarget file 7\nend 1\n",
             0);
    p = opened(0);
    cr_assert_eq(load(p, "logs", 9, ID_B, why), 0, "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 9), 7);
    cr_assert(fb_progress_unsynced(p, "logs", 9));
    sync_ok(p);
    fb_progress_close(p);
    p = opened(0);
    cr_assert_eq(load(p, "logs", 9, ID_A, why), FB_PROGRESS_STALE);
    fb_progress_close(p);
}

Test(progress, check_bounds_drops_marks_past_the_high_watermark)
{
    fb_progress_t *p = opened(0);
    char why[512];

    set_ok(p, "file", "logs", 0, 50);
    set_ok(p, "archive", "logs", 0, 99);
    sync_ok(p);
    fb_progress_close(p);

    p = opened(0);
    cr_assert_eq(load(p, "logs", 0, NULL, why), 0, "%s", why);
    cr_assert_eq(fb_progress_check_bounds(p, "logs", 0, -1, why, sizeof(why)), 0);
    cr_assert_eq(fb_progress_check_bounds(p, "logs", 0, 100, why, sizeof(why)), 0);
    cr_assert_eq(fb_progress_get(p, "archive", "logs", 0), 99);
    /* the log is shorter than a mark: made again, or cut back */
    cr_assert_eq(fb_progress_check_bounds(p, "logs", 0, 99, why, sizeof(why)), FB_PROGRESS_STALE);
    cr_assert_not_null(strstr(why, "archive"), "%s", why);
    cr_assert_not_null(strstr(why, "logs-0"), "%s", why);
    cr_assert_eq(fb_progress_get(p, "archive", "logs", 0), FB_PROGRESS_NONE);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE, "every mark dropped");
    /* a roll back does not bring them back */
    fb_progress_rollback(p);
    cr_assert_eq(fb_progress_get(p, "archive", "logs", 0), FB_PROGRESS_NONE);
    sync_ok(p);
    fb_progress_close(p);
    p = opened(0);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE);
    cr_assert_eq(fb_progress_check_bounds(p, "logs", 0, 0, why, sizeof(why)), 0);
    fb_progress_close(p);
}

Test(progress, marks_do_not_move_back_but_by_reset)
{
    fb_progress_t *p = opened(0);
    char err[512];

    set_ok(p, "file", "logs", 0, 10);
    set_ok(p, "file", "logs", 0, 10); /* where it is: fine */
    cr_assert_eq(fb_progress_set(p, "file", "logs", 0, 9, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "back from 10 to 9"), "%s", err);
    cr_assert_eq(fb_progress_set(p, "file", "logs", 0, -1, err, sizeof(err)), -1);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 10);
    cr_assert_eq(fb_progress_reset(p, "file", "logs", 0, 3, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 3);
    cr_assert_eq(fb_progress_reset(p, "file", "logs", 0, FB_PROGRESS_NONE, err, sizeof(err)), 0);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE);
    cr_assert_eq(fb_progress_reset(p, "file", "logs", 0, -2, err, sizeof(err)), -1);
    /* names are checked */
    cr_assert_eq(fb_progress_set(p, "File", "logs", 0, 1, err, sizeof(err)), -1);
    cr_assert_eq(fb_progress_set(p, "", "logs", 0, 1, err, sizeof(err)), -1);
    cr_assert_eq(
        fb_progress_set(p, "a234567890123456789012345678901234", "logs", 0, 1, err, sizeof(err)),
        -1);
    cr_assert_eq(fb_progress_set(p, "file", "../etc", 0, 1, err, sizeof(err)), -1);
    cr_assert_eq(fb_progress_set(p, "file", "..", 0, 1, err, sizeof(err)), -1);
    cr_assert_eq(fb_progress_set(p, "file", "a b", 0, 1, err, sizeof(err)), -1);
    cr_assert_eq(fb_progress_set(p, "file", "logs", -1, 1, err, sizeof(err)), -1);
    char topic[260];
    memset(topic, 't', 249);
    topic[249] = '\0';
    set_ok(p, "file", topic, 12345, 1); /* the longest name Kafka makes */
    topic[249] = 't';
    topic[250] = '\0';
    cr_assert_eq(fb_progress_set(p, "file", topic, 0, 1, err, sizeof(err)), -1);
    /* a bound on targets per partition */
    for (int i = 0; i < FB_PROGRESS_TARGETS; i++) {
        char t[16];
        snprintf(t, sizeof(t), "t%d", i);
        set_ok(p, t, "many", 0, i);
    }
    cr_assert_eq(fb_progress_set(p, "one-more", "many", 0, 1, err, sizeof(err)), -1);
    sync_ok(p);
    fb_progress_close(p);
    p = opened(0);
    cr_assert_eq(fb_progress_get(p, "t63", "many", 0), 63);
    topic[249] = '\0';
    cr_assert_eq(fb_progress_get(p, "file", topic, 12345), 1);
    fb_progress_close(p);
}

Test(progress, skip_and_min_next)
{
    fb_progress_t *p = opened(0);
    const char *const both[] = {"file", "archive"};
    const char *const one[] = {"file"};

    cr_assert_eq(fb_progress_min_next(p, "logs", 0, both, 2), FB_PROGRESS_NONE);
    set_ok(p, "file", "logs", 0, 40);
    cr_assert(fb_progress_skip(p, "file", "logs", 0, 0));
    cr_assert(fb_progress_skip(p, "file", "logs", 0, 40));
    cr_assert_not(fb_progress_skip(p, "file", "logs", 0, 41));
    cr_assert_not(fb_progress_skip(p, "file", "logs", 0, -1));
    cr_assert_not(fb_progress_skip(p, "archive", "logs", 0, 0));
    cr_assert_not(fb_progress_skip(p, "file", "logs", 1, 0));
    /* archive has no mark: the marks alone allow nothing */
    cr_assert_eq(fb_progress_min_next(p, "logs", 0, both, 2), FB_PROGRESS_NONE);
    cr_assert_eq(fb_progress_min_next(p, "logs", 0, one, 1), 41);
    cr_assert_eq(fb_progress_min_next(p, "logs", 0, one, 0), FB_PROGRESS_NONE);
    set_ok(p, "archive", "logs", 0, 7);
    cr_assert_eq(fb_progress_min_next(p, "logs", 0, both, 2), 8);
    set_ok(p, "archive", "logs", 0, 70);
    cr_assert_eq(fb_progress_min_next(p, "logs", 0, both, 2), 41);
    set_ok(p, "archive", "logs", 0, INT64_MAX);
    cr_assert_eq(fb_progress_min_next(p, "logs", 0, both, 2), 41);
    const char *const bad[] = {"file", "Bad!"};
    cr_assert_eq(fb_progress_min_next(p, "logs", 0, bad, 2), FB_PROGRESS_NONE);
    fb_progress_close(p);
}

Test(progress, a_failed_sync_keeps_the_marks_for_the_next)
{
    fb_progress_t *p = opened(0);
    char why[512], err[512];
    struct stat st;

    set_ok(p, "file", "logs", 0, 1);
    set_ok(p, "file", "logs", 1, 1);
    sync_ok(p);
    fb_progress_close(p);
    /* a directory where partition 1's file goes: even root cannot rename
     * a file over it */
    cr_assert_eq(unlink(path("logs-1")), 0);
    cr_assert_eq(mkdir(path("logs-1"), 0700), 0);

    p = opened(0);
    cr_assert_eq(load(p, "logs", 0, NULL, why), 0, "%s", why);
    cr_assert_eq(load(p, "logs", 1, NULL, why), FB_PROGRESS_STALE);
    cr_assert_not_null(strstr(why, "not a regular file"), "%s", why);
    set_ok(p, "file", "logs", 0, 20);
    set_ok(p, "file", "logs", 1, 21);
    cr_assert_eq(fb_progress_sync(p, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "logs-1"), "%s", err);
    cr_assert_not_null(strstr(err, "rename"), "%s", err);
    /* partition 0 is on disk, whole; partition 1 is not, and waits */
    cr_assert_not(fb_progress_unsynced(p, "logs", 0));
    cr_assert(fb_progress_unsynced(p, "logs", 1));
    cr_assert_eq(fb_progress_get(p, "file", "logs", 1), 21);
    char *text = slurp(path("logs-0"));
    cr_assert_not_null(strstr(text, "target file 20\nend 1\n"), "%s", text);
    free(text);
    cr_assert_eq(fb_progress_sync(p, err, sizeof(err)), -1);
    cr_assert_eq(rmdir(path("logs-1")), 0);
    sync_ok(p);
    cr_assert_not(fb_progress_unsynced(p, "logs", 1));
    fb_progress_close(p);
    p = opened(0);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 20);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 1), 21);
    fb_progress_close(p);

    /* a write that fails half way (a file-size limit holds for root too):
     * the old file stays whole, no temporary is left */
    struct rlimit old, small = {.rlim_cur = 40, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    p = opened(0);
    set_ok(p, "file", "logs", 0, 30);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = fb_progress_sync(p, err, sizeof(err));
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    cr_assert_eq(rc, -1);
    cr_assert_not_null(strstr(err, "write"), "%s", err);
    char temp[64];
    temp_of(temp, sizeof(temp), "logs-0");
    cr_assert_eq(stat(path(temp), &st), -1);
    text = slurp(path("logs-0"));
    cr_assert_not_null(strstr(text, "target file 20\nend 1\n"), "%s", text);
    free(text);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 30);
    sync_ok(p);
    fb_progress_close(p);
    p = opened(0);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 30);
    fb_progress_close(p);
}

Test(progress, symbolic_links_are_refused_never_followed)
{
    char outside[600], link_path[600], why[512], err[512];
    const char *victim_text = "fbpipe-progress 1\ntopic logs\npartition 0\nid "
                              "00000000000000000000000000000000\ntarget file 999\nend 1\n";
    struct stat st;

    /* .progress itself a symbolic link to a folder elsewhere */
    snprintf(outside, sizeof(outside), "%s/elsewhere", dir);
    cr_assert_eq(mkdir(outside, 0700), 0);
    snprintf(link_path, sizeof(link_path), "%s/.progress", dir);
    cr_assert_eq(symlink(outside, link_path), 0);
    fb_progress_opts_t o = {.dir = dir};
    cr_assert_null(fb_progress_open(&o, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "refused"), "%s", err);
    cr_assert_eq(unlink(link_path), 0);
    /* or a file */
    cr_assert_eq(close(open(link_path, O_WRONLY | O_CREAT, 0600)), 0);
    cr_assert_null(fb_progress_open(&o, err, sizeof(err)));
    cr_assert_eq(unlink(link_path), 0);

    /* the partition's file a link to a file elsewhere that looks right */
    fb_progress_t *p = opened(0);
    snprintf(outside, sizeof(outside), "%s/elsewhere/victim", dir);
    int fd = open(outside, O_WRONLY | O_CREAT, 0600);
    cr_assert_eq(write(fd, victim_text, strlen(victim_text)), (ssize_t)strlen(victim_text));
    close(fd);
    cr_assert_eq(symlink(outside, path("logs-0")), 0);
    cr_assert_eq(load(p, "logs", 0, NULL, why), FB_PROGRESS_STALE);
    cr_assert_not_null(strstr(why, "symbolic link"), "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE);
    /* and the temporary name planted as a link too */
    char temp[64];
    temp_of(temp, sizeof(temp), "logs-0");
    cr_assert_eq(symlink(outside, path(temp)), 0);
    set_ok(p, "file", "logs", 0, 5);
    sync_ok(p);
    char *text = slurp(outside);
    cr_assert_str_eq(text, victim_text, "the file elsewhere is untouched");
    free(text);
    cr_assert_eq(lstat(path("logs-0"), &st), 0);
    cr_assert(S_ISREG(st.st_mode), "the link itself is replaced");
    fb_progress_close(p);

    /* a hard link (the same file under two names) is refused as well */
    cr_assert_eq(unlink(path("logs-0")), 0);
    cr_assert_eq(link(outside, path("logs-0")), 0);
    p = opened(0);
    cr_assert_eq(load(p, "logs", 0, NULL, why), FB_PROGRESS_STALE);
    cr_assert_not_null(strstr(why, "hard link"), "%s", why);
    cr_assert_null(strstr(why, "999"), "the file's contents are never quoted: %s", why);
    fb_progress_close(p);
}

Test(progress, memory_is_bounded_and_dropped_partitions_are_read_again)
{
    fb_progress_t *p = opened(4);
    char why[512];

    for (int i = 0; i < 10; i++) {
        cr_assert_eq(load(p, "logs", i, ID_A, why), 0, "%s", why);
        cr_assert_leq(fb_progress_cached(p), 4);
    }
    /* marks not on disk stay in memory, past the bound, until synced */
    for (int i = 0; i < 10; i++) {
        set_ok(p, "file", "logs", i, 100 + i);
        set_ok(p, "archive", "logs", i, i);
    }
    cr_assert_eq(fb_progress_cached(p), 10);
    sync_ok(p);
    cr_assert_leq(fb_progress_cached(p), 4);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 10; i++) {
            cr_assert_eq(fb_progress_get(p, "file", "logs", i), 100 + i);
            cr_assert_eq(fb_progress_get(p, "archive", "logs", i), i);
            cr_assert_leq(fb_progress_cached(p), 4);
        }
    /* a file spoilt while its partition was out of memory: no mark, and
     * said through next_stale */
    put_file("logs-0", "garbage\n", 0);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), FB_PROGRESS_NONE);
    const char *topic;
    int32_t part;
    const char *stale = fb_progress_next_stale(p, &topic, &part);
    cr_assert_not_null(stale);
    cr_assert_eq(part, 0);
    cr_assert_not_null(strstr(stale, "not a progress file"), "%s", stale);
    cr_assert_null(fb_progress_next_stale(p, &topic, &part));
    /* forget: out of memory, its file stays */
    sync_ok(p);
    fb_progress_forget(p, "logs", 5);
    size_t n = fb_progress_cached(p);
    fb_progress_forget(p, "logs", 5);
    cr_assert_eq(fb_progress_cached(p), n);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 5), 105);
    fb_progress_close(p);
}

Test(progress, a_roll_back_returns_to_what_was_written)
{
    fb_progress_t *p = opened(0);
    char why[512];

    set_ok(p, "file", "logs", 0, 10);
    sync_ok(p);
    set_ok(p, "file", "logs", 0, 20);
    set_ok(p, "archive", "logs", 0, 5);
    set_ok(p, "file", "logs", 1, 3);
    fb_progress_rollback(p);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 10);
    cr_assert_eq(fb_progress_get(p, "archive", "logs", 0), FB_PROGRESS_NONE);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 1), FB_PROGRESS_NONE);
    cr_assert_not(fb_progress_unsynced(p, "logs", 0));
    /* forget drops what was not synced */
    set_ok(p, "file", "logs", 0, 30);
    fb_progress_forget(p, "logs", 0);
    cr_assert_eq(load(p, "logs", 0, NULL, why), 0, "%s", why);
    cr_assert_eq(fb_progress_get(p, "file", "logs", 0), 10);
    fb_progress_close(p);
}
