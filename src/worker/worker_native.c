/*
 * worker_native.c -- fbpipe.v1.Ingest, the native API: Exchange (the
 * agent's configuration) and Stream (bidi: batches in, one Ack per batch).
 *
 * A batch becomes one contiguous span of the lane and is acknowledged OK
 * only after Kafka acknowledged every record of it; REJECTED (with the
 * reason) when a record is refused for good or the batch is invalid;
 * RETRY when it waited for room in the lane longer than
 * ingester.backpressure_timeout (nothing of it was written). A stream never
 * has more than ingester.max_inflight_batches batches read and not yet
 * answered: past that it stops reading, so a client that does not read its
 * acks is held by HTTP/2 flow control, never buffered without bound.
 *
 * Everything here runs on the completion-queue thread. A stream whose
 * token expires stops reading, answers what it holds, and closes with
 * UNAUTHENTICATED.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <librdkafka/rdkafka.h>
#include <sodium.h>

#include "common/cipher.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/batch.h"
#include "common/pballoc.h"
#include "fbpipe.pb-c.h"
#include "worker/worker.h"

static void on_batch(fb_wcall_t *c, int ok);

/* max_batch_bytes -- the largest Batch message a stream accepts: the
 * message limit, and at most a quarter of a lane so that a batch always
 * fits beside the ones in flight. */
static uint64_t
max_batch_bytes(const fb_worker_t *w)
{
    uint64_t lane_quarter = w->lane.size / 4;

    return w->conf->max_message_size < lane_quarter ? w->conf->max_message_size : lane_quarter;
}

/* ---- Exchange ---------------------------------------------------------- */

/* config_version -- changes whenever what Exchange tells the agent changes. */
static uint64_t
config_version(const fb_tenant_t *t)
{
    crypto_generichash_state st;
    uint8_t h[8];
    uint64_t v = 0;

    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)t->user_id, strlen(t->user_id) + 1);
    if (t->n_enc_keys > 0) {
        crypto_generichash_update(&st, (const uint8_t *)t->enc_keys[0].id,
                                  strlen(t->enc_keys[0].id) + 1);
        crypto_generichash_update(&st, t->enc_keys[0].key, FB_ENC_KEY_LEN);
    }
    crypto_generichash_final(&st, h, sizeof(h));
    for (size_t i = 0; i < sizeof(h); i++)
        v = v << 8 | h[i];
    return v;
}

/* got_exchange -- the ExchangeRequest: the tenant's agent configuration. */
static void
got_exchange(fb_wcall_t *c, int ok)
{
    Fbpipe__V1__ExchangeResponse resp = FBPIPE__V1__EXCHANGE_RESPONSE__INIT;
    Fbpipe__V1__ExchangeRequest *req;
    const fb_worker_t *w = c->w;
    const fb_tenant_t *t;
    fb_auth_result_t r;
    fb_pballoc_t a;
    uint8_t *msg;
    size_t len = 0, overhead, n_ciphers = 0;
    Fbpipe__V1__Cipher ciphers[8]; /* the first few the agent lists are enough */
    const char *key;

    msg = ok ? fb_wcall_message(c, &len) : NULL;
    fb_pballoc_init(&a, 4 * len + 4096);
    req = msg ? fbpipe__v1__exchange_request__unpack(&a.base, len, msg) : NULL;
    free(msg);
    if (req == NULL) {
        fb_wcall_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT,
                       "malformed fbpipe.v1.ExchangeRequest", NULL);
        return;
    }
    key = req->access_key[0] ? req->access_key : c->auth.access_key;
    if (fb_auth_check_tenant(&c->auth, w->keydb, key, strlen(key), &r) != FB_AUTH_OK ||
        (t = fb_keydb_find(w->keydb, r.access_key, strlen(r.access_key))) == NULL) {
        fbpipe__v1__exchange_request__free_unpacked(req, &a.base);
        if (r.err == FB_AUTH_OK) { /* unbound token, no key named */
            fb_wcall_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT,
                           "access_key is required with a token not bound to a key", NULL);
            return;
        }
        fb_worker_refuse(c, &r);
        return;
    }
    for (size_t i = 0; i < req->n_ciphers && n_ciphers < sizeof(ciphers) / sizeof(ciphers[0]);
         i++)
        ciphers[n_ciphers++] = req->ciphers[i];
    fbpipe__v1__exchange_request__free_unpacked(req, &a.base);

    /* the record around a payload: identity, tag, agent id, timestamps */
    overhead = 64 + strlen(t->access_key) * 2 + strlen(t->user_id) + FB_AGENT_ID_MAX +
               FB_TAG_MAX + FB_KEY_ID_MAX;
    resp.access_key = t->access_key;
    resp.user_id = t->user_id;
    resp.max_batch_records = (uint32_t)w->conf->max_batch_records;
    resp.max_batch_bytes = max_batch_bytes(w);
    resp.max_record_bytes = fb_worker_record_max(w) > overhead
                                ? fb_worker_record_max(w) - overhead : 0;
    resp.config_version = config_version(t);
    resp.refresh_interval_s = (uint32_t)(w->conf->refresh_interval_ms / 1000);
    if (t->n_enc_keys > 0) {
        /* the second version where the agent writes it; agents from before
         * it list nothing and get the one they know */
        resp.cipher = FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305;
        for (size_t i = 0; i < n_ciphers; i++)
            if (ciphers[i] == FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2)
                resp.cipher = FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2;
        resp.key_id = (char *)t->enc_keys[0].id;
        resp.encryption_key.data = (uint8_t *)t->enc_keys[0].key;
        resp.encryption_key.len = FB_ENC_KEY_LEN;
        /* stored base64-encoded: 4 bytes for every 3 */
        resp.max_record_bytes = resp.max_record_bytes / 4 * 3;
    }
    fb_wcall_reply(c, &resp.base, GRPC_STATUS_OK, NULL, NULL);
}

