/*
 * test_auth.c -- JWT verification and minting: every refusal kind with its
 * gRPC status and message, the attacks libjwt 1.10 lets through by itself
 * (alg none, an RSA public key used as an HMAC secret), key rotation by kid,
 * clock skew edges, tenant binding and lifecycle, and hostile input.
 *
 * Tokens are minted with fb_auth_mint or built by hand (base64url pieces and
 * libsodium HMACs), so the verifier is never only checked against itself.
 * RSA and EC keys are generated at test time with openssl(1).
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <jwt.h>
#include <sodium.h>

#include "common/auth.h"
#include "common/conf.h"
#include "common/keys.h"
#include "helpers.h"

#define NOW INT64_C(1700000000)
#define S1 "0123456789abcdef0123456789abcdef"
#define S2 "fedcba9876543210fedcba9876543210-second"
/* the original API's tokens: exp, iat, role and no key claim (HS256 with S1) */
#define UNBOUND_1 "{\"exp\":1800000000,\"iat\":1699999000,\"role\":\"agent\"}"
#define UNBOUND_2 "{\"exp\":1800000000}"
/* signed with the same secret, listed by no tenant */
#define UNBOUND_OTHER "{\"exp\":1800000000,\"iat\":1699999000,\"role\":\"admin\"}"
#define HS256_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
/* printf format: the fingerprints of UNBOUND_1 (three times) and UNBOUND_2 */
#define KEYS_JSON                                                                                 \
    "{\"t1\": {\"AccessKey\": \"t1\"},"                                                           \
    " \"t2\": {\"AccessKey\": \"t2\"},"                                                           \
    " \"open\": {\"AccessKey\": \"open\", \"unbound_tokens_sha256\": [\"%s\", \"%s\"]},"         \
    " \"off\": {\"AccessKey\": \"off\", \"disabled\": true, \"unbound_tokens_sha256\": [\"%s\"]},"  \
    " \"rev\": {\"AccessKey\": \"rev\", \"tokens_not_before\": 1699990000,"                       \
    "           \"unbound_tokens_sha256\": [\"%s\"]}}"

static fb_keydb_t *db;

static void setup(void);
static void fingerprint_of(const char *payload, char hex[65]);
static void teardown(void);
static fb_auth_t *auth_for(const char *lines);
static char *b64(const void *data, size_t len);
static char *craft(const char *header, const char *payload, const char *key, size_t key_len,
                   int bits);
static char *craft_n(const char *header, size_t hlen, const char *payload, size_t plen,
                     const char *key, size_t key_len, int bits);
static int verify(const fb_auth_t *a, const char *token, int64_t now, fb_auth_result_t *res);
static void expect(const fb_auth_t *a, const char *token, int64_t now, fb_auth_err_t err,
                   const char *detail);
static char *read_file(const char *name, size_t *len);
static void gen_rsa(const char *name);
static void gen_ec(const char *name);

TestSuite(auth, .init = setup, .fini = teardown);

/* setup -- secrets (0600), the key database (0640) and captured logging. */
static void
setup(void)
{
    char json[1024], fp1[65], fp2[65];

    test_setup();
    if (sodium_init() < 0)
        abort();
    test_write("jwt.secret", S1 "\n", 0600);
    test_write("k1.secret", S1 "\n", 0600);
    test_write("k2.secret", S2 "\n", 0600);
    fingerprint_of(UNBOUND_1, fp1);
    fingerprint_of(UNBOUND_2, fp2);
    snprintf(json, sizeof(json), KEYS_JSON, fp1, fp2, fp1, fp1);
    db = fb_keydb_load(test_write("keys.json", json, 0640));
    if (db == NULL)
        abort();
}

static void
teardown(void)
{
    fb_keydb_free(db);
    db = NULL;
    test_teardown();
}

/* auth_for -- an fb_auth_t from an [auth] section (paths relative to test_dir). */
static fb_auth_t *
auth_for(const char *lines)
{
    char text[2048];
    fb_auth_t *a;
    fb_conf_t *c;

    snprintf(text, sizeof(text), "[ingester]\nlisten = 127.0.0.1:7777\n[auth]\n%s", lines);
    c = fb_conf_load(test_write("fbpipe.conf", text, 0644));
    cr_assert_not_null(c, "config refused:\n%s", test_log_buf);
    a = fb_auth_new(c);
    fb_conf_free(c);
    return a;
}

/* b64 -- base64url without padding (malloc'd). */
static char *
b64(const void *data, size_t len)
{
    size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(size);

    cr_assert_not_null(out);
    sodium_bin2base64(out, size, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* craft -- header.payload.signature by hand; bits 256/512 = HMAC with key, 0 = empty sig. */
static char *
craft(const char *header, const char *payload, const char *key, size_t key_len, int bits)
{
    return craft_n(header, strlen(header), payload, strlen(payload), key, key_len, bits);
}

/* craft_n -- craft with parts that may hold any byte. */
static char *
craft_n(const char *header, size_t hlen, const char *payload, size_t plen, const char *key,
        size_t key_len, int bits)
{
    unsigned char mac[crypto_auth_hmacsha512_BYTES];
    char *h = b64(header, hlen), *p = b64(payload, plen), *s, *out;
    size_t mac_len = 0;
    int n;

    n = asprintf(&out, "%s.%s", h, p);
    cr_assert_gt(n, 0);
    if (bits == 256) {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, key_len);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)out, strlen(out));
        crypto_auth_hmacsha256_final(&st, mac);
        mac_len = crypto_auth_hmacsha256_BYTES;
    } else if (bits == 512) {
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, (const unsigned char *)key, key_len);
        crypto_auth_hmacsha512_update(&st, (const unsigned char *)out, strlen(out));
        crypto_auth_hmacsha512_final(&st, mac);
        mac_len = crypto_auth_hmacsha512_BYTES;
    }
    s = b64(mac, mac_len);
    free(out);
    n = asprintf(&out, "%s.%s.%s", h, p, s);
    cr_assert_gt(n, 0);
    free(h);
    free(p);
    free(s);
    return out;
}

/* fingerprint_of -- the fingerprint of the HS256 token of payload signed
 * with S1, hashed here with libsodium (not with fb_auth_fingerprint). */
static void
fingerprint_of(const char *payload, char hex[65])
{
    char *tok = craft(HS256_HDR, payload, S1, strlen(S1), 256);
    uint8_t h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, (const unsigned char *)tok, strlen(tok));
    sodium_bin2hex(hex, 65, h, sizeof(h));
    free(tok);
}

