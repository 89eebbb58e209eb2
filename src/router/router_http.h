/*
 * router_http.h -- what the router's HTTP clients (S3, _bulk, the HTTP
 * target) share of libcurl: the check of a configured URL, a hardened
 * easy handle, and a bounded buffer for the answers.
 *
 * The handle never raises signals (NOSIGNAL), never follows a redirect,
 * speaks http and https only, always verifies TLS peers and host names
 * (ca_file, or the system's CAs), and is bounded by a connect and a total
 * timeout. Answers are hostile: at most max bytes of one are kept. A URL
 * that holds a user or password is refused and never repeated in an
 * error, and a client that sends credentials is refused plain http:// to
 * anything but this machine.
 *
 * This module never logs and never puts a credential into an error: every
 * failure is returned with its reason for the caller to word or log. The
 * caller runs curl_global_init once before starting any thread.
 */
#ifndef FB_ROUTER_HTTP_H
#define FB_ROUTER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#define FB_HTTP_URL_MAX 2048 /* bytes of a configured URL */
#define FB_HTTP_USER_AGENT "fbpipe"

/* What fb_http_url_check allows beyond scheme://host[:port][/] */
#define FB_HTTP_URL_F_PATH (1u << 0)  /* a path other than "/" */
#define FB_HTTP_URL_F_QUERY (1u << 1) /* a query (never a fragment) */

/* Why fb_http_url_check refused a URL, checked in this order. */
typedef enum fb_http_url_fault {
    FB_HTTP_URL_OK = 0,
    FB_HTTP_URL_TEXT,      /* missing, over FB_HTTP_URL_MAX, or not printable ASCII
                            * without spaces */
    FB_HTTP_URL_MALFORMED, /* libcurl cannot parse it, or it has no host */
    FB_HTTP_URL_SCHEME,    /* neither http nor https */
    FB_HTTP_URL_USERINFO,  /* a user or password in it */
    FB_HTTP_URL_QUERY,     /* a query where none is allowed */
    FB_HTTP_URL_FRAGMENT,  /* a fragment */
    FB_HTTP_URL_PATH,      /* a path other than "/" where none is allowed */
} fb_http_url_fault_t;

/* What fb_http_url_check found in a URL. */
typedef struct fb_http_url {
    CURLU *u;   /* parsed, for a caller that needs more of it */
    char *host; /* as libcurl gives it: an IPv6 address in brackets */
    bool https;
    bool loopback;   /* host is localhost, 127.0.0.0/8 or [::1] */
    const char *why; /* on a fault: a short reason, static ("" otherwise) */
} fb_http_url_t;

/* fb_http_url_check -- parse url into *out (free it with fb_http_url_free
 * whatever the result) and check it against flags. FB_HTTP_URL_OK, or the
 * fault with why in err ("URL ...: ..."); a URL with a user or password is
 * never shown. */
fb_http_url_fault_t fb_http_url_check(const char *url, unsigned flags, fb_http_url_t *out,
                                      char *err, size_t errlen);
void fb_http_url_free(fb_http_url_t *u);
/* fb_http_url_strerror -- libcurl's words for a URL API error */
const char *fb_http_url_strerror(CURLUcode uc);

/* fb_http_credentials_check -- 0 if credentials may be sent to u: over
 * https, or over http to this machine only; -1 with why in err. url is
 * the text u came from (shown: it holds no user or password). */
int fb_http_credentials_check(const fb_http_url_t *u, const char *url, char *err, size_t errlen);

/* fb_http_ca_check -- 0 if ca_file is NULL or readable; -1 with why. */
int fb_http_ca_check(const char *ca_file, char *err, size_t errlen);

/* ---- answers ---------------------------------------------------------- */

/* An answer's body, at most max bytes of it. Past max, the rest is read
 * and dropped (the connection stays usable), or, when stop is set, the
 * transfer ends there (libcurl's CURLE_WRITE_ERROR). buf holds len bytes
 * and a NUL after them once anything arrived; NULL before. */
typedef struct fb_http_answer {
    char *buf;
    size_t len, cap;
    size_t max;
    bool stop;  /* end the transfer past max, rather than drop the rest */
    bool over;  /* more than max bytes came */
    bool nomem; /* no memory to keep what came (dropped, or stopped) */
} fb_http_answer_t;

/* fb_http_answer_reset -- forget the last answer (the memory is kept);
 * the next one keeps at most max bytes. */
void fb_http_answer_reset(fb_http_answer_t *a, size_t max);
void fb_http_answer_free(fb_http_answer_t *a);
/* fb_http_answer_write -- libcurl's CURLOPT_WRITEFUNCTION; arg is the
 * fb_http_answer_t. */
size_t fb_http_answer_write(char *data, size_t size, size_t nmemb, void *arg);

/* ---- the handle ------------------------------------------------------- */

typedef struct fb_http_opts {
    const char *ca_file;      /* PEM file of the CAs to trust; NULL: the system's */
    long connect_timeout_ms;  /* > 0 */
    long timeout_ms;          /* > 0: the whole request */
    const char *user_agent;   /* NULL: FB_HTTP_USER_AGENT */
    char *curl_err;           /* CURL_ERROR_SIZE bytes for libcurl's error, or NULL */
    fb_http_answer_t *answer; /* where answers go, or NULL: libcurl's default */
} fb_http_opts_t;

/* fb_http_handle_new -- an easy handle set up as this file's header says;
 * the pointers in o must outlive it. NULL with why in err. */
CURL *fb_http_handle_new(const fb_http_opts_t *o, char *err, size_t errlen);

#endif /* FB_ROUTER_HTTP_H */