/* fb_worker_exchange_start -- Exchange: authenticate, read the request. */
void
fb_worker_exchange_start(fb_wcall_t *c)
{
    if (fb_worker_authenticate(c) < 0)
        return;
    if (fb_wcall_read(c, got_exchange) < 0)
        fb_wcall_finish(c);
}

/* ---- Stream ------------------------------------------------------------ */

/* inflight_remove -- seq is answered (its Ack was sent or dropped). */
static void
inflight_remove(fb_wcall_t *c, uint64_t seq)
{
    for (unsigned i = 0; i < c->n_inflight; i++)
        if (c->inflight[i] == seq) {
            c->n_inflight--;
            c->inflight[i] = c->inflight[c->n_inflight];
            c->inflight_n[i] = c->inflight_n[c->n_inflight];
            return;
        }
}

/* queue_ack -- answer batch seq (sent in order of answering). */
static void
queue_ack(fb_wcall_t *c, uint64_t seq, int code, uint32_t retry_after_ms, const char *detail)
{
    unsigned cap = (unsigned)c->w->conf->max_inflight_batches;
    fb_ack_out_t *a;

    if (c->n_acks == cap) /* cannot happen: every queued ack is in flight */
        fb_panic("stream ack queue overflow (%u)", cap);
    /* the ledger: what became of the batch's records */
    for (unsigned i = 0; i < c->n_inflight; i++)
        if (c->inflight[i] == seq) {
            if (code == FBPIPE__V1__ACK_CODE__OK)
                fb_worker_count(c->w, c->auth.access_key, FB_MC_EVENTS_ACKED, FB_MT_ACKED,
                                c->inflight_n[i]);
            else if (code == FBPIPE__V1__ACK_CODE__REJECTED)
                fb_worker_count(c->w, c->auth.access_key, FB_MC_EVENTS_REFUSED_INVALID,
                                FB_MT_REFUSED, c->inflight_n[i]);
            else
                fb_metrics_add(c->w->metrics, FB_MC_EVENTS_RETRY, c->inflight_n[i]);
            break;
        }
    a = &c->acks[(c->ack_head + c->n_acks) % cap];
    a->seq = seq;
    a->code = code;
    a->retry_after_ms = retry_after_ms;
    snprintf(a->detail, sizeof(a->detail), "%.199s", detail ? detail : "");
    c->n_acks++;
}

/* end_stream -- stop reading; close with status once everything held is
 * answered (the first reason wins); reason names the kind of ending for
 * the rate-limited log. */
