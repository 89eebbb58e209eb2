/*
 * router_progress.h -- per-target delivered-through marks of one
 * router.dir (docs/router-targets.md): per (topic, partition), the
 * topic's id and, per target, the offset of the last record of that
 * partition durable at the target (every record of the partition up to
 * it that goes to the target is there). A record at or below its
 * target's mark is skipped when read again; the offset stored for a
 * partition is the minimum over its targets of mark + 1.
 *
 * Marks live in memory (at most max_cached partitions: the least recently
 * used one whose marks are on disk is dropped first and read again when
 * next used) and in <dir>/.progress/<topic>-<partition>, one small text
 * file per partition, replaced as a whole: written to a temporary name
 * (.new-<16 hex digits>, derived from the final name, so that it fits in
 * a file name whatever the topic's length), fsynced, renamed over the
 * old one, and the folder fsynced. A crash at any point leaves either the
 * old file or the new one, never a mix; a temporary left by a crash is
 * never read, and is removed when its partition is next loaded or written.
 *
 * The files may be edited by anyone who may write router.dir: a file
 * that is not a regular file (a symbolic link, a directory, a hard link),
 * that does not parse, that is of another version, that names another
 * topic or partition, or whose topic id differs from the one the caller
 * sees now, is stale: reported with the reason, and taken as no marks at
 * all (the targets take everything from the stored offset again: at
 * least once rather than lost), then replaced at the next sync. A reason
 * never quotes the file's contents. Nothing below .progress is followed
 * through a symbolic link, and .progress itself must be a directory.
 *
 * Set a mark only once the records through it are durable at its target:
 * a mark may reach the disk at any sync after it is set. This module
 * never logs; errors and stale reasons are said in err / why, with the
 * file they concern.
 */
#ifndef FB_ROUTER_PROGRESS_H
#define FB_ROUTER_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_PROGRESS_NONE (-1)     /* no mark: nothing delivered yet, or unknown */
#define FB_PROGRESS_STALE 1       /* fb_progress_load, _check_bounds: marks dropped */
#define FB_PROGRESS_ID_LEN 16     /* bytes of a Kafka topic id */
#define FB_PROGRESS_TOPIC_MAX 249 /* bytes of a topic name, as Kafka allows */
#define FB_PROGRESS_TARGET_MAX 32 /* bytes of a target name: [a-z0-9_-] */
#define FB_PROGRESS_TARGETS 64    /* targets marked per partition, at most */
#define FB_PROGRESS_CACHED 10000  /* fb_progress_opts_t.max_cached by default */

typedef struct fb_progress fb_progress_t;

typedef struct fb_progress_opts {
    const char *dir;   /* router.dir: .progress is made in it (0750) when missing */
    size_t max_cached; /* partitions kept in memory; 0 = FB_PROGRESS_CACHED */
} fb_progress_opts_t;

/* NULL with err when dir or its .progress cannot be opened as a directory
 * (.progress a symbolic link or a file is refused) or made. */
fb_progress_t *fb_progress_open(const fb_progress_opts_t *o, char *err, size_t errlen);
/* Drop everything in memory (sync first: marks not synced are lost). */
void fb_progress_close(fb_progress_t *p);

/*
 * Load the marks of (topic, partition) from its file into memory, or
 * check those in memory, against id: the topic's id as the caller sees
 * it now (FB_PROGRESS_ID_LEN bytes; NULL or all zero: unknown, nothing is
 * compared). Call it at assignment. A file or marks of another topic id
 * are stale; marks kept with no id take the id given (they cannot be
 * checked). The last id given for a topic is the one a partition read
 * again later (after it was dropped from memory) is checked against.
 * 0: the marks are known (none when there is no file);
 * FB_PROGRESS_STALE: why says why the file or the marks were refused;
 *   the partition has no marks now and its file is rewritten at the next
 *   sync (the caller logs it);
 * -1 with why: an invalid topic or partition, a file that cannot be read
 *   (I/O, permissions) or no memory; nothing changed (try again).
 */
int fb_progress_load(fb_progress_t *p, const char *topic, int32_t partition, const uint8_t *id,
                     char *why, size_t whylen);

