/*
 * router_post.c -- the HTTP target's client (see router_post.h for the
 * results and their meaning): one POST of an NDJSON body per batch over a
 * reused libcurl handle that router_http set up.
 *
 * Configured headers are checked here once, as their values may be
 * secrets (tokens), an error names a header, never its value. Answers are
 * kept up to FB_POST_ANSWER_MAX bytes (the rest is read and dropped, so
 * the connection stays usable) and only shown, cut and made printable;
 * nothing in them but the status decides the result.
 *
 * Never logs, never follows a redirect, never puts a credential into an
 * error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/log.h"
#include "router/router_gzip.h"
#include "router/router_http.h"
#include "router/router_post.h"

struct fb_post {
    CURL *curl;
    char *url;
    char **headers; /* the configured ones, copied (may hold tokens: wiped when freed) */
    size_t n_headers;
    char *userpwd; /* copied; wiped when freed (not libcurl's own copy) */
    bool gzip;
    char curl_err[CURL_ERROR_SIZE];
    fb_http_answer_t answer;
};

static bool tchar(unsigned char c);
static bool key_ok(const char *key);
static void wipe_free(char *s);
static struct curl_slist *request_headers(const fb_post_t *c, const char *key);
static void snippet_of(char *out, size_t outlen, const char *s, size_t len);

/* Names this client sets itself: configuring them would send two or lie
 * about the body. */
static const char *const forbidden[] = {
    "Content-Type", "Content-Length",    "Content-Encoding",
    "Host",         "Transfer-Encoding", "Idempotency-Key",
};

/* tchar -- a byte of an HTTP token (RFC 9110, 5.6.2) */
static bool
tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* key_ok -- 1..FB_POST_KEY_MAX bytes of printable ASCII, no spaces */
static bool
key_ok(const char *key)
{
    size_t n = strlen(key);

    if (n == 0 || n > FB_POST_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
            return false;
    return true;
}

/* wipe_free -- forget a string that may be a secret */
static void
wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* fb_post_check_header -- a configured "Name: value" */
int
fb_post_check_header(const char *h, char *err, size_t errlen)
{
    size_t n, name_len = 0;
    const char *v;
    bool empty = true;

    if (h == NULL) {
        fb_errf(err, errlen, "header: none");
        return -1;
    }
    n = strlen(h);
    while (name_len < n && tchar((unsigned char)h[name_len]))
        name_len++;
    if (name_len == 0) {
        fb_errf(err, errlen, "header: an empty name (want \"Name: value\")");
        return -1;
    }
    if (h[name_len] != ':') {
        /* the name may run into the value: show neither */
        fb_errf(err, errlen,
                "header: a name that is not a token, or no ':' after it (want "
                "\"Name: value\")");
        return -1;
    }
    if (n > FB_POST_HEADER_MAX) {
        fb_errf(err, errlen, "header %.*s: longer than %d bytes",
                (int)(name_len > 64 ? 64 : name_len), h, FB_POST_HEADER_MAX);
        return -1;
    }
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        if (strlen(forbidden[i]) == name_len && strncasecmp(h, forbidden[i], name_len) == 0) {
            fb_errf(err, errlen, "header %s: set by the HTTP client itself, not configurable",
                    forbidden[i]);
            return -1;
        }
    }
    for (v = h + name_len + 1; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            /* CR or LF would end the header and start another */
            fb_errf(err, errlen, "header %.*s: a control character in its value (CR, LF, ...)",
                    (int)(name_len > 64 ? 64 : name_len), h);
            return -1;
        }
        if (c != ' ' && c != '\t')
            empty = false;
    }
    if (empty) {
        /* libcurl reads "Name:" as "remove this header" */
        fb_errf(err, errlen, "header %.*s: an empty value", (int)(name_len > 64 ? 64 : name_len),
                h);
        return -1;
    }
    return 0;
}

