/*
 * pballoc.c -- capped allocator for protobuf-c unpacking.
 *
 * Each block carries its size in a small header so that free can return
 * it to the budget. Refuses (returns NULL, which makes the unpack fail)
 * once the budget is spent; never aborts.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/pballoc.h"

typedef union block_hdr {
    size_t size;
    max_align_t align;
} block_hdr_t;

static void *
capped_alloc(void *data, size_t size)
{
    fb_pballoc_t *a = data;
    block_hdr_t *h;

    if (size > a->budget - a->used || size > SIZE_MAX - sizeof(*h)) {
        a->exceeded = 1;
        return NULL;
    }
    h = malloc(sizeof(*h) + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    a->used += size;
    return h + 1;
}

static void
capped_free(void *data, void *ptr)
{
    fb_pballoc_t *a = data;
    block_hdr_t *h;

    if (ptr == NULL)
        return;
    h = (block_hdr_t *)ptr - 1;
    a->used -= h->size;
    free(h);
}

/* fb_pballoc_init -- a fresh allocator allowing budget bytes at once. */
void
fb_pballoc_init(fb_pballoc_t *a, size_t budget)
{
    a->base.alloc = capped_alloc;
    a->base.free = capped_free;
    a->base.allocator_data = a;
    a->budget = budget;
    a->used = 0;
    a->exceeded = 0;
}
