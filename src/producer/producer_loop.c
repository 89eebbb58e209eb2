/*
 * producer_loop.c -- the producer's main loop: ring lanes to Kafka and
 * acknowledgements back.
 *
 * Records are handed to librdkafka as pointers into the ring (no copy):
 * their space is freed only when acked passes them, after the delivery
 * report. A record that failed transiently is produced again; one that
 * failed permanently (only what is wrong with the record itself) is
 * marked failed with its error before acked passes it. Authorisation
 * failures are an operator's slip: produced again every second, alarmed
 * every 30 s with the principal and topic. A fatal idempotent-producer
 * error (one started without its ACLs) gets a new client instance, with
 * back-off, that resumes from acked, as a restarted producer would. A
 * corrupt record header quarantines its lane alone: the lane is no longer
 * read, its worker exits (its agents send again), and once nothing of the
 * lane is in flight the lane is reset to its head while the other lanes
 * flow. Sleeps in poll() on the ring's doorbell and librdkafka's queue,
 * never spins. It must never write into a record except its state and
 * error.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/partition.h"
#include "common/ring.h"
#include "producer/producer.h"

#define PRODUCE_BUDGET 4096   /* records per lane per turn: fairness */
#define TOPIC_RETRY_MS 30000
#define AUTH_RETRY_MS 1000    /* produce again while Kafka refuses the principal */
#define ALARM_INTERVAL_MS 30000
#define FATAL_BACKOFF_FIRST_MS 1000
#define FATAL_BACKOFF_MAX_MS 30000
#define SETTINGS_EVERY_MS 300000 /* the topic's settings read again (and on HUP) */
#define BATCH_OVERHEAD 128      /* bytes of a record batch around one record */
#define CORRUPT_TRIES 5         /* INVALID_MSG answers before a record counts as corrupt */
#define KAFKA_UP_MS 10000       /* the metrics: Kafka is up when it answered within this */

typedef struct prod {
    const fb_conf_t *conf;
    fb_ring_t *ring;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    fb_lane_t *lanes;
    uint64_t *read;    /* private read cursor per lane */
    uint64_t *inflight; /* records handed to librdkafka or waiting to be again, per lane */
    bool *quarantined; /* per lane: a corrupt header; not read until reset */
    unsigned n_lanes;
    uint64_t quarantines;
    fb_rec_t **retry;  /* transiently failed records to produce again */
    size_t n_retry, cap_retry;
    uint64_t retry_at; /* monotonic ms: no hot loop while Kafka refuses */
    uint64_t hold_until; /* monotonic ms: no new records while Kafka refuses the principal */
    uint64_t produced, delivered, failed, retried;
    uint64_t auth_refused, alarm_at; /* refusals since the last alarm; next alarm */
    int dr_fd;         /* eventfd librdkafka writes when its queue fills */
    pthread_t watcher;
    bool watcher_started;
    volatile sig_atomic_t watch_stop;
    uint64_t client_max;        /* message.max.bytes of the current client (0: the setting) */
    _Atomic uint64_t want_max;  /* what the topic allows, from the watcher (0: the setting) */
    volatile sig_atomic_t *stop;
    fb_mslot_t *metrics; /* the producer's slot in the metrics zone */
} prod_t;

#define WATCH_INTERVAL_MS 5000

static volatile sig_atomic_t reread_requested;

void
fb_producer_reread_topic(void)
{
    reread_requested = 1;
}

/* topic_limit -- the largest record the topic takes, for the workers
 * (refused at ingest above it) and for the client (its batches never
 * above the topic's max.message.bytes, so that no record fails for its
 * batch-mates' size). */
