/*
 * agent.c -- the Fluent Bit output plugin's work (agent.h).
 *
 * Init reads the properties, connects and exchanges the tenant's config
 * (a wrong token or key, bad settings, a config it cannot use or a TLS
 * handshake that fails verification fail init with one line saying which;
 * an ingester that cannot be reached does not:
 * the thread exchanges before its first send, and flushes are retried
 * until then), then starts the instance's thread, which alone owns the
 * connection. Flush hands its chunk to that thread and waits for the
 * answer (exit frees nothing before the last flush is out); the chunks
 * that wait meanwhile (several Fluent Bit workers) are sent together and
 * their acks awaited together. The thread decodes each chunk (chunk.c), encrypts each event when the exchange gave
 * a key, sends batches over one long-lived stream (native API) or
 * SendEvent calls (compat API), and answers OK only once every batch is
 * acknowledged; RETRY on a broken connection, a timeout, RETRY acks that
 * stay, or while reconnecting is backed off; ERROR only for data the
 * server rejects for good. The config is exchanged again at the refresh
 * interval and after an authentication error, so a rotated key or new
 * limits apply to the next batch. Native batches carry the instance's
 * epoch (random, non-zero) and a chunk keeps its batches' seqs when it is
 * sent again, in later rounds and in Fluent Bit's later flushes of it
 * (resend.h): its events keep their identity for router.dedupe. Flush never touches the network and
 * keeps little on its stack (it runs on a 64 KiB coroutine, maybe on
 * several Fluent Bit workers at once). Logs one line per event to
 * standard error; never logs a token or a key.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/status.h>
#include <jansson.h>
#include <sodium.h>

#include "common/backoff.h"
#include "common/cipher.h"
#include "common/clock.h"
#include "common/ingest_client.h"
#include "common/keys.h"
#include "common/record.h"
#include "plugin/agent.h"
#include "plugin/chunk.h"
#include "plugin/resend.h"

#define EXPORT __attribute__((visibility("default")))
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define DOWN_SAY_MS 60000 /* an ingester still unreachable is logged this often */
#define RETRY_ROUNDS 3
#define RETRY_AFTER_MAX_MS 5000
#define TALLY_SAY_MS 60000 /* the agent's side of the ledger, logged this often */
enum { T_SENT, T_ACKED, T_RETRIED, T_REFUSED };
#define GROUP_MAX 16 /* chunks waiting together: sent together, acked together */
#define EXPIRY_WARN_S (15 * 60) /* warned this long before the token expires */
#define COMPAT_TRIES 4 /* a SendEvent answered FAILURE is sent this many times in all */
#define COMPAT_PAUSE_MS 200 /* before the second, doubled before each next */
#define BAD_SAY_MS 10000 /* events rejected for good are logged at most this often */
#define COMPAT_MESSAGE_MAX 1000000 /* fbpiped's default kafka.message_max_bytes: the compat
                                    * API does not tell its limit */
/* an exchange whose answer cannot be used (a cipher the API does not
 * have, a key of the wrong size): nothing is sent until it changes */
#define UNUSABLE GRPC_STATUS_FAILED_PRECONDITION

typedef struct job {
    const void *data;
    size_t size;
    const char *tag;
    int result;
    bool done;
    struct job *next;
} job_t;

/* One event of a chunk, ready to send. */
typedef struct ev {
    int64_t sec;
    int32_t nanos;
    uint8_t *payload; /* JSON, or nonce || ciphertext || tag (native), or hex (compat) */
    size_t len;
    int code;         /* the ack of its batch: -1 not yet, else Fbpipe__V1__AckCode */
    unsigned job;     /* which chunk of the group */
    uint32_t retry_after_ms;
} ev_t;

typedef struct agent {
    /* settings */
    char target[2048], agent_id[256];
    char *access_key, *token, *ca, *server_name;
    bool compat;
    unsigned timeout_ms, batch_records, max_inflight;
    size_t batch_bytes;
    /* shared with flush, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_job, cv_done, cv_idle;
    job_t *head, *tail;
    unsigned flushing; /* flush callers inside: exit frees nothing before it is 0 */
    bool stop, thread_started;
    pthread_t thread;
    /* the thread's (init's before the thread starts) */
    fb_client_t *client;
    fb_stream_t *stream;
    int cipher;
    char key_id[FB_KEY_ID_MAX + 1], user_id[FB_USER_ID_MAX + 1];
    uint8_t key[FB_ENC_KEY_LEN];
    unsigned max_records;
    uint64_t max_bytes, max_record, version, exchanged_ms, refresh_ms;
    size_t max_json; /* the largest body whose payload fits max_record */
    uint64_t seq, retry_at_ms;
    uint64_t epoch;     /* random, non-zero: this instance's, in every batch */
    fb_resend_t resend; /* chunks sent without a final answer, and their seqs */
    /* per chunk of the group: its first batch, how many, their first seq,
     * its entry in resend (-1: none) */
    size_t job_fb[GROUP_MAX], job_nb[GROUP_MAX];
    uint64_t job_seq[GROUP_MAX];
    int job_entry[GROUP_MAX];
    bool reopen; /* the config changed: the next batches go on a new stream */
    fb_backoff_t backoff; /* reconnecting after a lost connection */
    unsigned reconnect_wait_ms; /* a flush waits this long for a lost ingester */
    uint64_t down_ms, down_said_ms; /* when the connection was lost (0: it is up), last said */
    uint64_t group_ms;          /* when the group being sent started: it waits at most
                                 * reconnect_wait_ms in all */
    bool lost;                  /* the last send failed with the connection */
    size_t compat_next;         /* compat: the first batch of the group not yet answered */
    int64_t token_exp;
    uint64_t warned_ms;
    uint64_t bad_said_ms; /* events rejected for good: when last logged */
    size_t bad_unsaid;    /* and how many since, not logged */
    /* its side of the ledger, logged every TALLY_SAY_MS (and at exit):
     * events sent (each time), acknowledged OK, to be sent again, refused
     * for good; since start, and as last logged */
    uint64_t tally[4], tally_said[4], tally_said_ms;
    /* the chunk being sent */
    ev_t *evs;
    size_t n, cap;
    size_t *batch_first; /* first event of each batch of the group */
    size_t n_batches, batches_cap;
    job_t *group[GROUP_MAX]; /* the chunks being sent together */
    unsigned n_group, cur;
} agent_t;

/* ---- small things ---------------------------------------------------- */

