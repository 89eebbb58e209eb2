/*
 * worker_server.c -- the worker's gRPC server: credentials, the listen
 * address, the completion-queue loop, routing of new calls, and a clean
 * shutdown that drains every call before grpc_shutdown().
 *
 * Every batch that returned GRPC_CALL_OK yields exactly one event; the
 * tag of every event is an fb_wcall_t whose step runs next. The loop
 * never blocks on anything but the completion queue.
 *
 * What a client can make the worker log (refusals, gRPC's own lines such
 * as failed TLS handshakes) goes through the rate-limited log, never one
 * line per call or connection.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "common/clock.h"
#include "common/listen_check.h"
#include "common/loaded.h"
#include "common/log.h"
#include "common/proc.h"
#include "worker/worker.h"

#define STOP_CHECK_MS 200
#define METHOD_SHOW_MAX 200 /* bytes of an unknown method's path in a log line */
#define GRPC_SHOW_MAX 400   /* bytes of a gRPC core message in a log line */

static volatile sig_atomic_t stop_requested;

/* What gRPC logged first while the listener was being added: the reason
 * it refused, for the one line that says why the worker cannot listen. */
static bool listen_capture;
static char listen_error[GRPC_SHOW_MAX * 4 + 8];

static volatile sig_atomic_t retire_requested;

static void
on_stop(int sig)
{
    if (sig == SIGUSR2)
        retire_requested = 1;
    else
        stop_requested = 1;
}

static void new_call(fb_wcall_t *c, int ok);
static void grpc_log(gpr_log_func_args *args);

/* wcall_new -- a call object with its step. */
static fb_wcall_t *
wcall_new(fb_worker_t *w, fb_wcall_step_t step)
{
    fb_wcall_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        fb_panic("calloc(call) failed");
    c->w = w;
    c->step = step;
    c->tag = (fb_wtag_t){.c = c, .kind = FB_WTAG_STEP};
    c->kick_tag = (fb_wtag_t){.c = c, .kind = FB_WTAG_KICK};
    c->write_tag = (fb_wtag_t){.c = c, .kind = FB_WTAG_WRITE};
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->request_md);
    w->calls++;
    return c;
}

/* fb_wcall_finish -- the last gRPC event of a call: free it now, or once
 * its spans are acknowledged and no kick is outstanding. */
void
fb_wcall_finish(fb_wcall_t *c)
{
    bool busy;

    pthread_mutex_lock(&c->w->mu);
    busy = c->pending > 0 || c->kick_pending;
    c->grpc_done = true;
    pthread_mutex_unlock(&c->w->mu);
    if (!busy)
        fb_wcall_release(c);
}

/* peer_host -- the client's address without its port, for counting. */
static char *
peer_host(grpc_call *call)
{
    char *p = grpc_call_get_peer(call), *colon, *host;

    colon = p ? strrchr(p, ':') : NULL;
    host = p ? strndup(p, colon && colon != p ? (size_t)(colon - p) : strlen(p)) : NULL;
    gpr_free(p);
    return host;
}

/* count_of -- the entry of name in a table of counts, added if new; NULL
 * if out of memory. */
static fb_peer_count_t *
count_of(fb_peer_count_t **tab, size_t *n, size_t *cap, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*tab)[i].name, name) == 0)
            return &(*tab)[i];
    if (*n == *cap) {
        size_t more = *cap ? *cap * 2 : 16;
        fb_peer_count_t *t = realloc(*tab, more * sizeof(*t));
        if (t == NULL)
            return NULL;
        *tab = t;
        *cap = more;
    }
    (*tab)[*n] = (fb_peer_count_t){.name = strdup(name), .calls = 0};
    if ((*tab)[*n].name == NULL)
        return NULL;
    return &(*tab)[(*n)++];
}

/* count_leave -- one call less for name; an entry at 0 is dropped. */
static void
count_leave(fb_peer_count_t *tab, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(tab[i].name, name) == 0) {
            if (--tab[i].calls == 0) {
                free(tab[i].name);
                tab[i] = tab[--*n];
            }
            return;
        }
}

