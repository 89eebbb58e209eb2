/*
 * test_chunk.c -- Fluent Bit chunks into events: both record formats,
 * group markers skipped, bodies rendered as JSON (keys that are not
 * strings, binary values, bytes that are not UTF-8, floats), and hostile
 * chunks: cut at every byte, a container claiming 4 billion elements,
 * nesting past the bound (an empty array or map at the end too), a body
 * over the size limit.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <msgpack.h>

#include "plugin/chunk.h"

typedef struct seen {
    int n;
    int64_t sec[16];
    int32_t nsec[16];
    char *json[16];
} seen_t;

static int
collect(const fb_chunk_event_t *ev, void *arg)
{
    seen_t *s = arg;

    cr_assert_lt(s->n, 16);
    s->sec[s->n] = ev->seconds;
    s->nsec[s->n] = ev->nanos;
    s->json[s->n] = strndup(ev->json, ev->len);
    s->n++;
    return 0;
}

static void
seen_free(seen_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->json[i]);
    memset(s, 0, sizeof(*s));
}

static void
event_time(msgpack_packer *pk, uint32_t sec, uint32_t nsec)
{
    char b[8] = {(char)(sec >> 24), (char)(sec >> 16), (char)(sec >> 8), (char)sec,
                 (char)(nsec >> 24), (char)(nsec >> 16), (char)(nsec >> 8), (char)nsec};
    msgpack_pack_ext(pk, 8, 0);
    msgpack_pack_ext_body(pk, b, 8);
}

static void
str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* three records: v2 with EventTime, legacy integer, legacy float */
static void
three(msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    event_time(&pk, 1700000000, 5);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 2);
    str(&pk, "log");
    str(&pk, "hi \"there\"\n");
    str(&pk, "n");
    msgpack_pack_int(&pk, -3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, 1700000001);
    msgpack_pack_map(&pk, 1);
    str(&pk, "a");
    msgpack_pack_true(&pk);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_double(&pk, 1700000002.5);
    msgpack_pack_map(&pk, 1);
    str(&pk, "f");
    msgpack_pack_double(&pk, 2.0);
}

Test(chunk, both_formats_in_order)
{
    msgpack_sbuffer sb;
    fb_chunk_stats_t st;
    seen_t s = {0};

    msgpack_sbuffer_init(&sb);
    three(&sb);
    cr_assert_eq(fb_chunk_events(sb.data, sb.size, 1 << 20, collect, &s, &st), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(st.events, 3);
    cr_assert_eq(s.sec[0], 1700000000);
    cr_assert_eq(s.nsec[0], 5);
    cr_assert_str_eq(s.json[0], "{\"log\":\"hi \\\"there\\\"\\n\",\"n\":-3}");
    cr_assert_eq(s.sec[1], 1700000001);
    cr_assert_str_eq(s.json[1], "{\"a\":true}");
    cr_assert_eq(s.sec[2], 1700000002);
    cr_assert_eq(s.nsec[2], 500000000);
    cr_assert_str_eq(s.json[2], "{\"f\":2.0}");
    seen_free(&s);
    msgpack_sbuffer_destroy(&sb);
}

Test(chunk, group_markers_are_skipped)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    fb_chunk_stats_t st;
    seen_t s = {0};

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, -1);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    event_time(&pk, 0xfffffffe, 0);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 0);
    three(&sb);
    cr_assert_eq(fb_chunk_events(sb.data, sb.size, 1 << 20, collect, &s, &st), 0);
    cr_assert_eq(st.groups, 2);
    cr_assert_eq(s.n, 3);
    seen_free(&s);
    msgpack_sbuffer_destroy(&sb);
}

