/*
 * test_record.c -- seed-API events into Kafka records: identity from the
 * tenant, the cipher rule, timestamp normalisation, string checks, size
 * limits; and the capped protobuf allocator.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/pballoc.h"
#include "common/record.h"

#define NOW_NS INT64_C(1764331200123456789)

static fb_enc_key_t keys[1] = {{.id = "k7"}};
static fb_tenant_t plain = {.access_key = "acme", .user_id = "u-acme", .encryption_key_text = ""};
static fb_tenant_t secret = {.access_key = "zeta", .user_id = "u-zeta",
                             .encryption_key_text = "x", .enc_keys = keys, .n_enc_keys = 1};

/* event -- an api.Event with the given access key and message. */
static Api__Event
event(const char *key, const char *msg)
{
    Api__Event ev = API__EVENT__INIT;

    ev.agent_id = "agent-1";
    ev.tag = "app";
    ev.message = (char *)msg;
    ev.userid = "forged-user";
    ev.accesskey = (char *)key;
    return ev;
}

/* roundtrip -- pack r and decode it back. */
static Fbpipe__V1__Record *
roundtrip(const fb_record_t *r)
{
    uint8_t *buf = malloc(r->size);
    Fbpipe__V1__Record *out;

    cr_assert_eq(fb_record_pack(r, buf), r->size);
    out = fbpipe__v1__record__unpack(NULL, r->size, buf);
    free(buf);
    cr_assert_not_null(out);
    return out;
}

Test(record, identity_comes_from_the_tenant)
{
    Api__Event ev = event("", "{\"k\":1}");
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    fb_record_t r;
    char why[200];
    Fbpipe__V1__Record *out;

    ts.seconds = 1764331200;
    ts.nanos = 42;
    ev.timestamp = &ts;
    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                 FB_RECORD_OK, "%s", why);
    out = roundtrip(&r);
    cr_assert_str_eq(out->accesskey, "acme", "an empty AccessKey is filled from the token");
    cr_assert_str_eq(out->userid, "u-acme", "UserID from the key database, not the client");
    cr_assert_eq(out->cipher, FBPIPE__V1__CIPHER__CIPHER_NONE);
    cr_assert_eq(out->timestamp->seconds, 1764331200);
    cr_assert_eq(out->timestamp->nanos, 42);
    cr_assert_eq(out->received_at->seconds, NOW_NS / 1000000000);
    cr_assert_str_eq(out->message, "{\"k\":1}");
    fbpipe__v1__record__free_unpacked(out, NULL);
}

Test(record, another_tenants_key_is_refused)
{
    Api__Event ev = event("zeta", "m");
    fb_record_t r;
    char why[200];

    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                 FB_RECORD_WRONG_KEY);
    cr_assert_str_eq(why, "event for access key \"zeta\" on a token for \"acme\"");
}

Test(record, cipher_marked_when_the_tenant_has_a_key)
{
    Api__Event ev = event("zeta", "00ff");
    fb_record_t r;
    char why[200];
    Fbpipe__V1__Record *out;

    cr_assert_eq(fb_record_from_event(&ev, &secret, NOW_NS, 1000000, &r, why, sizeof(why)),
                 FB_RECORD_OK);
    out = roundtrip(&r);
    cr_assert_eq(out->cipher, FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX);
    cr_assert_str_eq(out->key_id, "k7");
    fbpipe__v1__record__free_unpacked(out, NULL);
}

Test(record, nanoseconds_in_seconds_are_normalised)
{
    int64_t s = INT64_C(1700000000123456789);
    int32_t n = 0;

    fb_ts_normalize(&s, &n);
    cr_assert_eq(s, 1700000000);
    cr_assert_eq(n, 123456789);
    s = 1700000000;
    n = 5;
    fb_ts_normalize(&s, &n);
    cr_assert_eq(s, 1700000000, "real seconds are kept");
    cr_assert_eq(n, 5);
    n = -1;
    fb_ts_normalize(&s, &n);
    cr_assert_eq(n, 0, "impossible nanos dropped");
}

