/*
 * router_gzip.c -- one gzip member from a buffer with zlib (deflateInit2
 * with 16 + MAX_WBITS: zlib writes the gzip header and trailer itself).
 *
 * The output buffer is sized by deflateBound once, so deflate finishes in
 * one pass without regrowing; inputs beyond zlib's 32-bit counters are fed
 * in slices. Never logs: errors are -1 with errno.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include <zlib.h>

#include "router/router_gzip.h"

/* fb_gzip -- compress in[0..len) into a malloc'd *out; 0, or -1 with errno. */
int
fb_gzip(const void *in, size_t len, int level, uint8_t **out, size_t *out_len)
{
    z_stream zs = {0};
    uint8_t *buf = NULL;
    size_t cap, left_in = len, left_out;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION || (in == NULL && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    /* memLevel 8 is deflateInit's; the default strategy keeps it plain gzip */
    rc = deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) {
        errno = rc == Z_MEM_ERROR ? ENOMEM : EINVAL;
        return -1;
    }
    cap = deflateBound(&zs, len);
    if (cap < len) { /* overflowed: more than the address space */
        deflateEnd(&zs);
        errno = EOVERFLOW;
        return -1;
    }
    buf = malloc(cap > 0 ? cap : 1);
    if (buf == NULL) {
        deflateEnd(&zs);
        errno = ENOMEM;
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in; /* zlib does not write through it */
    zs.next_out = buf;
    left_out = cap;
    do {
        uInt in_slice = left_in > UINT_MAX ? UINT_MAX : (uInt)left_in;
        uInt out_slice = left_out > UINT_MAX ? UINT_MAX : (uInt)left_out;

        zs.avail_in = in_slice;
        zs.avail_out = out_slice;
        rc = deflate(&zs, left_in == in_slice ? Z_FINISH : Z_NO_FLUSH);
        left_in -= in_slice - zs.avail_in;
        left_out -= out_slice - zs.avail_out;
        if (rc == Z_STREAM_ERROR || (rc == Z_BUF_ERROR && left_out == 0))
            break; /* cannot happen with deflateBound's room; never loop */
    } while (rc != Z_STREAM_END);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        errno = EIO;
        return -1;
    }
    *out = buf;
    *out_len = cap - left_out;
    return 0;
}
