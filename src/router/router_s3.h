/*
 * router_s3.h -- a small client of the S3 API for the router: one PUT per
 * object (a key's batch of JSON lines), over libcurl, signed by libcurl
 * (CURLOPT_AWS_SIGV4), on one reusable handle per client (keep-alive).
 *
 * Each PUT sends x-amz-content-sha256 with the body's real SHA-256
 * (libsodium), not UNSIGNED-PAYLOAD: the payload is then covered by the
 * signature and the server checks the bytes it received against it, so a
 * body damaged on the way (plain http, a proxy) is refused by the server
 * (and retried) instead of stored. It costs one pass over the body.
 *
 * Every request ends in one of three results:
 *   FB_S3_OK       stored (2xx).
 *   FB_S3_REFUSED  the object itself can never be stored as it is: its
 *                  name is invalid, or the store said so (HTTP 400 with
 *                  EntityTooLarge or KeyTooLongError). Only these: the
 *                  caller may move the object's records to dead letters.
 *   FB_S3_RETRY    anything else: connection refused or reset, timeouts,
 *                  DNS, TLS, 5xx, 429, 408, SlowDown, RequestTimeout, a
 *                  redirect (never followed), and every credentials,
 *                  permission, region or bucket error (InvalidAccessKeyId,
 *                  SignatureDoesNotMatch, AccessDenied, ExpiredToken,
 *                  NoSuchBucket, ...): those are the operator's or the
 *                  environment's to fix, never a reason to fail a record.
 *                  An unknown error is a RETRY, InvalidArgument included
 *                  (S3 says it of headers and settings more often than of
 *                  objects).
 * err then says what and where: method, URL (credentials are never part
 * of it), HTTP status, the S3 error Code, Message and RequestId read from
 * the response's XML (bounded, printable ASCII only), and what to check
 * for credentials, region and bucket errors; or libcurl's error.
 *
 * Redirects are never followed (a PermanentRedirect names the right
 * region); TLS peers are verified (ca_file, or the system's CAs); only
 * http and https are spoken; libcurl never raises signals (NOSIGNAL).
 * The caller runs curl_global_init once before starting any thread.
 * This module never logs: every failure is returned with its reason.
 */
#ifndef FB_ROUTER_S3_H
#define FB_ROUTER_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_S3_NAME_MAX 1024  /* bytes of an object name (S3's limit) */
#define FB_S3_ID_MAX 128     /* bytes of an access key id */
#define FB_S3_SECRET_MAX 256 /* bytes of a secret access key */
#define FB_S3_REGION_DEFAULT "us-east-1"
#define FB_S3_CONNECT_TIMEOUT_MS 10000
#define FB_S3_TIMEOUT_MS 120000  /* a whole request, upload included */
#define FB_S3_RESPONSE_MAX 16384 /* bytes of a response body kept (the rest is read, dropped) */
#define FB_S3_ERR_LEN 1024       /* a good size for err (longer messages are cut, never overrun) */

typedef enum fb_s3_result {
    FB_S3_OK = 0,
    FB_S3_RETRY,   /* try again later: not the object's fault */
    FB_S3_REFUSED, /* the object can never be stored as it is */
} fb_s3_result_t;

typedef struct fb_s3 fb_s3_t;

typedef struct fb_s3_opts {
    const char *endpoint;          /* http[s]://host[:port][/], no user, path or query */
    const char *region;            /* NULL: FB_S3_REGION_DEFAULT */
    const char *bucket;            /* 3..63 of [a-z0-9.-], a letter or digit at both ends */
    bool path_style;               /* endpoint/bucket/name; else bucket.host/name */
    const char *access_key_id;     /* copied; see fb_s3_credentials_load */
    const char *secret_access_key; /* copied, wiped when the client is freed (not
                                    * libcurl's own copy) */
    const char *ca_file;           /* NULL: the system's CAs */
    long connect_timeout_ms;       /* 0: FB_S3_CONNECT_TIMEOUT_MS */
    long timeout_ms;               /* 0: FB_S3_TIMEOUT_MS */
} fb_s3_opts_t;