static void
end_stream(fb_wcall_t *c, grpc_status_code status, const char *reason, const char *detail)
{
    char *p;

    if (c->ending)
        return;
    p = grpc_call_get_peer(c->call);
    fb_log_limited(FB_LOG_NOTICE, reason, "%s: stream of %s closing: %s", p, c->auth.access_key,
                   detail);
    gpr_free(p);
    c->ending = true;
    c->end_status = status;
    snprintf(c->end_detail, sizeof(c->end_detail), "%.199s", detail);
}

/* refuse_batch -- answer a batch REJECTED without writing any of it;
 * reason names the kind of rejection for the rate-limited log (a hostile
 * client can have every batch of every stream rejected). */
static void
refuse_batch(fb_wcall_t *c, uint64_t seq, const char *reason, const char *why)
{
    char *p = grpc_call_get_peer(c->call);

    fb_log_limited(FB_LOG_NOTICE, reason, "%s: batch %" PRIu64 " of %s rejected: %s", p, seq,
                   c->auth.access_key, why);
    gpr_free(p);
    queue_ack(c, seq, FBPIPE__V1__ACK_CODE__REJECTED, 0, why);
}

/* drop_buffered -- the batch waiting for room is not written: RETRY. */
static void
drop_buffered(fb_wcall_t *c, const char *why)
{
    if (c->buf_records == 0)
        return;
    fb_worker_unblock(c);
    c->buf_len = c->buf_records = 0;
    queue_ack(c, c->buf_seq, FBPIPE__V1__ACK_CODE__RETRY, (uint32_t)c->w->conf->retry_after_ms,
              why);
}

/* send_ack -- the oldest queued Ack, if no write is in flight. */
static void
send_ack(fb_wcall_t *c)
{
    unsigned cap = (unsigned)c->w->conf->max_inflight_batches;
    Fbpipe__V1__Ack ack = FBPIPE__V1__ACK__INIT;
    const fb_ack_out_t *a = &c->acks[c->ack_head];
    grpc_op op;
    grpc_slice s;
    size_t len;

    ack.seq = a->seq;
    ack.code = (Fbpipe__V1__AckCode)a->code;
    ack.detail = (char *)a->detail;
    ack.retry_after_ms = a->retry_after_ms;
    len = fbpipe__v1__ack__get_packed_size(&ack);
    s = grpc_slice_malloc(len);
    fbpipe__v1__ack__pack(&ack, GRPC_SLICE_START_PTR(s));
    c->send_bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->send_bb;
    c->ack_head = (c->ack_head + 1) % cap;
    c->n_acks--;
    c->inflight_sent = a->seq;
    if (grpc_call_start_batch(c->call, &op, 1, &c->write_tag, NULL) != GRPC_CALL_OK) {
        fb_log_errorx("grpc_call_start_batch(ack) failed");
        grpc_byte_buffer_destroy(c->send_bb);
        c->send_bb = NULL;
        c->gone = c->eof = true;
        inflight_remove(c, a->seq);
        return;
    }
    c->writing = true;
}

/* close_stream -- everything is answered: the final status. */
static void
close_stream(fb_wcall_t *c)
{
    grpc_status_code status = GRPC_STATUS_OK;
    const char *detail = NULL;

    c->replied = true;
    fb_worker_stream_unlist(c);
    if (c->ending) {
        status = c->end_status;
        detail = c->end_detail;
    } else if (c->gone) {
        status = GRPC_STATUS_CANCELLED;
        detail = "client went away";
    }
    if (c->reading) {
        /* the client is silent but there: cancelling completes the read */
        grpc_call_cancel_with_status(c->call, status, detail ? detail : "", NULL);
        return; /* on_batch, failing, finishes the call */
    }
    fb_wcall_reply(c, NULL, status, detail, NULL);
}

/* fb_worker_native_advance -- make progress on a stream: write the next
 * Ack, retry a blocked batch, read on, or close. */
void
fb_worker_native_advance(fb_wcall_t *c)
{
    if (c->replied)
        return;
    if (c->gone && c->buf_records > 0) { /* nobody to answer */
        fb_worker_unblock(c);
        c->buf_len = c->buf_records = 0;
    }
    if (c->ending && c->buf_records > 0)
        drop_buffered(c, "stream closing: send the batch again on a new stream");
    if (c->buf_records > 0 && fb_worker_span_put(c) < 0) {
        /* still no room; acks of earlier batches still go out */
    }
    if (!c->writing && c->n_acks > 0 && !c->gone)
        send_ack(c);
    if (c->gone) {
        c->n_acks = 0;
        c->n_inflight = 0;
    }
    if (!c->reading && !c->eof && !c->ending && !c->gone && c->buf_records == 0 &&
        c->n_inflight < c->w->conf->max_inflight_batches) {
        if (fb_wcall_read(c, on_batch) < 0)
            c->eof = c->gone = true;
        else
            c->reading = true;
    }
    if ((c->eof || c->ending || c->gone) && c->buf_records == 0 && c->pending == 0 &&
        c->n_acks == 0 && !c->writing && !(c->reading && !c->ending))
        close_stream(c);
}

