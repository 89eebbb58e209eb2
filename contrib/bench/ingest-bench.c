/*
 * ingest-bench.c -- events through fbpiped's native API (Stream) and its
 * seed API (SendEvent), next to a plain librdkafka producer sending the
 * same events straight to the same broker, in one run.
 *
 * Fixed settings: 256-byte events, lz4, linger.ms=5, acks=all, idempotence,
 * 4 partitions; 512 records per batch, 8 concurrent streams (threads, one
 * client each), 8 batches in flight per stream. A native stream is bound
 * to one tenant, so the 8 streams carry 8 keys; the plain producer uses the
 * same 8 keys, so that both sides batch alike in Kafka (1,000 keys would
 * need 1,000 streams, or at least 1,000 batches of 512: 512,000 events and
 * a stream opened per batch, which measures stream set-up, not ingest).
 * The plain producer sends fbpipe.v1.Record values of the same size as
 * fbpiped writes, with at most as many records in flight as the streams
 * have (8 x 8 x 512), so that its latency is an ack's, not a queue's.
 * Native batches are packed before the clock starts, as the plain
 * producer's values are; SendEvent calls pack their events as they go.
 * Prints events/s and the ack latency (p50/p99/p999: a batch's send to its
 * Ack; a SendEvent call of 512 events to its answer; a plain record to its
 * delivery report), the ratios to the plain producer, and the native
 * API's p99 at half its peak rate. Asserts nothing.
 *
 * usage: ingest-bench [EVENTS]    (default 400000; FBPIPE_BENCH_RECORDS)
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
#include "common/conf.h"
#include "common/ingest_client.h"
#include "common/log.h"
#include "producer/producer.h"

#define STREAMS 8
#define PER_BATCH 512
#define WINDOW 8
#define DIRECT_INFLIGHT (STREAMS * WINDOW * PER_BATCH) /* records, as the streams */

typedef struct lat {
    uint64_t *us;
    size_t n, cap;
} lat_t;

typedef struct worker {
    int index;
    const char *target;
    char token[1024];
    const char *events;
    long first, count;      /* events[first .. first+count) */
    double pace_s;          /* seconds between batches; 0 = as fast as allowed */
    int seed;               /* SendEvent instead of Stream */
    lat_t lat;
    long acked;
    int failed;
    uint8_t **packed;       /* the native batches, packed before the clock starts */
    size_t *packed_len;
    long n_packed;
} worker_t;

static char dir[] = "/tmp/ingest-bench-XXXXXX";
static pid_t daemon_pid;

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

/* pct -- the p-th percentile (0..1) of all latencies, in ms. */
static double
pct(lat_t *all, double p)
{
    size_t i;

    if (all->n == 0)
        return 0;
    i = (size_t)(p * (double)(all->n - 1));
    return (double)all->us[i] / 1000.0;
}

static void
lat_merge(lat_t *all, worker_t *w, int n)
{
    all->n = 0;
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
    w->acked += PER_BATCH;
}

/* pack_all -- this worker's events as packed batches of PER_BATCH, seq 1..
 * (before the clock starts, as the plain producer's values are). */
