/*
 * router_s3.c -- PUTs to an S3-compatible store over one libcurl easy
 * handle per client (see router_s3.h for the results and their meaning).
 *
 * libcurl signs (CURLOPT_AWS_SIGV4 with the id and secret as user and
 * password); this file only computes the payload's SHA-256 for the
 * x-amz-content-sha256 header. The endpoint is parsed by libcurl's URL API
 * and object names are percent-encoded here, '/' kept, as S3's canonical
 * request wants them. Response bodies are kept up to FB_S3_RESPONSE_MAX
 * bytes (the rest is read and dropped, so the connection stays usable)
 * and read as hostile: only the error's Code, Message and RequestId are
 * taken out, bounded and sanitised. Nothing read from the server decides
 * more than the result's class. The endpoint's check, the hardened handle
 * and the bounded response buffer are router_http's, shared with the
 * other HTTP clients.
 *
 * Never logs, never follows a redirect, never puts a credential in a URL
 * or an error message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/log.h"
#include "common/record.h"
#include "common/secret.h"
#include "router/router_http.h"
#include "router/router_s3.h"

#define S3_CODE_MAX 64
#define S3_MESSAGE_MAX 256
#define S3_REQUEST_ID_MAX 64
#define S3_SNIPPET_MAX 80 /* bytes of a body without an S3 error shown in err */
#define S3_REGION_MAX 64

struct fb_s3 {
    CURL *curl;
    char *base; /* scheme://host[:port]/ or scheme://bucket.host[:port]/ */
    char *bucket;
    char *region;
    bool path_style;
    char *sigv4;  /* "aws:amz:REGION:s3" */
    char *id;     /* copies: libcurl keeps its own too */
    char *secret; /* wiped when freed */
    char curl_err[CURL_ERROR_SIZE];
    fb_http_answer_t answer; /* FB_S3_RESPONSE_MAX bytes of a response, the rest dropped */
};

static bool printable(const char *s, size_t len, bool space_ok);
static bool bucket_ok(const char *b);
static bool region_ok(const char *r);
static bool part_ok(const char *s, size_t len);
static bool name_ok(const char *name, const char **why);
static const char *shown(const char *endpoint);
static char *url_of(const fb_s3_t *s3, const char *name);
static void copy_clean(char *dst, size_t dstlen, const char *src, size_t len);
static void xml_text(const char *body, size_t len, const char *tag, char *out, size_t outlen);
static const char *hint_of(const char *code);
static fb_s3_result_t request(fb_s3_t *s3, const char *url, const void *body, size_t len,
                              const char *content_type, const char *content_encoding, char *code,
                              size_t codelen, char *err, size_t errlen);

/* printable -- only printable ASCII (and ' ' if space_ok) */
static bool
printable(const char *s, size_t len, bool space_ok)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || (c == ' ' && !space_ok))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- credentials */

