/*
 * test_cipher.c -- event encryption: XChaCha20-Poly1305 bound to access key
 * and key id, and the seed format (hex of AES-256-GCM nonce, ct, tag).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "common/cipher.h"

static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const char msg[] = "{\"log\":\"hello\"}";

static void
init(void)
{
    cr_assert_eq(fb_cipher_init(), 0);
}

TestSuite(cipher, .init = init);

Test(cipher, xchacha_round_trip)
{
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)];
    size_t n = 0;

    fb_cipher_seal_xchacha(key, "acme", "k1", (const uint8_t *)msg, sizeof(msg), box);
    cr_assert_eq(fb_cipher_open_xchacha(key, "acme", "k1", box, sizeof(box), out, &n), 0);
    cr_assert_eq(n, sizeof(msg));
    cr_assert_str_eq((const char *)out, msg);
}

Test(cipher, xchacha_is_bound_to_tenant_key_id_and_bytes)
{
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)], other[32];
    size_t n = 0;

    memcpy(other, key, 32);
    other[0] ^= 1;
    fb_cipher_seal_xchacha(key, "acme", "k1", (const uint8_t *)msg, sizeof(msg), box);
    cr_assert_eq(fb_cipher_open_xchacha(key, "zeta", "k1", box, sizeof(box), out, &n), -1);
    cr_assert_eq(fb_cipher_open_xchacha(key, "acme", "k2", box, sizeof(box), out, &n), -1);
    cr_assert_eq(fb_cipher_open_xchacha(other, "acme", "k1", box, sizeof(box), out, &n), -1);
    box[30] ^= 0x80;
    cr_assert_eq(fb_cipher_open_xchacha(key, "acme", "k1", box, sizeof(box), out, &n), -1);
    cr_assert_eq(fb_cipher_open_xchacha(key, "acme", "k1", box, 39, out, &n), -1);
}

Test(cipher, aesgcm_hex_round_trip_and_tamper)
{
    char hex[2 * (28 + sizeof(msg)) + 1];
    uint8_t out[sizeof(msg)];
    size_t n = 0;

    cr_assert_eq(fb_cipher_seal_aesgcm_hex(key, (const uint8_t *)msg, sizeof(msg), hex), 0);
    cr_assert_eq(strlen(hex), 2 * (28 + sizeof(msg)));
    cr_assert_eq(fb_cipher_open_aesgcm_hex(key, hex, strlen(hex), out, &n), 0);
    cr_assert_eq(n, sizeof(msg));
    cr_assert_str_eq((const char *)out, msg);
    hex[30] = hex[30] == '0' ? '1' : '0';
    cr_assert_eq(fb_cipher_open_aesgcm_hex(key, hex, strlen(hex), out, &n), -1);
}

Test(cipher, aesgcm_hex_refuses_what_is_not_the_format)
{
    uint8_t out[64];
    size_t n = 0;
    char notes[] = "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b";

    cr_assert_eq(fb_cipher_open_aesgcm_hex(key, "abc", 3, out, &n), -1);           /* odd */
    cr_assert_eq(fb_cipher_open_aesgcm_hex(key, "abcd", 4, out, &n), -1);          /* short */
    cr_assert_eq(fb_cipher_open_aesgcm_hex(key, notes, strlen(notes), out, &n), -1); /* not hex */
}
