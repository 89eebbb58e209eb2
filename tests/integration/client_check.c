/*
 * client_check.c -- fbpipe's client library (src/common/ingest_client.c)
 * against a running fbpiped: both APIs, a refusal, and a stream that
 * survives its workers being killed by resending what was not acked.
 *
 * usage: client_check PORT|TARGET ACCESS_KEY USER_ID TOKEN N [WORKER_PIDS...]
 *   (PORT: 127.0.0.1:PORT; TARGET: host:port or a list, see fb_client_new)
 * The key database gives ACCESS_KEY the UserID USER_ID; the token may not
 * be used for the key "zeta".
 * First a token that is not one: UNAUTHENTICATED on a unary call and on a
 * stream (whose batch is listed unacknowledged), then fb_client_set_token
 * to TOKEN. Sends N events through SendEvent (streams of 10,000) and N records (tag "native",
 * payload {"b":BATCH,"i":I}) through Stream in batches of 100; with worker
 * pids, kills them with SIGKILL after the first acks, checks that the
 * broken stream lists exactly the batches it sent and did not get acked,
 * and resends those. Prints what it did; exit 0 when every check held.
 *
 * Environment: FBPIPE_CLIENT_CA, FBPIPE_CLIENT_CERT, FBPIPE_CLIENT_KEY,
 * FBPIPE_CLIENT_SERVER_NAME (TLS options of the client);
 * FBPIPE_CLIENT_EXPECT_CODE=C: only one ExchangeConfig, which must fail
 * with gRPC status C (a connection that must not be made).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ingest_client.h"

#define PER_BATCH 100
#define SEED_STREAM 10000

static int failures;
static unsigned acks_ok, acks_other, acks_twice;
static int killed;
static char **kill_pids;
static int n_kill;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "client_check: FAIL: " __VA_ARGS__);                         \
            fputc('\n', stderr);                                                         \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

static void
on_ack(void *arg, const Fbpipe__V1__Ack *ack, uint64_t latency_us)
{
    unsigned char *done = arg;

    (void)latency_us;
    if (ack->code == FBPIPE__V1__ACK_CODE__OK) {
        acks_ok++;
        acks_twice += done[ack->seq]; /* the library lets no second ack through */
        done[ack->seq] = 1;
    } else {
        acks_other++;
        fprintf(stderr, "client_check: batch %llu answered %d: %s\n",
                (unsigned long long)ack->seq, (int)ack->code, ack->detail);
    }
    if (n_kill > 0 && !killed && acks_ok >= 5) {
        for (int i = 0; i < n_kill; i++)
            kill((pid_t)atoi(kill_pids[i]), SIGKILL);
        killed = 1;
    }
}

/* batch_of -- batch seq (1-based) of the N records. */
static void
batch_of(Fbpipe__V1__Batch *b, Fbpipe__V1__BatchRecord **recs, Fbpipe__V1__BatchRecord *rec,
         char (*text)[64], uint64_t seq, size_t n)
{
    size_t first = (size_t)(seq - 1) * PER_BATCH, count = 0;

    fbpipe__v1__batch__init(b);
    b->seq = seq;
    b->tag = "native";
    b->agent_id = "client_check";
    for (size_t i = first; i < n && count < PER_BATCH; i++, count++) {
        fbpipe__v1__batch_record__init(&rec[count]);
        snprintf(text[count], sizeof(text[count]), "{\"b\":%llu,\"i\":%zu}",
                 (unsigned long long)seq, i);
        rec[count].payload.data = (uint8_t *)text[count];
        rec[count].payload.len = strlen(text[count]);
        recs[count] = &rec[count];
    }
    b->records = recs;
    b->n_records = count;
}

