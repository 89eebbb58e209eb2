/*
 * produce-bench.c -- the same events through fbpipe's ring and producer
 * into Kafka, and through a plain librdkafka producer directly, in
 * alternating rounds (plain, fbpipe, plain, fbpipe...; FBPIPE_BENCH_ROUNDS,
 * default 3).
 *
 * The same for both: 256-byte JSON-like records that lz4 cannot shrink
 * much, 1,000 keys interleaved (record i has key i % 1000), lz4,
 * linger.ms=5, acks=all, idempotence on, 4 partitions, one topic per side
 * kept over the rounds, a producer made afresh each round and one untimed
 * warm-up record ("warm" -> "{}") through it before the clock starts; an
 * untimed first round of a tenth of the events meets the cold broker.
 * What is not equal: the plain producer hands librdkafka pointers into
 * the events without copying, and fbpipe copies each into the ring from
 * this process (its writer) for its producer process to hand on. Prints
 * min and median rates and per-round ratios, CPU per million events of
 * each process (bench_rounds.h) and the load average; asserts nothing.
 * Needs FBPIPE_KAFKA_BROKERS. FBPIPE_BENCH_PARTITION_BY=key_agent runs
 * fbpipe's side with kafka.partition_by = key_agent, each event then
 * starting as a packed fbpipe.v1.Record (timestamp, agent_id "agent-NNN"
 * of 1,000 agents, the rest its message), the same bytes for both sides;
 * =key gives the same events with the default partitioning.
 *
 * usage: produce-bench [EVENTS]   (default 1000000; FBPIPE_BENCH_RECORDS)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_events.h"
#include "bench_rounds.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/ring.h"
#include "producer/producer.h"

#define REC BENCH_REC
#define KEYS 1000

static long delivered;

/* as_records -- each event's first bytes made a Record's fields 1 and 2
 * and the header of its field 4, the rest of the event being its
 * message, so that key_agent's partitioner finds an agent in each. */
static void
as_records(char *events, long n)
{
    _Static_assert(REC - 26 >= 128 && REC - 26 < 16384, "two-byte message length");
    for (long i = 0; i < n; i++) {
        uint8_t *e = (uint8_t *)events + (size_t)i * REC;
        /* 1: {seconds 1764331200, nanos 1000000} */
        static const uint8_t ts[12] = {0x0a, 10,   0x08, 0xc0, 0x9d, 0xa6,
                                       0xc9, 0x06, 0x10, 0xc0, 0x84, 0x3d};
        memcpy(e, ts, sizeof(ts));
        e[12] = 0x12;
        e[13] = 9;
        char agent[10];
        snprintf(agent, sizeof(agent), "agent-%03ld", i % 1000);
        memcpy(e + 14, agent, 9);
        e[23] = 0x22;
        e[24] = (uint8_t)((REC - 26) | 0x80);
        e[25] = (uint8_t)((REC - 26) >> 7);
    }
}

static void
on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        fprintf(stderr, "produce-bench: delivery failed: %s\n", rd_kafka_err2str(m->err));
        exit(1);
    }
    delivered++;
}

/* direct -- the plain librdkafka producer; returns seconds, and the CPU
 * this process used while timed. */
static double
direct(const fb_conf_t *conf, const char *events, long n, double *cpu)
{
    rd_kafka_conf_t *kc = fb_kafka_producer_conf(conf, 0);
    char err[512], key[16];
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    double t0;

    rd_kafka_conf_set_dr_msg_cb(kc, on_dr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (rk == NULL || fb_kafka_topic_ensure(rk, conf, 30000, NULL) < 0)
        exit(1);
    rkt = rd_kafka_topic_new(rk, conf->topic, NULL);
    /* warm up as the ring side does: one record through, before timing */
    delivered = 0;
    rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY("warm", 4),
                      RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_END);
    rd_kafka_flush(rk, -1);
    delivered = 0;
    *cpu = bench_cpu_self();
    t0 = bench_now();
    for (long i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof(key), "tenant-%03ld", i % KEYS);
        while (rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, (size_t)kl),
                                 RD_KAFKA_V_VALUE((void *)(events + (size_t)i * REC), REC),
                                 RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 1);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, -1);
    t0 = bench_now() - t0;
    *cpu = bench_cpu_self() - *cpu;
    if (delivered != n)
        exit(1);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return t0;
}

/* through_fbpipe -- a writer fills lane 0, the daemon's producer drains it;
 * returns seconds, and the CPU of the writer and the producer while timed. */