static void say(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(const char *level, const char *fmt, ...)
{
    char when[32], msg[1024];
    time_t t = time(NULL);
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    strftime(when, sizeof(when), "%Y/%m/%d %H:%M:%S", localtime_r(&t, &tm));
    fprintf(stderr, "[%s] [%5s] [output:fbpipe] %s\n", when, level, msg);
}

static const char *
prop(struct flbgo_output_plugin *p, const char *key)
{
    const char *v = p->api->output_get_property(key, p->o_ins);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* number -- a property as an unsigned in [lo, hi]; -1 (logged) if not. */
static long
number(struct flbgo_output_plugin *p, const char *key, long dflt, long lo, long hi)
{
    const char *v = prop(p, key);
    char *end;
    long n;

    if (v == NULL)
        return dflt;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end != '\0' || n < lo || n > hi) {
        say("error", "%s: \"%s\" is not a number from %ld to %ld", key, v, lo, hi);
        return -1;
    }
    return n;
}

/* token_expiry -- the exp claim of a JWT, 0 when it has none. */
static int64_t
token_expiry(const char *token)
{
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    unsigned char *bin;
    size_t len = 0;
    int64_t exp = 0;
    json_t *j;

    if (dot2 == NULL)
        return 0;
    bin = malloc((size_t)(dot2 - dot1));
    if (bin == NULL)
        return 0;
    if (sodium_base642bin(bin, (size_t)(dot2 - dot1), dot1 + 1, (size_t)(dot2 - dot1 - 1), NULL,
                          &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
        (j = json_loadb((const char *)bin, len, 0, NULL)) != NULL) {
        if (json_is_integer(json_object_get(j, "exp")))
            exp = json_integer_value(json_object_get(j, "exp"));
        json_decref(j);
    }
    free(bin);
    return exp;
}

/* check_expiry -- a warning 15 minutes before the token expires (every 5),
 * an error once it has. */
static void
check_expiry(agent_t *a)
{
    int64_t left = a->token_exp - (int64_t)time(NULL);

    if (a->token_exp == 0 || left > EXPIRY_WARN_S ||
        (a->warned_ms && fb_monotonic_ms() - a->warned_ms < 300 * 1000))
        return;
    a->warned_ms = fb_monotonic_ms();
    if (left <= 0)
        say("error", "the access token of %s expired %lld s ago: set a new Access_Token",
            a->access_key, (long long)-left);
    else
        say("warn", "the access token of %s expires in %lld h %lld min: set a new one before",
            a->access_key, (long long)(left / 3600), (long long)(left % 3600 / 60));
}

static bool
auth_error(int code)
{
    return code == GRPC_STATUS_UNAUTHENTICATED || code == GRPC_STATUS_PERMISSION_DENIED;
}

/* tls_refused -- the TLS handshake's reason in the status of a call that
 * failed UNAVAILABLE, or NULL when it is not a TLS failure (a refused
 * connection, a timeout). gRPC 1.51 puts the last connection error into
 * the detail, "failed to connect to all addresses; last error: UNKNOWN:
 * ipv4:ADDR: Ssl handshake failed: SSL_ERROR_SSL: error:...:SSL
 * routines::certificate verify failed" (OpenSSL's words), or "...: Peer
 * name NAME is not in peer certificate" (its own check of the name). */
static const char *
tls_refused(const agent_t *a, const fb_client_status_t *st)
{
    static const char *const marks[] = {"Ssl handshake failed", "Handshake failed",
                                        "Peer name ", "certificate"};
    const char *p;

    if (a->ca == NULL || st->code != GRPC_STATUS_UNAVAILABLE)
        return NULL;
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
        if ((p = strstr(st->detail, marks[i])) != NULL)
            return i == 3 ? st->detail : p;
    return NULL;
}

/* ---- the exchange ---------------------------------------------------- */

/* json_limit -- the largest JSON body whose payload is at most max_record
 * bytes: as it is, sealed (nonce and tag added) or sealed in hex (twice
 * nonce, body and tag). */
static size_t
json_limit(const agent_t *a)
{
    uint64_t m = a->max_record;

    if (fb_cipher_is_xchacha(a->cipher))
        m = m > FB_XCHACHA_NONCE + FB_XCHACHA_TAG ? m - FB_XCHACHA_NONCE - FB_XCHACHA_TAG : 0;
    else if (a->cipher == FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX)
        m = m / 2 > FB_AESGCM_NONCE + FB_AESGCM_TAG ? m / 2 - FB_AESGCM_NONCE - FB_AESGCM_TAG : 0;
    return m > SIZE_MAX ? SIZE_MAX : (size_t)m;
}

static int unusable(fb_client_status_t *st, void *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* unusable -- the exchange's answer msg cannot be used: freed, st says
 * why, -1. */
static int
unusable(fb_client_status_t *st, void *msg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->detail, sizeof(st->detail), fmt, ap);
    va_end(ap);
    st->code = UNUSABLE;
    fb_client_free_message(msg);
    return -1;
}

/* exchange -- the tenant's config for this agent; 0, or -1 with st (code
 * UNUSABLE when the server answered what cannot be used). Each API gets
 * only its own cipher or none: anything else is refused, never sent as
 * plaintext or under a cipher the records do not name. */
static int
exchange(agent_t *a, fb_client_status_t *st)
{
    char old_id[sizeof(a->key_id)];
    int old_cipher = a->cipher;
    uint64_t old_version = a->version;

    memcpy(old_id, a->key_id, sizeof(old_id));
    if (a->compat) {
        Api__Config *c = NULL;
        const char *why = NULL;
        int have;
        if (fb_client_exchange_config(a->client, a->access_key, &c, st) < 0)
            return -1;
        have = fb_enc_key_decode(c->encryptionkey, strlen(c->encryptionkey), a->key, &why);
        if (have < 0)
            return unusable(st, c, "the server's EncryptionKey %s", why);
        a->cipher = have ? FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX : 0;
        snprintf(a->user_id, sizeof(a->user_id), "%s", c->userid);
        a->key_id[0] = '\0';
        a->max_records = 1000;
        a->max_bytes = 4 << 20;
        /* the message must fit as fbpiped counts it: the record around it
         * as the native Exchange would subtract */
        a->max_record = COMPAT_MESSAGE_MAX - (64 + 2 * strlen(a->access_key) + strlen(a->user_id) +
                                              FB_AGENT_ID_MAX + FB_TAG_MAX + FB_KEY_ID_MAX);
        a->refresh_ms = 300 * 1000;
        fb_client_free_message(c);
    } else {
        Fbpipe__V1__ExchangeResponse *r = NULL;
        if (fb_client_exchange(a->client, a->access_key, a->agent_id, &r, st) < 0)
            return -1;
        /* either version of XChaCha20-Poly1305: the one the server named
         * (the second, since this agent lists it, unless the server is
         * older), and the records say which */
        if (r->cipher != FBPIPE__V1__CIPHER__CIPHER_NONE &&
            r->cipher != FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305 &&
            r->cipher != FBPIPE__V1__CIPHER__CIPHER_XCHACHA20POLY1305_V2)
            return unusable(st, r, "the server asks for cipher %d, which the native API does not "
                            "support: nothing is sent", (int)r->cipher);
        if (r->cipher != 0 && (r->encryption_key.len != FB_ENC_KEY_LEN ||
                               strlen(r->key_id) > FB_KEY_ID_MAX))
            return unusable(st, r, "the server sent a key that is not 32 bytes, or a key id "
                            "longer than %d", FB_KEY_ID_MAX);
        a->cipher = r->cipher;
        if (r->cipher != 0)
            memcpy(a->key, r->encryption_key.data, FB_ENC_KEY_LEN);
        snprintf(a->key_id, sizeof(a->key_id), "%s", r->key_id);
        snprintf(a->user_id, sizeof(a->user_id), "%s", r->user_id);
        a->max_records = r->max_batch_records ? r->max_batch_records : 1000;
        a->max_bytes = r->max_batch_bytes ? r->max_batch_bytes : 4 << 20;
        a->max_record = r->max_record_bytes ? r->max_record_bytes : 1 << 20;
        a->refresh_ms = (uint64_t)(r->refresh_interval_s ? r->refresh_interval_s : 300) * 1000;
        a->version = r->config_version;
        fb_client_free_message(r);
    }
    /* a stream stays with the ingester process that opened it, and after a
     * reload that process keeps the keys it had: a new config (a rotated
     * key) goes on a new stream, which reaches a process that has it */
    if (a->exchanged_ms != 0 && (a->version != old_version || a->cipher != old_cipher ||
                                 strcmp(old_id, a->key_id) != 0))
        a->reopen = true;
    if (a->exchanged_ms != 0 && (a->cipher != old_cipher || strcmp(old_id, a->key_id) != 0))
        say("info", "%s: encryption now %s%s%s", a->access_key,
            a->cipher ? "with key id " : "off", a->key_id, a->cipher && !a->key_id[0] ? "(seed)" : "");
    a->max_json = json_limit(a);
    if (a->exchanged_ms == 0)
        say("info", "%s: connected to %s (%s API), as user %s, %s, records up to %zu bytes of JSON",
            a->access_key, a->target, a->compat ? "compat" : "native",
            a->user_id[0] ? a->user_id : "-", a->cipher ? "encrypting" : "not encrypting",
            a->max_json);
    a->exchanged_ms = fb_monotonic_ms();
    return 0;
}

/* ---- one chunk ------------------------------------------------------- */

static void
evs_clear(agent_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        sodium_memzero(a->evs[i].payload, a->evs[i].len);
        free(a->evs[i].payload);
    }
    a->n = 0;
    a->n_batches = 0;
}

/* add_event -- one event of the chunk, encrypted when the tenant does. */
static int
add_event(const fb_chunk_event_t *e, void *arg)
{
    agent_t *a = arg;
    ev_t *v;

    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        ev_t *evs = realloc(a->evs, cap * sizeof(*evs));
        if (evs == NULL)
            return -1;
        a->evs = evs;
        a->cap = cap;
    }
    v = &a->evs[a->n];
    memset(v, 0, sizeof(*v));
    v->sec = e->seconds;
    v->nanos = e->nanos;
    v->code = -1;
    v->job = a->cur;
    if (fb_cipher_is_xchacha(a->cipher)) {
        v->len = FB_XCHACHA_NONCE + e->len + FB_XCHACHA_TAG;
        v->payload = malloc(v->len);
        if (v->payload != NULL &&
            fb_cipher_seal_xchacha(a->cipher, a->key, a->access_key, a->key_id,
                                   (const uint8_t *)e->json, e->len, v->payload) < 0) {
            free(v->payload); /* names longer than an access key or key id can be */
            v->payload = NULL;
        }
    } else if (a->cipher == FBPIPE__V1__CIPHER__CIPHER_AES256GCM_HEX) {
        v->payload = malloc(2 * (28 + e->len) + 1);
        if (v->payload != NULL &&
            fb_cipher_seal_aesgcm_hex(a->key, (const uint8_t *)e->json, e->len,
                                      (char *)v->payload) < 0) {
            free(v->payload);
            v->payload = NULL;
        }
        v->len = v->payload ? strlen((char *)v->payload) : 0;
    } else {
        v->len = e->len;
        v->payload = malloc(e->len + 1);
        if (v->payload != NULL) {
            memcpy(v->payload, e->json, e->len);
            v->payload[e->len] = '\0';
        }
    }
    if (v->payload == NULL)
        return -1;
    a->n++;
    return 0;
}