int
main(int argc, char **argv)
{
    fb_client_opts_t o = {.max_inflight = 8, .timeout_ms = 60000,
                          .ca_file = getenv("FBPIPE_CLIENT_CA"),
                          .cert_file = getenv("FBPIPE_CLIENT_CERT"),
                          .key_file = getenv("FBPIPE_CLIENT_KEY"),
                          .server_name = getenv("FBPIPE_CLIENT_SERVER_NAME")};
    const char *expect = getenv("FBPIPE_CLIENT_EXPECT_CODE");
    fb_client_status_t st;
    Fbpipe__V1__ExchangeResponse *x = NULL;
    Api__Config *cfg = NULL;
    char target[256], err[512];
    fb_client_t *c;
    size_t n, n_batches;
    unsigned char *done, *sent;
    unsigned breaks = 0;

    const char *key, *user;

    if (argc < 6) {
        fprintf(stderr,
                "usage: client_check PORT|TARGET ACCESS_KEY USER_ID TOKEN N [WORKER_PIDS...]\n");
        return 64;
    }
    /* a port on loopback, or a whole target (a list: round robin) */
    if (strchr(argv[1], ':') != NULL)
        snprintf(target, sizeof(target), "%s", argv[1]);
    else
        snprintf(target, sizeof(target), "127.0.0.1:%s", argv[1]);
    key = argv[2];
    user = argv[3];
    o.target = target;
    o.token = expect ? argv[4] : "not-a-token";
    n = (size_t)strtoul(argv[5], NULL, 10);
    kill_pids = argv + 6;
    n_kill = argc - 6;
    c = fb_client_new(&o, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "client_check: %s\n", err);
        return 1;
    }
    if (expect != NULL) {
        int rc = fb_client_exchange_config(c, key, &cfg, &st);
        fb_client_free_message(cfg);
        fb_client_free(c);
        printf("client_check: ExchangeConfig: %d %s\n", st.code, rc ? st.detail : "");
        if (rc == 0 || st.code != atoi(expect)) {
            fprintf(stderr, "client_check: FAIL: ExchangeConfig answered %d, want %s\n",
                    rc ? st.code : 0, expect);
            return 1;
        }
        return 0;
    }

    /* a token that is not one: refused on a unary call and on a stream */
    CHECK(fb_client_exchange_config(c, key, &cfg, &st) == -1 && st.code == 16,
          "ExchangeConfig with a bad token: %d %s (want 16)", st.code, st.detail);
    {
        Fbpipe__V1__Batch b = FBPIPE__V1__BATCH__INIT;
        fb_stream_t *s = fb_stream_open(c, NULL, NULL, &st);
        uint64_t un[2] = {0, 0};

        b.seq = 7;
        CHECK(s != NULL, "Stream open: %d %s", st.code, st.detail);
        if (s != NULL) {
            int rc = fb_stream_send(s, &b, &st);
            if (rc == 0)
                rc = fb_stream_close(s, &st);
            CHECK(rc == -1 && st.code == 16, "Stream with a bad token: %d %s (want 16)",
                  st.code, st.detail);
            CHECK(fb_stream_unacked(s, un, 2) == 1 && un[0] == 7,
                  "Stream with a bad token: batch 7 not listed unacknowledged");
            fb_stream_free(s);
        }
    }
    CHECK(fb_client_set_token(c, "bad\ntoken") == -1, "a newline taken into a token");
    CHECK(fb_client_set_token(c, argv[4]) == 0, "fb_client_set_token failed");

    /* the unary calls of both APIs, and a refusal */
    CHECK(fb_client_exchange_config(c, key, &cfg, &st) == 0, "ExchangeConfig: %d %s",
          st.code, st.detail);
    CHECK(cfg && strcmp(cfg->userid, user) == 0, "ExchangeConfig: UserID");
    CHECK(cfg && strcmp(cfg->accesstoken, argv[4]) == 0, "ExchangeConfig: AccessToken echo");
    fb_client_free_message(cfg);
    CHECK(fb_client_exchange(c, key, "client_check", &x, &st) == 0, "Exchange: %d %s",
          st.code, st.detail);
    CHECK(x && strcmp(x->user_id, user) == 0 && x->max_batch_records > 0,
          "Exchange: user id and limits");
    fb_client_free_message(x);
    x = NULL;
    CHECK(fb_client_exchange(c, "zeta", "client_check", &x, &st) == -1 && st.code == 7,
          "Exchange for another key: %d %s (want 7)", st.code, st.detail);
    CHECK(fb_client_exchange_config(c, "zeta", &cfg, &st) == -1 && st.code == 7,
          "ExchangeConfig for another key: %d %s (want 7)", st.code, st.detail);

    /* N events through SendEvent (skipped when killing: only the stream) */
    if (n_kill == 0) {
        Api__Event *evs = calloc(n, sizeof(*evs)), **pevs = calloc(n, sizeof(*pevs));
        char (*msg)[48] = calloc(n, sizeof(*msg));
        for (size_t i = 0; i < n; i++) {
            api__event__init(&evs[i]);
            snprintf(msg[i], sizeof(msg[i]), "{\"seed\":%zu}", i);
            evs[i].message = msg[i];
            evs[i].tag = "seed";
            evs[i].agent_id = "client_check";
            pevs[i] = &evs[i];
        }
        /* streams of at most SEED_STREAM events: fbpiped stores a stream
         * whole, so one stream must fit in half a lane */
        for (size_t at = 0; at < n; at += SEED_STREAM)
            CHECK(fb_client_send_events(c, pevs + at, n - at < SEED_STREAM ? n - at : SEED_STREAM,
                                        &st) == 0,
                  "SendEvent of events %zu..: %d %s", at, st.code, st.detail);
        free(evs);
        free(pevs);
        free(msg);
    }

    /* N records through Stream; resend what was not acked when it breaks */
    n_batches = (n + PER_BATCH - 1) / PER_BATCH;
    done = calloc(n_batches + 1, 1);
    sent = calloc(n_batches + 1, 1);
    for (;;) {
        static Fbpipe__V1__BatchRecord rec[PER_BATCH], *recs[PER_BATCH];
        static char text[PER_BATCH][64];
        fb_stream_t *s = fb_stream_open(c, on_ack, done, &st);
        Fbpipe__V1__Batch b;
        int rc = 0;

        if (s == NULL) {
            CHECK(0, "Stream open: %d %s", st.code, st.detail);
            break;
        }
        for (uint64_t seq = 1; seq <= n_batches && rc == 0; seq++) {
            if (done[seq])
                continue;
            batch_of(&b, recs, rec, text, seq, n);
            if (seq % 2 == 0) {
                rc = fb_stream_send(s, &b, &st);
            } else { /* every other batch packed by the caller */
                size_t len = fbpipe__v1__batch__get_packed_size(&b);
                uint8_t *packed = malloc(len);
                fbpipe__v1__batch__pack(&b, packed);
                rc = fb_stream_send_packed(s, seq, packed, len, &st);
                free(packed);
            }
            if (rc == 0)
                sent[seq] = 1; /* in flight on this stream (-1: it is not) */
        }
        if (rc == 0)
            rc = fb_stream_close(s, &st);
        if (rc == 0) {
            fb_stream_free(s);
            break;
        }
        {
            /* what it lists unacked is exactly what was sent on it and not
             * acked: those are resent, so a batch missing here is lost */
            uint64_t un[64];
            size_t k = fb_stream_unacked(s, un, 64), missing = 0;

            for (size_t i = 0; i < k && i < 64; i++) {
                CHECK(un[i] >= 1 && un[i] <= n_batches && sent[un[i]] == 1 && !done[un[i]],
                      "batch %llu listed unacked, but not sent on the stream or acked",
                      (unsigned long long)un[i]);
                if (un[i] >= 1 && un[i] <= n_batches)
                    sent[un[i]] = 2;
            }
            for (size_t i = 1; i <= n_batches; i++) {
                missing += sent[i] == 1 && !done[i];
                sent[i] = 0;
            }
            CHECK(k <= 64 && missing == 0, "%zu batches sent and not acked are not listed",
                  missing);
            fprintf(stderr, "client_check: stream broke (%d %s), %zu batches unacked: resending\n",
                    st.code, st.detail, k);
        }
        fb_stream_free(s);
        if (++breaks > 20 || n_kill == 0) {
            CHECK(0, "the stream broke: %d %s", st.code, st.detail);
            break;
        }
        sleep(1); /* the master restarts the workers */
    }
    for (size_t i = 1; i <= n_batches; i++)
        CHECK(done[i], "batch %zu never acknowledged", i);
    CHECK(acks_other == 0, "%u acks were not OK", acks_other);
    CHECK(acks_twice == 0, "%u batches acked twice", acks_twice);
    CHECK(n_kill == 0 || (killed && breaks > 0), "the kill did not break the stream");
    free(done);
    free(sent);
    fb_client_free(c);
    printf("client_check: %zu events (SendEvent), %zu records in %zu batches (Stream), "
           "%u acks, %u breaks: %s\n", n_kill ? 0 : n, n, n_batches, acks_ok, breaks,
           failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
