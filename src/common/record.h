/*
 * record.h -- the Kafka record (fbpipe.v1.Record) built from what a client
 * sent: identity from the verified token and the key database, never from
 * the client; strings checked (protobuf-c does not check UTF-8); old
 * agents' nanosecond timestamps normalised; size checked against Kafka's.
 */
#ifndef FB_RECORD_H
#define FB_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "common/keys.h"
#include "fbpipe.pb-c.h"

#define FB_AGENT_ID_MAX 256
#define FB_TAG_MAX 1024
/* seconds beyond this (year 5138) are nanoseconds sent by an old agent */
#define FB_TS_SECONDS_MAX INT64_C(100000000000)

/* A record ready to pack: the message and the storage it points into. */
typedef struct fb_record {
    Fbpipe__V1__Record rec;
    Google__Protobuf__Timestamp ts;
    Google__Protobuf__Timestamp received;
    size_t size; /* packed size */
} fb_record_t;

typedef enum fb_record_err {
    FB_RECORD_OK = 0,
    FB_RECORD_INVALID,    /* INVALID_ARGUMENT: the client's data is wrong */
    FB_RECORD_WRONG_KEY,  /* PERMISSION_DENIED: another tenant's access key */
    FB_RECORD_TOO_LARGE,  /* INVALID_ARGUMENT: larger than Kafka accepts */
} fb_record_err_t;

int fb_utf8_valid(const char *s, size_t len);
void fb_ts_normalize(int64_t *seconds, int32_t *nanos);
fb_record_err_t fb_record_from_event(const Api__Event *ev, const fb_tenant_t *t, int64_t now_ns,
                                     size_t max_bytes, fb_record_t *out, char *why,
                                     size_t whylen);
/* The record for BatchRecord i of batch b (native API) of tenant t
 * (agent_seq = i).
 * Plaintext payloads must be UTF-8; XChaCha20-Poly1305 payloads (nonce ||
 * ct || tag, key_id one of the tenant's keys) are stored base64-encoded in
 * message. scratch (at least fb_record_scratch_size(r) bytes) holds the
 * message the record points into. */
size_t fb_record_scratch_size(const Fbpipe__V1__BatchRecord *r);
fb_record_err_t fb_record_from_batch(const Fbpipe__V1__Batch *b, size_t i, const fb_tenant_t *t, int64_t now_ns, size_t max_bytes,
                                     char *scratch, fb_record_t *out, char *why, size_t whylen);
/* Walk the top level of a packed fbpipe.v1.Batch without unpacking it:
 * its seq and how many records it holds. 0, or -1 when it is not
 * well-formed protobuf at the top level. */
int fb_batch_peek(const uint8_t *p, size_t len, uint64_t *seq, size_t *n_records);

/* The allocation budget to unpack a Batch of len bytes and n records. */
size_t fb_batch_unpack_budget(size_t len, size_t n_records);

size_t fb_record_pack(const fb_record_t *r, uint8_t *dst);

#endif /* FB_RECORD_H */
