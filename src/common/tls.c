/*
 * tls.c -- the ingester's TLS files checked as the gRPC server will load
 * them (see tls.h): PEM_read_bio_X509_AUX and SSL_CTX_use_certificate for
 * the first certificate (OpenSSL's security level refuses SHA-1 and MD5
 * signatures and short keys there), the rest of the chain parsed, the
 * private key read without a pass phrase and checked against the
 * certificate, the client CA parsed.
 *
 * Never prompts for a pass phrase, never logs; OpenSSL's error queue is
 * left empty.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/tls.h"

/* no_pass -- an encrypted key is refused, never asked for. */
static int
no_pass(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* reason -- OpenSSL's reason for the last error, in words; the queue is
 * cleared. */
static const char *
reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = NULL;

    if (e != 0) {
        int lib = ERR_GET_LIB(e), rs = ERR_GET_REASON(e);
        if (lib == ERR_LIB_SSL && (rs == SSL_R_CA_MD_TOO_WEAK || rs == SSL_R_EE_KEY_TOO_SMALL ||
                                   rs == SSL_R_CA_KEY_TOO_SMALL))
            r = rs == SSL_R_CA_MD_TOO_WEAK
                    ? "its signature uses a digest OpenSSL no longer accepts (SHA-1 or MD5): "
                      "issue it again signed with SHA-256"
                    : "its key is too short for OpenSSL's security level (RSA needs 2048 bits "
                      "or more)";
        else if (lib == ERR_LIB_X509 && rs == X509_R_KEY_VALUES_MISMATCH)
            r = "it is not the private key of the certificate in tls_cert";
        else if (lib == ERR_LIB_X509 && rs == X509_R_KEY_TYPE_MISMATCH)
            r = "its type differs from the certificate's key in tls_cert";
        else
            r = ERR_reason_error_string(e);
    }
    ERR_clear_error();
    return r != NULL ? r : "refused by OpenSSL";
}

/* time_text -- an ASN.1 time as text into out. */
static void
time_text(const ASN1_TIME *t, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = 0;

    out[0] = '\0';
    if (b != NULL && ASN1_TIME_print(b, t) == 1)
        n = BIO_read(b, out, (int)cap - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

fb_tls_verdict_t
fb_tls_check(const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len,
             const uint8_t *ca, size_t ca_len, char *why, size_t why_cap, char *warn,
             size_t warn_cap)
{
    fb_tls_verdict_t v = FB_TLS_INTERNAL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *b = NULL;
    X509 *x = NULL, *extra;
    EVP_PKEY *pk = NULL;
    unsigned n;
    char when[64];

    why[0] = '\0';
    warn[0] = '\0';
    ERR_clear_error();
    if (ctx == NULL || cert_len > INT32_MAX || key_len > INT32_MAX || ca_len > INT32_MAX) {
        snprintf(why, why_cap, "OpenSSL could not make a server context: %s", reason());
        goto out;
    }
    /* the certificate, then its chain */
    if ((b = BIO_new_mem_buf(cert, (int)cert_len)) == NULL)
        goto out;
    x = PEM_read_bio_X509_AUX(b, NULL, no_pass, NULL);
    if (x == NULL) {
        (void)reason();
        snprintf(why, why_cap, "no PEM certificate in it (-----BEGIN CERTIFICATE-----)");
        v = FB_TLS_BAD_CERT;
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, x) != 1) {
        snprintf(why, why_cap, "OpenSSL refuses the certificate: %s", reason());
        v = FB_TLS_BAD_CERT;
        goto out;
    }
    for (n = 2; (extra = PEM_read_bio_X509(b, NULL, no_pass, NULL)) != NULL; n++)
        if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            snprintf(why, why_cap, "certificate %u of the chain: %s", n, reason());
            v = FB_TLS_BAD_CERT;
            goto out;
        }
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE &&
        ERR_peek_last_error() != 0) {
        snprintf(why, why_cap, "certificate %u of the chain: %s", n, reason());
        v = FB_TLS_BAD_CERT;
        goto out;
    }
    ERR_clear_error();
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        time_text(X509_get0_notAfter(x), when, sizeof(when));
        snprintf(warn, warn_cap, "the certificate expired on %s: clients refuse it", when);
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        time_text(X509_get0_notBefore(x), when, sizeof(when));
        snprintf(warn, warn_cap, "the certificate is valid only from %s: clients refuse it "
                 "until then", when);
    }
    BIO_free(b);
    b = NULL;

    /* the private key, against the certificate */
    if ((b = BIO_new_mem_buf(key, (int)key_len)) == NULL)
        goto out;
    pk = PEM_read_bio_PrivateKey(b, NULL, no_pass, NULL);
    if (pk == NULL) {
        (void)reason();
        snprintf(why, why_cap, "no PEM private key in it (-----BEGIN ... PRIVATE KEY-----), "
                 "or one encrypted with a pass phrase (fbpiped takes none)");
        v = FB_TLS_BAD_KEY;
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(why, why_cap, "OpenSSL refuses the private key: %s", reason());
        v = FB_TLS_BAD_KEY;
        goto out;
    }
    BIO_free(b);
    b = NULL;

    /* the client CA: at least one certificate, all of them PEM */
    if (ca != NULL) {
        if ((b = BIO_new_mem_buf(ca, (int)ca_len)) == NULL)
            goto out;
        for (n = 0; (extra = PEM_read_bio_X509(b, NULL, no_pass, NULL)) != NULL; n++)
            X509_free(extra);
        if (n == 0 || ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
            (void)reason();
            if (n == 0)
                snprintf(why, why_cap, "no PEM certificate in it (-----BEGIN CERTIFICATE-----)");
            else
                snprintf(why, why_cap, "certificate %u of it is not PEM", n + 1);
            v = FB_TLS_BAD_CA;
            goto out;
        }
        ERR_clear_error();
    }
    v = FB_TLS_OK;
out:
    ERR_clear_error();
    BIO_free(b);
    EVP_PKEY_free(pk);
    X509_free(x);
    SSL_CTX_free(ctx);
    return v;
}