/* After fb_progress_load: drop every mark of the partition when one is
 * at or past high_watermark (the offset of the partition's next record):
 * no record there was delivered, so the marks belong to an earlier log
 * (a topic made again whose new id is unknown, or a log cut back) and
 * none of them can be trusted. FB_PROGRESS_STALE with why (the file is
 * rewritten at the next sync); 0 when every mark is below it, or when
 * high_watermark < 0 (unknown: nothing checked); -1 with why as for
 * fb_progress_load. */
int fb_progress_check_bounds(fb_progress_t *p, const char *topic, int32_t partition,
                             int64_t high_watermark, char *why, size_t whylen);

/*
 * The functions below read a partition that is not in memory from its
 * file first, checked against the topic's last id (see fb_progress_load):
 * a stale file there is taken as no marks and reported through
 * fb_progress_next_stale; a file that cannot be read leaves the partition
 * out of memory, and then get, skip and min_next answer as if it had no
 * marks (the records are delivered again), set and reset fail.
 */

/* target's mark in the partition, or FB_PROGRESS_NONE. */
int64_t fb_progress_get(fb_progress_t *p, const char *target, const char *topic, int32_t partition);

/* Advance target's mark to through (>= 0): 0 (also when it is there
 * already); -1 with err when through is below the mark (a mark that
 * moves back is a bug or a roll back the caller decides: fb_progress_reset,
 * fb_progress_rollback), when the name is invalid, when the partition has
 * FB_PROGRESS_TARGETS marks already, or when its file cannot be read. */
int fb_progress_set(fb_progress_t *p, const char *target, const char *topic, int32_t partition,
                    int64_t through, char *err, size_t errlen);

/* Set target's mark to through, backwards too (FB_PROGRESS_NONE removes
 * it); 0, or -1 with err as for fb_progress_set. */
int fb_progress_reset(fb_progress_t *p, const char *target, const char *topic, int32_t partition,
                      int64_t through, char *err, size_t errlen);

/* true when offset is at or below target's mark: the record is at the
 * target already, do not deliver it again. */
bool fb_progress_skip(fb_progress_t *p, const char *target, const char *topic, int32_t partition,
                      int64_t offset);

/* The offset the marks allow the caller to store for the partition: the
 * smallest over targets[0..n) of mark + 1, the offset of the first record
 * some target may still lack. FB_PROGRESS_NONE when one of them has no
 * mark (or n is 0, or the file cannot be read): the marks alone do not
 * say what may be stored. */
int64_t fb_progress_min_next(fb_progress_t *p, const char *topic, int32_t partition,
                             const char *const targets[], size_t n);

/*
 * Write the file of every partition whose marks changed since they were
 * last written (or that is to be rewritten after a stale file), as above,
 * then fsync the folder once. 0 when all are on disk. -1 with err naming
 * the first file that failed: the marks in memory are unchanged and every
 * partition not known to be on disk is written again by the next sync;
 * meanwhile each file holds either its old marks or its new ones, whole
 * (fb_progress_unsynced tells which partitions are known to be on disk).
 * The other partitions are written even when one fails.
 */
int fb_progress_sync(fb_progress_t *p, char *err, size_t errlen);

/* true when the partition's marks in memory are not known to be on disk
 * (changed, or to be rewritten, since its last successful sync). */
bool fb_progress_unsynced(fb_progress_t *p, const char *topic, int32_t partition);

/* Every mark set or reset since its partition was last written goes back
 * to what was written (or loaded): for a roll back of what was delivered
 * since the last sync. Marks dropped as stale stay dropped. */
void fb_progress_rollback(fb_progress_t *p);

/* The partition is no longer the caller's (revoked): drop it from memory,
 * synced or not; its file stays. */
void fb_progress_forget(fb_progress_t *p, const char *topic, int32_t partition);

/* The next partition found stale when it was read again outside
 * fb_progress_load, and why (both valid until the next call on p); NULL
 * when there is none left to report. */
const char *fb_progress_next_stale(fb_progress_t *p, const char **topic, int32_t *partition);

/* Partitions in memory now. */
size_t fb_progress_cached(const fb_progress_t *p);

#endif /* FB_ROUTER_PROGRESS_H */
