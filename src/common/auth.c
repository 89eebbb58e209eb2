/*
 * auth.c -- verify and mint the JWTs of ingester calls (libjwt 1.10).
 *
 * libjwt 1.10 trusts the token: it verifies with whatever alg the header
 * names (an RSA public key then becomes an HMAC secret), accepts alg "none"
 * when given no key, checks no claim and compares HMACs with strcmp. So this
 * file reads the header itself first (alg, kid, typ), refuses "none" and any
 * alg but the configured one, picks the key by kid, checks HS256/HS512 HMACs
 * in constant time with libsodium, and only then hands the token to
 * jwt_decode, always with a non-empty key; the claims are checked here with
 * the configured clock skew. This file must never call jwt_decode without a
 * key, never log or put in a detail key material or unescaped token bytes,
 * and never free a copy of a key without wiping it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <sodium.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/secret.h"

#define AUTH_SHOW_MAX 64 /* bytes of a hostile string shown in a detail */
#define AUTH_SHOW_SIZE (AUTH_SHOW_MAX * 4 + 4)
#define AUTH_TIME_MAX FB_KEYDB_TIME_MAX /* NumericDates beyond 9999 are refused */
#define AUTH_NOW_MAX (INT64_C(1) << 40)   /* a later now still compares in int64 ms */

/* One verification key: an HMAC secret or a PEM public key. */
typedef struct auth_key {
    char *kid;    /* "" = for tokens without kid */
    uint8_t *key; /* NUL-terminated (PEM parsers need it) */
    size_t len;
} auth_key_t;

struct fb_auth {
    jwt_alg_t alg;
    const char *alg_name; /* static: "HS256", ... */
    bool hs;
    auth_key_t *keys;
    size_t n_keys;
    uint8_t *private_key; /* PEM for minting RS/ES tokens, NULL if none */
    size_t private_len;
    char *key_claim;
    char *issuer;   /* "" = not checked */
    char *audience; /* "" = not checked */
    int64_t skew_ms;
    bool require_exp;
};

static const struct {
    const char *name;
    jwt_alg_t alg;
} auth_algs[] = {
    {"HS256", JWT_ALG_HS256}, {"HS384", JWT_ALG_HS384}, {"HS512", JWT_ALG_HS512},
    {"RS256", JWT_ALG_RS256}, {"ES256", JWT_ALG_ES256},
};

/* names for metrics: never renamed, only added to */
static const char *const auth_err_names[FB_AUTH_N_ERRS] = {
    [FB_AUTH_OK] = "ok",
    [FB_AUTH_ERR_MISSING] = "missing",
    [FB_AUTH_ERR_NOT_BEARER] = "not_bearer",
    [FB_AUTH_ERR_MALFORMED] = "malformed",
    [FB_AUTH_ERR_ALG_NONE] = "alg_none",
    [FB_AUTH_ERR_WRONG_ALG] = "wrong_alg",
    [FB_AUTH_ERR_UNKNOWN_KID] = "unknown_kid",
    [FB_AUTH_ERR_BAD_SIGNATURE] = "bad_signature",
    [FB_AUTH_ERR_EXPIRED] = "expired",
    [FB_AUTH_ERR_NO_EXP] = "no_exp",
    [FB_AUTH_ERR_NOT_YET_VALID] = "not_yet_valid",
    [FB_AUTH_ERR_BAD_ISSUER] = "bad_issuer",
    [FB_AUTH_ERR_BAD_AUDIENCE] = "bad_audience",
    [FB_AUTH_ERR_UNKNOWN_KEY] = "unknown_key",
    [FB_AUTH_ERR_DISABLED] = "disabled",
    [FB_AUTH_ERR_REVOKED] = "revoked",
    [FB_AUTH_ERR_KEY_MISMATCH] = "key_mismatch",
    [FB_AUTH_ERR_UNBOUND_NOT_ALLOWED] = "unbound_not_allowed",
    [FB_AUTH_ERR_INTERNAL] = "internal",
};

/* claims a key_claim must not shadow */
static const char *const auth_reserved_claims[] = {"exp", "nbf", "iat", "iss", "aud", "jti"};

static int auth_fail(fb_auth_result_t *res, fb_auth_err_t err, const char *fmt, ...)
    FB_PRINTF(3, 4);
static void auth_json_err(char *text);
static json_t *auth_b64_json(const char *s, size_t len, const char *part, fb_auth_result_t *res);
static const auth_key_t *auth_pick(const fb_auth_t *a, const json_t *header,
                                   fb_auth_result_t *res);
static int auth_header(const fb_auth_t *a, const char *tok, size_t len, const auth_key_t **key,
                       fb_auth_result_t *res);
static int auth_hmac(const fb_auth_t *a, const auth_key_t *key, const char *tok, size_t signed_len,
                     const char *sig, size_t sig_len, fb_auth_result_t *res);
static int auth_time(const json_t *claims, const char *name, bool *has, int64_t *out,
                     fb_auth_result_t *res);
static int auth_claims(const fb_auth_t *a, json_t *claims, int64_t now, fb_auth_result_t *res);
static int auth_tenant(const fb_keydb_t *db, const char *key, size_t len, bool unbound,
                       fb_auth_result_t *res);
