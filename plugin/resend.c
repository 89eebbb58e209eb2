/*
 * resend.c -- the plugin's table of chunks sent without a final answer
 * (resend.h): a linear scan of a fixed array (at most FB_RESEND_MAX
 * entries, taken once per chunk flushed). Never logs.
 */
#include <string.h>

#include <sodium.h>

#include "plugin/resend.h"

/* put_u64 -- v into the hash, little-endian */
static void
put_u64(crypto_generichash_state *st, uint64_t v)
{
    uint8_t b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    crypto_generichash_update(st, b, sizeof(b));
}

void
fb_resend_hash(const char *tag, const void *data, size_t size, const uint64_t *layout,
               size_t n_layout, uint8_t out[FB_RESEND_HASH])
{
    crypto_generichash_state st;
    uint64_t tlen = strlen(tag);

    crypto_generichash_init(&st, NULL, 0, FB_RESEND_HASH);
    put_u64(&st, tlen);
    crypto_generichash_update(&st, (const uint8_t *)tag, tlen);
    put_u64(&st, size);
    crypto_generichash_update(&st, data, size);
    put_u64(&st, n_layout);
    for (size_t i = 0; i < n_layout; i++)
        put_u64(&st, layout[i]);
    crypto_generichash_final(&st, out, FB_RESEND_HASH);
}

int
fb_resend_take(fb_resend_t *r, const uint8_t hash[FB_RESEND_HASH], uint32_t n_batches,
               uint64_t *next, uint64_t *first_seq)
{
    fb_resend_entry_t *free_e = NULL, *lru = NULL, *e = NULL;

    for (size_t i = 0; i < FB_RESEND_MAX; i++) {
        fb_resend_entry_t *x = &r->e[i];
        if (x->n_batches == 0) {
            if (free_e == NULL)
                free_e = x;
            continue;
        }
        if (x->in_use)
            continue;
        if (x->n_batches == n_batches && memcmp(x->hash, hash, FB_RESEND_HASH) == 0) {
            e = x; /* sent before, answered RETRY or not at all */
            break;
        }
        if (lru == NULL || x->used < lru->used)
            lru = x;
    }
    if (e == NULL) {
        e = free_e != NULL ? free_e : lru;
        *first_seq = *next;
        *next += n_batches;
        if (e == NULL || n_batches == 0)
            return -1;
        memcpy(e->hash, hash, FB_RESEND_HASH);
        e->first_seq = *first_seq;
        e->n_batches = n_batches;
    }
    *first_seq = e->first_seq;
    e->in_use = true;
    e->used = ++r->clock;
    return (int)(e - r->e);
}

void
fb_resend_release(fb_resend_t *r, int i, bool answered)
{
    if (i < 0 || i >= FB_RESEND_MAX)
        return;
    r->e[i].in_use = false;
    if (answered)
        memset(&r->e[i], 0, sizeof(r->e[i]));
}
