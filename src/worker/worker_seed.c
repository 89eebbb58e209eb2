/*
 * worker_seed.c -- api.EventService, the original wire API: SendEvent (a
 * client stream answered once, SUCCESS only after Kafka acknowledged every
 * event of it) and ExchangeConfig.
 *
 * The token is verified on every call; every event is checked against
 * the token's tenant, and AccessKey and UserID in the record come from the
 * key database, never from the client. A stream is stored whole or not at
 * all: its events are checked and buffered as they come (at most half a
 * lane) and written as one span once the client half-closed; an invalid
 * event refuses the stream with nothing of it written. A full lane holds
 * the answer back; nothing is dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>

#include <sodium.h>

#include "api.pb-c.h"
#include "common/cipher.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/pballoc.h"
#include "common/record.h"
#include "worker/worker.h"

#define PRINT_MAX 2000 /* bytes of an event printed */

static void on_event(fb_wcall_t *c, int ok);

/* peer -- the client's address for log lines (caller frees with gpr_free). */
static char *
peer(fb_wcall_t *c)
{
    return grpc_call_get_peer(c->call);
}

/* authorization -- the raw value of the authorization metadata, or NULL. */
static const grpc_slice *
authorization(fb_wcall_t *c)
{
    for (size_t i = 0; i < c->request_md.count; i++)
        if (grpc_slice_str_cmp(c->request_md.metadata[i].key, "authorization") == 0)
            return &c->request_md.metadata[i].value;
    return NULL;
}

/* fb_worker_refuse -- answer with an authentication or authorization
 * failure, counted by kind (exactly, in shared memory) and logged by kind
 * (rate-limited: a client can send refused calls as fast as it likes). */
void
fb_worker_refuse(fb_wcall_t *c, const fb_auth_result_t *r)
{
    char *p = peer(c), reason[48];

    snprintf(reason, sizeof(reason), "auth %s", fb_auth_err_name(r->err));
    fb_log_limited(FB_LOG_NOTICE, reason, "%s refused: %s (%s)", p, r->detail,
                   fb_auth_err_name(r->err));
    gpr_free(p);
    fb_worker_count_refusal(c->w, r->err);
    c->replied = true;
    fb_wcall_reply(c, NULL, (grpc_status_code)r->grpc_status, r->detail, NULL);
}

/* fb_worker_authenticate -- verify the call's token; 0, or -1 after
 * answering the call with the precise status. */
int
fb_worker_authenticate(fb_wcall_t *c)
{
    const grpc_slice *v = authorization(c);

    fb_auth_verify(c->w->auth, c->w->keydb, v ? (const char *)GRPC_SLICE_START_PTR(*v) : NULL,
                   v ? GRPC_SLICE_LENGTH(*v) : 0, fb_wall_ns() / 1000000000, &c->auth);
    if (c->auth.err != FB_AUTH_OK) {
        fb_worker_refuse(c, &c->auth);
        return -1;
    }
    c->auth_gen = c->w->revoked != NULL ? c->w->revoked->generation : 0;
    if (fb_worker_refuse_revoked(c, NULL) < 0)
        return -1;
    return fb_worker_tenant_admit(c);
}

/* fb_worker_refuse_revoked -- refuse the call (PERMISSION_DENIED, counted
 * as revoked) when a reload revoked what it writes for (key; NULL: its
 * token's); 0, or -1 after answering. */
int
fb_worker_refuse_revoked(fb_wcall_t *c, const char *key)
{
    const char *why = fb_worker_revoked(c, key);
    fb_auth_result_t r;

    if (why == NULL)
        return 0;
    r = c->auth;
    r.err = FB_AUTH_ERR_REVOKED;
    r.grpc_status = fb_auth_err_status(FB_AUTH_ERR_REVOKED);
    snprintf(r.detail, sizeof(r.detail), "access key \"%.128s\" refused since a reload: %s",
             key ? key : c->auth.access_key, why);
    fb_worker_refuse(c, &r);
    return -1;
}

/* tally -- one event of tenant key, of size payload bytes, buffered:
 * counted as received, and kept per tenant so that SUCCESS counts them as
 * acknowledged. */
