/*
 * router_bulk.h -- the router's client of the Elasticsearch/OpenSearch
 * _bulk API: index names from a pattern, the NDJSON body of one bulk
 * (a "create" action with an explicit _id per document, so that sending
 * the same bulk again adds nothing), sending it over libcurl and a
 * verdict per document from the answer.
 *
 * Verdicts are conservative: a document is REFUSED (for the dead letters)
 * only when its item says that the document itself is wrong; whatever else
 * goes wrong, including credentials the server refuses, is RETRY. Answers
 * are hostile: read into a bounded buffer and parsed with jansson; an
 * answer that does not account for every document makes the whole bulk
 * RETRY. TLS is verified, redirects are not followed, credentials never
 * appear in an error. This module never logs: every function returns what
 * failed and where in an error text for the caller to log.
 */
#ifndef FB_ROUTER_BULK_H
#define FB_ROUTER_BULK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FB_BULK_INDEX_MAX 255           /* bytes of an index name */
#define FB_BULK_ID_MAX 512              /* bytes of a document _id */
#define FB_BULK_BODY_MAX (64u << 20)    /* bytes of one bulk's body, before gzip */
#define FB_BULK_ANSWER_BASE (64u << 10) /* an answer may have this many bytes */
#define FB_BULK_ANSWER_PER_DOC 4096u    /* ... and this many more per document */
#define FB_BULK_CONNECT_TIMEOUT_MS 10000
#define FB_BULK_TIMEOUT_MS 60000

/* ---- index names ------------------------------------------------------ */

/* 0 if pattern makes valid index names: "{key}" stands for the access key,
 * %Y %m %d %H for the record's UTC year (4 digits), month, day, hour, %%
 * for '%'; the rest is literal. Checked by expanding it with a one-letter
 * key: a configuration error otherwise, with why in err. */
int fb_bulk_pattern_check(const char *pattern, char *err, size_t errlen);

/* The index name for access key key and a record of UTC time t into out
 * (room for FB_BULK_INDEX_MAX + 1 bytes). -1 with why in err when the
 * result is not a valid index name: lowercase ASCII, none of
 * \ / * ? " < > | , # : space or control characters, not starting with
 * - _ +, not "." or "..", 1..255 bytes; for a pattern that passed
 * fb_bulk_pattern_check that is the key's doing (or a time outside years
 * 0..9999), and err says so. */
int fb_bulk_index_name(const char *pattern, const char *key, time_t t, char *out, char *err,
                       size_t errlen);

/* The _id "<topic>-<partition>-<offset>" into out (room for
 * FB_BULK_ID_MAX + 1 bytes); -1 if it would be longer. */
int fb_bulk_doc_id(char *out, const char *topic, int32_t partition, int64_t offset);

/* ---- the body of one bulk -------------------------------------------- */

typedef struct fb_bulk_body fb_bulk_body_t;

/* fb_bulk_body_add: FB_BULK_E_DOC, this document can go in no bulk (err
 * says why); FB_BULK_E_FULL, no room (past FB_BULK_BODY_MAX, or out of
 * memory): send the body first, or try again later. */
#define FB_BULK_E_DOC (-1)
#define FB_BULK_E_FULL (-2)

fb_bulk_body_t *fb_bulk_body_new(void);
void fb_bulk_body_free(fb_bulk_body_t *b);
/* Forget every document (keeps the memory). */
void fb_bulk_body_clear(fb_bulk_body_t *b);

/* Append the action {"create":{"_index":index,"_id":id}} (built with
 * jansson) and the document doc[0..len) (one JSON object, an optional
 * trailing "\n" ignored; checked and copied without white space, never
 * parsed into a tree). index must be a valid index name, id 1..512 bytes
 * of UTF-8. Returns 0, FB_BULK_E_DOC or FB_BULK_E_FULL; on failure the
 * body is as it was. */
int fb_bulk_body_add(fb_bulk_body_t *b, const char *index, const char *id, const char *doc,
                     size_t len, char *err, size_t errlen);

size_t fb_bulk_body_count(const fb_bulk_body_t *b); /* documents */
size_t fb_bulk_body_size(const fb_bulk_body_t *b);  /* bytes */
/* The NDJSON text (every line ends in "\n"); valid until the next change. */
const char *fb_bulk_body_text(const fb_bulk_body_t *b);

/* ---- verdicts --------------------------------------------------------- */

