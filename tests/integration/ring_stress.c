/*
 * ring_stress.c -- the ingest core end to end against a real broker:
 * writer processes fill ring lanes with unique sequenced records, the
 * daemon's own producer loop (fb_producer_main) runs in a forked child,
 * and a consumer proves that every record arrived, in order per key,
 * each key on one partition. Duplicates are counted and printed.
 *
 * usage: ring_stress CONF TOPIC MODE
 *   MODE plain          writers and one producer
 *        kill-producer  kill -9 the producer at random moments, restart it
 *        slow           writers pace themselves (for a broker outage run
 *                       by the calling script); a failed record is an error
 *        big            two oversized records must come back failed with
 *                       the reason, the rest must arrive
 * Environment: FBPIPE_STRESS_COUNT (records in all, default 100000),
 * FBPIPE_STRESS_WRITERS (default 3), FBPIPE_STRESS_PACE_US (pause after
 * each batch in the paced modes, default 300).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "itest.h"

#include "common/conf.h"
#include "common/log.h"
#include "common/ring.h"
#include "producer/producer.h"

#define KEYS_PER_WRITER 50
#define BATCH 64
#define VAL_LEN 256

static fb_conf_t *conf;
static fb_ring_t *ring;
static const char *topic;
static long n_writers = 3, per_writer;
static useconds_t slow_us = 300;

/* settle_batch -- wait until Kafka has a batch, then check its records. */
static int
settle_batch(unsigned w, fb_lane_t *l, uint64_t from, uint64_t to)
{
    int32_t err;

    /* the worker's contract: answer only after Kafka, then check failures */
    if (fb_lane_wait_acked(l, to, -1) < 0)
        _exit(12);
    if (fb_lane_first_failure(l, from, to, &err) != 0) {
        fprintf(stderr, "ring_stress: writer %u: record failed: %s\n", w, rd_kafka_err2str(err));
        return 1;
    }
    return 0;
}

/* writer -- per_writer records into lane w, batches of BATCH with up to
 * DEPTH batches in flight, as a worker serving several streams would;
 * exits 0, or 3 if any record failed. */
#define DEPTH 256
static void
writer(unsigned w, int slow)
{
    fb_lane_t l;
    uint64_t ends[DEPTH + 1], start;
    unsigned head = 0, tail = 0;
    long kseq[KEYS_PER_WRITER] = {0}, full = 0;
    int failed = 0;

    fb_ring_lane(ring, w, &l);
    if (fb_lane_claim(&l, getpid(), 1) < 0)
        _exit(10);
    start = fb_lane_reserved(&l);
    ends[0] = start;
    for (long i = 0; i < per_writer; i++) {
        int k = (int)(i % KEYS_PER_WRITER);
        char key[32];
        fb_rec_t *rec;
        int rc, n;

        n = snprintf(key, sizeof(key), "w%u-k%d", w, k);
        while ((rc = fb_lane_reserve(&l, (size_t)n, VAL_LEN, &rec)) == -EAGAIN) {
            /* full: settle the oldest batch (checking it before its space is reused) */
            if (head == tail)
                _exit(13);
            full++;
            failed |= settle_batch(w, &l, ends[tail % (DEPTH + 1)], ends[(tail + 1) % (DEPTH + 1)]);
            tail++;
        }
        if (rc < 0)
            _exit(11);
        memcpy(fb_rec_key(rec), key, (size_t)n);
        /* "writer seq keyseq" then text that compresses a little */
        memset(fb_rec_val(rec), ' ', VAL_LEN);
        snprintf((char *)fb_rec_val(rec), VAL_LEN, "%u %ld %ld {\"msg\":\"stress %ld\"}", w, i,
                 kseq[k]++, i * 7919 % 100003);
        if ((i + 1) % BATCH == 0 || i == per_writer - 1) {
            fb_lane_publish(&l);
            head++;
            ends[head % (DEPTH + 1)] = fb_lane_reserved(&l);
            if (slow)
                usleep(slow_us); /* long enough to let faults land mid-run */
            if (head - tail == DEPTH) {
                failed |= settle_batch(w, &l, ends[tail % (DEPTH + 1)],
                                       ends[(tail + 1) % (DEPTH + 1)]);
                tail++;
            }
        }
    }
    while (tail < head) {
        failed |= settle_batch(w, &l, ends[tail % (DEPTH + 1)], ends[(tail + 1) % (DEPTH + 1)]);
        tail++;
    }
    printf("ring_stress: writer %u: %ld records, waited on a full lane %ld times\n", w,
           per_writer, full);
    fflush(stdout);
    _exit(failed ? 3 : 0);
}