/* verify -- "Bearer <token>" through fb_auth_verify. */
static int
verify(const fb_auth_t *a, const char *token, int64_t now, fb_auth_result_t *res)
{
    char *hdr;
    int rc, n;

    n = asprintf(&hdr, "Bearer %s", token);
    cr_assert_gt(n, 0);
    rc = fb_auth_verify(a, db, hdr, strlen(hdr), now, res);
    free(hdr);
    return rc;
}

/* expect -- token is refused with err, the status of its kind, and detail in the message. */
static void
expect(const fb_auth_t *a, const char *token, int64_t now, fb_auth_err_t err, const char *detail)
{
    fb_auth_result_t res;
    int rc = verify(a, token, now, &res);

    cr_assert_eq(rc, (int)err, "wanted %s, got %s: %s", fb_auth_err_name(err),
                 fb_auth_err_name((fb_auth_err_t)rc), res.detail);
    cr_assert_eq(res.err, err);
    cr_assert_eq(res.grpc_status, fb_auth_err_status(err));
    cr_assert_not_null(strstr(res.detail, detail), "wanted \"%s\" in \"%s\"", detail, res.detail);
}

/* read_file -- a file of test_dir (malloc'd, NUL-terminated). */
static char *
read_file(const char *name, size_t *len)
{
    char path[256], *buf;
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* gen_rsa -- NAME.key (0600) and NAME.pub, a fresh 2048-bit RSA pair. */
static void
gen_rsa(const char *name)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && umask 077 && openssl genrsa -out %s.key 2048 2>/dev/null && "
             "openssl rsa -in %s.key -pubout -out %s.pub 2>/dev/null",
             test_dir, name, name, name);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* gen_ec -- NAME.key (0600) and NAME.pub, a fresh P-256 pair (PKCS#8). */
static void
gen_ec(const char *name)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && umask 077 && openssl ecparam -genkey -name prime256v1 -noout "
             "2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out %s.key 2>/dev/null && "
             "openssl ec -in %s.key -pubout -out %s.pub 2>/dev/null",
             test_dir, name, name, name);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(auth, minted_token_verifies_with_its_claims)
{
    fb_auth_t *a = auth_for("");
    fb_auth_result_t res;
    char *tok;

    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 3600, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW + 10, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_eq(res.grpc_status, 0);
    cr_assert_str_eq(res.access_key, "t1");
    cr_assert_not(res.unbound);
    cr_assert(res.has_exp && res.has_iat);
    cr_assert_eq(res.exp, NOW + 3600);
    cr_assert_eq(res.iat, NOW);
    cr_assert_str_eq(res.kid, "");
    /* the scheme is case-insensitive (RFC 7235), surrounding blanks are not part of the token */
    {
        char *hdr;
        cr_assert_gt(asprintf(&hdr, "bEaReR   %s  ", tok), 0);
        cr_assert_eq(fb_auth_verify(a, db, hdr, strlen(hdr), NOW, &res), FB_AUTH_OK, "%s",
                     res.detail);
        free(hdr);
    }
    cr_assert_null(strstr(test_log_buf, S1), "secret logged");
    free(tok);
    fb_auth_free(a);
    fb_auth_free(NULL);
}

Test(auth, hand_made_hs256_token_verifies)
{
    fb_auth_t *a = auth_for("");
    fb_auth_result_t res;
    char *tok = craft(HS256_HDR, "{\"access_key\":\"t2\",\"exp\":1700000100,\"iat\":1699999999}",
                      S1, strlen(S1), 256);

    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.access_key, "t2");
    cr_assert_eq(res.exp, 1700000100);
    /* the trailing newline of jwt.secret is not part of the secret */
    free(tok);
    tok = craft(HS256_HDR, "{\"access_key\":\"t2\",\"exp\":1700000100}", S1 "\n",
                strlen(S1) + 1, 256);
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "does not verify with the HS256 key");
    free(tok);
    fb_auth_free(a);
}

Test(auth, missing_and_not_bearer)
{
    fb_auth_t *a = auth_for("");
    fb_auth_result_t res;

    cr_assert_eq(fb_auth_verify(a, db, NULL, 0, NOW, &res), FB_AUTH_ERR_MISSING);
    cr_assert_eq(res.grpc_status, 16);
    cr_assert_str_eq(res.detail, "no authorization metadata");
    cr_assert_eq(fb_auth_verify(a, db, "Bearer x", 0, NOW, &res), FB_AUTH_ERR_MISSING);

    cr_assert_eq(fb_auth_verify(a, db, "Basic dXNlcjpwYXNz", 18, NOW, &res),
                 FB_AUTH_ERR_NOT_BEARER);
    cr_assert_eq(res.grpc_status, 16);
    cr_assert_str_eq(res.detail, "authorization scheme \"Basic\" is not Bearer");
    cr_assert_eq(fb_auth_verify(a, db, "eyJhbGciOi.x.y", 14, NOW, &res), FB_AUTH_ERR_NOT_BEARER,
                 "a bare token without the scheme");
    /* a credential sent without a scheme is not echoed */
    cr_assert_str_eq(res.detail, "authorization is not \"Bearer <token>\" (no scheme)");
    cr_assert_eq(fb_auth_verify(a, db, "Bearer", 6, NOW, &res), FB_AUTH_ERR_NOT_BEARER);
    cr_assert_eq(fb_auth_verify(a, db, "Bearerx.y.z", 11, NOW, &res), FB_AUTH_ERR_NOT_BEARER);
    /* control bytes are escaped in the detail */
    cr_assert_eq(fb_auth_verify(a, db, "\x1b[31m x", 8, NOW, &res), FB_AUTH_ERR_NOT_BEARER);
    cr_assert_not_null(strstr(res.detail, "\\x1b[31m"), "%s", res.detail);
    cr_assert_eq(fb_auth_verify(a, db, "Bearer   ", 9, NOW, &res), FB_AUTH_ERR_MALFORMED);
    cr_assert_str_eq(res.detail, "no token after Bearer");
    fb_auth_free(a);
}