typedef enum fb_bulk_verdict {
    FB_BULK_OK = 0, /* stored: 200/201, or 409 version conflict (already there) */
    FB_BULK_RETRY,  /* send it again later: nothing says it is the document's fault */
    FB_BULK_REFUSED /* the document itself is wrong: a dead letter, with why */
} fb_bulk_verdict_t;

/* Why a whole bulk is RETRY (every document). */
typedef enum fb_bulk_failure {
    FB_BULK_FAIL_NONE = 0, /* an item per document: see each one's verdict */
    FB_BULK_FAIL_NETWORK,  /* no whole HTTP answer: connection, TLS, timeout */
    FB_BULK_FAIL_AUTH,     /* HTTP 401 or 403: the operator's credentials are refused */
    FB_BULK_FAIL_HTTP,     /* another HTTP status than 200 (429, 5xx, 3xx, 4xx) */
    FB_BULK_FAIL_ANSWER,   /* HTTP 200 but an answer that cannot be trusted */
    FB_BULK_FAIL_LOCAL     /* the request could not be made here (memory, gzip) */
} fb_bulk_failure_t;

typedef struct fb_bulk_item {
    fb_bulk_verdict_t verdict;
    int status;       /* the item's HTTP status; 0 when the whole bulk failed */
    char type[64];    /* its error type (e.g. mapper_parsing_exception), cut; "" if none */
    char reason[256]; /* its error reason and its cause's, cut; "" if none */
} fb_bulk_item_t;

typedef struct fb_bulk_result {
    fb_bulk_failure_t failure;
    long http_status; /* 0 when there was no HTTP answer */
    size_t ok, retry, refused;
    size_t count;          /* documents, and items below */
    fb_bulk_item_t *items; /* one per document in the order added; owned by
                            * whoever filled the result (see below) */
    char error[512];       /* when failure or any RETRY: what, where, status,
                            * error type and reason; "" otherwise */
} fb_bulk_result_t;

/* The verdicts of count documents from an HTTP status and its answer
 * text[0..len) into r, whose items has room for count. Returns 0 when
 * the answer has an item for each document (r->failure NONE), -1 when
 * the whole bulk is RETRY (r->failure says why). Pure: for the tests. */
int fb_bulk_verdicts(long http_status, const char *text, size_t len, size_t count,
                     fb_bulk_result_t *r);

/* ---- the client ------------------------------------------------------- */

typedef struct fb_bulk_opts {
    const char *url;         /* http[s]://host[:port][/path]: no credentials, query or
                              * fragment; /_bulk is appended */
    const char *basic_auth;  /* "user:password", or NULL */
    const char *api_key;     /* sent as "Authorization: ApiKey <api_key>", or NULL */
    const char *ca_file;     /* PEM file of the CAs to trust; NULL = the system's */
    long connect_timeout_ms; /* 0 = FB_BULK_CONNECT_TIMEOUT_MS */
    long timeout_ms;         /* the whole request; 0 = FB_BULK_TIMEOUT_MS */
    bool gzip;               /* compress the body (Content-Encoding: gzip) */
} fb_bulk_opts_t;

typedef struct fb_bulk fb_bulk_t;

/* A client with one reusable connection (libcurl easy handle). Call
 * curl_global_init() once before, while the process has one thread.
 * Credentials are refused on plain http:// except to a loopback host.
 * NULL with why in err on a configuration error. */
fb_bulk_t *fb_bulk_new(const fb_bulk_opts_t *o, char *err, size_t errlen);
void fb_bulk_free(fb_bulk_t *c);

/* POST body to <url>/_bulk and fill r; r->items belong to c and stay
 * valid until its next send or free. Returns 0 when every document has
 * an item (each OK, RETRY or REFUSED), -1 when the whole bulk is RETRY.
 * An empty body returns 0 without a request. */
int fb_bulk_send(fb_bulk_t *c, const fb_bulk_body_t *body, fb_bulk_result_t *r);

/* ---- credentials files ------------------------------------------------ */

/* A credentials file ("user:password", or an API key) into *out
 * (NUL-terminated, a trailing newline dropped): a regular file of at most
 * FB_SECRET_MAX bytes, accessible by its owner only, with no control
 * characters. -1 with why in err (never its contents). */
int fb_bulk_secret_read(const char *path, char **out, char *err, size_t errlen);
/* Wipe and free what fb_bulk_secret_read returned. */
void fb_bulk_secret_free(char *s);

#endif /* FB_ROUTER_BULK_H */
