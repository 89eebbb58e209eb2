/*
 * ingest-bench.c -- events through fbpiped's native API (Stream) and its
 * seed API (SendEvent), next to a plain librdkafka producer sending the
 * same events straight to the same broker, in alternating rounds (plain,
 * native, seed, plain, native, seed...; FBPIPE_BENCH_ROUNDS, default 3).
 *
 * The same for every side: 256-byte events, lz4, linger.ms=5 (kafka.linger,
 * FBPIPE_BENCH_LINGER, e.g. 1ms or 0: both sides take it), acks=all,
 * idempotence, 4 partitions; S threads (FBPIPE_BENCH_STREAMS, default 8),
 * thread i sending its slice of the events under key tenant-i, all at
 * once, so the keys interleave in Kafka as they come; batches of 512
 * records (FBPIPE_BENCH_BATCH), 8 batches in flight per thread. A native
 * thread has a client and one stream; a seed thread a client making
 * SendEvent calls of a batch each; a plain thread produces a batch's
 * records one by one into one librdkafka producer shared by the threads
 * (as fbpiped's one producer is shared by its workers), then waits while
 * 8 of its batches are not wholly delivered (a full librdkafka queue
 * blocks it: RD_KAFKA_MSG_F_BLOCK, while a poll thread serves the
 * delivery reports). Payloads are packed before
 * the clock starts on both sides: native batches as fbpipe.v1.Batch,
 * plain values as the fbpipe.v1.Record fbpiped writes (same size; the
 * tenant in a value is that of the full run's thread, which a shorter
 * run's slice may not match); seed calls pack their events as they go
 * (that is the seed API's cost). Every thread has its client and stream, or
 * the producer, ready before the clock starts (a barrier). Warm-up, once
 * for each side before the rounds: one batch per thread through fbpiped,
 * one batch per thread through the plain producer; both fbpiped and the
 * plain producer then live over all rounds. What is not equal: the plain
 * producer writes to a topic of its own (same partitions), and its values
 * never cross a socket or the ring. All streams come from one address,
 * so fbpiped's max_calls_per_peer is raised to the streams above 64.
 *
 * FBPIPE_BENCH_TLS=1: fbpiped listens with TLS (a certificate the bench
 * makes with openssl for 127.0.0.1) and the clients verify it.
 * FBPIPE_BENCH_KCAT names a kcat: then kcat -P is the baseline (side 1),
 * one process sending all the round's events from a file of
 * "tenant-NNN<TAB>event" lines (the threads' batches interleaved as they
 * come), with the same producer settings, to the plain producer's topic.
 * Its values are the events' text, not the Records fbpiped writes (which
 * are larger); the round is timed from its start to its exit, after its
 * last delivery report; its CPU is the child's. The sides are then kcat,
 * seed, native and plain, and no paced loads run unless
 * FBPIPE_BENCH_LOADS asks.
 *
 * Latency (p50/p99/p999): a native batch's send to its Ack; a SendEvent
 * call to its answer; a plain batch's first record handed to librdkafka
 * to its last delivery report. After the rounds, when FBPIPE_BENCH_LOADS
 * lists fractions (default "0.5"; "" for none), plain and native run
 * paced at each fraction of native's median peak rate, half the events
 * each, to show latency against offered load; a native thread takes its
 * acks while it waits for its next batch (fb_stream_poll).
 *
 * Prints min/median rates and per-round ratios to the plain producer,
 * CPU per million events of this process and of each of fbpiped's
 * processes (bench_rounds.h), latencies and the load average, and row:
 * lines; asserts nothing.
 *
 * usage: ingest-bench [EVENTS]    (default 400000; FBPIPE_BENCH_RECORDS;
 * rounded down to whole batches per thread, at least one)
 * Needs FBPIPE_KAFKA_BROKERS; runs the fbpiped named by FBPIPED (default
 * ./fbpiped) with a configuration of its own in a temporary folder (kept,
 * with fbpiped.log, when FBPIPE_BENCH_KEEP is set), never a server that
 * runs already (its key database and secret are the bench's own). fbpiped
 * gets TERM when the bench exits, or dies (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_events.h"
#include "bench_rounds.h"
#include "common/conf.h"
#include "common/ingest_client.h"
#include "common/log.h"
#include "producer/producer.h"

#define WINDOW 8
#define STREAMS_MAX 4096

enum { SIDE_PLAIN, SIDE_NATIVE, SIDE_SEED, SIDE_KCAT, SIDES };

typedef struct lat {
    uint64_t *us;
    size_t n, cap;
} lat_t;

/* a plain batch in flight: its records' delivery reports count it down */
typedef struct pbatch {
    struct worker *w;
    uint64_t t0_us;
    int left;
} pbatch_t;