Test(auth, bearer_token_is_what_verify_reads)
{
    static const struct {
        const char *value, *token;
    } cases[] = {
        {"Bearer a.b.c", "a.b.c"},
        {"bearer a.b.c", "a.b.c"},
        {"BEARER \t  a.b.c", "a.b.c"},
        {"Bearer a.b.c  \t", "a.b.c"},
        {"bEaReR\ta.b.c", "a.b.c"},
    };
    const char *tok;
    size_t len;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(fb_auth_bearer_token(cases[i].value, strlen(cases[i].value), &tok, &len), 0,
                     "%s", cases[i].value);
        cr_assert_eq(len, strlen(cases[i].token), "%s", cases[i].value);
        cr_assert_eq(memcmp(tok, cases[i].token, len), 0, "%s", cases[i].value);
    }
    cr_assert_eq(fb_auth_bearer_token("Bearer   ", 9, &tok, &len), -1);
    cr_assert_eq(fb_auth_bearer_token("Bearer", 6, &tok, &len), -1);
    cr_assert_eq(fb_auth_bearer_token("Bearerx.y.z", 11, &tok, &len), -1);
    cr_assert_eq(fb_auth_bearer_token("Basic a.b.c", 11, &tok, &len), -1);
    cr_assert_eq(fb_auth_bearer_token(NULL, 0, &tok, &len), -1);
    /* not NUL-terminated: only len bytes are read */
    cr_assert_eq(fb_auth_bearer_token("Bearer a.b.cXYZ", 12, &tok, &len), 0);
    cr_assert_eq(len, 5);
}

Test(auth, fingerprint_is_sha256_of_the_bare_token)
{
    char hex[65];

    /* sha256("a.b.c"), from sha256sum(1) */
    fb_auth_fingerprint("a.b.c", 5, hex);
    cr_assert_str_eq(hex, "845e30448809e2bc8958eb025bfc795235d13b077a53d0c3abbd2385170dc9b8");
}

Test(auth, malformed_shapes)
{
    static const struct {
        const char *tok;
        const char *detail;
    } cases[] = {
        {"abc", "token has 1 parts, not 3"},
        {"a.b", "token has 2 parts, not 3"},
        {"...", "token has 4 parts, not 3"},
        {"a.b.c.d", "token has 4 parts, not 3"},
        {"..", "token has an empty header"},
        {"eyJhbGciOiJIUzI1NiJ9..sig", "token has an empty payload"},
        {"a*b.c.d", "not base64url or '.' at offset 1"},
        {"ab+/.c.d", "not base64url or '.' at offset 2"},
        {"a b.c.d", "not base64url or '.' at offset 1"},
        {"A.eyJ9.sig", "token header is not base64url"}, /* one character cannot be base64 */
        {"eyJhbGciOiJIUzI1NiJ9.A.sig", "token payload is not base64url"},
    };
    fb_auth_t *a = auth_for("");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect(a, cases[i].tok, NOW, FB_AUTH_ERR_MALFORMED, cases[i].detail);
    fb_auth_free(a);
}

Test(auth, malformed_headers_and_payloads)
{
    static const struct {
        const char *header, *payload, *detail;
    } cases[] = {
        {"[\"alg\",\"HS256\"]", "{}", "token header is not a JSON object"},
        {"{\"alg\":", "{}", "token header is not JSON"},
        {"{\"alg\":256}", "{}", "token header alg is not a string"},
        {"{\"typ\":\"JWT\"}", "{}", "token header has no alg"},
        {"{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", "token header is not JSON"},
        {"{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "{}", "typ \"at+jwt\" is not JWT"},
        {"{\"alg\":\"HS256\",\"typ\":7}", "{}", "typ (not a string) is not JWT"},
        {"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{}", "token header crit is not supported"},
        {"{\"alg\":\"HS256\",\"kid\":[1]}", "{}", "token header kid is not a string"},
        {HS256_HDR, "[1,2]", "token payload is not a JSON object"},
        {HS256_HDR, "not json", "token payload is not JSON"},
        {HS256_HDR, "{\"exp\":1,\"exp\":1800000000}", "token payload is not JSON"},
    };
    fb_auth_t *a = auth_for("");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = craft(cases[i].header, cases[i].payload, S1, strlen(S1), 256);
        expect(a, tok, NOW, FB_AUTH_ERR_MALFORMED, cases[i].detail);
        /* jansson's "near '...'" would quote token bytes: it is cut */
        fb_auth_result_t res;
        verify(a, tok, NOW, &res);
        cr_assert_null(strstr(res.detail, " near "), "%s", res.detail);
        free(tok);
    }
    fb_auth_free(a);
}

Test(auth, hostile_sizes_and_bytes)
{
    fb_auth_t *a = auth_for("");
    fb_auth_result_t res;
    size_t big = FB_AUTH_HEADER_MAX + 1;
    char *hdr = malloc(big + 1);

    cr_assert_not_null(hdr);
    memcpy(hdr, "Bearer ", 7);
    memset(hdr + 7, 'A', big - 7);
    hdr[100] = '.';
    hdr[200] = '.';
    cr_assert_eq(fb_auth_verify(a, db, hdr, big, NOW, &res), FB_AUTH_ERR_MALFORMED);
    cr_assert_str_eq(res.detail, "authorization is 8193 bytes, more than 8192");
    /* exactly the limit gets through to the parser (and fails there) */
    cr_assert_eq(fb_auth_verify(a, db, hdr, big - 1, NOW, &res), FB_AUTH_ERR_MALFORMED);
    cr_assert_not_null(strstr(res.detail, "token header is not"), "%s", res.detail);
    free(hdr);

    /* not NUL-terminated: only len bytes are read */
    {
        char buf[32];
        memcpy(buf, "Bearer a.b.c", 12);
        memset(buf + 12, '.', sizeof(buf) - 12);
        cr_assert_eq(fb_auth_verify(a, db, buf, 12, NOW, &res), FB_AUTH_ERR_MALFORMED);
        cr_assert_not_null(strstr(res.detail, "token header is not base64url"), "%s",
                           res.detail);
    }
    /* a NUL byte inside */
    cr_assert_eq(fb_auth_verify(a, db, "Bearer ab\0c.d.e", 15, NOW, &res), FB_AUTH_ERR_MALFORMED);
    cr_assert_not_null(strstr(res.detail, "offset 2"), "%s", res.detail);
    fb_auth_free(a);
}

Test(auth, alg_none_is_refused_with_and_without_signature)
{
    fb_auth_t *a = auth_for("");
    const char *payload = "{\"access_key\":\"t1\",\"exp\":1800000000}";
    char *tok;

    tok = craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, NULL, 0, 0);
    cr_assert_eq(tok[strlen(tok) - 1], '.', "no signature: %s", tok);
    expect(a, tok, NOW, FB_AUTH_ERR_ALG_NONE, "token algorithm \"none\" (unsigned) is refused");
    free(tok);
    tok = craft("{\"alg\":\"none\"}", payload, S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_ALG_NONE, "\"none\"");
    free(tok);
    /* libjwt compares alg names without case: so must the refusal */
    tok = craft("{\"alg\":\"NoNe\"}", payload, NULL, 0, 0);
    expect(a, tok, NOW, FB_AUTH_ERR_ALG_NONE, "\"NoNe\"");
    free(tok);
    fb_auth_free(a);
}

