/*
 * fuzz_event.c -- libFuzzer target: the seed API's events, as the worker
 * takes them (worker_seed.c: on_event): api.Event unpacked by protobuf-c
 * with the capped allocator (common/pballoc.c) and the worker's budget,
 * fb_event_check_nul on the wire bytes, then fb_record_from_event
 * (common/record.c) for a tenant without encryption and for one with
 * keys, and fb_record_pack.
 *
 * Oracles besides the sanitizers: the allocator's account returns to zero
 * (nothing leaks past it, nothing is freed twice); a refusal's reason is
 * printable; a record accepted is packed into exactly its announced size,
 * within the limit, and reads back with the tenant's identity and the
 * event's message.
 */
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "common/keys.h"
#include "common/pballoc.h"
#include "common/record.h"
#include "fbpipe.pb-c.h"
#include "fuzz.h"

#define NOW_NS INT64_C(1700000000123456789)
#define MAX_RECORD 3000 /* small, so that "too large" is reached too */

static fb_keydb_t *db;
static const fb_tenant_t *tenants[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_start(true);
    db = fuzz_tenants("seed", tenants);
    return 0;
}

/* check_record -- the record of ev for t: packed into its size, read back. */
static void
check_record(const Api__Event *ev, const fb_tenant_t *t, const fb_record_t *rec)
{
    uint8_t *buf = malloc(rec->size ? rec->size : 1);
    Fbpipe__V1__Record *r;
    size_t n;

    if (buf == NULL)
        abort();
    FUZZ_CHECK(rec->size + strlen(t->access_key) <= MAX_RECORD, "%zu bytes accepted over the limit",
               rec->size);
    n = fb_record_pack(rec, buf);
    FUZZ_CHECK(n == rec->size, "%zu bytes packed, %zu announced", n, rec->size);
    r = fbpipe__v1__record__unpack(NULL, n, buf);
    FUZZ_CHECK(r != NULL, "the packed record does not read back");
    FUZZ_CHECK(strcmp(r->accesskey, t->access_key) == 0 && strcmp(r->userid, t->user_id) == 0,
               "identity not the tenant's");
    FUZZ_CHECK(strcmp(r->message, ev->message) == 0, "message changed");
    FUZZ_CHECK(r->timestamp != NULL && fb_ts_in_range(r->timestamp->seconds, r->timestamp->nanos),
               "time out of range accepted");
    fbpipe__v1__record__free_unpacked(r, NULL);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_pballoc_t a;
    Api__Event *ev;
    char why[256];

    fuzz_log_start(true);
    fb_pballoc_init(&a, 4 * size + 4096); /* the worker's budget (worker_seed.c) */
    ev = api__event__unpack(&a.base, size, data);
    if (ev == NULL) {
        FUZZ_CHECK(a.used == 0, "%zu bytes still allocated after a failed unpack", a.used);
        return 0;
    }
    why[0] = '\0';
    if (fb_event_check_nul(data, size, why, sizeof(why)) < 0) {
        FUZZ_CHECK(fuzz_printable(why, strlen(why)) && why[0] != '\0', "refusal: %s", why);
    } else {
        for (size_t k = 0; k < 2; k++) {
            fb_record_t rec;
            fb_record_err_t err;

            why[0] = '\0';
            err = fb_record_from_event(ev, tenants[k], NOW_NS, MAX_RECORD, &rec, why, sizeof(why));
            if (err == FB_RECORD_OK) {
                check_record(ev, tenants[k], &rec);
                continue;
            }
            FUZZ_CHECK(err == FB_RECORD_INVALID || err == FB_RECORD_TOO_LARGE ||
                           err == FB_RECORD_WRONG_KEY,
                       "refusal kind %d", (int)err);
            FUZZ_CHECK(fuzz_printable(why, strlen(why)) && why[0] != '\0', "refusal: %s", why);
        }
    }
    api__event__free_unpacked(ev, &a.base);
    FUZZ_CHECK(a.used == 0, "%zu bytes still allocated after free_unpacked", a.used);
    return 0;
}