Test(chunk, odd_keys_and_values_render_as_json)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    fb_chunk_stats_t st;
    seen_t s = {0};
    json_t *j;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_int(&pk, 7); /* an integer key */
    str(&pk, "seven");
    msgpack_pack_nil(&pk); /* a nil key */
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "\x00\xff\x10", 3);
    str(&pk, "bad");
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "a\xffz", 3);
    str(&pk, "nan");
    msgpack_pack_double(&pk, 0.0 / 0.0);
    msgpack_pack_array(&pk, 1); /* an array key */
    msgpack_pack_true(&pk);
    msgpack_pack_float(&pk, 0.5f);
    cr_assert_eq(fb_chunk_events(sb.data, sb.size, 1 << 20, collect, &s, &st), 0);
    cr_assert_eq(s.n, 1);
    j = json_loads(s.json[0], 0, NULL);
    cr_assert_not_null(j, "%s", s.json[0]);
    cr_assert_str_eq(json_string_value(json_object_get(j, "7")), "seven");
    cr_assert_str_eq(json_string_value(json_object_get(j, "null")), "AP8Q");
    cr_assert_str_eq(json_string_value(json_object_get(j, "bad")), "a\xef\xbf\xbdz");
    cr_assert(json_is_null(json_object_get(j, "nan")));
    cr_assert_eq(json_real_value(json_object_get(j, "[true]")), 0.5);
    json_decref(j);
    seen_free(&s);
    msgpack_sbuffer_destroy(&sb);
}

Test(chunk, every_cut_of_a_chunk_is_safe)
{
    msgpack_sbuffer sb;
    fb_chunk_stats_t st;
    seen_t s = {0};
    size_t ends[3];

    /* where each of the three records ends */
    msgpack_sbuffer_init(&sb);
    three(&sb);
    for (size_t n = 0, k = 0; n <= sb.size && k < 3; n++) {
        cr_assert_eq(fb_chunk_events(sb.data, n, 1 << 20, collect, &s, &st), 0);
        if ((size_t)s.n > k)
            ends[k++] = n;
        seen_free(&s);
    }
    for (size_t n = 0; n <= sb.size; n++) {
        size_t whole = 0, last = 0;
        for (int k = 0; k < 3; k++)
            if (ends[k] <= n) {
                whole++;
                last = ends[k];
            }
        cr_assert_eq(fb_chunk_events(sb.data, n, 1 << 20, collect, &s, &st), 0);
        cr_assert_eq((size_t)s.n, whole, "cut at %zu", n);
        cr_assert_eq(st.bad_bytes, n - last, "cut at %zu", n);
        seen_free(&s);
    }
    cr_assert_eq(ends[2], sb.size);
    msgpack_sbuffer_destroy(&sb);
}

Test(chunk, a_huge_claim_is_refused_without_allocating)
{
    static const char arr[] = "\xdd\xff\xff\xff\xff\x01\x02";
    static const char map[] = "\x92\x01\xdf\xff\xff\xff\xff";
    static const char never[] = "\xc1";
    fb_chunk_stats_t st;
    seen_t s = {0};

    cr_assert_eq(fb_chunk_events(arr, sizeof(arr) - 1, 1 << 20, collect, &s, &st), 0);
    cr_assert_eq(st.bad_bytes, sizeof(arr) - 1);
    cr_assert_eq(fb_chunk_events(map, sizeof(map) - 1, 1 << 20, collect, &s, &st), 0);
    cr_assert_eq(st.bad_bytes, sizeof(map) - 1);
    cr_assert_eq(fb_chunk_events(never, 1, 1 << 20, collect, &s, &st), 0);
    cr_assert_eq(st.bad_bytes, 1);
    cr_assert_eq(s.n, 0);
}

/* record_of -- the start of [1, {key: ...}] into sb: its one value follows */
static void
record_of(msgpack_packer *pk, msgpack_sbuffer *sb, const char *key)
{
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint32(pk, 1);
    msgpack_pack_map(pk, 1);
    str(pk, key);
}

