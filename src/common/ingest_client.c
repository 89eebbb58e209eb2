/*
 * ingest_client.c -- the ingest APIs from the client side (see
 * ingest_client.h), on the gRPC C core.
 *
 * Each call has its own completion queue, driven by the caller's thread
 * only while it waits; every batch started counts as one pending event and
 * the queue is drained of all of them before it is destroyed. Received
 * messages are capped in size and unpacked with a capped allocator, since
 * the server is not trusted either. A target of several addresses is
 * served by gRPC's round_robin policy over IP literals (never resolved).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/ingest_client.h"
#include "common/pballoc.h"

#define DEFAULT_INFLIGHT 8
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_MESSAGE (4u << 20)
#define MAX_PEM (1u << 20) /* a certificate chain is far smaller */
/* gRPC's own reconnect back-off (default 1 s growing to 120 s) would keep a
 * channel failing calls for up to two minutes after the ingester is back:
 * a lost connection is tried again after 100 ms, then at most every
 * second, which is what a restart of fbpiped needs (a refused connect
 * costs the ingester nothing). */
#define RECONNECT_FIRST_MS 100
#define RECONNECT_MAX_MS 1000

struct fb_client {
    grpc_channel *channel;
    char *authorization; /* "Bearer <token>" */
    unsigned max_inflight;
    unsigned timeout_ms;
    size_t max_message;
};

/* One call: its queue, the events still due, the final status. */
typedef struct call {
    fb_client_t *client;
    grpc_completion_queue *cq;
    grpc_call *call;
    unsigned pending;
    grpc_metadata md;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice status_detail;
    bool status_done;
} call_t;

/* A tag is the address of one of these; each kind is posted once at a time. */
enum { TAG_START, TAG_SEND, TAG_RECV, TAG_STATUS, TAG_CLOSE, TAG_N };

typedef struct inflight {
    uint64_t seq;
    uint64_t sent_us;
} inflight_t;

struct fb_stream {
    call_t c;
    char tags[TAG_N];
    fb_ack_cb_t cb;
    void *arg;
    grpc_byte_buffer *send_bb, *recv_bb;
    bool sending, receiving, closed;
    inflight_t *inflight;
    unsigned n_inflight;
};

static void
set_status(fb_client_status_t *st, int code, const char *fmt, ...)
{
    va_list ap;

    if (st == NULL)
        return;
    st->code = code;
    va_start(ap, fmt);
    vsnprintf(st->detail, sizeof(st->detail), fmt, ap);
    va_end(ap);
}

/* after_ms -- a deadline ms from now. The C core rounds a deadline up to
 * its next millisecond, so "now" would wait up to 1 ms for nothing: a
 * zero wait is the infinite past, which only takes what is there. */
