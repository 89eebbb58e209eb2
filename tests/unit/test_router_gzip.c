/*
 * test_router_gzip.c -- fb_gzip: zlib inflates what it writes back to the
 * input (empty, one byte, JSON lines, 2 MiB of noise, every level); the
 * same input gives the same bytes every time, with a gzip header that
 * holds no time or name; a bad level is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <zlib.h>

#include "router/router_gzip.h"

/* gunzip -- inflate a whole gzip member; asserts it is exactly one */
static uint8_t *
gunzip(const uint8_t *in, size_t len, size_t expect)
{
    z_stream zs = {0};
    uint8_t *out = malloc(expect + 1);

    cr_assert_not_null(out);
    cr_assert_eq(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)expect + 1; /* one spare byte: more output would be a bug */
    cr_assert_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
    cr_assert_eq(zs.total_out, expect);
    cr_assert_eq(zs.avail_in, 0, "bytes after the gzip member");
    inflateEnd(&zs);
    return out;
}

/* round_trip -- compress twice, compare, inflate, compare */
static void
round_trip(const uint8_t *in, size_t len, int level)
{
    uint8_t *gz, *again, *back;
    size_t gzlen, againlen;

    cr_assert_eq(fb_gzip(in, len, level, &gz, &gzlen), 0);
    cr_assert_eq(fb_gzip(in, len, level, &again, &againlen), 0);
    cr_assert_eq(gzlen, againlen);
    cr_assert_eq(memcmp(gz, again, gzlen), 0, "not deterministic");
    /* RFC 1952: magic, deflate, no flags (no name), mtime 0 */
    cr_assert_geq(gzlen, 18);
    cr_assert_eq(gz[0], 0x1f);
    cr_assert_eq(gz[1], 0x8b);
    cr_assert_eq(gz[2], 8);
    cr_assert_eq(gz[3], 0);
    cr_assert_eq(gz[4] | gz[5] | gz[6] | gz[7], 0, "a time in the header");
    back = gunzip(gz, gzlen, len);
    cr_assert(len == 0 || memcmp(back, in, len) == 0);
    free(back);
    free(again);
    free(gz);
}

Test(gzip, round_trips_and_is_deterministic)
{
    static const char lines[] = "{\"a\":1,\"msg\":\"hello\"}\n{\"a\":2,\"msg\":\"hello\"}\n";
    size_t big = 2u << 20;
    uint8_t *noise = malloc(big);
    uint32_t x = 2463534242u;

    cr_assert_not_null(noise);
    for (size_t i = 0; i < big; i++) { /* xorshift: incompressible, reproducible */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise[i] = (uint8_t)x;
    }
    round_trip((const uint8_t *)"", 0, FB_GZIP_LEVEL);
    round_trip((const uint8_t *)"x", 1, FB_GZIP_LEVEL);
    round_trip((const uint8_t *)lines, sizeof(lines) - 1, FB_GZIP_LEVEL);
    round_trip(noise, big, FB_GZIP_LEVEL);
    for (int level = -1; level <= 9; level++)
        round_trip((const uint8_t *)lines, sizeof(lines) - 1, level);
    free(noise);
}

Test(gzip, compresses_repetitive_lines)
{
    size_t len = 100000;
    char *in = malloc(len);
    uint8_t *gz;
    size_t gzlen;

    for (size_t i = 0; i < len; i++)
        in[i] = "{\"k\":\"v\"}\n"[i % 10];
    cr_assert_eq(fb_gzip(in, len, FB_GZIP_LEVEL, &gz, &gzlen), 0);
    cr_assert_lt(gzlen, len / 50, "%zu bytes", gzlen);
    free(gz);
    free(in);
}

Test(gzip, refuses_bad_arguments)
{
    uint8_t *gz = (uint8_t *)"x";
    size_t gzlen = 7;

    errno = 0;
    cr_assert_eq(fb_gzip("abc", 3, 10, &gz, &gzlen), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(gz);
    cr_assert_eq(gzlen, 0);
    cr_assert_eq(fb_gzip(NULL, 3, 6, &gz, &gzlen), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(fb_gzip(NULL, 0, 6, &gz, &gzlen), 0); /* nothing is something to compress */
    free(gz);
}
