/*
 * buf.h -- a growable byte buffer: text built piece by piece (a bulk
 * body, a batch of lines for a target or for standard output, the
 * metrics page). Doubles its room, from 4 KiB; never shrinks (a buffer
 * reused per batch keeps its room); never logs. Zero it to start.
 */
#ifndef FB_BUF_H
#define FB_BUF_H

#include <stddef.h>

typedef struct fb_buf {
    char *data; /* NUL-terminated after fb_buf_put */
    size_t len;
    size_t cap;
} fb_buf_t;

/* Room for more bytes past len and a NUL; 0, or -1 when memory or
 * size_t runs out (b unchanged). */
int fb_buf_reserve(fb_buf_t *b, size_t more);
/* len bytes of p appended, then a NUL; 0, or -1 as fb_buf_reserve. */
int fb_buf_put(fb_buf_t *b, const void *p, size_t len);
/* the memory released; b is empty again */
void fb_buf_free(fb_buf_t *b);

#endif /* FB_BUF_H */