static void
tally(fb_wcall_t *c, const char *key, size_t size)
{
    fb_metrics_t *m = fb_metrics_zone();
    unsigned t;
    size_t i;

    if (m == NULL)
        return;
    t = fb_metrics_tenant(m, key, strlen(key));
    fb_metrics_add(c->w->metrics, FB_MC_EVENTS_RECEIVED, 1);
    fb_metrics_add(c->w->metrics, FB_MC_BYTES_RECEIVED, size);
    fb_metrics_tenant_add(c->w->metrics, t, FB_MT_RECEIVED, 1);
    fb_metrics_tenant_add(c->w->metrics, t, FB_MT_BYTES_RECEIVED, size);
    for (i = 0; i < c->n_tally && c->tally[i].tenant != t; i++)
        ;
    if (i == c->n_tally) {
        if (c->n_tally == c->cap_tally) {
            size_t cap = c->cap_tally ? c->cap_tally * 2 : 2;
            struct fb_tally *n = realloc(c->tally, cap * sizeof(*n));
            if (n == NULL)
                return; /* acked is not counted for it: the ledger shows a gap */
            c->tally = n;
            c->cap_tally = cap;
        }
        c->tally[c->n_tally++] = (struct fb_tally){.tenant = t, .n = 0};
    }
    c->tally[i].n++;
}

/* answer -- the stream's one EResponse. */
static void
answer(fb_wcall_t *c)
{
    Api__EResponse resp = API__ERESPONSE__INIT;

    c->replied = true;
    if (c->failed) {
        char *p = peer(c);
        if (c->fail_err == FB_REC_ERR_UNREADABLE)
            fb_log_limited(FB_LOG_WARNING, "stream unconfirmed",
                           "%s: stream of %llu events answered FAILURE: its records could not "
                           "be confirmed as stored", p, (unsigned long long)c->events);
        else
            fb_log_limited(FB_LOG_WARNING, "stream refused by Kafka",
                           "%s: stream of %llu events answered FAILURE: a record was refused "
                           "by Kafka (error %d)", p, (unsigned long long)c->events,
                           (int)c->fail_err);
        gpr_free(p);
    }
    resp.status = c->failed ? API__EVENT_CODE__FAILURE : API__EVENT_CODE__SUCCESS;
    for (size_t i = 0; !c->failed && i < c->n_tally; i++) { /* the ledger: acked */
        fb_metrics_add(c->w->metrics, FB_MC_EVENTS_ACKED, c->tally[i].n);
        fb_metrics_tenant_add(c->w->metrics, c->tally[i].tenant, FB_MT_ACKED, c->tally[i].n);
    }
    fb_wcall_reply(c, &resp.base, GRPC_STATUS_OK, NULL, NULL);
}

/* read_next -- post the next receive (one at a time). */
static void
read_next(fb_wcall_t *c)
{
    if (c->reading)
        return;
    if (fb_wcall_read(c, on_event) < 0) {
        c->eof = c->gone = true;
        fb_worker_seed_advance(c);
        return;
    }
    c->reading = true;
}

/* max_stream_bytes -- the most a SendEvent stream may take in the lane.
 * The stream is written only once it is complete and valid, as one span
 * (the original API answers once for all of it, so it is refused or
 * stored whole); a span takes at most half a lane, as a native batch,
 * so that it always fits beside the others. */
static size_t
max_stream_bytes(const fb_worker_t *w)
{
    return (size_t)(w->lane.size / 2);
}

/* drop_stream -- what the stream buffered is not written. */
static void
drop_stream(fb_wcall_t *c)
{
    fb_worker_unblock(c);
    c->buf_len = c->buf_records = 0;
    c->stream_bytes = 0;
}

/* fb_worker_seed_advance -- a stream with nothing in flight: resume it
 * (room came back), or answer it (half-closed and all acknowledged). */
void
fb_worker_seed_advance(fb_wcall_t *c)
{
    if (c->replied || c->on_blocked)
        return; /* answered, or resumed from the blocked list */
    if (c->gone && c->buf_records > 0)
        drop_stream(c); /* not complete: nobody was told it is stored */
    if (c->eof && c->buf_records > 0 && fb_worker_span_put(c) < 0)
        return; /* still no room */
    if (!c->eof) {
        read_next(c);
        return;
    }
    if (c->pending > 0)
        return; /* the last acknowledgement answers */
    if (c->gone) {
        c->replied = true;
        fb_wcall_reply(c, NULL, GRPC_STATUS_CANCELLED, "client went away", NULL);
        return;
    }
    answer(c);
}

