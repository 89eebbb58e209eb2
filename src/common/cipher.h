/*
 * cipher.h -- event encryption as fbpipe defines it (DESIGN.md section 5):
 * XChaCha20-Poly1305 bound to access key and key id (native API), and the
 * seed format hex(nonce || ciphertext || tag) of AES-256-GCM.
 *
 * XChaCha20-Poly1305 comes in two versions that differ only in their
 * associated data. FB_CIPHER_XCHACHA (the first) concatenates access key
 * and key id, so ("ab", "c") and ("a", "bc") bind a ciphertext alike; it is
 * still read, since records written by older agents live on in Kafka.
 * FB_CIPHER_XCHACHA_V2 prefixes each with its length as two bytes, big
 * endian:  len(access key) || access key || len(key id) || key id.  Its
 * first byte is 0 (lengths are at most 128), which no access key starts
 * with, so no associated data of one version equals one of the other.
 *
 * Used to decrypt events for printing and delivery, and by clients and
 * tests to encrypt. Never logs, never keeps key material, never returns
 * plaintext that did not authenticate.
 */
#ifndef FB_CIPHER_H
#define FB_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#define FB_XCHACHA_NONCE 24
#define FB_XCHACHA_TAG 16
#define FB_AESGCM_NONCE 12
#define FB_AESGCM_TAG 16

/* the values of fbpipe.v1.Cipher (proto/fbpipe.proto), for code without protobuf */
#define FB_CIPHER_XCHACHA 2    /* CIPHER_XCHACHA20POLY1305: ad = access key || key id */
#define FB_CIPHER_XCHACHA_V2 3 /* CIPHER_XCHACHA20POLY1305_V2: ad length-prefixed */

/* 0 on success; sodium_init() once per process (idempotent). */
int fb_cipher_init(void);

/* 1 if cipher is FB_CIPHER_XCHACHA or FB_CIPHER_XCHACHA_V2, else 0. */
int fb_cipher_is_xchacha(int cipher);

/* Seal in with cipher (FB_CIPHER_XCHACHA or _V2) into out: FB_XCHACHA_NONCE
 * + len + FB_XCHACHA_TAG bytes (nonce || ct || tag). -1 (out untouched)
 * for another cipher, or under _V2 an access key longer than 128 bytes or
 * a key id longer than 64. */
int fb_cipher_seal_xchacha(int cipher, const uint8_t key[32], const char *access_key,
                           const char *key_id, const uint8_t *in, size_t len, uint8_t *out);

/* Decrypt nonce || ct || tag sealed with cipher; out needs len - 40 bytes.
 * 0 and *out_len, or -1 when it does not authenticate (wrong key, tenant,
 * key id, cipher version or data) or cipher is neither version. */
int fb_cipher_open_xchacha(int cipher, const uint8_t key[32], const char *access_key,
                           const char *key_id, const uint8_t *in, size_t len, uint8_t *out,
                           size_t *out_len);

/* The seed format: hex text of nonce || ct || tag. out: len/2 - 28 bytes. */
int fb_cipher_open_aesgcm_hex(const uint8_t key[32], const char *hex, size_t len, uint8_t *out,
                              size_t *out_len);

/* Encrypt in the seed format; out: 2 * (28 + len) + 1 bytes (NUL-terminated). */
int fb_cipher_seal_aesgcm_hex(const uint8_t key[32], const uint8_t *in, size_t len, char *out);

#endif /* FB_CIPHER_H */
