/*
 * router_dedupe.h -- router.dedupe: per key, the identities of the native
 * records its file holds, so that a record read again (a batch an agent or
 * the producer sent twice, records read again after a crash) is written
 * once. An identity is (agent epoch, batch sequence, index in the batch):
 * the epoch, random and non-zero, names one agent instance; records
 * without one (epoch 0: an older agent; the original API) have none and
 * are never dropped.
 *
 * A key's set is a cache of what its file holds, rebuilt from the file
 * itself: each line written with dedupe on carries its identity
 * ("fbpipe_id", router_line.h), and fb_dedupe_load reads the key's
 * buffered lines and then its file (and the last rotated one) from the
 * end, newest first, up to window identities (and at most the load's
 * bytes, fb_dedupe_set_load_max). The set never holds an
 * identity whose line is not in the file or buffered for it: whenever
 * lines leave a file or a buffer otherwise than by being written (a roll
 * back, a refusal, another process writing the files), the caller forgets
 * the key's set (fb_dedupe_forget, fb_dedupe_forget_all) and it is loaded
 * again when next needed. Not a high-water mark: each batch keeps the
 * ranges of indices written, so batches arriving out of order are all
 * written, and a batch replayed in part writes only its missing records.
 *
 * Bounded: per key, the last window identities (older batches are
 * forgotten, oldest first: replayed after that many newer records, they
 * are written again); per router, memory bytes for all keys, past which
 * the least recently used keys' sets are dropped (reloaded from their
 * files when needed). Never logs; never writes a file.
 */
#ifndef FB_ROUTER_DEDUPE_H
#define FB_ROUTER_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/router_files.h"

typedef struct fb_dedupe fb_dedupe_t;

typedef struct fb_dedupe_id {
    uint64_t epoch; /* non-zero */
    uint64_t seq;   /* the batch's */
    uint64_t index; /* in the batch */
} fb_dedupe_id_t;

/* fb_dedupe_check's answers */
#define FB_DEDUPE_NEW 0  /* added: write the record */
#define FB_DEDUPE_DUP 1  /* its line is in the file or buffered: drop it */

/* window: identities kept per key (at least 1); memory: bytes for all
 * keys. NULL when out of memory. */
fb_dedupe_t *fb_dedupe_new(size_t window, size_t memory);
void fb_dedupe_free(fb_dedupe_t *d);

/* Bytes of a key's files one load reads at most (default 16 MiB): what a
 * load costs, at the first write of each key after a start or a roll
 * back; records older than what it reads are written again if read
 * again (at least once). */
void fb_dedupe_set_load_max(fb_dedupe_t *d, uint64_t bytes);

/* Whether key's set is in memory (else fb_dedupe_load it first). */
bool fb_dedupe_loaded(fb_dedupe_t *d, const char *key);

/* Key's set from what files buffers and holds for it (see above); *lines
 * and *bytes (may be NULL) say how much was read. 0, or -1 when out of
 * memory (the set stays unloaded). A file that cannot be read adds
 * nothing: its records are written again (at least once). */
int fb_dedupe_load(fb_dedupe_t *d, fb_files_t *files, const char *key, uint64_t *lines,
                   uint64_t *bytes);

/* An empty set for key (a key whose file is known to be empty). */
int fb_dedupe_start(fb_dedupe_t *d, const char *key);

/* id for key, whose set is loaded: FB_DEDUPE_DUP when its set holds it,
 * else FB_DEDUPE_NEW and added (the caller buffers its line now); -1 when
 * out of memory (not added: write it). */
int fb_dedupe_check(fb_dedupe_t *d, const char *key, const fb_dedupe_id_t *id);

/* Lines of key left its file or buffer unwritten: its set is dropped. */
void fb_dedupe_forget(fb_dedupe_t *d, const char *key);
/* The same for every key. */
void fb_dedupe_forget_all(fb_dedupe_t *d);

/* Bytes in use; identities held; keys loaded. */
size_t fb_dedupe_memory(const fb_dedupe_t *d);
uint64_t fb_dedupe_ids(const fb_dedupe_t *d);
size_t fb_dedupe_keys(const fb_dedupe_t *d);

/* The identity a line carries, as router_line.c writes it (its
 * "fbpipe_id" right after "time"): true and *id, or false for a line
 * without one. Lines are hostile: anything else is "none". */
bool fb_dedupe_line_id(const char *line, size_t len, fb_dedupe_id_t *id);

#endif /* FB_ROUTER_DEDUPE_H */
