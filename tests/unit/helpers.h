/*
 * helpers.h -- small shared helpers for the unit tests: a log capture sink
 * and temporary files. Header-only so each test stays one file.
 */
#ifndef FB_TEST_HELPERS_H
#define FB_TEST_HELPERS_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static char test_log_buf[16384];
static int test_log_count;

/* test_log_sink -- append each message on its own line. */
static inline void
test_log_sink(fb_log_level_t level, const char *msg, void *arg)
{
    size_t used = strlen(test_log_buf);
    (void)level;
    (void)arg;
    snprintf(test_log_buf + used, sizeof(test_log_buf) - used, "%s\n", msg);
    test_log_count++;
}

static inline void
test_log_capture(void)
{
    test_log_buf[0] = '\0';
    test_log_count = 0;
    fb_log_set_sink(test_log_sink, NULL);
}

static char test_dir[64];

/* test_mkdir -- a fresh private folder for one test. */
static inline void
test_mkdir(void)
{
    snprintf(test_dir, sizeof(test_dir), "/tmp/fbpipe-test-XXXXXX");
    if (mkdtemp(test_dir) == NULL)
        abort();
}

/* test_write -- write a file in test_dir with mode; returns its path (static). */
static inline const char *
test_write(const char *name, const char *content, mode_t mode)
{
    static char path[4][256];
    static int slot;
    char *p = path[slot++ % 4];
    int fd;

    snprintf(p, 256, "%s/%s", test_dir, name);
    unlink(p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        abort();
    if (fchmod(fd, mode) < 0)
        abort();
    close(fd);
    return p;
}

/* test_rm_one -- nftw's callback: remove one entry, children first. */
static inline int
test_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "test_rmdir: could not remove %s\n", path);
    return 0;
}

/* test_rmdir -- remove test_dir and what is in it, in this process (no
 * rm child: a test that gave up root, under valgrind, could not log it).
 * Says what it could not remove; a test does not fail for leftovers. */
static inline void
test_rmdir(void)
{
    if (test_dir[0] != '\0')
        nftw(test_dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* test_setup / test_teardown -- a private folder and captured logging. */
static inline void
test_setup(void)
{
    test_mkdir();
    test_log_capture();
}

static inline void
test_teardown(void)
{
    fb_log_set_sink(NULL, NULL);
    test_rmdir();
}

#endif /* FB_TEST_HELPERS_H */