static pid_t
start_producer(void)
{
    pid_t pid = fork();

    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        fb_log_set_role("producer");
        _exit(fb_producer_main(conf, ring, 0));
    }
    return pid;
}

/* big -- one record over the broker's limit, one over the client's. */
static int
big(void)
{
    fb_lane_t l;
    size_t sizes[2] = {conf->message_max_bytes - 4096, conf->message_max_bytes + 4096};
    int ok = 0;

    fb_ring_lane(ring, 0, &l);
    for (int i = 0; i < 2; i++) {
        fb_rec_t *rec;
        uint64_t from = fb_lane_reserved(&l), to;
        int32_t err = 0;

        if (fb_lane_reserve(&l, 3, sizes[i], &rec) < 0)
            die("cannot reserve %zu bytes", sizes[i]);
        memcpy(fb_rec_key(rec), "big", 3);
        for (size_t j = 0; j < sizes[i]; j++)
            fb_rec_val(rec)[j] = (uint8_t)random(); /* random: lz4 cannot shrink it */
        fb_lane_publish(&l);
        to = fb_lane_reserved(&l);
        if (fb_lane_wait_acked(&l, to, 120000) < 0)
            die("record of %zu bytes neither delivered nor failed in 120 s", sizes[i]);
        if (fb_lane_first_failure(&l, from, to, &err) != 1)
            die("record of %zu bytes was not marked failed", sizes[i]);
        printf("ring_stress: record of %zu bytes failed as it must: %s\n", sizes[i],
               rd_kafka_err2str(err));
        ok += err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    }
    return ok == 2 ? 0 : -1;
}

/* verify -- consume the topic: every record at least once; in order per
 * key when strict (a record re-sent after a librdkafka message timeout may
 * come after later ones of its key, so the outage run is not strict). */
static void
verify(int strict)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *sub;
    char err[512], group[300];
    long total = n_writers * per_writer, seen = 0, dups = 0, events = 0;
    long *next = calloc((size_t)(n_writers * KEYS_PER_WRITER), sizeof(long));
    int *part = malloc(sizeof(int) * (size_t)(n_writers * KEYS_PER_WRITER));
    uint8_t *got = calloc((size_t)total, 1);
    rd_kafka_t *rk;
    double deadline = now_s() + 180;

    for (long i = 0; i < n_writers * KEYS_PER_WRITER; i++)
        part[i] = -1;
    snprintf(group, sizeof(group), "%s-verify", topic);
    rd_kafka_conf_set(c, "bootstrap.servers", conf->brokers, err, sizeof(err));
    rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err));
    rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (rk == NULL)
        die("consumer: %s", err);
    rd_kafka_poll_set_consumer(rk);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    while (seen < total) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        unsigned w;
        long i, ks;
        int k;

        if (now_s() > deadline)
            die("only %ld of %ld records arrived in 180 s (%ld duplicates)", seen, total, dups);
        if (m == NULL)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        events++;
        if (sscanf((const char *)m->payload, "%u %ld %ld", &w, &i, &ks) != 3 ||
            w >= (unsigned)n_writers || i < 0 || i >= per_writer ||
            sscanf((const char *)m->key, "w%*u-k%d", &k) != 1 || k < 0 || k >= KEYS_PER_WRITER)
            die("unexpected record at partition %d offset %" PRId64, m->partition, m->offset);
        k += (int)w * KEYS_PER_WRITER;
        if (part[k] != -1 && part[k] != m->partition)
            die("key w%u-k%d on partitions %d and %d", w, k % KEYS_PER_WRITER, part[k],
                m->partition);
        part[k] = m->partition;
        if (!strict) {
            if (got[w * per_writer + i]++)
                dups++;
            else
                seen++;
        } else if (ks < next[k]) {
            dups++; /* seen before: a replay after a producer restart */
        } else if (ks == next[k]) {
            next[k]++;
            seen++;
        } else {
            die("key w%u-k%d: record %ld arrived before %ld (order broken or lost)", w,
                k % KEYS_PER_WRITER, ks, next[k]);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("ring_stress: all %ld records arrived (%ld events read, %ld duplicates), %seach key "
           "on one partition\n", total, events, dups, strict ? "in order per key, " : "");
    free(got);
    free(next);
    free(part);
}