Test(auth, wrong_alg)
{
    fb_auth_t *a = auth_for("");
    const char *payload = "{\"access_key\":\"t1\",\"exp\":1800000000}";
    char *tok;

    tok = craft("{\"alg\":\"HS512\"}", payload, S1, strlen(S1), 512);
    expect(a, tok, NOW, FB_AUTH_ERR_WRONG_ALG, "token algorithm HS512 is not the configured HS256");
    free(tok);
    tok = craft("{\"alg\":\"hs256\"}", payload, S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_WRONG_ALG, "token algorithm hs256 is not the configured");
    free(tok);
    tok = craft("{\"alg\":\"RS256\"}", payload, S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_WRONG_ALG, "RS256 is not the configured HS256");
    free(tok);
    fb_auth_free(a);
}

Test(auth, rsa_public_key_as_hmac_secret_is_refused)
{
    const char *payload = "{\"access_key\":\"t1\",\"exp\":1800000000,\"iat\":1700000000}";
    fb_auth_t *a;
    jwt_t *jwt = NULL;
    size_t pub_len;
    char *pub, *tok;

    gen_rsa("rsa");
    a = auth_for("jwt_algorithm = RS256\njwt_public_key_file = rsa.pub\n");
    cr_assert_not_null(a, "%s", test_log_buf);
    pub = read_file("rsa.pub", &pub_len);
    tok = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, pub, pub_len, 256);

    /* the attack works against libjwt 1.10 alone ... */
    cr_assert_eq(jwt_decode(&jwt, tok, (const unsigned char *)pub, (int)pub_len), 0,
                 "libjwt no longer accepts this: the comment in auth.c can go");
    jwt_free(jwt);
    /* ... and is refused here before any verification */
    expect(a, tok, NOW, FB_AUTH_ERR_WRONG_ALG, "token algorithm HS256 is not the configured RS256");
    free(tok);
    free(pub);
    fb_auth_free(a);
}

Test(auth, rs256_mint_verify_and_no_private_key)
{
    fb_auth_t *a, *b;
    fb_auth_result_t res;
    char *tok, *other;

    gen_rsa("rsa");
    gen_rsa("other");
    a = auth_for("jwt_algorithm = RS256\njwt_public_key_file = rsa.pub\n"
                 "jwt_private_key_file = rsa.key\n");
    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.access_key, "t1");

    b = auth_for("jwt_algorithm = RS256\njwt_public_key_file = other.pub\n"
                 "jwt_private_key_file = other.key\n");
    cr_assert_not_null(b, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(b, "t1", NOW, 60, NULL, &other), 0, "%s", test_log_buf);
    expect(a, other, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "does not verify with the RS256 key");
    free(other);
    fb_auth_free(b);

    /* a private key that matches none of the public keys is refused at load */
    test_log_buf[0] = '\0';
    cr_assert_null(auth_for("jwt_algorithm = RS256\njwt_public_key_file = rsa.pub\n"
                            "jwt_private_key_file = other.key\n"));
    cr_assert_not_null(strstr(test_log_buf, "other.key signs tokens that no jwt_public_key_file "
                                            "verifies (token signature does not verify"),
                       "%s", test_log_buf);
    /* ... but one of several rotated public keys is enough */
    b = auth_for("jwt_algorithm = RS256\njwt_public_key_file.a = rsa.pub\n"
                 "jwt_public_key_file.b = other.pub\njwt_private_key_file = other.key\n");
    cr_assert_not_null(b, "%s", test_log_buf);
    fb_auth_free(b);

    /* RS without a private key verifies but cannot mint */
    b = auth_for("jwt_algorithm = RS256\njwt_public_key_file = rsa.pub\n");
    cr_assert_not_null(b, "%s", test_log_buf);
    cr_assert_eq(verify(b, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_mint(b, "t1", NOW, 60, NULL, &other), -1);
    cr_assert_null(other);
    cr_assert_not_null(strstr(test_log_buf, "RS256 needs auth.jwt_private_key_file"), "%s",
                       test_log_buf);
    fb_auth_free(b);
    free(tok);
    fb_auth_free(a);
}

Test(auth, es256_sign_and_verify)
{
    fb_auth_t *a, *b;
    fb_auth_result_t res;
    char *tok, *other;

    gen_ec("ec");
    gen_ec("ec2");
    a = auth_for("jwt_algorithm = ES256\njwt_public_key_file.ec1 = ec.pub\n"
                 "jwt_private_key_file = ec.key\n");
    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t2", NOW, 60, "ec1", &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.access_key, "t2");
    cr_assert_str_eq(res.kid, "ec1");

    /* signed by another EC key, same kid */
    b = auth_for("jwt_algorithm = ES256\njwt_public_key_file.ec1 = ec2.pub\n"
                 "jwt_private_key_file = ec2.key\n");
    cr_assert_not_null(b, "%s", test_log_buf);
    /* an EC key cannot sign RS256 */
    test_log_buf[0] = '\0';
    cr_assert_null(auth_for("jwt_algorithm = RS256\njwt_public_key_file = ec.pub\n"
                            "jwt_private_key_file = ec.key\n"));
    cr_assert_not_null(strstr(test_log_buf, "ec.key cannot sign RS256 tokens"), "%s",
                       test_log_buf);
    cr_assert_eq(fb_auth_mint(b, "t2", NOW, 60, "ec1", &other), 0, "%s", test_log_buf);
    expect(a, other, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "ES256 key of kid \"ec1\"");
    free(other);
    fb_auth_free(b);

    /* an HS256 token made with the EC public key as secret */
    {
        size_t pub_len;
        char *pub = read_file("ec.pub", &pub_len);
        other = craft("{\"alg\":\"HS256\",\"kid\":\"ec1\"}", "{\"exp\":1800000000}", pub,
                      pub_len, 256);
        expect(a, other, NOW, FB_AUTH_ERR_WRONG_ALG, "HS256 is not the configured ES256");
        free(other);
        free(pub);
    }
    /* a kid without a public key would mint a token that never verifies */
    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_mint(a, "t2", NOW, 60, "ec9", &other), -1);
    cr_assert_not_null(strstr(test_log_buf, "no jwt_public_key_file.ec9 to verify with"), "%s",
                       test_log_buf);
    /* no kid: the only public key's kid goes in the header */
    free(tok);
    cr_assert_eq(fb_auth_mint(a, "t2", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.kid, "ec1");
    free(tok);
    fb_auth_free(a);
}

