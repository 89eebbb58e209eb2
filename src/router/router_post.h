/*
 * router_post.h -- the HTTP target's client: one POST of an NDJSON body
 * (JSON lines, each ending in "\n") to a configured URL, over one reusable
 * libcurl handle per client (keep-alive), set up by router_http.
 *
 * Each request carries Content-Type: application/x-ndjson, the configured
 * headers and, when given, Idempotency-Key: <key>, so that a receiver can
 * recognise a batch sent again after a failure. With gzip the body is
 * compressed deterministically (router_gzip): the same batch, sent again,
 * is the same bytes.
 *
 * Every request ends in one of four results:
 *   FB_POST_OK         2xx: the receiver has it.
 *   FB_POST_REFUSED    the receiver says the body itself is wrong (400,
 *                      422), or it can never be sent as it is (an invalid
 *                      idempotency key, a body not ending in "\n"): the
 *                      caller may move its records to dead letters.
 *   FB_POST_TOO_LARGE  413: the caller may split the batch and send the
 *                      parts.
 *   FB_POST_RETRY      anything else, for the operator or the environment
 *                      to fix: connection, DNS, TLS, timeouts, 408, 429,
 *                      5xx, 401, 403, 404, 415, a redirect (never
 *                      followed), any other status.
 * err then says the method, the URL (it never holds credentials), the
 * HTTP status and the first FB_POST_SNIPPET_MAX bytes of the answer
 * (anything but printable ASCII as '?'), or libcurl's error.
 *
 * Redirects are never followed; TLS peers are verified; credentials are
 * refused over plain http:// except to this machine. The caller runs
 * curl_global_init once before starting any thread. This module never
 * logs: every failure is returned with its reason.
 */
#ifndef FB_ROUTER_POST_H
#define FB_ROUTER_POST_H

#include <stdbool.h>
#include <stddef.h>

#define FB_POST_CONNECT_TIMEOUT_MS 10000
#define FB_POST_TIMEOUT_MS 30000 /* a whole request, upload included */
#define FB_POST_HEADERS_MAX 64   /* configured headers */
#define FB_POST_HEADER_MAX 8192  /* bytes of one configured header */
#define FB_POST_KEY_MAX 256      /* bytes of an idempotency key */
#define FB_POST_ANSWER_MAX 1024  /* bytes of an answer kept (the rest is read, dropped) */
#define FB_POST_SNIPPET_MAX 200  /* bytes of the answer shown in err */
#define FB_POST_ERR_LEN 1024     /* a good size for err (longer messages are cut) */

typedef enum fb_post_result {
    FB_POST_OK = 0,    /* 2xx */
    FB_POST_RETRY,     /* not the body's fault: try again later */
    FB_POST_REFUSED,   /* the body itself is wrong (400, 422) */
    FB_POST_TOO_LARGE, /* 413: send it in smaller parts */
} fb_post_result_t;

typedef struct fb_post_opts {
    const char *url;            /* http[s]://host[:port][/path][?query]; no user or
                                 * password, no fragment */
    const char *const *headers; /* "Name: value" each (fb_post_check_header) */
    size_t n_headers;
    const char *basic_auth;  /* "user:password", or NULL */
    const char *ca_file;     /* PEM file of the CAs to trust; NULL: the system's */
    long connect_timeout_ms; /* 0: FB_POST_CONNECT_TIMEOUT_MS */
    long timeout_ms;         /* 0: FB_POST_TIMEOUT_MS */
    bool gzip;               /* Content-Encoding: gzip */
} fb_post_opts_t;

typedef struct fb_post fb_post_t;

/* fb_post_new -- check o and make a client (headers and credentials are
 * copied); NULL with why in err on a configuration error or no memory.
 * err never holds the password. */
fb_post_t *fb_post_new(const fb_post_opts_t *o, char *err, size_t errlen);
/* fb_post_free -- close the connection, wipe the copied credentials
 * (NULL is fine). */
void fb_post_free(fb_post_t *c);

/* fb_post_check_header -- 0 if h is "Name: value" that may be configured:
 * Name a token (RFC 9110), value not empty, no CR, LF or other control
 * character but tab, at most FB_POST_HEADER_MAX bytes, and Name none of
 * Content-Type, Content-Length, Content-Encoding, Host, Transfer-Encoding,
 * Idempotency-Key (this client sets them). -1 with why in err. For
 * checking a configuration; fb_post_new checks each header with it. */
int fb_post_check_header(const char *h, char *err, size_t errlen);

/* fb_post_send -- POST body[0..len) (NDJSON: empty, or ending in "\n").
 * idempotency_key is NULL or 1..FB_POST_KEY_MAX bytes of printable ASCII
 * without spaces; anything else is REFUSED without a request. An empty
 * body is OK without a request. err is "" on OK. */
fb_post_result_t fb_post_send(fb_post_t *c, const char *body, size_t len,
                              const char *idempotency_key, char *err, size_t errlen);

/* fb_post_classify -- the result of an HTTP status. Pure. */
fb_post_result_t fb_post_classify(long status);

#endif /* FB_ROUTER_POST_H */
