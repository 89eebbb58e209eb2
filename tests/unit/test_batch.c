/*
 * test_batch.c -- the native API's batches read from the wire and records
 * written to it, checked against protobuf-c on the same messages: same
 * fields read, same bytes written, the same inputs refused; and the rules
 * a record must follow (UTF-8, cipher, key id, sizes).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common/batch.h"
#include "fbpipe.pb-c.h"

#define NOW_NS INT64_C(1764331200123456789)

static fb_enc_key_t keys[1] = {{.id = "k7"}};
static fb_tenant_t plain = {.access_key = "acme", .user_id = "u-acme", .encryption_key_text = ""};
static fb_tenant_t secret = {.access_key = "zeta", .user_id = "", .encryption_key_text = "x",
                             .enc_keys = keys, .n_enc_keys = 1};

static uint64_t next_epoch; /* the Batch.epoch packed() sets */

/* packed -- a Batch of n records (payload p, cipher enc, key id kid,
 * time when with_time) packed by protobuf-c. */
static uint8_t *
packed(uint64_t seq, const char *tag, size_t n, const char *p, size_t plen, int enc,
       const char *kid, int with_time, int64_t sec, size_t *len)
{
    Fbpipe__V1__Batch b = FBPIPE__V1__BATCH__INIT;
    Fbpipe__V1__BatchRecord r = FBPIPE__V1__BATCH_RECORD__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Fbpipe__V1__BatchRecord **recs = calloc(n ? n : 1, sizeof(*recs));
    uint8_t *buf;

    ts.seconds = sec;
    ts.nanos = 42;
    r.time = with_time ? &ts : NULL;
    r.payload.data = (uint8_t *)p;
    r.payload.len = plen;
    r.enc = (Fbpipe__V1__Cipher)enc;
    r.key_id = (char *)kid;
    for (size_t i = 0; i < n; i++)
        recs[i] = &r;
    b.seq = seq;
    b.epoch = next_epoch;
    b.tag = (char *)tag;
    b.agent_id = "agent-1";
    b.records = recs;
    b.n_records = n;
    *len = fbpipe__v1__batch__get_packed_size(&b);
    buf = malloc(*len ? *len : 1);
    fbpipe__v1__batch__pack(&b, buf);
    free(recs);
    return buf;
}

/* parse -- fb_batch_parse into a fresh array (the caller frees b->recs
 * when 0 is returned). */
static int
parse(const uint8_t *p, size_t len, fb_batch_t *b)
{
    uint64_t seq;
    size_t n;

    fb_batch_rec_t *recs;

    if (fb_batch_peek(p, len, &seq, &n) < 0)
        return -1;
    recs = calloc(n ? n : 1, sizeof(*recs));
    if (fb_batch_parse(p, len, recs, n, b) < 0) {
        free(recs);
        return -1;
    }
    return 0;
}

Test(batch, peek_counts_records_and_reads_seq)
{
    size_t len, n;
    uint64_t seq;
    uint8_t *p = packed(123456789012ULL, "app", 777, "{}", 2, 0, "", 0, 0, &len);

    cr_assert_eq(fb_batch_peek(p, len, &seq, &n), 0);
    cr_assert_eq(seq, 123456789012ULL);
    cr_assert_eq(n, 777);
    free(p);
}

Test(batch, refuses_what_is_not_protobuf)
{
    static const uint8_t cut_len[] = {0x22, 0x05, 'a'};
    static const uint8_t cut_varint[] = {0x08, 0xff, 0xff};
    static const uint8_t field_zero[] = {0x00, 0x01};
    static const uint8_t group[] = {0x23, 0x24};
    static const uint8_t eleven[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t seq_as_bytes[] = {0x0a, 0x00};       /* field 1 length-delimited */
    static const uint8_t record_as_varint[] = {0x20, 0x01};   /* field 4 varint */
    static const uint8_t bad_inner[] = {0x22, 0x02, 0x12, 0x05}; /* payload cut inside */
    const struct { const uint8_t *p; size_t len; } cases[] = {
        {cut_len, sizeof(cut_len)}, {cut_varint, sizeof(cut_varint)},
        {field_zero, sizeof(field_zero)}, {group, sizeof(group)}, {eleven, sizeof(eleven)},
        {seq_as_bytes, sizeof(seq_as_bytes)}, {record_as_varint, sizeof(record_as_varint)},
        {bad_inner, sizeof(bad_inner)},
    };
    fb_batch_t b;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ours = parse(cases[i].p, cases[i].len, &b);
        Fbpipe__V1__Batch *theirs = fbpipe__v1__batch__unpack(NULL, cases[i].len, cases[i].p);
        if (ours == 0)
            free(b.recs);
        cr_assert_eq(ours, -1, "case %zu accepted", i);
        cr_assert_null(theirs, "case %zu: protobuf-c accepts it", i);
    }
}