Test(auth, rotation_by_kid)
{
    fb_auth_t *a = auth_for("jwt_secret_file =\njwt_secret_file.k1 = k1.secret\n"
                            "jwt_secret_file.k2 = k2.secret\n");
    const char *payload = "{\"access_key\":\"t1\",\"exp\":1800000000}";
    fb_auth_result_t res;
    char *t1, *t2, *tok;

    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, "k1", &t1), 0, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, "k2", &t2), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, t1, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.kid, "k1");
    cr_assert_eq(verify(a, t2, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.kid, "k2");
    cr_assert_str_neq(t1, t2);

    /* hand-made with k2's secret */
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"k2\"}", payload, S2, strlen(S2), 256);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    /* k1's secret under k2's name */
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"k2\"}", payload, S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "HS256 key of kid \"k2\"");
    free(tok);
    /* a retired kid */
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"k0\"}", payload, S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_UNKNOWN_KID, "token kid \"k0\" names no configured key");
    free(tok);
    /* no kid and no default among two keys */
    tok = craft(HS256_HDR, payload, S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_UNKNOWN_KID, "token has no kid and 2 keys with kids");
    free(tok);
    /* kids are looked up, never used as paths; hostile bytes are escaped */
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\\u001b\"}", payload, S1,
                strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_UNKNOWN_KID, "\"../../etc/passwd\\x1b\"");
    free(tok);
    /* minting needs a kid here */
    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, NULL, &tok), -1);
    cr_assert_not_null(strstr(test_log_buf, "name one with --kid"), "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, "k9", &tok), -1);
    cr_assert_not_null(strstr(test_log_buf, "no jwt_secret_file.k9 to sign with"), "%s",
                       test_log_buf);
    free(t1);
    free(t2);
    fb_auth_free(a);
}

Test(auth, token_without_kid_uses_default_or_only_key)
{
    const char *payload = "{\"access_key\":\"t1\",\"exp\":1800000000}";
    fb_auth_result_t res;
    fb_auth_t *a;
    char *tok;

    /* the "" key (jwt.secret) next to a kid */
    a = auth_for("jwt_secret_file.k2 = k2.secret\n");
    cr_assert_not_null(a, "%s", test_log_buf);
    tok = craft(HS256_HDR, payload, S1, strlen(S1), 256);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.kid, "");
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"\"}", payload, S1, strlen(S1), 256);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "kid \"\" is no kid: %s", res.detail);
    free(tok);
    fb_auth_free(a);

    /* the only key, which has a kid */
    a = auth_for("jwt_secret_file =\njwt_secret_file.k2 = k2.secret\n");
    cr_assert_not_null(a, "%s", test_log_buf);
    tok = craft(HS256_HDR, payload, S2, strlen(S2), 256);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.kid, "k2");
    free(tok);
    fb_auth_free(a);
}

Test(auth, bad_signatures)
{
    fb_auth_t *a = auth_for("");
    char *tok, *forged, *dot;
    fb_auth_result_t res;

    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    /* a payload swapped for another tenant, signature kept */
    {
        char *p = b64("{\"access_key\":\"t2\",\"exp\":1800000000}", 36);
        char *h = strndup(tok, (size_t)(strchr(tok, '.') - tok));
        cr_assert_gt(asprintf(&forged, "%s.%s%s", h, p, strrchr(tok, '.')), 0);
        expect(a, forged, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "does not verify with the HS256 key");
        free(forged);
        free(p);
        free(h);
    }
    /* a wrong secret */
    forged = craft(HS256_HDR, "{\"access_key\":\"t1\",\"exp\":1800000000}", S2, strlen(S2), 256);
    expect(a, forged, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "HS256");
    free(forged);
    /* truncated, empty, and not base64url signatures */
    forged = strdup(tok);
    forged[strlen(forged) - 2] = '\0';
    expect(a, forged, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "HS256");
    dot = strrchr(forged, '.');
    dot[1] = '\0';
    expect(a, forged, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "HS256");
    free(forged);
    cr_assert_gt(asprintf(&forged, "%sA", tok), 0); /* 44 characters are not base64url of 32 */
    expect(a, forged, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "HS256");
    free(forged);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    fb_auth_free(a);
}

Test(auth, hs384_and_hs512)
{
    fb_auth_result_t res;
    fb_auth_t *a;
    char *tok, *bad;

    a = auth_for("jwt_algorithm = HS384\n");
    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    bad = strdup(tok);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
    expect(a, bad, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "HS384 key");
    free(bad);
    free(tok);
    fb_auth_free(a);

    a = auth_for("jwt_algorithm = HS512\n");
    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    tok = craft("{\"alg\":\"HS512\"}", "{\"access_key\":\"t1\",\"exp\":1800000000}", S1,
                strlen(S1), 512);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    tok = craft("{\"alg\":\"HS512\"}", "{\"access_key\":\"t1\",\"exp\":1800000000}", S2,
                strlen(S2), 512);
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_SIGNATURE, "HS512 key");
    free(tok);
    fb_auth_free(a);
}

/* tok_at -- an HS256 token for t1 with these claims (JSON members). */
static char *
tok_at(const char *claims)
{
    char payload[512];

    snprintf(payload, sizeof(payload), "{\"access_key\":\"t1\"%s%s}", claims[0] ? "," : "",
             claims);
    return craft(HS256_HDR, payload, S1, strlen(S1), 256);
}

Test(auth, expiry_and_clock_skew_edges)
{
    fb_auth_t *a = auth_for("clock_skew = 30s\n");
    fb_auth_result_t res;
    char *tok;

    tok = tok_at("\"exp\":1699999970"); /* now - skew */
    expect(a, tok, NOW, FB_AUTH_ERR_EXPIRED, "token expired 30 s ago (clock skew 30 s)");
    free(tok);
    tok = tok_at("\"exp\":1699999971"); /* one second later */
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    tok = tok_at("\"exp\":1699999880");
    expect(a, tok, NOW, FB_AUTH_ERR_EXPIRED, "token expired 120 s ago");
    free(tok);
    /* exp=1: libjwt 1.10 alone accepts it */
    tok = tok_at("\"exp\":1");
    expect(a, tok, NOW, FB_AUTH_ERR_EXPIRED, "expired");
    free(tok);
    /* fractional NumericDate */
    tok = tok_at("\"exp\":1700000100.5");
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_eq(res.exp, 1700000100);
    free(tok);

    tok = tok_at("\"exp\":1800000000,\"nbf\":1700000031");
    expect(a, tok, NOW, FB_AUTH_ERR_NOT_YET_VALID, "not valid for another 31 s (nbf, clock skew");
    free(tok);
    tok = tok_at("\"exp\":1800000000,\"nbf\":1700000030");
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    tok = tok_at("\"exp\":1800000000,\"iat\":1700000031");
    expect(a, tok, NOW, FB_AUTH_ERR_NOT_YET_VALID, "token issued 31 s in the future (iat");
    free(tok);
    tok = tok_at("\"exp\":1800000000,\"iat\":1700000030");
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    fb_auth_free(a);

    /* no skew: exp == now is expired, now + 1 is not */
    a = auth_for("clock_skew = 0\n");
    tok = tok_at("\"exp\":1700000000");
    expect(a, tok, NOW, FB_AUTH_ERR_EXPIRED, "token expired 0 s ago (clock skew 0 s)");
    free(tok);
    tok = tok_at("\"exp\":1700000001");
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    fb_auth_free(a);

    /* sub-second skew counts in milliseconds */
    a = auth_for("clock_skew = 1500ms\n");
    tok = tok_at("\"exp\":1699999999"); /* exp + 1.5 s > now */
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    free(tok);
    tok = tok_at("\"exp\":1699999998"); /* exp + 1.5 s <= now */
    expect(a, tok, NOW, FB_AUTH_ERR_EXPIRED, "token expired 2 s ago");
    free(tok);
    fb_auth_free(a);
}