/* fb_post_new -- check the options, copy what is kept, set up the handle */
fb_post_t *
fb_post_new(const fb_post_opts_t *o, char *err, size_t errlen)
{
    fb_http_url_t url = {0};
    fb_post_t *c = NULL;
    char why[256];

    if (fb_http_url_check(o->url, FB_HTTP_URL_F_PATH | FB_HTTP_URL_F_QUERY, &url, err, errlen) !=
        FB_HTTP_URL_OK)
        goto fail;
    if (o->n_headers > FB_POST_HEADERS_MAX || (o->n_headers > 0 && o->headers == NULL)) {
        fb_errf(err, errlen, "headers: more than %d, or none given", FB_POST_HEADERS_MAX);
        goto fail;
    }
    for (size_t i = 0; i < o->n_headers; i++) {
        if (fb_post_check_header(o->headers[i], why, sizeof(why)) < 0) {
            fb_errf(err, errlen, "header %zu: %s", i + 1, why);
            goto fail;
        }
        if (o->basic_auth != NULL && strncasecmp(o->headers[i], "Authorization:", 14) == 0) {
            fb_errf(err, errlen, "header %zu: Authorization, and basic_auth too: one or the other",
                    i + 1);
            goto fail;
        }
    }
    if (o->basic_auth != NULL) {
        const char *colon = strchr(o->basic_auth, ':');
        bool ok = colon != NULL && colon != o->basic_auth;
        for (const char *p = o->basic_auth; ok && *p != '\0'; p++)
            ok = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
        if (!ok) {
            fb_errf(err, errlen, "credentials: not \"user:password\" in printable ASCII");
            goto fail;
        }
        if (fb_http_credentials_check(&url, o->url, err, errlen) < 0)
            goto fail;
    }
    if (fb_http_ca_check(o->ca_file, err, errlen) < 0)
        goto fail;
    if (o->connect_timeout_ms < 0 || o->timeout_ms < 0) {
        fb_errf(err, errlen, "timeouts must not be negative");
        goto fail;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fb_errf(err, errlen, "calloc(%zu) failed: %s", sizeof(*c), strerror(errno));
        goto fail;
    }
    c->gzip = o->gzip;
    c->url = strdup(o->url);
    c->headers = calloc(o->n_headers > 0 ? o->n_headers : 1, sizeof(*c->headers));
    if (c->url == NULL || c->headers == NULL)
        goto nomem;
    for (; c->n_headers < o->n_headers; c->n_headers++) {
        c->headers[c->n_headers] = strdup(o->headers[c->n_headers]);
        if (c->headers[c->n_headers] == NULL)
            goto nomem;
    }
    if (o->basic_auth != NULL && (c->userpwd = strdup(o->basic_auth)) == NULL)
        goto nomem;

    c->curl = fb_http_handle_new(
        &(fb_http_opts_t){
            .ca_file = o->ca_file,
            .connect_timeout_ms = o->connect_timeout_ms != 0 ? o->connect_timeout_ms
                                                             : (long)FB_POST_CONNECT_TIMEOUT_MS,
            .timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : (long)FB_POST_TIMEOUT_MS,
            .curl_err = c->curl_err,
            .answer = &c->answer},
        err, errlen);
    if (c->curl == NULL)
        goto fail;
    if (curl_easy_setopt(c->curl, CURLOPT_URL, c->url) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_POST, 1L) != CURLE_OK ||
        (c->userpwd != NULL &&
         (curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
          curl_easy_setopt(c->curl, CURLOPT_USERPWD, c->userpwd) != CURLE_OK))) {
        fb_errf(err, errlen, "HTTP client: libcurl refused an option");
        goto fail;
    }
    fb_http_url_free(&url);
    return c;

nomem:
    fb_errf(err, errlen, "HTTP client: out of memory");
fail:
    fb_http_url_free(&url);
    fb_post_free(c);
    return NULL;
}

/* fb_post_free -- the handle, its connection and the copies */
void
fb_post_free(fb_post_t *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    for (size_t i = 0; i < c->n_headers; i++)
        wipe_free(c->headers[i]);
    free(c->headers);
    wipe_free(c->userpwd);
    free(c->url);
    fb_http_answer_free(&c->answer);
    free(c);
}

/* fb_post_classify -- 2xx OK; the body's fault REFUSED; 413 TOO_LARGE;
 * the rest, 415 included (the receiver's settings), RETRY */
