/*
 * hash.c -- FNV-1a, 64 bits (hash.h). Reads only; never allocates.
 */
#include <string.h>

#include "common/hash.h"

uint64_t
fb_hash_more(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

uint64_t
fb_hash_str(const char *s)
{
    return fb_hash_more(FB_HASH_INIT, s, strlen(s));
}