typedef struct worker {
    int index;
    const char *target;
    const char *ca_file; /* TLS: the certificate fbpiped presents */
    char token[1024];
    char key[24];
    const char *events;
    long first, count;      /* events[first .. first+count) */
    double pace_s;          /* seconds between batches; 0 = as fast as allowed */
    int side;
    lat_t lat;
    long acked;
    int failed;
    pthread_barrier_t *go;  /* everyone ready, then the clock starts */
    uint8_t **packed;       /* the native batches, packed before the clock starts */
    size_t *packed_len;
    long n_packed;
    /* plain */
    rd_kafka_t *rk;
    const uint8_t *vals;    /* the Record values of all events, vlen each */
    size_t vlen;
    pbatch_t *pb;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long delivered_batches; /* under mu */
} worker_t;

static char dir[] = "/tmp/ingest-bench-XXXXXX";
static pid_t daemon_pid;
static int streams = 8, per_batch = 512;
static char log_path[300];
static const char *kcat;     /* FBPIPE_BENCH_KCAT */
static char kcat_cmd[1024];  /* kcat -P and its settings, for sh -c */

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
lat_add(lat_t *l, uint64_t us)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->us = realloc(l->us, l->cap * sizeof(*l->us));
    }
    l->us[l->n++] = us;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* pct -- the p-th percentile (0..1) of sorted latencies, in ms. */
static double
pct(const lat_t *all, double p)
{
    size_t i;

    if (all->n == 0)
        return 0;
    i = (size_t)(p * (double)(all->n - 1));
    return (double)all->us[i] / 1000.0;
}

/* lat_merge -- the workers' latencies appended to all, sorted. */
static void
lat_merge(lat_t *all, worker_t *w, int n)
{
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < w[i].lat.n; j++)
            lat_add(all, w[i].lat.us[j]);
    qsort(all->us, all->n, sizeof(*all->us), cmp_u64);
}

static void
on_ack(void *arg, const Fbpipe__V1__Ack *ack, uint64_t latency_us)
{
    worker_t *w = arg;

    if (ack->code != FBPIPE__V1__ACK_CODE__OK) {
        fprintf(stderr, "ingest-bench: batch %llu answered %d: %s\n",
                (unsigned long long)ack->seq, (int)ack->code, ack->detail);
        w->failed = 1;
        return;
    }
    lat_add(&w->lat, latency_us);
    w->acked += per_batch;
}

/* pack_all -- this worker's events as packed batches, seq 1..
 * (before the clock starts, as the plain producer's values are). */
static void
pack_all(worker_t *w)
{
    Fbpipe__V1__BatchRecord *rec = calloc((size_t)per_batch, sizeof(*rec));
    Fbpipe__V1__BatchRecord **recs = calloc((size_t)per_batch, sizeof(*recs));
    Fbpipe__V1__Batch b = FBPIPE__V1__BATCH__INIT;
    long nb = (w->count + per_batch - 1) / per_batch;

    w->packed = calloc((size_t)nb, sizeof(*w->packed));
    w->packed_len = calloc((size_t)nb, sizeof(*w->packed_len));
    w->n_packed = nb;
    b.tag = "bench";
    b.agent_id = "ingest-bench";
    b.records = recs;
    for (long i = 0, j = 0; i < w->count; i += per_batch, j++) {
        size_t k = 0;
        for (; k < (size_t)per_batch && i + (long)k < w->count; k++) {
            fbpipe__v1__batch_record__init(&rec[k]);
            rec[k].payload.data =
                (uint8_t *)(w->events + (size_t)(w->first + i + (long)k) * BENCH_REC);
            rec[k].payload.len = BENCH_REC;
            recs[k] = &rec[k];
        }
        b.seq = (uint64_t)(j + 1);
        b.n_records = k;
        w->packed_len[j] = fbpipe__v1__batch__get_packed_size(&b);
        w->packed[j] = malloc(w->packed_len[j]);
        fbpipe__v1__batch__pack(&b, w->packed[j]);
    }
    free(rec);
    free(recs);
}

