/*
 * router_line.h -- one Kafka record (fbpipe.v1.Record) into the JSON line a
 * router writes to <router.dir>/<access key>.log: time (RFC 3339 UTC with
 * nanoseconds), tag, agent_id, user_id, access_key and message (the record
 * as a JSON value when it parses as JSON, a string otherwise), decrypted
 * when asked with the key its cipher and key_id name.
 *
 * A record without a Kafka key is the Go version's (an api.Event, whose
 * fields are Record's 1-6): refused unless FB_LINE_F_LEGACY
 * (router.accept_legacy_records), and then named after the AccessKey the
 * record itself carries, which must be a tenant of the key database. Its
 * line says "unauthenticated": true, for no token vouched for that access
 * key or user id: the client asserted them, and the file name alone could
 * not tell such a line from one fbpipe's ingester wrote.
 *
 * Everything in a record is hostile: a record that cannot be decoded,
 * decrypted or named safely is refused with its reason (for the dead-letter
 * file), never written half and never named after an unsafe key. Never
 * logs; never keeps plaintext beyond the line it returns.
 */
#ifndef FB_ROUTER_LINE_H
#define FB_ROUTER_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"

typedef enum fb_line_err {
    FB_LINE_OK = 0,
    FB_LINE_UNDECODABLE,  /* not a Record, or a field that cannot be shown */
    FB_LINE_BAD_KEY,      /* the access key is not a safe file name, or differs; without
                             a Kafka key: names no enabled tenant of the key database */
    FB_LINE_UNDECRYPTABLE, /* no such key, or the ciphertext does not authenticate */
    FB_LINE_LEGACY_OFF    /* no Kafka key, and FB_LINE_F_LEGACY not given */
} fb_line_err_t;

/* fb_line_build's flags */
#define FB_LINE_F_DECRYPT (1u << 0) /* decrypt with the key database's keys (router.decrypt) */
#define FB_LINE_F_LEGACY (1u << 1)  /* read records without a Kafka key as the Go version's
                                       (router.accept_legacy_records) */
#define FB_LINE_F_ID (1u << 2)      /* a record with an identity (a non-zero agent_epoch)
                                       says it in its line, right after "time":
                                       "fbpipe_id":"<epoch, 16 hex digits>-<batch_seq>-
                                       <agent_seq>" (router.dedupe) */

typedef struct fb_line {
    char access_key[FB_ACCESS_KEY_MAX + 1]; /* the file's name, checked */
    char *text;                             /* the JSON object and "\n" */
    size_t len;
    bool unauthenticated; /* a record without a Kafka key: its access key and user id are
                             the record's own claim, and the line says so */
    int64_t time_s;       /* the record's own time (its line's "time"), Unix seconds */
    bool has_id;          /* a record with a key and a non-zero agent_epoch: the three
                             below name it (set with or without FB_LINE_F_ID) */
    uint64_t epoch, seq, index; /* agent_epoch, batch_seq, agent_seq */
} fb_line_t;

/* A line writer's reusable buffers (the line, a plaintext); one per thread. */
typedef struct fb_liner fb_liner_t;
fb_liner_t *fb_liner_new(void);
void fb_liner_free(fb_liner_t *l);

/* The line for record value[0..len) stored under Kafka key key[0..key_len),
 * key NULL for a record without one. flags: FB_LINE_F_*. db may be NULL
 * when flags ask for neither decryption nor legacy records. FB_LINE_OK and
 * *out, its text in l's buffer until the next call; or the kind of refusal
 * with why (escaped, for a log or the dead-letter file). */
fb_line_err_t fb_line_build(fb_liner_t *l, const uint8_t *value, size_t len, const char *key,
                            size_t key_len, const fb_keydb_t *db, unsigned flags, fb_line_t *out,
                            char *why, size_t whylen);

/* The same with out->text of its own (free()). */
fb_line_err_t fb_line_from_record(const uint8_t *value, size_t len, const char *key,
                                  size_t key_len, const fb_keydb_t *db, unsigned flags,
                                  fb_line_t *out, char *why, size_t whylen);

/* RFC 3339 UTC with nanoseconds ("2026-11-29T01:02:03.000000042Z") into
 * out (at least 32 bytes); -1 when the year is outside 0001-9999. */
int fb_line_time(int64_t seconds, int32_t nanos, char *out, size_t size);

#endif /* FB_ROUTER_LINE_H */