Test(record, missing_timestamp_is_the_arrival_time)
{
    Api__Event ev = event("", "m");
    fb_record_t r;
    char why[200];

    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                 FB_RECORD_OK);
    cr_assert_eq(r.ts.seconds, NOW_NS / 1000000000);
    cr_assert_eq(r.ts.nanos, NOW_NS % 1000000000);
}

Test(record, strings_are_checked)
{
    static const char *bad_utf8[] = {"\xc3\x28", "\xe0\x80\x80", "\xed\xa0\x80", "\xf5\x80\x80\x80",
                                     "\xc0\xaf", "abc\xe2\x82", "\xff"};
    char why[200];
    fb_record_t r;
    char big[1100];

    for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
        Api__Event ev = event("", "m");
        ev.tag = (char *)bad_utf8[i];
        cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                     FB_RECORD_INVALID, "case %zu", i);
        cr_assert_str_eq(why, "tag: not valid UTF-8");
    }
    cr_assert(fb_utf8_valid("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12));
    cr_assert_not(fb_utf8_valid("a\0b", 3), "NUL inside");

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    {
        Api__Event ev = event("", "m");
        ev.tag = big;
        cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                     FB_RECORD_INVALID);
        cr_assert_str_eq(why, "tag: 1099 bytes, at most 1024");
    }
}

Test(record, larger_than_kafka_accepts_is_refused_at_ingest)
{
    char *msg = malloc(2000);
    Api__Event ev;
    fb_record_t r;
    char why[200];

    memset(msg, 'x', 1999);
    msg[1999] = '\0';
    ev = event("", msg);
    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 2100, &r, why, sizeof(why)),
                 FB_RECORD_OK, "%s", why);
    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 2000, &r, why, sizeof(why)),
                 FB_RECORD_TOO_LARGE);
    cr_assert(strstr(why, "larger than the largest record Kafka takes (2000)"), "%s", why);
    free(msg);
}

Test(pballoc, caps_what_a_message_may_unpack_into)
{
    Fbpipe__V1__Batch b = FBPIPE__V1__BATCH__INIT;
    Fbpipe__V1__BatchRecord rec = FBPIPE__V1__BATCH_RECORD__INIT;
    Fbpipe__V1__BatchRecord **many = calloc(20000, sizeof(*many));
    Fbpipe__V1__Batch *out;
    fb_pballoc_t a;
    uint8_t *buf;
    size_t len;

    /* 20,000 empty records: 40 KB on the wire, far more once unpacked */
    for (int i = 0; i < 20000; i++)
        many[i] = &rec;
    b.n_records = 20000;
    b.records = many;
    len = fbpipe__v1__batch__get_packed_size(&b);
    buf = malloc(len);
    fbpipe__v1__batch__pack(&b, buf);

    fb_pballoc_init(&a, 64 * 1024);
    cr_assert_null(fbpipe__v1__batch__unpack(&a.base, len, buf), "over the budget");
    cr_assert(a.exceeded);
    cr_assert_eq(a.used, 0, "everything allocated so far was given back");

    fb_pballoc_init(&a, 64 * 1024 * 1024);
    out = fbpipe__v1__batch__unpack(&a.base, len, buf);
    cr_assert_not_null(out);
    cr_assert_eq(out->n_records, 20000);
    cr_assert_gt(a.used, len);
    fbpipe__v1__batch__free_unpacked(out, &a.base);
    cr_assert_eq(a.used, 0);
    free(buf);
    free(many);
}

Test(utf8, fast_path_agrees_with_the_careful_way)
{
    char buf[64];

    /* long ASCII runs, with the bad byte at every offset of the word */
    for (size_t at = 0; at < 39; at++) {
        memset(buf, 'a', sizeof(buf));
        cr_assert(fb_utf8_valid(buf, 40));
        buf[at] = '\0';
        cr_assert_not(fb_utf8_valid(buf, 40), "NUL at %zu", at);
        buf[at] = (char)0xff;
        cr_assert_not(fb_utf8_valid(buf, 40), "0xff at %zu", at);
        buf[at] = (char)0xc3;
        buf[at + 1] = (char)0xa9;
        cr_assert(fb_utf8_valid(buf, 40), "é at %zu", at);
        buf[at + 1] = '(';
        cr_assert_not(fb_utf8_valid(buf, 40), "cut sequence at %zu", at);
    }
    /* a sequence cut by the end of the string after an ASCII run */
    memset(buf, 'a', 16);
    buf[16] = (char)0xe2;
    buf[17] = (char)0x82;
    cr_assert_not(fb_utf8_valid(buf, 18));
    cr_assert(fb_utf8_valid(buf, 16));
}

