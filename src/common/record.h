/*
 * record.h -- the Kafka record (fbpipe.v1.Record) built from what a client
 * sent: identity from the verified token and the key database, never from
 * the client; strings checked (protobuf-c does not check UTF-8); old
 * agents' nanosecond timestamps normalised; size checked against Kafka's.
 */
#ifndef FB_RECORD_H
#define FB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "common/keys.h"
#include "fbpipe.pb-c.h"

#define FB_AGENT_ID_MAX 256
#define FB_TAG_MAX 1024
/* seconds beyond this (year 5138) are nanoseconds sent by an old agent */
#define FB_TS_SECONDS_MAX INT64_C(100000000000)
/* the times a record may carry: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
 * (RFC 3339, and what the router can write) */
#define FB_TS_FIRST INT64_C(-62135596800)
#define FB_TS_LAST INT64_C(253402300799)

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
bool fb_ts_in_range(int64_t seconds, int32_t nanos);
int fb_ts_check(int64_t seconds, int32_t nanos, char *why, size_t whylen);
int fb_event_check_nul(const uint8_t *msg, size_t len, char *why, size_t whylen);
fb_record_err_t fb_record_from_event(const Api__Event *ev, const fb_tenant_t *t, int64_t now_ns,
                                     size_t max_bytes, fb_record_t *out, char *why,
                                     size_t whylen);
size_t fb_record_pack(const fb_record_t *r, uint8_t *dst);

#endif /* FB_RECORD_H */