static void
unpack_all(worker_t *w)
{
    for (long j = 0; j < w->n_packed; j++)
        free(w->packed[j]);
    free(w->packed);
    free(w->packed_len);
    w->packed = NULL;
    w->packed_len = NULL;
    w->n_packed = 0;
}

/* pace -- wait until the next batch is due; a native stream (s) takes
 * its acks meanwhile, as an agent waiting between flushes does. */
static void
pace(const worker_t *w, double *next, fb_stream_t *s)
{
    double now;

    if (w->pace_s <= 0)
        return;
    while ((now = bench_now()) < *next) {
        unsigned ms = (unsigned)((*next - now) * 1e3);
        if (s == NULL || ms == 0)
            usleep((useconds_t)((*next - now) * 1e6));
        else
            fb_stream_poll(s, ms);
    }
    *next += w->pace_s;
}

/* native -- one stream: this worker's packed batches. */
static void
native(worker_t *w, fb_client_t *c)
{
    fb_client_status_t st;
    fb_stream_t *s = fb_stream_open(c, on_ack, w, &st);
    double next;

    if (s == NULL) {
        fprintf(stderr, "ingest-bench: stream: %s\n", st.detail);
        w->failed = 1;
    }
    pthread_barrier_wait(w->go);
    if (s == NULL)
        return;
    next = bench_now();
    for (long j = 0; j < w->n_packed; j++) {
        pace(w, &next, s);
        if (fb_stream_send_packed(s, (uint64_t)(j + 1), w->packed[j], w->packed_len[j],
                                  &st) < 0) {
            fprintf(stderr, "ingest-bench: send: %s\n", st.detail);
            w->failed = 1;
            break;
        }
    }
    if (!w->failed && fb_stream_close(s, &st) < 0) {
        fprintf(stderr, "ingest-bench: close: %s\n", st.detail);
        w->failed = 1;
    }
    fb_stream_free(s);
}

/* seed -- SendEvent calls of a batch of events each. */
static void
seed(worker_t *w, fb_client_t *c)
{
    Api__Event *ev = calloc((size_t)per_batch, sizeof(*ev)), **pev = calloc((size_t)per_batch,
                                                                              sizeof(*pev));
    char *text = malloc((size_t)per_batch * (BENCH_REC + 1));
    fb_client_status_t st;

    pthread_barrier_wait(w->go);
    for (long i = 0; i < w->count; i += per_batch) {
        size_t k = 0;
        double t0;
        for (; k < (size_t)per_batch && i + (long)k < w->count; k++) {
            char *t = text + k * (BENCH_REC + 1);
            api__event__init(&ev[k]);
            memcpy(t, w->events + (size_t)(w->first + i + (long)k) * BENCH_REC, BENCH_REC);
            t[BENCH_REC] = '\0';
            ev[k].message = t;
            ev[k].tag = "bench";
            ev[k].agent_id = "ingest-bench";
            pev[k] = &ev[k];
        }
        t0 = bench_now();
        if (fb_client_send_events(c, pev, k, &st) < 0) {
            fprintf(stderr, "ingest-bench: SendEvent: %d %s\n", st.code, st.detail);
            w->failed = 1;
            break;
        }
        lat_add(&w->lat, (uint64_t)((bench_now() - t0) * 1e6));
        w->acked += (long)k;
    }
    free(ev);
    free(pev);
    free(text);
}

/* plain -- this worker's events, a batch at a time, into the shared
 * producer; at most WINDOW batches not wholly delivered. */
static void
plain(worker_t *w, const char *topic)
{
    long nb = (w->count + per_batch - 1) / per_batch;
    double next;

    w->pb = calloc((size_t)nb, sizeof(*w->pb));
    w->delivered_batches = 0;
    pthread_barrier_wait(w->go);
    next = bench_now();
    for (long j = 0; j < nb && !w->failed; j++) {
        long from = j * per_batch, to = from + per_batch > w->count ? w->count : from + per_batch;
        pbatch_t *b = &w->pb[j];

        pace(w, &next, NULL);
        pthread_mutex_lock(&w->mu);
        while (j - w->delivered_batches >= WINDOW)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
        b->w = w;
        b->left = (int)(to - from);
        b->t0_us = now_us();
        for (long i = from; i < to; i++) {
            const uint8_t *v = w->vals + (size_t)(w->first + i) * w->vlen;
            /* a full queue blocks the thread until the poll thread makes room */
            rd_kafka_resp_err_t e = rd_kafka_producev(
                w->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(w->key, strlen(w->key)),
                RD_KAFKA_V_VALUE((void *)v, w->vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_BLOCK),
                RD_KAFKA_V_OPAQUE(b), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "ingest-bench: produce: %s\n", rd_kafka_err2str(e));
                w->failed = 1;
                break;
            }
        }
    }
    pthread_mutex_lock(&w->mu);
    while (!w->failed && w->delivered_batches < nb)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    free(w->pb);
    w->pb = NULL;
}

