/*
 * ingest_client.h -- a client of fbpiped's two ingest APIs, on the gRPC C
 * core: api.EventService (ExchangeConfig, SendEvent) and fbpipe.v1.Ingest
 * (Exchange, Stream with batches in flight). Used by the tests, the
 * benchmark and the Fluent Bit plugin.
 *
 * Blocking calls, each bounded by opts.timeout_ms; one thread at a time
 * per client (a stream belongs to its client's thread). Every failure is
 * a status (gRPC code and detail), never a crash or an endless wait, and
 * a broken stream says which batches were not acknowledged so that they
 * can be sent again. fb_client_new calls grpc_init() and fb_client_free
 * grpc_shutdown() (gRPC counts them): the caller needs neither. Never
 * logs (errors go into err or the status); never keeps a token after
 * fb_client_free; never trusts the server: answers are size-capped and
 * unpacked with a capped allocator, an ack for a batch not in flight ends
 * the stream with INTERNAL.
 */
#ifndef FB_INGEST_CLIENT_H
#define FB_INGEST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "fbpipe.pb-c.h"

#define FB_CLIENT_DETAIL_MAX 256

typedef struct fb_client_opts {
    const char *target;      /* host:port, or IP:port,IP:port,... (round robin) */
    const char *token;       /* the JWT, sent as "authorization: Bearer <token>" */
    const char *ca_file;     /* PEM roots: TLS; NULL: plaintext */
    const char *cert_file;   /* PEM client certificate and key (mTLS), or NULL */
    const char *key_file;
    const char *server_name; /* expected name in the server's certificate, or NULL */
    unsigned max_inflight;   /* batches in flight on a stream; 0: 8 */
    unsigned timeout_ms;     /* a unary call, or a wait for room or acks; 0: 30000 */
    size_t max_message_size; /* largest message received; 0: 4 MiB */
    unsigned keepalive_ms;   /* ping an idle connection this often (>= 300000); 0: never */
} fb_client_opts_t;

typedef struct fb_client_status {
    int code;                          /* grpc_status_code; 0 = OK */
    char detail[FB_CLIENT_DETAIL_MAX]; /* the server's or the library's words */
} fb_client_status_t;

typedef struct fb_client fb_client_t;
typedef struct fb_stream fb_stream_t;

/* One Ack; latency from the send of its batch to the ack, in microseconds. */
typedef void (*fb_ack_cb_t)(void *arg, const Fbpipe__V1__Ack *ack, uint64_t latency_us);

/* A target of several addresses (IP literals of one family, at most
 * FB_ADDR_TARGET_MAX, see fb_addr_grpc_target) is one channel with a
 * connection to each: every call (a stream, a SendEvent) goes to the next
 * address whose connection is up, so that streams spread over the hosts
 * and those of a host that dies are opened again on the others. Over TLS
 * it needs server_name, the name every host's certificate holds.
 * A client; NULL with err filled when the options or files are wrong
 * (a private key readable by group or others is refused). The channel
 * connects on the first call. */
fb_client_t *fb_client_new(const fb_client_opts_t *opts, char *err, size_t errlen);
/* Free a client whose streams are all freed. */
void fb_client_free(fb_client_t *c);
/* Use another token for the calls and streams that follow (a stream keeps
 * the token it was opened with). 0, or -1 with errno EINVAL (empty, or a
 * byte outside printable ASCII) or ENOMEM. */
int fb_client_set_token(fb_client_t *c, const char *token);

/* Wait until the channel is connected (it is asked to connect if idle):
 * 0 once it is, -1 when timeout_ms passed first. Lost connections are
 * tried again by the channel 100 ms after the loss, then at least every
 * second, so a restarted ingester is found within about a second. */
int fb_client_wait_ready(fb_client_t *c, unsigned timeout_ms);

/* Unary calls: 0 and *out (free with fb_client_free_message), or -1 and st.
 * Exchange tells the server that this client writes both versions of
 * XChaCha20-Poly1305 (fb_cipher_seal_xchacha); the answer names the one to use. */
int fb_client_exchange(fb_client_t *c, const char *access_key, const char *agent_id,
                       Fbpipe__V1__ExchangeResponse **out, fb_client_status_t *st);
int fb_client_exchange_config(fb_client_t *c, const char *access_key, Api__Config **out,
                              fb_client_status_t *st);
void fb_client_free_message(void *msg);

/* SendEvent: every event, half-close, the answer. 0 when the server
 * answered SUCCESS; -1 otherwise (st says why: FAILURE is code 0 with the
 * detail "FAILURE"). */
int fb_client_send_events(fb_client_t *c, Api__Event *const *events, size_t n,
                          fb_client_status_t *st);

/* Stream: open (NULL and st on failure); send blocks while max_inflight
 * batches are unacknowledged, and then until gRPC has taken the batch
 * (written it to the connection), calling cb for the acks that arrive (any
 * order; OK, RETRY or REJECTED: an answered batch is no longer in flight,
 * sending a RETRY batch again is the caller's choice); close half-closes
 * and waits for every ack and the final status. A seq may not be in
 * flight twice. send and close return 0, or -1 with st when the stream
 * broke or a wait passed opts.timeout_ms: then fb_stream_unacked lists the
 * seqs sent and not acknowledged (it returns their number; at most cap
 * are copied), and the stream can only be freed. A stream that ends
 * after every batch sent on it was answered did not fail those batches:
 * close (and wait) return 0, whatever the final status. */
fb_stream_t *fb_stream_open(fb_client_t *c, fb_ack_cb_t cb, void *arg, fb_client_status_t *st);
int fb_stream_send(fb_stream_t *s, const Fbpipe__V1__Batch *batch, fb_client_status_t *st);
/* The same for a batch already packed (bytes of fbpipe.v1.Batch whose seq
 * is seq): for callers that write the wire format themselves. */
int fb_stream_send_packed(fb_stream_t *s, uint64_t seq, const uint8_t *bytes, size_t len,
                          fb_client_status_t *st);
int fb_stream_close(fb_stream_t *s, fb_client_status_t *st);
/* Wait, stream left open, until every batch sent is answered (cb called
 * for each). 0, or -1 with st when the stream broke or ended with batches
 * unanswered, or opts.timeout_ms passed. The stream may have ended since
 * the last answer: see fb_stream_ended before sending more. */
int fb_stream_wait(fb_stream_t *s, fb_client_status_t *st);
/* Take what arrives within wait_ms (cb called for acks; 0: only what
 * already arrived); true once the server has ended the stream, which can
 * carry no more (free it and open another). The library reads acks only
 * inside its calls: a caller that waits between sends waits here, so
 * that acks are taken as they come. */
bool fb_stream_poll(fb_stream_t *s, unsigned wait_ms);
/* fb_stream_poll without waiting. */
bool fb_stream_ended(fb_stream_t *s);
size_t fb_stream_unacked(const fb_stream_t *s, uint64_t *seqs, size_t cap);
/* Cancel if still open, wait for gRPC to let go, free. */
void fb_stream_free(fb_stream_t *s);

#endif /* FB_INGEST_CLIENT_H */