/* fb_s3_credentials_load -- "ID:SECRET" or "ID\nSECRET" from a private file. */
int
fb_s3_credentials_load(const char *path, fb_s3_credentials_t *out, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    char *text, *id, *secret, *nl;
    size_t id_len, secret_len;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (fb_secret_load(path, FB_SECRET_F_PRIVATE, 1, &buf, &len, err, errlen) < 0)
        return -1;
    text = (char *)buf;
    if (memchr(text, '\0', len) != NULL) {
        fb_errf(err, errlen, "%s: holds a NUL byte; want ID:SECRET or ID and SECRET on two lines",
            path);
        goto done;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    nl = strchr(text, '\n');
    if (nl != NULL) {
        id = text;
        id_len = (size_t)(nl - text);
        if (id_len > 0 && id[id_len - 1] == '\r')
            id_len--;
        secret = nl + 1;
        secret_len = strlen(secret);
        if (memchr(secret, '\n', secret_len) != NULL) {
            fb_errf(err, errlen,
                "%s: more than two lines; want ID:SECRET or ID and SECRET on two lines", path);
            goto done;
        }
    } else {
        char *colon = strchr(text, ':');
        if (colon == NULL) {
            fb_errf(err, errlen,
                "%s: one line without ':'; want ID:SECRET or ID and SECRET on two lines", path);
            goto done;
        }
        id = text;
        id_len = (size_t)(colon - text);
        secret = colon + 1;
        secret_len = strlen(secret);
    }
    if (id_len == 0 || id_len > FB_S3_ID_MAX || !printable(id, id_len, false) ||
        memchr(id, ':', id_len) != NULL) {
        fb_errf(err, errlen,
            "%s: the access key id must be 1 to %d printable ASCII characters without "
            "spaces or ':'",
            path, FB_S3_ID_MAX);
        goto done;
    }
    if (secret_len == 0 || secret_len > FB_S3_SECRET_MAX || !printable(secret, secret_len, false)) {
        fb_errf(err, errlen, "%s: the secret must be 1 to %d printable ASCII characters without spaces",
            path, FB_S3_SECRET_MAX);
        goto done;
    }
    memcpy(out->id, id, id_len);
    memcpy(out->secret, secret, secret_len);
    rc = 0;
done:
    fb_secret_free(buf, len);
    return rc;
}

/* fb_s3_credentials_wipe -- forget them */
void
fb_s3_credentials_wipe(fb_s3_credentials_t *c)
{
    sodium_memzero(c, sizeof(*c));
}

/* ---------------------------------------------------------------- names */

/* bucket_ok -- S3's rule for new buckets: 3..63 of [a-z0-9.-], ends alnum, no ".." */
static bool
bucket_ok(const char *b)
{
    size_t n = strlen(b);

    if (n < 3 || n > 63 || strstr(b, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '.' || c == '-'))
            return false;
        if (!alnum && (i == 0 || i == n - 1))
            return false;
    }
    return true;
}

/* region_ok -- 1..64 of [a-z0-9-]: it goes into the SigV4 parameter after ':' */
static bool
region_ok(const char *r)
{
    size_t n = strlen(r);

    if (n == 0 || n > S3_REGION_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return false;
    return true;
}

/* part_ok -- one part of a name: not empty, not "." or "..", printable, no '/' */
static bool
part_ok(const char *s, size_t len)
{
    if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    return printable(s, len, true) && memchr(s, '/', len) == NULL;
}

/* name_ok -- an object name this client stores: parts joined by '/', each
 * part_ok (so no leading, trailing or double '/', which URL and file
 * system back ends treat each their own way), at most FB_S3_NAME_MAX */
static bool
name_ok(const char *name, const char **why)
{
    size_t len = strlen(name);
    const char *p = name;

    if (len == 0 || len > FB_S3_NAME_MAX) {
        *why = "empty or longer than 1024 bytes";
        return false;
    }
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (!part_ok(p, n)) {
            *why = "an empty, \".\" or \"..\" part, or a byte that is not printable ASCII";
            return false;
        }
        if (slash == NULL)
            return true;
        p = slash + 1;
    }
}