static bool auth_is_bearer(const char *v, size_t len);
static int auth_load_key(auth_key_t *k, const fb_conf_keyfile_t *kf, bool hs);
static const auth_key_t *auth_mint_key(const fb_auth_t *a, const char *kid);
static int auth_check_private(const fb_auth_t *a, const char *path);

/* fb_auth_err_name -- the stable snake_case name of err, for metrics. */
const char *
fb_auth_err_name(fb_auth_err_t err)
{
    if ((int)err < 0 || (int)err >= FB_AUTH_N_ERRS)
        return "unknown";
    return auth_err_names[err];
}

/* fb_auth_err_status -- the gRPC status a refusal maps to. */
int
fb_auth_err_status(fb_auth_err_t err)
{
    switch (err) {
    case FB_AUTH_OK:
        return 0;
    case FB_AUTH_ERR_UNKNOWN_KEY:
    case FB_AUTH_ERR_DISABLED:
    case FB_AUTH_ERR_REVOKED:
    case FB_AUTH_ERR_KEY_MISMATCH:
    case FB_AUTH_ERR_UNBOUND_NOT_ALLOWED:
        return FB_AUTH_STATUS_PERMISSION_DENIED;
    case FB_AUTH_ERR_INTERNAL:
        return FB_AUTH_STATUS_INTERNAL;
    default:
        return FB_AUTH_STATUS_UNAUTHENTICATED;
    }
}

/* auth_fail -- record a refusal in res; returns err. */
static int
auth_fail(fb_auth_result_t *res, fb_auth_err_t err, const char *fmt, ...)
{
    va_list ap;

    res->err = err;
    res->grpc_status = fb_auth_err_status(err);
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    return (int)err;
}

/* auth_json_err -- cut jansson's " near '...'", which quotes token bytes. */
static void
auth_json_err(char *text)
{
    char *near = strstr(text, " near ");

    if (near != NULL)
        *near = '\0';
}