Test(batch, every_truncation_is_judged_as_protobuf_c_judges_it)
{
    size_t len;
    uint8_t *p = packed(9, "app", 3, "{\"a\":1}", 7, 0, "", 1, 1764331200, &len);
    fb_batch_t b;

    for (size_t cut = 0; cut <= len; cut++) {
        Fbpipe__V1__Batch *theirs = fbpipe__v1__batch__unpack(NULL, cut, p);
        int ours = parse(p, cut, &b);
        cr_assert_eq(ours == 0, theirs != NULL, "cut at %zu of %zu", cut, len);
        if (ours == 0) {
            cr_assert_eq(b.n, theirs->n_records, "records at cut %zu", cut);
            free(b.recs);
        }
        if (theirs)
            fbpipe__v1__batch__free_unpacked(theirs, NULL);
    }
    free(p);
}

Test(batch, reads_what_protobuf_c_wrote)
{
    char ct[40];
    size_t len;
    uint8_t *p;
    fb_batch_t b;

    memset(ct, 0xa5, sizeof(ct));
    p = packed(77, "my-tag", 5, ct, sizeof(ct), 2, "k7", 1, -5, &len);

    cr_assert_eq(parse(p, len, &b), 0);
    cr_assert_eq(b.seq, 77);
    cr_assert_eq(b.tag.len, 6);
    cr_assert_eq(memcmp(b.tag.p, "my-tag", 6), 0);
    cr_assert_eq(b.agent_id.len, 7);
    cr_assert_eq(b.n, 5);
    cr_assert(b.recs[4].has_time);
    cr_assert_eq(b.recs[4].seconds, -5);
    cr_assert_eq(b.recs[4].nanos, 42);
    cr_assert_eq(b.recs[4].enc, 2);
    cr_assert_eq(b.recs[4].payload.len, 40);
    cr_assert_eq(b.recs[4].key_id.len, 2);
    free(b.recs);
    free(p);
}

/* same_as_protobuf_c -- record i written by us equals protobuf-c's pack of
 * the Record built field by field. */
static void
same_as_protobuf_c(const fb_batch_t *b, size_t i, const fb_tenant_t *t)
{
    Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp rx = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    const fb_batch_rec_t *br = &b->recs[i];
    char tag[64], agent[64], kid[80], *msg = malloc(br->payload.len * 2 + 8);
    size_t size = 0, want;
    uint8_t *ours, *theirs;
    char why[256];

    cr_assert_eq(fb_batch_record_check(b, i, t, NOW_NS, 1000000, &size, why, sizeof(why)),
                 FB_RECORD_OK, "%s", why);
    memcpy(tag, b->tag.p, b->tag.len);
    tag[b->tag.len] = '\0';
    memcpy(agent, b->agent_id.p, b->agent_id.len);
    agent[b->agent_id.len] = '\0';
    memcpy(kid, br->key_id.p, br->key_id.len);
    kid[br->key_id.len] = '\0';
    if (br->enc == 0) {
        memcpy(msg, br->payload.p, br->payload.len);
        msg[br->payload.len] = '\0';
    } else {
        sodium_bin2base64(msg, br->payload.len * 2 + 8, br->payload.p, br->payload.len,
                          sodium_base64_VARIANT_ORIGINAL);
    }
    ts.seconds = br->has_time ? br->seconds : NOW_NS / 1000000000;
    ts.nanos = br->has_time ? br->nanos : (int32_t)(NOW_NS % 1000000000);
    rx.seconds = NOW_NS / 1000000000;
    rx.nanos = (int32_t)(NOW_NS % 1000000000);
    r.timestamp = &ts;
    r.received_at = &rx;
    r.agent_id = agent;
    r.tag = tag;
    r.message = msg;
    r.userid = t->user_id;
    r.accesskey = t->access_key;
    r.cipher = (Fbpipe__V1__Cipher)br->enc;
    r.key_id = br->enc ? kid : "";
    r.agent_seq = i;
    r.batch_seq = b->seq;
    r.agent_epoch = b->epoch;
    want = fbpipe__v1__record__get_packed_size(&r);
    cr_assert_eq(size, want, "size %zu, protobuf-c %zu", size, want);
    ours = malloc(size);
    theirs = malloc(want);
    cr_assert_eq(fb_batch_record_write(b, i, t, NOW_NS, ours), size);
    fbpipe__v1__record__pack(&r, theirs);
    cr_assert_eq(memcmp(ours, theirs, size), 0, "the bytes differ");
    free(ours);
    free(theirs);
    free(msg);
}

