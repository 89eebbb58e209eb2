/*
 * worker_acks.c -- from the ring's acknowledgements back to the calls.
 *
 * A call's records go into the lane in spans, each contiguous, in lane
 * order; the spans wait in a FIFO. One acknowledgement thread sleeps on
 * the lane's futex until acked passes the oldest span, then wakes the
 * completion queue with a zero-operation batch on that span's call (the
 * C core's only public way to post an event). The queue thread then reads
 * the failures of every acknowledged span -- before that space can be
 * reused: lane.hold keeps it -- and answers the calls that are complete.
 * All call state stays on the queue thread; the thread shares only the
 * FIFO and the kick flags, under w->mu. Nothing here spins. A lane the
 * producer quarantined ends the process (FB_EXIT_LANE_QUARANTINED).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/worker.h"

#define ACK_WAIT_MS 500

/* ack_thread -- sleep until Kafka acknowledged the oldest span; kick. */
static void *
ack_thread(void *arg)
{
    fb_worker_t *w = arg;

    pthread_mutex_lock(&w->mu);
    while (!w->ack_stop) {
        fb_span_t head;
        uint64_t done;

        if (w->span_len == 0) {
            pthread_cond_wait(&w->cond, &w->mu);
            continue;
        }
        head = w->spans[w->span_head];
        done = w->kicks_done;
        pthread_mutex_unlock(&w->mu);
        fb_lane_wait_acked(&w->lane, head.to, ACK_WAIT_MS);
        if (atomic_load(&w->lane.sh->quarantined)) {
            /* the producer found a corrupt record in this lane: nothing
             * more of it will be acknowledged. Leave at once: the agents'
             * connections close (UNAVAILABLE: they send again), the master
             * starts another worker, and nothing here is answered OK. */
            fb_log_errorx("lane %u quarantined by the producer: exiting so that its calls are "
                          "sent again", w->index);
            _exit(FB_EXIT_LANE_QUARANTINED);
        }
        pthread_mutex_lock(&w->mu);
        if (fb_lane_acked(&w->lane) < head.to || w->span_len == 0 ||
            w->spans[w->span_head].c != head.c)
            continue;
        if (!head.c->kick_pending) {
            head.c->kick_pending = true;
            if (grpc_call_start_batch(head.c->call, NULL, 0, &head.c->kick_tag, NULL) !=
                GRPC_CALL_OK) {
                head.c->kick_pending = false;
                fb_log_errorx("acknowledgement kick refused by gRPC");
            }
        }
        /* until the queue thread has taken this acknowledgement in */
        while (!w->ack_stop && w->kicks_done == done)
            pthread_cond_wait(&w->cond, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* fb_worker_acks_start -- the acknowledgement thread. */
int
fb_worker_acks_start(fb_worker_t *w)
{
    if (pthread_create(&w->ack_thread, NULL, ack_thread, w) != 0) {
        fb_log_errorx("pthread_create(acknowledgements) failed");
        return -1;
    }
    w->ack_started = true;
    return 0;
}

/* fb_worker_acks_stop -- stop and join the thread; free the FIFO. */
void
fb_worker_acks_stop(fb_worker_t *w)
{
    if (w->ack_started) {
        pthread_mutex_lock(&w->mu);
        w->ack_stop = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->ack_thread, NULL);
    }
    free(w->spans);
    free(w->blocked);
}

/* fb_wcall_buffer -- room for one record in the call's next span. */
int
fb_wcall_buffer(fb_wcall_t *c, const char *key, size_t key_len, size_t val_len, uint8_t **val)
{
    size_t need = 6 + key_len + val_len;
    uint8_t *p;

    if (c->buf_len + need > c->buf_cap) {
        size_t cap = c->buf_cap ? c->buf_cap : 64 * 1024;
        while (cap < c->buf_len + need)
            cap *= 2;
        p = realloc(c->buf, cap);
        if (p == NULL)
            return -1;
        c->buf = p;
        c->buf_cap = cap;
    }
    p = c->buf + c->buf_len;
    p[0] = (uint8_t)(key_len >> 8);
    p[1] = (uint8_t)key_len;
    p[2] = (uint8_t)(val_len >> 24);
    p[3] = (uint8_t)(val_len >> 16);
    p[4] = (uint8_t)(val_len >> 8);
    p[5] = (uint8_t)val_len;
    memcpy(p + 6, key, key_len);
    *val = p + 6 + key_len;
    c->buf_len += need;
    c->buf_records++;
    return 0;
}

/* fb_worker_span_write -- the buffered records into the lane as one
 * span. 0 (or nothing to do), -EAGAIN when the lane is full (nothing
 * written; try again after an acknowledgement). */
int
fb_worker_span_write(fb_wcall_t *c)
{
    fb_worker_t *w = c->w;
    uint64_t from = fb_lane_reserved(&w->lane);
    size_t off = 0;

    if (c->buf_records == 0)
        return 0;
    while (off < c->buf_len) {
        const uint8_t *p = c->buf + off;
        size_t klen = (size_t)p[0] << 8 | p[1];
        size_t vlen = (size_t)p[2] << 24 | (size_t)p[3] << 16 | (size_t)p[4] << 8 | p[5];
        fb_rec_t *rec;

        if (fb_lane_reserve(&w->lane, klen, vlen, &rec) < 0) {
            fb_lane_abandon(&w->lane);
            return -EAGAIN;
        }
        memcpy(fb_rec_key(rec), p + 6, klen);
        memcpy(fb_rec_val(rec), p + 6 + klen, vlen);
        off += 6 + klen + vlen;
    }
    fb_lane_publish(&w->lane);

    pthread_mutex_lock(&w->mu);
    if (w->span_len == w->span_cap) {
        size_t cap = w->span_cap ? w->span_cap * 2 : 256;
        fb_span_t *n = malloc(cap * sizeof(*n));
        if (n == NULL)
            fb_panic("malloc(%zu spans) failed", cap);
        for (size_t i = 0; i < w->span_len; i++)
            n[i] = w->spans[(w->span_head + i) % w->span_cap];
        free(w->spans);
        w->spans = n;
        w->span_cap = cap;
        w->span_head = 0;
    }
    w->spans[(w->span_head + w->span_len) % w->span_cap] =
        (fb_span_t){.from = from, .to = fb_lane_reserved(&w->lane), .c = c, .seq = c->buf_seq};
    if (w->span_len++ == 0)
        w->lane.hold = from; /* keep it until its failures are read */
    c->pending++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    c->buf_len = 0;
    c->buf_records = 0;
    return 0;
}

/* fb_worker_unblock -- take c off the list of calls waiting for room. */
void
fb_worker_unblock(fb_wcall_t *c)
{
    fb_worker_t *w = c->w;

    for (size_t i = 0; c->on_blocked && i < w->n_blocked; i++)
        if (w->blocked[i] == c) {
            memmove(w->blocked + i, w->blocked + i + 1,
                    (w->n_blocked - i - 1) * sizeof(*w->blocked));
            w->n_blocked--;
            break;
        }
    c->on_blocked = false;
    c->blocked_since_ms = 0;
}

/* fb_worker_span_put -- the buffered span into the lane, or c listed to
 * be resumed after the next acknowledgement (blocked_since_ms says since
 * when it waits). 0, or -EAGAIN (nothing of it written). */
int
fb_worker_span_put(fb_wcall_t *c)
{
    fb_worker_t *w = c->w;

    if (fb_worker_span_write(c) == 0) {
        fb_worker_unblock(c);
        return 0;
    }
    if (c->blocked_since_ms == 0)
        c->blocked_since_ms = fb_monotonic_ms();
    if (!c->on_blocked) {
        if (w->n_blocked == w->cap_blocked) {
            size_t cap = w->cap_blocked ? w->cap_blocked * 2 : 64;
            fb_wcall_t **b = realloc(w->blocked, cap * sizeof(*b));
            if (b == NULL)
                fb_panic("realloc(blocked calls) failed");
            w->blocked = b;
            w->cap_blocked = cap;
        }
        w->blocked[w->n_blocked++] = c; /* resumed after the next acknowledgement */
        c->on_blocked = true;
    }
    return -EAGAIN;
}

/* release_or_advance -- a call whose spans may all be acknowledged now. */
static void
release_or_advance(fb_wcall_t *c)
{
    bool free_it;

    pthread_mutex_lock(&c->w->mu);
    free_it = c->grpc_done && c->pending == 0 && !c->kick_pending;
    pthread_mutex_unlock(&c->w->mu);
    if (free_it)
        fb_wcall_release(c);
    else if (!c->grpc_done && (c->pending == 0 || c->native))
        fb_wcall_advance(c);
}

/* fb_worker_acks_kicked -- on the queue thread: take every acknowledged
 * span, read its failures, answer or resume the calls concerned. */
void
fb_worker_acks_kicked(fb_wcall_t *kicked)
{
    fb_worker_t *w = kicked->w;
    uint64_t acked = fb_lane_acked(&w->lane);
    fb_wcall_t *touched[64];
    size_t nt = 0;

    pthread_mutex_lock(&w->mu);
    kicked->kick_pending = false;
    while (w->span_len > 0) {
        fb_span_t *ch = &w->spans[w->span_head];
        int32_t err;
        bool seen = false;

        if (ch->to > acked)
            break;
        /* err is 0, the first failure's, or FB_REC_ERR_UNREADABLE: records
         * that cannot be read back are not known to be in Kafka, so they
         * are never answered OK */
        if (fb_lane_first_failure(&w->lane, ch->from, ch->to, &err) < 0)
            fb_log_errorx("lane %u: a record header in [%llu, %llu) is corrupt after "
                          "the acknowledgement: the call is answered as not stored",
                          w->index, (unsigned long long)ch->from, (unsigned long long)ch->to);
        if (ch->c->native) {
            fb_worker_native_acked(ch->c, ch->seq, err);
        } else if (err != 0 && !ch->c->failed) {
            ch->c->failed = true;
            ch->c->fail_err = err;
        }
        ch->c->pending--;
        for (size_t i = 0; i < nt; i++)
            seen |= touched[i] == ch->c;
        if (!seen && nt < 64)
            touched[nt++] = ch->c;
        w->span_head = (w->span_head + 1) % w->span_cap;
        w->span_len--;
        if (nt == 64)
            break; /* the rest on the next kick */
    }
    w->lane.hold = w->span_len ? w->spans[w->span_head].from : UINT64_MAX;
    w->kicks_done++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);

    if (nt == 0 || touched[0] != kicked) { /* the kicked call may be done too */
        bool seen = false;
        for (size_t i = 0; i < nt; i++)
            seen |= touched[i] == kicked;
        if (!seen)
            release_or_advance(kicked);
    }
    for (size_t i = 0; i < nt; i++)
        release_or_advance(touched[i]);

    /* room came back: calls waiting for the lane try again */
    for (size_t i = 0, n = w->n_blocked; i < n; i++) {
        fb_wcall_t *c = w->blocked[0];
        memmove(w->blocked, w->blocked + 1, (w->n_blocked - 1) * sizeof(*w->blocked));
        w->n_blocked--;
        c->on_blocked = false; /* flushing again lists it again */
        fb_wcall_advance(c);
    }
}