/* peer_admit -- count the call against its peer until it authenticates;
 * 0, or -1 after answering RESOURCE_EXHAUSTED (ingester.max_calls_per_peer). */
static int
peer_admit(fb_wcall_t *c)
{
    fb_worker_t *w = c->w;
    char *host = peer_host(c->call);
    fb_peer_count_t *pc = host ? count_of(&w->peers, &w->n_peers, &w->cap_peers, host) : NULL;
    char why[300];

    if (pc == NULL) {
        free(host);
        fb_wcall_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return -1;
    }
    if (pc->calls >= w->conf->max_calls_per_peer) {
        snprintf(why, sizeof(why), "too many calls from %.200s: at most %llu at once per worker "
                 "before they authenticate", host,
                 (unsigned long long)w->conf->max_calls_per_peer);
        fb_log_limited(FB_LOG_NOTICE, "peer call limit", "%s refused: %s", host, why);
        free(host);
        fb_wcall_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, why, NULL);
        return -1;
    }
    pc->calls++;
    c->peer = host;
    c->peer_counted = true;
    return 0;
}

/* fb_worker_tenant_admit -- an authenticated call counts against its
 * access key from now on, no longer against its client's address (tenants
 * behind one NAT or proxy do not share a limit); a token bound to no key
 * stays counted by address. 0, or -1 after answering RESOURCE_EXHAUSTED
 * (ingester.max_calls_per_tenant). */
int
fb_worker_tenant_admit(fb_wcall_t *c)
{
    fb_worker_t *w = c->w;
    const char *key = c->auth.access_key;
    fb_peer_count_t *tc;
    char why[300];

    if (key[0] == '\0' || c->tenant != NULL)
        return 0;
    tc = count_of(&w->tenants, &w->n_tenants, &w->cap_tenants, key);
    if (tc == NULL) {
        c->replied = true;
        fb_wcall_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return -1;
    }
    if (tc->calls >= w->conf->max_calls_per_tenant) {
        snprintf(why, sizeof(why), "too many calls for access key %.128s: at most %llu at once "
                 "per worker", key, (unsigned long long)w->conf->max_calls_per_tenant);
        fb_log_limited(FB_LOG_NOTICE, "tenant call limit", "%s refused: %s", c->peer, why);
        c->replied = true;
        fb_wcall_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, why, NULL);
        return -1;
    }
    if ((c->tenant = strdup(key)) == NULL) {
        c->replied = true;
        fb_wcall_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return -1;
    }
    tc->calls++;
    if (c->peer_counted) {
        count_leave(w->peers, &w->n_peers, c->peer);
        c->peer_counted = false;
    }
    return 0;
}

/* peer_leave -- the call no longer counts against its peer or tenant. */
static void
peer_leave(fb_wcall_t *c)
{
    fb_worker_t *w = c->w;

    if (c->peer_counted)
        count_leave(w->peers, &w->n_peers, c->peer);
    if (c->tenant != NULL)
        count_leave(w->tenants, &w->n_tenants, c->tenant);
    c->peer_counted = false;
    free(c->tenant);
    c->tenant = NULL;
    free(c->peer);
    c->peer = NULL;
}

/* fb_worker_stream_list -- watch an event stream (expiry, backpressure). */
void
fb_worker_stream_list(fb_wcall_t *c)
{
    fb_worker_t *w = c->w;

    c->next_stream = w->streams;
    c->prev_stream = NULL;
    if (w->streams != NULL)
        w->streams->prev_stream = c;
    w->streams = c;
    c->listed = true;
}

/* fb_worker_stream_unlist -- no longer watched. */
void
fb_worker_stream_unlist(fb_wcall_t *c)
{
    if (!c->listed)
        return;
    if (c->prev_stream != NULL)
        c->prev_stream->next_stream = c->next_stream;
    else
        c->w->streams = c->next_stream;
    if (c->next_stream != NULL)
        c->next_stream->prev_stream = c->prev_stream;
    c->listed = false;
}