static void
pack_all(worker_t *w)
{
    static Fbpipe__V1__BatchRecord rec[PER_BATCH], *recs[PER_BATCH];
    Fbpipe__V1__Batch b = FBPIPE__V1__BATCH__INIT;
    long nb = (w->count + PER_BATCH - 1) / PER_BATCH;

    w->packed = calloc((size_t)nb, sizeof(*w->packed));
    w->packed_len = calloc((size_t)nb, sizeof(*w->packed_len));
    w->n_packed = nb;
    b.tag = "bench";
    b.agent_id = "ingest-bench";
    b.records = recs;
    for (long i = 0, j = 0; i < w->count; i += PER_BATCH, j++) {
        size_t k = 0;
        for (; k < PER_BATCH && i + (long)k < w->count; k++) {
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

/* native -- one stream: this worker's packed batches. */
static void
native(worker_t *w, fb_client_t *c)
{
    fb_client_status_t st;
    fb_stream_t *s = fb_stream_open(c, on_ack, w, &st);
    double next = bench_now();

    if (s == NULL) {
        fprintf(stderr, "ingest-bench: stream: %s\n", st.detail);
        w->failed = 1;
        return;
    }
    for (long j = 0; j < w->n_packed; j++) {
        if (w->pace_s > 0) {
            double now = bench_now();
            if (next > now)
                usleep((useconds_t)((next - now) * 1e6));
            next += w->pace_s;
        }
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

/* seed -- SendEvent calls of PER_BATCH events each. */
static void
seed(worker_t *w, fb_client_t *c)
{
    static __thread Api__Event ev[PER_BATCH], *pev[PER_BATCH];
    static __thread char text[PER_BATCH][BENCH_REC + 1];
    fb_client_status_t st;

    for (long i = 0; i < w->count; i += PER_BATCH) {
        size_t k = 0;
        double t0;
        for (; k < PER_BATCH && i + (long)k < w->count; k++) {
            api__event__init(&ev[k]);
            memcpy(text[k], w->events + (size_t)(w->first + i + (long)k) * BENCH_REC, BENCH_REC);
            text[k][BENCH_REC] = '\0';
            ev[k].message = text[k];
            ev[k].tag = "bench";
            ev[k].agent_id = "ingest-bench";
            pev[k] = &ev[k];
        }
        t0 = bench_now();
        if (fb_client_send_events(c, pev, k, &st) < 0) {
            fprintf(stderr, "ingest-bench: SendEvent: %d %s\n", st.code, st.detail);
            w->failed = 1;
            return;
        }
        lat_add(&w->lat, (uint64_t)((bench_now() - t0) * 1e6));
        w->acked += (long)k;
    }
}

static void *
run(void *arg)
{
    worker_t *w = arg;
    fb_client_opts_t o = {.target = w->target, .token = w->token, .max_inflight = WINDOW,
                          .timeout_ms = 120000};
    char err[256];
    fb_client_t *c = fb_client_new(&o, err, sizeof(err));

    if (c == NULL) {
        fprintf(stderr, "ingest-bench: client: %s\n", err);
        w->failed = 1;
        return NULL;
    }
    if (w->seed)
        seed(w, c);
    else
        native(w, c);
    fb_client_free(c);
    return NULL;
}

/* through -- STREAMS threads over the events; returns seconds. */
static double
through(worker_t *w, const char *events, long n, int use_seed, double rate)
{
    pthread_t t[STREAMS];
    double t0;

    for (int i = 0; i < STREAMS; i++) {
        w[i].events = events;
        w[i].first = n / STREAMS * i;
        w[i].count = n / STREAMS;
        w[i].seed = use_seed;
        w[i].lat.n = 0;
        w[i].acked = 0;
        w[i].pace_s = rate > 0 ? PER_BATCH / (rate / STREAMS) : 0;
        if (!use_seed)
            pack_all(&w[i]);
    }
    t0 = bench_now();
    for (int i = 0; i < STREAMS; i++)
        pthread_create(&t[i], NULL, run, &w[i]);
    for (int i = 0; i < STREAMS; i++)
        pthread_join(t[i], NULL);
    t0 = bench_now() - t0;
    for (int i = 0; i < STREAMS; i++) {
        unpack_all(&w[i]);
        if (w[i].failed)
            exit(1);
    }
    return t0;
}

/* ---- the plain producer ------------------------------------------------- */

static lat_t direct_lat;
static long delivered;

static void
on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct timespec ts;
    (void)rk;
    (void)opaque;
    if (m->err) {
        fprintf(stderr, "ingest-bench: delivery failed: %s\n", rd_kafka_err2str(m->err));
        exit(1);
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lat_add(&direct_lat, (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 -
                             (uint64_t)(uintptr_t)m->_private);
    delivered++;
}

/* direct -- the same events as Record values, straight to Kafka. */
static double
direct(const fb_conf_t *conf, const char *events, long n)
{
    rd_kafka_conf_t *kc = fb_kafka_producer_conf(conf);
    Fbpipe__V1__Record r = FBPIPE__V1__RECORD__INIT;
    Google__Protobuf__Timestamp t1 = GOOGLE__PROTOBUF__TIMESTAMP__INIT, t2 = t1;
    char err[512], key[16], text[BENCH_REC + 1];
    size_t vlen = 0;
    uint8_t *vals;
    rd_kafka_t *rk;
    double t0;

    r.agent_id = "ingest-bench";
    r.tag = "bench";
    r.userid = "u-tenant-000";
    r.accesskey = "tenant-000";
    r.message = text;
    t1.seconds = t2.seconds = time(NULL);
    t1.nanos = t2.nanos = 123456789;
    r.timestamp = &t1;
    r.received_at = &t2;
    r.batch_seq = 1000;
    r.agent_seq = 500;
    memset(text, 'x', BENCH_REC);
    text[BENCH_REC] = '\0';
    vlen = fbpipe__v1__record__get_packed_size(&r); /* as fbpiped writes it */
    vals = malloc((size_t)n * vlen);
    for (long i = 0; i < n; i++) {
        memcpy(text, events + (size_t)i * BENCH_REC, BENCH_REC);
        fbpipe__v1__record__pack(&r, vals + (size_t)i * vlen);
    }
    rd_kafka_conf_set_dr_msg_cb(kc, on_dr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (rk == NULL || fb_kafka_topic_ensure(rk, conf, 30000) < 0)
        exit(1);
    /* warm up: the producer id and the partition leaders, before timing */
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(conf->topic), RD_KAFKA_V_VALUE(vals, vlen),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(NULL),
                      RD_KAFKA_V_END);
    rd_kafka_flush(rk, -1);
    delivered = 0;
    direct_lat.n = 0;
    t0 = bench_now();
    for (long i = 0; i < n; i++) {
        struct timespec ts;
        int kl = snprintf(key, sizeof(key), "tenant-%03ld", i / (n / STREAMS) % STREAMS);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        while (rd_kafka_producev(
                   rk, RD_KAFKA_V_TOPIC(conf->topic), RD_KAFKA_V_KEY(key, (size_t)kl),
                   RD_KAFKA_V_VALUE(vals + (size_t)i * vlen, vlen), RD_KAFKA_V_MSGFLAGS(0),
                   RD_KAFKA_V_OPAQUE((void *)(uintptr_t)((uint64_t)ts.tv_sec * 1000000 +
                                                         (uint64_t)ts.tv_nsec / 1000)),
                   RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 1);
        rd_kafka_poll(rk, 0);
        while (i + 1 - delivered >= DIRECT_INFLIGHT) /* on_dr runs in poll */
            rd_kafka_poll(rk, 1);
    }
    rd_kafka_flush(rk, -1);
    t0 = bench_now() - t0;
    if (delivered != n)
        exit(1);
    rd_kafka_destroy(rk);
    free(vals);
    qsort(direct_lat.us, direct_lat.n, sizeof(*direct_lat.us), cmp_u64);
    return t0;
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

int
main(int argc, char **argv)
{
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    const char *fbpiped = getenv("FBPIPED") ? getenv("FBPIPED") : "./fbpiped";
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 400000;
    char conf_path[300], text[1024], target[64], secret[65];
    worker_t w[STREAMS];
    lat_t all = {0};
    fb_conf_t *conf;
    double td, tn, ts, th, rate = 0;
    int port, stamp = (int)time(NULL);
    pid_t parent;

    if (brokers == NULL) {
        fprintf(stderr, "ingest-bench: set FBPIPE_KAFKA_BROKERS\n");
        return 2;
    }
    n = n / (STREAMS * PER_BATCH) * (STREAMS * PER_BATCH);
    if (n <= 0 || mkdtemp(dir) == NULL)
        return 2;
    atexit(cleanup);
    fb_log_init("ingest-bench", 0);
    fb_log_set_level(FB_LOG_WARNING);
    srandom(1);
    for (int i = 0; i < 64; i++)
        secret[i] = "0123456789abcdef"[random() % 16];
    secret[64] = '\0';
    write_file("jwt.secret", 0600, secret);
    {
        size_t off = 0;
        off += (size_t)snprintf(text + off, sizeof(text) - off, "{");
        for (int i = 0; i < STREAMS; i++)
            off += (size_t)snprintf(text + off, sizeof(text) - off,
                                    "%s\"tenant-%03d\": {\"UserID\": \"u-tenant-%03d\"}",
                                    i ? ", " : "", i, i);
        snprintf(text + off, sizeof(text) - off, "}\n");
    }
    write_file("keys.json", 0600, text);
    port = free_port();
    snprintf(text, sizeof(text),
             "[ingester]\nlisten = 127.0.0.1:%d\nworkers = 2\n[kafka]\nbrokers = %s\n"
             "topic = ingest-bench-%d\npartitions = 4\ncompression = lz4\nlinger = 5ms\n",
             port, brokers, stamp);
    write_file("fbpipe.conf", 0644, text);
    snprintf(conf_path, sizeof(conf_path), "%s/fbpipe.conf", dir);
    conf = fb_conf_load(conf_path);
    if (conf == NULL)
        return 1;
    char *events = bench_make_events(n);

    parent = getpid();
    daemon_pid = fork();
    if (daemon_pid == 0) {
        snprintf(text, sizeof(text), "%s/fbpiped.log", dir);
        if (freopen(text, "w", stderr) == NULL || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
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
    for (int i = 0; i < STREAMS; i++) {
        FILE *p;
        memset(&w[i], 0, sizeof(w[i]));
        w[i].index = i;
        w[i].target = target;
        snprintf(text, sizeof(text), "'%s' token --access-key tenant-%03d -c '%s'", fbpiped, i,
                 conf_path);
        p = popen(text, "r");
        if (p == NULL || fgets(w[i].token, sizeof(w[i].token), p) == NULL) {
            fprintf(stderr, "ingest-bench: fbpiped token failed\n");
            return 1;
        }
        pclose(p);
        w[i].token[strcspn(w[i].token, "\n")] = '\0';
    }
    /* warm up: connections, the producer's first contact with Kafka */
    through(w, events, STREAMS * PER_BATCH, 0, 0);

    printf("ingest-bench: %ld events of %d bytes, %d streams, %d records per batch, %d in "
           "flight; lz4, linger.ms=5, acks=all, idempotent, 4 partitions, %d keys\n",
           n, BENCH_REC, STREAMS, PER_BATCH, WINDOW, STREAMS);
    printf("  %-26s %10s  %8s %8s %8s  (ms)\n", "", "events/s", "p50", "p99", "p999");
    /* two rounds, alternating, so that neither side alone meets a cold
     * broker; the plain producer writes to a topic of its own */
    for (int round = 1; round <= 2; round++) {
        free(conf->topic);
        snprintf(text, sizeof(text), "ingest-bench-direct-%d-%d", stamp, round);
        conf->topic = strdup(text);
        td = direct(conf, events, n);
        printf("  %-26s %10.0f  %8.2f %8.2f %8.2f  (record to delivery report)\n",
               round == 1 ? "plain librdkafka" : "plain librdkafka, again", n / td,
               pct(&direct_lat, 0.5), pct(&direct_lat, 0.99), pct(&direct_lat, 0.999));
        tn = through(w, events, n, 0, 0);
        lat_merge(&all, w, STREAMS);
        printf("  %-26s %10.0f  %8.2f %8.2f %8.2f  (batch to Ack)   ratio %.2f\n",
               round == 1 ? "native Stream" : "native Stream, again", n / tn, pct(&all, 0.5),
               pct(&all, 0.99), pct(&all, 0.999), td / tn);
        if (n / tn > rate)
            rate = n / tn;
        ts = through(w, events, n, 1, 0);
        lat_merge(&all, w, STREAMS);
        printf("  %-26s %10.0f  %8.2f %8.2f %8.2f  (512 events to the answer)   ratio %.2f\n",
               round == 1 ? "seed SendEvent" : "seed SendEvent, again", n / ts, pct(&all, 0.5),
               pct(&all, 0.99), pct(&all, 0.999), td / ts);
    }
    th = through(w, events, n / 2, 0, rate / 2);
    lat_merge(&all, w, STREAMS);
    printf("  %-26s %10.0f  %8.2f %8.2f %8.2f  (batch to Ack, paced at %.0f/s)\n",
           "native at half its peak", (n / 2) / th, pct(&all, 0.5), pct(&all, 0.99),
           pct(&all, 0.999), rate / 2);
    free(events);
    fb_conf_free(conf);
    return 0;
}