/* An access key as read from its file; wipe it once given to a client. */
typedef struct fb_s3_credentials {
    char id[FB_S3_ID_MAX + 1];
    char secret[FB_S3_SECRET_MAX + 1];
} fb_s3_credentials_t;

/* fb_s3_credentials_load -- PATH holds "ID:SECRET" on one line or ID and
 * SECRET on two; it must be a regular file no group or other may access
 * (fb_secret_load's rules). Both are printable ASCII without spaces; ID
 * has no ':'. 0, or -1 with the reason in err (never the secret). */
int fb_s3_credentials_load(const char *path, fb_s3_credentials_t *out, char *err, size_t errlen);
void fb_s3_credentials_wipe(fb_s3_credentials_t *c);

/* fb_s3_client_new -- check opts and make a client; NULL with the reason
 * in err (an invalid option, or no memory). */
fb_s3_t *fb_s3_client_new(const fb_s3_opts_t *opts, char *err, size_t errlen);
void fb_s3_client_free(fb_s3_t *s3);

/* fb_s3_put -- store body[0..len) as object NAME (see fb_s3_object_name),
 * replacing any object of that name. NAME is parts joined by '/', none
 * empty, "." or "..", printable ASCII, at most FB_S3_NAME_MAX bytes; any
 * other name is REFUSED without a request. content_type NULL means
 * application/octet-stream; content_encoding is NULL or "gzip". */
fb_s3_result_t fb_s3_put(fb_s3_t *s3, const char *name, const void *body, size_t len,
                         const char *content_type, const char *content_encoding, char *err,
                         size_t errlen);

/* fb_s3_create_bucket -- create the client's bucket (in its region); OK
 * when it exists and is ours already (BucketAlreadyOwnedByYou). For
 * tests and first runs: the router itself never creates buckets. */
fb_s3_result_t fb_s3_create_bucket(fb_s3_t *s3, char *err, size_t errlen);

/* fb_s3_object_name -- the name of a batch's object:
 *   [PREFIX/]KEY/YYYY-MM-DD/TOPIC-PARTITION-FIRST-LAST.jsonl[.gz]
 * the date that of the batch's first record (Unix seconds, UTC), FIRST
 * and LAST its first and last Kafka offsets, zero-padded to 20 digits so
 * that names sort as their offsets do (S3 lists names in byte order; 20
 * digits hold any offset, so the width never changes). PREFIX may be NULL
 * or empty and loses a trailing '/'; it may hold '/' but no empty, "." or
 * ".." part; KEY and TOPIC hold no '/' and are neither "." nor "..". All
 * are printable ASCII (S3 allows more; file-system and URL back ends
 * disagree about the rest).
 * Pure. Returns the name's length, or -1 (EINVAL: an argument is
 * invalid; ENAMETOOLONG: out is too small or the name exceeds
 * FB_S3_NAME_MAX). */
int fb_s3_object_name(char *out, size_t outlen, const char *prefix, const char *key,
                      int64_t first_seconds, const char *topic, int32_t partition,
                      int64_t first_offset, int64_t last_offset, bool gzip);

/* fb_s3_classify -- the result of an HTTP response: its status and the S3
 * error Code of its body ("" or NULL when it had none). */
fb_s3_result_t fb_s3_classify(long status, const char *code);

/* fb_s3_error_parse -- the Code, Message and RequestId of an S3 error
 * body (each "" when absent), cut to their buffers, XML's five entities
 * decoded, anything but printable ASCII replaced by '?'. body need not be
 * NUL-terminated and may be anything. */
void fb_s3_error_parse(const char *body, size_t len, char *code, size_t codelen, char *message,
                       size_t messagelen, char *request_id, size_t request_idlen);

#endif /* FB_ROUTER_S3_H */