/* auth_b64_json -- a base64url part decoded and parsed as a JSON object, or NULL. */
static json_t *
auth_b64_json(const char *s, size_t len, const char *part, fb_auth_result_t *res)
{
    unsigned char bin[FB_AUTH_HEADER_MAX];
    json_error_t jerr;
    size_t bin_len = 0;
    json_t *v;

    if (sodium_base642bin(bin, sizeof(bin), s, len, NULL, &bin_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token %s is not base64url", part);
        return NULL;
    }
    /* libjwt reads each part as a C string, so it would stop at a NUL byte
     * that jansson's json_loadb may skip: both must read the same text */
    if (memchr(bin, '\0', bin_len) != NULL) {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token %s has a NUL byte", part);
        return NULL;
    }
    /* duplicates refused: no member may mean one thing here and another in libjwt */
    v = json_loadb((const char *)bin, bin_len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        auth_json_err(jerr.text);
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token %s is not JSON: %s", part, jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token %s is not a JSON object", part);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* auth_pick -- the key for the header's kid; a token without kid gets the ""
 * key, or the only key. */
static const auth_key_t *
auth_pick(const fb_auth_t *a, const json_t *header, fb_auth_result_t *res)
{
    const json_t *kid = json_object_get(header, "kid");
    char shown[AUTH_SHOW_SIZE];
    const char *s;
    size_t len;

    if (kid != NULL && !json_is_string(kid)) {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token header kid is not a string");
        return NULL;
    }
    s = kid != NULL ? json_string_value(kid) : "";
    len = kid != NULL ? json_string_length(kid) : 0;
    if (len == 0) { /* "kid": "" is the same as no kid */
        for (size_t i = 0; i < a->n_keys; i++)
            if (a->keys[i].kid[0] == '\0')
                return &a->keys[i];
        if (a->n_keys == 1)
            return &a->keys[0];
        auth_fail(res, FB_AUTH_ERR_UNKNOWN_KID,
                  "token has no kid and %zu keys with kids are configured", a->n_keys);
        return NULL;
    }
    for (size_t i = 0; i < a->n_keys; i++)
        if (strlen(a->keys[i].kid) == len && memcmp(a->keys[i].kid, s, len) == 0)
            return &a->keys[i];
    fb_log_show(shown, sizeof(shown), s, len, AUTH_SHOW_MAX);
    auth_fail(res, FB_AUTH_ERR_UNKNOWN_KID, "token kid \"%s\" names no configured key", shown);
    return NULL;
}

/* auth_header -- alg, typ, crit and kid of tok's header; *key the key to verify with. */
static int
auth_header(const fb_auth_t *a, const char *tok, size_t len, const auth_key_t **key,
            fb_auth_result_t *res)
{
    char shown[AUTH_SHOW_SIZE];
    json_t *h, *v;

    h = auth_b64_json(tok, len, "header", res);
    if (h == NULL)
        return -1;
    v = json_object_get(h, "alg");
    if (v == NULL) {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token header has no alg");
        goto fail;
    }
    if (!json_is_string(v)) {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token header alg is not a string");
        goto fail;
    }
    fb_log_show(shown, sizeof(shown), json_string_value(v), json_string_length(v), AUTH_SHOW_MAX);
    /* libjwt reads "NONE", "None", ... as none too */
    if (strcasecmp(json_string_value(v), "none") == 0) {
        auth_fail(res, FB_AUTH_ERR_ALG_NONE, "token algorithm \"%s\" (unsigned) is refused",
                  shown);
        goto fail;
    }
    if (strcmp(json_string_value(v), a->alg_name) != 0 ||
        json_string_length(v) != strlen(a->alg_name)) {
        auth_fail(res, FB_AUTH_ERR_WRONG_ALG, "token algorithm %s is not the configured %s",
                  shown, a->alg_name);
        goto fail;
    }
    /* libjwt refuses other types with the same error as a bad signature */
    v = json_object_get(h, "typ");
    if (v != NULL && (!json_is_string(v) || strcasecmp(json_string_value(v), "JWT") != 0)) {
        if (json_is_string(v))
            fb_log_show(shown, sizeof(shown), json_string_value(v), json_string_length(v), AUTH_SHOW_MAX);
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token header typ %s%s%s is not JWT",
                  json_is_string(v) ? "\"" : "", json_is_string(v) ? shown : "(not a string)",
                  json_is_string(v) ? "\"" : "");
        goto fail;
    }
    /* RFC 7515 4.1.11: extensions we do not understand must be refused */
    if (json_object_get(h, "crit") != NULL) {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token header crit is not supported");
        goto fail;
    }
    *key = auth_pick(a, h, res);
    if (*key == NULL)
        goto fail;
    json_decref(h);
    return 0;

fail:
    json_decref(h);
    return -1;
}

/* auth_hmac -- HS256/HS512 checked in constant time (libjwt uses strcmp);
 * HS384, which libsodium lacks, is left to jwt_decode. */
static int
auth_hmac(const fb_auth_t *a, const auth_key_t *key, const char *tok, size_t signed_len,
          const char *sig, size_t sig_len, fb_auth_result_t *res)
{
    unsigned char want[crypto_auth_hmacsha512_BYTES], got[crypto_auth_hmacsha512_BYTES];
    size_t mac_len, got_len = 0;
    int rc = 0;

    if (a->alg == JWT_ALG_HS256) {
        crypto_auth_hmacsha256_state st;

        mac_len = crypto_auth_hmacsha256_BYTES;
        crypto_auth_hmacsha256_init(&st, key->key, key->len);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, signed_len);
        crypto_auth_hmacsha256_final(&st, want);
        sodium_memzero(&st, sizeof(st));
    } else if (a->alg == JWT_ALG_HS512) {
        crypto_auth_hmacsha512_state st;

        mac_len = crypto_auth_hmacsha512_BYTES;
        crypto_auth_hmacsha512_init(&st, key->key, key->len);
        crypto_auth_hmacsha512_update(&st, (const unsigned char *)tok, signed_len);
        crypto_auth_hmacsha512_final(&st, want);
        sodium_memzero(&st, sizeof(st));
    } else {
        return 0;
    }
    if (sodium_base642bin(got, sizeof(got), sig, sig_len, NULL, &got_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        got_len != mac_len || sodium_memcmp(got, want, mac_len) != 0)
        rc = -1;
    sodium_memzero(want, sizeof(want));
    return rc;
}

/* auth_time -- a NumericDate claim: absent (0, !*has), in range (0) or malformed (-1). */
static int
auth_time(const json_t *claims, const char *name, bool *has, int64_t *out,
          fb_auth_result_t *res)
{
    const json_t *v = json_object_get(claims, name);
    double d;

    *has = false;
    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > AUTH_TIME_MAX)
            goto range;
        *out = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        d = json_real_value(v);
        if (!(d >= 0.0 && d <= (double)AUTH_TIME_MAX))
            goto range;
        *out = (int64_t)d; /* RFC 7519 allows fractions; whole seconds are enough */
    } else {
        auth_fail(res, FB_AUTH_ERR_MALFORMED, "token claim %s is not a number", name);
        return -1;
    }
    *has = true;
    return 0;

range:
    auth_fail(res, FB_AUTH_ERR_MALFORMED, "token claim %s is out of range (0 to %lld)", name,
              (long long)AUTH_TIME_MAX);
    return -1;
}