/* fb_worker_count_refusal -- one refused call, by kind, in shared memory. */
void
fb_worker_count_refusal(fb_worker_t *w, fb_auth_err_t err)
{
    if ((int)err > 0 && (int)err < FB_AUTH_N_ERRS)
        fb_metrics_add(w->metrics, (fb_mc_t)(FB_MC_AUTH_REFUSED + (int)err), 1);
}

/* fb_worker_count -- see worker.h. */
void
fb_worker_count(fb_worker_t *w, const char *key, fb_mc_t c, fb_mt_t col, uint64_t n)
{
    fb_metrics_t *m = fb_metrics_zone();

    if (m == NULL || n == 0)
        return;
    if (c != FB_MC_N)
        fb_metrics_add(w->metrics, c, n);
    if (key != NULL && key[0] != '\0')
        fb_metrics_tenant_add(w->metrics, fb_metrics_tenant(m, key, strlen(key)), col, n);
}

/* fb_wcall_advance -- make progress on an event stream after a change. */
void
fb_wcall_advance(fb_wcall_t *c)
{
    if (c->native)
        fb_worker_native_advance(c);
    else
        fb_worker_seed_advance(c);
}

/* fb_worker_revoked -- why a reload revoked the call c, or NULL: what it
 * authenticated before the table was published is subject to all of it;
 * what after, to its access keys only (its key ids and an overflow were
 * already the worker's own when it checked the token). key: the tenant it
 * writes for (NULL: its token's). */
const char *
fb_worker_revoked(fb_wcall_t *c, const char *key)
{
    const fb_revoked_t *t = c->w->revoked;
    const char *why = NULL;

    if (t == NULL || t->generation == 0)
        return NULL;
    if (key == NULL)
        key = c->auth.access_key;
    if (c->auth_gen < t->generation ? fb_revoked_check(t, &c->auth, key, &why)
                                    : fb_revoked_check_key(t, &c->auth, key, &why))
        return why;
    return NULL;
}

/* sweep -- a new revocation table: mark every open stream it revokes (its
 * own tick ends it). */
static void
sweep(fb_worker_t *w)
{
    unsigned n = 0;

    for (fb_wcall_t *c = w->streams; c != NULL; c = c->next_stream)
        if (c->revoked == NULL && (c->revoked = fb_worker_revoked(c, NULL)) != NULL)
            n++;
    if (n > 0)
        fb_log_notice("worker %u: %u open streams revoked by the reload (generation %llu): "
                      "ending them", w->index, n, (unsigned long long)w->revoked->generation);
}

/* tick -- every STOP_CHECK_MS: the heartbeat, the lane's fill for the
 * metrics, revocations, token expiry, batches waiting too long. */
static void
tick(fb_worker_t *w)
{
    uint64_t now_ms = fb_monotonic_ms();
    fb_wcall_t *c, *next;

    if (now_ms - w->last_tick_ms < STOP_CHECK_MS)
        return;
    w->last_tick_ms = now_ms;
    fb_log_limited_flush(false); /* refusal lines held back, once their interval is over */
    if (fb_loaded_revoke() != NULL && w->revoked != NULL &&
        fb_revoke_refresh(fb_loaded_revoke(), w->revoked))
        sweep(w);
    /* the loop turns: the master's watchdog leaves this worker alone */
    fb_lane_beat(&w->lane, w->pid, FB_BEAT_SERVING);
    fb_metrics_set(w->metrics, FB_MC_RING_FILL, fb_lane_head(&w->lane) - fb_lane_acked(&w->lane));
    for (c = w->streams; c != NULL; c = next) {
        next = c->next_stream; /* c may unlist itself */
        if (c->native)
            fb_worker_native_tick(c, now_ms, (int64_t)time(NULL));
        else
            fb_worker_seed_tick(c, now_ms, (int64_t)time(NULL));
    }
}