/* split -- the chunk's events into batches within both limits. */
static int
split(agent_t *a)
{
    size_t recs = a->batch_records < a->max_records ? a->batch_records : a->max_records;
    uint64_t bytes = a->batch_bytes < a->max_bytes ? a->batch_bytes : a->max_bytes;
    size_t in = 0;
    uint64_t size = 0;

    a->n_batches = 0;
    if (a->n == 0)
        return 0; /* nothing to send (an empty or wholly refused chunk) */
    for (size_t i = 0; i < a->n; i++) {
        if (in == 0 || in == recs || size + a->evs[i].len + 64 > bytes ||
            a->evs[i].job != a->evs[i - 1].job) { /* a batch carries one chunk's tag */
            if (a->n_batches == a->batches_cap) {
                size_t cap = a->batches_cap ? a->batches_cap * 2 : 64;
                size_t *b = realloc(a->batch_first, (cap + 1) * sizeof(*b));
                if (b == NULL)
                    return -1;
                a->batch_first = b;
                a->batches_cap = cap;
            }
            a->batch_first[a->n_batches++] = i;
            in = 0;
            size = 0;
        }
        in++;
        size += a->evs[i].len + 64;
    }
    a->batch_first[a->n_batches] = a->n;
    return 0;
}

/* batch_seq -- the seq of batch b of the group: its chunk's first seq
 * and its place among the chunk's batches. */
static uint64_t
batch_seq(const agent_t *a, size_t b)
{
    unsigned g = a->evs[a->batch_first[b]].job;

    return a->job_seq[g] + (b - a->job_fb[g]);
}

/* assign_seqs -- each chunk of the group its batches' seqs: those it was
 * sent with before when it is sent again (same tag and bytes, same number
 * of batches), else new ones. */
static void
assign_seqs(agent_t *a)
{
    for (unsigned g = 0; g < a->n_group; g++) {
        a->job_nb[g] = 0;
        a->job_entry[g] = -1;
    }
    for (size_t b = 0; b < a->n_batches; b++) {
        unsigned g = a->evs[a->batch_first[b]].job;
        if (a->job_nb[g]++ == 0)
            a->job_fb[g] = b;
    }
    for (unsigned g = 0; g < a->n_group; g++) {
        uint8_t hash[FB_RESEND_HASH];
        uint64_t *layout;
        if (a->job_nb[g] == 0)
            continue;
        /* which events are sent (the largest record) and each batch's
         * count: the same chunk cut otherwise is not the same batches */
        layout = malloc((a->job_nb[g] + 1) * sizeof(*layout));
        if (layout == NULL) {
            a->job_seq[g] = a->seq; /* new seqs: at worst written twice */
            a->seq += a->job_nb[g];
            continue;
        }
        layout[0] = a->max_json;
        for (size_t k = 0; k < a->job_nb[g]; k++) {
            size_t b = a->job_fb[g] + k;
            layout[k + 1] = a->batch_first[b + 1] - a->batch_first[b];
        }
        fb_resend_hash(a->group[g]->tag, a->group[g]->data, a->group[g]->size, layout,
                       a->job_nb[g] + 1, hash);
        free(layout);
        a->job_entry[g] = fb_resend_take(&a->resend, hash, (uint32_t)a->job_nb[g], &a->seq,
                                         &a->job_seq[g]);
    }
}