/* auth_claims -- exp, nbf, iat (with the skew), iss, aud and the key claim. */
static int
auth_claims(const fb_auth_t *a, json_t *claims, int64_t now, fb_auth_result_t *res)
{
    char shown[AUTH_SHOW_SIZE];
    long long skew_s = (long long)(a->skew_ms / 1000);
    int64_t now_ms, nbf = 0;
    const char *why;
    bool has_nbf;
    json_t *v;

    if (now < 0)
        now = 0;
    if (now > AUTH_NOW_MAX)
        now = AUTH_NOW_MAX;
    now_ms = now * 1000;
    if (auth_time(claims, "exp", &res->has_exp, &res->exp, res) < 0 ||
        auth_time(claims, "nbf", &has_nbf, &nbf, res) < 0 ||
        auth_time(claims, "iat", &res->has_iat, &res->iat, res) < 0)
        return -1;

    if (!res->has_exp && a->require_exp)
        return auth_fail(res, FB_AUTH_ERR_NO_EXP, "token has no exp and auth.require_exp is on");
    if (res->has_exp && res->exp * 1000 + a->skew_ms <= now_ms)
        return auth_fail(res, FB_AUTH_ERR_EXPIRED, "token expired %lld s ago (clock skew %lld s)",
                         (long long)(now - res->exp), skew_s);
    if (has_nbf && nbf * 1000 - a->skew_ms > now_ms)
        return auth_fail(res, FB_AUTH_ERR_NOT_YET_VALID,
                         "token not valid for another %lld s (nbf, clock skew %lld s)",
                         (long long)(nbf - now), skew_s);
    if (res->has_iat && res->iat * 1000 - a->skew_ms > now_ms)
        return auth_fail(res, FB_AUTH_ERR_NOT_YET_VALID,
                         "token issued %lld s in the future (iat, clock skew %lld s)",
                         (long long)(res->iat - now), skew_s);

    if (a->issuer[0] != '\0') {
        v = json_object_get(claims, "iss");
        if (!json_is_string(v))
            return auth_fail(res, FB_AUTH_ERR_BAD_ISSUER, "token has %s, expected \"%s\"",
                             v == NULL ? "no iss" : "an iss that is not a string", a->issuer);
        if (strcmp(json_string_value(v), a->issuer) != 0 ||
            json_string_length(v) != strlen(a->issuer)) {
            fb_log_show(shown, sizeof(shown), json_string_value(v), json_string_length(v), AUTH_SHOW_MAX);
            return auth_fail(res, FB_AUTH_ERR_BAD_ISSUER,
                             "token issuer \"%s\" is not the configured \"%s\"", shown, a->issuer);
        }
    }

    if (a->audience[0] != '\0') {
        bool found = false;
        size_t i;
        json_t *e;

        v = json_object_get(claims, "aud");
        if (json_is_string(v)) {
            found = strcmp(json_string_value(v), a->audience) == 0 &&
                    json_string_length(v) == strlen(a->audience);
        } else if (json_is_array(v)) {
            json_array_foreach(v, i, e) {
                found = found || (json_is_string(e) && json_string_length(e) ==
                                  strlen(a->audience) &&
                                  strcmp(json_string_value(e), a->audience) == 0);
            }
        }
        if (v == NULL)
            return auth_fail(res, FB_AUTH_ERR_BAD_AUDIENCE, "token has no aud, expected \"%s\"",
                             a->audience);
        if (!found)
            return auth_fail(res, FB_AUTH_ERR_BAD_AUDIENCE,
                             "token audience does not include \"%s\"", a->audience);
    }

    v = json_object_get(claims, a->key_claim);
    if (v == NULL) {
        res->unbound = true;
        res->access_key[0] = '\0';
        return 0;
    }
    if (!json_is_string(v))
        return auth_fail(res, FB_AUTH_ERR_MALFORMED, "token claim %s is not a string",
                         a->key_claim);
    if (!fb_access_key_valid(json_string_value(v), json_string_length(v), &why)) {
        fb_log_show(shown, sizeof(shown), json_string_value(v), json_string_length(v), AUTH_SHOW_MAX);
        return auth_fail(res, FB_AUTH_ERR_MALFORMED, "token claim %s \"%s\" %s", a->key_claim,
                         shown, why);
    }
    memcpy(res->access_key, json_string_value(v), json_string_length(v) + 1);
    res->unbound = false;
    return 0;
}

/* auth_tenant -- the tenant of key[0..len) exists, is enabled and has not revoked the token. */
static int
auth_tenant(const fb_keydb_t *db, const char *key, size_t len, bool unbound,
            fb_auth_result_t *res)
{
    char shown[AUTH_SHOW_SIZE];
    const fb_tenant_t *t;

    fb_log_show(shown, sizeof(shown), key, len, AUTH_SHOW_MAX);
    t = fb_keydb_find(db, key, len);
    if (t == NULL)
        return auth_fail(res, FB_AUTH_ERR_UNKNOWN_KEY, "access key \"%s\" is not in the key "
                                                       "database", shown);
    if (t->disabled)
        return auth_fail(res, FB_AUTH_ERR_DISABLED, "access key \"%s\" is disabled", shown);
    if (t->tokens_not_before > 0 && !res->has_iat)
        return auth_fail(res, FB_AUTH_ERR_REVOKED,
                         "token has no iat and access key \"%s\" revokes tokens issued before "
                         "%lld", shown, (long long)t->tokens_not_before);
    if (t->tokens_not_before > 0 && res->iat < t->tokens_not_before)
        return auth_fail(res, FB_AUTH_ERR_REVOKED,
                         "token issued at %lld, before access key \"%s\" tokens_not_before %lld",
                         (long long)res->iat, shown, (long long)t->tokens_not_before);
    if (unbound && !fb_tenant_lists_unbound(t, res->token_sha256)) {
        char fp[2 * FB_TOKEN_SHA256_LEN + 1];

        /* a prefix of the fingerprint names the token; the token itself, never */
        sodium_bin2hex(fp, sizeof(fp), res->token_sha256, FB_TOKEN_SHA256_LEN);
        return auth_fail(res, FB_AUTH_ERR_UNBOUND_NOT_ALLOWED,
                         "token has no access key claim and access key \"%s\" does not list "
                         "its fingerprint (sha256 %.16s...) in unbound_tokens_sha256",
                         shown, fp);
    }
    return 0;
}