/* fb_wcall_release -- free a call nobody refers to any more. */
void
fb_wcall_release(fb_wcall_t *c)
{
    fb_worker_unblock(c); /* never resumed once freed */
    fb_worker_stream_unlist(c);
    peer_leave(c);
    free(c->inflight);
    free(c->inflight_n);
    free(c->tally);
    free(c->acks);
    if (c->send_bb != NULL)
        grpc_byte_buffer_destroy(c->send_bb);
    free(c->buf);
    if (c->recv != NULL)
        grpc_byte_buffer_destroy(c->recv);
    if (c->call != NULL)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_md);
    c->w->calls--;
    free(c);
}

static void
finish_step(fb_wcall_t *c, int ok)
{
    (void)ok;
    fb_wcall_finish(c);
}

/* request_call -- post a request for the next incoming call. */
static void
request_call(fb_worker_t *w)
{
    fb_wcall_t *c = wcall_new(w, new_call);
    grpc_call_error e = grpc_server_request_call(w->server, &c->call, &c->details,
                                                 &c->request_md, w->cq, w->cq, &c->tag);

    if (e != GRPC_CALL_OK) {
        fb_log_errorx("grpc_server_request_call failed: %d", (int)e);
        fb_wcall_finish(c);
    }
}

/* initial_metadata -- add SEND_INITIAL_METADATA once per call; the next op. */
static grpc_op *
initial_metadata(fb_wcall_t *c, grpc_op *op)
{
    if (!c->sent_initial_md) {
        op->op = GRPC_OP_SEND_INITIAL_METADATA;
        c->sent_initial_md = 1;
        return op + 1;
    }
    return op;
}

/* fb_wcall_reply -- send the answer (msg may be NULL) and the status, then
 * run next (NULL: finish the call). Initial metadata goes first if not sent. */
int
fb_wcall_reply(fb_wcall_t *c, const ProtobufCMessage *msg, grpc_status_code status,
               const char *detail, fb_wcall_step_t next)
{
    grpc_op ops[4];
    grpc_op *op = ops;
    grpc_byte_buffer *bb = NULL;
    grpc_slice details = grpc_slice_from_copied_string(detail ? detail : "");
    grpc_call_error e;

    memset(ops, 0, sizeof(ops));
    op = initial_metadata(c, op);
    if (msg != NULL) {
        size_t len = protobuf_c_message_get_packed_size(msg);
        grpc_slice s = grpc_slice_malloc(len);
        protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
        bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        op->op = GRPC_OP_SEND_MESSAGE;
        op->data.send_message.send_message = bb;
        op++;
    }
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = status;
    op->data.send_status_from_server.status_details = &details;
    op++;
    op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op->data.recv_close_on_server.cancelled = &c->cancelled;
    op++;
    c->step = next ? next : finish_step;
    e = grpc_call_start_batch(c->call, ops, (size_t)(op - ops), &c->tag, NULL);
    if (bb != NULL)
        grpc_byte_buffer_destroy(bb);
    grpc_slice_unref(details);
    if (e != GRPC_CALL_OK) {
        fb_log_errorx("grpc_call_start_batch(reply) failed: %d", (int)e);
        fb_wcall_finish(c);
        return -1;
    }
    return 0;
}

/* fb_wcall_read -- send initial metadata and receive one message, then next. */
int
fb_wcall_read(fb_wcall_t *c, fb_wcall_step_t next)
{
    grpc_op ops[2];
    grpc_op *op = ops;
    grpc_call_error e;

    memset(ops, 0, sizeof(ops));
    op = initial_metadata(c, op);
    if (c->recv != NULL) {
        grpc_byte_buffer_destroy(c->recv);
        c->recv = NULL;
    }
    op->op = GRPC_OP_RECV_MESSAGE;
    op->data.recv_message.recv_message = &c->recv;
    op++;
    c->step = next;
    e = grpc_call_start_batch(c->call, ops, (size_t)(op - ops), &c->tag, NULL);
    if (e != GRPC_CALL_OK) {
        fb_log_errorx("grpc_call_start_batch(read) failed: %d", (int)e);
        return -1;
    }
    return 0;
}