/* on_ack -- the code of every event of the acked batch. */
static void
on_ack(void *arg, const Fbpipe__V1__Ack *ack, uint64_t latency_us)
{
    agent_t *a = arg;
    size_t b = a->n_batches;

    (void)latency_us;
    for (unsigned g = 0; g < a->n_group; g++)
        if (ack->seq >= a->job_seq[g] && ack->seq - a->job_seq[g] < a->job_nb[g]) {
            b = a->job_fb[g] + (size_t)(ack->seq - a->job_seq[g]);
            break;
        }
    if (b >= a->n_batches)
        return;
    for (size_t i = a->batch_first[b]; i < a->batch_first[b + 1]; i++) {
        a->evs[i].code = (int)ack->code;
        a->evs[i].retry_after_ms = ack->retry_after_ms;
    }
    a->tally[ack->code == FBPIPE__V1__ACK_CODE__OK         ? T_ACKED
             : ack->code == FBPIPE__V1__ACK_CODE__REJECTED ? T_REFUSED
                                                          : T_RETRIED] +=
        a->batch_first[b + 1] - a->batch_first[b];
    if (ack->code == FBPIPE__V1__ACK_CODE__REJECTED)
        say("error", "%s: a batch of %zu events rejected for good: %s", a->access_key,
            a->batch_first[b + 1] - a->batch_first[b], ack->detail);
}

