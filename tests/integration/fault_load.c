/*
 * fault_load.c -- the fault audit's load generator: agents that send
 * events with a unique (agent, sequence) in every payload through both
 * ingest APIs, behave as the Fluent Bit plugin does (resend what was not
 * acknowledged, give up only on a final refusal), and record what fbpiped
 * acknowledged, so that a checker can prove event by event that nothing
 * acknowledged was lost.
 *
 * usage: fault_load PORT RATE DIR AGENT...
 *   AGENT = API,ACCESS_KEY,AGENT_ID,TOKEN[,HOST] with API native or seed;
 *   HOST (default 127.0.0.1) is the address it connects to: agents on
 *   addresses of their own can be told apart in the server's sockets.
 *   HOST may list several ingest hosts joined by '+', each IP or IP:PORT
 *   (PORT when none): the agent's calls are spread over them with gRPC
 *   round robin (fb_client_opts_t.target) and fail over when one dies
 * RATE is events per second over all agents. Each agent is a thread with
 * a connection of its own; its events carry the payload
 * {"a":"AGENT_ID","s":SEQ}, SEQ from 1 up. Native batches hold 100
 * events (4 in flight), SendEvent calls 50. A native agent names its
 * instance with a random non-zero epoch in every batch and resends a
 * batch under its seq, so its events keep their identity
 * (router.dedupe).
 *
 * Writes, per agent, DIR/AGENT_ID.acked ("FIRST COUNT MS" per batch that
 * fbpiped acknowledged: OK on a stream, SUCCESS on SendEvent; MS is the
 * wall clock in ms), DIR/AGENT_ID.refused ("FIRST COUNT detail" per final
 * refusal: REJECTED on a stream, INVALID_ARGUMENT on SendEvent, as the
 * plugin drops those) and, at exit, DIR/AGENT_ID.sent (the last SEQ sent).
 * Everything else (RETRY, a broken stream, a timeout, FAILURE, any other
 * status) is sent again after a back-off of 200 ms to 2 s.
 *
 * SIGTERM or SIGINT: no new events; what is outstanding is still sent
 * until acknowledged or refused, for at most FAULT_DRAIN_S seconds
 * (default 60); then exit 0. Never asserts anything itself: the checker
 * (fault_check.py) judges. Messages go to stderr, each kind at most once
 * a second per agent.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/ingest_client.h"

#define NATIVE_BATCH 100
#define SEED_BATCH 50
#define MAX_OUTSTANDING 64 /* batches an agent holds before it stops making new ones */

typedef struct batch {
    uint64_t first; /* first SEQ; the batch's stream seq is first */
    unsigned count;
    int state; /* B_* */
} batch_t;

enum { B_FREE, B_WAITING, B_INFLIGHT };

typedef struct agent {
    const char *api, *key, *id, *token, *host;
    const char *port;
    double rate; /* events per second */
    FILE *acked, *refused;
    const char *dir;
    uint64_t next_seq; /* the next SEQ to make */
    uint64_t epoch;    /* random, non-zero: this agent instance's */
    batch_t slot[MAX_OUTSTANDING];
    unsigned outstanding;
    double last_say;
    double drain_until; /* once stopping: give up on what is outstanding then */
} agent_t;

static volatile sig_atomic_t stopping;
static double drain_s = 60.0;

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* finished -- stopping, and nothing outstanding or the drain time over. */
static bool
finished(agent_t *a)
{
    if (!stopping)
        return false;
    if (a->drain_until == 0)
        a->drain_until = now_s() + drain_s;
    return a->outstanding == 0 || now_s() > a->drain_until;
}

static long long
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
nap_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* say -- one line to stderr, at most once a second per agent. */
static void
say(agent_t *a, const char *what, const fb_client_status_t *st)
{
    double t = now_s();

    if (t - a->last_say < 1.0)
        return;
    a->last_say = t;
    fprintf(stderr, "fault_load: %s: %s: %d %s\n", a->id, what, st ? st->code : 0,
            st ? st->detail : "");
}

/* payload -- the event text of SEQ. */
static int
payload(const agent_t *a, uint64_t seq, char *buf, size_t len)
{
    return snprintf(buf, len, "{\"a\":\"%s\",\"s\":%llu}", a->id, (unsigned long long)seq);
}

static batch_t *
find(agent_t *a, uint64_t first)
{
    for (unsigned i = 0; i < MAX_OUTSTANDING; i++)
        if (a->slot[i].state != B_FREE && a->slot[i].first == first)
            return &a->slot[i];
    return NULL;
}

/* settle -- a batch is answered for good: acknowledged or refused. */
static void
settle(agent_t *a, batch_t *b, bool ok, const char *detail)
{
    if (ok) {
        fprintf(a->acked, "%llu %u %lld\n", (unsigned long long)b->first, b->count, wall_ms());
        fflush(a->acked);
    } else {
        fprintf(a->refused, "%llu %u %s\n", (unsigned long long)b->first, b->count, detail);
        fflush(a->refused);
    }
    b->state = B_FREE;
    a->outstanding--;
}