/* fb_worker_native_written -- an Ack went out (or the client is gone). */
void
fb_worker_native_written(fb_wcall_t *c, int ok)
{
    c->writing = false;
    grpc_byte_buffer_destroy(c->send_bb);
    c->send_bb = NULL;
    inflight_remove(c, c->inflight_sent);
    if (!ok)
        c->gone = c->eof = true;
    fb_worker_native_advance(c);
}

/* fb_worker_native_acked -- Kafka acknowledged the span of batch seq;
 * err is the first record's permanent error, 0 if none. */
void
fb_worker_native_acked(fb_wcall_t *c, uint64_t seq, int32_t err)
{
    char detail[128];

    if (c->gone || c->replied)
        return;
    if (err == 0) {
        queue_ack(c, seq, FBPIPE__V1__ACK_CODE__OK, 0, NULL);
        return;
    }
    if (err == FB_REC_ERR_UNREADABLE) {
        queue_ack(c, seq, FBPIPE__V1__ACK_CODE__RETRY, (uint32_t)c->w->conf->retry_after_ms,
                  "the ingester could not confirm that the batch was stored: send it again");
        return;
    }
    snprintf(detail, sizeof(detail), "a record was refused by Kafka: %s",
             rd_kafka_err2name((rd_kafka_resp_err_t)err));
    refuse_batch(c, seq, "batch refused by Kafka", detail);
}

/* print_record -- ingester.print_events: one line per accepted record,
 * decrypted under --decrypt-events when the key is known. */
static void
print_record(const fb_wcall_t *c, const fb_tenant_t *t, const fb_batch_rec_t *r)
{
    const fb_enc_key_t *k = NULL;
    char key_id[FB_KEY_ID_MAX + 1];
    uint8_t *plain;
    size_t n;

    if (r->enc != 0 && r->key_id.len <= FB_KEY_ID_MAX) {
        memcpy(key_id, r->key_id.p, r->key_id.len);
        key_id[r->key_id.len] = '\0';
        k = fb_tenant_enc_key(t, key_id);
    }
    if (r->enc == 0) {
        fb_worker_print(t->access_key, (const char *)r->payload.p, r->payload.len, false);
        return;
    }
    if (!c->w->conf->router_decrypt || k == NULL) {
        fb_log_info("event %s: (encrypted, %zu bytes)", t->access_key, r->payload.len);
        return;
    }
    plain = malloc(r->payload.len + 1);
    if (plain == NULL)
        return;
    if (fb_cipher_open_xchacha((int)r->enc, k->key, t->access_key, key_id, r->payload.p,
                               r->payload.len, plain, &n) < 0)
        fb_log_info("event %s: (does not decrypt with key %s)", t->access_key, key_id);
    else
        fb_worker_print(t->access_key, (const char *)plain, n, true);
    sodium_memzero(plain, r->payload.len + 1);
    free(plain);
}

/* take_batch -- validate and buffer one batch; 0, or -1 after rejecting
 * it (nothing of it is written). */
