/*
 * fuzz_auth.c -- libFuzzer target: JWT verification (common/auth.c,
 * fb_auth_verify and fb_auth_check_tenant) with fb_auth_t handles built by
 * fb_auth_new from configurations loaded by fb_conf_load, secrets in
 * memory files (mode 0600).
 *
 * Input: one byte of mode, then the token material.
 *   bit 0 clear: the rest is the authorization value as a client sends it.
 *   bit 0 set:   the rest is a JSON header, a NUL byte and a JSON payload;
 *                this target encodes them base64url and signs them (HMAC),
 *                so that the checks after the signature (claims, tenant)
 *                are reached with arbitrary JSON.
 *   bit 1: handle A (HS256, one secret, no kid) or B (HS512, kids k1 and
 *          k2, issuer and audience configured).
 *   bit 2: sign with the first secret (A's, or B's k1) or the second.
 *
 * Oracles besides the sanitizers: the result's kind, gRPC status and detail
 * agree; the detail and every log line are printable and never contain a
 * secret; a token signed with the right secret is never refused as a bad
 * signature nor as an internal error; an accepted bound token names a
 * tenant of the key database that is enabled; an unbound token is taken
 * for a tenant only when the tenant lists its fingerprint (at start, the
 * seed's listed token must be taken: the path stays reachable).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/auth.h"
#include "common/conf.h"
#include "common/keys.h"
#include "fuzz.h"

#define NOW FUZZ_NOW
#define S_A FUZZ_SECRET_A
#define S_K1 FUZZ_SECRET_K1
#define S_K2 FUZZ_SECRET_K2

static fb_keydb_t *db;
static fb_auth_t *auth[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    fuzz_log_start(false);
    fuzz_auth_handles(auth);
    db = fuzz_keydb(FUZZ_AUTH_KEYS_JSON);
    {
        fb_auth_result_t r, t;
        const char *v = "Bearer " FUZZ_UNBOUND_TOKEN_A;

        if (fb_auth_verify(auth[0], db, v, strlen(v), NOW, &r) != FB_AUTH_OK || !r.unbound ||
            fb_auth_check_tenant(&r, db, "open", 4, &t) != FB_AUTH_OK) {
            fprintf(stderr, "fuzz: the listed unbound token is not taken for \"open\": %s\n",
                    r.detail);
            abort();
        }
    }
    return 0;
}

/* listed -- the fingerprint of r's token is one FUZZ_AUTH_KEYS_JSON lists. */
static bool
listed(const fb_auth_result_t *r)
{
    char hex[2 * FB_TOKEN_SHA256_LEN + 1];

    sodium_bin2hex(hex, sizeof(hex), r->token_sha256, FB_TOKEN_SHA256_LEN);
    return strcmp(hex, FUZZ_UNBOUND_SHA256_A) == 0 || strcmp(hex, FUZZ_UNBOUND_SHA256_B) == 0;
}

/* b64 -- base64url without padding of in[0..len) at out; the length. */
static size_t
b64(const void *in, size_t len, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return strlen(out);
}

/* sign -- "Bearer " header "." payload "." HMAC (256 or 512 bits) into a
 * malloc'd string; its length in *len. */
static char *
sign(const uint8_t *hdr, size_t hlen, const uint8_t *pay, size_t plen, bool hs512,
     const char *secret, size_t *len)
{
    size_t cap = 7 + sodium_base64_ENCODED_LEN(hlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
                 sodium_base64_ENCODED_LEN(plen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) + 2 +
                 sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    unsigned char mac[crypto_auth_hmacsha512_BYTES];
    char *out = malloc(cap), *signed_part;
    size_t n = 7;

    if (out == NULL)
        abort();
    memcpy(out, "Bearer ", 7);
    signed_part = out + n;
    n += b64(hdr, hlen, out + n, cap - n);
    out[n++] = '.';
    n += b64(pay, plen, out + n, cap - n);
    if (hs512) {
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, (const unsigned char *)secret, strlen(secret));
        crypto_auth_hmacsha512_update(&st, (const unsigned char *)signed_part,
                                      (size_t)(out + n - signed_part));
        crypto_auth_hmacsha512_final(&st, mac);
    } else {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)signed_part,
                                      (size_t)(out + n - signed_part));
        crypto_auth_hmacsha256_final(&st, mac);
    }
    out[n++] = '.';
    n += b64(mac, hs512 ? crypto_auth_hmacsha512_BYTES : crypto_auth_hmacsha256_BYTES, out + n,
             cap - n);
    *len = n;
    return out;
}