/* auth_is_bearer -- v starts with "Bearer" (any case) and a space or tab. */
static bool
auth_is_bearer(const char *v, size_t len)
{
    return len >= 7 && strncasecmp(v, "bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t');
}

/* fb_auth_bearer_token -- the token of "Bearer <token>", as fb_auth_verify
 * reads it and as ExchangeConfig echoes it. */
int
fb_auth_bearer_token(const char *authorization, size_t len, const char **tok, size_t *tok_len)
{
    const char *p, *end;

    if (authorization == NULL || !auth_is_bearer(authorization, len))
        return -1;
    end = authorization + len;
    for (p = authorization + 7; p < end && (*p == ' ' || *p == '\t'); p++)
        ;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == p)
        return -1;
    *tok = p;
    *tok_len = (size_t)(end - p);
    return 0;
}

/* fb_auth_fingerprint -- hex SHA-256 of a bare token (unbound_tokens_sha256). */
void
fb_auth_fingerprint(const char *tok, size_t len, char hex[2 * FB_TOKEN_SHA256_LEN + 1])
{
    uint8_t h[FB_TOKEN_SHA256_LEN];

    crypto_hash_sha256(h, (const unsigned char *)tok, len);
    sodium_bin2hex(hex, 2 * FB_TOKEN_SHA256_LEN + 1, h, sizeof(h));
}