/* nested -- [1, {"d": [[[...]]]}] with depth arrays in the body */
static void
nested(msgpack_sbuffer *sb, int depth)
{
    msgpack_packer pk;

    record_of(&pk, sb, "d");
    for (int i = 0; i < depth; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
}

Test(chunk, nesting_past_the_bound_is_refused_and_the_walk_goes_on)
{
    msgpack_sbuffer sb;
    fb_chunk_stats_t st;
    seen_t s = {0};

    msgpack_sbuffer_init(&sb);
    nested(&sb, FB_CHUNK_MAX_DEPTH - 2); /* with the record and the body: at the bound */
    nested(&sb, 100000);
    three(&sb);
    cr_assert_eq(fb_chunk_events(sb.data, sb.size, 1 << 20, collect, &s, &st), 0);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(s.n, 4, "the one at the bound and the three after the deep one");
    seen_free(&s);
    msgpack_sbuffer_destroy(&sb);
}

/* good -- [1, {"ok": i}] */
static void
good(msgpack_sbuffer *sb, int i)
{
    msgpack_packer pk;

    record_of(&pk, sb, "ok");
    msgpack_pack_int(&pk, i);
}

/* nested_empty -- [1, {"d": [[...[E]...]]}]: levels containers in all,
 * the record and the body among them, the last an empty array or map E */
static void
nested_empty(msgpack_sbuffer *sb, int levels, bool map)
{
    msgpack_packer pk;

    record_of(&pk, sb, "d");
    for (int i = 0; i < levels - 3; i++)
        msgpack_pack_array(&pk, 1);
    map ? msgpack_pack_map(&pk, 0) : msgpack_pack_array(&pk, 0);
}

Test(chunk, an_empty_container_past_the_bound_is_refused_not_out_of_memory)
{
    for (int map = 0; map <= 1; map++) {
        msgpack_sbuffer sb;
        fb_chunk_stats_t st;
        seen_t s = {0};

        msgpack_sbuffer_init(&sb);
        good(&sb, 1);
        nested_empty(&sb, FB_CHUNK_MAX_DEPTH + 1, map); /* msgpack-c will not open it */
        good(&sb, 2);
        cr_assert_eq(fb_chunk_events(sb.data, sb.size, 1 << 20, collect, &s, &st), 0,
                     "an empty %s one level too deep is not out of memory", map ? "map" : "array");
        cr_assert_eq(s.n, 2);
        cr_assert_str_eq(s.json[0], "{\"ok\":1}");
        cr_assert_str_eq(s.json[1], "{\"ok\":2}");
        cr_assert_eq(st.refused, 1);
        cr_assert_eq(st.bad_bytes, 0);
        seen_free(&s);
        /* at the bound, it is sent */
        msgpack_sbuffer_clear(&sb);
        nested_empty(&sb, FB_CHUNK_MAX_DEPTH, map);
        cr_assert_eq(fb_chunk_events(sb.data, sb.size, 1 << 20, collect, &s, &st), 0);
        cr_assert_eq(s.n, 1);
        cr_assert_eq(st.refused, 0);
        cr_assert_not_null(strstr(s.json[0], map ? "[{}]" : "[[]]"), "%s", s.json[0]);
        seen_free(&s);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(chunk, a_body_over_the_limit_is_refused)
{
    msgpack_sbuffer sb;
    fb_chunk_stats_t st;
    seen_t s = {0};

    msgpack_sbuffer_init(&sb);
    three(&sb);
    cr_assert_eq(fb_chunk_events(sb.data, sb.size, 12, collect, &s, &st), 0);
    cr_assert_eq(s.n, 2, "{\"a\":true} and {\"f\":2.0} fit in 12 bytes");
    cr_assert_eq(st.refused, 1);
    seen_free(&s);
    msgpack_sbuffer_destroy(&sb);
}

static int
stop_at_two(const fb_chunk_event_t *ev, void *arg)
{
    (void)ev;
    return ++*(int *)arg == 2 ? 7 : 0;
}

Test(chunk, the_callback_can_stop_the_walk)
{
    msgpack_sbuffer sb;
    fb_chunk_stats_t st;
    int n = 0;

    msgpack_sbuffer_init(&sb);
    three(&sb);
    cr_assert_eq(fb_chunk_events(sb.data, sb.size, 1 << 20, stop_at_two, &n, &st), 7);
    cr_assert_eq(n, 2);
    msgpack_sbuffer_destroy(&sb);
}