/* fb_s3_object_name -- [PREFIX/]KEY/YYYY-MM-DD/TOPIC-PART-FIRST-LAST.jsonl[.gz] */
int
fb_s3_object_name(char *out, size_t outlen, const char *prefix, const char *key,
                  int64_t first_seconds, const char *topic, int32_t partition, int64_t first_offset,
                  int64_t last_offset, bool gzip)
{
    size_t plen = prefix != NULL ? strlen(prefix) : 0;
    const char *why;
    struct tm tm;
    time_t t;
    int n;

    if (outlen > 0)
        out[0] = '\0';
    if (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (key == NULL || topic == NULL || !part_ok(key, strlen(key)) ||
        !part_ok(topic, strlen(topic)) || partition < 0 || first_offset < 0 ||
        last_offset < first_offset || first_seconds < FB_TS_FIRST || first_seconds > FB_TS_LAST) {
        errno = EINVAL;
        return -1;
    }
    t = (time_t)first_seconds;
    if (gmtime_r(&t, &tm) == NULL) {
        errno = EINVAL;
        return -1;
    }
    n = snprintf(out, outlen, "%.*s%s%s/%04d-%02d-%02d/%s-%d-%020lld-%020lld.jsonl%s", (int)plen,
                 plen > 0 ? prefix : "", plen > 0 ? "/" : "", key, tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, topic, (int)partition, (long long)first_offset, (long long)last_offset,
                 gzip ? ".gz" : "");
    if (n < 0 || (size_t)n >= outlen || n > FB_S3_NAME_MAX) {
        if (outlen > 0)
            out[0] = '\0';
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!name_ok(out, &why)) { /* the prefix's parts */
        out[0] = '\0';
        errno = EINVAL;
        return -1;
    }
    return n;
}

/* ---------------------------------------------------------------- the client */

/* shown -- the endpoint as err may show it: not at all if it may hold a password */
static const char *
shown(const char *endpoint)
{
    return strchr(endpoint, '@') == NULL ? endpoint : "(with user info, not shown)";
}

/* fb_s3_client_new -- check the options, parse the endpoint, set up the handle */
fb_s3_t *
fb_s3_client_new(const fb_s3_opts_t *opts, char *err, size_t errlen)
{
    const char *region = opts->region != NULL ? opts->region : FB_S3_REGION_DEFAULT;
    long connect_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : FB_S3_CONNECT_TIMEOUT_MS;
    long total_ms = opts->timeout_ms > 0 ? opts->timeout_ms : FB_S3_TIMEOUT_MS;
    fb_http_url_t url = {0};
    fb_http_url_fault_t fault;
    CURLU *u;
    char *host, *part = NULL, *vhost = NULL;
    fb_s3_t *s3;
    size_t n;
    CURLUcode uc;
    bool ok;

    if (sodium_init() < 0) {
        fb_errf(err, errlen, "sodium_init() failed");
        return NULL;
    }
    s3 = calloc(1, sizeof(*s3));
    if (s3 == NULL) {
        fb_errf(err, errlen, "calloc(%zu) failed: %s", sizeof(*s3), strerror(errno));
        return NULL;
    }
    if (opts->endpoint == NULL || opts->endpoint[0] == '\0') {
        fb_errf(err, errlen, "S3: no endpoint");
        goto fail;
    }
    if (opts->bucket == NULL || !bucket_ok(opts->bucket)) {
        fb_errf(err, errlen,
            "S3: bucket \"%s\" is not a valid name (3 to 63 of a-z, 0-9, '.' and '-', "
            "a letter or digit at both ends)",
            opts->bucket != NULL ? opts->bucket : "");
        goto fail;
    }
    if (!region_ok(region)) {
        fb_errf(err, errlen, "S3: region \"%s\" is not a region name (a-z, 0-9 and '-')", region);
        goto fail;
    }
    n = opts->access_key_id != NULL ? strlen(opts->access_key_id) : 0;
    if (n == 0 || n > FB_S3_ID_MAX || !printable(opts->access_key_id, n, false) ||
        strchr(opts->access_key_id, ':') != NULL) {
        fb_errf(err, errlen, "S3: the access key id is empty, too long or holds spaces or ':'");
        goto fail;
    }
    n = opts->secret_access_key != NULL ? strlen(opts->secret_access_key) : 0;
    if (n == 0 || n > FB_S3_SECRET_MAX || !printable(opts->secret_access_key, n, false)) {
        fb_errf(err, errlen, "S3: the secret is empty, too long or holds spaces");
        goto fail;
    }

    /* the endpoint: scheme and authority only */
    fault = fb_http_url_check(opts->endpoint, 0, &url, err, errlen);
    switch (fault) {
    case FB_HTTP_URL_OK: break;
    case FB_HTTP_URL_TEXT:
    case FB_HTTP_URL_MALFORMED:
        fb_errf(err, errlen, "S3: endpoint \"%s\": %s", shown(opts->endpoint), url.why);
        goto fail;
    case FB_HTTP_URL_SCHEME:
        fb_errf(err, errlen, "S3: endpoint \"%s\": not http:// or https://", shown(opts->endpoint));
        goto fail;
    default:
        /* opts->endpoint may hold a password: never echo it */
        fb_errf(err, errlen,
            "S3: the endpoint must be scheme://host[:port] alone, without user, path, query "
            "or fragment (credentials come from the credentials file)");
        goto fail;
    }
    u = url.u;
    host = url.host;
    if (!opts->path_style) {
        unsigned char addr[16];
        if (host[0] == '[' || inet_pton(AF_INET, host, addr) == 1) {
            fb_errf(err, errlen,
                "S3: endpoint \"%s\": virtual-host style needs a host name, not an address "
                "(use path style)",
                shown(opts->endpoint));
            goto fail;
        }
        if (asprintf(&vhost, "%s.%s", opts->bucket, host) < 0) {
            vhost = NULL;
            fb_errf(err, errlen, "asprintf failed: %s", strerror(errno));
            goto fail;
        }
        uc = curl_url_set(u, CURLUPART_HOST, vhost, 0);
        if (uc != CURLUE_OK) {
            fb_errf(err, errlen, "S3: host %s: %s", vhost, fb_http_url_strerror(uc));
            goto fail;
        }
    }
    if (curl_url_get(u, CURLUPART_URL, &part, 0) != CURLUE_OK) {
        fb_errf(err, errlen, "S3: endpoint \"%s\": cannot be made a URL", shown(opts->endpoint));
        goto fail;
    }
    s3->base = strdup(part);
    s3->bucket = strdup(opts->bucket);
    s3->region = strdup(region);
    s3->id = strdup(opts->access_key_id);
    s3->secret = strdup(opts->secret_access_key);
    s3->path_style = opts->path_style;
    if (asprintf(&s3->sigv4, "aws:amz:%s:s3", region) < 0)
        s3->sigv4 = NULL;
    if (s3->base == NULL || s3->bucket == NULL || s3->region == NULL || s3->id == NULL ||
        s3->secret == NULL || s3->sigv4 == NULL) {
        fb_errf(err, errlen, "S3 client: out of memory");
        goto fail;
    }

    fb_http_answer_reset(&s3->answer, FB_S3_RESPONSE_MAX);
    s3->curl = fb_http_handle_new(&(fb_http_opts_t){.ca_file = opts->ca_file,
                                                    .connect_timeout_ms = connect_ms,
                                                    .timeout_ms = total_ms,
                                                    .curl_err = s3->curl_err,
                                                    .answer = &s3->answer},
                                  err, errlen);
    if (s3->curl == NULL)
        goto fail;
    ok = curl_easy_setopt(s3->curl, CURLOPT_AWS_SIGV4, s3->sigv4) == CURLE_OK &&
         curl_easy_setopt(s3->curl, CURLOPT_USERNAME, s3->id) == CURLE_OK &&
         curl_easy_setopt(s3->curl, CURLOPT_PASSWORD, s3->secret) == CURLE_OK &&
         curl_easy_setopt(s3->curl, CURLOPT_CUSTOMREQUEST, "PUT") == CURLE_OK;
    if (!ok) {
        fb_errf(err, errlen, "S3 client: libcurl refused an option (too old a libcurl, or no TLS)");
        goto fail;
    }
    curl_free(part);
    free(vhost);
    fb_http_url_free(&url);
    return s3;

fail:
    curl_free(part);
    free(vhost);
    fb_http_url_free(&url);
    fb_s3_client_free(s3);
    return NULL;
}

/* fb_s3_client_free -- close the handle (and its connection), wipe the secret */
void
fb_s3_client_free(fb_s3_t *s3)
{
    if (s3 == NULL)
        return;
    if (s3->curl != NULL)
        curl_easy_cleanup(s3->curl);
    if (s3->secret != NULL) {
        sodium_memzero(s3->secret, strlen(s3->secret));
        free(s3->secret);
    }
    free(s3->id);
    free(s3->sigv4);
    free(s3->region);
    free(s3->bucket);
    free(s3->base);
    fb_http_answer_free(&s3->answer);
    free(s3);
}

/* url_of -- base [bucket/] name, the name percent-encoded but for '/' and
 * RFC 3986's unreserved characters (what S3's canonical URI keeps) */
static char *
url_of(const fb_s3_t *s3, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t blen = strlen(s3->base), klen = s3->path_style ? strlen(s3->bucket) : 0;
    size_t nlen = strlen(name);
    char *url, *p;

    url = malloc(blen + klen + 1 + 3 * nlen + 1);
    if (url == NULL)
        return NULL;
    p = url;
    memcpy(p, s3->base, blen); /* ends in '/' */
    p += blen;
    if (s3->path_style) {
        memcpy(p, s3->bucket, klen);
        p += klen;
        if (nlen > 0)
            *p++ = '/';
    }
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return url;
}

/* ---------------------------------------------------------------- responses */

/* copy_clean -- src[0..len) into dst: XML's five entities decoded, white
 * space as ' ', any other byte outside printable ASCII as '?', cut to fit */
static void
copy_clean(char *dst, size_t dstlen, const char *src, size_t len)
{
    static const struct {
        const char *entity;
        char c;
    } entities[] = {
        {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;

    if (dstlen == 0)
        return;
    for (size_t i = 0; i < len && o + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '&') {
            for (size_t e = 0; e < sizeof(entities) / sizeof(entities[0]); e++) {
                size_t elen = strlen(entities[e].entity);
                if (len - i >= elen && memcmp(src + i, entities[e].entity, elen) == 0) {
                    c = (unsigned char)entities[e].c;
                    i += elen - 1;
                    break;
                }
            }
        }
        if (c == '\t' || c == '\n' || c == '\r')
            c = ' ';
        else if (c < 0x20 || c > 0x7e)
            c = '?';
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
}

/* xml_text -- the text between the first <tag> and the next </tag> of body */
static void
xml_text(const char *body, size_t len, const char *tag, char *out, size_t outlen)
{
    char open[32], close[32];
    const char *start, *end;
    size_t olen, clen;

    if (outlen > 0)
        out[0] = '\0';
    if (body == NULL || len == 0)
        return;
    olen = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
    clen = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
    start = memmem(body, len, open, olen);
    if (start == NULL)
        return;
    start += olen;
    end = memmem(start, len - (size_t)(start - body), close, clen);
    if (end == NULL)
        return;
    copy_clean(out, outlen, start, (size_t)(end - start));
}

/* fb_s3_error_parse -- Code, Message and RequestId of an S3 error body */
void
fb_s3_error_parse(const char *body, size_t len, char *code, size_t codelen, char *message,
                  size_t messagelen, char *request_id, size_t request_idlen)
{
    xml_text(body, len, "Code", code, codelen);
    xml_text(body, len, "Message", message, messagelen);
    xml_text(body, len, "RequestId", request_id, request_idlen);
}

/* fb_s3_classify -- OK for 2xx; REFUSED only for what is wrong with the
 * object itself, said by a 4xx; RETRY for everything else */
fb_s3_result_t
fb_s3_classify(long status, const char *code)
{
    if (status >= 200 && status <= 299)
        return FB_S3_OK;
    if (status >= 400 && status <= 499 && code != NULL &&
        (strcmp(code, "EntityTooLarge") == 0 || strcmp(code, "KeyTooLongError") == 0))
        return FB_S3_REFUSED;
    return FB_S3_RETRY;
}

/* hint_of -- what the operator should check for an error code, or "" */
static const char *
hint_of(const char *code)
{
    static const struct {
        const char *code;
        const char *hint;
    } hints[] = {
        {"InvalidAccessKeyId", "; check the access key id and secret"},
        {"SignatureDoesNotMatch", "; check the access key id and secret"},
        {"InvalidToken", "; check the access key id and secret"},
        {"ExpiredToken", "; check the access key id and secret"},
        {"TokenRefreshRequired", "; check the access key id and secret"},
        {"AccessDenied", "; check that the access key may write to the bucket"},
        {"AllAccessDisabled", "; check that the access key may write to the bucket"},
        {"AuthorizationHeaderMalformed", "; check the region"},
        {"PermanentRedirect", "; check the region and endpoint"},
        {"IllegalLocationConstraintException", "; check the region"},
        {"NoSuchBucket", "; check the bucket's name, or create it"},
        {"RequestTimeTooSkewed", "; check this host's clock"},
    };

    for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
        if (strcmp(code, hints[i].code) == 0)
            return hints[i].hint;
    return "";
}

/* request -- one PUT of body to url; the result, the S3 error Code in code */
static fb_s3_result_t
request(fb_s3_t *s3, const char *url, const void *body, size_t len, const char *content_type,
        const char *content_encoding, char *code, size_t codelen, char *err, size_t errlen)
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hexdigest[2 * crypto_hash_sha256_BYTES + 1];
    char h_sha[64 + sizeof(hexdigest)], h_type[256], h_enc[64];
    char message[S3_MESSAGE_MAX], rid[S3_REQUEST_ID_MAX], snippet[S3_SNIPPET_MAX];
    char where[256];
    struct curl_slist *headers = NULL, *next;
    const char *lines[4];
    char *redirect = NULL;
    fb_s3_result_t result;
    long status = 0;
    CURLcode rc;
    size_t nlines = 0;

    if (codelen > 0)
        code[0] = '\0';
    crypto_hash_sha256(digest, body, len);
    sodium_bin2hex(hexdigest, sizeof(hexdigest), digest, sizeof(digest));
    snprintf(h_sha, sizeof(h_sha), "x-amz-content-sha256: %s", hexdigest);
    snprintf(h_type, sizeof(h_type), "Content-Type: %s", content_type);
    lines[nlines++] = h_sha;
    lines[nlines++] = h_type;
    if (content_encoding != NULL) {
        snprintf(h_enc, sizeof(h_enc), "Content-Encoding: %s", content_encoding);
        lines[nlines++] = h_enc;
    }
    for (size_t i = 0; i < nlines; i++) {
        next = curl_slist_append(headers, lines[i]);
        if (next == NULL) {
            curl_slist_free_all(headers);
            fb_errf(err, errlen, "PUT %s: out of memory", url);
            return FB_S3_RETRY;
        }
        headers = next;
    }
    fb_http_answer_reset(&s3->answer, FB_S3_RESPONSE_MAX);
    s3->curl_err[0] = '\0';
    if (curl_easy_setopt(s3->curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(s3->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(s3->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(s3->curl, CURLOPT_POSTFIELDS, len > 0 ? body : "") != CURLE_OK) {
        curl_slist_free_all(headers);
        fb_errf(err, errlen, "PUT %s: libcurl refused the request's options", url);
        return FB_S3_RETRY;
    }
    rc = curl_easy_perform(s3->curl);
    /* the handle must not keep pointers to what is freed here */
    curl_easy_setopt(s3->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(s3->curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(s3->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        fb_errf(err, errlen, "PUT %s: %s", url,
            s3->curl_err[0] != '\0' ? s3->curl_err : curl_easy_strerror(rc));
        return FB_S3_RETRY;
    }
    curl_easy_getinfo(s3->curl, CURLINFO_RESPONSE_CODE, &status);
    fb_s3_error_parse(s3->answer.buf, s3->answer.len, code, codelen, message, sizeof(message), rid,
                      sizeof(rid));
    result = fb_s3_classify(status, code);
    if (result == FB_S3_OK) {
        if (errlen > 0)
            err[0] = '\0';
        return FB_S3_OK;
    }
    snippet[0] = '\0';
    if (code[0] == '\0')
        copy_clean(snippet, sizeof(snippet), s3->answer.buf, s3->answer.len);
    if (status >= 300 && status <= 399)
        curl_easy_getinfo(s3->curl, CURLINFO_REDIRECT_URL, &redirect);
    where[0] = '\0';
    if (redirect != NULL)
        copy_clean(where, sizeof(where), redirect, strlen(redirect));
    fb_errf(err, errlen, "PUT %s: HTTP %ld%s%s%s%s%s%s%s%s%s%s%s", url, status,
        code[0] != '\0' ? " " : "", code, message[0] != '\0' ? ": " : "", message,
        rid[0] != '\0' ? " (request id " : "", rid, rid[0] != '\0' ? ")" : "",
        snippet[0] != '\0' ? "; body: " : "", snippet, hint_of(code),
        where[0] != '\0' ? "; redirected (not followed)" : "");
    if (where[0] != '\0') {
        size_t used = strlen(err);
        fb_errf(err + used, errlen - used, " to %s", where);
    }
    return result;
}

/* fb_s3_put -- one PUT of a whole object */
fb_s3_result_t
fb_s3_put(fb_s3_t *s3, const char *name, const void *body, size_t len, const char *content_type,
          const char *content_encoding, char *err, size_t errlen)
{
    char code[S3_CODE_MAX], shown[80];
    const char *why;
    fb_s3_result_t r;
    char *url;

    if (content_type == NULL)
        content_type = "application/octet-stream";
    if (name == NULL || !name_ok(name, &why)) {
        copy_clean(shown, sizeof(shown), name != NULL ? name : "", name != NULL ? strlen(name) : 0);
        fb_errf(err, errlen, "PUT s3://%s/%s: invalid object name: %s", s3->bucket, shown,
            name != NULL ? why : "none");
        return FB_S3_REFUSED;
    }
    if (strlen(content_type) > 128 || !printable(content_type, strlen(content_type), true) ||
        (content_encoding != NULL && strcmp(content_encoding, "gzip") != 0)) {
        fb_errf(err, errlen, "PUT s3://%s/%s: invalid content type or encoding", s3->bucket, name);
        return FB_S3_REFUSED;
    }
    if (body == NULL && len > 0) {
        fb_errf(err, errlen, "PUT s3://%s/%s: no body", s3->bucket, name);
        return FB_S3_REFUSED;
    }
    url = url_of(s3, name);
    if (url == NULL) {
        fb_errf(err, errlen, "PUT s3://%s/%s: out of memory", s3->bucket, name);
        return FB_S3_RETRY;
    }
    r = request(s3, url, body, len, content_type, content_encoding, code, sizeof(code), err,
                errlen);
    free(url);
    return r;
}

/* fb_s3_create_bucket -- PUT the bucket, with its region unless us-east-1 */
fb_s3_result_t
fb_s3_create_bucket(fb_s3_t *s3, char *err, size_t errlen)
{
    char code[S3_CODE_MAX];
    char *url, *conf = NULL;
    fb_s3_result_t r;
    int n = 0;

    url = url_of(s3, "");
    if (url == NULL) {
        fb_errf(err, errlen, "PUT s3://%s: out of memory", s3->bucket);
        return FB_S3_RETRY;
    }
    if (strcmp(s3->region, "us-east-1") != 0) {
        n = asprintf(&conf,
                     "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                     "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
                     s3->region);
        if (n < 0) {
            fb_errf(err, errlen, "PUT %s: out of memory", url);
            free(url);
            return FB_S3_RETRY;
        }
    }
    r = request(s3, url, conf, (size_t)n, "application/xml", NULL, code, sizeof(code), err, errlen);
    if (r != FB_S3_OK && strcmp(code, "BucketAlreadyOwnedByYou") == 0) {
        if (errlen > 0)
            err[0] = '\0';
        r = FB_S3_OK;
    } else if (r == FB_S3_REFUSED) {
        r = FB_S3_RETRY; /* there is no object to refuse */
    }
    free(conf);
    free(url);
    return r;
}