Test(auth, require_exp)
{
    fb_auth_result_t res;
    fb_auth_t *a;
    char *tok = tok_at("\"iat\":1700000000");

    a = auth_for("");
    expect(a, tok, NOW, FB_AUTH_ERR_NO_EXP, "token has no exp and auth.require_exp is on");
    fb_auth_free(a);
    a = auth_for("require_exp = no\n");
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_not(res.has_exp);
    fb_auth_free(a);
    free(tok);
}

Test(auth, hostile_claims)
{
    static const struct {
        const char *claims, *detail;
    } cases[] = {
        {"\"exp\":9223372036854775807", "token claim exp is out of range (0 to 253402300799)"},
        {"\"exp\":253402300800", "token claim exp is out of range"},
        {"\"exp\":1e300", "token claim exp is out of range"},
        {"\"exp\":-1", "token claim exp is out of range"},
        {"\"exp\":\"1800000000\"", "token claim exp is not a number"},
        {"\"exp\":null", "token claim exp is not a number"},
        {"\"exp\":1800000000,\"nbf\":true", "token claim nbf is not a number"},
        {"\"exp\":1800000000,\"iat\":[1]", "token claim iat is not a number"},
    };
    fb_auth_t *a = auth_for("");
    char *tok;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tok = tok_at(cases[i].claims);
        expect(a, tok, NOW, FB_AUTH_ERR_MALFORMED, cases[i].detail);
        free(tok);
    }
    /* beyond int64: jansson refuses the number */
    tok = tok_at("\"exp\":99999999999999999999999");
    expect(a, tok, NOW, FB_AUTH_ERR_MALFORMED, "token payload is not JSON");
    free(tok);
    /* the largest accepted exp, and a far-future now, do not overflow */
    tok = tok_at("\"exp\":253402300799");
    {
        fb_auth_result_t res;
        cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
        expect(a, tok, INT64_MAX, FB_AUTH_ERR_EXPIRED, "expired");
    }
    free(tok);
    fb_auth_free(a);
}

Test(auth, issuer_and_audience)
{
    fb_auth_t *a = auth_for("issuer = https://fbpipe.example\naudience = ingester\n");
    fb_auth_result_t res;
    char *tok;

    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "minted carries iss and aud: %s",
                 res.detail);
    free(tok);

#define IA(x) "\"exp\":1800000000," x
    tok = tok_at(IA("\"aud\":\"ingester\""));
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_ISSUER, "token has no iss, expected \"https://fbpipe");
    free(tok);
    tok = tok_at(IA("\"iss\":\"https://evil\",\"aud\":\"ingester\""));
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_ISSUER,
           "token issuer \"https://evil\" is not the configured \"https://fbpipe.example\"");
    free(tok);
    tok = tok_at(IA("\"iss\":7,\"aud\":\"ingester\""));
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_ISSUER, "an iss that is not a string");
    free(tok);

    tok = tok_at(IA("\"iss\":\"https://fbpipe.example\",\"aud\":[\"other\",\"ingester\"]"));
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "aud array: %s", res.detail);
    free(tok);
    tok = tok_at(IA("\"iss\":\"https://fbpipe.example\",\"aud\":\"ingester\""));
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "aud string: %s", res.detail);
    free(tok);
    tok = tok_at(IA("\"iss\":\"https://fbpipe.example\",\"aud\":[\"other\",1]"));
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_AUDIENCE, "token audience does not include \"ingester\"");
    free(tok);
    tok = tok_at(IA("\"iss\":\"https://fbpipe.example\",\"aud\":\"ingester2\""));
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_AUDIENCE, "does not include");
    free(tok);
    tok = tok_at(IA("\"iss\":\"https://fbpipe.example\",\"aud\":[]"));
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_AUDIENCE, "does not include");
    free(tok);
    tok = tok_at(IA("\"iss\":\"https://fbpipe.example\""));
    expect(a, tok, NOW, FB_AUTH_ERR_BAD_AUDIENCE, "token has no aud, expected \"ingester\"");
    free(tok);
#undef IA
    fb_auth_free(a);
}

Test(auth, bound_token_and_tenant_lifecycle)
{
    fb_auth_t *a = auth_for("");
    char *tok;

    tok = craft(HS256_HDR, "{\"access_key\":\"nobody\",\"exp\":1800000000}", S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_UNKNOWN_KEY,
           "access key \"nobody\" is not in the key database");
    free(tok);
    tok = craft(HS256_HDR, "{\"access_key\":\"off\",\"exp\":1800000000}", S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_DISABLED, "access key \"off\" is disabled");
    free(tok);
    tok = craft(HS256_HDR, "{\"access_key\":\"rev\",\"exp\":1800000000,\"iat\":1699989999}", S1,
                strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_REVOKED,
           "token issued at 1699989999, before access key \"rev\" tokens_not_before 1699990000");
    free(tok);
    tok = craft(HS256_HDR, "{\"access_key\":\"rev\",\"exp\":1800000000}", S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_REVOKED, "token has no iat and access key \"rev\" revokes");
    free(tok);
    {
        fb_auth_result_t res;
        tok = craft(HS256_HDR, "{\"access_key\":\"rev\",\"exp\":1800000000,\"iat\":1699990000}",
                    S1, strlen(S1), 256);
        cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "iat == tokens_not_before: %s",
                     res.detail);
        free(tok);
    }
    /* the key claim must be an access key */
    tok = craft(HS256_HDR, "{\"access_key\":\"../etc\",\"exp\":1800000000}", S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_MALFORMED,
           "token claim access_key \"../etc\" starts with a dot");
    free(tok);
    tok = craft(HS256_HDR, "{\"access_key\":42,\"exp\":1800000000}", S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_MALFORMED, "token claim access_key is not a string");
    free(tok);
    fb_auth_free(a);
}

