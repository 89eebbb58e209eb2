/*
 * test_proto.c -- round trips of both wire protocols, compatibility of the
 * Kafka Record with api.Event, and hostile encodings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "api.pb-c.h"
#include "fbpipe.pb-c.h"
#include "health.pb-c.h"

/* pack -- serialise any message into a malloc'd buffer. */
static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf;

    *len = protobuf_c_message_get_packed_size(m);
    buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

Test(proto, event_round_trip)
{
    Api__Event ev = API__EVENT__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Api__Event *out;
    uint8_t *buf;
    size_t len;

    ts.seconds = 1700000000;
    ts.nanos = 123456789;
    ev.timestamp = &ts;
    ev.agent_id = "host-1";
    ev.tag = "kube.var.log";
    ev.message = "{\"log\":\"hello\"}";
    ev.userid = "user-7";
    ev.accesskey = "acme";
    buf = pack(&ev.base, &len);

    out = api__event__unpack(NULL, len, buf);
    cr_assert_not_null(out);
    cr_assert_eq(out->timestamp->seconds, 1700000000);
    cr_assert_eq(out->timestamp->nanos, 123456789);
    cr_assert_str_eq(out->agent_id, "host-1");
    cr_assert_str_eq(out->tag, "kube.var.log");
    cr_assert_str_eq(out->message, "{\"log\":\"hello\"}");
    cr_assert_str_eq(out->userid, "user-7");
    cr_assert_str_eq(out->accesskey, "acme");
    api__event__free_unpacked(out, NULL);
    free(buf);
}

Test(proto, field_numbers_match_the_original_api)
{
    /* The original agents depend on these numbers; they must never move. */
    static const struct { const char *name; unsigned id; } fields[] = {
        {"timestamp", 1}, {"agent_id", 2}, {"tag", 3}, {"message", 4}, {"UserID", 5},
        {"AccessKey", 6},
    };
    const ProtobufCFieldDescriptor *f;

    for (size_t i = 0; i < 6; i++) {
        f = protobuf_c_message_descriptor_get_field_by_name(&api__event__descriptor,
                                                            fields[i].name);
        cr_assert_not_null(f, "api.Event has no %s", fields[i].name);
        cr_assert_eq(f->id, fields[i].id, "%s", fields[i].name);
        f = protobuf_c_message_descriptor_get_field(&fbpipe__v1__record__descriptor,
                                                    fields[i].id);
        cr_assert_not_null(f);
        cr_assert_str_eq(f->name, fields[i].name, "Record field %u", fields[i].id);
    }
    f = protobuf_c_message_descriptor_get_field_by_name(&api__config__descriptor, "EncryptionKey");
    cr_assert_eq(f->id, 3);
    f = protobuf_c_message_descriptor_get_field_by_name(&api__eresponse__descriptor, "status");
    cr_assert_eq(f->id, 1);
    cr_assert_eq(API__EVENT_CODE__SUCCESS, 0);
    cr_assert_eq(API__EVENT_CODE__FAILURE, 1);
    cr_assert_str_eq(api__event_service__descriptor.name, "api.EventService");
    cr_assert_str_eq(fbpipe__v1__ingest__descriptor.name, "fbpipe.v1.Ingest");
    cr_assert_str_eq(grpc__health__v1__health__descriptor.name, "grpc.health.v1.Health");
}

Test(proto, record_decodes_as_event)
{
    Fbpipe__V1__Record rec = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp rx = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Api__Event *ev;
    Fbpipe__V1__Record *back;
    uint8_t *buf;
    size_t len;

    ts.seconds = 1700000001;
    rx.seconds = 1700000002;
    rec.timestamp = &ts;
    rec.agent_id = "a";
    rec.tag = "t";
    rec.message = "00ff";
    rec.userid = "u";
    rec.accesskey = "k";
    rec.cipher = FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305;
    rec.key_id = "k2";
    rec.agent_seq = UINT64_MAX;
    rec.batch_seq = 77;
    rec.received_at = &rx;
    buf = pack(&rec.base, &len);

    /* a consumer of the original design sees the six fields it knows */
    ev = api__event__unpack(NULL, len, buf);
    cr_assert_not_null(ev);
    cr_assert_eq(ev->timestamp->seconds, 1700000001);
    cr_assert_str_eq(ev->message, "00ff");
    cr_assert_str_eq(ev->userid, "u");
    cr_assert_str_eq(ev->accesskey, "k");
    cr_assert_geq(ev->base.n_unknown_fields, 5, "fbpipe fields kept as unknown");
    api__event__free_unpacked(ev, NULL);

    back = fbpipe__v1__record__unpack(NULL, len, buf);
    cr_assert_not_null(back);
    cr_assert_eq(back->cipher, FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305);
    cr_assert_str_eq(back->key_id, "k2");
    cr_assert_eq(back->agent_seq, UINT64_MAX);
    cr_assert_eq(back->batch_seq, 77);
    cr_assert_eq(back->received_at->seconds, 1700000002);
    fbpipe__v1__record__free_unpacked(back, NULL);
    free(buf);
}