static gpr_timespec
after_ms(unsigned ms)
{
    if (ms == 0)
        return gpr_inf_past(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* pem_free -- wipe and free what read_pem returned. */
static void
pem_free(uint8_t *buf)
{
    if (buf != NULL) {
        explicit_bzero(buf, strlen((char *)buf));
        free(buf);
    }
}

/* read_pem -- a PEM file, NUL-terminated (pem_free it); NULL with err.
 * A private key must not be accessible by group or others. Reports into
 * err, never to a log: the library runs inside other programs. */
static uint8_t *
read_pem(const char *path, bool private_key, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    uint8_t *buf = NULL;
    struct stat sb;
    size_t len = 0;

    if (fd < 0) {
        snprintf(err, errlen, "open(%s) failed: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &sb) < 0) {
        snprintf(err, errlen, "fstat(%s) failed: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || (size_t)sb.st_size > MAX_PEM) {
        snprintf(err, errlen, "%s: not a regular file of 1 to %u bytes", path, MAX_PEM);
        goto fail;
    }
    if (private_key && (sb.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s: is accessible by group or others (mode %04o); chmod 600 it",
                 path, (unsigned)(sb.st_mode & 07777));
        goto fail;
    }
    if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
        snprintf(err, errlen, "malloc(%lld) for %s failed", (long long)sb.st_size + 1, path);
        goto fail;
    }
    while (len < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + len, (size_t)sb.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "read(%s) failed: %s", path,
                     r < 0 ? strerror(errno) : "the file shrank");
            goto fail;
        }
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (strlen((char *)buf) != len) {
        snprintf(err, errlen, "%s: has a NUL byte; not a PEM file", path);
        goto fail;
    }
    close(fd);
    return buf;
fail:
    if (buf != NULL) {
        explicit_bzero(buf, len);
        free(buf);
    }
    close(fd);
    return NULL;
}

fb_client_t *
fb_client_new(const fb_client_opts_t *o, char *err, size_t errlen)
{
    grpc_channel_credentials *creds;
    grpc_arg args[8];
    grpc_channel_args cargs = {.num_args = 4, .args = args};
    char target[FB_ADDR_TARGET_MAX * 64], bad[FB_ADDR_HOST_MAX + 16];
    const char *why;
    unsigned n_addr;
    fb_client_t *c;

    if (o->target == NULL || o->target[0] == '\0' || o->token == NULL) {
        snprintf(err, errlen, "a target and a token are required");
        return NULL;
    }
    if (fb_addr_grpc_target(o->target, target, sizeof(target), &n_addr, &why, bad, sizeof(bad)) <
        0) {
        snprintf(err, errlen, "target \"%s\": %s (at \"%s\")", o->target, why, bad);
        return NULL;
    }
    if (n_addr > 1 && o->ca_file != NULL && o->server_name == NULL) {
        /* the name checked would be the list itself, which no certificate holds */
        snprintf(err, errlen,
                 "target \"%s\": several addresses over TLS need the server name that the "
                 "servers' certificates hold",
                 o->target);
        return NULL;
    }
    if ((o->cert_file == NULL) != (o->key_file == NULL)) {
        snprintf(err, errlen, "a client certificate needs its key, and the other way round");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || fb_client_set_token(c, o->token) < 0) {
        snprintf(err, errlen, "%s", c == NULL || errno == ENOMEM
                                        ? "out of memory"
                                        : "the token is empty or has a byte that cannot go "
                                          "into a header (only printable ASCII)");
        free(c);
        return NULL;
    }
    c->max_inflight = o->max_inflight ? o->max_inflight : DEFAULT_INFLIGHT;
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_message = o->max_message_size ? o->max_message_size : DEFAULT_MAX_MESSAGE;
    grpc_init();
    if (o->ca_file != NULL) {
        uint8_t *ca = read_pem(o->ca_file, false, err, errlen), *cert = NULL, *key = NULL;
        grpc_ssl_pem_key_cert_pair pair;

        if (ca != NULL && o->cert_file != NULL) {
            cert = read_pem(o->cert_file, false, err, errlen);
            key = cert ? read_pem(o->key_file, true, err, errlen) : NULL;
        }
        if (ca == NULL || (o->cert_file != NULL && key == NULL)) {
            pem_free(ca);
            pem_free(cert);
            fb_client_free(c); /* no channel yet; balances grpc_init */
            return NULL;
        }
        pair.private_key = (const char *)key;
        pair.cert_chain = (const char *)cert;
        creds = grpc_ssl_credentials_create((const char *)ca, cert ? &pair : NULL, NULL, NULL);
        pem_free(ca);
        pem_free(cert);
        pem_free(key);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)c->max_message;
    /* a connection of its own: clients in one process spread over the
     * server's workers instead of sharing one subchannel */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[1].value.integer = 1;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[2].value.integer = RECONNECT_FIRST_MS;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[3].value.integer = RECONNECT_MAX_MS;
    if (o->keepalive_ms > 0) {
        /* a ping when the connection is idle this long; the server's gRPC
         * allows one every 5 minutes at most, and only during calls */
        args[cargs.num_args].type = GRPC_ARG_INTEGER;
        args[cargs.num_args].key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS;
        args[cargs.num_args++].value.integer = (int)o->keepalive_ms;
        args[cargs.num_args].type = GRPC_ARG_INTEGER;
        args[cargs.num_args].key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
        args[cargs.num_args++].value.integer = 20000;
    }
    if (o->server_name != NULL) {
        args[cargs.num_args].type = GRPC_ARG_STRING;
        args[cargs.num_args].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[cargs.num_args++].value.string = (char *)o->server_name;
    }
    if (n_addr > 1) {
        /* each call (a stream, a SendEvent) to the next address that is
         * up: the agent's streams spread over the hosts, and a dead host's
         * are opened again on the others */
        args[cargs.num_args].type = GRPC_ARG_STRING;
        args[cargs.num_args].key = (char *)GRPC_ARG_SERVICE_CONFIG;
        args[cargs.num_args++].value.string =
            (char *)"{\"loadBalancingConfig\": [{\"round_robin\": {}}]}";
    }
    c->channel = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return c;
}

void
fb_client_free(fb_client_t *c)
{
    if (c == NULL)
        return;
    if (c->channel != NULL)
        grpc_channel_destroy(c->channel);
    if (c->authorization != NULL) {
        memset(c->authorization, 0, strlen(c->authorization));
        free(c->authorization);
    }
    free(c);
    grpc_shutdown();
}

int
fb_client_set_token(fb_client_t *c, const char *token)
{
    size_t len = strlen(token) + 8;
    char *a;

    /* what gRPC would refuse at every call, refused once here */
    for (const char *p = token; *p != '\0'; p++)
        if (*p < 0x21 || *p > 0x7e) {
            errno = EINVAL;
            return -1;
        }
    if (token[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    if ((a = malloc(len)) == NULL)
        return -1;
    snprintf(a, len, "Bearer %s", token);
    if (c->authorization != NULL) {
        memset(c->authorization, 0, strlen(c->authorization));
        free(c->authorization);
    }
    c->authorization = a;
    return 0;
}

/* fb_client_wait_ready -- see ingest_client.h */
int
fb_client_wait_ready(fb_client_t *c, unsigned timeout_ms)
{
    uint64_t deadline = fb_monotonic_us() + (uint64_t)timeout_ms * 1000;
    grpc_completion_queue *cq = NULL;
    grpc_connectivity_state state;
    int rc = -1;

    for (;;) {
        uint64_t now = fb_monotonic_us();
        unsigned step_ms;
        grpc_event ev;

        state = grpc_channel_check_connectivity_state(c->channel, 1);
        if (state == GRPC_CHANNEL_READY) {
            rc = 0;
            break;
        }
        if (state == GRPC_CHANNEL_SHUTDOWN || now >= deadline)
            break;
        if (cq == NULL && (cq = grpc_completion_queue_create_for_next(NULL)) == NULL)
            break;
        /* a change of state, or 100 ms: a channel resting in IDLE is
         * asked to connect again on the next turn */
        step_ms = (deadline - now) / 1000 < 100 ? (unsigned)((deadline - now) / 1000) + 1 : 100;
        grpc_channel_watch_connectivity_state(c->channel, state, after_ms(step_ms), cq, c);
        do
            ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        while (ev.type != GRPC_OP_COMPLETE);
    }
    if (cq != NULL) {
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(cq);
    }
    return rc;
}

/* call_start -- a call of method with its own queue; deadline_ms 0: none. */
static int
call_start(call_t *k, fb_client_t *c, const char *method, unsigned deadline_ms,
           fb_client_status_t *st)
{
    grpc_slice m = grpc_slice_from_static_string(method);

    memset(k, 0, sizeof(*k));
    k->client = c;
    k->cq = grpc_completion_queue_create_for_next(NULL);
    k->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, k->cq, m, NULL,
                                       deadline_ms ? gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                                                  gpr_time_from_millis(
                                                                      deadline_ms, GPR_TIMESPAN))
                                                   : gpr_inf_future(GPR_CLOCK_REALTIME),
                                       NULL);
    grpc_metadata_array_init(&k->initial_md);
    grpc_metadata_array_init(&k->trailing_md);
    k->status_detail = grpc_empty_slice();
    k->md.key = grpc_slice_from_static_string("authorization");
    k->md.value = grpc_slice_from_copied_string(c->authorization);
    if (k->call == NULL) {
        set_status(st, GRPC_STATUS_INTERNAL, "grpc_channel_create_call(%s) failed", method);
        return -1;
    }
    return 0;
}

/* op_metadata -- SEND_INITIAL_METADATA with the token; op_status --
 * RECV_STATUS_ON_CLIENT into the call; op_initial -- RECV_INITIAL_METADATA. */
static void
op_metadata(call_t *k, grpc_op *op)
{
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = &k->md;
}

static void
op_status(call_t *k, grpc_op *op)
{
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = &k->trailing_md;
    op->data.recv_status_on_client.status = &k->status;
    op->data.recv_status_on_client.status_details = &k->status_detail;
}

static void
op_initial(call_t *k, grpc_op *op)
{
    op->op = GRPC_OP_RECV_INITIAL_METADATA;
    op->data.recv_initial_metadata.recv_initial_metadata = &k->initial_md;
}

/* call_batch -- start ops with tag; counts as pending. */
static int
call_batch(call_t *k, grpc_op *ops, size_t n, void *tag, fb_client_status_t *st)
{
    grpc_call_error e = grpc_call_start_batch(k->call, ops, n, tag, NULL);

    if (e != GRPC_CALL_OK) {
        set_status(st, GRPC_STATUS_INTERNAL, "grpc_call_start_batch failed: %s",
                   grpc_call_error_to_string(e));
        return -1;
    }
    k->pending++;
    return 0;
}

/* call_next -- one event, or a timeout (type GRPC_QUEUE_TIMEOUT). */
static grpc_event
call_next(call_t *k, unsigned wait_ms)
{
    grpc_event ev = grpc_completion_queue_next(k->cq, after_ms(wait_ms), NULL);

    if (ev.type == GRPC_OP_COMPLETE)
        k->pending--;
    return ev;
}

/* call_end -- cancel if needed, drain every event, free everything. */
static void
call_end(call_t *k)
{
    if (k->call != NULL) {
        if (k->pending > 0)
            grpc_call_cancel(k->call, NULL);
        while (k->pending > 0)
            call_next(k, 1000);
        grpc_call_unref(k->call);
    }
    grpc_completion_queue_shutdown(k->cq);
    while (grpc_completion_queue_next(k->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(k->cq);
    grpc_metadata_array_destroy(&k->initial_md);
    grpc_metadata_array_destroy(&k->trailing_md);
    grpc_slice_unref(k->status_detail);
    grpc_slice_unref(k->md.value);
}

/* status_of -- the call's final status into st; 0 when OK. */
static int
status_of(call_t *k, fb_client_status_t *st)
{
    size_t len = GRPC_SLICE_LENGTH(k->status_detail);

    if (len >= FB_CLIENT_DETAIL_MAX)
        len = FB_CLIENT_DETAIL_MAX - 1;
    set_status(st, (int)k->status, "%.*s", (int)len,
               (const char *)GRPC_SLICE_START_PTR(k->status_detail));
    return k->status == GRPC_STATUS_OK ? 0 : -1;
}

/* pack -- a message into a byte buffer. */
static grpc_byte_buffer *
pack(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    grpc_slice s = grpc_slice_malloc(len);
    grpc_byte_buffer *bb;

    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* unpack -- a received buffer as desc through allocator a (capped by the
 * caller), or NULL if it is not one. */
static void *
unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb, ProtobufCAllocator *a)
{
    grpc_byte_buffer_reader r;
    grpc_slice s;
    void *m;

    if (bb == NULL || !grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    m = protobuf_c_message_unpack(desc, a, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return m;
}

/* unpack_owned -- as unpack, for a message handed to the caller (freed
 * with the default allocator): a capped trial first, so that a hostile
 * answer cannot explode. */
static void *
unpack_owned(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
    fb_pballoc_t a;
    void *m;

    fb_pballoc_init(&a, 4 * (bb ? grpc_byte_buffer_length(bb) : 0) + 4096);
    m = unpack(desc, bb, &a.base);
    if (m == NULL)
        return NULL;
    protobuf_c_message_free_unpacked(m, &a.base);
    return unpack(desc, bb, NULL);
}

void
fb_client_free_message(void *msg)
{
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, NULL);
}

/* unary -- one request, one answer of desc into *out. */
static int
unary(fb_client_t *c, const char *method, const ProtobufCMessage *req,
      const ProtobufCMessageDescriptor *desc, void **out, fb_client_status_t *st)
{
    grpc_byte_buffer *send = pack(req), *recv = NULL;
    grpc_op ops[6];
    call_t k;
    int rc = -1;

    *out = NULL;
    memset(ops, 0, sizeof(ops));
    if (call_start(&k, c, method, c->timeout_ms, st) < 0)
        goto out;
    op_metadata(&k, &ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    op_initial(&k, &ops[3]);
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    op_status(&k, &ops[5]);
    if (call_batch(&k, ops, 6, &k, st) < 0)
        goto out;
    while (k.pending > 0)
        call_next(&k, 1000); /* the call's deadline bounds it */
    if (status_of(&k, st) < 0)
        goto out;
    *out = unpack_owned(desc, recv);
    if (*out == NULL) {
        set_status(st, GRPC_STATUS_INTERNAL, "%s: the answer is not a valid %s", method,
                   desc->name);
        goto out;
    }
    rc = 0;
out:
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    if (k.cq != NULL)
        call_end(&k);
    return rc;
}

int
fb_client_exchange(fb_client_t *c, const char *access_key, const char *agent_id,
                   Fbpipe__V1__ExchangeResponse **out, fb_client_status_t *st)
{
    Fbpipe__V1__ExchangeRequest req = FBPIPE__V1__EXCHANGE_REQUEST__INIT;
    /* what fb_cipher_seal_xchacha writes, the second version first */
    Fbpipe__V1__Cipher ciphers[] = {FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2,
                                    FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305};

    req.access_key = (char *)(access_key ? access_key : "");
    req.agent_id = (char *)(agent_id ? agent_id : "");
    req.ciphers = ciphers;
    req.n_ciphers = sizeof(ciphers) / sizeof(ciphers[0]);
    return unary(c, "/fbpipe.v1.Ingest/Exchange", &req.base,
                 &fbpipe__v1__exchange_response__descriptor, (void **)out, st);
}

int
fb_client_exchange_config(fb_client_t *c, const char *access_key, Api__Config **out,
                          fb_client_status_t *st)
{
    Api__AccessKey req = API__ACCESS_KEY__INIT;

    req.accesskey = (char *)(access_key ? access_key : "");
    return unary(c, "/api.EventService/ExchangeConfig", &req.base, &api__config__descriptor,
                 (void **)out, st);
}

int
fb_client_send_events(fb_client_t *c, Api__Event *const *events, size_t n,
                      fb_client_status_t *st)
{
    grpc_byte_buffer *recv = NULL;
    Api__EResponse *resp;
    grpc_op ops[3];
    call_t k;
    char tag_start, tag_send, tag_end;
    int rc = -1;

    if (call_start(&k, c, "/api.EventService/SendEvent", 0, st) < 0)
        goto out;
    memset(ops, 0, sizeof(ops));
    op_metadata(&k, &ops[0]);
    op_initial(&k, &ops[1]);
    if (call_batch(&k, ops, 2, &tag_start, st) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        grpc_byte_buffer *bb = pack(&events[i]->base);
        grpc_event ev;
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_MESSAGE;
        ops[0].data.send_message.send_message = bb;
        if (call_batch(&k, ops, 1, &tag_send, st) < 0) {
            grpc_byte_buffer_destroy(bb);
            goto out;
        }
        do {
            ev = call_next(&k, c->timeout_ms);
            if (ev.type == GRPC_QUEUE_TIMEOUT) {
                grpc_byte_buffer_destroy(bb);
                set_status(st, GRPC_STATUS_DEADLINE_EXCEEDED,
                           "event %zu not taken by the server within %u ms", i, c->timeout_ms);
                goto out;
            }
        } while (ev.tag != &tag_send);
        grpc_byte_buffer_destroy(bb);
        if (!ev.success)
            break; /* the call ended: its status says why */
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &recv;
    op_status(&k, &ops[2]);
    if (call_batch(&k, ops, 3, &tag_end, st) < 0)
        goto out;
    while (k.pending > 0) {
        grpc_event ev = call_next(&k, c->timeout_ms);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            set_status(st, GRPC_STATUS_DEADLINE_EXCEEDED,
                       "no answer within %u ms of the last event", c->timeout_ms);
            goto out;
        }
    }
    if (status_of(&k, st) < 0)
        goto out;
    resp = unpack_owned(&api__eresponse__descriptor, recv);
    if (resp == NULL) {
        set_status(st, GRPC_STATUS_INTERNAL, "SendEvent: the answer is not an EResponse");
        goto out;
    }
    if (resp->status == API__EVENT_CODE__SUCCESS)
        rc = 0;
    else
        set_status(st, 0, "FAILURE");
    fb_client_free_message(resp);
out:
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    if (k.cq != NULL)
        call_end(&k);
    return rc;
}

/* ---- streams ------------------------------------------------------------ */

static int
post_recv(fb_stream_t *s, fb_client_status_t *st)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_bb;
    if (call_batch(&s->c, &op, 1, &s->tags[TAG_RECV], st) < 0)
        return -1;
    s->receiving = true;
    return 0;
}

/* on_ack -- one received Ack: out of the in-flight set, to the callback.
 * An ack for a batch not in flight (never sent, or answered already) is
 * a broken server: the stream ends, and what is in flight is resent. */
static int
on_ack(fb_stream_t *s, const Fbpipe__V1__Ack *a)
{
    uint64_t t = fb_monotonic_us(), sent;
    unsigned i;

    for (i = 0; i < s->n_inflight && s->inflight[i].seq != a->seq; i++)
        ;
    if (i == s->n_inflight) {
        char why[96];

        snprintf(why, sizeof(why), "the server acknowledged batch %llu, which is not in flight",
                 (unsigned long long)a->seq);
        grpc_call_cancel_with_status(s->c.call, GRPC_STATUS_INTERNAL, why, NULL);
        return -1;
    }
    sent = s->inflight[i].sent_us;
    s->inflight[i] = s->inflight[--s->n_inflight];
    if (s->cb != NULL)
        s->cb(s->arg, a, t - sent);
    return 0;
}

/* ended -- the server is done: final status in, no message to come. */
static bool
ended(const fb_stream_t *s)
{
    return s->c.status_done && !s->receiving;
}

/* pump -- handle one event (wait at most wait_ms); -1 on timeout. */
static int
pump(fb_stream_t *s, unsigned wait_ms)
{
    grpc_event ev = call_next(&s->c, wait_ms);
    char *tag = ev.tag;

    if (ev.type != GRPC_OP_COMPLETE)
        return -1;
    if (tag == &s->tags[TAG_SEND]) {
        s->sending = false;
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
    } else if (tag == &s->tags[TAG_RECV]) {
        fb_pballoc_t a;
        Fbpipe__V1__Ack *ack;

        s->receiving = false;
        if (!ev.success || s->recv_bb == NULL)
            return 0; /* no more messages */
        fb_pballoc_init(&a, 4 * grpc_byte_buffer_length(s->recv_bb) + 4096);
        ack = unpack(&fbpipe__v1__ack__descriptor, s->recv_bb, &a.base);
        grpc_byte_buffer_destroy(s->recv_bb);
        s->recv_bb = NULL;
        if (ack == NULL) {
            grpc_call_cancel_with_status(s->c.call, GRPC_STATUS_INTERNAL,
                                         "the server sent something that is not an Ack", NULL);
            return 0;
        }
        if (on_ack(s, ack) == 0)
            post_recv(s, NULL);
        protobuf_c_message_free_unpacked(&ack->base, &a.base);
    } else if (tag == &s->tags[TAG_STATUS]) {
        s->c.status_done = true;
    }
    return 0;
}

/* wait_until -- pump until done(s) or the deadline; -1 on the deadline. */
static int
wait_until(fb_stream_t *s, bool (*done)(const fb_stream_t *), uint64_t deadline)
{
    while (!done(s)) {
        if (fb_monotonic_us() >= deadline)
            return -1;
        pump(s, 100);
    }
    return 0;
}

static bool
room(const fb_stream_t *s)
{
    return ended(s) || (!s->sending && s->n_inflight < s->c.client->max_inflight);
}

static bool
sent(const fb_stream_t *s)
{
    return ended(s) || !s->sending;
}

/* stream_failed -- why the stream ended early (st), -1. */
static int
stream_failed(fb_stream_t *s, fb_client_status_t *st)
{
    if (s->c.status != GRPC_STATUS_OK)
        return status_of(&s->c, st), -1;
    set_status(st, GRPC_STATUS_UNAVAILABLE, "the stream ended with %u batches unacknowledged",
               s->n_inflight);
    return -1;
}

fb_stream_t *
fb_stream_open(fb_client_t *c, fb_ack_cb_t cb, void *arg, fb_client_status_t *st)
{
    fb_stream_t *s = calloc(1, sizeof(*s));
    grpc_op ops[2];

    if (s == NULL || (s->inflight = calloc(c->max_inflight, sizeof(*s->inflight))) == NULL) {
        free(s);
        set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    s->cb = cb;
    s->arg = arg;
    if (call_start(&s->c, c, "/fbpipe.v1.Ingest/Stream", 0, st) < 0) {
        fb_stream_free(s);
        return NULL;
    }
    memset(ops, 0, sizeof(ops));
    op_metadata(&s->c, &ops[0]);
    op_initial(&s->c, &ops[1]);
    if (call_batch(&s->c, ops, 2, &s->tags[TAG_START], st) < 0) {
        fb_stream_free(s);
        return NULL;
    }
    memset(ops, 0, sizeof(ops));
    op_status(&s->c, &ops[0]);
    if (call_batch(&s->c, ops, 1, &s->tags[TAG_STATUS], st) < 0 || post_recv(s, st) < 0) {
        fb_stream_free(s);
        return NULL;
    }
    return s;
}

/* stream_send -- one packed batch (the buffer is the stream's now). */
static int
stream_send(fb_stream_t *s, uint64_t seq, grpc_byte_buffer *bb, fb_client_status_t *st)
{
    fb_client_t *c = s->c.client;
    grpc_op op;

    if (s->closed) {
        grpc_byte_buffer_destroy(bb);
        set_status(st, GRPC_STATUS_FAILED_PRECONDITION, "the stream is closed");
        return -1;
    }
    if (wait_until(s, room, fb_monotonic_us() + (uint64_t)c->timeout_ms * 1000) < 0) {
        grpc_byte_buffer_destroy(bb);
        set_status(st, GRPC_STATUS_DEADLINE_EXCEEDED,
                   "no room on the stream within %u ms (%u batches unacknowledged)",
                   c->timeout_ms, s->n_inflight);
        return -1;
    }
    if (ended(s)) {
        grpc_byte_buffer_destroy(bb);
        return stream_failed(s, st);
    }
    for (unsigned i = 0; i < s->n_inflight; i++)
        if (s->inflight[i].seq == seq) {
            grpc_byte_buffer_destroy(bb);
            set_status(st, GRPC_STATUS_INVALID_ARGUMENT, "batch %llu is already in flight",
                       (unsigned long long)seq);
            return -1;
        }
    s->send_bb = bb;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->send_bb;
    if (call_batch(&s->c, &op, 1, &s->tags[TAG_SEND], st) < 0) {
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
        return -1;
    }
    s->sending = true;
    s->inflight[s->n_inflight++] = (inflight_t){.seq = seq, .sent_us = fb_monotonic_us()};
    /* gRPC writes the batch only while its queue is polled: a caller that
     * goes on with other work (or sleeps) before its next call would hold
     * the batch back, so wait until gRPC took it (acks arriving meanwhile
     * are handled). Not longer than the next send would have waited. */
    if (wait_until(s, sent, fb_monotonic_us() + (uint64_t)c->timeout_ms * 1000) < 0) {
        set_status(st, GRPC_STATUS_DEADLINE_EXCEEDED, "batch %llu not taken within %u ms",
                   (unsigned long long)seq, c->timeout_ms);
        return -1;
    }
    return 0;
}

int
fb_stream_send(fb_stream_t *s, const Fbpipe__V1__Batch *b, fb_client_status_t *st)
{
    return stream_send(s, b->seq, pack(&b->base), st);
}

int
fb_stream_send_packed(fb_stream_t *s, uint64_t seq, const uint8_t *bytes, size_t len,
                      fb_client_status_t *st)
{
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)bytes, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);

    grpc_slice_unref(slice);
    return stream_send(s, seq, bb, st);
}

int
fb_stream_close(fb_stream_t *s, fb_client_status_t *st)
{
    fb_client_t *c = s->c.client;
    uint64_t deadline = fb_monotonic_us() + (uint64_t)c->timeout_ms * 1000;
    grpc_op op;

    if (s->closed) {
        set_status(st, GRPC_STATUS_FAILED_PRECONDITION, "the stream is closed");
        return -1;
    }
    s->closed = true;
    if (wait_until(s, sent, deadline) < 0) {
        set_status(st, GRPC_STATUS_DEADLINE_EXCEEDED, "the last batch not taken within %u ms",
                   c->timeout_ms);
        return -1;
    }
    if (!ended(s)) {
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        if (call_batch(&s->c, &op, 1, &s->tags[TAG_CLOSE], st) < 0)
            return -1;
    }
    if (wait_until(s, ended, deadline) < 0) {
        set_status(st, GRPC_STATUS_DEADLINE_EXCEEDED,
                   "no final status within %u ms (%u batches unacknowledged)", c->timeout_ms,
                   s->n_inflight);
        return -1;
    }
    if (s->n_inflight > 0)
        return stream_failed(s, st);
    return 0; /* every batch answered: a final error (an expired token) failed none */
}

static bool
all_acked(const fb_stream_t *s)
{
    return ended(s) || (!s->sending && s->n_inflight == 0);
}

int
fb_stream_wait(fb_stream_t *s, fb_client_status_t *st)
{
    fb_client_t *c = s->c.client;
    uint64_t deadline = fb_monotonic_us() + (uint64_t)c->timeout_ms * 1000;

    if (wait_until(s, all_acked, deadline) < 0) {
        set_status(st, GRPC_STATUS_DEADLINE_EXCEEDED,
                   "%u batches unacknowledged after %u ms", s->n_inflight, c->timeout_ms);
        return -1;
    }
    if (s->n_inflight > 0)
        return stream_failed(s, st);
    return 0; /* every batch answered, even if the stream ended since */
}

bool
fb_stream_poll(fb_stream_t *s, unsigned wait_ms)
{
    uint64_t deadline = fb_monotonic_us() + (uint64_t)wait_ms * 1000;

    while (!ended(s)) {
        uint64_t now = fb_monotonic_us();
        if (now >= deadline) {
            while (pump(s, 0) == 0)
                ;
            break;
        }
        pump(s, (unsigned)((deadline - now + 999) / 1000));
    }
    return ended(s);
}

bool
fb_stream_ended(fb_stream_t *s)
{
    return fb_stream_poll(s, 0);
}

size_t
fb_stream_unacked(const fb_stream_t *s, uint64_t *seqs, size_t cap)
{
    size_t n = 0;

    for (unsigned i = 0; i < s->n_inflight && n < cap; i++)
        seqs[n++] = s->inflight[i].seq;
    return s->n_inflight;
}

void
fb_stream_free(fb_stream_t *s)
{
    if (s == NULL)
        return;
    if (s->c.cq != NULL)
        call_end(&s->c);
    if (s->send_bb != NULL)
        grpc_byte_buffer_destroy(s->send_bb);
    if (s->recv_bb != NULL)
        grpc_byte_buffer_destroy(s->recv_bb);
    free(s->inflight);
    free(s);
}
