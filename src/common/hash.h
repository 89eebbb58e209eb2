/*
 * hash.h -- FNV-1a, 64 bits: the hash of fbpipe's in-memory tables (keys,
 * streams, batches) and of names that must stay short (a long topic in an
 * Idempotency-Key). Stable across versions (the same bytes give the same
 * value), so a value that leaves the process means the same later. Not a
 * keyed hash: never for a table whose keys a client may choose in bulk
 * without a bound on their number.
 */
#ifndef FB_HASH_H
#define FB_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FB_HASH_INIT 14695981039346656037ULL

/* h (FB_HASH_INIT to start) continued over len bytes at p */
uint64_t fb_hash_more(uint64_t h, const void *p, size_t len);
/* the hash of the string s (without its NUL) */
uint64_t fb_hash_str(const char *s);

#endif /* FB_HASH_H */
