/*
 * fuzz_chunk.c -- libFuzzer target: the output plugin's Fluent Bit chunk
 * decoder (plugin/chunk.c, fb_chunk_events) on msgpack bytes as Fluent Bit
 * hands them to the plugin, with a body limit small enough to be reached.
 *
 * Oracles besides the sanitizers: each event's body is one line of JSON
 * (jansson reads it whole; only numbers beyond what jansson holds and NUL
 * in a key, which jansson cannot hold, are let through), within the
 * limit, with a time in range; the statistics count the events given.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "plugin/chunk.h"

#define MAX_JSON 4096

typedef struct seen {
    size_t events;
} seen_t;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int
check_event(const fb_chunk_event_t *ev, void *arg)
{
    seen_t *s = arg;
    json_error_t jerr;
    json_t *j;

    s->events++;
    FUZZ_CHECK(ev->len > 0 && ev->len <= MAX_JSON, "body of %zu bytes", ev->len);
    FUZZ_CHECK(memchr(ev->json, '\n', ev->len) == NULL, "body on more than one line");
    FUZZ_CHECK(ev->seconds >= 0 && ev->nanos >= 0 && ev->nanos <= 999999999, "time %lld.%09d",
               (long long)ev->seconds, (int)ev->nanos);
    j = json_loadb(ev->json, ev->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    FUZZ_CHECK(j != NULL || json_error_code(&jerr) == json_error_numeric_overflow ||
                   json_error_code(&jerr) == json_error_null_byte_in_key,
               "body is not JSON (%s): %.*s", jerr.text, (int)ev->len, ev->json);
    json_decref(j);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_chunk_stats_t st;
    seen_t seen = {0};
    int rc;

    rc = fb_chunk_events(data, size, MAX_JSON, check_event, &seen, &st);
    FUZZ_CHECK(rc == 0, "fb_chunk_events returned %d", rc);
    FUZZ_CHECK(st.events == seen.events, "%zu events counted, %zu given", st.events, seen.events);
    FUZZ_CHECK(st.bad_bytes <= size, "%zu bad bytes of %zu", st.bad_bytes, size);
    return 0;
}