/* fb_auth_verify -- the whole check of one authorization value; see auth.h. */
int
fb_auth_verify(const fb_auth_t *a, const fb_keydb_t *db, const char *authorization, size_t len,
               int64_t now, fb_auth_result_t *res)
{
    char tok[FB_AUTH_HEADER_MAX + 1], shown[AUTH_SHOW_SIZE];
    const char *dot1, *dot2, *p = authorization;
    const auth_key_t *key = NULL;
    json_t *payload = NULL, *claims = NULL;
    jwt_t *jwt = NULL;
    json_error_t jerr;
    char *grants = NULL;
    size_t tlen, n;
    int rc;

    memset(res, 0, sizeof(*res));
    if (authorization == NULL || len == 0)
        return auth_fail(res, FB_AUTH_ERR_MISSING, "no authorization metadata");
    if (len > FB_AUTH_HEADER_MAX)
        return auth_fail(res, FB_AUTH_ERR_MALFORMED, "authorization is %zu bytes, more than %d",
                         len, FB_AUTH_HEADER_MAX);
    if (!auth_is_bearer(p, len)) {
        /* show a scheme, never the start of a credential sent without one */
        for (n = 0; n < len && n < 16 && p[n] != ' '; n++)
            ;
        if (n == len || p[n] != ' ')
            return auth_fail(res, FB_AUTH_ERR_NOT_BEARER,
                             "authorization is not \"Bearer <token>\" (no scheme)");
        fb_log_show(shown, sizeof(shown), p, n, AUTH_SHOW_MAX);
        return auth_fail(res, FB_AUTH_ERR_NOT_BEARER, "authorization scheme \"%s\" is not Bearer",
                         shown);
    }
    if (fb_auth_bearer_token(authorization, len, &p, &tlen) < 0)
        return auth_fail(res, FB_AUTH_ERR_MALFORMED, "no token after Bearer");
    for (n = 0; n < tlen; n++) {
        unsigned char c = (unsigned char)p[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return auth_fail(res, FB_AUTH_ERR_MALFORMED,
                             "token has a byte that is not base64url or '.' at offset %zu", n);
    }
    memcpy(tok, p, tlen);
    tok[tlen] = '\0';
    dot1 = strchr(tok, '.');
    dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        for (n = 1, p = tok; (p = strchr(p, '.')) != NULL; p++)
            n++;
        return auth_fail(res, FB_AUTH_ERR_MALFORMED,
                         "token has %zu parts, not 3 (header.payload.signature)", n);
    }
    if (dot1 == tok || dot2 == dot1 + 1)
        return auth_fail(res, FB_AUTH_ERR_MALFORMED, "token has an empty %s",
                         dot1 == tok ? "header" : "payload");

    if (auth_header(a, tok, (size_t)(dot1 - tok), &key, res) < 0)
        return (int)res->err;
    /* libjwt would parse the payload too; find malformed ones before the signature */
    payload = auth_b64_json(dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", res);
    if (payload == NULL)
        return (int)res->err;
    json_decref(payload);
    if (auth_hmac(a, key, tok, (size_t)(dot2 - tok), dot2 + 1, strlen(dot2 + 1), res) < 0)
        goto bad_signature;
    if (key->len == 0 || key->len > INT32_MAX)
        fb_panic("auth: verification key of kid \"%s\" has %zu bytes", key->kid, key->len);
    rc = jwt_decode(&jwt, tok, key->key, (int)key->len);
    if (rc == ENOMEM) {
        fb_log_errorx("jwt_decode(%zu bytes) failed: out of memory", tlen);
        return auth_fail(res, FB_AUTH_ERR_INTERNAL, "out of memory");
    }
    if (rc != 0 || jwt == NULL)
        goto bad_signature;
    if (jwt_get_alg(jwt) != a->alg) /* checked above: a second look costs nothing */
        fb_panic("auth: jwt_decode verified alg %s, not the checked %s",
                 jwt_alg_str(jwt_get_alg(jwt)), a->alg_name);

    /* the claims libjwt verified, not our own parse of the payload */
    grants = jwt_get_grants_json(jwt, NULL);
    if (grants == NULL) {
        fb_log_errorx("jwt_get_grants_json() failed: out of memory");
        rc = auth_fail(res, FB_AUTH_ERR_INTERNAL, "out of memory");
        goto done;
    }
    claims = json_loads(grants, JSON_REJECT_DUPLICATES, &jerr);
    if (claims == NULL || !json_is_object(claims)) {
        auth_json_err(jerr.text);
        fb_log_errorx("auth: libjwt's claims do not parse back: %s",
                      claims == NULL ? jerr.text : "not an object");
        rc = auth_fail(res, FB_AUTH_ERR_INTERNAL, "claims unreadable");
        goto done;
    }
    snprintf(res->kid, sizeof(res->kid), "%s", key->kid);
    if (auth_claims(a, claims, now, res) != 0) {
        rc = (int)res->err;
        goto done;
    }
    /* the whole token: the original tokens carry no jti to name them by */
    if (res->unbound)
        crypto_hash_sha256(res->token_sha256, (const unsigned char *)tok, tlen);
    if (!res->unbound &&
        auth_tenant(db, res->access_key, strlen(res->access_key), false, res) != 0) {
        rc = (int)res->err;
        goto done;
    }
    res->err = FB_AUTH_OK;
    res->grpc_status = 0;
    snprintf(res->detail, sizeof(res->detail), "%s token%s%s%s", a->alg_name,
             res->kid[0] ? " (kid " : "", res->kid, res->kid[0] ? ")" : "");
    rc = 0;

done:
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    return rc;

bad_signature:
    if (key->kid[0] != '\0')
        return auth_fail(res, FB_AUTH_ERR_BAD_SIGNATURE,
                         "token signature does not verify with the %s key of kid \"%s\"",
                         a->alg_name, key->kid);
    return auth_fail(res, FB_AUTH_ERR_BAD_SIGNATURE,
                     "token signature does not verify with the %s key", a->alg_name);
}

/* fb_auth_check_tenant -- one request's access key against a verified token. */
int
fb_auth_check_tenant(const fb_auth_result_t *r, const fb_keydb_t *db, const char *access_key,
                     size_t len, fb_auth_result_t *out)
{
    char shown[AUTH_SHOW_SIZE];

    if (out != r)
        *out = *r;
    if (r->err != FB_AUTH_OK)
        return (int)out->err;
    if (access_key == NULL) {
        access_key = "";
        len = 0;
    }
    fb_log_show(shown, sizeof(shown), access_key, len, AUTH_SHOW_MAX);
    if (!out->unbound && (strlen(out->access_key) != len ||
                          memcmp(out->access_key, access_key, len) != 0))
        return auth_fail(out, FB_AUTH_ERR_KEY_MISMATCH,
                         "token is bound to access key \"%s\", not \"%s\"", out->access_key,
                         shown);
    if (auth_tenant(db, access_key, len, out->unbound, out) != 0)
        return (int)out->err;
    if (out->unbound) {
        char fp[2 * FB_TOKEN_SHA256_LEN + 1];

        sodium_bin2hex(fp, sizeof(fp), out->token_sha256, FB_TOKEN_SHA256_LEN);
        memcpy(out->access_key, access_key, len); /* len <= 128: the tenant exists */
        out->access_key[len] = '\0';
        /* checked for every event of a stream: counted, one line per interval */
        fb_log_limited(FB_LOG_INFO, "unbound token accepted",
                       "unbound token (kid \"%s\", iat %lld, sha256 %.16s...) accepted for "
                       "access key \"%s\" (unbound_tokens_sha256)",
                       out->kid, out->has_iat ? (long long)out->iat : -1LL, fp, shown);
    }
    return 0;
}

/* auth_load_key -- one secret (HS) or PEM public key (RS/ES) into k; logs. */
static int
auth_load_key(auth_key_t *k, const fb_conf_keyfile_t *kf, bool hs)
{
    const char *name = hs ? "jwt_secret_file" : "jwt_public_key_file";
    int rc;

    k->kid = strdup(kf->kid);
    if (k->kid == NULL) {
        fb_log_errorx("[auth] %s%s%s: strdup failed: out of memory", name,
                      kf->kid[0] ? "." : "", kf->kid);
        return -1;
    }
    if (hs)
        rc = fb_secret_read(kf->path, FB_SECRET_F_PRIVATE | FB_SECRET_F_STRIP_NL,
                            FB_SECRET_MIN_HMAC, &k->key, &k->len);
    else
        rc = fb_secret_read(kf->path, 0, 1, &k->key, &k->len);
    if (rc < 0) {
        fb_log_errorx("[auth] %s%s%s: %s refused (see above)", name, kf->kid[0] ? "." : "",
                      kf->kid, kf->path);
        return -1;
    }
    if (!hs && strstr((const char *)k->key, "-----BEGIN PUBLIC KEY-----") == NULL) {
        fb_log_errorx("[auth] %s%s%s: %s is not a PEM public key (no BEGIN PUBLIC KEY)", name,
                      kf->kid[0] ? "." : "", kf->kid, kf->path);
        return -1;
    }
    return 0;
}

/* auth_check_private -- the private key signs tokens one of the public keys verifies,
 * so that a mismatched pair (or an EC key for RS256) is found at load, not at login. */
static int
auth_check_private(const fb_auth_t *a, const char *path)
{
    fb_auth_result_t res = {.detail = ""};
    char *tok = NULL, *hdr = NULL;

    for (size_t i = 0; i < a->n_keys; i++) {
        if (fb_auth_mint(a, "fbpipe-selftest", 1000, 60, a->keys[i].kid, &tok) < 0) {
            fb_log_errorx("[auth] jwt_private_key_file: %s cannot sign %s tokens", path,
                          a->alg_name);
            return -1;
        }
        if (asprintf(&hdr, "Bearer %s", tok) < 0) {
            free(tok);
            fb_log_errorx("asprintf(%zu bytes) failed: out of memory", strlen(tok) + 8);
            return -1;
        }
        /* no key database: a token that passes every check stops at "unknown key" */
        fb_auth_verify(a, NULL, hdr, strlen(hdr), 1000, &res);
        free(hdr);
        free(tok);
        if (res.err == FB_AUTH_ERR_UNKNOWN_KEY)
            return 0;
    }
    fb_log_errorx("[auth] jwt_private_key_file: %s signs tokens that no jwt_public_key_file "
                  "verifies (%s)", path, res.detail);
    return -1;
}

/* fb_auth_new -- the verification keys and checks of conf [auth]; NULL after logging. */
fb_auth_t *
fb_auth_new(const fb_conf_t *conf)
{
    const fb_conf_keyfile_t *files;
    fb_auth_t *a;
    size_t n;

    if (sodium_init() < 0) {
        fb_log_errorx("sodium_init() failed");
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        fb_log_errorx("calloc(1, %zu) failed: out of memory", sizeof(*a));
        return NULL;
    }
    for (size_t i = 0; i < sizeof(auth_algs) / sizeof(auth_algs[0]); i++) {
        if (strcmp(conf->jwt_algorithm, auth_algs[i].name) == 0) {
            a->alg = auth_algs[i].alg;
            a->alg_name = auth_algs[i].name;
        }
    }
    if (a->alg_name == NULL) {
        fb_log_errorx("[auth] jwt_algorithm: \"%s\" is not one of HS256, HS384, HS512, RS256, "
                      "ES256", conf->jwt_algorithm);
        goto fail;
    }
    a->hs = a->alg_name[0] == 'H';
    a->skew_ms = (int64_t)conf->clock_skew_ms;
    if (conf->clock_skew_ms > 3600000) {
        fb_log_errorx("[auth] clock_skew: %llu ms is more than an hour",
                      (unsigned long long)conf->clock_skew_ms);
        goto fail;
    }
    a->require_exp = conf->require_exp;
    for (size_t i = 0; i < sizeof(auth_reserved_claims) / sizeof(auth_reserved_claims[0]); i++) {
        if (strcmp(conf->key_claim, auth_reserved_claims[i]) == 0 || conf->key_claim[0] == '\0') {
            fb_log_errorx("[auth] key_claim: \"%s\" is a registered claim or empty; use a name "
                          "such as access_key", conf->key_claim);
            goto fail;
        }
    }
    a->key_claim = strdup(conf->key_claim);
    a->issuer = strdup(conf->issuer);
    a->audience = strdup(conf->audience);
    if (a->key_claim == NULL || a->issuer == NULL || a->audience == NULL) {
        fb_log_errorx("[auth] strdup(key_claim, issuer, audience) failed: out of memory");
        goto fail;
    }

    files = a->hs ? conf->jwt_secret_files : conf->jwt_public_key_files;
    n = a->hs ? conf->n_jwt_secret_files : conf->n_jwt_public_key_files;
    if (n == 0) {
        fb_log_errorx("[auth] jwt_algorithm %s needs %s", a->alg_name,
                      a->hs ? "jwt_secret_file" : "jwt_public_key_file");
        goto fail;
    }
    a->keys = calloc(n, sizeof(*a->keys));
    if (a->keys == NULL) {
        fb_log_errorx("calloc(%zu, %zu) failed: out of memory", n, sizeof(*a->keys));
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        a->n_keys++; /* so that a failure still wipes what was read */
        if (auth_load_key(&a->keys[i], &files[i], a->hs) < 0)
            goto fail;
    }

    if (!a->hs && conf->jwt_private_key_file[0] != '\0') {
        if (fb_secret_read(conf->jwt_private_key_file, FB_SECRET_F_PRIVATE, 1, &a->private_key,
                           &a->private_len) < 0) {
            fb_log_errorx("[auth] jwt_private_key_file: %s refused (see above)",
                          conf->jwt_private_key_file);
            goto fail;
        }
        if (strstr((const char *)a->private_key, "PRIVATE KEY-----") == NULL) {
            fb_log_errorx("[auth] jwt_private_key_file: %s is not a PEM private key",
                          conf->jwt_private_key_file);
            goto fail;
        }
        if (auth_check_private(a, conf->jwt_private_key_file) < 0)
            goto fail;
    }
    return a;

fail:
    fb_auth_free(a);
    return NULL;
}

size_t
fb_auth_removed_kids(const fb_auth_t *old, const fb_auth_t *next,
                     char (*out)[FB_AUTH_KID_MAX + 1], size_t max)
{
    size_t n = 0;

    for (size_t i = 0; old != NULL && i < old->n_keys; i++) {
        const auth_key_t *k = &old->keys[i];
        bool kept = false;
        for (size_t j = 0; next != NULL && j < next->n_keys && !kept; j++)
            kept = strcmp(next->keys[j].kid, k->kid) == 0 && next->keys[j].len == k->len &&
                   sodium_memcmp(next->keys[j].key, k->key, k->len) == 0;
        if (kept)
            continue;
        if (n < max)
            snprintf(out[n], FB_AUTH_KID_MAX + 1, "%s", k->kid);
        n++;
    }
    return n;
}

/* fb_auth_free -- wipe every key and free; tolerates NULL and half-built. */
void
fb_auth_free(fb_auth_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; a->keys != NULL && i < a->n_keys; i++) {
        free(a->keys[i].kid);
        fb_secret_free(a->keys[i].key, a->keys[i].len); /* wipes; tolerates NULL */
    }
    free(a->keys);
    fb_secret_free(a->private_key, a->private_len);
    free(a->key_claim);
    free(a->issuer);
    free(a->audience);
    sodium_memzero(a, sizeof(*a));
    free(a);
}