/* fb_wcall_slice -- the received message as one slice, without a copy when
 * it came in one (caller unrefs); 0, or -1 when there is none. */
int
fb_wcall_slice(fb_wcall_t *c, grpc_slice *out)
{
    grpc_byte_buffer_reader r;

    if (c->recv == NULL || !grpc_byte_buffer_reader_init(&r, c->recv))
        return -1;
    *out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return 0;
}

/* fb_wcall_message -- the received message as one flat buffer (caller frees). */
uint8_t *
fb_wcall_message(fb_wcall_t *c, size_t *len)
{
    grpc_slice s;
    uint8_t *out;

    if (fb_wcall_slice(c, &s) < 0)
        return NULL;
    *len = GRPC_SLICE_LENGTH(s);
    out = malloc(*len ? *len : 1);
    if (out != NULL)
        memcpy(out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    return out;
}

/* method_is -- the call's method path equals path. */
static int
method_is(const fb_wcall_t *c, const char *path)
{
    return grpc_slice_str_cmp(c->details.method, path) == 0;
}

/* new_call -- route an incoming call by its method path. */
static void
new_call(fb_wcall_t *c, int ok)
{
    fb_worker_t *w = c->w;

    if (!ok) { /* the server is shutting down */
        fb_wcall_finish(c);
        return;
    }
    fb_metrics_add(w->metrics, FB_MC_CALLS, 1);
    if (!w->shutting_down)
        request_call(w);
    /* every call counts against its peer, health checks too: a check waits
     * for its request, and a client that never sends one holds the call */
    if (peer_admit(c) < 0)
        return;
    if (method_is(c, "/grpc.health.v1.Health/Check")) {
        fb_worker_health_start(c);
    } else if (method_is(c, "/fbpipe.v1.Ingest/Stream")) {
        fb_worker_stream_start(c);
    } else if (method_is(c, "/fbpipe.v1.Ingest/Exchange")) {
        fb_worker_exchange_start(c);
    } else if (method_is(c, "/api.EventService/SendEvent")) {
        fb_worker_send_event_start(c);
    } else if (method_is(c, "/api.EventService/ExchangeConfig")) {
        fb_worker_exchange_config_start(c);
    } else {
        char shown[METHOD_SHOW_MAX * 4 + 8];
        fb_log_show(shown, sizeof(shown), (const char *)GRPC_SLICE_START_PTR(c->details.method),
                    GRPC_SLICE_LENGTH(c->details.method), METHOD_SHOW_MAX);
        fb_log_limited(FB_LOG_INFO, "unknown method", "%s: call to unknown method %s", c->peer,
                       shown);
        fb_wcall_reply(c, NULL, GRPC_STATUS_UNIMPLEMENTED, "unknown method", NULL);
    }
}

/* grpc_log -- gRPC core's own lines, into the worker's log: rate-limited
 * per source line, since a client triggers many of them (a failed TLS
 * handshake logs an error per connection). Runs on gRPC's threads. */
static void
grpc_log(gpr_log_func_args *args)
{
    const char *file = args->file ? args->file : "?", *slash = strrchr(file, '/');
    char where[FB_LOG_LIMIT_REASON_MAX - 8], reason[FB_LOG_LIMIT_REASON_MAX];
    char shown[GRPC_SHOW_MAX * 4 + 8];
    const char *msg = args->message ? args->message : "";
    fb_log_level_t level = args->severity == GPR_LOG_SEVERITY_ERROR  ? FB_LOG_ERROR
                           : args->severity == GPR_LOG_SEVERITY_INFO ? FB_LOG_INFO
                                                                     : FB_LOG_DEBUG;

    if (listen_capture && level == FB_LOG_ERROR && listen_error[0] == '\0') {
        /* the first is the cause (later ones say that listening failed) */
        const char *details = strstr(msg, " {"); /* gRPC's status fields */
        fb_log_show(listen_error, sizeof(listen_error), msg,
                    details ? (size_t)(details - msg) : strlen(msg), GRPC_SHOW_MAX);
    }
    if (level > fb_log_get_level())
        return;
    snprintf(where, sizeof(where), "%s:%d", slash ? slash + 1 : file, args->line);
    snprintf(reason, sizeof(reason), "grpc %s", where);
    fb_log_show(shown, sizeof(shown), msg, strlen(msg), GRPC_SHOW_MAX);
    fb_log_limited(level, reason, "gRPC %s: %s", where, shown);
}

/* server_credentials -- TLS (with client verification when tls_client_ca
 * is set) or plaintext (fb_conf_load allows it only where it may be),
 * from the files the master loaded. */
static grpc_server_credentials *
server_credentials(const fb_conf_t *conf)
{
    const fb_loaded_t *loaded = fb_loaded_get();
    grpc_ssl_pem_key_cert_pair pair;

    if (conf->tls_cert[0] == '\0')
        return grpc_insecure_server_credentials_create();
    if (loaded->tls_cert == NULL || loaded->tls_key == NULL)
        return NULL;
    pair.private_key = (const char *)loaded->tls_key;
    pair.cert_chain = (const char *)loaded->tls_cert;
    return grpc_ssl_server_credentials_create_ex(
        (const char *)loaded->tls_ca, &pair, 1,
        loaded->tls_ca != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
}

/* dispatch -- one completion: a call's step or an acknowledgement kick. */
static void
dispatch(grpc_event ev)
{
    fb_wtag_t *t = ev.tag;

    if (ev.type != GRPC_OP_COMPLETE || t == NULL)
        return;
    switch (t->kind) {
    case FB_WTAG_KICK: fb_worker_acks_kicked(t->c); break;
    case FB_WTAG_WRITE: fb_worker_native_written(t->c, ev.success); break;
    default: t->c->step(t->c, ev.success); break;
    }
}

/* drain -- run events until the queue is shut down. */
static void
drain(fb_worker_t *w)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return;
        dispatch(ev);
    }
}

