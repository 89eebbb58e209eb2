/*
 * buf.c -- the growable byte buffer (buf.h). Checks every size against
 * size_t's range before it doubles or adds; never logs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define FIRST 4096 /* bytes, the room of a buffer's first allocation */

int
fb_buf_reserve(fb_buf_t *b, size_t more)
{
    size_t cap = b->cap ? b->cap : FIRST;
    char *p;

    if (more > SIZE_MAX - 1 - b->len)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    if ((p = realloc(b->data, cap)) == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
fb_buf_put(fb_buf_t *b, const void *p, size_t len)
{
    if (fb_buf_reserve(b, len) < 0)
        return -1;
    if (len > 0)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void
fb_buf_free(fb_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