Test(proto, batch_and_ack_round_trip)
{
    Fbpipe__V1__BatchRecord r[3] = {FBPIPE__V1__BATCH_RECORD__INIT, FBPIPE__V1__BATCH_RECORD__INIT,
                                    FBPIPE__V1__BATCH_RECORD__INIT};
    Fbpipe__V1__BatchRecord *rp[3] = {&r[0], &r[1], &r[2]};
    Fbpipe__V1__Batch b = FBPIPE__V1__BATCH__INIT;
    Fbpipe__V1__Ack ack = FBPIPE__V1__ACK__INIT;
    Fbpipe__V1__Batch *bo;
    Fbpipe__V1__Ack *ao;
    uint8_t bin[4] = {0, 1, 0xfe, 0xff};
    uint8_t *buf;
    size_t len;

    for (int i = 0; i < 3; i++) {
        r[i].payload.data = bin;
        r[i].payload.len = (size_t)i + 1;
    }
    r[2].enc = FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX;
    b.seq = 42;
    b.tag = "tag";
    b.n_records = 3;
    b.records = rp;
    buf = pack(&b.base, &len);
    bo = fbpipe__v1__batch__unpack(NULL, len, buf);
    cr_assert_not_null(bo);
    cr_assert_eq(bo->seq, 42);
    cr_assert_eq(bo->n_records, 3);
    cr_assert_eq(bo->records[2]->payload.len, 3);
    cr_assert_eq(memcmp(bo->records[2]->payload.data, bin, 3), 0);
    cr_assert_eq(bo->records[2]->enc, FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX);
    fbpipe__v1__batch__free_unpacked(bo, NULL);
    free(buf);

    ack.seq = 42;
    ack.code = FBPIPE__V1__ACK_CODE__RETRY;
    ack.detail = "lane full";
    ack.retry_after_ms = 250;
    buf = pack(&ack.base, &len);
    ao = fbpipe__v1__ack__unpack(NULL, len, buf);
    cr_assert_eq(ao->code, FBPIPE__V1__ACK_CODE__RETRY);
    cr_assert_eq(ao->retry_after_ms, 250);
    cr_assert_str_eq(ao->detail, "lane full");
    fbpipe__v1__ack__free_unpacked(ao, NULL);
    free(buf);
}

Test(proto, health_and_exchange)
{
    Grpc__Health__V1__HealthCheckResponse hr = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    Grpc__Health__V1__HealthCheckResponse *ho;
    Fbpipe__V1__ExchangeResponse er = FBPIPE__V1__EXCHANGE_RESPONSE__INIT;
    Fbpipe__V1__ExchangeResponse *eo;
    uint8_t key[32];
    uint8_t *buf;
    size_t len;

    hr.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    buf = pack(&hr.base, &len);
    cr_assert_eq(len, 2);
    cr_assert_eq(buf[0], 0x08); /* field 1, varint */
    cr_assert_eq(buf[1], 2);    /* NOT_SERVING, as in the standard */
    ho = grpc__health__v1__health_check_response__unpack(NULL, len, buf);
    cr_assert_eq(ho->status, 2);
    grpc__health__v1__health_check_response__free_unpacked(ho, NULL);
    free(buf);

    memset(key, 0xab, sizeof(key));
    er.access_key = "acme";
    er.cipher = FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305;
    er.key_id = "k1";
    er.encryption_key.data = key;
    er.encryption_key.len = 32;
    er.refresh_interval_s = 300;
    buf = pack(&er.base, &len);
    eo = fbpipe__v1__exchange_response__unpack(NULL, len, buf);
    cr_assert_eq(eo->encryption_key.len, 32);
    cr_assert_eq(eo->refresh_interval_s, 300);
    cr_assert_str_eq(eo->key_id, "k1");
    fbpipe__v1__exchange_response__free_unpacked(eo, NULL);
    free(buf);
}