/* what is acknowledged is what will be written (#8) */
Test(record, times_the_router_cannot_write_are_refused)
{
    static const int64_t bad[] = {INT64_C(-62135596801), INT64_C(-62135596800) - 86400,
                                  INT64_C(-9223372036854775807)};
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Api__Event ev = event("", "{}");
    fb_record_t r;
    char why[200];

    ev.timestamp = &ts;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ts.seconds = bad[i];
        cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                     FB_RECORD_INVALID, "%lld accepted", (long long)bad[i]);
        cr_assert(strstr(why, "timestamp:") && strstr(why, "out of range"), "%s", why);
    }
    ts.seconds = INT64_C(-62135596800);
    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                 FB_RECORD_OK, "%s", why);
    ts.seconds = INT64_C(253402300799);
    ts.nanos = 999999999;
    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                 FB_RECORD_OK, "%s", why);
    cr_assert(fb_ts_in_range(INT64_C(-62135596800), 0));
    cr_assert(fb_ts_in_range(INT64_C(253402300799), 999999999));
    cr_assert_not(fb_ts_in_range(INT64_C(253402300800), 0), "year 10000");
    cr_assert_not(fb_ts_in_range(INT64_C(-62135596801), 0));
    cr_assert_not(fb_ts_in_range(0, 1000000000));
}

Test(record, nul_bytes_on_the_wire_are_refused_by_field)
{
    /* api.Event{message: "before\0after"} and {tag: "t\0u"}, by hand:
     * protobuf-c packs C strings and would cut them */
    static const uint8_t in_message[] = {0x22, 12, 'b', 'e', 'f', 'o', 'r', 'e', 0,
                                         'a',  'f', 't', 'e', 'r'};
    static const uint8_t in_tag[] = {0x12, 2, 'p', 'y', 0x1a, 3, 't', 0, 'u'};
    static const uint8_t clean[] = {0x12, 2, 'p', 'y', 0x22, 2, '{', '}'};
    Api__Event *ev;
    char why[200];

    ev = api__event__unpack(NULL, sizeof(in_message), in_message);
    cr_assert_not_null(ev);
    cr_assert_str_eq(ev->message, "before", "protobuf-c cuts at the NUL (why the check exists)");
    api__event__free_unpacked(ev, NULL);
    cr_assert_eq(fb_event_check_nul(in_message, sizeof(in_message), why, sizeof(why)), -1);
    cr_assert_str_eq(why, "message: contains a NUL byte");
    cr_assert_eq(fb_event_check_nul(in_tag, sizeof(in_tag), why, sizeof(why)), -1);
    cr_assert_str_eq(why, "tag: contains a NUL byte");
    cr_assert_eq(fb_event_check_nul(clean, sizeof(clean), why, sizeof(why)), 0);
}

/* found by fuzz_line (#10): the router checks fields a record leaves out
 * as (NULL, 0); arithmetic on a null pointer is undefined even by zero */
Test(utf8, an_empty_text_needs_no_buffer)
{
    cr_assert(fb_utf8_valid(NULL, 0));
    cr_assert(fb_utf8_valid("", 0));
}

/* found by fuzz_event (#10): the reason quoted the client's access key
 * as sent, control bytes and all, into a log line and a gRPC status */
Test(record, another_tenants_key_is_shown_escaped)
{
    Api__Event ev = event("a\x1b[2J\"b\r\n", "m");
    fb_record_t r;
    char why[200];

    cr_assert_eq(fb_record_from_event(&ev, &plain, NOW_NS, 1000000, &r, why, sizeof(why)),
                 FB_RECORD_WRONG_KEY);
    cr_assert_str_eq(why, "event for access key \"a\\x1b[2J\\x22b\\x0d\\x0a\" on a token for "
                          "\"acme\"");
}