static void
topic_limit(prod_t *p, const fb_kafka_topic_info_t *t)
{
    uint64_t conf_max = p->conf->message_max_bytes, rec_max = conf_max, client = 0;

    if (t->max_message > BATCH_OVERHEAD && (uint64_t)t->max_message < conf_max + BATCH_OVERHEAD) {
        client = (uint64_t)t->max_message;
        rec_max = client - BATCH_OVERHEAD < conf_max ? client - BATCH_OVERHEAD : conf_max;
    }
    if (atomic_exchange(&p->ring->sh->record_max, rec_max) != rec_max && rec_max < conf_max)
        fb_log_warnx("topic %s takes record batches of at most %lld bytes (max.message.bytes): "
                     "records above %llu bytes are refused at ingest, below "
                     "kafka.message_max_bytes (%llu)", p->conf->topic, t->max_message,
                     (unsigned long long)rec_max, (unsigned long long)conf_max);
    atomic_store(&p->want_max, client);
}

/* kafka_watch -- a thread that makes sure of the topic (looked up,
 * created when missing; every TOPIC_RETRY_MS until it is), then asks the
 * brokers for metadata every few seconds and records each answer in the
 * ring header, for the workers' health checks. The delivery-report loop
 * never waits for either (librdkafka handles are thread-safe). */
static void *
kafka_watch(void *arg)
{
    prod_t *p = arg;
    uint64_t topic_try_at = 0, settings_at = 0;
    bool topic_ok = false;

    while (!*p->stop && !p->watch_stop) {
        const struct rd_kafka_metadata *md;
        fb_kafka_topic_info_t info = {-1, -1, -1};
        if (!topic_ok && fb_monotonic_ms() >= topic_try_at) {
            topic_ok = fb_kafka_topic_ensure(p->rk, p->conf, 10000, &info) == 0;
            if (!topic_ok) {
                fb_log_warnx("will try the topic again in %d s; records wait in the ring",
                             TOPIC_RETRY_MS / 1000);
                topic_try_at = fb_monotonic_ms() + TOPIC_RETRY_MS;
            } else {
                topic_limit(p, &info);
                settings_at = fb_monotonic_ms() + SETTINGS_EVERY_MS;
            }
        } else if (topic_ok && (reread_requested || fb_monotonic_ms() >= settings_at)) {
            if (reread_requested)
                fb_log_info("reading the settings of topic %s again (HUP)", p->conf->topic);
            reread_requested = 0;
            if (fb_kafka_topic_describe(p->rk, p->conf, 10000, &info) == 0 && info.partitions >= 0)
                topic_limit(p, &info);
            settings_at = fb_monotonic_ms() + SETTINGS_EVERY_MS;
        }
        if (rd_kafka_metadata(p->rk, 0, p->rkt, &md, WATCH_INTERVAL_MS) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            atomic_store_explicit(&p->ring->sh->kafka_ok_ms, fb_monotonic_ms(),
                                  memory_order_relaxed);
            rd_kafka_metadata_destroy(md);
        }
        /* the metrics: Kafka answered within KAFKA_UP_MS, what is in flight */
        fb_metrics_set(p->metrics, FB_MC_KAFKA_UP,
                       fb_monotonic_ms() - atomic_load_explicit(&p->ring->sh->kafka_ok_ms,
                                                                memory_order_relaxed) <
                           KAFKA_UP_MS);
        fb_metrics_set(p->metrics, FB_MC_IN_FLIGHT, (uint64_t)rd_kafka_outq_len(p->rk));
        for (int i = 0; i < WATCH_INTERVAL_MS / 100 && !*p->stop && !p->watch_stop &&
                        !reread_requested; i++)
            usleep(100000);
    }
    return NULL;
}

/* alarm_auth -- Kafka refuses the principal: one error line per
 * ALARM_INTERVAL_MS, with the principal, topic and count. */
static void
alarm_auth(prod_t *p, rd_kafka_resp_err_t err)
{
    uint64_t now = fb_monotonic_ms();
    char who[160];

    p->auth_refused++;
    if (now < p->alarm_at)
        return;
    p->alarm_at = now + ALARM_INTERVAL_MS;
    fb_log_errorx("Kafka refuses %s on topic %s: %s (%llu refusals); the records wait in the "
                  "ring and are produced again every %d ms until the ACL is granted",
                  fb_kafka_principal(p->conf, who, sizeof(who)), p->conf->topic,
                  rd_kafka_err2str(err), (unsigned long long)p->auth_refused, AUTH_RETRY_MS);
}