static void
shutdown_done(fb_wcall_t *c, int ok)
{
    (void)ok;
    c->w->shutting_down = 2;
    fb_wcall_finish(c);
}

/* shutdown_server -- no new calls; shutdown_done runs when all are over. */
static void
shutdown_server(fb_worker_t *w)
{
    fb_wcall_t *sd = wcall_new(w, shutdown_done);

    fb_metrics_set(w->metrics, FB_MC_SERVING, 0);
    w->shutting_down = 1;
    grpc_server_shutdown_and_notify(w->server, w->cq, &sd->tag);
}

/* fb_worker_record_max -- see worker.h. */
size_t
fb_worker_record_max(const fb_worker_t *w)
{
    uint64_t topic = atomic_load_explicit(&w->ring->sh->record_max, memory_order_relaxed);

    return (size_t)(topic != 0 && topic < w->conf->message_max_bytes ? topic
                                                                      : w->conf->message_max_bytes);
}

/* fb_worker_main -- the worker process; returns its exit status. */
int
fb_worker_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index)
{
    fb_worker_t w = {.conf = conf, .ring = ring, .index = index, .pid = getpid(),
                     .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pid_t master = getppid();
    uint64_t stop_ms;
    grpc_server_credentials *creds;
    grpc_arg args[6];
    grpc_channel_args cargs = {.num_args = 6, .args = args};
    grpc_resource_quota *quota;
    const char *why;
    int port, rc;

    fb_proc_child_signals(on_stop);
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR2, &sa, NULL); /* retire (reload) */
    }
    if (fb_ring_check(ring->base, ring->size, &why) < 0) {
        fb_log_errorx("shared ring refused: %s", why);
        return 1;
    }
    fb_ring_lane(ring, index, &w.lane);
    w.metrics = fb_metrics_take_slot(fb_metrics_zone(), FB_MROLE_WORKER, index);
    fb_metrics_set(w.metrics, FB_MC_RING_SIZE, w.lane.size);
    /* beat from the start, and while waiting for the lane: its last
     * owner's records may wait for Kafka for as long as Kafka is away,
     * and the master's watchdog must not take that wait for a hang */
    fb_lane_beat(&w.lane, w.pid, FB_BEAT_STARTING);
    while ((rc = fb_lane_claim(&w.lane, w.pid, 1)) == -EAGAIN && !stop_requested) {
        fb_lane_wait_acked(&w.lane, fb_lane_head(&w.lane), 1000); /* the last owner's records */
        fb_lane_beat(&w.lane, w.pid, FB_BEAT_STARTING);
    }
    if (rc < 0 && !stop_requested) {
        fb_log_errorx("lane %u is owned by pid %d", index, (int)w.lane.sh->owner_pid);
        return 1;
    }

    w.keydb = fb_loaded_get()->keydb;
    w.revoked = calloc(1, sizeof(*w.revoked));
    if (w.revoked == NULL) {
        fb_log_errorx("worker %u: out of memory for the revocation table", index);
        fb_lane_release(&w.lane);
        return 1;
    }
    if (fb_loaded_revoke() != NULL)
        fb_revoke_refresh(fb_loaded_revoke(), w.revoked);
    w.auth = fb_loaded_get()->auth;
    if (w.keydb == NULL || w.auth == NULL) {
        fb_log_errorx("no key database loaded before the worker started");
        fb_lane_release(&w.lane);
        return 2;
    }
    if (fb_worker_acks_start(&w) < 0) {
        fb_lane_release(&w.lane);
        return 1;
    }

    gpr_set_log_function(grpc_log); /* before gRPC starts its threads */
    fb_lane_beat(&w.lane, w.pid, FB_BEAT_STARTING);
    grpc_init(); /* after fork, in this process only */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)conf->max_message_size;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 1;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[2].value.integer = (int)conf->max_streams_per_connection;
    quota = grpc_resource_quota_create("fbpipe-worker");
    grpc_resource_quota_resize(quota, (size_t)conf->memory_limit);
    args[3].type = GRPC_ARG_POINTER;
    args[3].key = (char *)GRPC_ARG_RESOURCE_QUOTA;
    args[3].value.pointer.p = quota;
    args[3].value.pointer.vtable = grpc_resource_quota_arg_vtable();
    /* a connection that never completes its handshake, or holds no call,
     * holds a descriptor: closed after these */
    args[4].type = GRPC_ARG_INTEGER;
    args[4].key = GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS;
    args[4].value.integer = (int)conf->handshake_timeout_ms;
    args[5].type = GRPC_ARG_INTEGER;
    args[5].key = GRPC_ARG_MAX_CONNECTION_IDLE_MS;
    args[5].value.integer = (int)conf->idle_timeout_ms;
    w.cq = grpc_completion_queue_create_for_next(NULL);
    w.server = grpc_server_create(&cargs, NULL);
    grpc_resource_quota_unref(quota);
    grpc_server_register_completion_queue(w.server, w.cq, NULL);
    creds = server_credentials(conf);
    if (creds == NULL) {
        fb_log_errorx("TLS credentials from %s and %s refused", conf->tls_cert, conf->tls_key);
        rc = 2;
        goto out;
    }
    listen_capture = true;
    port = grpc_server_add_http2_port(w.server, conf->listen, creds);
    listen_capture = false;
    grpc_server_credentials_release(creds);
    if (port == 0) {
        /* gRPC says why in its own log only: its first error; an address
         * this host lacks is told apart (at boot it may come later; the
         * master restarts the worker with back-off) */
        char text[256];
        if (fb_listen_check(conf->listen, text, sizeof(text)) == FB_LISTEN_NOT_LOCAL)
            fb_log_errorx("cannot listen on %s: not an address of this host (%s)", conf->listen,
                          text);
        else
            fb_log_errorx("cannot listen on %s: %s", conf->listen,
                          listen_error[0] ? listen_error : "gRPC gave no reason");
        rc = 1;
        goto out;
    }
    grpc_server_start(w.server);
    fb_worker_listen_find(&w, port);
    fb_worker_memory_start(&w);
    fb_metrics_set(w.metrics, FB_MC_SERVING, 1);
    fb_log_info("worker %u serving on %s (port %d, %s), lane %u", index, conf->listen, port,
                conf->tls_cert[0] ? (conf->tls_client_ca[0] ? "mTLS" : "TLS") : "plaintext",
                index);
    for (unsigned i = 0; i < FB_WORKER_REQUESTS; i++)
        request_call(&w);

    while (!stop_requested) {
        grpc_event ev;

        if (retire_requested && !w.shutting_down) {
            /* a newer generation serves new calls: finish the open ones */
            fb_log_info("worker %u retiring: no new calls; the open ones end here (within "
                        "ingester.drain_timeout, %llu ms)", index,
                        (unsigned long long)conf->drain_timeout_ms);
            shutdown_server(&w);
            w.retire_ms = fb_monotonic_ms();
        }
        if (w.retire_ms != 0 && !w.drain_ended &&
            fb_monotonic_ms() - w.retire_ms >= conf->drain_timeout_ms) {
            /* a previous generation does not outlive its keys for long:
             * its agents reconnect to the new one */
            fb_log_notice("worker %u: ingester.drain_timeout (%llu ms) is over: ending its %u "
                          "open calls", index, (unsigned long long)conf->drain_timeout_ms,
                          w.calls);
            grpc_server_cancel_all_calls(w.server);
            w.drain_ended = true;
        }
        if (w.shutting_down == 2 && w.calls == 0)
            break; /* retired */
        ev = grpc_completion_queue_next(
            w.cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                               gpr_time_from_millis(STOP_CHECK_MS, GPR_TIMESPAN)), NULL);
        dispatch(ev);
        tick(&w);
        fb_worker_memory_check(&w, fb_monotonic_ms());
        if (!w.shutting_down && fb_worker_listen_stalled(&w, fb_monotonic_ms()))
            break; /* logged; the master starts another at once */
    }
    rc = w.not_accepting ? FB_EXIT_NOT_ACCEPTING : 0;
