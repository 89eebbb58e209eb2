/*
 * resend.h -- the plugin's memory of the chunks it sent without a final
 * answer (a broken connection, RETRY acks that stayed: Fluent Bit flushes
 * them again later), so that the same events go out again under the same
 * batch seqs, and with the instance's epoch keep their identity for
 * router.dedupe. A fixed table of FB_RESEND_MAX entries keyed by a hash
 * of the chunk's tag, bytes and cut into batches (BLAKE2b, libsodium), each with the first
 * seq and the number of batches it was given. An entry in use by one
 * group is never handed to another (two chunks with the same bytes get
 * seqs of their own); an entry is removed once its chunk is answered for
 * good; when the table is full, the least recently used entry not in use
 * is forgotten (its chunk, if flushed again, gets new seqs: it may be
 * written twice, never lost). Never logs; holds no event data.
 */
#ifndef FB_PLUGIN_RESEND_H
#define FB_PLUGIN_RESEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_RESEND_MAX 1024
#define FB_RESEND_HASH 16

typedef struct fb_resend_entry {
    uint8_t hash[FB_RESEND_HASH];
    uint64_t first_seq;
    uint32_t n_batches; /* 0: free */
    bool in_use;
    uint64_t used;      /* the table's clock when last taken */
} fb_resend_entry_t;

typedef struct fb_resend {
    fb_resend_entry_t e[FB_RESEND_MAX];
    uint64_t clock;
} fb_resend_t;

/* The hash of a chunk as it is sent: tag and bytes (each after its
 * length), then layout: whatever decides which of its events are sent and
 * how they are cut into batches (the plugin gives the largest record it
 * sends and each batch's number of events), so that a chunk cut
 * differently after new limits never takes the seqs of its last cut: the
 * same seq and index would name other events, and the router would drop
 * events it never wrote. */
void fb_resend_hash(const char *tag, const void *data, size_t size, const uint64_t *layout,
                    size_t n_layout, uint8_t out[FB_RESEND_HASH]);

/* The entry for a chunk of hash now sent in n_batches batches, marked in
 * use: *first_seq is the seq of its first batch, the one it was given
 * before when an entry not in use has the same hash and number of batches
 * (a chunk sent again), else *next (then advanced by n_batches). The
 * entry's index, or -1 when every entry is in use (then *first_seq is
 * new all the same). */
int fb_resend_take(fb_resend_t *r, const uint8_t hash[FB_RESEND_HASH], uint32_t n_batches,
                   uint64_t *next, uint64_t *first_seq);

/* The group is over for entry i (-1: nothing): answered for good
 * (removed), or to be flushed again (kept, no longer in use). */
void fb_resend_release(fb_resend_t *r, int i, bool answered);

#endif /* FB_PLUGIN_RESEND_H */
