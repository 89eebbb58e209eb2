/*
 * auth.h -- JWT authentication of ingester calls: verification keys chosen
 * by kid, the checks libjwt 1.10 does not do (alg, exp, nbf, iat, iss, aud)
 * and the binding of a token to one tenant of the key database.
 *
 * A loaded fb_auth_t is read-only, so worker threads may share it. Verify
 * and check_tenant never log a refusal (the caller logs res->detail with the
 * peer and counts res->err); they never put key material or unescaped token
 * bytes in a detail.
 */
#ifndef FB_AUTH_H
#define FB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/keys.h"

#define FB_AUTH_HEADER_MAX 8192 /* bytes of an authorization value; longer is malformed */
#define FB_AUTH_KID_MAX 64      /* bytes of a kid (as in the config) */
#define FB_AUTH_DETAIL_MAX 256  /* bytes of res->detail, NUL included */

#define FB_AUTH_STATUS_PERMISSION_DENIED 7 /* GRPC_STATUS_PERMISSION_DENIED */
#define FB_AUTH_STATUS_INTERNAL 13         /* GRPC_STATUS_INTERNAL */
#define FB_AUTH_STATUS_UNAUTHENTICATED 16  /* GRPC_STATUS_UNAUTHENTICATED */

/* Why a token was refused; each kind has its own metrics name. */
typedef enum fb_auth_err {
    FB_AUTH_OK = 0,
    FB_AUTH_ERR_MISSING,             /* no authorization metadata */
    FB_AUTH_ERR_NOT_BEARER,          /* not "Bearer <token>" */
    FB_AUTH_ERR_MALFORMED,           /* not header.payload.signature of base64url JSON */
    FB_AUTH_ERR_ALG_NONE,            /* alg "none", in any case */
    FB_AUTH_ERR_WRONG_ALG,           /* alg is not the configured one */
    FB_AUTH_ERR_UNKNOWN_KID,         /* no key for the token's kid */
    FB_AUTH_ERR_BAD_SIGNATURE,       /* signature does not verify */
    FB_AUTH_ERR_EXPIRED,             /* exp + skew <= now */
    FB_AUTH_ERR_NO_EXP,              /* no exp and require_exp */
    FB_AUTH_ERR_NOT_YET_VALID,       /* nbf or iat later than now + skew */
    FB_AUTH_ERR_BAD_ISSUER,          /* iss missing or not the configured issuer */
    FB_AUTH_ERR_BAD_AUDIENCE,        /* aud missing or without the configured audience */
    FB_AUTH_ERR_UNKNOWN_KEY,         /* access key not in the key database */
    FB_AUTH_ERR_DISABLED,            /* tenant disabled */
    FB_AUTH_ERR_REVOKED,             /* iat before the tenant's tokens_not_before */
    FB_AUTH_ERR_KEY_MISMATCH,        /* bound to another access key than the request's */
    FB_AUTH_ERR_UNBOUND_NOT_ALLOWED, /* no key claim, and the tenant does not list the
                                      * token in unbound_tokens_sha256 */
    FB_AUTH_ERR_INTERNAL,            /* out of memory or a library failure (logged) */
} fb_auth_err_t;

#define FB_AUTH_N_ERRS ((int)FB_AUTH_ERR_INTERNAL + 1)

/* What fb_auth_verify and fb_auth_check_tenant found. */
typedef struct fb_auth_result {
    fb_auth_err_t err;
    int grpc_status;                      /* 0 (OK), 7, 13 or 16 */
    char detail[FB_AUTH_DETAIL_MAX];      /* precise, escaped, no key material */
    char access_key[FB_ACCESS_KEY_MAX + 1]; /* bound key; "" when unbound (after
                                             * check_tenant: the accepted key) */
    bool unbound;                         /* the token has no key claim */
    uint8_t token_sha256[FB_TOKEN_SHA256_LEN]; /* of the token, when unbound */
    bool has_exp, has_iat;
    int64_t exp, iat;                     /* unix seconds, valid when has_* */
    char kid[FB_AUTH_KID_MAX + 1];        /* kid of the key that verified, "" = none */
} fb_auth_result_t;

typedef struct fb_auth fb_auth_t;

/* Load the keys named by conf ([auth]); with RS/ES and a private key, check
 * that it signs tokens a public key verifies. NULL after logging. */
fb_auth_t *fb_auth_new(const fb_conf_t *conf);

/* Wipe every key and free; tolerates NULL and a half-built handle. */
void fb_auth_free(fb_auth_t *a);

/* Verify authorization[0..len) (raw metadata value, may be NULL, need not be
 * NUL-terminated) at now (unix seconds). A token bound to an access key is
 * also checked against db (unknown, disabled, revoked). Returns res->err. */
int fb_auth_verify(const fb_auth_t *a, const fb_keydb_t *db, const char *authorization,
                   size_t len, int64_t now, fb_auth_result_t *res);

/* Check a verified result r against the access key of one request
 * (ExchangeConfig or event): key mismatch, unknown, disabled, revoked,
 * unbound not allowed (an unbound token acts only for a tenant that lists
 * its fingerprint). Logs each accepted use of an unbound token (info).
 * out may be r. Returns out->err; r->err if r is itself a refusal. */
int fb_auth_check_tenant(const fb_auth_result_t *r, const fb_keydb_t *db, const char *access_key,
                         size_t len, fb_auth_result_t *out);

/* Mint a token bound to access_key (key claim, iat = now, exp = now +
 * expiry_s, iss/aud when configured). kid (NULL or "": the "" key, else the
 * only key) must name a configured key and goes in the header; HS signs with
 * its secret, RS/ES with jwt_private_key_file. 0 and a malloc'd *token_out
 * (free()), or -1 after logging. */
int fb_auth_mint(const fb_auth_t *a, const char *access_key, int64_t now, int64_t expiry_s,
                 const char *kid, char **token_out);

/* The kids of old whose key next no longer has, or has changed: tokens
 * they verified are no longer valid. Up to max into out; how many there
 * are (may exceed max). */
size_t fb_auth_removed_kids(const fb_auth_t *old, const fb_auth_t *next,
                            char (*out)[FB_AUTH_KID_MAX + 1], size_t max);

/* The token of an authorization value: "Bearer" in any case, then spaces or
 * tabs, the token, optional trailing spaces or tabs. 0 with *tok and
 * *tok_len (pointing into authorization), or -1 when it is not that. Does
 * not check the token itself (fb_auth_verify does). */
int fb_auth_bearer_token(const char *authorization, size_t len, const char **tok,
                         size_t *tok_len);

/* The fingerprint of a token, as unbound_tokens_sha256 lists it: 64
 * lower-case hex digits of the SHA-256 of tok[0..len) (the bare token, no
 * "Bearer "), into hex (65 bytes with the NUL). */
void fb_auth_fingerprint(const char *tok, size_t len, char hex[2 * FB_TOKEN_SHA256_LEN + 1]);

/* Stable snake_case name of err ("ok", "expired", ...), for metrics. */
const char *fb_auth_err_name(fb_auth_err_t err);

/* The gRPC status of err: 0, 7 (PERMISSION_DENIED), 13 or 16 (UNAUTHENTICATED). */
int fb_auth_err_status(fb_auth_err_t err);

#endif /* FB_AUTH_H */