/* invalid -- refuse the stream for what one event held; reason names the
 * kind of refusal for the rate-limited log. */
static void
invalid(fb_wcall_t *c, grpc_status_code status, const char *reason, const char *why)
{
    char *p = peer(c);

    fb_log_limited(FB_LOG_NOTICE, reason, "%s: event refused: %s", p, why);
    gpr_free(p);
    c->replied = true;
    drop_stream(c); /* nothing of the stream is written */
    fb_wcall_reply(c, NULL, status, why, NULL);
}

/* fb_worker_print -- one printed event (--print-events), escaped so that a
 * client's bytes cannot forge log lines. */
void
fb_worker_print(const char *access_key, const char *text, size_t len, bool decrypted)
{
    char shown[PRINT_MAX * 4 + 8];

    fb_log_show(shown, sizeof(shown), text, len, PRINT_MAX);
    fb_log_info("event %s%s: %s", access_key, decrypted ? " (decrypted)" : "", shown);
}

/* print_event -- ingester.print_events: one line per accepted event; the
 * seed format decrypted under --decrypt-events when the key is known. */
static void
print_event(const fb_worker_t *w, const fb_tenant_t *t, const char *message)
{
    size_t len = strlen(message), n;
    uint8_t *plain;

    if (t->n_enc_keys == 0 || !w->conf->router_decrypt) {
        fb_worker_print(t->access_key, message, len, false);
        return;
    }
    plain = malloc(len / 2 + 1);
    if (plain == NULL)
        return;
    if (fb_cipher_open_aesgcm_hex(t->enc_keys[0].key, message, len, plain, &n) < 0) {
        fb_log_info("event %s: (does not decrypt with key %s)", t->access_key,
                    t->enc_keys[0].id);
    } else {
        fb_worker_print(t->access_key, (const char *)plain, n, true);
    }
    sodium_memzero(plain, len / 2 + 1);
    free(plain);
}