int
main(int argc, char **argv)
{
    const char *mode;
    const char *env;
    pid_t prod, *wp;
    long total = 100000, kills = 0;
    int st, bad = 0;
    double t0;

    itest_name = "ring_stress";

    if (argc != 4)
        die("usage: ring_stress CONF TOPIC plain|kill-producer|slow|big");
    mode = argv[3];
    topic = argv[2];
    fb_log_init("ring_stress", 0);
    conf = fb_conf_load(argv[1]);
    if (conf == NULL)
        die("configuration %s refused", argv[1]);
    free(conf->topic);
    conf->topic = strdup(topic);
    if ((env = getenv("FBPIPE_STRESS_COUNT")) != NULL)
        total = atol(env);
    if ((env = getenv("FBPIPE_STRESS_PACE_US")) != NULL)
        slow_us = (useconds_t)atol(env);
    if ((env = getenv("FBPIPE_STRESS_WRITERS")) != NULL)
        n_writers = atol(env);
    if (n_writers < 1 || n_writers > (long)conf->max_workers)
        die("FBPIPE_STRESS_WRITERS must be 1..%llu", (unsigned long long)conf->max_workers);
    per_writer = total / n_writers;
    total = per_writer * n_writers;
    ring = fb_ring_create(conf->ring_size, (unsigned)conf->max_workers);
    if (ring == NULL)
        die("ring");

    prod = start_producer();
    if (strcmp(mode, "big") == 0) {
        bad = big();
        kill(prod, SIGTERM);
        waitpid(prod, &st, 0);
        if (bad)
            die("oversized records did not both fail with MSG_SIZE_TOO_LARGE");
        printf("ring_stress: big: OK\n");
        return 0;
    }

    t0 = now_s();
    wp = calloc((size_t)n_writers, sizeof(pid_t));
    for (long w = 0; w < n_writers; w++) {
        wp[w] = fork();
        if (wp[w] == 0)
            writer((unsigned)w, strcmp(mode, "plain") != 0);
    }
    if (strcmp(mode, "kill-producer") == 0) {
        /* kill -9 the producer at random moments until the writers are done */
        srandom((unsigned)getpid());
        for (;;) {
            int alive = 0;
            usleep((useconds_t)(50000 + random() % 250000));
            for (long w = 0; w < n_writers; w++)
                alive += wp[w] > 0 && waitpid(wp[w], &st, WNOHANG) == 0;
            if (alive == 0)
                break;
            kill(prod, SIGKILL);
            waitpid(prod, &st, 0);
            kills++;
            prod = start_producer();
        }
    }
    for (long w = 0; w < n_writers; w++) {
        if (waitpid(wp[w], &st, 0) == wp[w] && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
            fprintf(stderr, "ring_stress: writer %ld ended with status %d\n", w, st);
            bad = 1;
        }
    }
    printf("ring_stress: %ld records through the ring acknowledged in %.2f s (%ld producer "
           "kills)\n", total, now_s() - t0, kills);
    kill(prod, SIGTERM);
    if (waitpid(prod, &st, 0) != prod || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("producer did not stop cleanly (status %d)", st);
    if (bad)
        die("a writer failed (a record was refused or the ring broke)");
    total = n_writers * per_writer;
    verify(strcmp(mode, "slow") != 0);
    fb_ring_destroy(ring);
    fb_conf_free(conf);
    return 0;
}