/* on_dr -- in the poll thread: a record delivered; its batch's last one
 * gives the batch's latency and frees a place in its worker's window. */
static void
on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pbatch_t *b = m->_private;
    worker_t *w = b->w;

    (void)rk;
    (void)opaque;
    if (m->err) {
        fprintf(stderr, "ingest-bench: delivery failed: %s\n", rd_kafka_err2str(m->err));
        exit(1);
    }
    w->acked++;
    if (--b->left > 0)
        return;
    lat_add(&w->lat, now_us() - b->t0_us);
    pthread_mutex_lock(&w->mu);
    w->delivered_batches++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static const char *plain_topic;
static atomic_int polling;

static void *
poller(void *arg)
{
    rd_kafka_t *rk = arg;

    while (atomic_load(&polling))
        rd_kafka_poll(rk, 5);
    return NULL;
}

static void *
run(void *arg)
{
    worker_t *w = arg;
    fb_client_opts_t o = {.target = w->target, .token = w->token, .max_inflight = WINDOW,
                          .timeout_ms = 120000, .ca_file = w->ca_file};
    char err[256];
    fb_client_t *c;

    if (w->side == SIDE_PLAIN) {
        plain(w, plain_topic);
        return NULL;
    }
    c = fb_client_new(&o, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "ingest-bench: client: %s\n", err);
        w->failed = 1;
        pthread_barrier_wait(w->go);
        return NULL;
    }
    if (w->side == SIDE_SEED)
        seed(w, c);
    else
        native(w, c);
    fb_client_free(c);
    return NULL;
}

/* kcat_input -- the first n events as kcat -P lines, batch j of every
 * thread before batch j + 1 of any, into dir/kcat-N.in (made once per n). */
static void
kcat_input(const char *events, long n, char *path, size_t len)
{
    long per = n / streams;
    FILE *fp;

    snprintf(path, len, "%s/kcat-%ld.in", dir, n);
    if (access(path, F_OK) == 0)
        return;
    if ((fp = fopen(path, "w")) == NULL) {
        fprintf(stderr, "ingest-bench: cannot write %s\n", path);
        exit(1);
    }
    for (long j = 0; j < per; j += per_batch)
        for (int i = 0; i < streams; i++)
            for (long k = j; k < j + per_batch && k < per; k++)
                fprintf(fp, "tenant-%03d\t%.*s\n", i, BENCH_REC,
                        events + (size_t)(per * i + k) * BENCH_REC);
    if (fclose(fp) != 0) {
        fprintf(stderr, "ingest-bench: cannot write %s\n", path);
        exit(1);
    }
}

/* kcat_round -- kcat -P over the first n events; seconds from its start to
 * its exit (exits the bench when it fails). */
static double
kcat_round(const char *events, long n)
{
    char path[300], cmd[1600];
    double t0;
    int rc;

    kcat_input(events, n, path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "%s -l '%s' 2>>'%s/kcat.err'", kcat_cmd, path, dir);
    t0 = bench_now();
    rc = system(cmd);
    t0 = bench_now() - t0;
    if (rc != 0) {
        fprintf(stderr, "ingest-bench: kcat failed (status %d; see %s/kcat.err): %s\n", rc, dir,
                cmd);
        exit(1);
    }
    return t0;
}

/* through -- the streams' threads over n events on a side; returns
 * seconds from all threads ready to the last answer or report. */