fb_post_result_t
fb_post_classify(long status)
{
    if (status >= 200 && status <= 299)
        return FB_POST_OK;
    if (status == 400 || status == 422)
        return FB_POST_REFUSED;
    if (status == 413)
        return FB_POST_TOO_LARGE;
    return FB_POST_RETRY;
}

/* request_headers -- this request's: ours, the configured ones, the key */
static struct curl_slist *
request_headers(const fb_post_t *c, const char *key)
{
    char line[sizeof("Idempotency-Key: ") + FB_POST_KEY_MAX];
    struct curl_slist *list = NULL, *next;
    const char *ours[3];
    size_t n = 0;

    ours[n++] = "Content-Type: application/x-ndjson";
    ours[n++] = "Expect:"; /* no 100-continue round trip before large bodies */
    if (c->gzip)
        ours[n++] = "Content-Encoding: gzip";
    for (size_t i = 0; i < n + c->n_headers + (key != NULL); i++) {
        const char *h;
        if (i < n) {
            h = ours[i];
        } else if (i < n + c->n_headers) {
            h = c->headers[i - n];
        } else {
            snprintf(line, sizeof(line), "Idempotency-Key: %s", key);
            h = line;
        }
        next = curl_slist_append(list, h);
        if (next == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

/* snippet_of -- at most FB_POST_SNIPPET_MAX bytes of s, printable or '?' */
static void
snippet_of(char *out, size_t outlen, const char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && i < FB_POST_SNIPPET_MAX && o + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (outlen > 0)
        out[o] = '\0';
}

/* fb_post_send -- one POST of one batch */
fb_post_result_t
fb_post_send(fb_post_t *c, const char *body, size_t len, const char *idempotency_key, char *err,
             size_t errlen)
{
    char snippet[FB_POST_SNIPPET_MAX + 1];
    struct curl_slist *headers;
    fb_post_result_t result;
    uint8_t *gz = NULL;
    size_t gz_len = 0;
    const void *data = body;
    size_t size = len;
    long status = 0;
    CURLcode rc;

    if (errlen > 0)
        err[0] = '\0';
    if (idempotency_key != NULL && !key_ok(idempotency_key)) {
        fb_errf(err, errlen,
                "POST %s: invalid idempotency key (want 1 to %d printable ASCII bytes, no spaces)",
                c->url, FB_POST_KEY_MAX);
        return FB_POST_REFUSED;
    }
    if (len == 0)
        return FB_POST_OK;
    if (body == NULL || body[len - 1] != '\n') {
        fb_errf(err, errlen, "POST %s: the body is not NDJSON (its last line has no \"\\n\")",
                c->url);
        return FB_POST_REFUSED;
    }
    if (c->gzip) {
        if (fb_gzip(body, len, FB_GZIP_LEVEL, &gz, &gz_len) < 0) {
            fb_errf(err, errlen, "POST %s: gzip of %zu bytes failed: %s", c->url, len,
                    strerror(errno));
            return FB_POST_RETRY;
        }
        data = gz;
        size = gz_len;
    }
    headers = request_headers(c, idempotency_key);
    if (headers == NULL) {
        free(gz);
        fb_errf(err, errlen, "POST %s: out of memory", c->url);
        return FB_POST_RETRY;
    }
    fb_http_answer_reset(&c->answer, FB_POST_ANSWER_MAX);
    c->curl_err[0] = '\0';
    if (curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, data) != CURLE_OK) {
        fb_errf(err, errlen, "POST %s: libcurl refused the request's options", c->url);
        result = FB_POST_RETRY;
        goto done;
    }
    rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        fb_errf(err, errlen, "POST %s: %s", c->url,
                c->curl_err[0] != '\0' ? c->curl_err : curl_easy_strerror(rc));
        result = FB_POST_RETRY;
        goto done;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    result = fb_post_classify(status);
    if (result != FB_POST_OK) {
        snippet_of(snippet, sizeof(snippet), c->answer.buf, c->answer.len);
        fb_errf(err, errlen, "POST %s: HTTP %ld%s%s%s", c->url, status,
                status >= 300 && status <= 399 ? " (redirects are not followed)" : "",
                snippet[0] != '\0' ? "; body: " : "", snippet);
    }
done:
    /* the handle must not keep pointers to what is freed here */
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_slist_free_all(headers);
    free(gz);
    return result;
}