static int
take_batch(fb_wcall_t *c, const fb_batch_t *b, const fb_tenant_t *t)
{
    fb_worker_t *w = c->w;
    int64_t now = fb_wall_ns();
    uint64_t lane_bytes = 0;
    size_t key_len = strlen(t->access_key);
    char why[256], detail[300];

    c->buf_len = c->buf_records = 0;
    if (fb_batch_check(b, why, sizeof(why)) != FB_RECORD_OK) {
        refuse_batch(c, b->seq, "batch invalid", why);
        return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        size_t size;
        uint8_t *val;

        if (fb_batch_record_check(b, i, t, now, fb_worker_record_max(w), &size, why,
                                  sizeof(why)) != FB_RECORD_OK) {
            snprintf(detail, sizeof(detail), "record %zu: %s", i, why);
            c->buf_len = c->buf_records = 0;
            refuse_batch(c, b->seq, "batch invalid", detail);
            return -1;
        }
        lane_bytes += fb_rec_size(key_len, size);
        if (lane_bytes > w->lane.size / 2) {
            c->buf_len = c->buf_records = 0;
            refuse_batch(c, b->seq, "batch too large",
                         "batch too large for the ring: send smaller batches");
            return -1;
        }
        if (fb_wcall_buffer(c, t->access_key, key_len, size, &val) < 0) {
            c->buf_len = c->buf_records = 0;
            refuse_batch(c, b->seq, "batch out of memory", "out of memory");
            return -1;
        }
        fb_batch_record_write(b, i, t, now, val);
        if (w->conf->ingester_print_events)
            print_record(c, t, &b->recs[i]);
    }
    c->buf_seq = b->seq;
    c->events += b->n;
    return 0;
}

/* on_batch -- one Batch of the stream, or its end. */
static void
on_batch(fb_wcall_t *c, int ok)
{
    fb_worker_t *w = c->w;
    const fb_tenant_t *t = NULL;
    fb_batch_t b;
    fb_auth_result_t r;
    uint64_t seq;
    size_t len = 0, n;
    grpc_slice slice;
    const uint8_t *msg;
    char why[256];

    c->reading = false;
    if (c->replied) { /* cancelled by close_stream: the call is over */
        fb_wcall_finish(c);
        return;
    }
    if (!ok || c->recv == NULL) { /* half-close, or the client is gone */
        c->eof = true;
        c->gone = !ok;
        fb_worker_native_advance(c);
        return;
    }
    /* read in place: the records below point into this slice */
    if (fb_wcall_slice(c, &slice) < 0) {
        end_stream(c, GRPC_STATUS_INVALID_ARGUMENT, "stream malformed", "unreadable message");
        fb_worker_native_advance(c);
        return;
    }
    msg = GRPC_SLICE_START_PTR(slice);
    len = GRPC_SLICE_LENGTH(slice);
    if (fb_batch_peek(msg, len, &seq, &n) < 0) {
        grpc_slice_unref(slice);
        end_stream(c, GRPC_STATUS_INVALID_ARGUMENT, "stream malformed",
                   "malformed fbpipe.v1.Batch");
        fb_worker_native_advance(c);
        return;
    }
    for (unsigned i = 0; i < c->n_inflight; i++)
        if (c->inflight[i] == seq) {
            grpc_slice_unref(slice);
            snprintf(why, sizeof(why), "batch seq %" PRIu64 " is already in flight on this stream",
                     seq);
            end_stream(c, GRPC_STATUS_INVALID_ARGUMENT, "stream duplicate seq", why);
            fb_worker_native_advance(c);
            return;
        }
    c->inflight_n[c->n_inflight] = 0; /* counted once parsed: a count is a client's word */
    c->inflight[c->n_inflight++] = seq;

    /* checked before parsing: a hostile count never sizes anything */
    if (c->ending) {
        queue_ack(c, seq, FBPIPE__V1__ACK_CODE__RETRY, (uint32_t)w->conf->retry_after_ms,
                  "stream closing: send the batch again on a new stream");
        grpc_slice_unref(slice);
        fb_worker_native_advance(c);
        return;
    }
    if (n > w->conf->max_batch_records || len > max_batch_bytes(w)) {
        if (n > w->conf->max_batch_records)
            snprintf(why, sizeof(why), "%zu records in a batch, at most %" PRIu64, n,
                     w->conf->max_batch_records);
        else
            snprintf(why, sizeof(why), "batch of %zu bytes, at most %" PRIu64, len,
                     max_batch_bytes(w));
        grpc_slice_unref(slice);
        refuse_batch(c, seq, "batch too large", why);
        fb_worker_native_advance(c);
        return;
    }
    /* parsed in place: the records point into the slice, nothing is allocated
     * per record; recs grows to the largest count allowed */
    if (n > w->recs_cap) {
        fb_batch_rec_t *grown = realloc(w->recs, n * sizeof(*grown));
        if (grown == NULL) {
            grpc_slice_unref(slice);
            refuse_batch(c, seq, "batch out of memory", "out of memory");
            fb_worker_native_advance(c);
            return;
        }
        w->recs = grown;
        w->recs_cap = n;
    }
    if (fb_batch_parse(msg, len, w->recs, w->recs_cap, &b) < 0) {
        grpc_slice_unref(slice);
        c->n_inflight--;
        end_stream(c, GRPC_STATUS_INVALID_ARGUMENT, "stream malformed",
                   "malformed fbpipe.v1.Batch");
        fb_worker_native_advance(c);
        return;
    }
    for (unsigned i = 0; i < c->n_inflight; i++)
        if (c->inflight[i] == seq)
            c->inflight_n[i] = (uint32_t)b.n;
    fb_worker_count(w, c->auth.access_key, FB_MC_EVENTS_RECEIVED, FB_MT_RECEIVED, b.n);
    fb_worker_count(w, c->auth.access_key, FB_MC_BYTES_RECEIVED, FB_MT_BYTES_RECEIVED, len);
    if (fb_auth_check_tenant(&c->auth, w->keydb, c->auth.access_key,
                             strlen(c->auth.access_key), &r) == FB_AUTH_OK)
        t = fb_keydb_find(w->keydb, r.access_key, strlen(r.access_key));
    if (t == NULL) { /* disabled or revoked since the stream opened */
        grpc_slice_unref(slice);
        c->n_inflight--;
        fb_worker_count_refusal(w, r.err);
        end_stream(c, (grpc_status_code)r.grpc_status, "stream tenant refused", r.detail);
        fb_worker_native_advance(c);
        return;
    }
    if (b.n == 0)
        queue_ack(c, seq, FBPIPE__V1__ACK_CODE__OK, 0, "empty batch");
    else if (take_batch(c, &b, t) == 0)
        fb_worker_span_put(c);
    grpc_slice_unref(slice);
    fb_worker_native_advance(c);
}