/* on_event -- one Event of the stream, or its end. */
static void
on_event(fb_wcall_t *c, int ok)
{
    fb_worker_t *w = c->w;
    const fb_tenant_t *t;
    fb_auth_result_t r;
    fb_pballoc_t a;
    fb_record_t rec;
    Api__Event *ev;
    uint8_t *msg, *val;
    const char *key;
    char why[256];
    size_t len = 0;

    c->reading = false;
    if (!ok || c->recv == NULL) { /* half-close, or the client is gone */
        c->eof = true;
        c->gone = !ok;
        fb_worker_seed_advance(c); /* writes the stream, complete and valid */
        return;
    }
    msg = fb_wcall_message(c, &len);
    if (msg == NULL) {
        invalid(c, GRPC_STATUS_INVALID_ARGUMENT, "event malformed", "unreadable message");
        return;
    }
    fb_pballoc_init(&a, 4 * len + 4096);
    ev = api__event__unpack(&a.base, len, msg);
    if (ev == NULL) {
        free(msg);
        invalid(c, GRPC_STATUS_INVALID_ARGUMENT, "event malformed", "malformed api.Event");
        return;
    }
    /* refused, not cut: the unpacked strings end at their first NUL */
    if (fb_event_check_nul(msg, len, why, sizeof(why)) < 0) {
        free(msg);
        api__event__free_unpacked(ev, &a.base);
        invalid(c, GRPC_STATUS_INVALID_ARGUMENT, "event malformed", why);
        return;
    }
    free(msg);
    key = ev->accesskey[0] ? ev->accesskey : c->auth.access_key;
    if (fb_auth_check_tenant(&c->auth, w->keydb, key, strlen(key), &r) != FB_AUTH_OK) {
        api__event__free_unpacked(ev, &a.base);
        fb_worker_refuse(c, &r);
        return;
    }
    if (fb_worker_refuse_revoked(c, r.access_key) < 0) { /* this worker's keys are older */
        api__event__free_unpacked(ev, &a.base);
        return;
    }
    t = fb_keydb_find(w->keydb, r.access_key, strlen(r.access_key));
    if (t == NULL) {
        api__event__free_unpacked(ev, &a.base);
        invalid(c, GRPC_STATUS_PERMISSION_DENIED, "event key", "unknown access key");
        return;
    }
    switch (fb_record_from_event(ev, t, fb_wall_ns(), fb_worker_record_max(w), &rec, why,
                                 sizeof(why))) {
    case FB_RECORD_OK:
        break;
    case FB_RECORD_WRONG_KEY:
        api__event__free_unpacked(ev, &a.base);
        fb_worker_count(w, t->access_key, FB_MC_EVENTS_REFUSED_WRONG_KEY, FB_MT_REFUSED, 1);
        invalid(c, GRPC_STATUS_PERMISSION_DENIED, "event key", why);
        return;
    case FB_RECORD_TOO_LARGE:
        api__event__free_unpacked(ev, &a.base);
        fb_worker_count(w, t->access_key, FB_MC_EVENTS_REFUSED_TOO_LARGE, FB_MT_REFUSED, 1);
        invalid(c, GRPC_STATUS_INVALID_ARGUMENT, "event invalid", why);
        return;
    default:
        api__event__free_unpacked(ev, &a.base);
        fb_worker_count(w, t->access_key, FB_MC_EVENTS_REFUSED_INVALID, FB_MT_REFUSED, 1);
        invalid(c, GRPC_STATUS_INVALID_ARGUMENT, "event invalid", why);
        return;
    }
    c->stream_bytes += fb_rec_size(strlen(t->access_key), rec.size);
    if (c->stream_bytes > max_stream_bytes(w)) {
        api__event__free_unpacked(ev, &a.base);
        snprintf(why, sizeof(why), "stream larger than %zu bytes in the ring (event %llu): "
                 "send fewer events per stream; nothing of it was stored",
                 max_stream_bytes(w), (unsigned long long)c->events + 1);
        invalid(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "stream too large", why);
        return;
    }
    if (fb_wcall_buffer(c, t->access_key, strlen(t->access_key), rec.size, &val) < 0) {
        api__event__free_unpacked(ev, &a.base);
        invalid(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "event out of memory", "out of memory");
        return;
    }
    fb_record_pack(&rec, val);
    tally(c, t->access_key, rec.size);
    if (w->conf->ingester_print_events)
        print_event(w, t, ev->message);
    api__event__free_unpacked(ev, &a.base);
    c->events++;
    read_next(c); /* written once complete: see max_stream_bytes */
}

/* fb_worker_send_event_start -- SendEvent: authenticate, then read events. */
void
fb_worker_send_event_start(fb_wcall_t *c)
{
    if (fb_worker_authenticate(c) < 0)
        return;
    fb_worker_stream_list(c);
    read_next(c);
}

/* busy -- the complete stream waited for room in the lane longer than
 * ingester.backpressure_timeout (Kafka slower than the clients, or away):
 * refused whole with nothing of it written, as a native batch is answered
 * RETRY; UNAVAILABLE is the status gRPC clients take as "try again". */
static void
busy(fb_wcall_t *c, uint64_t now_ms)
{
    const fb_conf_t *conf = c->w->conf;
    char why[200], *p = peer(c);

    /* every busy client could write a line: rate-limited */
    fb_log_limited(FB_LOG_WARNING, "stream busy",
                   "%s: stream of %s (%llu events) refused: no room in the ring for %llu ms "
                   "(ingester.backpressure_timeout), nothing of it written", p,
                   c->auth.access_key, (unsigned long long)c->events,
                   (unsigned long long)(now_ms - c->blocked_since_ms));
    gpr_free(p);
    snprintf(why, sizeof(why), "the ingester is busy: nothing of the stream was stored; send "
             "it again after %llu ms", (unsigned long long)conf->retry_after_ms);
    c->replied = true;
    drop_stream(c);
    fb_wcall_reply(c, NULL, GRPC_STATUS_UNAVAILABLE, why, NULL);
}

/* fb_worker_seed_tick -- now and then: a stream that waited for room too
 * long is refused (busy); a SendEvent stream whose token expired ends with
 * UNAUTHENTICATED; the original API cannot say which events were stored,
 * so the agent sends the stream again (at least once). */