Test(batch, writes_exactly_what_protobuf_c_packs)
{
    static const char ct[] = "0123456789abcdef0123456789abcdef0123456789abc"; /* 45 bytes */
    struct { const char *p; size_t len; int enc; const char *kid; int with_time; int64_t sec;
             const fb_tenant_t *t; size_t n; } cases[] = {
        {"{\"log\":\"hello\"}", 15, 0, "", 0, 0, &plain, 3},
        {"{\"log\":\"hello\"}", 15, 0, "", 1, 1764331200, &plain, 200},
        {"x", 1, 0, "", 1, -62135596800, &plain, 1},   /* negative seconds: 10-byte varint */
        {"x", 1, 0, "", 1, 0, &plain, 1},              /* an empty Timestamp */
        {ct, 45, 2, "k7", 1, 1764331200, &secret, 2},  /* base64 with padding, no UserID */
        {ct, 44, 2, "k7", 0, 0, &secret, 1},
        {ct, 43, 2, "k7", 0, 0, &secret, 1},
        {ct, 45, 3, "k7", 1, 1764331200, &secret, 2},  /* the second XChaCha version */
    };
    fb_batch_t b;
    size_t len;

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        /* every other batch from an agent with an epoch (Record.agent_epoch) */
        next_epoch = c % 2 ? 0xfedcba9876543210ULL + c : 0;
        uint8_t *p = packed(1000 + c, "app", cases[c].n, cases[c].p, cases[c].len, cases[c].enc,
                            cases[c].kid, cases[c].with_time, cases[c].sec, &len);
        cr_assert_eq(parse(p, len, &b), 0);
        cr_assert_eq(b.epoch, next_epoch);
        for (size_t i = 0; i < b.n; i += b.n > 2 ? b.n / 2 : 1)
            same_as_protobuf_c(&b, i, cases[c].t);
        free(b.recs);
        free(p);
    }
    next_epoch = 0;
}

/* check1 -- fb_batch_record_check of a one-record batch. */
static fb_record_err_t
check1(const fb_tenant_t *t, const char *tag, const void *payload, size_t len, int enc,
       const char *kid, char *why)
{
    size_t blen, size;
    uint8_t *p = packed(42, tag, 1, payload, len, enc, kid, 0, 0, &blen);
    fb_batch_t b;
    fb_record_err_t rc;

    cr_assert_eq(parse(p, blen, &b), 0);
    rc = fb_batch_check(&b, why, 256);
    if (rc == FB_RECORD_OK)
        rc = fb_batch_record_check(&b, 0, t, NOW_NS, 1000000, &size, why, 256);
    free(b.recs);
    free(p);
    return rc;
}

Test(batch, refuses_what_cannot_be_stored)
{
    static const uint8_t bad_utf8[] = {'{', 0xc3, 0x28, '}'};
    static const uint8_t with_nul[] = {'a', 0, 'b'};
    uint8_t ct[64] = {0};
    char why[256];

    cr_assert_eq(check1(&plain, "app", bad_utf8, sizeof(bad_utf8), 0, "", why), FB_RECORD_INVALID);
    cr_assert(strstr(why, "UTF-8") != NULL, "%s", why);
    cr_assert_eq(check1(&plain, "app", with_nul, sizeof(with_nul), 0, "", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&plain, "a\xff", "{}", 2, 0, "", why), FB_RECORD_INVALID);
    cr_assert(strstr(why, "tag") != NULL, "%s", why);
    cr_assert_eq(check1(&secret, "app", "{}", 2, 0, "", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&plain, "app", ct, sizeof(ct), 2, "k7", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 2, "k8", why), FB_RECORD_INVALID);
    cr_assert(strstr(why, "key_id") != NULL, "%s", why);
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 2, "k\n", why), FB_RECORD_INVALID);
    cr_assert(strstr(why, "\\x0a") != NULL, "a hostile key id is escaped: %s", why);
    cr_assert_eq(check1(&secret, "app", ct, 39, 2, "k7", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 9, "k7", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 1, "k7", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&plain, "app", "{}", 2, 0, "k7", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&plain, "app", "{}", 2, 0, "", why), FB_RECORD_OK);
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 2, "k7", why), FB_RECORD_OK);
    /* the second version of XChaCha20-Poly1305, checked alike */
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 3, "k7", why), FB_RECORD_OK, "%s", why);
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 3, "k8", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&plain, "app", ct, sizeof(ct), 3, "k7", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&secret, "app", ct, 39, 3, "k7", why), FB_RECORD_INVALID);
    cr_assert_eq(check1(&secret, "app", ct, sizeof(ct), 4, "k7", why), FB_RECORD_INVALID);
    cr_assert(strstr(why, "cipher 4 is not accepted") != NULL, "%s", why);
}

