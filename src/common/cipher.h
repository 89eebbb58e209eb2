/*
 * cipher.h -- event encryption as fbpipe defines it (DESIGN.md section 5):
 * XChaCha20-Poly1305 with associated data access key || key id (native
 * API), and the seed format hex(nonce || ciphertext || tag) of AES-256-GCM.
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

/* 0 on success; sodium_init() once per process (idempotent). */
int fb_cipher_init(void);

/* out: FB_XCHACHA_NONCE + len + FB_XCHACHA_TAG bytes (nonce || ct || tag). */
void fb_cipher_seal_xchacha(const uint8_t key[32], const char *access_key, const char *key_id,
                            const uint8_t *in, size_t len, uint8_t *out);

/* Decrypt nonce || ct || tag; out needs len - 40 bytes. 0 and *out_len, or
 * -1 when it does not authenticate (wrong key, tenant, key id or data). */
int fb_cipher_open_xchacha(const uint8_t key[32], const char *access_key, const char *key_id,
                           const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);

/* The seed format: hex text of nonce || ct || tag. out: len/2 - 28 bytes. */
int fb_cipher_open_aesgcm_hex(const uint8_t key[32], const char *hex, size_t len, uint8_t *out,
                              size_t *out_len);

/* Encrypt in the seed format; out: 2 * (28 + len) + 1 bytes (NUL-terminated). */
int fb_cipher_seal_aesgcm_hex(const uint8_t key[32], const uint8_t *in, size_t len, char *out);

#endif /* FB_CIPHER_H */
