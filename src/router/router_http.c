/*
 * router_http.c -- the libcurl setup the router's HTTP clients share (see
 * router_http.h): URL checks with libcurl's URL API, one hardened easy
 * handle per client, answers kept in a bounded buffer.
 *
 * Never logs, never turns TLS verification off, never follows a redirect,
 * never repeats a URL that may hold a password.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "router/router_http.h"

#define ANSWER_FIRST_CAP 4096 /* bytes first allocated for an answer */

static bool url_text_ok(const char *url);
static bool loopback(const char *host);
static const char *shown(const char *url);

/* url_text_ok -- 1..FB_HTTP_URL_MAX bytes of printable ASCII, no spaces */
static bool
url_text_ok(const char *url)
{
    size_t n;

    if (url == NULL || (n = strlen(url)) == 0 || n > FB_HTTP_URL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return false;
    return true;
}

/* loopback -- host (as CURLU gives it) is this machine: a name that
 * resolves elsewhere never counts, so "127.example.com" is not one */
static bool
loopback(const char *host)
{
    struct in_addr a4;

    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* fb_http_url_strerror -- libcurl's words for a URL error (7.80 and later) */
const char *
fb_http_url_strerror(CURLUcode uc)
{
#if LIBCURL_VERSION_NUM >= 0x075000
    return curl_url_strerror(uc);
#else
    return uc == CURLUE_MALFORMED_INPUT ? "malformed URL" : "invalid URL";
#endif
}

/* shown -- url as an error may show it: not at all if it may hold a password */
static const char *
shown(const char *url)
{
    if (url == NULL)
        return "";
    return strchr(url, '@') == NULL ? url : "(with user info, not shown)";
}

/* fb_http_url_check -- parse and check a configured URL */
fb_http_url_fault_t
fb_http_url_check(const char *url, unsigned flags, fb_http_url_t *out, char *err, size_t errlen)
{
    char *scheme = NULL, *part = NULL;
    fb_http_url_fault_t fault = FB_HTTP_URL_OK;
    CURLUcode uc;

    memset(out, 0, sizeof(*out));
    out->why = "";
    if (!url_text_ok(url)) {
        out->why = "missing, or not printable ASCII without spaces";
        fb_errf(err, errlen, "URL: missing, longer than %d bytes or not printable ASCII",
                FB_HTTP_URL_MAX);
        return FB_HTTP_URL_TEXT;
    }
    out->u = curl_url();
    if (out->u == NULL) {
        out->why = "out of memory";
        fb_errf(err, errlen, "URL %s: curl_url() failed: out of memory", shown(url));
        return FB_HTTP_URL_MALFORMED;
    }
    uc = curl_url_set(out->u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        out->why = fb_http_url_strerror(uc);
        fb_errf(err, errlen, "URL %s: not a URL (http[s]://host[:port][/path]): %s", shown(url),
                out->why);
        return FB_HTTP_URL_MALFORMED;
    }
    if (curl_url_get(out->u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(out->u, CURLUPART_HOST, &out->host, 0) != CURLUE_OK) {
        out->why = "no host";
        fb_errf(err, errlen, "URL %s: not a URL (http[s]://host[:port][/path]): no host",
                shown(url));
        fault = FB_HTTP_URL_MALFORMED;
        goto done;
    }
    out->https = strcmp(scheme, "https") == 0;
    out->loopback = loopback(out->host);
    if (!out->https && strcmp(scheme, "http") != 0) {
        out->why = "not http:// or https://";
        fb_errf(err, errlen, "URL %s: the scheme must be http or https", shown(url));
        fault = FB_HTTP_URL_SCHEME;
        goto done;
    }
    if (curl_url_get(out->u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
        curl_url_get(out->u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
        /* never repeat it: it may hold a password */
        out->why = "a user or password in it";
        fb_errf(err, errlen, "URL: credentials in it; give them in a credentials file");
        fault = FB_HTTP_URL_USERINFO;
        goto done;
    }
    if (!(flags & FB_HTTP_URL_F_QUERY) &&
        curl_url_get(out->u, CURLUPART_QUERY, &part, 0) == CURLUE_OK) {
        out->why = "a query";
        fb_errf(err, errlen, "URL %s: no query or fragment here", url);
        fault = FB_HTTP_URL_QUERY;
        goto done;
    }
    if (curl_url_get(out->u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
        out->why = "a fragment";
        fb_errf(err, errlen, "URL %s: no %sfragment here", url,
                (flags & FB_HTTP_URL_F_QUERY) ? "" : "query or ");
        fault = FB_HTTP_URL_FRAGMENT;
        goto done;
    }
    if (!(flags & FB_HTTP_URL_F_PATH)) {
        curl_free(part);
        part = NULL;
        if (curl_url_get(out->u, CURLUPART_PATH, &part, 0) != CURLUE_OK || strcmp(part, "/") != 0) {
            out->why = "a path";
            fb_errf(err, errlen, "URL %s: no path here", url);
            fault = FB_HTTP_URL_PATH;
            goto done;
        }
    }
done:
    curl_free(scheme);
    curl_free(part);
    return fault;
}

/* fb_http_url_free -- what fb_http_url_check made (a zeroed one is fine) */
void
fb_http_url_free(fb_http_url_t *u)
{
    curl_free(u->host);
    curl_url_cleanup(u->u);
    u->host = NULL;
    u->u = NULL;
}

/* fb_http_credentials_check -- no credentials in clear text off this machine */
int
fb_http_credentials_check(const fb_http_url_t *u, const char *url, char *err, size_t errlen)
{
    if (u->https || u->loopback)
        return 0;
    fb_errf(err, errlen, "URL %s: credentials would cross the network in clear text; use https",
            shown(url));
    return -1;
}

/* fb_http_ca_check -- the CA file can be read (libcurl would only say so
 * on the first request) */
int
fb_http_ca_check(const char *ca_file, char *err, size_t errlen)
{
    if (ca_file != NULL && access(ca_file, R_OK) < 0) {
        fb_errf(err, errlen, "CA file %s: %s", ca_file, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- answers */

/* fb_http_answer_reset -- ready for the next answer */
void
fb_http_answer_reset(fb_http_answer_t *a, size_t max)
{
    a->len = 0;
    a->max = max;
    a->over = false;
    a->nomem = false;
    if (a->buf != NULL)
        a->buf[0] = '\0';
}

/* fb_http_answer_free -- its memory (the struct is the caller's) */
void
fb_http_answer_free(fb_http_answer_t *a)
{
    free(a->buf);
    a->buf = NULL;
    a->len = a->cap = 0;
}

/* fb_http_answer_write -- keep what fits under max; drop or stop past it */
size_t
fb_http_answer_write(char *data, size_t size, size_t nmemb, void *arg)
{
    fb_http_answer_t *a = arg;
    size_t n = size * nmemb; /* libcurl: size is 1 */
    size_t keep = n;

    if (n > a->max - a->len) {
        a->over = true;
        if (a->stop)
            return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
        keep = a->max - a->len;
    }
    if (keep > 0 && !a->nomem && a->len + keep + 1 > a->cap) {
        size_t cap = a->cap != 0 ? a->cap : ANSWER_FIRST_CAP;
        char *p;

        while (cap < a->len + keep + 1)
            cap *= 2;
        if (cap > a->max + 1)
            cap = a->max + 1;
        p = realloc(a->buf, cap);
        if (p == NULL) {
            a->nomem = true;
            return a->stop ? 0 : n;
        }
        a->buf = p;
        a->cap = cap;
    }
    if (keep > 0 && !a->nomem) {
        memcpy(a->buf + a->len, data, keep);
        a->len += keep;
        a->buf[a->len] = '\0';
    }
    return n;
}

/* ---------------------------------------------------------------- the handle */

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(curl, opt, val) != CURLE_OK) {                                        \
            fb_errf(err, errlen,                                                                   \
                    "curl_easy_setopt(" #opt ") failed (too old a libcurl, or "                    \
                    "no TLS)");                                                                    \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* fb_http_handle_new -- the hardened handle every client starts from */
CURL *
fb_http_handle_new(const fb_http_opts_t *o, char *err, size_t errlen)
{
    CURL *curl;

    if (o->connect_timeout_ms <= 0 || o->timeout_ms <= 0) {
        fb_errf(err, errlen, "timeouts must be positive");
        return NULL;
    }
    curl = curl_easy_init();
    if (curl == NULL) {
        fb_errf(err, errlen, "curl_easy_init() failed");
        return NULL;
    }
    SETOPT(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: CURLOPT_PROTOCOLS deprecated */
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file != NULL)
        SETOPT(CURLOPT_CAINFO, o->ca_file);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, o->timeout_ms);
    /* a connection kept between batches learns of a dead peer */
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_USERAGENT, o->user_agent != NULL ? o->user_agent : FB_HTTP_USER_AGENT);
    if (o->curl_err != NULL) {
        o->curl_err[0] = '\0';
        SETOPT(CURLOPT_ERRORBUFFER, o->curl_err);
    }
    if (o->answer != NULL) {
        SETOPT(CURLOPT_WRITEFUNCTION, fb_http_answer_write);
        SETOPT(CURLOPT_WRITEDATA, o->answer);
    }
    return curl;

fail:
    curl_easy_cleanup(curl);
    return NULL;
}