/* lane_of -- the lane whose data holds rec. */
static unsigned
lane_of(const prod_t *p, const fb_rec_t *rec)
{
    const uint8_t *at = (const uint8_t *)rec;

    for (unsigned i = 0; i < p->n_lanes; i++)
        if (at >= p->lanes[i].data && at < p->lanes[i].data + p->lanes[i].size)
            return i;
    fb_panic("a delivery report for a record outside every lane");
}

/* quarantine -- lane i holds a corrupt record (what, at pos): read it no
 * more and tell its worker, which exits; try_reset resets the lane later.
 * The other lanes flow. */
static void
quarantine(prod_t *p, unsigned i, const char *what, uint64_t pos)
{
    if (p->quarantined[i])
        return;
    p->quarantined[i] = true;
    p->quarantines++;
    atomic_store(&p->lanes[i].sh->quarantined, 1);
    fb_log_errorx("lane %u: %s at position %llu (owner pid %d): lane quarantined (%llu so "
                  "far); its worker exits and its agents send again, the other lanes flow", i,
                  what, (unsigned long long)pos, (int)atomic_load(&p->lanes[i].sh->owner_pid),
                  (unsigned long long)p->quarantines);
}

/* try_reset -- a quarantined lane whose worker is gone and of which
 * nothing is in flight any more starts afresh at its head. */
static void
try_reset(prod_t *p, unsigned i)
{
    fb_lane_t *l = &p->lanes[i];
    uint64_t from, to;

    if (!p->quarantined[i] || p->inflight[i] > 0 ||
        atomic_load(&l->sh->owner_state) != FB_LANE_FREE)
        return;
    from = fb_lane_acked(l);
    to = fb_lane_head(l);
    fb_lane_skip_to_head(l);
    p->read[i] = to;
    p->quarantined[i] = false;
    fb_log_notice("lane %u: reset after its quarantine: %llu bytes of records skipped, none "
                  "of them acknowledged to an agent", i, (unsigned long long)(to - from));
}

/* mark -- the producer's verdict on a record; acked passes it later. */
static void
mark(prod_t *p, fb_rec_t *rec, rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rec->err = 0; /* it may have counted INVALID_MSG answers */
        if (p->auth_refused > 0) {
            fb_log_notice("Kafka accepts records on topic %s again, after %llu refusals",
                          p->conf->topic, (unsigned long long)p->auth_refused);
            p->auth_refused = 0;
            p->alarm_at = 0;
        }
        atomic_store_explicit(&rec->state, FB_REC_S_DONE, memory_order_relaxed);
        if (p->delivered++ % 1024 == 0)
            atomic_store_explicit(&p->ring->sh->kafka_ok_ms, fb_monotonic_ms(),
                                  memory_order_relaxed);
    } else {
        rec->err = (int32_t)err;
        atomic_store_explicit(&rec->state, FB_REC_S_FAILED, memory_order_relaxed);
        p->failed++;
        fb_log_warnx("record of %u bytes for key %.*s refused for good: %s",
                     rec->key_len + rec->val_len, (int)rec->key_len, fb_rec_key(rec),
                     rd_kafka_err2str(err));
    }
}

