/*
 * router_files.h -- the router's output files: <dir>/<access key>.log,
 * appended in batches, at most max_open descriptors (least recently used
 * closed first), rotated by size and age, reopened on demand (SIGUSR1 and
 * whenever the caller loses its partitions: another process may write
 * and rotate the files meanwhile).
 *
 * Lines are buffered per file and written with one write per file per
 * flush; what a flush could not write stays buffered for the next one, so
 * the caller stores Kafka offsets only after a flush that returned 0.
 * With sync, each file written is fsynced, or the whole file system at
 * once (syncfs) when many were. A failed sync (FB_FILES_UNSYNCED) may
 * have lost what was written since the last checkpoint (the kernel can
 * drop those pages and report the failure only once, so a later sync
 * succeeds without them): the caller rolls back, which cuts every file
 * back to its checkpoint, and reads the records again from the offsets
 * it stored at that checkpoint. A file is never left with half a line: on open and after a failed or
 * short write it is cut back to its last newline. Files are opened below
 * the directory's descriptor with O_NOFOLLOW and must be regular files, so
 * a symlink, a device or a hard link planted in the directory is refused.
 * With refusals, a key whose file can never be written that way has its
 * lines handed back (fb_files_next_refusal) instead of stalling every
 * other key behind it: for dead letters when the name is at fault (a
 * symbolic link, a directory...), for the spool when permissions are
 * (EACCES, EPERM: the environment's doing) and spool_dir has room for
 * the key (under spool_max); without room, permissions are retried like
 * any failure. Whenever a key's file is opened, the lines spooled for it
 * in spool_dir/<key>.log are moved into it first, in order. Rotation by age follows the wall clock: a file is
 * rotated before the first write in a later period of rotate_age (counted
 * from the Unix epoch, UTC) than its last write, as its modification time
 * tells, so the rule holds across closes, reopens and restarts. Keys must
 * be checked access keys (no '/'); this module never logs.
 *
 * Several routers may write one key's file (kafka.partition_by =
 * key_agent spreads a key over partitions; with key, the old and the new
 * owner of a partition around a rebalance): one at a time, each flush of
 * a file's lines (its appends, its rotations, a half line cut) under an
 * exclusive flock of the file, taken again on whatever is at its name
 * when another router rotated it meanwhile; the size and rotation period
 * are read under the lock, so a file is rotated once, by whoever finds it
 * full or old first. A lock another process holds longer than
 * lock_wait_ms (stopped, stuck in I/O) fails the flush like a failed
 * write: the lines stay buffered for the next one. A roll back, or a short write cut, cuts only what
 * this router appended since its checkpoint and only while nobody
 * appended after it (under the lock); otherwise those lines stay and come
 * again as duplicates: never a loss of another router's stored lines.
 */
#ifndef FB_ROUTER_FILES_H
#define FB_ROUTER_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* fb_files_flush, fb_files_sync: a sync failed; roll back */
#define FB_FILES_UNSYNCED (-2)

/* how long a refused key stays refused before its file is tried again */
#define FB_FILES_REFUSED_MS 30000

/* fb_files_refused: where a refused key's lines go */
#define FB_FILES_DEAD 1  /* the dead letters: its name is at fault */
#define FB_FILES_SPOOL 2 /* the spool: its file's permissions are */

typedef struct fb_files fb_files_t;

typedef struct fb_files_opts {
    const char *dir;
    size_t max_open;         /* descriptors kept open; at least 1 */
    uint64_t rotate_size;    /* bytes; 0 = never by size */
    uint64_t rotate_age_ms;  /* wall-clock periods (see above); 0 = never */
    unsigned rotate_keep;    /* <key>.log.1 .. .N kept; 0 = the old file is removed */
    bool refusals;           /* a file that can never be written refuses its key
                              * (else its failure is retried like any other) */
    bool nofollow;           /* dir itself must not be a symbolic link */
    const char *spool_dir;   /* with refusals: where a key refused for its
                              * permissions is spooled (see above), or NULL */
    uint64_t spool_max;      /* bytes spooled per key before permissions are
                              * retried instead */
    struct fb_mslot *metrics; /* where rotations, syncs and open files count, or NULL */
    bool durable;            /* the caller stores offsets only after a sync: a
                              * file is synced before it is rotated, so that
                              * a roll back finds in the current file all it
                              * must cut */
    uint64_t lock_wait_ms;   /* how long a flush waits for another process's
                              * lock on a file before it fails (its lines
                              * stay buffered); 0 = 5 s */
} fb_files_opts_t;