Test(batch, refuses_records_larger_than_kafka_takes)
{
    char *big = malloc(1000001), why[256];

    memset(big, 'a', 1000001);
    cr_assert_eq(check1(&plain, "app", big, 1000001, 0, "", why), FB_RECORD_TOO_LARGE);
    /* the payload fits, the record around it does not */
    cr_assert_eq(check1(&plain, "app", big, 999990, 0, "", why), FB_RECORD_TOO_LARGE);
    cr_assert(strstr(why, "record of") != NULL, "%s", why);
    free(big);
}

Test(batch, base64_matches_libsodium)
{
    uint8_t in[70];
    char ours[100], theirs[100];

    cr_assert_eq(sodium_init() >= 0, 1);
    for (size_t len = 0; len < sizeof(in); len++) {
        randombytes_buf(in, len);
        size_t n = fb_base64(in, len, ours);
        sodium_bin2base64(theirs, sizeof(theirs), in, len, sodium_base64_VARIANT_ORIGINAL);
        cr_assert_eq(n, strlen(theirs), "length at %zu", len);
        cr_assert_eq(memcmp(ours, theirs, n), 0, "bytes at %zu", len);
    }
}

/* what is acknowledged is what will be written (#8): a time the router
 * could not write is refused at ingest */
Test(batch, refuses_times_the_router_cannot_write)
{
    static const int64_t bad[] = {INT64_C(-62135596801), INT64_C(-62135596800) - 86400,
                                  INT64_C(-9223372036854775807)};
    static const int64_t good[] = {INT64_C(-62135596800), INT64_C(253402300799), 0,
                                   INT64_C(1700000000123456789)};
    char why[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + sizeof(good) / sizeof(good[0]); i++) {
        int is_bad = i < sizeof(bad) / sizeof(bad[0]);
        int64_t sec = is_bad ? bad[i] : good[i - sizeof(bad) / sizeof(bad[0])];
        size_t blen, size;
        uint8_t *p = packed(42, "app", 1, "{}", 2, 0, "", 1, sec, &blen);
        fb_batch_t b;

        cr_assert_eq(parse(p, blen, &b), 0);
        cr_assert_eq(fb_batch_record_check(&b, 0, &plain, NOW_NS, 1000000, &size, why, 256),
                     is_bad ? FB_RECORD_INVALID : FB_RECORD_OK, "%lld: %s", (long long)sec,
                     is_bad ? "accepted" : why);
        if (is_bad)
            cr_assert(strstr(why, "timestamp:") && strstr(why, "out of range"), "%s", why);
        free(b.recs);
        free(p);
    }
}
/* what is acknowledged is what will be written (#8): a NUL byte is
 * refused by name, as on the seed API */
Test(batch, refuses_nul_bytes_by_name)
{
    static const uint8_t with_nul[] = {'b', 'e', 'f', 'o', 'r', 'e', 0, 'a', 'f', 't', 'e', 'r'};
    /* Batch{seq: 1, tag: "t\0u"} written by hand: protobuf-c would cut it */
    static const uint8_t tag_nul[] = {0x08, 0x01, 0x12, 0x03, 't', 0, 'u'};
    fb_batch_t b;
    char why[256];

    cr_assert_eq(check1(&plain, "app", with_nul, sizeof(with_nul), 0, "", why),
                 FB_RECORD_INVALID);
    cr_assert_str_eq(why, "payload: contains a NUL byte");
    cr_assert_eq(parse(tag_nul, sizeof(tag_nul), &b), 0);
    cr_assert_eq(fb_batch_check(&b, why, sizeof(why)), FB_RECORD_INVALID);
    cr_assert_str_eq(why, "tag: contains a NUL byte");
    free(b.recs);
}
