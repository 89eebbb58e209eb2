/*
 * router_gzip.h -- a whole body compressed into one gzip member (RFC 1952),
 * for the routers' destinations that store or send compressed batches (S3
 * objects, HTTP bodies).
 *
 * The output is a pure function of the input and the level: the gzip
 * header carries no name, no time (mtime 0) and zlib's fixed OS byte, so a
 * batch compressed again after a failed upload yields the same bytes and
 * the same object. (The bytes may differ between zlib versions; nothing
 * relies on that.) This module never logs.
 */
#ifndef FB_ROUTER_GZIP_H
#define FB_ROUTER_GZIP_H

#include <stddef.h>
#include <stdint.h>

#define FB_GZIP_LEVEL 6 /* zlib's default: most of level 9's ratio, far faster */

int fb_gzip(const void *in, size_t len, int level, uint8_t **out, size_t *out_len);

#endif /* FB_ROUTER_GZIP_H */
