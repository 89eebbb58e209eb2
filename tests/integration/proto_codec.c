/*
 * proto_codec.c -- the C side of the protocol interoperability test: it
 * encodes messages with the protoc-c code fbpipe is built from, and decodes
 * what another implementation (Python protobuf) encoded.
 *
 * usage: proto_codec record          hex of a fully populated Record
 *        proto_codec event HEX       decode an api.Event, print its fields
 *        proto_codec batch HEX       decode a fbpipe.v1.Batch, print it
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "fbpipe.pb-c.h"

static uint8_t *
unhex(const char *s, size_t *len)
{
    size_t n = strlen(s) / 2;
    uint8_t *b = malloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            exit(2);
        b[i] = (uint8_t)v;
    }
    *len = n;
    return b;
}

int
main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "record") == 0) {
        Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        Google__Protobuf__Timestamp rx = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        uint8_t buf[1024];
        size_t n;

        ts.seconds = 1700000000;
        ts.nanos = 5;
        rx.seconds = 1700000009;
        r.timestamp = &ts;
        r.agent_id = "agent-\xc3\xa9";
        r.tag = "app.log";
        r.message = "{\"k\":1}";
        r.userid = "user-1";
        r.accesskey = "acme";
        r.cipher = FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX;
        r.key_id = "k1";
        r.agent_seq = 12345678901234ULL;
        r.batch_seq = 9;
        r.received_at = &rx;
        n = fbpipe__v1__record__pack(&r, buf);
        for (size_t i = 0; i < n; i++)
            printf("%02x", buf[i]);
        printf("\n");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "event") == 0) {
        size_t n;
        uint8_t *b = unhex(argv[2], &n);
        Api__Event *e = api__event__unpack(NULL, n, b);

        if (e == NULL)
            return 1;
        printf("seconds=%" PRId64 " nanos=%d agent_id=%s tag=%s message=%s userid=%s "
               "accesskey=%s\n",
               e->timestamp ? e->timestamp->seconds : -1, e->timestamp ? e->timestamp->nanos : -1,
               e->agent_id, e->tag, e->message, e->userid, e->accesskey);
        api__event__free_unpacked(e, NULL);
        free(b);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "batch") == 0) {
        size_t n;
        uint8_t *b = unhex(argv[2], &n);
        Fbpipe__V1__Batch *bt = fbpipe__v1__batch__unpack(NULL, n, b);

        if (bt == NULL)
            return 1;
        printf("seq=%" PRIu64 " tag=%s agent_id=%s records=%zu\n", bt->seq, bt->tag, bt->agent_id,
               bt->n_records);
        for (size_t i = 0; i < bt->n_records; i++) {
            printf("record %zu enc=%d key_id=%s payload=", i, bt->records[i]->enc,
                   bt->records[i]->key_id);
            for (size_t j = 0; j < bt->records[i]->payload.len; j++)
                printf("%02x", bt->records[i]->payload.data[j]);
            printf("\n");
        }
        fbpipe__v1__batch__free_unpacked(bt, NULL);
        free(b);
        return 0;
    }
    fprintf(stderr, "usage: proto_codec record | event HEX | batch HEX\n");
    return 2;
}
