/*
 * fuzz_batch.c -- libFuzzer target: the native API's fbpipe.v1.Batch
 * reader and Record writer (common/batch.c), in the order the worker runs
 * them (worker_native.c: on_batch, take_batch): fb_batch_peek, the batch
 * limit, fb_batch_parse into an array of the peeked size, fb_batch_check,
 * then fb_batch_record_check and fb_batch_record_write per record, for a
 * tenant without encryption and for one with keys.
 *
 * Oracles besides the sanitizers: parse finds the records peek counted;
 * a refusal's reason is printable; a record is written into exactly the
 * bytes the size check announced, and those bytes are what protobuf-c
 * packs for the same fbpipe.v1.Record (unpacked and packed again).
 */
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"
#include "common/keys.h"
#include "fbpipe.pb-c.h"
#include "fuzz.h"

#define NOW_NS INT64_C(1700000000123456789)
#define MAX_BATCH_RECORDS 10000 /* ingester.max_batch_records' default */
#define MAX_RECORD 3000         /* small, so that "too large" is reached too */

static fb_keydb_t *db;
static const fb_tenant_t *tenants[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_start(true);
    db = fuzz_tenants("acme", tenants);
    return 0;
}

/* check_written -- record i of b for t: written into exactly size bytes,
 * and protobuf-c packs the same bytes. */
static void
check_written(const fb_batch_t *b, size_t i, const fb_tenant_t *t, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1), *again;
    Fbpipe__V1__Record *r;
    size_t n;

    if (buf == NULL)
        abort();
    n = fb_batch_record_write(b, i, t, NOW_NS, buf);
    FUZZ_CHECK(n == size, "record %zu: %zu bytes written, %zu announced", i, n, size);
    r = fbpipe__v1__record__unpack(NULL, n, buf);
    FUZZ_CHECK(r != NULL, "record %zu: protobuf-c cannot read what the writer wrote", i);
    FUZZ_CHECK(strcmp(r->accesskey, t->access_key) == 0 && strcmp(r->userid, t->user_id) == 0,
               "record %zu: identity not the tenant's", i);
    FUZZ_CHECK(fbpipe__v1__record__get_packed_size(r) == n,
               "record %zu: protobuf-c packs %zu bytes, the writer wrote %zu", i,
               fbpipe__v1__record__get_packed_size(r), n);
    again = malloc(n ? n : 1);
    if (again == NULL)
        abort();
    fbpipe__v1__record__pack(r, again);
    FUZZ_CHECK(memcmp(again, buf, n) == 0, "record %zu: not the bytes protobuf-c packs", i);
    free(again);
    fbpipe__v1__record__free_unpacked(r, NULL);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_batch_rec_t *recs;
    fb_batch_t b;
    uint64_t seq;
    size_t n;
    char why[256];

    fuzz_log_start(true);
    if (fb_batch_peek(data, size, &seq, &n) < 0)
        return 0;
    if (n > MAX_BATCH_RECORDS) /* refused before parsing, as the worker does */
        return 0;
    recs = malloc((n ? n : 1) * sizeof(*recs));
    if (recs == NULL)
        abort();
    if (fb_batch_parse(data, size, recs, n, &b) < 0) {
        free(recs);
        return 0;
    }
    FUZZ_CHECK(b.n == n, "parse found %zu records, peek counted %zu", b.n, n);
    FUZZ_CHECK(b.seq == seq, "parse and peek disagree on seq");
    why[0] = '\0';
    if (fb_batch_check(&b, why, sizeof(why)) != FB_RECORD_OK) {
        FUZZ_CHECK(fuzz_printable(why, strlen(why)) && why[0] != '\0', "batch refusal: %s", why);
        free(recs);
        return 0;
    }
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < b.n; i++) {
            size_t rec_size = 0;
            fb_record_err_t err;

            why[0] = '\0';
            err = fb_batch_record_check(&b, i, tenants[k], NOW_NS, MAX_RECORD, &rec_size, why,
                                        sizeof(why));
            if (err != FB_RECORD_OK) {
                FUZZ_CHECK(err == FB_RECORD_INVALID || err == FB_RECORD_TOO_LARGE,
                           "record %zu: refusal kind %d", i, (int)err);
                FUZZ_CHECK(fuzz_printable(why, strlen(why)) && why[0] != '\0',
                           "record %zu refusal: %s", i, why);
                break; /* the worker refuses the whole batch */
            }
            FUZZ_CHECK(rec_size + strlen(tenants[k]->access_key) <= MAX_RECORD,
                       "record %zu: %zu bytes accepted over the limit", i, rec_size);
            check_written(&b, i, tenants[k], rec_size);
        }
    }
    free(recs);
    return 0;
}
