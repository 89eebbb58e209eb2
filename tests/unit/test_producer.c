/*
 * test_producer.c -- the producer's error classes, with fb_producer_run
 * (the very loop the daemon runs, here in a thread) against librdkafka's
 * mock cluster: a record Kafka refuses as corrupt (INVALID_MSG, retriable
 * in Kafka's protocol, which librdkafka 2.0.2 reports at the first
 * refusal) is produced again a bounded number of times; one that keeps
 * being refused quarantines its lane, is never marked failed, and the lane
 * is reset once its owner is gone.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/conf.h"
#include "common/ring.h"
#include "helpers.h"
#include "producer/producer.h"

TestSuite(producer, .init = test_setup, .fini = test_teardown);

#define PRODUCE_API 0 /* Kafka's ApiKey of Produce */

static volatile sig_atomic_t stop;

typedef struct run {
    const fb_conf_t *conf;
    fb_ring_t *ring;
    int rc;
} run_t;

static void *
runner(void *arg)
{
    run_t *r = arg;

    r->rc = fb_producer_run(r->conf, r->ring, &stop);
    return NULL;
}

/* wait_for -- until cond(l) or 30 s; whether it held. */
static bool
wait_for(fb_lane_t *l, bool (*cond)(fb_lane_t *))
{
    struct timespec nap = {0, 20000000};

    for (int i = 0; i < 1500; i++) {
        if (cond(l))
            return true;
        nanosleep(&nap, NULL);
    }
    return false;
}

static bool
settled(fb_lane_t *l)
{
    return fb_lane_all_acked(l);
}

static bool
quarantined(fb_lane_t *l)
{
    return atomic_load(&l->sh->quarantined) != 0;
}

static bool
reset(fb_lane_t *l)
{
    return !quarantined(l) && fb_lane_all_acked(l);
}

/* one_record -- a producer on a one-lane ring holding one record, whose
 * first `errors` Produce requests the mock cluster answers INVALID_MSG;
 * the test body runs with the lane and the record. */
static void
one_record(int errors, void (*body)(fb_lane_t *, fb_rec_t *))
{
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_resp_err_t errs[64];
    char err[256], text[512];
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_t *mrk;
    fb_conf_t *conf;
    fb_ring_t *ring;
    fb_lane_t lane;
    fb_rec_t *rec;
    pthread_t th;
    run_t r;

    cr_assert_eq(rd_kafka_conf_set(mconf, "test.mock.num.brokers", "1", err, sizeof(err)),
                 RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_conf_set(mconf, "log_level", "0", err, sizeof(err));
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof(err));
    cr_assert_not_null(mrk, "%s", err);
    mc = rd_kafka_handle_mock_cluster(mrk);
    cr_assert_eq(rd_kafka_mock_topic_create(mc, "t", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 64; i++)
        errs[i] = RD_KAFKA_RESP_ERR_INVALID_MSG;
    rd_kafka_mock_push_request_errors_array(mc, PRODUCE_API, (size_t)errors, errs);

    snprintf(text, sizeof(text),
             "[ingester]\nlisten = 127.0.0.1:0\n[kafka]\nbrokers = %s\ntopic = t\npartitions = 1\n"
             "[librdkafka]\nlog_level = 0\n",
             rd_kafka_mock_cluster_bootstraps(mc));
    conf = fb_conf_load(test_write("fbpipe.conf", text, 0644));
    cr_assert_not_null(conf, "%s", test_log_buf);
    ring = fb_ring_create(1 << 20, 1);
    cr_assert_not_null(ring);
    fb_ring_lane(ring, 0, &lane);
    cr_assert_eq(fb_lane_claim(&lane, getpid(), 1), 0);
    cr_assert_eq(fb_lane_reserve(&lane, 1, 2, &rec), 0);
    memcpy(fb_rec_key(rec), "k", 1);
    memcpy(fb_rec_val(rec), "{}", 2);
    fb_lane_publish(&lane);

    stop = 0;
    r = (run_t){conf, ring, -1};
    cr_assert_eq(pthread_create(&th, NULL, runner, &r), 0);
    body(&lane, rec);
    stop = 1;
    pthread_join(th, NULL);
    cr_assert_eq(r.rc, FB_PRODUCER_EXIT_OK);
    fb_ring_destroy(ring);
    fb_conf_free(conf);
    rd_kafka_destroy(mrk);
}

static void
delivered_after_retries(fb_lane_t *lane, fb_rec_t *rec)
{
    cr_assert(wait_for(lane, settled), "the record was never settled");
    cr_assert_eq(atomic_load(&rec->state), FB_REC_S_DONE,
                 "refused as corrupt %s, not produced again", "3 times");
    cr_assert(!quarantined(lane));
}

Test(producer, a_record_refused_as_corrupt_a_few_times_is_produced_again)
{
    one_record(3, delivered_after_retries);
}

static void
quarantined_then_reset(fb_lane_t *lane, fb_rec_t *rec)
{
    cr_assert(wait_for(lane, quarantined), "the lane was never quarantined");
    cr_assert_eq(atomic_load(&rec->state), FB_REC_S_PENDING, "marked failed, not quarantined");
    cr_assert(!fb_lane_all_acked(lane), "acknowledged past a corrupt record");
    fb_lane_release(lane); /* its worker gone: the producer resets the lane */
    cr_assert(wait_for(lane, reset), "the lane was never reset");
}

Test(producer, a_record_refused_as_corrupt_again_and_again_quarantines_its_lane)
{
    one_record(40, quarantined_then_reset);
}