/* send_batch -- batch b of the group, with its seq. */
static int
send_batch(agent_t *a, size_t b, fb_client_status_t *st)
{
    const char *tag = a->group[a->evs[a->batch_first[b]].job]->tag;
    size_t from = a->batch_first[b], n = a->batch_first[b + 1] - from;
    Fbpipe__V1__Batch batch = FBPIPE__V1__BATCH__INIT;
    Fbpipe__V1__BatchRecord *recs = calloc(n, sizeof(*recs)), **ptrs = calloc(n, sizeof(*ptrs));
    Google__Protobuf__Timestamp *ts = calloc(n, sizeof(*ts));
    int rc = -1;

    if (recs == NULL || ptrs == NULL || ts == NULL) {
        st->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(st->detail, sizeof(st->detail), "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const ev_t *v = &a->evs[from + i];
        fbpipe__v1__batch_record__init(&recs[i]);
        google__protobuf__timestamp__init(&ts[i]);
        ts[i].seconds = v->sec;
        ts[i].nanos = v->nanos;
        recs[i].time = &ts[i];
        recs[i].payload.data = v->payload;
        recs[i].payload.len = v->len;
        if (fb_cipher_is_xchacha(a->cipher)) {
            recs[i].enc = (Fbpipe__V1__Cipher)a->cipher; /* the version it was sealed with */
            recs[i].key_id = a->key_id;
        }
        ptrs[i] = &recs[i];
    }
    batch.seq = batch_seq(a, b);
    batch.epoch = a->epoch;
    batch.tag = (char *)tag;
    batch.agent_id = a->agent_id;
    batch.records = ptrs;
    batch.n_records = n;
    rc = fb_stream_send(a->stream, &batch, st);
    if (rc == 0)
        a->tally[T_SENT] += n;
out:
    free(recs);
    free(ptrs);
    free(ts);
    return rc;
}

/* broken -- the connection is gone: drop the stream, back off. Said once
 * when it is lost and once a minute while the ingester stays away; the
 * next flushes wait for it (await_ingester). */
static void
broken(agent_t *a, const fb_client_status_t *st)
{
    unsigned wait_ms = fb_backoff_next(&a->backoff);
    uint64_t now = fb_monotonic_ms();

    a->retry_at_ms = now + fb_backoff_spread(wait_ms, randombytes_random());
    a->lost = true;
    if (a->down_ms == 0) {
        a->down_ms = a->down_said_ms = now;
        say("warn", "%s: connection to %s lost (%s, code %d): flushes wait up to %u ms for it, "
            "then Fluent Bit retries their chunks", a->access_key, a->target, st->detail,
            st->code, a->reconnect_wait_ms);
    } else if (now - a->down_said_ms >= DOWN_SAY_MS) {
        a->down_said_ms = now;
        say("warn", "%s: %s still cannot be reached after %llu s (%s, code %d)", a->access_key,
            a->target, (unsigned long long)((now - a->down_ms) / 1000), st->detail, st->code);
    }
    if (a->stream != NULL) {
        fb_stream_free(a->stream);
        a->stream = NULL;
    }
    if (auth_error(st->code))
        a->exchanged_ms = 0; /* exchange again before the next stream */
}

/* up -- a call or stream went through: the ingester is back, if it was away. */
static void
up(agent_t *a)
{
    fb_backoff_reset(&a->backoff);
    a->retry_at_ms = 0;
    if (a->down_ms != 0)
        say("info", "%s: connected to %s again after %llu ms", a->access_key, a->target,
            (unsigned long long)(fb_monotonic_ms() - a->down_ms));
    a->down_ms = 0;
}

/* await_ingester -- the connection was lost: wait until the channel is
 * connected again, at most until reconnect_wait_ms after the loss (later
 * flushes of a long outage do not wait). true when it is: send again now,
 * instead of handing the chunks back to Fluent Bit's slower retries. */
static bool
await_ingester(agent_t *a)
{
    uint64_t start = a->down_ms < a->group_ms ? a->down_ms : a->group_ms;
    uint64_t now = fb_monotonic_ms(), until = start + a->reconnect_wait_ms;

    if (!a->lost || a->down_ms == 0 || now >= until)
        return false;
    a->lost = false;
    if (fb_client_wait_ready(a->client, (unsigned)(until - now)) < 0)
        return false;
    /* connected, yet the calls failed (a worker stopping, an ingester that
     * refuses streams): not again at once, the back-off first */
    now = fb_monotonic_ms();
    if (now < a->retry_at_ms) {
        if (a->retry_at_ms >= until)
            return false;
        usleep((useconds_t)(a->retry_at_ms - now) * 1000u);
    }
    return true;
}

/* ended_meanwhile -- a send or a wait failed on a stream kept from an
 * earlier group: when the server had ended it (after answering every
 * batch of that group, which native waited for: an expired token, a
 * worker stopping) between the check and the send, the group goes again
 * on a new stream at once, once per group, not as a lost connection. */
static bool
ended_meanwhile(agent_t *a, bool reused, bool *renewed)
{
    if (!reused || *renewed || !fb_stream_ended(a->stream))
        return false;
    *renewed = true;
    fb_stream_free(a->stream);
    a->stream = NULL;
    return true;
}

/* native -- the group's events through the stream; -1 when the
 * connection broke (every chunk is retried), else 0 and each event's code. */
static int
native(agent_t *a)
{
    fb_client_status_t st = {0};
    bool renewed = false;

    if (a->reopen && a->stream != NULL) {
        if (fb_stream_close(a->stream, &st) < 0)
            say("warn", "%s: closing the stream for the new config: %s", a->access_key,
                st.detail);
        fb_stream_free(a->stream);
        a->stream = NULL;
    }
    a->reopen = false;
    for (unsigned round = 0; round <= RETRY_ROUNDS; round++) {
        bool pending = false, reused, failed = false;
        uint32_t wait = 0;

        if (a->stream != NULL && fb_stream_ended(a->stream)) {
            /* the server ended it after answering every batch (an expired
             * token, a worker stopping): nothing lost, and no backoff */
            fb_stream_free(a->stream);
            a->stream = NULL;
        }
        reused = a->stream != NULL;
        if (a->stream == NULL &&
            (a->stream = fb_stream_open(a->client, on_ack, a, &st)) == NULL) {
            broken(a, &st);
            return -1;
        }
        /* each round sends what is not answered yet under the same seqs
         * (every ack of the last round is in: the wait returned) */
        for (size_t b = 0; b < a->n_batches; b++) {
            int code = a->evs[a->batch_first[b]].code;
            if (code == FBPIPE__V1__ACK_CODE__OK || code == FBPIPE__V1__ACK_CODE__REJECTED)
                continue;
            for (size_t i = a->batch_first[b]; i < a->batch_first[b + 1]; i++)
                a->evs[i].code = -1;
            if ((failed = send_batch(a, b, &st) < 0))
                break;
        }
        if (failed || fb_stream_wait(a->stream, &st) < 0) {
            if (ended_meanwhile(a, reused, &renewed)) {
                round--; /* this round again, on a new stream */
                continue;
            }
            broken(a, &st);
            return -1;
        }
        up(a);
        for (size_t i = 0; i < a->n; i++) {
            if (a->evs[i].code != FBPIPE__V1__ACK_CODE__OK &&
                a->evs[i].code != FBPIPE__V1__ACK_CODE__REJECTED) {
                pending = true;
                if (a->evs[i].retry_after_ms > wait)
                    wait = a->evs[i].retry_after_ms;
            }
        }
        if (!pending)
            return 0;
        if (round == RETRY_ROUNDS)
            break;
        usleep((wait > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : wait ? wait : 100) * 1000u);
    }
    say("warn", "%s: the ingester asked to retry %u times: the chunks are retried later",
        a->access_key, RETRY_ROUNDS + 1);
    return 0;
}

/* failure -- st is the answer FAILURE: the original ingester's transient
 * failure (fbpiped's when Kafka did not take every event), worth sending
 * again. */
static bool
failure(const fb_client_status_t *st)
{
    return st->code == 0 && strcmp(st->detail, "FAILURE") == 0;
}

/* compat_send -- events [from, from + n) of the chunk in one SendEvent
 * call: 0 when the server answered SUCCESS, else -1 and st (FAILURE is
 * code 0, see failure()). */
static int
compat_send(agent_t *a, size_t from, size_t n, fb_client_status_t *st)
{
    const char *tag = a->group[0]->tag;
    Api__Event *evs = calloc(n, sizeof(*evs)), **ptrs = calloc(n, sizeof(*ptrs));
    Google__Protobuf__Timestamp *ts = calloc(n, sizeof(*ts));
    int rc = -1;

    if (evs == NULL || ptrs == NULL || ts == NULL) {
        st->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(st->detail, sizeof(st->detail), "out of memory for a call of %zu events", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        api__event__init(&evs[i]);
        google__protobuf__timestamp__init(&ts[i]);
        ts[i].seconds = a->evs[from + i].sec;
        ts[i].nanos = a->evs[from + i].nanos;
        evs[i].timestamp = &ts[i];
        evs[i].agent_id = a->agent_id;
        evs[i].tag = (char *)tag;
        evs[i].message = (char *)a->evs[from + i].payload;
        evs[i].userid = a->user_id;
        evs[i].accesskey = a->access_key;
        ptrs[i] = &evs[i];
    }
    rc = fb_client_send_events(a->client, ptrs, n, st);
    a->tally[T_SENT] += n;
    if (rc == 0 && st->code == GRPC_STATUS_OK && !failure(st))
        a->tally[T_ACKED] += n;
    else if (failure(st))
        a->tally[T_RETRIED] += n;
out:
    free(evs);
    free(ptrs);
    free(ts);
    return rc;
}

/* compat_range -- events [from, from + n) through SendEvent: a FAILURE
 * answer is sent again (COMPAT_TRIES in all, pausing between); a call
 * refused with INVALID_ARGUMENT is halved, and the halves sent, until the
 * events refused are alone: those are dropped, counted in *bad (the
 * first reason into why). FB_FLB_OK, or FB_FLB_RETRY with st. */
static int
compat_range(agent_t *a, size_t from, size_t n, size_t *bad, char *why, size_t whylen,
             fb_client_status_t *st)
{
    int rc;

    for (unsigned t = 1; compat_send(a, from, n, st) < 0; t++) {
        if (!failure(st) || t == COMPAT_TRIES)
            break;
        usleep((useconds_t)(COMPAT_PAUSE_MS << (t - 1)) * 1000u);
    }
    if (st->code == GRPC_STATUS_OK && !failure(st))
        return FB_FLB_OK;
    if (st->code != GRPC_STATUS_INVALID_ARGUMENT)
        return FB_FLB_RETRY;
    if (n == 1) {
        /* refused alone: this event is the bad one */
        a->tally[T_REFUSED]++;
        if ((*bad)++ == 0)
            snprintf(why, whylen, "%s", st->detail);
        return FB_FLB_OK;
    }
    rc = compat_range(a, from, n / 2, bad, why, whylen, st);
    if (rc == FB_FLB_OK)
        rc = compat_range(a, from + n / 2, n - n / 2, bad, why, whylen, st);
    return rc;
}

/* say_bad -- n of the of events of a chunk were rejected for good and
 * dropped: said at most once every BAD_SAY_MS, with what was not said
 * since; at exit (n 0), what was not said. */
static void
say_bad(agent_t *a, size_t n, size_t of, const char *why)
{
    uint64_t now = fb_monotonic_ms();
    unsigned long long ago = (unsigned long long)((now - a->bad_said_ms) / 1000);

    if (n > 0 && a->bad_said_ms != 0 && now - a->bad_said_ms < BAD_SAY_MS) {
        a->bad_unsaid += n;
        return;
    }
    if (n == 0)
        say("error", "%s: %zu events rejected for good by the ingester and dropped in the last "
            "%llu s, not logged one by one", a->access_key, a->bad_unsaid, ago);
    else if (a->bad_unsaid > 0)
        say("error", "%s: %zu of %zu events rejected for good by the ingester (%s): dropped, "
            "the other events sent (and %zu more dropped in the last %llu s)", a->access_key, n,
            of, why, a->bad_unsaid, ago);
    else
        say("error", "%s: %zu of %zu events rejected for good by the ingester (%s): dropped, "
            "the other events sent", a->access_key, n, of, why);
    a->bad_unsaid = 0;
    a->bad_said_ms = now;
}

/* compat -- a decoded chunk through SendEvent calls; an FB_FLB_* code:
 * ERROR when events were rejected for good (and the others sent). */
static int
compat(agent_t *a)
{
    fb_client_status_t st = {0};
    char why[FB_CLIENT_DETAIL_MAX] = "";
    size_t bad = 0;

    /* after a lost connection within the flush, from the batch it broke on */
    for (size_t b = a->compat_next; b < a->n_batches; b++) {
        size_t from = a->batch_first[b], n = a->batch_first[b + 1] - from;
        if (compat_range(a, from, n, &bad, why, sizeof(why), &st) != FB_FLB_OK) {
            if (failure(&st))
                say("warn", "%s: the ingester answered FAILURE %d times: the chunk is retried "
                    "later", a->access_key, COMPAT_TRIES);
            else
                broken(a, &st);
            return FB_FLB_RETRY; /* the bad events are found again then */
        }
        a->compat_next = b + 1;
        up(a);
    }
    if (bad == 0)
        return FB_FLB_OK;
    say_bad(a, bad, a->n, why);
    return FB_FLB_ERROR;
}

/* group -- the work of the flushes waiting together: each job's result. */
static void
group(agent_t *a)
{
    fb_client_status_t st = {0};
    bool lost[GROUP_MAX] = {false};
    size_t max_json;
    int rc = FB_FLB_OK;

    for (unsigned g = 0; g < a->n_group; g++)
        a->group[g]->result = FB_FLB_RETRY;
    check_expiry(a);
    a->lost = false;
    a->group_ms = fb_monotonic_ms();
    a->compat_next = 0;
    /* backing off: Fluent Bit retries later, unless the connection was
     * what failed and the channel found the ingester back meanwhile */
    if (fb_monotonic_ms() < a->retry_at_ms &&
        (a->down_ms == 0 || fb_client_wait_ready(a->client, 0) < 0))
        return;
    while (a->exchanged_ms == 0 || fb_monotonic_ms() - a->exchanged_ms >= a->refresh_ms) {
        if (exchange(a, &st) < 0) {
            if (auth_error(st.code) || st.code == UNUSABLE) {
                /* nothing goes out, on the old config either */
                say("error", "%s: %s (code %d): %s", a->access_key,
                    st.code == UNUSABLE ? "the ingester's config cannot be used"
                                        : "the ingester refuses the token or the key",
                    st.code, st.detail);
                a->retry_at_ms = fb_monotonic_ms() + BACKOFF_MAX_MS;
                a->down_ms = 0; /* answered: no reconnection shortens this wait */
                return;
            }
            if (a->exchanged_ms == 0) {
                broken(a, &st);
                if (await_ingester(a))
                    continue;
                return;
            }
            /* the old config holds until the next try */
        }
        break;
    }
    max_json = a->max_json;
    for (a->cur = 0; a->cur < a->n_group; a->cur++) {
        const job_t *j = a->group[a->cur];
        fb_chunk_stats_t cs;
        if (fb_chunk_events(j->data, j->size, max_json, add_event, a, &cs) != 0) {
            evs_clear(a);
            say("error", "out of memory decoding a chunk of %zu bytes", j->size);
            return;
        }
        a->tally[T_REFUSED] += cs.refused;
        if (cs.refused || cs.bad_bytes) {
            /* lost for good: Fluent Bit counts an error once the rest is acknowledged */
            lost[a->cur] = true;
            say("warn", "%s: chunk of %zu bytes: %zu records not sent (not a record, nested "
                "deeper than %d or over %zu bytes), %zu bytes not readable",
                a->access_key, j->size, cs.refused, FB_CHUNK_MAX_DEPTH, max_json, cs.bad_bytes);
        }
    }
    if (split(a) < 0) {
        evs_clear(a);
        say("error", "out of memory splitting %zu events into batches", a->n);
        return;
    }
    if (a->n > 0 && !a->compat)
        assign_seqs(a); /* a chunk sent before keeps its batches' seqs */
    for (;;) {
        rc = FB_FLB_OK;
        if (a->n > 0 && a->compat)
            rc = compat(a);
        else if (a->n > 0 && native(a) < 0)
            rc = FB_FLB_RETRY;
        if (rc != FB_FLB_RETRY || !await_ingester(a))
            break;
        /* the connection was lost and the ingester is back: what was not
         * answered goes again now, under the same seqs */
    }
    for (unsigned g = 0; g < a->n_group; g++)
        a->group[g]->result = rc != FB_FLB_OK ? rc : lost[g] ? FB_FLB_ERROR : FB_FLB_OK;
    for (size_t i = 0; rc == FB_FLB_OK && !a->compat && i < a->n; i++) {
        job_t *j = a->group[a->evs[i].job];
        if (a->evs[i].code == FBPIPE__V1__ACK_CODE__REJECTED && j->result == FB_FLB_OK)
            j->result = FB_FLB_ERROR;
        else if (a->evs[i].code != FBPIPE__V1__ACK_CODE__OK &&
                 a->evs[i].code != FBPIPE__V1__ACK_CODE__REJECTED)
            j->result = FB_FLB_RETRY;
    }
    /* a chunk Fluent Bit flushes again keeps its seqs; one answered for
     * good lets its entry go */
    for (unsigned g = 0; !a->compat && a->n > 0 && g < a->n_group; g++)
        fb_resend_release(&a->resend, a->job_entry[g], a->group[g]->result != FB_FLB_RETRY);
    evs_clear(a);
}

/* say_tally -- the agent's side of the ledger, every TALLY_SAY_MS while it
 * works and at exit (force): since the last line and since start, to hold
 * against `fbpiped ledger`. */
static void
say_tally(agent_t *a, bool force)
{
    uint64_t now = fb_monotonic_ms();
    unsigned long long d[4];

    if (a->tally_said_ms == 0)
        a->tally_said_ms = now;
    if (!force && now - a->tally_said_ms < TALLY_SAY_MS)
        return;
    for (int i = 0; i < 4; i++)
        d[i] = (unsigned long long)(a->tally[i] - a->tally_said[i]);
    if (d[T_SENT] + d[T_ACKED] + d[T_RETRIED] + d[T_REFUSED] > 0 || force)
        say("info", "%s: in %llu s: %llu events sent, %llu acked, %llu to send again, %llu "
            "refused for good; since start: %llu sent, %llu acked, %llu to send again, %llu "
            "refused", a->access_key, (unsigned long long)((now - a->tally_said_ms) / 1000),
            d[T_SENT], d[T_ACKED], d[T_RETRIED], d[T_REFUSED],
            (unsigned long long)a->tally[T_SENT], (unsigned long long)a->tally[T_ACKED],
            (unsigned long long)a->tally[T_RETRIED], (unsigned long long)a->tally[T_REFUSED]);
    memcpy(a->tally_said, a->tally, sizeof(a->tally));
    a->tally_said_ms = now;
}

/* ---- the thread ------------------------------------------------------ */

static void *
run(void *arg)
{
    agent_t *a = arg;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        job_t *j;
        bool stopping;
        while (a->head == NULL && !a->stop)
            pthread_cond_wait(&a->cv_job, &a->mu);
        if (a->head == NULL)
            break; /* stopping, nothing left */
        stopping = a->stop;
        /* every chunk waiting (compat: one), sent and acknowledged together */
        a->n_group = 0;
        while (a->head != NULL && a->n_group < (a->compat ? 1u : GROUP_MAX)) {
            j = a->head;
            a->head = j->next;
            a->group[a->n_group++] = j;
        }
        if (a->head == NULL)
            a->tail = NULL;
        pthread_mutex_unlock(&a->mu);
        if (stopping)
            for (unsigned g = 0; g < a->n_group; g++)
                a->group[g]->result = FB_FLB_RETRY;
        else
            group(a);
        say_tally(a, false);
        pthread_mutex_lock(&a->mu);
        for (unsigned g = 0; g < a->n_group; g++)
            a->group[g]->done = true;
        pthread_cond_broadcast(&a->cv_done);
    }
    pthread_mutex_unlock(&a->mu);
    if (a->bad_unsaid > 0)
        say_bad(a, 0, 0, NULL);
    say_tally(a, true);
    if (a->stream != NULL) {
        fb_client_status_t st;
        if (fb_stream_close(a->stream, &st) < 0)
            say("warn", "%s: stream closed with %s", a->access_key, st.detail);
        fb_stream_free(a->stream);
        a->stream = NULL;
    }
    return NULL;
}

/* ---- the entry points ------------------------------------------------ */

static void
agent_free(agent_t *a)
{
    if (a == NULL)
        return;
    evs_clear(a);
    free(a->evs);
    free(a->batch_first);
    if (a->stream != NULL)
        fb_stream_free(a->stream);
    fb_client_free(a->client);
    if (a->token != NULL) {
        sodium_memzero(a->token, strlen(a->token));
        free(a->token);
    }
    free(a->access_key);
    free(a->ca);
    free(a->server_name);
    sodium_memzero(a->key, sizeof(a->key));
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv_job);
    pthread_cond_destroy(&a->cv_done);
    pthread_cond_destroy(&a->cv_idle);
    free(a);
}