/* ExchangeRequest.ciphers (field 3, packed): an agent of before it sends
 * the request it always sent, which reads as no cipher listed */
Test(proto, exchange_request_lists_ciphers)
{
    Fbpipe__V1__ExchangeRequest rq = FBPIPE__V1__EXCHANGE_REQUEST__INIT, *ro;
    Fbpipe__V1__Cipher ciphers[] = {FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2,
                                    FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305};
    static const uint8_t old[] = {0x0a, 4, 'a', 'c', 'm', 'e', 0x12, 1, 'x'};
    uint8_t *buf;
    size_t len;

    cr_assert_eq(FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2, 3);
    rq.access_key = "acme";
    rq.agent_id = "x";
    rq.ciphers = ciphers;
    rq.n_ciphers = 2;
    buf = pack(&rq.base, &len);
    cr_assert_eq(len, sizeof(old) + 4);
    cr_assert_eq(memcmp(buf, old, sizeof(old)), 0, "fields 1 and 2 as before");
    cr_assert_eq(buf[sizeof(old)], 0x1a, "field 3, packed");
    cr_assert_eq(buf[sizeof(old) + 1], 2);
    cr_assert_eq(buf[sizeof(old) + 2], 3);
    cr_assert_eq(buf[sizeof(old) + 3], 2);
    ro = fbpipe__v1__exchange_request__unpack(NULL, len, buf);
    cr_assert_eq(ro->n_ciphers, 2);
    cr_assert_eq(ro->ciphers[0], 3);
    fbpipe__v1__exchange_request__free_unpacked(ro, NULL);
    free(buf);
    ro = fbpipe__v1__exchange_request__unpack(NULL, sizeof(old), old);
    cr_assert_eq(ro->n_ciphers, 0);
    cr_assert_str_eq(ro->access_key, "acme");
    fbpipe__v1__exchange_request__free_unpacked(ro, NULL);
}

Test(proto, hostile_encodings_are_refused)
{
    Api__Event ev = API__EVENT__INIT;
    uint8_t *buf;
    size_t len;
    /* field 4 (message), wire type 2, length 100, but only 3 bytes follow */
    static const uint8_t truncated[] = {0x22, 100, 'a', 'b', 'c'};
    /* field 4 as a varint: wrong wire type for a string */
    static const uint8_t wrong_type[] = {0x20, 0x01};
    /* a varint of 11 bytes: malformed */
    static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    /* string field with invalid UTF-8 */
    static const uint8_t bad_utf8[] = {0x1a, 2, 0xc3, 0x28};
    /* a length prefix near SIZE_MAX */
    static const uint8_t huge_len[] = {0x22, 0xff, 0xff, 0xff, 0xff, 0x0f};

    cr_assert_null(api__event__unpack(NULL, sizeof(truncated), truncated));
    cr_assert_null(api__event__unpack(NULL, sizeof(wrong_type), wrong_type));
    cr_assert_null(api__event__unpack(NULL, sizeof(long_varint), long_varint));
    /* protobuf-c 1.4.1 does NOT check UTF-8 in string fields: the ingester
     * must validate every string itself. This canary fails the day the
     * library starts to, so that the duplicate check can be reconsidered. */
    {
        Api__Event *p = api__event__unpack(NULL, sizeof(bad_utf8), bad_utf8);
        cr_assert_not_null(p);
        cr_assert_eq((unsigned char)p->tag[0], 0xc3);
        api__event__free_unpacked(p, NULL);
    }
    cr_assert_null(fbpipe__v1__record__unpack(NULL, sizeof(huge_len), huge_len));

    /* every prefix of a valid encoding either decodes or is refused, never crashes */
    ev.agent_id = "agent";
    ev.message = "{\"k\":\"v\"}";
    ev.accesskey = "acme";
    buf = pack(&ev.base, &len);
    for (size_t cut = 0; cut < len; cut++) {
        Api__Event *p = api__event__unpack(NULL, cut, buf);
        if (p != NULL)
            api__event__free_unpacked(p, NULL);
    }
    free(buf);
}

Test(proto, empty_message_is_all_defaults)
{
    Fbpipe__V1__Batch *b = fbpipe__v1__batch__unpack(NULL, 0, (const uint8_t *)"");

    cr_assert_not_null(b);
    cr_assert_eq(b->seq, 0);
    cr_assert_eq(b->n_records, 0);
    cr_assert_str_eq(b->tag, "");
    fbpipe__v1__batch__free_unpacked(b, NULL);
}