/* make -- a new batch when the pace allows and room is left; NULL otherwise. */
static batch_t *
make(agent_t *a, double t0, unsigned per)
{
    double due = t0 + (double)(a->next_seq - 1) / a->rate;

    if (stopping || a->outstanding >= MAX_OUTSTANDING || now_s() < due)
        return NULL;
    for (unsigned i = 0; i < MAX_OUTSTANDING; i++) {
        if (a->slot[i].state == B_FREE) {
            a->slot[i] = (batch_t){a->next_seq, per, B_WAITING};
            a->next_seq += per;
            a->outstanding++;
            return &a->slot[i];
        }
    }
    return NULL;
}

static batch_t *
waiting(agent_t *a)
{
    batch_t *best = NULL;

    for (unsigned i = 0; i < MAX_OUTSTANDING; i++)
        if (a->slot[i].state == B_WAITING && (best == NULL || a->slot[i].first < best->first))
            best = &a->slot[i];
    return best;
}

static void
on_ack(void *arg, const Fbpipe__V1__Ack *ack, uint64_t latency_us)
{
    agent_t *a = arg;
    batch_t *b = find(a, ack->seq);

    (void)latency_us;
    if (b == NULL || b->state != B_INFLIGHT)
        return; /* the library lets no stray ack through */
    if (ack->code == FBPIPE__V1__ACK_CODE__OK) {
        settle(a, b, true, NULL);
    } else if (ack->code == FBPIPE__V1__ACK_CODE__REJECTED) {
        settle(a, b, false, ack->detail);
    } else {
        b->state = B_WAITING; /* RETRY */
        fb_client_status_t st = {0, ""};
        snprintf(st.detail, sizeof(st.detail), "%s", ack->detail);
        say(a, "RETRY", &st);
    }
}

static void
fill(Fbpipe__V1__Batch *bt, Fbpipe__V1__BatchRecord *rec, Fbpipe__V1__BatchRecord **recs,
     char (*text)[96], const agent_t *a, const batch_t *b)
{
    fbpipe__v1__batch__init(bt);
    bt->seq = b->first;
    bt->epoch = a->epoch;
    bt->tag = "faults";
    bt->agent_id = (char *)a->id;
    for (unsigned i = 0; i < b->count; i++) {
        fbpipe__v1__batch_record__init(&rec[i]);
        int n = payload(a, b->first + i, text[i], sizeof(text[i]));
        rec[i].payload.data = (uint8_t *)text[i];
        rec[i].payload.len = (size_t)n;
        recs[i] = &rec[i];
    }
    bt->records = recs;
    bt->n_records = b->count;
}

/* run_native -- batches on a stream, several in flight; a broken stream
 * puts what it did not answer back to be sent on the next one. */
static void
run_native(agent_t *a, fb_client_t *c, double t0)
{
    static __thread Fbpipe__V1__BatchRecord rec[NATIVE_BATCH], *recs[NATIVE_BATCH];
    static __thread char text[NATIVE_BATCH][96];
    unsigned backoff = 200;

    while (!finished(a)) {
        fb_client_status_t st;
        fb_stream_t *s = fb_stream_open(c, on_ack, a, &st);
        int rc = 0;

        if (s == NULL) {
            say(a, "open", &st);
            nap_ms(backoff);
            continue;
        }
        while (rc == 0 && !fb_stream_ended(s)) {
            batch_t *b = waiting(a);
            if (b == NULL)
                b = make(a, t0, NATIVE_BATCH);
            if (b == NULL) {
                if (finished(a))
                    break;
                fb_stream_poll(s, 5); /* nothing due: take acks as they come */
                continue;
            }
            Fbpipe__V1__Batch bt;
            fill(&bt, rec, recs, text, a, b);
            b->state = B_INFLIGHT;
            rc = fb_stream_send(s, &bt, &st);
            if (rc == 0)
                backoff = 200;
        }
        if (rc == 0 && fb_stream_ended(s) && !finished(a))
            say(a, "stream ended by the server", NULL);
        else if (rc == 0)
            rc = fb_stream_close(s, &st);
        if (rc != 0)
            say(a, "stream broke", &st);
        /* whatever is still in flight was not answered: send it again */
        for (unsigned i = 0; i < MAX_OUTSTANDING; i++)
            if (a->slot[i].state == B_INFLIGHT)
                a->slot[i].state = B_WAITING;
        fb_stream_free(s);
        if (rc != 0) {
            nap_ms(backoff);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
        }
    }
}

