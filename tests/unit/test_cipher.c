/*
 * test_cipher.c -- event encryption: XChaCha20-Poly1305 bound to access key
 * and key id (both versions of its associated data: the collision of the
 * first is refused by the second, and what the first sealed still opens),
 * and the seed format (hex of AES-256-GCM nonce, ct, tag).
 */
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

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

static const int versions[] = {FB_CIPHER_XCHACHA, FB_CIPHER_XCHACHA_V2};

Test(cipher, xchacha_round_trip)
{
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)];
    size_t n = 0;

    for (size_t v = 0; v < 2; v++) {
        cr_assert_eq(fb_cipher_seal_xchacha(versions[v], key, "acme", "k1", (const uint8_t *)msg,
                                            sizeof(msg), box), 0);
        cr_assert_eq(fb_cipher_open_xchacha(versions[v], key, "acme", "k1", box, sizeof(box), out,
                                            &n), 0);
        cr_assert_eq(n, sizeof(msg));
        cr_assert_str_eq((const char *)out, msg);
    }
}

Test(cipher, xchacha_is_bound_to_tenant_key_id_and_bytes)
{
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)], other[32];
    size_t n = 0;

    memcpy(other, key, 32);
    other[0] ^= 1;
    for (size_t v = 0; v < 2; v++) {
        int c = versions[v];

        fb_cipher_seal_xchacha(c, key, "acme", "k1", (const uint8_t *)msg, sizeof(msg), box);
        cr_assert_eq(fb_cipher_open_xchacha(c, key, "zeta", "k1", box, sizeof(box), out, &n), -1);
        cr_assert_eq(fb_cipher_open_xchacha(c, key, "acme", "k2", box, sizeof(box), out, &n), -1);
        cr_assert_eq(fb_cipher_open_xchacha(c, other, "acme", "k1", box, sizeof(box), out, &n), -1);
        box[30] ^= 0x80;
        cr_assert_eq(fb_cipher_open_xchacha(c, key, "acme", "k1", box, sizeof(box), out, &n), -1);
        cr_assert_eq(fb_cipher_open_xchacha(c, key, "acme", "k1", box, 39, out, &n), -1);
    }
}

/* the first version concatenates access key and key id: ("ab", "c") and
 * ("a", "bc") are the same associated data, so a ciphertext moves between
 * them. The second refuses it; the first still behaves as it always did,
 * so records it sealed still open. */
Test(cipher, xchacha_v2_refuses_the_concatenation_collision)
{
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)];
    size_t n = 0;

    cr_assert_eq(fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA_V2, key, "ab", "c",
                                        (const uint8_t *)msg, sizeof(msg), box), 0);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA_V2, key, "a", "bc", box, sizeof(box),
                                        out, &n), -1, "(\"ab\", \"c\") opened as (\"a\", \"bc\")");
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA_V2, key, "abc", "", box, sizeof(box),
                                        out, &n), -1);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA_V2, key, "ab", "c", box, sizeof(box),
                                        out, &n), 0);

    /* the old records: the collision is theirs, and they still open */
    cr_assert_eq(fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA, key, "ab", "c", (const uint8_t *)msg,
                                        sizeof(msg), box), 0);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA, key, "ab", "c", box, sizeof(box), out,
                                        &n), 0);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA, key, "a", "bc", box, sizeof(box), out,
                                        &n), 0, "the first version's known collision");
}

/* a record names its version: one sealed with either never opens as the other */
Test(cipher, xchacha_versions_do_not_open_each_other)
{
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)];
    size_t n = 0;

    fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA, key, "acme", "k1", (const uint8_t *)msg,
                           sizeof(msg), box);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA_V2, key, "acme", "k1", box, sizeof(box),
                                        out, &n), -1);
    fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA_V2, key, "acme", "k1", (const uint8_t *)msg,
                           sizeof(msg), box);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA, key, "acme", "k1", box, sizeof(box),
                                        out, &n), -1);
}

/* the second version's associated data, computed here by hand: a client in
 * another language builds exactly these bytes */
Test(cipher, xchacha_v2_associated_data_is_length_prefixed)
{
    static const uint8_t ad[] = {0, 4, 'a', 'c', 'm', 'e', 0, 2, 'k', '1'};
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)];
    unsigned long long clen, mlen;
    size_t n = 0;

    fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA_V2, key, "acme", "k1", (const uint8_t *)msg,
                           sizeof(msg), box);
    cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, box + 24,
                                                            sizeof(box) - 24, ad, sizeof(ad), box,
                                                            key), 0);
    cr_assert_eq(mlen, sizeof(msg));
    randombytes_buf(box, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + 24, &clen, (const uint8_t *)msg, sizeof(msg),
                                               ad, sizeof(ad), NULL, box, key);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA_V2, key, "acme", "k1", box, sizeof(box),
                                        out, &n), 0);
}

Test(cipher, xchacha_refuses_other_ciphers_and_long_names)
{
    char long_key[130], long_id[66];
    uint8_t box[sizeof(msg) + 40], out[sizeof(msg)];
    size_t n = 0;

    memset(box, 0x5a, sizeof(box));
    cr_assert_eq(fb_cipher_seal_xchacha(0, key, "acme", "k1", (const uint8_t *)msg, sizeof(msg),
                                        box), -1);
    cr_assert_eq(fb_cipher_seal_xchacha(1, key, "acme", "k1", (const uint8_t *)msg, sizeof(msg),
                                        box), -1);
    cr_assert_eq(fb_cipher_seal_xchacha(4, key, "acme", "k1", (const uint8_t *)msg, sizeof(msg),
                                        box), -1);
    cr_assert_eq(box[0], 0x5a, "out untouched");
    cr_assert_eq(fb_cipher_open_xchacha(4, key, "acme", "k1", box, sizeof(box), out, &n), -1);
    cr_assert(fb_cipher_is_xchacha(FB_CIPHER_XCHACHA) && fb_cipher_is_xchacha(3));
    cr_assert(!fb_cipher_is_xchacha(0) && !fb_cipher_is_xchacha(1) && !fb_cipher_is_xchacha(4));
    memset(long_key, 'a', 129);
    long_key[129] = '\0';
    memset(long_id, 'k', 65);
    long_id[65] = '\0';
    cr_assert_eq(fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA_V2, key, long_key, "k1",
                                        (const uint8_t *)msg, sizeof(msg), box), -1);
    cr_assert_eq(fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA_V2, key, "acme", long_id,
                                        (const uint8_t *)msg, sizeof(msg), box), -1);
    long_key[128] = '\0';
    long_id[64] = '\0';
    cr_assert_eq(fb_cipher_seal_xchacha(FB_CIPHER_XCHACHA_V2, key, long_key, long_id,
                                        (const uint8_t *)msg, sizeof(msg), box), 0);
    cr_assert_eq(fb_cipher_open_xchacha(FB_CIPHER_XCHACHA_V2, key, long_key, long_id, box,
                                        sizeof(box), out, &n), 0);
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