static double
through(worker_t *w, const char *events, long n, int side, double rate)
{
    pthread_t *t;
    pthread_barrier_t go;
    double t0;

    if (side == SIDE_KCAT)
        return kcat_round(events, n);
    t = calloc((size_t)streams, sizeof(*t));

    pthread_barrier_init(&go, NULL, (unsigned)streams + 1);
    for (int i = 0; i < streams; i++) {
        w[i].events = events;
        w[i].first = n / streams * i;
        w[i].count = n / streams;
        w[i].side = side;
        w[i].lat.n = 0;
        w[i].acked = 0;
        w[i].go = &go;
        w[i].pace_s = rate > 0 ? per_batch / (rate / streams) : 0;
        if (side == SIDE_NATIVE)
            pack_all(&w[i]);
    }
    for (int i = 0; i < streams; i++)
        if (pthread_create(&t[i], NULL, run, &w[i]) != 0) {
            fprintf(stderr, "ingest-bench: pthread_create failed\n");
            exit(1);
        }
    pthread_barrier_wait(&go);
    t0 = bench_now();
    for (int i = 0; i < streams; i++)
        pthread_join(t[i], NULL);
    t0 = bench_now() - t0;
    pthread_barrier_destroy(&go);
    free(t);
    for (int i = 0; i < streams; i++) {
        unpack_all(&w[i]);
        if (w[i].failed)
            exit(1);
    }
    return t0;
}

/* ---- the plain producer ------------------------------------------------- */

/* plain_values -- every event as the Record fbpiped writes for it, under
 * its thread's tenant (the same size: tenant-NNN); vlen each. */
static uint8_t *
plain_values(const char *events, long n, size_t *vlen)
{
    Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp t1 = GOOGLE__PROTOBUF__TIMESTAMP__INIT, t2 = t1;
    char text[BENCH_REC + 1], user[40], key[32];
    uint8_t *vals;

    r.agent_id = "ingest-bench";
    r.tag = "bench";
    r.userid = user;
    r.accesskey = key;
    r.message = text;
    t1.seconds = t2.seconds = time(NULL);
    t1.nanos = t2.nanos = 123456789;
    r.timestamp = &t1;
    r.received_at = &t2;
    r.batch_seq = 1000;
    r.agent_seq = 500;
    memset(text, 'x', BENCH_REC);
    text[BENCH_REC] = '\0';
    snprintf(user, sizeof(user), "u-tenant-000");
    snprintf(key, sizeof(key), "tenant-000");
    *vlen = fbpipe__v1__record__get_packed_size(&r); /* as fbpiped writes it */
    vals = malloc((size_t)n * *vlen);
    if (vals == NULL) {
        fprintf(stderr, "ingest-bench: no memory for %ld values\n", n);
        exit(1);
    }
    for (long i = 0; i < n; i++) {
        long t = i / (n / streams);
        snprintf(user, sizeof(user), "u-tenant-%03ld", t);
        snprintf(key, sizeof(key), "tenant-%03ld", t);
        memcpy(text, events + (size_t)i * BENCH_REC, BENCH_REC);
        memset(vals + (size_t)i * *vlen, 0, *vlen);
        fbpipe__v1__record__pack(&r, vals + (size_t)i * *vlen);
    }
    return vals;
}

/* plain_producer -- one producer for all plain threads, its topic made. */
static rd_kafka_t *
plain_producer(const fb_conf_t *conf)
{
    rd_kafka_conf_t *kc = fb_kafka_producer_conf(conf, 0);
    char err[512];
    rd_kafka_t *rk;

    rd_kafka_conf_set_dr_msg_cb(kc, on_dr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (rk == NULL || fb_kafka_topic_ensure(rk, conf, 30000, NULL) < 0) {
        fprintf(stderr, "ingest-bench: plain producer: %s\n", rk ? "topic" : err);
        exit(1);
    }
    return rk;
}

/* ---- the daemon -------------------------------------------------------- */

static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int
port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void
cleanup(void)
{
    char cmd[300];

    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        daemon_pid = 0;
    }
    if (getenv("FBPIPE_BENCH_KEEP") != NULL) { /* for a look at fbpiped.log */
        fprintf(stderr, "ingest-bench: kept %s\n", dir);
        return;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ingest-bench: could not remove %s\n", dir);
}

static void
write_file(const char *name, mode_t mode, const char *text)
{
    char path[300];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0 || chmod(path, mode) < 0) {
        fprintf(stderr, "ingest-bench: cannot write %s\n", path);
        exit(1);
    }
}

/* timed -- one round of a side, its rate and CPU into run (at position
 * pos), its latencies into all. */