/* on_delivery -- librdkafka's verdict (called from rd_kafka_poll). */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    prod_t *p = opaque;
    fb_rec_t *rec = m->_private;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) { /* the ledger: in Kafka */
        fb_metrics_t *z = fb_metrics_zone();
        int64_t us = rd_kafka_message_latency(m);
        fb_metrics_add(p->metrics, FB_MC_RECORDS_DELIVERED, 1);
        fb_metrics_add(p->metrics, FB_MC_BYTES_DELIVERED, (uint64_t)rec->key_len + rec->val_len);
        if (us >= 0)
            fb_metrics_observe(p->metrics, FB_MC_DELIVERY_LATENCY, (uint64_t)us);
        if (z != NULL)
            fb_metrics_tenant_add(p->metrics,
                                  fb_metrics_tenant(z, (const char *)fb_rec_key(rec), rec->key_len),
                                  FB_MT_IN_KAFKA, 1);
    } else {
        fb_metrics_add(p->metrics, FB_MC_DELIVERY_ERRORS, 1);
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || fb_kafka_err_permanent(m->err)) {
        p->inflight[lane_of(p, rec)]--;
        mark(p, rec, m->err);
        return;
    }
    /* INVALID_MSG: Kafka found the record's CRC wrong. Produced again
     * (its err counts the answers, negative while it is pending); past
     * CORRUPT_TRIES it is corrupt in the ring: its lane is quarantined,
     * never answered OK nor failed for a fault that may be the ring's */
    if (m->err == RD_KAFKA_RESP_ERR_INVALID_MSG && --rec->err <= -CORRUPT_TRIES) {
        unsigned i = lane_of(p, rec);
        p->inflight[i]--;
        quarantine(p, i, "a record Kafka refused as corrupt (INVALID_MSG) 5 times",
                   (uint64_t)((uint8_t *)rec - p->lanes[i].data));
        return;
    }
    /* transient: produce it again from the ring */
    if (p->n_retry == p->cap_retry) {
        size_t cap = p->cap_retry ? p->cap_retry * 2 : 1024;
        fb_rec_t **r = realloc(p->retry, cap * sizeof(*r));
        if (r == NULL)
            fb_panic("realloc(retry list, %zu) failed", cap);
        p->retry = r;
        p->cap_retry = cap;
    }
    p->retry[p->n_retry++] = rec;
    if (fb_kafka_err_auth(m->err)) {
        alarm_auth(p, m->err);
        p->retry_at = fb_monotonic_ms() + AUTH_RETRY_MS;
        return;
    }
    p->retry_at = fb_monotonic_ms() + 250;
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        return; /* a client given up after a fatal error: said already */
    if (p->retried++ % 10000 == 0)
        fb_log_warnx("delivery failed, producing again from the ring: %s",
                     rd_kafka_err2str(m->err));
}

/* produce -- hand one record to librdkafka (again: from the retry list).
 * 0 handed or marked, -EAGAIN when librdkafka's queue is full (try later).
 * A record counts as in flight from its first hand-over to its verdict. */
static int
produce(prod_t *p, fb_rec_t *rec, bool again)
{
    rd_kafka_resp_err_t err;

    err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->rkt),
                            RD_KAFKA_V_KEY(fb_rec_key(rec), rec->key_len),
                            RD_KAFKA_V_VALUE(fb_rec_val(rec), rec->val_len),
                            RD_KAFKA_V_MSGFLAGS(0), /* no copy: the ring keeps it */
                            RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->produced++;
        if (!again)
            p->inflight[lane_of(p, rec)]++;
        return 0;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return -EAGAIN;
    if (fb_kafka_err_auth(err)) { /* WRITE and DESCRIBE revoked: refused at once */
        alarm_auth(p, err);
        p->hold_until = fb_monotonic_ms() + AUTH_RETRY_MS;
        return -EAGAIN;
    }
    if (fb_kafka_err_permanent(err)) {
        if (again)
            p->inflight[lane_of(p, rec)]--;
        mark(p, rec, err); /* e.g. larger than message.max.bytes */
        return 0;
    }
    fb_log_warnx("produce: %s; will try again", rd_kafka_err2str(err));
    return -EAGAIN;
}

