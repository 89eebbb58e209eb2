/*
 * pballoc.h -- a ProtobufCAllocator with a byte budget, so that a small
 * hostile message cannot unpack into millions of structures.
 */
#ifndef FB_PBALLOC_H
#define FB_PBALLOC_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct fb_pballoc {
    ProtobufCAllocator base; /* pass &a->base to *_unpack and *_free_unpacked */
    size_t budget;           /* bytes still allowed */
    size_t used;             /* bytes live now */
    int exceeded;            /* an allocation was refused */
} fb_pballoc_t;

void fb_pballoc_init(fb_pballoc_t *a, size_t budget);

#endif /* FB_PBALLOC_H */