Test(auth, key_claim_is_configurable)
{
    fb_auth_t *a = auth_for("key_claim = tenant\n");
    fb_auth_result_t res;
    char *tok;

    cr_assert_not_null(a, "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t2", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert_str_eq(res.access_key, "t2");
    free(tok);
    /* access_key is now just another claim: the token is unbound */
    tok = craft(HS256_HDR, "{\"access_key\":\"t2\",\"exp\":1800000000}", S1, strlen(S1), 256);
    cr_assert_eq(verify(a, tok, NOW, &res), FB_AUTH_OK, "%s", res.detail);
    cr_assert(res.unbound);
    free(tok);
    fb_auth_free(a);
}

Test(auth, check_tenant_binding_and_unbound_tokens)
{
    fb_auth_t *a = auth_for("");
    fb_auth_result_t bound, unbound, other, out;
    char fp[65], hex[65];
    const char *p;
    char *tok;
    int n = 0;

    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, NULL, &tok), 0, "%s", test_log_buf);
    cr_assert_eq(verify(a, tok, NOW, &bound), FB_AUTH_OK, "%s", bound.detail);
    free(tok);
    /* the original tokens: exp, iat, role and no key claim */
    tok = craft(HS256_HDR, UNBOUND_1, S1, strlen(S1), 256);
    cr_assert_eq(verify(a, tok, NOW, &unbound), FB_AUTH_OK, "%s", unbound.detail);
    cr_assert(unbound.unbound);
    cr_assert_str_eq(unbound.access_key, "");
    fb_auth_fingerprint(tok, strlen(tok), fp);
    sodium_bin2hex(hex, sizeof(hex), unbound.token_sha256, sizeof(unbound.token_sha256));
    cr_assert_str_eq(hex, fp, "the fingerprint is of the bare token");
    free(tok);

    cr_assert_eq(fb_auth_check_tenant(&bound, db, "t1", 2, &out), FB_AUTH_OK, "%s", out.detail);
    cr_assert_str_eq(out.access_key, "t1");
    cr_assert_eq(fb_auth_check_tenant(&bound, db, "t2", 2, &out), FB_AUTH_ERR_KEY_MISMATCH);
    cr_assert_eq(out.grpc_status, 7);
    cr_assert_str_eq(out.detail, "token is bound to access key \"t1\", not \"t2\"");
    cr_assert_eq(fb_auth_check_tenant(&bound, db, "t10", 3, &out), FB_AUTH_ERR_KEY_MISMATCH,
                 "a prefix is not a match");
    cr_assert_eq(fb_auth_check_tenant(&bound, db, "t", 1, &out), FB_AUTH_ERR_KEY_MISMATCH);

    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "open", 4, &out), FB_AUTH_OK, "%s",
                 out.detail);
    cr_assert_str_eq(out.access_key, "open");
    cr_assert(out.unbound);
    for (p = test_log_buf; (p = strstr(p, "unbound token")) != NULL; p++)
        n++;
    cr_assert_eq(n, 1, "the first use, logged at once:\n%s", test_log_buf);
    cr_assert_not_null(strstr(test_log_buf, "accepted for access key \"open\""), "%s",
                       test_log_buf);

    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "t1", 2, &out),
                 FB_AUTH_ERR_UNBOUND_NOT_ALLOWED);
    cr_assert_eq(out.grpc_status, 7);
    cr_assert_not_null(strstr(out.detail, "access key \"t1\" does not list its fingerprint "
                                          "(sha256 "),
                       "%s", out.detail);
    cr_assert_not_null(strstr(out.detail, ") in unbound_tokens_sha256"), "%s", out.detail);
    snprintf(hex, sizeof(hex), "(sha256 %.16s...)", fp);
    cr_assert_not_null(strstr(out.detail, hex), "names the token: %s", out.detail);
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "ghost", 5, &out), FB_AUTH_ERR_UNKNOWN_KEY);
    cr_assert_eq(out.grpc_status, 7);
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "off", 3, &out), FB_AUTH_ERR_DISABLED);
    cr_assert_eq(out.grpc_status, 7);
    /* iat 1699999000 is after rev's tokens_not_before: accepted */
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "rev", 3, &out), FB_AUTH_OK, "%s",
                 out.detail);
    /* every event of a stream checks it: later uses within 10 s are counted,
     * and the latest is written with the count */
    cr_assert_null(strstr(test_log_buf, "unbound token"), "held back: %s", test_log_buf);
    fb_log_limited_flush(true);
    cr_assert_not_null(strstr(test_log_buf, "for access key \"rev\" (unbound_tokens_sha256) [1 "
                                            "like it since the last line"),
                       "%s", test_log_buf);
    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "../x\n", 5, &out), FB_AUTH_ERR_UNKNOWN_KEY);
    cr_assert_not_null(strstr(out.detail, "\"../x\\x0a\""), "escaped: %s", out.detail);
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, NULL, 0, &out), FB_AUTH_ERR_UNKNOWN_KEY);
    cr_assert_null(strstr(test_log_buf, "unbound token"), "refusals are not logged here");

    /* an old unbound token is revoked for rev */
    tok = craft(HS256_HDR, "{\"exp\":1800000000,\"iat\":1600000000}", S1, strlen(S1), 256);
    cr_assert_eq(verify(a, tok, NOW, &unbound), FB_AUTH_OK, "%s", unbound.detail);
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "rev", 3, &out), FB_AUTH_ERR_REVOKED);
    cr_assert_eq(out.grpc_status, 7);
    free(tok);
    tok = craft(HS256_HDR, "{\"exp\":1800000000}", S1, strlen(S1), 256);
    cr_assert_eq(verify(a, tok, NOW, &unbound), FB_AUTH_OK, "%s", unbound.detail);
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "rev", 3, &out), FB_AUTH_ERR_REVOKED);
    cr_assert_eq(fb_auth_check_tenant(&unbound, db, "open", 4, &unbound), FB_AUTH_OK,
                 "out may be r");
    cr_assert_str_eq(unbound.access_key, "open");
    free(tok);

    /* another unbound token, validly signed, that no tenant lists: open
     * lists two others, so it acts for nobody */
    tok = craft(HS256_HDR, UNBOUND_OTHER, S1, strlen(S1), 256);
    cr_assert_eq(verify(a, tok, NOW, &other), FB_AUTH_OK, "%s", other.detail);
    cr_assert(other.unbound);
    fb_auth_fingerprint(tok, strlen(tok), fp);
    free(tok);
    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_check_tenant(&other, db, "open", 4, &out),
                 FB_AUTH_ERR_UNBOUND_NOT_ALLOWED);
    cr_assert_eq(out.grpc_status, 7);
    snprintf(hex, sizeof(hex), "(sha256 %.16s...)", fp);
    cr_assert_not_null(strstr(out.detail, hex), "names the token: %s", out.detail);
    cr_assert_str_eq(out.access_key, "", "no tenant taken");
    cr_assert_eq(fb_auth_check_tenant(&other, db, "rev", 3, &out),
                 FB_AUTH_ERR_UNBOUND_NOT_ALLOWED);
    cr_assert_null(strstr(test_log_buf, "unbound token"), "a refusal is not logged here");

    /* a refused result stays refused */
    cr_assert_eq(fb_auth_verify(a, db, NULL, 0, NOW, &bound), FB_AUTH_ERR_MISSING);
    cr_assert_eq(fb_auth_check_tenant(&bound, db, "open", 4, &out), FB_AUTH_ERR_MISSING);
    cr_assert_str_eq(out.detail, "no authorization metadata");
    fb_auth_free(a);
}