static void
timed(bench_run_t *run, int pos, lat_t *all, worker_t *w, const char *events, long n, int side,
      double rate, double *secs)
{
    bench_procs_t before, after;
    double child = bench_cpu_children();

    bench_procs_sample(side == SIDE_PLAIN ? 0 : daemon_pid, log_path,
                       side == SIDE_PLAIN ? "bench+librdkafka" : "bench-clients", &before);
    *secs = through(w, events, n, side, rate);
    bench_procs_sample(side == SIDE_PLAIN ? 0 : daemon_pid, log_path,
                       side == SIDE_PLAIN ? "bench+librdkafka" : "bench-clients", &after);
    if (run != NULL) {
        bench_run_add(run, pos, (double)n, *secs);
        if (side == SIDE_KCAT)
            bench_run_cpu(run, pos, "kcat", bench_cpu_children() - child);
        else
            bench_run_cpu_diff(run, pos, &before, &after);
    }
    if (side != SIDE_KCAT)
        lat_merge(all, w, streams);
}

static void
print_lat(const char *config, const char *side, double offered, double achieved, const lat_t *l,
          const char *what)
{
    printf("  %-22s offered %9.0f/s  got %9.0f/s  p50 %8.2f  p99 %8.2f  p999 %8.2f ms  (%s)\n",
           side, offered, achieved, pct(l, 0.5), pct(l, 0.99), pct(l, 0.999), what);
    printf("row:\tlat\tingest-bench\t%s\t%s\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\n", config, side,
           offered, achieved, pct(l, 0.5), pct(l, 0.99), pct(l, 0.999));
}