/* settings -- the properties into a; 0, or -1 after logging. */
/* target_of -- Ingester_Host (one host, or several joined by commas, each
 * with Ingester_Port unless it names its own: IP:PORT, [IPv6]:PORT) as a
 * client target (fb_client_new checks it: several must be IP addresses,
 * spread over with round robin). 0, or -1 when it does not fit. */
static int
target_of(char *out, size_t outlen, const char *hosts, long port)
{
    size_t used = 0;

    out[0] = '\0';
    for (const char *h = hosts;;) {
        size_t n = strcspn(h, ",");
        const char *e = h, *close;
        size_t len = n;
        unsigned colons = 0;
        int w;

        while (len > 0 && (*e == ' ' || *e == '\t')) {
            e++;
            len--;
        }
        while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t'))
            len--;
        for (size_t i = 0; i < len; i++)
            colons += e[i] == ':';
        close = memchr(e, ']', len);
        if (len > 0 && e[0] == '[' && close != NULL && close + 1 < e + len && close[1] == ':')
            w = snprintf(out + used, outlen - used, "%s%.*s", used ? "," : "", (int)len, e);
        else if (len > 0 && e[0] == '[')
            w = snprintf(out + used, outlen - used, "%s%.*s:%ld", used ? "," : "", (int)len, e,
                         port);
        else if (colons == 1) /* HOST:PORT */
            w = snprintf(out + used, outlen - used, "%s%.*s", used ? "," : "", (int)len, e);
        else if (colons > 1) /* a bare IPv6 address */
            w = snprintf(out + used, outlen - used, "%s[%.*s]:%ld", used ? "," : "", (int)len, e,
                         port);
        else /* a name or an IPv4 address; empty: fb_client_new says so */
            w = snprintf(out + used, outlen - used, "%s%.*s:%ld", used ? "," : "", (int)len, e,
                         port);
        if (w < 0 || (size_t)w >= outlen - used)
            return -1;
        used += (size_t)w;
        if (h[n] == '\0')
            return 0;
        h += n + 1;
    }
}

