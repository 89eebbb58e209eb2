/*
 * router_files.c -- per-key output files (router_files.h): a hash table of
 * keys, each with its pending bytes, its descriptor (or -1), the size of
 * its file and the rotation period of its last write; an LRU clock for
 * closing descriptors. It never logs, never follows a symbolic link
 * below its directory, and never appends to, rotates or cuts a file
 * without holding its flock (other routers write the same files).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/metrics.h"
#include "router/router_files.h"

#define NAME_MAX_LEN 160 /* an access key (128) and ".log.NNNNN" */
#define READ_BLOCK 65536
#define SYNC_MANY 16    /* files written in one flush past which their syncs overlap */
#define SYNC_WHOLE 1024 /* past which one syncfs() of the file system is cheaper */
#define KEPT_BYTES (64u << 20) /* empty buffers kept for reuse, all keys together */
#define PRUNE_MIN 4096         /* keys remembered before idle ones are forgotten */
#define EVICT_SHARE 8          /* 1/8 of the descriptors closed at once when full */
#define UNTRUSTED_MAX 256      /* files remembered as holding lines not synced */
#define LOCK_WAIT_MS 5000      /* for another router's lock on a file, by default */

typedef struct entry {
    char *key;
    int fd;
    uint64_t size;      /* bytes in the open file (the last known, when closed) */
    uint64_t stored;    /* bytes of the file as at the last checkpoint: a roll
                         * back cuts it back to this */
    dev_t dev;          /* the file's identity (ino 0: never opened) */
    ino_t ino;
    uint64_t period;    /* rotate_age period of the file's last write */
    uint64_t used;      /* LRU clock of the last write */
    bool dir_dirty;     /* created or rotated since the folder was synced */
    bool refusal_new;   /* refused since the caller last asked */
    size_t dropped;     /* bytes of lines the refusals since then dropped */
    size_t done;        /* written, waiting for the sync of the many */
    bool moved;         /* rotated or closed with done bytes: its fd is not theirs */
    char *buf;          /* pending lines */
    size_t len, cap;
    char *refused;      /* why its file cannot be written, or NULL */
    uint64_t refused_ms;
    bool refused_env;   /* by the environment (permissions): spooled, not dead */
    bool uncut;         /* a roll back could not cut it back to stored: what lies
                         * past stored is not counted as written (fb_files_tail) */
} entry_t;

struct fb_files {
    fb_files_opts_t o;  /* o.dir and o.spool_dir are copies of the caller's */
    int dirfd;
    int spool_dirfd;    /* o.spool_dir, or -1 */
    entry_t *tab;       /* open addressing; key NULL = free */
    size_t cap, n;
    size_t n_open;
    uint64_t clock;
    size_t pending;
    size_t kept;        /* capacity of the buffers, pending or not */
    size_t prune_at;    /* keys past which idle ones are forgotten */
    size_t n_refusals;  /* entries with refusal_new */
    /* files holding lines of this router whose sync failed and which a roll
     * back could not cut (another router appended after them, the file was
     * rotated or could not be opened): never read into a dedupe set, since
     * those lines may not be on disk although they are in the file; the
     * oldest forgotten past UNTRUSTED_MAX (their records were read again
     * and written anew long since) */
    struct {
        dev_t dev;
        ino_t ino;
    } untrusted[UNTRUSTED_MAX];
    size_t n_untrusted, untrusted_next;
};

static void name(char *out, const char *key, unsigned n);
static int entry_open(fb_files_t *f, entry_t *e, char *err, size_t errlen);

/* untrust -- the file (dev, ino) may hold lines of this router that are
 * not on disk: see fb_files.untrusted. */
static void
untrust(fb_files_t *f, dev_t dev, ino_t ino)
{
    if (ino == 0)
        return; /* never opened */
    for (size_t i = 0; i < f->n_untrusted; i++)
        if (f->untrusted[i].dev == dev && f->untrusted[i].ino == ino)
            return;
    f->untrusted[f->untrusted_next].dev = dev;
    f->untrusted[f->untrusted_next].ino = ino;
    f->untrusted_next = (f->untrusted_next + 1) % UNTRUSTED_MAX;
    if (f->n_untrusted < UNTRUSTED_MAX)
        f->n_untrusted++;
}

/* trusted -- fd's lines may go into a dedupe set: the file is not one
 * untrust named, and whatever it holds is on disk now (fdatasync: lines
 * another router, or this one before a crash, wrote and never synced
 * would otherwise count as written). */
static bool
trusted(const fb_files_t *f, int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    for (size_t i = 0; i < f->n_untrusted; i++)
        if (f->untrusted[i].dev == st.st_dev && f->untrusted[i].ino == st.st_ino)
            return false;
    return fdatasync(fd) == 0;
}

fb_files_t *
fb_files_new(const fb_files_opts_t *o, char *err, size_t errlen)
{
    fb_files_t *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->o = *o;
    f->spool_dirfd = -1;
    if (f->o.max_open == 0)
        f->o.max_open = 1;
    if (f->o.lock_wait_ms == 0)
        f->o.lock_wait_ms = LOCK_WAIT_MS;
    /* the caller's strings may not outlive this call */
    f->o.dir = strdup(o->dir);
    f->o.spool_dir = o->spool_dir ? strdup(o->spool_dir) : NULL;
    f->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (o->nofollow ? O_NOFOLLOW : 0));
    f->cap = 64;
    f->prune_at = PRUNE_MIN;
    f->tab = calloc(f->cap, sizeof(*f->tab));
    if (f->dirfd < 0 || f->tab == NULL || f->o.dir == NULL ||
        (o->spool_dir != NULL && f->o.spool_dir == NULL)) {
        snprintf(err, errlen, "%s: %s", o->dir,
                 f->dirfd < 0 ? (errno == ELOOP || errno == ENOTDIR
                                     ? "not a directory (a symbolic link?): refused"
                                     : strerror(errno))
                              : "out of memory");
        goto fail;
    }
    if (o->spool_dir != NULL) {
        f->spool_dirfd = open(o->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (f->spool_dirfd < 0) {
            snprintf(err, errlen, "%s: %s", o->spool_dir,
                     errno == ELOOP || errno == ENOTDIR
                         ? "not a directory (a symbolic link?): refused"
                         : strerror(errno));
            goto fail;
        }
    }
    return f;
fail:
    if (f->dirfd >= 0)
        close(f->dirfd);
    free((char *)f->o.dir);
    free((char *)f->o.spool_dir);
    free(f->tab);
    free(f);
    return NULL;
}