/* fb_worker_stream_start -- Stream: authenticate (a bound token names the
 * stream's tenant), then read batches. */
void
fb_worker_stream_start(fb_wcall_t *c)
{
    unsigned cap = (unsigned)c->w->conf->max_inflight_batches;

    if (fb_worker_authenticate(c) < 0)
        return;
    if (c->auth.unbound) {
        fb_worker_count_refusal(c->w, FB_AUTH_ERR_UNBOUND_NOT_ALLOWED);
        c->replied = true;
        fb_wcall_reply(c, NULL, GRPC_STATUS_PERMISSION_DENIED,
                       "fbpipe.v1.Ingest/Stream needs a token bound to an access key", NULL);
        return;
    }
    c->native = true;
    c->inflight = calloc(cap, sizeof(*c->inflight));
    c->inflight_n = calloc(cap, sizeof(*c->inflight_n));
    c->acks = calloc(cap, sizeof(*c->acks));
    if (c->inflight == NULL || c->inflight_n == NULL || c->acks == NULL) {
        c->replied = true;
        fb_wcall_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    fb_worker_stream_list(c);
    fb_worker_native_advance(c);
}

/* fb_worker_native_tick -- now and then: token expiry and batches that
 * waited for room too long. */
void
fb_worker_native_tick(fb_wcall_t *c, uint64_t now_ms, int64_t now_s)
{
    fb_worker_t *w = c->w;

    if (c->replied)
        return;
    if (!c->ending && c->revoked != NULL) {
        /* nothing more of it is written: what it holds is answered RETRY
         * (its agent then meets the new keys), what is in the lane ends */
        fb_worker_count_refusal(w, FB_AUTH_ERR_REVOKED);
        drop_buffered(c, c->revoked);
        end_stream(c, GRPC_STATUS_PERMISSION_DENIED, "stream revoked", c->revoked);
    }
    if (!c->ending && c->auth.has_exp &&
        now_s >= c->auth.exp + (int64_t)(w->conf->clock_skew_ms / 1000)) {
        fb_worker_count_refusal(w, FB_AUTH_ERR_EXPIRED);
        end_stream(c, GRPC_STATUS_UNAUTHENTICATED, "stream token expired",
                   "token expired: open a new stream with a fresh token");
    }
    if (c->buf_records > 0 && c->blocked_since_ms != 0 &&
        now_ms - c->blocked_since_ms >= w->conf->backpressure_timeout_ms)
        drop_buffered(c, "the ingester is busy: send the batch again after retry_after_ms");
    fb_worker_native_advance(c);
}
