/*
 * batch.h -- the native API's fbpipe.v1.Batch read straight from the wire,
 * and its records written straight as fbpipe.v1.Record bytes.
 *
 * Reading makes no copy and no allocation: a parsed batch points into the
 * received message, so a hostile count or size cannot make memory grow.
 * Every field is bounds-checked; anything protobuf would not accept is
 * refused whole. Writing produces exactly the bytes protobuf-c packs for
 * the same Record (fields in number order, defaults left out), with
 * AccessKey and UserID from the tenant, never from the client.
 */
#ifndef FB_BATCH_H
#define FB_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"
#include "common/record.h"

typedef struct fb_view {
    const uint8_t *p;
    size_t len;
} fb_view_t;

/* One BatchRecord as sent. */
typedef struct fb_batch_rec {
    bool has_time;
    int64_t seconds;
    int32_t nanos;
    fb_view_t payload;
    uint64_t enc;  /* Cipher as sent; unknown values are kept to be refused */
    fb_view_t key_id;
} fb_batch_rec_t;

typedef struct fb_batch {
    uint64_t seq;
    uint64_t epoch; /* the agent instance's (0: an agent from before epochs) */
    fb_view_t tag, agent_id;
    fb_batch_rec_t *recs; /* the caller's array */
    size_t n;
} fb_batch_t;

/* Protobuf wire reading, shared with the router's Record reader: the next
 * field's number, wire type and, for length-delimited fields, its bytes;
 * scalars in *v. 0, or -1 when not well-formed (groups refused). */
int fb_pb_field(const uint8_t **p, const uint8_t *end, uint32_t *num, unsigned *wt, uint64_t *v,
                fb_view_t *bytes);
/* A google.protobuf.Timestamp's fields merged into *seconds, *nanos; 0 or -1. */
int fb_pb_timestamp(fb_view_t m, int64_t *seconds, int32_t *nanos);

/* The top level only, without parsing records: seq and how many records
 * (to size recs and check the limit). 0, or -1 when not well-formed. */
int fb_batch_peek(const uint8_t *p, size_t len, uint64_t *seq, size_t *n_records);

/* Parse the whole batch into out; recs holds cap entries (at least what
 * fb_batch_peek counted). 0, or -1 when not a well-formed Batch. out
 * points into p. */
int fb_batch_parse(const uint8_t *p, size_t len, fb_batch_rec_t *recs, size_t cap,
                   fb_batch_t *out);

/* Check what the batch's records share (tag, agent_id: sizes, UTF-8).
 * FB_RECORD_OK or FB_RECORD_INVALID with why. */
fb_record_err_t fb_batch_check(const fb_batch_t *b, char *why, size_t whylen);

/* Check record i of b for tenant t (strings, cipher rules, key id, Kafka's
 * size limit) and give the size of its Record written at now_ns in *size. FB_RECORD_OK, or
 * the kind of refusal with why. */
fb_record_err_t fb_batch_record_check(const fb_batch_t *b, size_t i, const fb_tenant_t *t,
                                      int64_t now_ns, size_t max_bytes, size_t *size, char *why,
                                      size_t whylen);

/* Write record i as fbpipe.v1.Record into dst (the size check gave);
 * returns the bytes written. Plaintext payloads are stored as they are,
 * ciphertexts base64-encoded. now_ns: received_at, and the time of a
 * record sent without one. */
size_t fb_batch_record_write(const fb_batch_t *b, size_t i, const fb_tenant_t *t, int64_t now_ns,
                             uint8_t *dst);

/* Standard base64 with padding of in[0..len) into out (4 * ceil(len / 3)
 * bytes, no NUL); returns the length. */
size_t fb_base64(const uint8_t *in, size_t len, char *out);

#endif /* FB_BATCH_H */