Test(auth, new_refuses_bad_key_files)
{
    fb_auth_t *a;

    test_write("loose.secret", S1 "\n", 0644);
    test_log_buf[0] = '\0';
    a = auth_for("jwt_secret_file = loose.secret\n");
    cr_assert_null(a);
    cr_assert_not_null(strstr(test_log_buf, "is accessible by group or others"), "%s",
                       test_log_buf);
    cr_assert_not_null(strstr(test_log_buf, "[auth] jwt_secret_file: "), "%s", test_log_buf);

    test_write("short.secret", "too short\n", 0600);
    test_log_buf[0] = '\0';
    a = auth_for("jwt_secret_file.k1 = k1.secret\njwt_secret_file.old = short.secret\n");
    cr_assert_null(a);
    cr_assert_not_null(strstr(test_log_buf, "a secret needs at least 32"), "%s", test_log_buf);
    cr_assert_not_null(strstr(test_log_buf, "jwt_secret_file.old: "), "%s", test_log_buf);

    test_log_buf[0] = '\0';
    a = auth_for("jwt_secret_file = nowhere.secret\n");
    cr_assert_null(a);
    cr_assert_not_null(strstr(test_log_buf, "nowhere.secret"), "%s", test_log_buf);

    test_write("notpem.pub", S1 "\n", 0644);
    test_log_buf[0] = '\0';
    a = auth_for("jwt_algorithm = RS256\njwt_public_key_file = notpem.pub\n");
    cr_assert_null(a);
    cr_assert_not_null(strstr(test_log_buf, "is not a PEM public key"), "%s", test_log_buf);

    test_log_buf[0] = '\0';
    a = auth_for("jwt_algorithm = RS256\n");
    cr_assert_null(a);
    cr_assert_not_null(strstr(test_log_buf, "RS256 needs jwt_public_key_file"), "%s",
                       test_log_buf);

    test_log_buf[0] = '\0';
    a = auth_for("key_claim = exp\n");
    cr_assert_null(a);
    cr_assert_not_null(strstr(test_log_buf, "key_claim: \"exp\" is a registered claim"), "%s",
                       test_log_buf);
    cr_assert_null(strstr(test_log_buf, S1), "secret logged");
}

Test(auth, mint_refuses_bad_input)
{
    fb_auth_t *a = auth_for("");
    char *tok = (char *)"x";

    test_log_buf[0] = '\0';
    cr_assert_eq(fb_auth_mint(a, ".hidden", NOW, 60, NULL, &tok), -1);
    cr_assert_null(tok);
    cr_assert_not_null(strstr(test_log_buf, "access key starts with a dot"), "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 0, NULL, &tok), -1);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, INT64_MAX, NULL, &tok), -1);
    cr_assert_not_null(strstr(test_log_buf, "is out of range"), "%s", test_log_buf);
    cr_assert_eq(fb_auth_mint(a, "t1", NOW, 60, "nokid", &tok), -1);
    fb_auth_free(a);
}

Test(auth, err_names_and_statuses)
{
    for (int i = 0; i < FB_AUTH_N_ERRS; i++) {
        const char *n = fb_auth_err_name((fb_auth_err_t)i);
        int st = fb_auth_err_status((fb_auth_err_t)i);

        cr_assert_not_null(n);
        cr_assert_neq(strcmp(n, "unknown"), 0, "kind %d has no name", i);
        for (const char *c = n; *c; c++)
            cr_assert((*c >= 'a' && *c <= 'z') || *c == '_', "not snake_case: %s", n);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(n, fb_auth_err_name((fb_auth_err_t)j));
        cr_assert(i == 0 ? st == 0 : (st == 7 || st == 13 || st == 16), "%s -> %d", n, st);
    }
    cr_assert_str_eq(fb_auth_err_name(FB_AUTH_OK), "ok");
    cr_assert_str_eq(fb_auth_err_name(FB_AUTH_ERR_ALG_NONE), "alg_none");
    cr_assert_str_eq(fb_auth_err_name((fb_auth_err_t)FB_AUTH_N_ERRS), "unknown");
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_EXPIRED), 16);
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_WRONG_ALG), 16);
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_UNKNOWN_KID), 16);
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_BAD_AUDIENCE), 16);
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_KEY_MISMATCH), 7);
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_REVOKED), 7);
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_UNBOUND_NOT_ALLOWED), 7);
    cr_assert_eq(fb_auth_err_status(FB_AUTH_ERR_INTERNAL), 13);
}

/* found by fuzz_auth (#10): jansson reads a part with a NUL byte after a
 * number as if the NUL were not there, libjwt reads it as a C string that
 * ends there; a token correctly signed was then refused as "bad signature" */
Test(auth, a_nul_byte_in_a_part_is_malformed)
{
    static const char payload[] = "{\"access_key\":\"t2\",\"iat\":1699999999\0,"
                                  "\"exp\":1700000100}";
    static const char header[] = "{\"typ\":\"JWT\",\"x\":1\0,\"alg\":\"HS256\"}";
    fb_auth_t *a = auth_for("");
    char *tok;

    tok = craft_n(HS256_HDR, strlen(HS256_HDR), payload, sizeof(payload) - 1, S1, strlen(S1),
                  256);
    expect(a, tok, NOW, FB_AUTH_ERR_MALFORMED, "token payload has a NUL byte");
    free(tok);
    tok = craft_n(header, sizeof(header) - 1, "{\"exp\":1700000100}", 18, S1, strlen(S1), 256);
    expect(a, tok, NOW, FB_AUTH_ERR_MALFORMED, "token header has a NUL byte");
    free(tok);
    fb_auth_free(a);
}