void
fb_worker_seed_tick(fb_wcall_t *c, uint64_t now_ms, int64_t now_s)
{
    char *p;

    if (!c->replied && !c->gone && c->buf_records > 0 && c->blocked_since_ms != 0 &&
        now_ms - c->blocked_since_ms >= c->w->conf->backpressure_timeout_ms) {
        busy(c, now_ms);
        return;
    }
    if (!c->replied && !c->gone && c->revoked != NULL) {
        p = peer(c);
        fb_log_limited(FB_LOG_NOTICE, "stream revoked", "%s: stream of %s closing: %s", p,
                       c->auth.access_key[0] ? c->auth.access_key : "(unbound)", c->revoked);
        gpr_free(p);
        fb_worker_count_refusal(c->w, FB_AUTH_ERR_REVOKED);
        fb_worker_stream_unlist(c);
        drop_stream(c); /* not in the lane: never acknowledged */
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_PERMISSION_DENIED, c->revoked, NULL);
        return;
    }
    if (c->replied || c->gone || !c->auth.has_exp ||
        now_s < c->auth.exp + (int64_t)(c->w->conf->clock_skew_ms / 1000))
        return;
    p = peer(c);
    fb_log_limited(FB_LOG_NOTICE, "stream token expired", "%s: stream of %s closing: token expired",
                   p, c->auth.access_key);
    gpr_free(p);
    fb_worker_count_refusal(c->w, FB_AUTH_ERR_EXPIRED);
    fb_worker_stream_unlist(c);
    drop_stream(c); /* not in the lane: never acknowledged */
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAUTHENTICATED,
                                 "token expired: open a new stream with a fresh token", NULL);
}

/* got_access_key -- ExchangeConfig's request: the tenant's Config. */
static void
got_access_key(fb_wcall_t *c, int ok)
{
    Api__Config cfg = API__CONFIG__INIT;
    const grpc_slice *v = authorization(c);
    Api__AccessKey *req;
    const fb_tenant_t *t;
    fb_auth_result_t r;
    fb_pballoc_t a;
    const char *bare;
    uint8_t *msg;
    char *token;
    size_t len = 0;

    msg = ok ? fb_wcall_message(c, &len) : NULL;
    fb_pballoc_init(&a, 4 * len + 4096);
    req = msg ? api__access_key__unpack(&a.base, len, msg) : NULL;
    free(msg);
    if (req == NULL) {
        fb_wcall_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, "malformed api.AccessKey", NULL);
        return;
    }
    if (fb_auth_check_tenant(&c->auth, c->w->keydb, req->accesskey, strlen(req->accesskey),
                             &r) != FB_AUTH_OK ||
        (t = fb_keydb_find(c->w->keydb, r.access_key, strlen(r.access_key))) == NULL) {
        api__access_key__free_unpacked(req, &a.base);
        fb_worker_refuse(c, &r);
        return;
    }
    api__access_key__free_unpacked(req, &a.base);
    /* AccessToken echoes the presented token, never a new one: the token
     * alone, as fb_auth_verify read it ("bearer", extra spaces and all) */
    if (v == NULL || fb_auth_bearer_token((const char *)GRPC_SLICE_START_PTR(*v),
                                          GRPC_SLICE_LENGTH(*v), &bare, &len) < 0) {
        /* cannot happen: the call was authenticated with this very value */
        fb_log_errorx("ExchangeConfig: no Bearer token in the authorization it verified");
        fb_wcall_reply(c, NULL, GRPC_STATUS_INTERNAL, "internal error", NULL);
        return;
    }
    token = strndup(bare, len);
    if (token == NULL) {
        fb_wcall_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    cfg.accesskey = t->access_key;
    cfg.accesstoken = token;
    cfg.encryptionkey = t->encryption_key_text;
    cfg.userid = t->user_id;
    fb_wcall_reply(c, &cfg.base, GRPC_STATUS_OK, NULL, NULL);
    free(token);
}

/* fb_worker_exchange_config_start -- ExchangeConfig: authenticate, read. */
void
fb_worker_exchange_config_start(fb_wcall_t *c)
{
    if (fb_worker_authenticate(c) < 0)
        return;
    if (fb_wcall_read(c, got_access_key) < 0)
        fb_wcall_finish(c);
}