int
main(int argc, char **argv)
{
    static const char *const names[SIDES] = {"plain-librdkafka", "native-Stream",
                                             "seed-SendEvent", "kcat-P"};
    static const char *const what[SIDES] = {"a batch's first record to its last delivery report",
                                            "a batch's send to its Ack",
                                            "a SendEvent call to its answer", ""};
    int order[SIDES] = {SIDE_PLAIN, SIDE_NATIVE, SIDE_SEED, SIDE_KCAT};
    const char *order_names[SIDES];
    bool tls = getenv("FBPIPE_BENCH_TLS") && atoi(getenv("FBPIPE_BENCH_TLS")) != 0;
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    const char *fbpiped = getenv("FBPIPED") ? getenv("FBPIPED") : "./fbpiped";
    const char *loads = getenv("FBPIPE_BENCH_LOADS") ? getenv("FBPIPE_BENCH_LOADS") : "0.5";
    const char *linger = getenv("FBPIPE_BENCH_LINGER") ? getenv("FBPIPE_BENCH_LINGER") : "5ms";
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 400000;
    int rounds = bench_rounds(), sides, stamp = (int)time(NULL);
    char conf_path[300], *text, target[64], secret[65], config[64], topic[96], ca_path[300];
    worker_t *w;
    lat_t all[SIDES] = {{0}};
    fb_conf_t *conf;
    bench_run_t run;
    pthread_t poll_thread;
    rd_kafka_t *rk;
    size_t vlen, cap;
    uint8_t *vals;
    double secs, peak;
    int port;
    pid_t parent;

    if (brokers == NULL) {
        fprintf(stderr, "ingest-bench: set FBPIPE_KAFKA_BROKERS\n");
        return 2;
    }
    if (getenv("FBPIPE_BENCH_STREAMS"))
        streams = atoi(getenv("FBPIPE_BENCH_STREAMS"));
    if (getenv("FBPIPE_BENCH_BATCH"))
        per_batch = atoi(getenv("FBPIPE_BENCH_BATCH"));
    if (streams < 1 || streams > STREAMS_MAX || per_batch < 1 || per_batch > 100000) {
        fprintf(stderr, "ingest-bench: FBPIPE_BENCH_STREAMS 1..%d, FBPIPE_BENCH_BATCH "
                        "1..100000\n", STREAMS_MAX);
        return 2;
    }
    sides = getenv("FBPIPE_BENCH_SEED") && atoi(getenv("FBPIPE_BENCH_SEED")) == 0 ? 2 : 3;
    kcat = getenv("FBPIPE_BENCH_KCAT");
    if (kcat != NULL && *kcat != '\0') {
        if (strspn(kcat, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") !=
            strlen(kcat) || strlen(kcat) > 200) {
            fprintf(stderr, "ingest-bench: FBPIPE_BENCH_KCAT is a program's name or path\n");
            return 2;
        }
        order[0] = SIDE_KCAT;
        order[1] = SIDE_SEED;
        order[2] = SIDE_NATIVE;
        order[3] = SIDE_PLAIN;
        sides = SIDES;
        if (getenv("FBPIPE_BENCH_LOADS") == NULL)
            loads = "";
    } else {
        kcat = NULL;
    }
    for (int p = 0; p < sides; p++)
        order_names[p] = names[order[p]];
    if (strspn(linger, "0123456789msh") != strlen(linger) || linger[0] == '\0' ||
        strlen(linger) > 16) {
        fprintf(stderr, "ingest-bench: FBPIPE_BENCH_LINGER is a duration (5ms, 1ms, 0)\n");
        return 2;
    }
    n = n / ((long)streams * per_batch) * ((long)streams * per_batch);
    if (n <= 0)
        n = (long)streams * per_batch; /* one batch per thread at least */
    if (mkdtemp(dir) == NULL)
        return 2;
    atexit(cleanup);
    fb_log_init("ingest-bench", 0);
    fb_log_set_level(FB_LOG_WARNING);
    srandom(1);
    for (int i = 0; i < 64; i++)
        secret[i] = "0123456789abcdef"[random() % 16];
    secret[64] = '\0';
    write_file("jwt.secret", 0600, secret);
    cap = (size_t)streams * 64 + 1024;
    text = malloc(cap);
    {
        size_t off = 0;
        off += (size_t)snprintf(text + off, cap - off, "{");
        for (int i = 0; i < streams; i++)
            off += (size_t)snprintf(text + off, cap - off,
                                    "%s\"tenant-%03d\": {\"UserID\": \"u-tenant-%03d\"}",
                                    i ? ", " : "", i, i);
        snprintf(text + off, cap - off, "}\n");
    }
    write_file("keys.json", 0600, text);
    port = free_port();
    if (tls) { /* a certificate for 127.0.0.1, as an operator would make one */
        char cmd[1200];
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-keyout '%s/tls.key' -out '%s/tls.crt' -days 2 -subj /CN=127.0.0.1 "
                 "-addext subjectAltName=IP:127.0.0.1 >'%s/openssl.log' 2>&1",
                 dir, dir, dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "ingest-bench: openssl could not make a certificate (%s/openssl.log)\n",
                    dir);
            return 1;
        }
        snprintf(ca_path, sizeof(ca_path), "%s/tls.crt", dir);
    }
    snprintf(text, cap,
             "[ingester]\nlisten = 127.0.0.1:%d\nworkers = 2\nmax_calls_per_peer = %d\n"
             "%s%s%s%s%s"
             "[kafka]\nbrokers = %s\ntopic = ingest-bench-%d\npartitions = 4\n"
             "compression = lz4\nlinger = %s\n",
             port, streams > 64 ? streams : 64, tls ? "tls_cert = " : "", tls ? ca_path : "",
             tls ? "\ntls_key = " : "", tls ? dir : "", tls ? "/tls.key\n" : "", brokers, stamp,
             linger);
    write_file("fbpipe.conf", 0644, text);
    snprintf(conf_path, sizeof(conf_path), "%s/fbpipe.conf", dir);
    snprintf(log_path, sizeof(log_path), "%s/fbpiped.log", dir);
    conf = fb_conf_load(conf_path);
    if (conf == NULL)
        return 1;
    char *events = bench_make_events(n);

    parent = getpid();
    daemon_pid = fork();
    if (daemon_pid == 0) {
        if (freopen(log_path, "w", stderr) == NULL || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
            _exit(127);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a bench killed leaves no daemon */
        if (getppid() != parent)
            _exit(127);
        execl(fbpiped, fbpiped, "-f", "-c", conf_path, (char *)NULL);
        fprintf(stderr, "ingest-bench: cannot run %s: %s\n", fbpiped, strerror(errno));
        _exit(127);
    }
    for (int i = 0; i < 100 && !port_open(port); i++)
        usleep(100000);
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    w = calloc((size_t)streams, sizeof(*w));
    for (int i = 0; i < streams; i++) {
        FILE *p;
        w[i].index = i;
        w[i].target = target;
        w[i].ca_file = tls ? ca_path : NULL;
        snprintf(w[i].key, sizeof(w[i].key), "tenant-%03d", i);
        pthread_mutex_init(&w[i].mu, NULL);
        pthread_cond_init(&w[i].cv, NULL);
        snprintf(text, cap, "'%s' token --access-key tenant-%03d -c '%s'", fbpiped, i,
                 conf_path);
        p = popen(text, "r");
        if (p == NULL || fgets(w[i].token, sizeof(w[i].token), p) == NULL) {
            fprintf(stderr, "ingest-bench: fbpiped token failed\n");
            return 1;
        }
        pclose(p);
        w[i].token[strcspn(w[i].token, "\n")] = '\0';
    }

    /* the plain producer: its topic, its values, its poll thread */
    snprintf(topic, sizeof(topic), "ingest-bench-direct-%d", stamp);
    free(conf->topic);
    conf->topic = strdup(topic);
    plain_topic = conf->topic;
    vals = plain_values(events, n, &vlen);
    rk = plain_producer(conf);
    if (kcat != NULL) /* the plain producer's settings (fb_kafka_producer_conf) */
        snprintf(kcat_cmd, sizeof(kcat_cmd),
                 "'%s' -P -b '%s' -t '%s' -K '\t' -X enable.idempotence=true -X acks=all "
                 "-X compression.codec=lz4 -X linger.ms=%llu -X message.timeout.ms=0",
                 kcat, brokers, topic, (unsigned long long)conf->linger_ms);
    atomic_store(&polling, 1);
    pthread_create(&poll_thread, NULL, poller, rk);
    for (int i = 0; i < streams; i++) {
        w[i].rk = rk;
        w[i].vals = vals;
        w[i].vlen = vlen;
    }

    /* warm up, both once: a batch per thread */
    through(w, events, (long)streams * per_batch, SIDE_NATIVE, 0);
    through(w, events, (long)streams * per_batch, SIDE_PLAIN, 0);
    if (kcat != NULL)
        through(w, events, (long)streams * per_batch, SIDE_KCAT, 0);

    snprintf(config, sizeof(config), "streams=%d,batch=%d%s%s", streams, per_batch,
             tls ? ",tls" : "", kcat ? ",kcat" : "");
    printf("ingest-bench: %ld events of %d bytes, %d streams (threads), %d records per batch, "
           "%d batches in flight per thread; lz4, linger %s, acks=all, idempotent, "
           "4 partitions, %d keys interleaved; %d rounds, sides alternating\n",
           n, BENCH_REC, streams, per_batch, WINDOW, linger, streams, rounds);
    bench_print_load("ingest-bench", "before");
    bench_run_init(&run, "ingest-bench", config, sides, order_names);
    for (int k = 0; k < rounds; k++)
        for (int p = 0; p < sides; p++)
            timed(&run, p, &all[order[p]], w, events, n, order[p], 0, &secs);
    bench_run_print(&run);
    printf("ratio = a side's events/s / %s's in the same round\n", order_names[0]);
    printf("  latency over all rounds, unpaced:\n");
    for (int p = 0; p < sides; p++)
        if (order[p] != SIDE_KCAT)
            print_lat(config, names[order[p]], 0, bench_median(run.side[p].rate, rounds),
                      &all[order[p]], what[order[p]]);
    peak = 0;
    for (int p = 0; p < sides; p++)
        if (order[p] == SIDE_NATIVE)
            peak = bench_median(run.side[p].rate, run.side[p].rounds);
    if (*loads != '\0')
        printf("  paced at fractions of native's median rate (%.0f/s), %ld events each:\n", peak,
               n / 2);
    for (const char *l = loads; *l != '\0';) {
        char *end;
        double f = strtod(l, &end);
        if (end == l)
            break;
        l = *end == ',' ? end + 1 : end;
        for (int side = SIDE_PLAIN; side <= SIDE_NATIVE; side++) {
            lat_t one = {0};
            long m = n / 2 / ((long)streams * per_batch) * ((long)streams * per_batch);
            if (m <= 0)
                m = (long)streams * per_batch;
            timed(NULL, 0, &one, w, events, m, side, peak * f, &secs);
            print_lat(config, names[side], peak * f, (double)m / secs, &one, what[side]);
            free(one.us);
        }
    }
    bench_print_load("ingest-bench", "after");
    atomic_store(&polling, 0);
    pthread_join(poll_thread, NULL);
    rd_kafka_flush(rk, -1);
    rd_kafka_destroy(rk);
    free(vals);
    free(events);
    free(text);
    fb_conf_free(conf);
    return 0;
}