/* NULL with err when dir cannot be opened as a directory. */
fb_files_t *fb_files_new(const fb_files_opts_t *o, char *err, size_t errlen);
/* Close every file; what is still buffered is dropped (flush first). */
void fb_files_free(fb_files_t *f);

/* Buffer one line (ending in '\n') for key. 0, or -1 when out of memory. */
int fb_files_add(fb_files_t *f, const char *key, const char *line, size_t len);

/* Write what is buffered (one write per file), rotating first where due,
 * and fsync the files written when sync is set. 0 when everything is
 * written (but the lines of keys refused meanwhile, which the caller
 * takes back with fb_files_next_refusal); -1 with err naming the first
 * file that failed (the rest of what could not be written stays
 * buffered: flush again); FB_FILES_UNSYNCED with err when a sync failed
 * (fb_files_rollback). Idle keys are forgotten once there are thousands. */
int fb_files_flush(fb_files_t *f, bool sync, char *err, size_t errlen);

/* After a flush: the next key refused by it, with *why and *spool (true:
 * its permissions, false: its name), whose buffered lines were dropped:
 * the last *dropped bytes added for it, whole lines (send their records
 * to the spool or the dead letters; the lines before them are written);
 * NULL when there is none left. Both strings live until the next flush
 * or reopen. */
const char *fb_files_next_refusal(fb_files_t *f, const char **why, bool *spool, size_t *dropped);

/* FB_FILES_DEAD with err when key's file is there and is not a regular
 * file (a symbolic link, a device...) or the key was refused for its name
 * less than FB_FILES_REFUSED_MS ago; FB_FILES_SPOOL with err when it was
 * refused for its permissions that recently; 0 otherwise. Cheap for a
 * file already open. */
int fb_files_refused(fb_files_t *f, const char *key, char *err, size_t errlen);

/* Sync the whole file system of the directory, and the directory (the
 * files written since the last sync reach the disk). 0, or
 * FB_FILES_UNSYNCED with err. */
int fb_files_sync(fb_files_t *f, char *err, size_t errlen);

/* Every file as it is now is the checkpoint: call it once what is written
 * is synced (or sync is off) and the offsets of its records are stored. */
void fb_files_checkpoint(fb_files_t *f);

/* After FB_FILES_UNSYNCED: drop what is buffered and cut every file
 * written since the checkpoint back to it (a file rotated or replaced
 * from outside meanwhile is left alone: its lines come again as
 * duplicates); the caller then reads the records again from the offsets
 * stored at the checkpoint. 0, or -1 with err naming the first file that
 * could not be cut (it is closed; its next open drops a half line). */
int fb_files_rollback(fb_files_t *f, char *err, size_t errlen);

/* fb_files_tail's callback: one whole line (with its '\n'); false to stop. */
typedef bool (*fb_files_line_fn)(const char *line, size_t len, void *arg);

/* Key's lines newest first: those buffered for it, then those of its file
 * from the end (of what is safe to count as written: after a roll back
 * that could not cut the file, up to its checkpoint), then, with
 * rotate_keep, those of <key>.log.1; until fn returns false or max_bytes
 * of the files are read. A file is read only once fdatasync says what it
 * holds is on disk, and never one where a roll back had to leave lines
 * of this router whose sync failed (another router appended after them,
 * or it was rotated). A half line at a file's end is skipped; a file
 * absent or unreadable (or not a regular file) adds nothing. The bytes of
 * the files read go to *bytes (may be NULL). Reads only, never writes. */
void fb_files_tail(fb_files_t *f, const char *key, uint64_t max_bytes, fb_files_line_fn fn,
                   void *arg, uint64_t *bytes);

/* Bytes buffered and not yet written. */
size_t fb_files_pending(const fb_files_t *f);
/* Bytes of key's file (as it is on disk, or open) and buffered for it. */
uint64_t fb_files_key_bytes(fb_files_t *f, const char *key);

/* What the directory holds now: its regular files and their bytes (for
 * the spool's gauges). -1 with errno when it cannot be read. */
int fb_files_usage(fb_files_t *f, uint64_t *bytes, uint64_t *files);

/* Drop what is buffered and not written (the caller reads it again). */
void fb_files_discard(fb_files_t *f);

/* Close every descriptor and forget the refusals; the next write opens
 * the files again (after an outside rotation, or another process). */
void fb_files_reopen(fb_files_t *f);

#endif /* FB_ROUTER_FILES_H */
