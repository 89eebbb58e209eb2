/*
 * tls.h -- check the ingester's TLS files the way the gRPC server loads
 * them (OpenSSL: the certificate chain into a server context at OpenSSL's
 * default security level, the private key against the certificate, the
 * client CA), so that fbpiped -t, the start and a reload say why a file
 * is refused instead of workers that cannot listen.
 *
 * Works on bytes already read (common/secret.c reads the files); never
 * logs, never prints key material: the reasons name files by role only.
 */
#ifndef FB_TLS_H
#define FB_TLS_H

#include <stddef.h>
#include <stdint.h>

typedef enum fb_tls_verdict {
    FB_TLS_OK = 0,
    FB_TLS_BAD_CERT,   /* tls_cert refused */
    FB_TLS_BAD_KEY,    /* tls_key refused, or it does not match tls_cert */
    FB_TLS_BAD_CA,     /* tls_client_ca refused */
    FB_TLS_INTERNAL,   /* out of memory in OpenSSL */
} fb_tls_verdict_t;

/* Check cert (PEM chain) and key (PEM private key), and ca when not NULL
 * (PEM certificates). FB_TLS_OK, or the file at fault with why (a
 * sentence). warn gets a warning for a usable pair ("" when none): a
 * certificate expired or not yet valid. */
fb_tls_verdict_t fb_tls_check(const uint8_t *cert, size_t cert_len, const uint8_t *key,
                              size_t key_len, const uint8_t *ca, size_t ca_len, char *why,
                              size_t why_cap, char *warn, size_t warn_cap);

#endif /* FB_TLS_H */