static void
entry_close(fb_files_t *f, entry_t *e)
{
    e->moved |= e->done > 0;
    if (e->fd >= 0) {
        close(e->fd);
        e->fd = -1;
        f->n_open--;
        fb_metrics_set(f->o.metrics, FB_MC_FILES_OPEN, f->n_open);
    }
}

void
fb_files_free(fb_files_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->cap; i++)
        if (f->tab[i].key != NULL) {
            entry_close(f, &f->tab[i]);
            free(f->tab[i].key);
            free(f->tab[i].buf);
            free(f->tab[i].refused);
        }
    free(f->tab);
    close(f->dirfd);
    if (f->spool_dirfd >= 0)
        close(f->spool_dirfd);
    free((char *)f->o.dir);
    free((char *)f->o.spool_dir);
    free(f);
}

/* slot -- the entry of key, or the free slot where it goes. */
static entry_t *
slot(entry_t *tab, size_t cap, const char *key)
{
    size_t i = (size_t)(fb_hash_str(key) & (cap - 1));

    while (tab[i].key != NULL && strcmp(tab[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* forget_refusal -- e's file is looked at again at its next write (unless
 * the caller has not taken the refusal yet). */
static void
forget_refusal(entry_t *e)
{
    if (!e->refusal_new) {
        free(e->refused);
        e->refused = NULL;
    }
}

/* idle -- an entry that holds nothing: no descriptor, no bytes, no
 * refusal, nothing written since the checkpoint. */
static bool
idle(const entry_t *e)
{
    return e->fd < 0 && e->len == 0 && e->refused == NULL && e->size <= e->stored;
}

/* rebuild -- the table at cap entries, without the idle ones when prune
 * is set (they cost memory for every key ever seen); 0 or -1. */
static int
rebuild(fb_files_t *f, size_t cap, bool prune)
{
    entry_t *tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return -1;
    for (size_t i = 0; i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        if (e->key == NULL)
            continue;
        if (prune && idle(e)) {
            f->kept -= e->cap;
            free(e->key);
            free(e->buf);
            f->n--;
            continue;
        }
        *slot(tab, cap, e->key) = *e;
    }
    free(f->tab);
    f->tab = tab;
    f->cap = cap;
    return 0;
}

/* grow -- double the table (load at most one half). */
static int
grow(fb_files_t *f)
{
    return rebuild(f, f->cap * 2, false);
}

/* prune -- forget idle keys once there are many; a key seen again is
 * simply looked up anew. */
static void
prune(fb_files_t *f)
{
    size_t keep = 0, cap = 64;

    if (f->n < f->prune_at)
        return;
    for (size_t i = 0; i < f->cap; i++)
        keep += f->tab[i].key != NULL && !idle(&f->tab[i]);
    while ((keep + 1) * 2 > cap) /* the load grow() keeps */
        cap *= 2;
    if (rebuild(f, cap, true) < 0)
        return; /* out of memory: keep them, try again later */
    f->prune_at = f->n * 2 > PRUNE_MIN ? f->n * 2 : PRUNE_MIN;
}

int
fb_files_add(fb_files_t *f, const char *key, const char *line, size_t len)
{
    entry_t *e;

    if (strlen(key) + 12 > NAME_MAX_LEN)
        return -1;
    if ((f->n + 1) * 2 > f->cap && grow(f) < 0)
        return -1;
    e = slot(f->tab, f->cap, key);
    if (e->key == NULL) {
        e->key = strdup(key);
        if (e->key == NULL)
            return -1;
        e->fd = -1;
        f->n++;
    }
    if (e->len + len > e->cap) {
        size_t cap = e->cap ? e->cap : 4096;
        char *b;
        while (cap < e->len + len)
            cap *= 2;
        b = realloc(e->buf, cap);
        if (b == NULL)
            return -1;
        f->kept += cap - e->cap;
        e->buf = b;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, line, len);
    e->len += len;
    f->pending += len;
    return 0;
}

int
fb_files_refused(fb_files_t *f, const char *key, char *err, size_t errlen)
{
    char file[NAME_MAX_LEN];
    entry_t *e;
    struct stat st;

    if (strlen(key) + 12 > NAME_MAX_LEN) {
        snprintf(err, errlen, "access key too long for a file name");
        return FB_FILES_DEAD;
    }
    e = slot(f->tab, f->cap, key);
    if (e->key != NULL && e->fd >= 0)
        return 0; /* open, and checked when it was opened */
    if (e->key != NULL && e->refused != NULL) {
        if (fb_monotonic_ms() - e->refused_ms < FB_FILES_REFUSED_MS) {
            snprintf(err, errlen, "%s", e->refused);
            return e->refused_env ? FB_FILES_SPOOL : FB_FILES_DEAD;
        }
        forget_refusal(e); /* time to try again */
    }
    name(file, key, 0);
    if (fstatat(f->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        (S_ISREG(st.st_mode) && st.st_nlink == 1))
        return 0; /* absent (created at the write), or a plain file */
    snprintf(err, errlen, "%s/%s: %s", f->o.dir, file,
             S_ISLNK(st.st_mode)   ? "is a symbolic link: refused"
             : S_ISREG(st.st_mode) ? "has other hard links: refused"
                                   : "not a regular file: refused");
    return FB_FILES_DEAD;
}

size_t
fb_files_pending(const fb_files_t *f)
{
    return f->pending;
}

uint64_t
fb_files_key_bytes(fb_files_t *f, const char *key)
{
    entry_t *e;
    char file[NAME_MAX_LEN];
    struct stat st;
    uint64_t len;

    if (strlen(key) + 12 > NAME_MAX_LEN)
        return 0;
    e = slot(f->tab, f->cap, key);
    len = e->key != NULL ? e->len : 0;
    if (e->key != NULL && e->fd >= 0)
        return e->size + len;
    name(file, key, 0);
    if (fstatat(f->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return len;
    return (uint64_t)st.st_size + len;
}

/* cut_back -- drop a half line at the end of fd (a crash, a full disk);
 * sets *size to what remains. 0, or -1 with errno. */
static int
cut_back(int fd, uint64_t *size)
{
    struct stat st;
    char buf[READ_BLOCK];
    off_t end, pos;

    if (fstat(fd, &st) < 0)
        return -1;
    end = st.st_size;
    pos = end;
    while (pos > 0) {
        size_t n = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
        ssize_t got = pread(fd, buf, n, pos - (off_t)n);
        if (got != (ssize_t)n)
            return -1;
        for (size_t i = n; i > 0; i--)
            if (buf[i - 1] == '\n') {
                off_t keep = pos - (off_t)n + (off_t)i;
                if (keep != end && ftruncate(fd, keep) < 0)
                    return -1;
                *size = (uint64_t)keep;
                return 0;
            }
        pos -= (off_t)n;
    }
    if (end != 0 && ftruncate(fd, 0) < 0)
        return -1;
    *size = 0;
    return 0;
}

/* period -- which rotate_age period the wall-clock time ms falls in,
 * counted from the Unix epoch (UTC), so that 1d rotates at midnight UTC
 * whoever opened the file and when; 0 without rotate_age. */
static uint64_t
period(const fb_files_t *f, uint64_t ms)
{
    return f->o.rotate_age_ms ? ms / f->o.rotate_age_ms : 0;
}

/* name -- "<key>.log" or "<key>.log.<n>". */
static void
name(char *out, const char *key, unsigned n)
{
    if (n == 0)
        snprintf(out, NAME_MAX_LEN, "%s.log", key);
    else
        snprintf(out, NAME_MAX_LEN, "%s.log.%u", key, n);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* evict -- close the least recently used descriptors: an eighth of them
 * at once, so that a full table is scanned once per many opens, not at
 * every one. */
static void
evict(fb_files_t *f)
{
    size_t want = f->o.max_open / EVICT_SHARE ? f->o.max_open / EVICT_SHARE : 1, n = 0;
    uint64_t *used = want > 1 ? malloc(f->n_open * sizeof(*used)) : NULL, limit = UINT64_MAX;
    entry_t *lru = NULL;

    for (size_t i = 0; i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        if (e->key == NULL || e->fd < 0)
            continue;
        if (used != NULL && n < f->n_open)
            used[n++] = e->used;
        if (lru == NULL || e->used < lru->used)
            lru = e;
    }
    if (used != NULL && n > want) {
        qsort(used, n, sizeof(*used), cmp_u64);
        limit = used[want - 1];
        for (size_t i = 0; i < f->cap; i++)
            if (f->tab[i].key != NULL && f->tab[i].fd >= 0 && f->tab[i].used <= limit)
                entry_close(f, &f->tab[i]);
    } else if (lru != NULL) {
        entry_close(f, lru); /* one only (no memory for more, or few open) */
    }
    free(used);
}

/* permanent -- an error opening a key's file that no retry mends, for
 * what is at its name is not a file the router may write (a symbolic
 * link, a directory, a device). */
static bool
permanent(int err)
{
    return err == ELOOP || err == EISDIR || err == ENXIO || err == ETXTBSY || err == ENOTDIR ||
           err == EMLINK;
}

/* environmental -- permissions: an operator's or a tool's doing (a
 * logrotate creating the file as root, a relabel), mended from outside.
 * Spooled when there is a spool with room; retried otherwise, as a full
 * disk, an I/O error or running out of descriptors are. */
static bool
environmental(int err)
{
    return err == EACCES || err == EPERM;
}

/* spool_room -- the spool of file has room for more (under spool_max). */
static bool
spool_room(fb_files_t *f, const char *file)
{
    struct stat st;

    if (f->spool_dirfd < 0)
        return false;
    if (fstatat(f->spool_dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT;
    return S_ISREG(st.st_mode) && (uint64_t)st.st_size < f->o.spool_max;
}

/* unspool -- the lines spooled while e's file could not be written
 * go into it first, whole lines only, synced; then the spool file is
 * removed (a crash in between writes them again: duplicates, never a
 * loss). 0, or -1 with errno. */
static int
unspool(fb_files_t *f, entry_t *e, int fd, const char *file)
{
    char buf[READ_BLOCK];
    uint64_t copied = 0, whole;
    struct stat st;
    int sfd;

    if (f->spool_dirfd < 0)
        return 0;
    /* read and write: a half line at its end (a crash) is cut off first */
    sfd = openat(f->spool_dirfd, file, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (sfd < 0)
        return errno == ENOENT ? 0 : -1;
    if (fstat(sfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(sfd);
        errno = EINVAL;
        return -1;
    }
    if (cut_back(sfd, &whole) < 0) {
        close(sfd);
        return -1;
    }
    while (copied < whole) {
        size_t want = whole - copied < sizeof(buf) ? (size_t)(whole - copied) : sizeof(buf);
        ssize_t got = pread(sfd, buf, want, (off_t)copied);
        if (got <= 0) {
            close(sfd);
            errno = got < 0 ? errno : EIO;
            return -1;
        }
        for (ssize_t at = 0; at < got;) {
            ssize_t w = write(fd, buf + at, (size_t)(got - at));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                close(sfd);
                errno = w < 0 ? errno : ENOSPC;
                return -1;
            }
            at += w;
        }
        copied += (uint64_t)got;
    }
    close(sfd);
    if (copied > 0 && fdatasync(fd) < 0)
        return -1;
    if (unlinkat(f->spool_dirfd, file, 0) < 0 && errno != ENOENT)
        return -1;
    e->size += copied;
    return 0;
}

/* refuse -- e's file cannot be written: its pending lines are dropped
 * (the caller sends their records elsewhere, fb_files_next_refusal) and
 * the key is refused for a while. */
static void
refuse(fb_files_t *f, entry_t *e, const char *why, bool env)
{
    char *copy = strdup(why);

    if (copy == NULL)
        return; /* no memory even for that: retried like any failure */
    free(e->refused);
    e->refused = copy;
    e->refused_env = env;
    e->refused_ms = fb_monotonic_ms();
    f->pending -= e->len;
    e->dropped += e->len;
    e->len = 0;
    if (!e->refusal_new) {
        e->refusal_new = true;
        f->n_refusals++;
    }
}

/* lock_wait -- fd's exclusive flock, waiting at most lock_wait_ms for
 * another router to let go of it (it holds it for one batch's writes, a
 * rotation and maybe a sync: milliseconds); 0, or -1 with errno
 * (EWOULDBLOCK: still held, by a process stopped or stuck in I/O: the
 * caller keeps its lines and tries again later, never waits forever). */
static int
lock_wait(const fb_files_t *f, int fd)
{
    uint64_t deadline = 0;
    unsigned nap_us = 100;

    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return -1;
        if (deadline == 0)
            deadline = fb_monotonic_ms() + f->o.lock_wait_ms;
        else if (fb_monotonic_ms() >= deadline)
            return -1;
        usleep(nap_us);
        nap_us = nap_us < 20000 ? nap_us * 2 : 20000;
    }
}

/* lock_error -- err for a lock that failed (lock_wait's errno). */
static void
lock_error(fb_files_t *f, const char *file, char *err, size_t errlen)
{
    if (errno == EWOULDBLOCK)
        snprintf(err, errlen, "%s/%s: locked by another process for over %llu ms (a router "
                 "stopped or stuck?): its lines wait", f->o.dir, file,
                 (unsigned long long)f->o.lock_wait_ms);
    else
        snprintf(err, errlen, "%s/%s: flock failed: %s", f->o.dir, file, strerror(errno));
}

/* lock_named -- take fd's exclusive lock and make sure that fd is still
 * the file at name (a rotation by another router renames it away while we
 * wait): 1 locked and still there, with *st as the name says (size and
 * time as of now, under the lock); 0 not there any more (unlocked: open
 * the name again); -1 with errno when flock fails. */
static int
lock_named(fb_files_t *f, int fd, const char *file, struct stat *st)
{
    struct stat named;
    dev_t dev = st->st_dev;
    ino_t ino = st->st_ino;

    if (lock_wait(f, fd) < 0)
        return -1;
    if (fstatat(f->dirfd, file, &named, AT_SYMLINK_NOFOLLOW) < 0 || named.st_dev != dev ||
        named.st_ino != ino) {
        (void)flock(fd, LOCK_UN);
        return 0;
    }
    *st = named;
    return 1;
}

/* entry_unlock -- the end of e's appends and rotations for this flush:
 * another router may write the file. */
static void
entry_unlock(entry_t *e)
{
    if (e->fd >= 0)
        (void)flock(e->fd, LOCK_UN);
}

/* entry_lock -- e's open file locked for this flush's appends and
 * rotations, as it is now: when another router rotated it, it is closed
 * and the file now at its name opened (and locked); when another router
 * appended to it, its size is taken as it is (a half line a router killed
 * while writing left is cut), and what this entry wrote before is no
 * longer its to cut at a roll back (it comes again as a duplicate, never
 * cutting another router's lines). 0, or -1 with err. */
static int
entry_lock(fb_files_t *f, entry_t *e, char *err, size_t errlen)
{
    char file[NAME_MAX_LEN];
    struct stat st = {.st_dev = e->dev, .st_ino = e->ino};

    name(file, e->key, 0);
    switch (lock_named(f, e->fd, file, &st)) {
    case 1:
        break;
    case 0:
        entry_close(f, e);
        return entry_open(f, e, err, errlen);
    default:
        lock_error(f, file, err, errlen);
        return -1;
    }
    if ((uint64_t)st.st_size != e->size) { /* another router wrote (or cut) it */
        uint64_t size;
        if (cut_back(e->fd, &size) < 0) {
            snprintf(err, errlen, "%s/%s: cannot cut back a half line: %s", f->o.dir, file,
                     strerror(errno));
            entry_unlock(e);
            return -1;
        }
        e->size = e->stored = size;
    }
    /* the period of the file's last write by any router: rotated by age
     * once, whoever writes first in a later period */
    e->period = period(f, (uint64_t)st.st_mtim.tv_sec * 1000 +
                              (uint64_t)st.st_mtim.tv_nsec / 1000000);
    return 0;
}

/* entry_open -- open (or create) e's file and lock it (entry_unlock);
 * 0, or -1 with err (and the key refused when the failure is
 * permanent). */
static int
entry_open(fb_files_t *f, entry_t *e, char *err, size_t errlen)
{
    char file[NAME_MAX_LEN];
    struct stat st;
    int fd;

    name(file, e->key, 0);
    while (f->n_open >= f->o.max_open)
        evict(f);
again:
    /* read and write: the tail is read to cut back a half line */
    fd = openat(f->dirfd, file, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                O_NONBLOCK | O_NOCTTY, 0640);
    if (fd < 0) {
        int saved = errno;
        snprintf(err, errlen, "%s/%s: %s", f->o.dir, file,
                 saved == ELOOP ? "is a symbolic link: refused" : strerror(saved));
        if (f->o.refusals && permanent(saved))
            refuse(f, e, err, false);
        else if (f->o.refusals && environmental(saved) && spool_room(f, file))
            refuse(f, e, err, true);
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) {
        snprintf(err, errlen, "%s/%s: %s: refused", f->o.dir, file,
                 S_ISREG(st.st_mode) ? "has other hard links" : "not a regular file");
        if (f->o.refusals)
            refuse(f, e, err, false);
        close(fd);
        return -1;
    }
    /* one writer at a time (the lock is held until entry_unlock), and the
     * file locked must still be the one at its name: another router may
     * have rotated it between the open and the lock */
    switch (lock_named(f, fd, file, &st)) {
    case 1:
        break;
    case 0:
        close(fd);
        goto again;
    default:
        lock_error(f, file, err, errlen);
        close(fd);
        return -1;
    }
    /* the file this entry closed with bytes past its checkpoint, and that
     * nobody appended to since, keeps that checkpoint; any other (new,
     * replaced, fully stored when closed, or written by another router
     * since) is taken as it is: its bytes are not this router's to cut */
    bool tail = e->ino == st.st_ino && e->dev == st.st_dev && e->size > e->stored &&
                (uint64_t)st.st_size == e->size;
    if (cut_back(fd, &e->size) < 0) {
        snprintf(err, errlen, "%s/%s: cannot cut back a half line: %s", f->o.dir, file,
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (!tail || e->stored > e->size)
        e->stored = e->size;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    uint64_t before = e->size;
    if (unspool(f, e, fd, file) < 0) {
        snprintf(err, errlen, "%s/%s: cannot move its spooled lines (%s/%s) into it: %s",
                 f->o.dir, file, f->o.spool_dir, file, strerror(errno));
        close(fd);
        return -1;
    }
    /* the spooled lines moved in are synced and their spool file is gone:
     * no roll back may cut them (what was before them is synced too) */
    if (e->size != before)
        e->stored = e->size;
    e->fd = fd;
    /* the period of the file's last write, as its time says: kept across
     * a close, a reopen or a restart */
    e->period = period(f, (uint64_t)st.st_mtim.tv_sec * 1000 +
                              (uint64_t)st.st_mtim.tv_nsec / 1000000);
    e->dir_dirty |= st.st_size == 0; /* new, probably: its name is synced too */
    f->n_open++;
    fb_metrics_set(f->o.metrics, FB_MC_FILES_OPEN, f->n_open);
    return 0;
}

/* rotate -- <key>.log -> .1 -> .2 ... keeping rotate_keep; 0 or -1. The
 * renames happen under the lock of the file being rotated (whose name is
 * <key>.log until the last one), so that another router rotates only the
 * file that follows, never the same one again; e's file is closed after
 * them. */
static int
rotate(fb_files_t *f, entry_t *e, char *err, size_t errlen)
{
    char from[NAME_MAX_LEN], to[NAME_MAX_LEN];

    if (f->o.rotate_keep == 0) {
        name(from, e->key, 0);
        if (unlinkat(f->dirfd, from, 0) < 0 && errno != ENOENT)
            goto fail;
        entry_close(f, e);
        return 0;
    }
    for (unsigned n = f->o.rotate_keep; n > 0; n--) {
        name(from, e->key, n - 1);
        name(to, e->key, n);
        if (renameat(f->dirfd, from, f->dirfd, to) < 0 && errno != ENOENT)
            goto fail;
    }
    entry_close(f, e);
    return 0;
fail:
    snprintf(err, errlen, "%s/%s: rotation failed: %s", f->o.dir, from, strerror(errno));
    entry_close(f, e);
    return -1;
}

/* chunk -- how much of e's pending bytes from off go into the current
 * file: all of them, or the whole lines that keep it within rotate_size
 * (0: none fit, rotate first; a line longer than rotate_size goes alone
 * into a fresh file). */
static size_t
chunk(const fb_files_t *f, const entry_t *e, size_t off)
{
    size_t left = e->len - off, room;
    const char *nl;

    if (f->o.rotate_size == 0 || e->size + left <= f->o.rotate_size)
        return left;
    room = e->size < f->o.rotate_size ? (size_t)(f->o.rotate_size - e->size) : 0;
    for (size_t n = room < left ? room : left; n > 0; n--)
        if (e->buf[off + n - 1] == '\n')
            return n;
    if (e->size > 0)
        return 0;
    nl = memchr(e->buf + off, '\n', left);
    return nl ? (size_t)(nl - (e->buf + off)) + 1 : left;
}

/* entry_write -- e->buf[off..off+n) to e's file, which is open; 0, or -1
 * with err (a short write is cut back: no half line stays behind). */
static int
entry_write(fb_files_t *f, entry_t *e, size_t off, size_t n, char *err, size_t errlen)
{
    ssize_t w = write(e->fd, e->buf + off, n);

    if (w == (ssize_t)n) {
        e->size += n;
        return 0;
    }
    int saved = w < 0 ? errno : ENOSPC;
    if (w > 0 && ftruncate(e->fd, (off_t)e->size) < 0)
        entry_close(f, e); /* cut back on the next open */
    snprintf(err, errlen, "%s/%s.log: write failed: %s", f->o.dir, e->key, strerror(saved));
    return -1;
}

/* entry_sync -- fsync e's file (and the folder, after a rotation or a
 * creation); 0, or FB_FILES_UNSYNCED with err. */
static int
entry_sync_now(fb_files_t *f, entry_t *e, char *err, size_t errlen)
{
    if (fdatasync(e->fd) < 0) { /* an append's new size is data for this */
        snprintf(err, errlen, "%s/%s.log: fdatasync failed: %s", f->o.dir, e->key,
                 strerror(errno));
        return FB_FILES_UNSYNCED;
    }
    if (e->dir_dirty) {
        if (fsync(f->dirfd) < 0) {
            snprintf(err, errlen, "%s: fsync failed: %s", f->o.dir, strerror(errno));
            return FB_FILES_UNSYNCED;
        }
        e->dir_dirty = false;
    }
    return 0;
}

/* synced -- one sync took since t0_us (the metrics' fsync latency);
 * returns rc. */
static int
synced(const fb_files_t *f, uint64_t t0_us, int rc)
{
    fb_metrics_observe(f->o.metrics, FB_MC_FSYNC_LATENCY, fb_monotonic_us() - t0_us);
    return rc;
}

static int
entry_sync(fb_files_t *f, entry_t *e, char *err, size_t errlen)
{
    uint64_t t0 = fb_monotonic_us();

    return synced(f, t0, entry_sync_now(f, e, err, errlen));
}

/* consume -- n written bytes leave e's buffer; an empty buffer is given
 * back when the buffers of all keys hold more than KEPT_BYTES. */
static void
consume(fb_files_t *f, entry_t *e, size_t n)
{
    memmove(e->buf, e->buf + n, e->len - n);
    e->len -= n;
    f->pending -= n;
    if (e->len == 0 && f->kept > KEPT_BYTES) {
        f->kept -= e->cap;
        free(e->buf);
        e->buf = NULL;
        e->cap = 0;
    }
}

/* entry_flush -- write e's pending bytes, rotating where due (by size, so
 * that no rotated file holds more than rotate_size but for a single longer
 * line; by age, when now is a later period than its last write); what is
 * written leaves the buffer (defer: later, once synced), the rest stays.
 * 0, or -1 (FB_FILES_UNSYNCED when a sync failed) with err. */
static int
entry_flush(fb_files_t *f, entry_t *e, uint64_t now, bool sync, bool defer, char *err,
            size_t errlen)
{
    size_t off = 0, n;
    int rc = 0;

    /* the file stays locked from here to entry_unlock below (or its
     * close): appends, rotations and half-line cuts of one router at a
     * time (see entry_lock) */
    if (e->fd >= 0 && e->len > 0 && entry_lock(f, e, err, errlen) < 0)
        return -1;
    while (off < e->len) {
        if (e->fd < 0 && entry_open(f, e, err, errlen) < 0) {
            if (e->refused != NULL && e->refusal_new)
                return -1; /* its lines are dropped: nothing to consume */
            rc = -1;
            break;
        }
        e->used = ++f->clock;
        n = chunk(f, e, off);
        /* by age: the file was last written in an earlier period */
        if (n == 0 || (e->size > 0 && now > e->period)) {
            /* what the old file holds is synced before it is renamed
             * (durable: a roll back finds its lines in the current file) */
            if ((sync || (f->o.durable && e->size > e->stored)) &&
                (rc = entry_sync(f, e, err, errlen)) < 0) {
                off = 0; /* not consumed: the caller rolls back */
                break;
            }
            e->moved |= defer && off > 0; /* written to the file renamed now */
            if (rotate(f, e, err, errlen) < 0) {
                rc = -1;
                break;
            }
            fb_metrics_add(f->o.metrics, FB_MC_ROTATIONS, 1);
            e->dir_dirty = true;
            continue;
        }
        if (entry_write(f, e, off, n, err, errlen) < 0) {
            rc = -1;
            break;
        }
        e->period = now;
        off += n;
    }
    entry_unlock(e);
    /* the lines may not be on disk when fsync fails, and a later fsync
     * may succeed without them: the caller rolls back */
    if (rc == 0 && sync && (rc = entry_sync(f, e, err, errlen)) < 0)
        return rc;
    if (defer)
        e->done = off; /* consumed once the whole file system is synced */
    else
        consume(f, e, off);
    return rc;
}

/* sync_whole -- the whole file system of the directory, and the directory
 * itself when dir is set; 0, or FB_FILES_UNSYNCED with err. */
static int
sync_whole_now(fb_files_t *f, bool dir, char *err, size_t errlen)
{
    if (syncfs(f->dirfd) < 0) {
        snprintf(err, errlen, "%s: syncfs failed: %s", f->o.dir, strerror(errno));
        return FB_FILES_UNSYNCED;
    }
    if (dir && fsync(f->dirfd) < 0) {
        snprintf(err, errlen, "%s: fsync failed: %s", f->o.dir, strerror(errno));
        return FB_FILES_UNSYNCED;
    }
    return 0;
}

/* sync_many -- the files written by a flush of many: every one's
 * writeback started at once, then each waited for (the first journal
 * commit serves the rest); the whole file system at once when there are
 * more than SYNC_WHOLE, or when a file written was rotated or closed
 * meanwhile. 0, or FB_FILES_UNSYNCED with err. */
static int
sync_many_now(fb_files_t *f, size_t files, bool dir, char *err, size_t errlen)
{
    bool whole = files > SYNC_WHOLE;

    for (size_t i = 0; i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        if (e->key == NULL || (e->done == 0 && !e->moved))
            continue;
        if (e->moved || e->fd < 0)
            whole = true;
        else if (!whole)
            (void)sync_file_range(e->fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint */
    }
    if (whole)
        return sync_whole_now(f, dir, err, errlen);
    for (size_t i = 0; i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        if (e->key != NULL && e->done > 0 && fdatasync(e->fd) < 0) {
            snprintf(err, errlen, "%s/%s.log: fdatasync failed: %s", f->o.dir, e->key,
                     strerror(errno));
            return FB_FILES_UNSYNCED;
        }
    }
    if (dir && fsync(f->dirfd) < 0) {
        snprintf(err, errlen, "%s: fsync failed: %s", f->o.dir, strerror(errno));
        return FB_FILES_UNSYNCED;
    }
    return 0;
}

static int
sync_whole(fb_files_t *f, bool dir, char *err, size_t errlen)
{
    uint64_t t0 = fb_monotonic_us();

    return synced(f, t0, sync_whole_now(f, dir, err, errlen));
}

static int
sync_many(fb_files_t *f, size_t files, bool dir, char *err, size_t errlen)
{
    uint64_t t0 = fb_monotonic_us();

    return synced(f, t0, sync_many_now(f, files, dir, err, errlen));
}

int
fb_files_flush(fb_files_t *f, bool sync, char *err, size_t errlen)
{
    size_t dirty = 0;
    bool many, dir = false;
    int rc = 0;

    for (size_t i = 0; sync && i < f->cap; i++)
        dirty += f->tab[i].key != NULL && f->tab[i].len > 0;
    /* many files: their syncs overlap (sync_many) instead of one after another */
    many = dirty > SYNC_MANY;
    uint64_t now = period(f, (uint64_t)(fb_wall_ns() / 1000000)); /* once for all */
    for (size_t i = 0; i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        char why[512];
        if (e->key == NULL || e->len == 0)
            continue;
        int x = entry_flush(f, e, now, sync && !many, many, why, sizeof(why));
        if (x < 0 && rc == 0 && !e->refusal_new) { /* a refused key's lines went back */
            snprintf(err, errlen, "%s", why);
            rc = x;
        }
        dir |= e->dir_dirty;
        if (x == FB_FILES_UNSYNCED) { /* rolled back by the caller: no more writes */
            if (rc != x)
                snprintf(err, errlen, "%s", why);
            rc = x;
            break;
        }
    }
    if (!many) {
        if (rc == 0)
            prune(f);
        return rc;
    }
    char why[512];
    int s = rc == FB_FILES_UNSYNCED ? rc : sync_many(f, dirty, dir, why, sizeof(why));
    if (s < 0 && rc != FB_FILES_UNSYNCED) {
        snprintf(err, errlen, "%s", why);
        rc = s;
    }
    for (size_t i = 0; i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        if (e->key == NULL)
            continue;
        if (s == 0) { /* synced: written for good; else written again */
            consume(f, e, e->done);
            e->dir_dirty = false;
        }
        e->done = 0;
        e->moved = false;
    }
    if (rc == 0)
        prune(f);
    return rc;
}

const char *
fb_files_next_refusal(fb_files_t *f, const char **why, bool *spool, size_t *dropped)
{
    for (size_t i = 0; f->n_refusals > 0 && i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        if (e->key != NULL && e->refusal_new) {
            e->refusal_new = false;
            f->n_refusals--;
            *why = e->refused;
            *spool = e->refused_env;
            *dropped = e->dropped;
            e->dropped = 0;
            return e->key;
        }
    }
    return NULL;
}

int
fb_files_sync(fb_files_t *f, char *err, size_t errlen)
{
    return sync_whole(f, true, err, errlen);
}

void
fb_files_checkpoint(fb_files_t *f)
{
    for (size_t i = 0; i < f->cap; i++) {
        f->tab[i].stored = f->tab[i].size;
        f->tab[i].uncut = false;
    }
}

/* cut_to_checkpoint -- e's file back to e->stored bytes, through its
 * descriptor, or by its name while it is still the file e wrote (a file
 * rotated or replaced since is left as it is), under its lock and only
 * while it ends with what this entry wrote: a file another router
 * appended to since is left as it is too (this entry's lines then come
 * again as duplicates; cutting would lose the other router's). 0, or -1
 * with err. */
static int
cut_to_checkpoint(fb_files_t *f, entry_t *e, char *err, size_t errlen)
{
    char file[NAME_MAX_LEN];
    struct stat st;
    int fd = e->fd;

    name(file, e->key, 0);
    if (fd < 0) {
        fd = openat(f->dirfd, file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0 && errno == ENOENT) {
            untrust(f, e->dev, e->ino); /* renamed away (rotated) with them */
            goto done;
        }
        if (fd < 0)
            goto fail;
    }
    if (lock_wait(f, fd) < 0)
        goto fail;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (st.st_dev == e->dev && st.st_ino == e->ino && (uint64_t)st.st_size == e->size) {
        if (ftruncate(fd, (off_t)e->stored) < 0)
            goto fail;
    } else {
        /* appended to by another router, or rotated: as it is, its lines
         * past the checkpoint never trusted by a dedupe set */
        untrust(f, e->dev, e->ino);
        if (fd == e->fd)
            e->stored = (uint64_t)st.st_size;
    }
    if (fd != e->fd)
        close(fd);
    else
        (void)flock(fd, LOCK_UN);
done:
    e->size = e->stored;
    return 0;
fail:
    snprintf(err, errlen, "%s/%s: cannot cut back to its last %llu synced bytes: %s", f->o.dir,
             file, (unsigned long long)e->stored, strerror(errno));
    if (fd >= 0 && fd != e->fd)
        close(fd);
    untrust(f, e->dev, e->ino);
    entry_close(f, e); /* its next open cuts back a half line at least */
    e->uncut = true;
    return -1;
}

int
fb_files_rollback(fb_files_t *f, char *err, size_t errlen)
{
    int rc = 0;

    fb_files_discard(f);
    for (size_t i = 0; i < f->cap; i++) {
        entry_t *e = &f->tab[i];
        char why[512];
        e->done = 0;
        e->moved = false;
        if (e->key == NULL || e->size <= e->stored)
            continue;
        if (cut_to_checkpoint(f, e, why, sizeof(why)) < 0 && rc == 0) {
            snprintf(err, errlen, "%s", why);
            rc = -1;
        }
    }
    return rc;
}

void
fb_files_discard(fb_files_t *f)
{
    for (size_t i = 0; i < f->cap; i++)
        f->tab[i].len = 0;
    f->pending = 0;
}

void
fb_files_reopen(fb_files_t *f)
{
    for (size_t i = 0; i < f->cap; i++)
        if (f->tab[i].key != NULL) {
            entry_close(f, &f->tab[i]);
            forget_refusal(&f->tab[i]);
        }
}

/* fb_files_usage -- see router_files.h: the directory read afresh through
 * a duplicate of its descriptor (readdir moves the position). */
int
fb_files_usage(fb_files_t *f, uint64_t *bytes, uint64_t *files)
{
    struct dirent *d;
    struct stat st;
    DIR *dir;
    int fd = openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    *bytes = *files = 0;
    if (fd < 0)
        return -1;
    if ((dir = fdopendir(fd)) == NULL) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    while ((d = readdir(dir)) != NULL) {
        if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
            *bytes += (uint64_t)st.st_size;
            (*files)++;
        }
    }
    closedir(dir);
    return 0;
}

/* tail_lines -- buf[0..len) holds whole lines: each to fn, last first;
 * false once fn has had enough. */
static bool
tail_lines(const char *buf, size_t len, fb_files_line_fn fn, void *arg)
{
    size_t end = len;

    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        if (!fn(buf + start, end - start, arg))
            return false;
        end = start;
    }
    return true;
}

/* tail_fd -- the whole lines of fd's first size bytes to fn, last first
 * (a half line at the end skipped), reading backwards by blocks, until fn
 * has had enough or *budget bytes are read; false once fn has had
 * enough or the budget is spent. */
static bool
tail_fd(int fd, uint64_t size, uint64_t *budget, fb_files_line_fn fn, void *arg,
        uint64_t *bytes)
{
    char *buf = NULL;
    size_t cap = 0, have = 0; /* buf[0..have): the file's bytes [pos, pos + have) */
    uint64_t pos = size;
    bool more = true, tail = true; /* tail: the end may be a half line */

    while (more) {
        /* the last '\n' before buf[have - 1]: where the last line begins */
        size_t k = have > 0 ? have - 1 : 0;
        while (k > 0 && buf[k - 1] != '\n')
            k--;
        if (tail && have > 0) { /* anything after the last '\n' is half a line */
            size_t nl = have;
            while (nl > 0 && buf[nl - 1] != '\n')
                nl--;
            if (nl > 0 || pos == 0) {
                have = nl;
                tail = false;
                continue;
            }
        } else if (have > 0 && (k > 0 || pos == 0)) {
            more = fn(buf + k, have - k, arg);
            have = k;
            continue;
        } else if (pos == 0) {
            break;
        }
        /* more bytes before: read a block in front of what is held */
        size_t n = pos > READ_BLOCK ? READ_BLOCK : (size_t)pos;
        if (*budget < n)
            n = (size_t)*budget; /* the last bytes the budget allows */
        if (n == 0) {
            more = false;
            break;
        }
        if (have + n > cap) {
            size_t c = cap ? cap : READ_BLOCK * 2;
            while (c < have + n)
                c *= 2;
            char *b = realloc(buf, c);
            if (b == NULL)
                break;
            buf = b;
            cap = c;
        }
        memmove(buf + n, buf, have);
        if (pread(fd, buf, n, (off_t)(pos - n)) != (ssize_t)n)
            break; /* unreadable: what is read so far counts */
        pos -= n;
        have += n;
        *budget -= n;
        if (bytes != NULL)
            *bytes += n;
    }
    free(buf);
    return more;
}

/* tail_file -- the lines of dir/file (up to limit bytes, or all of it
 * with UINT64_MAX), opened read only without following a symbolic link;
 * false once fn has had enough. */
static bool
tail_file(fb_files_t *f, const char *file, uint64_t limit, uint64_t *budget,
          fb_files_line_fn fn, void *arg, uint64_t *bytes)
{
    struct stat st;
    int fd = openat(f->dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    bool more = true;

    if (fd < 0)
        return true;
    if (trusted(f, fd) && fstat(fd, &st) == 0)
        more = tail_fd(fd, (uint64_t)st.st_size < limit ? (uint64_t)st.st_size : limit, budget,
                       fn, arg, bytes);
    close(fd);
    return more;
}

void
fb_files_tail(fb_files_t *f, const char *key, uint64_t max_bytes, fb_files_line_fn fn,
              void *arg, uint64_t *bytes)
{
    char file[NAME_MAX_LEN];
    uint64_t budget = max_bytes, limit = UINT64_MAX;
    entry_t *e;

    if (bytes != NULL)
        *bytes = 0;
    if (strlen(key) + 12 > NAME_MAX_LEN)
        return;
    e = slot(f->tab, f->cap, key);
    if (e->key != NULL) {
        if (!tail_lines(e->buf, e->len, fn, arg))
            return;
        if (e->uncut)
            limit = e->stored;
    }
    name(file, key, 0);
    if (e->key != NULL && e->fd >= 0) {
        if (trusted(f, e->fd) &&
            !tail_fd(e->fd, e->size < limit ? e->size : limit, &budget, fn, arg, bytes))
            return;
    } else if (!tail_file(f, file, limit, &budget, fn, arg, bytes)) {
        return;
    }
    if (f->o.rotate_keep == 0)
        return;
    name(file, key, 1);
    (void)tail_file(f, file, UINT64_MAX, &budget, fn, arg, bytes);
}