/* auth_mint_key -- the key of kid ("": the "" key or the only one), or NULL. */
static const auth_key_t *
auth_mint_key(const fb_auth_t *a, const char *kid)
{
    for (size_t i = 0; i < a->n_keys; i++)
        if (strcmp(a->keys[i].kid, kid) == 0)
            return &a->keys[i];
    if (kid[0] == '\0' && a->n_keys == 1)
        return &a->keys[0];
    return NULL;
}

/* fb_auth_mint -- a token for `fbpiped token`; -1 after logging. */
int
fb_auth_mint(const fb_auth_t *a, const char *access_key, int64_t now, int64_t expiry_s,
             const char *kid, char **token_out)
{
    const auth_key_t *key = NULL;
    const unsigned char *k;
    const char *why, *hkid;
    jwt_t *jwt = NULL;
    size_t klen;
    int rc;

    *token_out = NULL;
    if (kid == NULL)
        kid = "";
    if (access_key == NULL || !fb_access_key_valid(access_key, strlen(access_key), &why)) {
        fb_log_errorx("token: access key %s", access_key == NULL ? "is missing" : why);
        return -1;
    }
    if (now < 0 || now > AUTH_TIME_MAX || expiry_s <= 0 || expiry_s > AUTH_TIME_MAX - now) {
        fb_log_errorx("token: expiry %lld s from %lld is out of range (1 s to year 9999)",
                      (long long)expiry_s, (long long)now);
        return -1;
    }
    if (!a->hs && a->private_key == NULL) {
        fb_log_errorx("token: jwt_algorithm %s needs auth.jwt_private_key_file to sign",
                      a->alg_name);
        return -1;
    }
    /* RS/ES too: a token whose kid names no public key would never verify */
    key = auth_mint_key(a, kid);
    if (key == NULL) {
        fb_log_errorx("token: no %s%s%s %s%s", a->hs ? "jwt_secret_file" : "jwt_public_key_file",
                      kid[0] ? "." : "", kid, a->hs ? "to sign with" : "to verify with",
                      kid[0] ? "" : " (several keys have kids: name one with --kid)");
        return -1;
    }
    k = a->hs ? key->key : a->private_key;
    klen = a->hs ? key->len : a->private_len;
    hkid = key->kid;

    rc = jwt_new(&jwt);
    if (rc != 0) {
        fb_log_errorx("jwt_new() failed: %s", strerror(rc));
        return -1;
    }
    if ((rc = jwt_set_alg(jwt, a->alg, k, (int)klen)) != 0) {
        fb_log_errorx("jwt_set_alg(%s) failed: %s", a->alg_name, strerror(rc));
        goto fail;
    }
    if (hkid[0] != '\0' && (rc = jwt_add_header(jwt, "kid", hkid)) != 0) {
        fb_log_errorx("jwt_add_header(kid) failed: %s", strerror(rc));
        goto fail;
    }
    if ((rc = jwt_add_grant(jwt, a->key_claim, access_key)) != 0 ||
        (rc = jwt_add_grant_int(jwt, "iat", (long)now)) != 0 ||
        (rc = jwt_add_grant_int(jwt, "exp", (long)(now + expiry_s))) != 0 ||
        (a->issuer[0] != '\0' && (rc = jwt_add_grant(jwt, "iss", a->issuer)) != 0) ||
        (a->audience[0] != '\0' && (rc = jwt_add_grant(jwt, "aud", a->audience)) != 0)) {
        fb_log_errorx("jwt_add_grant() failed: %s", strerror(rc));
        goto fail;
    }
    *token_out = jwt_encode_str(jwt);
    if (*token_out == NULL) {
        fb_log_errorx("jwt_encode_str(%s) failed: %s%s", a->alg_name, strerror(errno),
                      a->hs ? "" : " (is jwt_private_key_file a key of that type?)");
        goto fail;
    }
    jwt_free(jwt);
    return 0;

fail:
    jwt_free(jwt);
    return -1;
}
