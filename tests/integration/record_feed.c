/*
 * record_feed.c -- command line of feed_records.c for the router's tests:
 *
 *   record_feed BROKERS TOPIC N KEYS PREFIX [START [PLAIN|XCHACHA|XCHACHA2|AESGCM KEY_ID HEXKEY]]
 *
 * Exit 0 once Kafka acknowledged all N records, 1 otherwise.
 * FEED_RATE=events/s paces it (for tests that act while records flow).
 * FEED_NO_KEY=1 writes api.Event values without a Kafka key, as the Go
 * version does (PLAIN or AESGCM only; HEXKEY is the key's bytes in hex).
 * FEED_EPOCH=E (non-zero) gives records an identity for router.dedupe:
 * agent_epoch E, event number I of its key as batch I / FEED_BATCH
 * (default 100), index I % FEED_BATCH: the same events fed again, in any
 * order, carry the same identities.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "feed_records.h"

int
main(int argc, char **argv)
{
    feed_opts_t o = {.user_id = "u-feed"};
    char err[512];
    size_t bin_len = 0;

    if (argc != 6 && argc != 7 && argc != 10) {
        fprintf(stderr, "usage: record_feed BROKERS TOPIC N KEYS PREFIX "
                        "[START [PLAIN|XCHACHA|XCHACHA2|AESGCM KEY_ID HEXKEY]]\n");
        return 1;
    }
    o.brokers = argv[1];
    o.topic = argv[2];
    o.n = atol(argv[3]);
    o.keys = (unsigned)atol(argv[4]);
    o.prefix = argv[5];
    o.start = argc > 6 ? atol(argv[6]) : 0;
    o.rate = getenv("FEED_RATE") ? atol(getenv("FEED_RATE")) : 0;
    o.epoch = getenv("FEED_EPOCH") ? strtoull(getenv("FEED_EPOCH"), NULL, 0) : 0;
    o.batch = getenv("FEED_BATCH") ? (unsigned)atoi(getenv("FEED_BATCH")) : 0;
    o.no_key = getenv("FEED_NO_KEY") != NULL && strcmp(getenv("FEED_NO_KEY"), "1") == 0;
    if (o.n < 0 || o.keys == 0 || strlen(o.prefix) > 200) {
        fprintf(stderr, "record_feed: N >= 0, KEYS >= 1, a PREFIX of at most 200 bytes\n");
        return 1;
    }
    if (argc == 10) {
        o.cipher = strcmp(argv[7], "XCHACHA") == 0    ? FEED_XCHACHA
                   : strcmp(argv[7], "XCHACHA2") == 0 ? FEED_XCHACHA2
                   : strcmp(argv[7], "AESGCM") == 0   ? FEED_AESGCM
                                                      : FEED_PLAIN;
        snprintf(o.key_id, sizeof(o.key_id), "%s", argv[8]);
        if (sodium_hex2bin(o.key, sizeof(o.key), argv[9], strlen(argv[9]), NULL, &bin_len, NULL) ||
            bin_len != sizeof(o.key)) {
            fprintf(stderr, "record_feed: HEXKEY must be 64 hex digits\n");
            return 1;
        }
    }
    if (o.no_key && o.cipher != FEED_PLAIN && o.cipher != FEED_AESGCM) {
        fprintf(stderr, "record_feed: FEED_NO_KEY=1 takes PLAIN or AESGCM only\n");
        return 1;
    }
    if (feed_records(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "record_feed: %s\n", err);
        return 1;
    }
    return 0;
}