/* hand_over -- hand librdkafka what the lanes published; counts handed. */
static size_t
hand_over(prod_t *p, bool *full)
{
    size_t total = 0;

    *full = false;
    if (fb_monotonic_ms() < p->hold_until) {
        *full = true; /* poll librdkafka in short naps until then */
        return 0;
    }
    if (p->n_retry > 0 && fb_monotonic_ms() >= p->retry_at) {
        size_t done = 0;
        while (done < p->n_retry && produce(p, p->retry[done], true) == 0)
            done++; /* in the order they failed */
        memmove(p->retry, p->retry + done, (p->n_retry - done) * sizeof(*p->retry));
        p->n_retry -= done;
        total += done;
        if (p->n_retry > 0) {
            *full = true;
            return total;
        }
    }
    for (unsigned i = 0; i < p->n_lanes; i++) {
        fb_lane_t *l = &p->lanes[i];
        uint64_t head = fb_lane_head(l);
        unsigned budget = PRODUCE_BUDGET;

        if (p->quarantined[i])
            continue;
        while (budget-- > 0) {
            uint64_t at = p->read[i];
            fb_rec_t *rec;
            int rc = fb_lane_next(l, &p->read[i], head, &rec);

            if (rc == -EAGAIN)
                break;
            if (rc == -EBADMSG) {
                p->read[i] = at;
                quarantine(p, i, "corrupt record header", at);
                break;
            }
            /* a record a previous producer already settled is not sent again */
            if (atomic_load_explicit(&rec->state, memory_order_relaxed) != FB_REC_S_PENDING)
                continue;
            if (produce(p, rec, false) < 0) {
                p->read[i] = at;
                *full = true;
                return total;
            }
            total++;
        }
    }
    return total;
}

/* settle -- serve delivery reports and move every lane's acked. */
static void
settle(prod_t *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
    for (unsigned i = 0; i < p->n_lanes; i++) {
        if (fb_lane_advance_acked(&p->lanes[i]) < 0)
            quarantine(p, i, "corrupt record header", fb_lane_acked(&p->lanes[i]));
        try_reset(p, i);
    }
}

/* pending -- records published but not yet acknowledged, over all lanes. */
static bool
pending(prod_t *p)
{
    for (unsigned i = 0; i < p->n_lanes; i++)
        if (!fb_lane_all_acked(&p->lanes[i]) && !p->quarantined[i])
            return true;
    return false;
}