static double
through_fbpipe(const fb_conf_t *conf, const char *events, long n, double *cw, double *cp)
{
    fb_ring_t *ring = fb_ring_create(conf->ring_size, 2);
    fb_lane_t l;
    pid_t prod;
    char key[16];
    double t0;
    int st;

    prod = fork();
    if (prod == 0) {
        fb_log_set_role("producer");
        _exit(fb_producer_main(conf, ring, 0));
    }
    fb_ring_lane(ring, 0, &l);
    /* let the producer connect and create the topic before timing */
    {
        fb_rec_t *rec;
        fb_lane_reserve(&l, 4, 2, &rec);
        memcpy(fb_rec_key(rec), "warm", 4);
        memcpy(fb_rec_val(rec), "{}", 2);
        fb_lane_publish(&l);
        fb_lane_wait_acked(&l, fb_lane_reserved(&l), -1);
    }
    *cw = bench_cpu_self();
    *cp = bench_cpu_pid(prod);
    t0 = bench_now();
    for (long i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof(key), "tenant-%03ld", i % KEYS);
        fb_rec_t *rec;
        while (fb_lane_reserve(&l, (size_t)kl, REC, &rec) != 0) {
            fb_lane_publish(&l);
            fb_lane_wait_acked(&l, fb_lane_acked(&l) + 1, 100);
        }
        memcpy(fb_rec_key(rec), key, (size_t)kl);
        memcpy(fb_rec_val(rec), events + (size_t)i * REC, REC);
        if (i % 64 == 63)
            fb_lane_publish(&l);
    }
    fb_lane_publish(&l);
    fb_lane_wait_acked(&l, fb_lane_reserved(&l), -1);
    t0 = bench_now() - t0;
    *cw = bench_cpu_self() - *cw;
    *cp = bench_cpu_pid(prod) - *cp;
    kill(prod, SIGTERM);
    waitpid(prod, &st, 0);
    fb_ring_destroy(ring);
    return t0;
}

int
main(int argc, char **argv)
{
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    const char *partby = getenv("FBPIPE_BENCH_PARTITION_BY");
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 1000000;
    char path[] = "/tmp/produce-bench-XXXXXX", file[300], topic[64];
    fb_conf_t *conf;
    static const char *const names[] = {"plain-librdkafka", "fbpipe-ring+producer"};
    int rounds = bench_rounds(), stamp;
    bench_run_t run;
    FILE *fp;
    char *events;

    if (brokers == NULL) {
        fprintf(stderr, "produce-bench: set FBPIPE_KAFKA_BROKERS\n");
        return 2;
    }
    fb_log_init("produce-bench", 0);
    fb_log_set_level(FB_LOG_WARNING);
    if (mkdtemp(path) == NULL)
        return 1;
    snprintf(file, sizeof(file), "%s/fbpipe.conf", path);
    fp = fopen(file, "w");
    fprintf(fp, "[ingester]\nlisten = 127.0.0.1:0\n[kafka]\nbrokers = %s\npartitions = 4\n"
                "compression = lz4\nlinger = 5ms\npartition_by = %s\n", brokers,
            partby != NULL && strcmp(partby, "key_agent") == 0 ? "key_agent" : "key");
    fclose(fp);
    conf = fb_conf_load(file);
    unlink(file);
    rmdir(path);
    if (conf == NULL)
        return 1;
    srandom(1);
    events = bench_make_events(n);
    if (partby != NULL)
        as_records(events, n);
    stamp = (int)time(NULL);
    printf("produce-bench: %ld events of %d bytes, %d keys interleaved, lz4, linger.ms=5, "
           "acks=all, idempotent, 4 partitions; %d rounds, sides alternating\n",
           n, REC, KEYS, rounds);
    bench_print_load("produce-bench", "before");
    bench_run_init(&run, "produce-bench",
                   partby == NULL ? "keys=1000"
                   : strcmp(partby, "key_agent") == 0 ? "keys=1000 records partition_by=key_agent"
                                                      : "keys=1000 records partition_by=key",
                   2, names);
    /* round -1 is untimed, a tenth of the events: the broker's first
     * contact with both topics, before either side is measured */
    for (int k = -1; k < rounds; k++) {
        long m = k < 0 ? n / 10 : n;
        double t, cw, cp;
        snprintf(topic, sizeof(topic), "bench-direct-%d", stamp);
        free(conf->topic);
        conf->topic = strdup(topic);
        t = direct(conf, events, m, &cw);
        if (k >= 0) {
            bench_run_add(&run, 0, (double)n, t);
            bench_run_cpu(&run, 0, "bench+librdkafka", cw);
        }
        snprintf(topic, sizeof(topic), "bench-fbpipe-%d", stamp);
        free(conf->topic);
        conf->topic = strdup(topic);
        t = through_fbpipe(conf, events, m, &cw, &cp);
        if (k >= 0) {
            bench_run_add(&run, 1, (double)n, t);
            bench_run_cpu(&run, 1, "writer", cw);
            bench_run_cpu(&run, 1, "producer", cp);
        }
    }
    bench_run_print(&run);
    printf("ratio = fbpipe's events/s / plain librdkafka's in the same round\n");
    bench_print_load("produce-bench", "after");
    free(events);
    fb_conf_free(conf);
    return 0;
}