out:
    /* stop: no new calls, cancel the open ones, drain every event */
    if (!w.shutting_down)
        shutdown_server(&w);
    grpc_server_cancel_all_calls(w.server);
    /* calls with spans in the lane wait for Kafka's word: keep beating.
     * The master ends a worker that outstays main.shutdown_timeout; one
     * whose master is gone (killed: the producer stops with it, and no
     * word comes any more) ends itself then. Its agents were never
     * answered OK for those events: they send them again. */
    stop_ms = fb_monotonic_ms();
    while (w.shutting_down != 2 || w.calls > 0) {
        grpc_event ev = grpc_completion_queue_next(
            w.cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                               gpr_time_from_millis(STOP_CHECK_MS, GPR_TIMESPAN)), NULL);
        dispatch(ev);
        fb_lane_beat(&w.lane, w.pid, FB_BEAT_SERVING);
        if (getppid() != master && fb_monotonic_ms() - stop_ms > conf->shutdown_timeout_ms) {
            fb_log_warnx("worker %u: the master is gone and Kafka did not acknowledge the "
                         "events of %u open calls within main.shutdown_timeout (%llu ms): "
                         "stopping without them; their agents were not answered OK and send "
                         "them again", index, w.calls,
                         (unsigned long long)conf->shutdown_timeout_ms);
            fb_log_limited_flush(true);
            fflush(NULL);
            _exit(1);
        }
    }
    grpc_server_destroy(w.server);
    grpc_completion_queue_shutdown(w.cq);
    drain(&w);
    grpc_completion_queue_destroy(w.cq);
    grpc_shutdown();
    fb_worker_acks_stop(&w);
    free(w.recs);
    free(w.peers);
    free(w.tenants);
    free(w.revoked);
    fb_loaded_free(); /* wipe the inherited secrets */
    fb_lane_release(&w.lane);
    fb_log_limited_flush(true); /* the counts of what was held back, before the last word */
    fb_log_info("worker %u stopped", index);
    return rc;
}