/* sleep_until_work -- block on the doorbell and librdkafka's queue. */
static void
sleep_until_work(prod_t *p, int timeout_ms)
{
    struct pollfd fds[2] = {
        {.fd = p->ring->doorbell_fd, .events = POLLIN},
        {.fd = p->dr_fd, .events = POLLIN},
    };
    uint64_t v;

    fb_ring_producer_sleep_begin(p->ring);
    for (unsigned i = 0; i < p->n_lanes; i++) {
        if (fb_lane_head(&p->lanes[i]) > p->read[i]) {
            fb_ring_producer_sleep_end(p->ring);
            return; /* published while we were deciding to sleep */
        }
    }
    if (poll(fds, 2, timeout_ms) < 0 && errno != EINTR)
        fb_log_warn("poll(doorbell) failed");
    fb_ring_producer_sleep_end(p->ring);
    if (read(p->dr_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        fb_log_warn("read(librdkafka eventfd) failed");
}

/* shutdown_flush -- TERM: send what is already in the ring, wait up to
 * flush_timeout for Kafka, report what is left. */
static void
shutdown_flush(prod_t *p)
{
    uint64_t deadline = fb_monotonic_ms() + p->conf->flush_timeout_ms, left = 0;
    bool full;

    fb_log_notice("stopping: flushing the ring to Kafka (at most %llu ms)",
                  (unsigned long long)p->conf->flush_timeout_ms);
    for (unsigned i = 0; i < p->n_lanes; i++)
        (void)fb_lane_head(&p->lanes[i]);
    while (fb_monotonic_ms() < deadline) {
        hand_over(p, &full);
        settle(p, 50);
        if (!pending(p) && p->n_retry == 0)
            break;
        p->retry_at = 0;
    }
    for (unsigned i = 0; i < p->n_lanes; i++) {
        uint64_t a = fb_lane_acked(&p->lanes[i]), h = fb_lane_head(&p->lanes[i]);
        left += h - a;
    }
    if (left > 0)
        fb_log_warnx("stopped with %llu bytes of records not acknowledged by Kafka; they stay "
                     "in the ring only as long as the master keeps it",
                     (unsigned long long)left);
    else
        fb_log_notice("stopped: everything in the ring is in Kafka");
}

/* topic_conf -- the topic's settings: librdkafka's defaults (with the
 * [librdkafka] topic properties), and with partition_by = key_agent the
 * partitioner of partition.h, which finds the agent_id in the record the
 * message opaque points to (no copy, no allocation per record); the Kafka
 * key stays the access key, the routers' proof of the tenant. NULL: the
 * defaults as they are. */
static rd_kafka_topic_conf_t *
topic_conf(prod_t *p)
{
    rd_kafka_topic_conf_t *tc;

    if (p->conf->partition_by != FB_PARTITION_KEY_AGENT)
        return NULL;
    tc = rd_kafka_default_topic_conf_dup(p->rk);
    if (tc == NULL)
        tc = rd_kafka_topic_conf_new(); /* never a silent fall back to the key */
    rd_kafka_topic_conf_set_partitioner_cb(tc, fb_partition_rec_cb);
    return tc;
}

/* client_open -- a librdkafka producer, its topic handle and health
 * watcher; FB_PRODUCER_EXIT_CONFIG or _FATAL after logging, 0 when up. */
static int
client_open(prod_t *p)
{
    static const uint64_t one = 1;
    rd_kafka_conf_t *kc;
    rd_kafka_queue_t *mq;
    char err[512];

    kc = fb_kafka_producer_conf(p->conf, p->client_max);
    if (kc == NULL)
        return FB_PRODUCER_EXIT_CONFIG;
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_opaque(kc, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (p->rk == NULL) {
        /* librdkafka refuses combinations of settings here (fbpiped -t
         * makes the same client): a configuration error, not a crash */
        fb_log_errorx("rd_kafka_new(producer) failed: %s", err);
        rd_kafka_conf_destroy(kc);
        return FB_PRODUCER_EXIT_CONFIG;
    }
    p->rkt = rd_kafka_topic_new(p->rk, p->conf->topic, topic_conf(p));
    if (p->rkt == NULL) {
        fb_log_errorx("rd_kafka_topic_new(%s) failed: %s", p->conf->topic,
                      rd_kafka_err2str(rd_kafka_last_error()));
        return FB_PRODUCER_EXIT_FATAL;
    }
    mq = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(mq, p->dr_fd, &one, sizeof(one));
    rd_kafka_queue_destroy(mq);
    p->watch_stop = 0;
    if (pthread_create(&p->watcher, NULL, kafka_watch, p) != 0) {
        fb_log_errorx("pthread_create(kafka watcher) failed");
        return FB_PRODUCER_EXIT_FATAL; /* a crash: the master starts another */
    }
    p->watcher_started = true;
    return 0;
}

/* client_close -- stop the watcher; destroy the client, dropping what it
 * still holds when not clean (those records are still in the ring). */
static void
client_close(prod_t *p, bool clean)
{
    if (p->watcher_started) {
        p->watch_stop = 1;
        pthread_join(p->watcher, NULL);
        p->watcher_started = false;
    }
    if (p->rkt != NULL)
        rd_kafka_topic_destroy(p->rkt);
    p->rkt = NULL;
    if (p->rk != NULL) {
        if (!clean)
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy_flags(p->rk, clean ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    p->rk = NULL;
}

/* client_renew -- a new client (after a fatal error, or for other
 * settings) that resumes from acked, as a restarted producer would (a
 * record already settled is not sent again), after backoff_ms; 0, or an
 * exit code. */
static int
client_renew(prod_t *p, unsigned backoff_ms)
{
    client_close(p, false);
    p->n_retry = 0; /* the ring still holds them all, from acked on */
    p->retry_at = p->hold_until = 0;
    for (unsigned i = 0; i < p->n_lanes; i++) {
        p->read[i] = fb_lane_acked(&p->lanes[i]);
        p->inflight[i] = 0;
        p->quarantined[i] = false; /* read again: a corrupt header quarantines it anew */
    }
    for (unsigned waited = 0; waited < backoff_ms && !*p->stop; waited += 100)
        usleep(100000);
    return client_open(p);
}

/* fb_producer_run -- the producer process's work, until *stop. */
int
fb_producer_run(const fb_conf_t *conf, fb_ring_t *ring, volatile sig_atomic_t *stop)
{
    prod_t p = {.conf = conf, .ring = ring, .dr_fd = -1, .stop = stop,
                .metrics = fb_metrics_take_slot(fb_metrics_zone(), FB_MROLE_PRODUCER, 0)};
    char fatal[512];
    uint64_t delivered_then = 0;
    fb_backoff_t fatal_backoff; /* before a new client after a fatal error */
    int rc = FB_PRODUCER_EXIT_FATAL;

    fb_backoff_init(&fatal_backoff, FATAL_BACKOFF_FIRST_MS, FATAL_BACKOFF_MAX_MS);
    p.n_lanes = ring->sh->n_lanes;
    p.lanes = calloc(p.n_lanes, sizeof(*p.lanes));
    p.read = calloc(p.n_lanes, sizeof(*p.read));
    p.inflight = calloc(p.n_lanes, sizeof(*p.inflight));
    p.quarantined = calloc(p.n_lanes, sizeof(*p.quarantined));
    if (p.lanes == NULL || p.read == NULL || p.inflight == NULL || p.quarantined == NULL) {
        fb_log_error("calloc(%u lanes) failed", p.n_lanes);
        goto out;
    }
    for (unsigned i = 0; i < p.n_lanes; i++) {
        fb_ring_lane(ring, i, &p.lanes[i]);
        p.read[i] = fb_lane_acked(&p.lanes[i]); /* resume: nothing below acked is pending */
    }
    atomic_store(&ring->sh->producer_pid, (int32_t)getpid());
    p.dr_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p.dr_fd < 0) {
        fb_log_error("eventfd() failed");
        goto out;
    }
    if ((rc = client_open(&p)) != 0)
        goto out;
    rc = FB_PRODUCER_EXIT_FATAL;
    fb_log_info("producing to %s on %s (%u lanes, partitioned by %s, resuming from acked)",
                conf->topic, conf->brokers, p.n_lanes,
                conf->partition_by == FB_PARTITION_KEY_AGENT ? "access key and agent"
                                                             : "access key");

    while (!*stop) {
        bool full;
        size_t n;

        n = hand_over(&p, &full);
        settle(&p, full ? 10 : 0);
        if (p.delivered > delivered_then) {
            delivered_then = p.delivered;
            /* this client works: the next fatal error starts afresh */
            fb_backoff_reset(&fatal_backoff);
        }
        if (atomic_load(&p.want_max) != p.client_max) {
            p.client_max = atomic_load(&p.want_max);
            fb_log_notice("a new Kafka client with message.max.bytes %llu, as topic %s allows; "
                          "it resumes from acked", (unsigned long long)(p.client_max
                              ? p.client_max : conf->message_max_bytes), conf->topic);
            if ((rc = client_renew(&p, 0)) != 0)
                goto out;
            rc = FB_PRODUCER_EXIT_FATAL;
            continue;
        }
        if (rd_kafka_fatal_error(p.rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            char who[160];
            unsigned wait_ms = fb_backoff_next(&fatal_backoff);
            fb_log_errorx("fatal idempotent-producer error as %s: %s; a new Kafka client "
                          "resumes from acked in %u ms",
                          fb_kafka_principal(conf, who, sizeof(who)), fatal, wait_ms);
            if ((rc = client_renew(&p, wait_ms)) != 0)
                goto out;
            rc = FB_PRODUCER_EXIT_FATAL;
            continue;
        }
        if (n == 0 && !full)
            sleep_until_work(&p, 100);
    }
    shutdown_flush(&p);
    rc = FB_PRODUCER_EXIT_OK;
out:
    client_close(&p, rc == FB_PRODUCER_EXIT_OK);
    if (p.dr_fd >= 0)
        close(p.dr_fd);
    free(p.retry);
    free(p.lanes);
    free(p.read);
    free(p.inflight);
    free(p.quarantined);
    return rc;
}
