/*
 * chunk.h -- the records of a Fluent Bit chunk, for the output plugin:
 * concatenated msgpack values, each [[EventTime, metadata], body] (Fluent
 * Bit 2 and later) or [time, body] (older), time an EventTime (msgpack
 * extension 0: seconds and nanoseconds, big endian), an integer or a
 * float. Group markers (seconds -1 or -2) are skipped.
 *
 * Each body is rendered as one line of UTF-8 JSON: strings that are not
 * UTF-8 get U+FFFD for each bad byte, binary and extension values become
 * base64 strings, keys that are not strings become the string of their
 * JSON text, floats that are not finite become null. A chunk is checked
 * before msgpack-c reads it: a container may not claim more elements than
 * the bytes left, nor nest deeper than FB_CHUNK_MAX_DEPTH (an empty array
 * or map counts as a level), so a hostile header cannot make memory grow.
 * A record that is not [header, body], is nested too deep, that msgpack-c
 * will not read or that renders larger than the limit is counted as
 * refused, never sent, and the walk goes on; what follows a malformed or
 * truncated record is counted as lost bytes. Never logs.
 */
#ifndef FB_PLUGIN_CHUNK_H
#define FB_PLUGIN_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define FB_CHUNK_MAX_DEPTH 32 /* nested arrays and maps in a record: msgpack-c's own bound */

typedef struct fb_chunk_event {
    int64_t seconds;
    int32_t nanos;
    const char *json; /* the body, valid until the callback returns */
    size_t len;
} fb_chunk_event_t;

typedef struct fb_chunk_stats {
    size_t events;       /* given to the callback */
    size_t groups;       /* group markers skipped */
    size_t refused;      /* records not sent: not [header, body], too deep, unreadable or too large */
    size_t bad_bytes;    /* bytes after a malformed or truncated record */
} fb_chunk_stats_t;

/* Called for each event in order; a non-zero return stops the walk and
 * is returned by fb_chunk_events. */
typedef int (*fb_chunk_cb_t)(const fb_chunk_event_t *ev, void *arg);

/* Walk data[0..size): each event rendered (at most max_json bytes) to cb.
 * Returns 0, the callback's non-zero value, or -1 when out of memory
 * rendering a body. */
int fb_chunk_events(const void *data, size_t size, size_t max_json, fb_chunk_cb_t cb, void *arg,
                    fb_chunk_stats_t *st);

#endif /* FB_PLUGIN_CHUNK_H */