static int
settings(agent_t *a, struct flbgo_output_plugin *p)
{
    /* Fluent Bit keeps Host, Port and TLS for itself (they never reach a
     * proxy plugin, and TLS on is refused for it): Ingester_* carry them,
     * and the plain names are not read, so a test driver that passed them
     * cannot hide what Fluent Bit would do */
    const char *host = prop(p, "ingester_host"), *tls = prop(p, "ingester_tls");
    const char *api = prop(p, "api");
    const char *key = prop(p, "access_key"), *token = prop(p, "access_token");
    const char *ca = prop(p, "tls_ca"), *name = prop(p, "tls_server_name");
    const char *id = prop(p, "agent_id");
    long port = number(p, "ingester_port", 7777, 1, 65535);
    long timeout = number(p, "timeout", 30, 1, 3600);
    long recs = number(p, "batch_records", 500, 1, 100000);
    long kb = number(p, "batch_kb", 1024, 1, 65536);
    long inflight = number(p, "max_inflight", 8, 1, 1024);
    long reconnect = number(p, "reconnect_wait", 10, 0, 3600);
    const char *why = NULL;

    if (port < 0 || timeout < 0 || recs < 0 || kb < 0 || inflight < 0 || reconnect < 0)
        return -1;
    key = key ? key : getenv("ACCESS_KEY");
    token = token ? token : getenv("ACCESS_TOKEN");
    if (key == NULL || !fb_access_key_valid(key, strlen(key), &why)) {
        say("error", "Access_Key (or ACCESS_KEY in the environment) %s",
            key ? why : "is not set");
        return -1;
    }
    if (token == NULL) {
        say("error", "Access_Token (or ACCESS_TOKEN in the environment) is not set");
        return -1;
    }
    if (api != NULL && strcmp(api, "native") != 0 && strcmp(api, "compat") != 0) {
        say("error", "API: \"%s\" is neither native nor compat", api);
        return -1;
    }
    if (tls != NULL && strcmp(tls, "on") != 0 && strcmp(tls, "off") != 0 &&
        strcmp(tls, "true") != 0 && strcmp(tls, "false") != 0) {
        say("error", "Ingester_TLS: \"%s\" is neither on nor off", tls);
        return -1;
    }
    bool want_tls = tls != NULL && (strcmp(tls, "on") == 0 || strcmp(tls, "true") == 0);
    if (!want_tls && (ca != NULL || name != NULL)) {
        /* plaintext would carry the token: a half-done TLS setup is refused */
        say("error", "%s is set but Ingester_TLS is off: set Ingester_TLS on, or remove it",
            ca != NULL ? "TLS_CA" : "TLS_Server_Name");
        return -1;
    }
    a->compat = api != NULL && strcmp(api, "compat") == 0;
    if (target_of(a->target, sizeof(a->target), host ? host : "127.0.0.1", port) < 0) {
        say("error", "Ingester_Host: longer than %zu bytes with the ports", sizeof(a->target));
        return -1;
    }
    if (id != NULL)
        snprintf(a->agent_id, sizeof(a->agent_id), "%s", id);
    else if (gethostname(a->agent_id, sizeof(a->agent_id) - 1) < 0)
        snprintf(a->agent_id, sizeof(a->agent_id), "unknown");
    a->access_key = strdup(key);
    a->token = strdup(token);
    if (want_tls)
        a->ca = strdup(ca ? ca : "/etc/ssl/certs/ca-certificates.crt");
    a->server_name = name ? strdup(name) : NULL;
    a->timeout_ms = (unsigned)timeout * 1000;
    a->reconnect_wait_ms = (unsigned)reconnect * 1000;
    a->batch_records = (unsigned)recs;
    a->batch_bytes = (size_t)kb * 1024;
    a->max_inflight = (unsigned)inflight;
    a->token_exp = token_expiry(token);
    if (a->access_key == NULL || a->token == NULL || (want_tls && a->ca == NULL)) {
        say("error", "out of memory");
        return -1;
    }
    return 0;
}