/* check_result -- what any result must satisfy; data[0..size) is the
 * input (a secret the client sent itself may be shown back). */
static void
check_result(const fb_auth_result_t *r, int rc, const uint8_t *data, size_t size)
{
    const char *secrets[] = {S_A, S_K1, S_K2};
    size_t dlen = strnlen(r->detail, sizeof(r->detail));

    FUZZ_CHECK(rc == (int)r->err, "returned %d, result says %d", rc, (int)r->err);
    FUZZ_CHECK((int)r->err >= 0 && (int)r->err < FB_AUTH_N_ERRS, "kind %d", (int)r->err);
    FUZZ_CHECK(r->grpc_status == fb_auth_err_status(r->err), "status %d for %s", r->grpc_status,
               fb_auth_err_name(r->err));
    FUZZ_CHECK(dlen < sizeof(r->detail) && dlen > 0, "detail not terminated or empty");
    FUZZ_CHECK(fuzz_printable(r->detail, dlen), "detail: %s", r->detail);
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        FUZZ_CHECK(memmem(data, size, secrets[i], strlen(secrets[i])) != NULL ||
                       (strstr(r->detail, secrets[i]) == NULL &&
                        strstr(fuzz_log_text, secrets[i]) == NULL),
                   "a secret in the detail or the log");
    if (r->err == FB_AUTH_OK && !r->unbound) {
        const fb_tenant_t *t = fb_keydb_find(db, r->access_key, strlen(r->access_key));
        FUZZ_CHECK(fb_access_key_valid(r->access_key, strlen(r->access_key), NULL),
                   "accepted an invalid access key");
        FUZZ_CHECK(t != NULL && !t->disabled, "accepted a key that is unknown or disabled");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_auth_result_t res, out;
    const fb_auth_t *a;
    char *value = NULL;
    size_t len;
    bool signed_here, right_key;
    int rc;

    if (size < 1)
        return 0;
    fuzz_log_start(true);
    signed_here = data[0] & 1;
    a = auth[(data[0] >> 1) & 1];
    data++;
    size--;
    if (signed_here) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t hlen = nul != NULL ? (size_t)(nul - data) : size;
        const char *secret =
            a == auth[0] ? (data[-1] & 4 ? S_K1 : S_A) : (data[-1] & 4 ? S_K2 : S_K1);
        value = sign(data, hlen, nul != NULL ? nul + 1 : data + size,
                     nul != NULL ? size - hlen - 1 : 0, a == auth[1], secret, &len);
        rc = fb_auth_verify(a, db, value, len, NOW, &res);
        /* A has one key, S_A: a token it signed passes the signature */
        right_key = a == auth[0] && !(data[-1] & 4);
    } else {
        rc = fb_auth_verify(a, db, (const char *)data, size, NOW, &res);
        right_key = false;
    }
    check_result(&res, rc, data, size);
    if (right_key)
        FUZZ_CHECK(res.err != FB_AUTH_ERR_BAD_SIGNATURE && res.err != FB_AUTH_ERR_INTERNAL,
                   "a token signed with the right secret refused: %s", res.detail);
    if (res.err == FB_AUTH_OK) {
        /* a request for the bound key, and one for another tenant */
        const char *key = res.unbound ? "open" : res.access_key;
        rc = fb_auth_check_tenant(&res, db, key, strlen(key), &out);
        check_result(&out, rc, data, size);
        FUZZ_CHECK(out.err != FB_AUTH_OK || !res.unbound || listed(&res),
                   "an unbound token no tenant lists taken for \"open\"");
        rc = fb_auth_check_tenant(&res, db, "t2", 2, &out);
        check_result(&out, rc, data, size);
        FUZZ_CHECK(out.err != FB_AUTH_OK || res.unbound || strcmp(res.access_key, "t2") == 0,
                   "a token bound to %s accepted for t2", res.access_key);
    }
    free(value);
    return 0;
}
