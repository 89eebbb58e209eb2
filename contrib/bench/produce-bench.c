/*
 * produce-bench.c -- the same events through fbpipe's ring and producer
 * into Kafka, and through a plain librdkafka producer directly, in one run.
 *
 * Fixed settings for both: 256-byte JSON-like records that lz4 cannot
 * shrink much, 1,000 keys, lz4, linger.ms=5, acks=all, idempotence on,
 * 4 partitions. The plain producer hands librdkafka pointers without
 * copying, as the ring does. Prints both rates and their ratio; asserts
 * nothing. Needs FBPIPE_KAFKA_BROKERS.
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
#include "common/conf.h"
#include "common/log.h"
#include "common/ring.h"
#include "producer/producer.h"

#define REC BENCH_REC
#define KEYS 1000

static long delivered;

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

/* direct -- the plain librdkafka producer; returns seconds. */
static double
direct(const fb_conf_t *conf, const char *events, long n)
{
    rd_kafka_conf_t *kc = fb_kafka_producer_conf(conf);
    char err[512], key[16];
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    double t0;

    rd_kafka_conf_set_dr_msg_cb(kc, on_dr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (rk == NULL || fb_kafka_topic_ensure(rk, conf, 30000) < 0)
        exit(1);
    rkt = rd_kafka_topic_new(rk, conf->topic, NULL);
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
    if (delivered != n)
        exit(1);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return t0;
}

/* through_fbpipe -- a writer fills lane 0, the daemon's producer drains it. */
static double
through_fbpipe(const fb_conf_t *conf, const char *events, long n)
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
    kill(prod, SIGTERM);
    waitpid(prod, &st, 0);
    fb_ring_destroy(ring);
    return t0;
}

int
main(int argc, char **argv)
{
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 1000000;
    char path[] = "/tmp/produce-bench-XXXXXX", file[300], topic[64];
    fb_conf_t *conf;
    FILE *fp;
    char *events;
    double td, tf;
    int fd;

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
                "compression = lz4\nlinger = 5ms\n", brokers);
    fclose(fp);
    conf = fb_conf_load(file);
    unlink(file);
    rmdir(path);
    if (conf == NULL)
        return 1;
    srandom(1);
    events = bench_make_events(n);
    fd = (int)time(NULL);

    snprintf(topic, sizeof(topic), "bench-direct-%d", fd);
    free(conf->topic);
    conf->topic = strdup(topic);
    td = direct(conf, events, n);
    snprintf(topic, sizeof(topic), "bench-fbpipe-%d", fd);
    free(conf->topic);
    conf->topic = strdup(topic);
    tf = through_fbpipe(conf, events, n);

    printf("produce-bench: %ld events of %d bytes, %d keys, lz4, linger.ms=5, acks=all, "
           "idempotent, 4 partitions\n", n, REC, KEYS);
    printf("  plain librdkafka      %10.0f events/s  %7.1f MB/s\n", n / td, n * REC / td / 1e6);
    printf("  fbpipe ring+producer  %10.0f events/s  %7.1f MB/s\n", n / tf, n * REC / tf / 1e6);
    printf("  ratio fbpipe/plain    %10.2f\n", td / tf);
    free(events);
    fb_conf_free(conf);
    return 0;
}