EXPORT int
fb_agent_init(struct flbgo_output_plugin *p)
{
    agent_t *a = calloc(1, sizeof(*a));
    fb_client_status_t st = {0};
    fb_client_opts_t o = {0};
    char err[512];

    if (a == NULL || fb_cipher_init() < 0) {
        say("error", "cannot start: out of memory or no randomness");
        free(a);
        return FB_FLB_ERROR;
    }
    pthread_mutex_init(&a->mu, NULL);
    fb_backoff_init(&a->backoff, BACKOFF_FIRST_MS, BACKOFF_MAX_MS);
    while (a->epoch == 0) /* names this instance's batches (router.dedupe) */
        randombytes_buf(&a->epoch, sizeof(a->epoch));
    pthread_cond_init(&a->cv_job, NULL);
    pthread_cond_init(&a->cv_done, NULL);
    pthread_cond_init(&a->cv_idle, NULL);
    if (settings(a, p) < 0) {
        agent_free(a);
        return FB_FLB_ERROR;
    }
    o.target = a->target;
    o.token = a->token;
    o.ca_file = a->ca;
    o.server_name = a->server_name;
    o.max_inflight = a->max_inflight;
    o.timeout_ms = a->timeout_ms;
    o.keepalive_ms = 300000;
    a->client = fb_client_new(&o, err, sizeof(err));
    if (a->client == NULL) {
        say("error", "%s", err);
        agent_free(a);
        return FB_FLB_ERROR;
    }
    if (exchange(a, &st) < 0 && st.code != GRPC_STATUS_UNAVAILABLE &&
        st.code != GRPC_STATUS_DEADLINE_EXCEEDED) {
        /* refused or unusable: it would not get better by retrying */
        int64_t ago = a->token_exp ? (int64_t)time(NULL) - a->token_exp : -1;
        char expired[64];
        snprintf(expired, sizeof(expired), " -- the Access_Token expired %lld s ago",
                 (long long)ago);
        say("error", "%s: exchange with %s failed: %s%s (code %d)", a->access_key, a->target,
            st.detail,
            st.code == GRPC_STATUS_UNAUTHENTICATED ? (ago >= 0 ? expired
                                                               : " -- a wrong or expired Access_Token")
            : st.code == GRPC_STATUS_PERMISSION_DENIED ? " -- an unknown or disabled Access_Key"
                                                       : "",
            st.code);
        agent_free(a);
        return FB_FLB_ERROR;
    }
    if (a->exchanged_ms == 0 && tls_refused(a, &st) != NULL) {
        /* reached, but not trusted: it would not get better by retrying */
        const char *colon = strrchr(a->target, ':');
        say("error", "%s: TLS with %s failed: %s -- check that TLS_CA (%s) holds the CA of "
            "fbpiped's certificate and that the certificate names %.*s", a->access_key,
            a->target, tls_refused(a, &st), a->ca,
            a->server_name ? (int)strlen(a->server_name) : (int)(colon - a->target),
            a->server_name ? a->server_name : a->target);
        agent_free(a);
        return FB_FLB_ERROR;
    }
    if (a->exchanged_ms == 0) /* unreachable: Fluent Bit starts, and flushes retry */
        say("warn", "%s: fbpiped at %s cannot be reached (%s, code %d): starting anyway; chunks "
            "are retried until it answers", a->access_key, a->target, st.detail, st.code);
    check_expiry(a);
    if (pthread_create(&a->thread, NULL, run, a) != 0) {
        say("error", "cannot start the plugin's thread");
        agent_free(a);
        return FB_FLB_ERROR;
    }
    a->thread_started = true;
    p->context->remote_context = a;
    return FB_FLB_OK;
}

EXPORT int
fb_agent_flush(void *ctx, const void *data, size_t size, const char *tag)
{
    agent_t *a = ctx;
    job_t j = {.data = data, .size = size, .tag = tag ? tag : ""};

    if (a == NULL)
        return FB_FLB_ERROR;
    pthread_mutex_lock(&a->mu);
    a->flushing++;
    if (a->stop) {
        j.result = FB_FLB_RETRY;
    } else {
        if (a->tail != NULL)
            a->tail->next = &j;
        else
            a->head = &j;
        a->tail = &j;
        pthread_cond_signal(&a->cv_job);
        while (!j.done)
            pthread_cond_wait(&a->cv_done, &a->mu);
    }
    if (--a->flushing == 0 && a->stop)
        pthread_cond_signal(&a->cv_idle); /* exit may free the agent now */
    pthread_mutex_unlock(&a->mu);
    return j.result;
}

EXPORT int
fb_agent_exit_ctx(void *ctx)
{
    agent_t *a = ctx;

    if (a == NULL)
        return FB_FLB_OK;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv_job);
    pthread_mutex_unlock(&a->mu);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    /* the thread answered every chunk, but the flushes it woke may not be
     * out yet (still in pthread_cond_wait, or about to unlock) */
    pthread_mutex_lock(&a->mu);
    while (a->flushing > 0)
        pthread_cond_wait(&a->cv_idle, &a->mu);
    pthread_mutex_unlock(&a->mu);
    agent_free(a);
    return FB_FLB_OK;
}
