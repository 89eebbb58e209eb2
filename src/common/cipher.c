/*
 * cipher.c -- XChaCha20-Poly1305 (libsodium), both versions of its
 * associated data, and the seed format's AES-256-GCM (OpenSSL EVP, which
 * needs no AES-NI, unlike libsodium's). See cipher.h. Buffers holding
 * plaintext are the caller's.
 */
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "common/cipher.h"

#define AD_MAX (2 + 128 + 2 + 64) /* bytes of associated data, either version */

int
fb_cipher_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

int
fb_cipher_is_xchacha(int cipher)
{
    return cipher == FB_CIPHER_XCHACHA || cipher == FB_CIPHER_XCHACHA_V2;
}

/* associated_data -- the associated data of cipher for access key and key
 * id into ad; its length, or -1 (another cipher, or a name too long for
 * _V2). The first version cuts the names at 128 and 64 bytes, as it always
 * did: what was sealed that way must still open. */
static long
associated_data(int cipher, const char *access_key, const char *key_id, uint8_t ad[AD_MAX])
{
    size_t a, k;

    if (cipher == FB_CIPHER_XCHACHA) {
        a = strnlen(access_key, 128);
        k = strnlen(key_id, 64);
        memcpy(ad, access_key, a);
        memcpy(ad + a, key_id, k);
        return (long)(a + k);
    }
    if (cipher != FB_CIPHER_XCHACHA_V2)
        return -1;
    a = strnlen(access_key, 129);
    k = strnlen(key_id, 65);
    if (a > 128 || k > 64)
        return -1;
    ad[0] = (uint8_t)(a >> 8);
    ad[1] = (uint8_t)a;
    memcpy(ad + 2, access_key, a);
    ad[2 + a] = (uint8_t)(k >> 8);
    ad[3 + a] = (uint8_t)k;
    memcpy(ad + 4 + a, key_id, k);
    return (long)(4 + a + k);
}

int
fb_cipher_seal_xchacha(int cipher, const uint8_t key[32], const char *access_key,
                       const char *key_id, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t ad[AD_MAX];
    long ad_len = associated_data(cipher, access_key, key_id, ad);
    unsigned long long clen;

    if (ad_len < 0)
        return -1;
    randombytes_buf(out, FB_XCHACHA_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + FB_XCHACHA_NONCE, &clen, in, len, ad,
                                               (unsigned long long)ad_len, NULL, out, key);
    return 0;
}

int
fb_cipher_open_xchacha(int cipher, const uint8_t key[32], const char *access_key,
                       const char *key_id, const uint8_t *in, size_t len, uint8_t *out,
                       size_t *out_len)
{
    uint8_t ad[AD_MAX];
    long ad_len = associated_data(cipher, access_key, key_id, ad);
    unsigned long long mlen;

    if (ad_len < 0 || len < FB_XCHACHA_NONCE + FB_XCHACHA_TAG)
        return -1;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, in + FB_XCHACHA_NONCE,
                                                   len - FB_XCHACHA_NONCE, ad,
                                                   (unsigned long long)ad_len, in, key) != 0)
        return -1;
    *out_len = (size_t)mlen;
    return 0;
}

/* aesgcm -- one AES-256-GCM operation; tag is read (decrypt) or written. */
static int
aesgcm(int encrypt, const uint8_t key[32], const uint8_t *nonce, const uint8_t *in, size_t len,
       uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok;

    if (ctx == NULL || len > (size_t)INT32_MAX)
        return EVP_CIPHER_CTX_free(ctx), -1;
    ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, FB_AESGCM_NONCE, NULL) == 1 &&
         EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) == 1 &&
         (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1) &&
         (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, FB_AESGCM_TAG, tag) == 1) &&
         EVP_CipherFinal_ex(ctx, out + n, &fin) == 1 &&
         (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, FB_AESGCM_TAG, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

int
fb_cipher_open_aesgcm_hex(const uint8_t key[32], const char *hex, size_t len, uint8_t *out,
                          size_t *out_len)
{
    uint8_t nonce[FB_AESGCM_NONCE], tag[FB_AESGCM_TAG];
    size_t bin_len, ct_len;
    const char *end;

    if (len % 2 != 0 || len / 2 < FB_AESGCM_NONCE + FB_AESGCM_TAG)
        return -1;
    ct_len = len / 2 - FB_AESGCM_NONCE - FB_AESGCM_TAG;
    if (sodium_hex2bin(nonce, sizeof(nonce), hex, 2 * FB_AESGCM_NONCE, NULL, &bin_len, &end) != 0 ||
        bin_len != sizeof(nonce) ||
        (ct_len > 0 && (sodium_hex2bin(out, ct_len, hex + 2 * FB_AESGCM_NONCE, 2 * ct_len, NULL,
                                       &bin_len, &end) != 0 || bin_len != ct_len)) ||
        sodium_hex2bin(tag, sizeof(tag), hex + len - 2 * FB_AESGCM_TAG, 2 * FB_AESGCM_TAG, NULL,
                       &bin_len, &end) != 0 || bin_len != sizeof(tag))
        return -1;
    /* decrypt in place: out holds the ciphertext */
    if (aesgcm(0, key, nonce, out, ct_len, out, tag) < 0) {
        sodium_memzero(out, ct_len);
        return -1;
    }
    *out_len = ct_len;
    return 0;
}

int
fb_cipher_seal_aesgcm_hex(const uint8_t key[32], const uint8_t *in, size_t len, char *out)
{
    uint8_t nonce[FB_AESGCM_NONCE], tag[FB_AESGCM_TAG];
    uint8_t *ct = sodium_malloc(len ? len : 1);

    if (ct == NULL)
        return -1;
    randombytes_buf(nonce, sizeof(nonce));
    if (aesgcm(1, key, nonce, in, len, ct, tag) < 0) {
        sodium_free(ct);
        return -1;
    }
    sodium_bin2hex(out, 2 * FB_AESGCM_NONCE + 1, nonce, sizeof(nonce));
    sodium_bin2hex(out + 2 * FB_AESGCM_NONCE, 2 * len + 1, ct, len);
    sodium_bin2hex(out + 2 * FB_AESGCM_NONCE + 2 * len, 2 * FB_AESGCM_TAG + 1, tag, sizeof(tag));
    sodium_free(ct);
    return 0;
}
