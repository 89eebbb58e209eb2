/*
 * fsync_fail.c -- preloaded into fbpiped (LD_PRELOAD) by
 * test-router-fsync: a disk whose syncs fail, as Linux reports it.
 *
 * While the file named by FBPIPE_FSYNC_FAIL exists, fsync, fdatasync and
 * syncfs fail with EIO, and what was written to a file since its last
 * good sync is lost the way the kernel loses it: the pages whose
 * writeback failed are marked clean and may be dropped at any time, so
 * those bytes read back as zeros, while the file keeps its size and the
 * next sync succeeds. Regular files opened with open() or openat() are
 * tracked by descriptor. Test code: never linked into fbpiped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FD 4096

static struct {
    bool tracked;
    uint64_t synced; /* bytes known to be on the disk */
} files[MAX_FD];

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static int (*real_ftruncate)(int, off_t);

static void *
next(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);

    if (p == NULL) {
        fprintf(stderr, "fsync_fail: %s not found\n", name);
        abort();
    }
    return p;
}

/* init -- the libc functions wrapped; before the first call (another
 * library's constructor may open files before this one's runs). */
__attribute__((constructor)) static void
init(void)
{
    if (real_open != NULL)
        return;
    real_open = next("open");
    real_openat = next("openat");
    real_close = next("close");
    real_fsync = next("fsync");
    real_fdatasync = next("fdatasync");
    real_syncfs = next("syncfs");
    real_ftruncate = next("ftruncate");
}

static bool
failing(void)
{
    const char *path = getenv("FBPIPE_FSYNC_FAIL");

    return path != NULL && access(path, F_OK) == 0;
}

static uint64_t
size_of(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void
track(int fd)
{
    struct stat st;

    if (fd < 0 || fd >= MAX_FD || fstat(fd, &st) < 0)
        return;
    files[fd].tracked = S_ISREG(st.st_mode);
    files[fd].synced = (uint64_t)st.st_size;
}

/* lose -- fd's bytes past its last good sync read back as zeros (written
 * through a descriptor of its own: fd may be O_APPEND). */
static void
lose(int fd)
{
    char path[64], zeros[4096] = {0};
    uint64_t end = size_of(fd), at;
    int w;

    if (fd < 0 || fd >= MAX_FD || !files[fd].tracked || end <= files[fd].synced)
        return;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if ((w = real_open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return;
    for (at = files[fd].synced; at < end;) {
        size_t n = end - at < sizeof(zeros) ? (size_t)(end - at) : sizeof(zeros);
        ssize_t got = pwrite(w, zeros, n, (off_t)at);
        if (got <= 0)
            break;
        at += (uint64_t)got;
    }
    real_close(w);
    fprintf(stderr, "fsync_fail: descriptor %d: %llu bytes lost\n", fd,
            (unsigned long long)(end - files[fd].synced));
}

static int
fail(void)
{
    errno = EIO;
    return -1;
}

int
open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;
    int fd;
    init();

    if (flags & (O_CREAT | O_TMPFILE)) {
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    fd = real_open(path, flags, mode);
    track(fd);
    return fd;
}

int
openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;
    int fd;
    init();

    if (flags & (O_CREAT | O_TMPFILE)) {
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    fd = real_openat(dirfd, path, flags, mode);
    track(fd);
    return fd;
}

int
close(int fd)
{
    init();
    if (fd >= 0 && fd < MAX_FD)
        files[fd].tracked = false;
    return real_close(fd);
}

int
ftruncate(int fd, off_t len)
{
    init();
    int rc = real_ftruncate(fd, len);

    if (rc == 0 && fd >= 0 && fd < MAX_FD && files[fd].synced > (uint64_t)len)
        files[fd].synced = (uint64_t)len;
    return rc;
}

/* synced -- a good sync of fd: all it holds is on the disk. */
static int
synced(int fd, int rc)
{
    if (rc == 0 && fd >= 0 && fd < MAX_FD && files[fd].tracked)
        files[fd].synced = size_of(fd);
    return rc;
}

int
fsync(int fd)
{
    init();
    if (failing()) {
        lose(fd);
        return fail();
    }
    return synced(fd, real_fsync(fd));
}

int
fdatasync(int fd)
{
    init();
    if (failing()) {
        lose(fd);
        return fail();
    }
    return synced(fd, real_fdatasync(fd));
}

int
syncfs(int fd)
{
    init();
    bool bad = failing();
    int rc = bad ? -1 : real_syncfs(fd);

    for (int i = 0; i < MAX_FD; i++)
        if (files[i].tracked) {
            if (bad)
                lose(i);
            else if (rc == 0)
                synced(i, 0);
        }
    return bad ? fail() : rc;
}