/* run_seed -- SendEvent calls of SEED_BATCH events, one at a time. */
static void
run_seed(agent_t *a, fb_client_t *c, double t0)
{
    Api__Event evs[SEED_BATCH], *pevs[SEED_BATCH];
    char text[SEED_BATCH][96];
    unsigned backoff = 200;

    while (!finished(a)) {
        batch_t *b = waiting(a);
        fb_client_status_t st;

        if (b == NULL)
            b = make(a, t0, SEED_BATCH);
        if (b == NULL) {
            nap_ms(5);
            continue;
        }
        for (unsigned i = 0; i < b->count; i++) {
            api__event__init(&evs[i]);
            payload(a, b->first + i, text[i], sizeof(text[i]));
            evs[i].message = text[i];
            evs[i].tag = "faults";
            evs[i].agent_id = (char *)a->id;
            evs[i].accesskey = (char *)a->key;
            pevs[i] = &evs[i];
        }
        b->state = B_INFLIGHT;
        if (fb_client_send_events(c, pevs, b->count, &st) == 0) {
            settle(a, b, true, NULL);
            backoff = 200;
        } else if (st.code == 3 /* INVALID_ARGUMENT: the plugin drops it */) {
            settle(a, b, false, st.detail);
        } else {
            b->state = B_WAITING;
            say(a, "SendEvent", &st);
            nap_ms(backoff);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
        }
    }
}

static void *
agent_main(void *arg)
{
    agent_t *a = arg;
    char target[1024], err[1024], path[512];
    fb_client_opts_t o = {.max_inflight = 4, .timeout_ms = 15000};
    fb_client_t *c;
    FILE *f;

    target[0] = '\0';
    for (const char *h = a->host; *h != '\0';) {
        size_t n = strcspn(h, "+"), used = strlen(target);
        /* a port of its own when the entry has one: IP:PORT or [IPv6]:PORT */
        const char *colon = memchr(h, ':', n), *close = memchr(h, ']', n);
        bool own_port = colon != NULL && (h[0] != '[' || (close != NULL && close[1] == ':'));

        snprintf(target + used, sizeof(target) - used, "%s%.*s%s%s", used ? "," : "", (int)n, h,
                 own_port ? "" : ":", own_port ? "" : a->port);
        h += n + (h[n] == '+');
    }
    o.target = target;
    o.token = a->token;
    c = fb_client_new(&o, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "fault_load: %s: %s\n", a->id, err);
        exit(1);
    }
    a->next_seq = 1;
    if (strcmp(a->api, "native") == 0)
        run_native(a, c, now_s());
    else
        run_seed(a, c, now_s());
    fb_client_free(c);
    snprintf(path, sizeof(path), "%s/%s.sent", a->dir, a->id);
    f = fopen(path, "w");
    if (f == NULL || fprintf(f, "%llu\n", (unsigned long long)(a->next_seq - 1)) < 0 ||
        fclose(f) != 0) {
        fprintf(stderr, "fault_load: %s: cannot write\n", path);
        exit(1);
    }
    if (a->outstanding > 0)
        fprintf(stderr, "fault_load: %s: %u batches still unanswered at the drain deadline\n",
                a->id, a->outstanding);
    return NULL;
}

static FILE *
open_log(const char *dir, const char *id, const char *ext)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.%s", dir, id, ext);
    f = fopen(path, "a");
    if (f == NULL) {
        fprintf(stderr, "fault_load: fopen(%s): %s\n", path, strerror(errno));
        exit(1);
    }
    return f;
}

int
main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};
    const char *drain = getenv("FAULT_DRAIN_S");
    int n = argc - 4;
    agent_t *agents;
    pthread_t *th;
    sigset_t set;

    if (argc < 5) {
        fprintf(stderr, "usage: fault_load PORT RATE DIR API,KEY,AGENT_ID,TOKEN[,HOST]...\n");
        return 64;
    }
    if (drain != NULL)
        drain_s = atof(drain);
    agents = calloc((size_t)n, sizeof(*agents));
    th = calloc((size_t)n, sizeof(*th));
    if (agents == NULL || th == NULL)
        return 1;
    for (int i = 0; i < n; i++) {
        agent_t *a = &agents[i];
        char *spec = argv[4 + i];
        a->api = strtok(spec, ",");
        a->key = strtok(NULL, ",");
        a->id = strtok(NULL, ",");
        a->token = strtok(NULL, ",");
        a->host = strtok(NULL, ",");
        if (a->host == NULL)
            a->host = "127.0.0.1";
        if (a->token == NULL || (strcmp(a->api, "native") != 0 && strcmp(a->api, "seed") != 0)) {
            fprintf(stderr, "fault_load: agent %d: want native|seed,KEY,AGENT_ID,TOKEN[,HOST]\n", i + 1);
            return 64;
        }
        a->port = argv[1];
        a->rate = atof(argv[2]) / n;
        if (a->rate <= 0) {
            fprintf(stderr, "fault_load: RATE must be a positive number\n");
            return 64;
        }
        a->dir = argv[3];
        while (a->epoch == 0)
            if (getrandom(&a->epoch, sizeof(a->epoch), 0) != sizeof(a->epoch))
                a->epoch = 0;
        a->acked = open_log(a->dir, a->id, "acked");
        a->refused = open_log(a->dir, a->id, "refused");
    }
    /* the agents' threads take no signal: main waits for them */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, agent_main, &agents[i]) != 0)
            return 1;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (!stopping)
        pause();
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        fclose(agents[i].acked);
        fclose(agents[i].refused);
    }
    free(agents);
    free(th);
    return 0;
}
