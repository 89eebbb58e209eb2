/*
 * metrics_render.c -- the metrics zone as Prometheus text (format 0.0.4)
 * and the readiness verdict (see metrics_render.h).
 *
 * Counters are summed over every slot of the zone (whoever counts them),
 * gauges of one role are summed over its slots, except the ring lanes'
 * (one series per lane). Histograms are kept per bucket in the zone and
 * made cumulative here; _count is the +Inf bucket, so that a scrape is
 * consistent with itself while processes count. Tenants: the zone's
 * names, then "_other" when it counted anything.
 *
 * It must never write to the zone, log, or do I/O: it runs in the
 * metrics child's server thread and in unit tests.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "common/auth.h"
#include "metrics/metrics_render.h"

#define LE_MAX 32 /* "18446744073709.551615" and its NUL */

static bool mbuf_grow(fb_mbuf_t *b, size_t more);
static void family(fb_mbuf_t *b, const char *name, const char *type, const char *help);
static void seconds(char *out, size_t cap, uint64_t us);
static void counter(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help,
                    fb_mc_t c);
static void role_gauge(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help,
                       fb_mrole_t role, fb_mc_t c);
static void histogram(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help,
                      fb_mc_t first);
static void by_reason(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help,
                      const fb_mc_t *c, const char *const *reasons, size_t n);
static void by_role(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help,
                    fb_mc_t first);
static void tenants(fb_mbuf_t *b, const fb_metrics_t *m);

/* where a child counts, as the label role says it (the master is none) */
static const char *const role_names[FB_MROLE_N] = {
    [FB_MROLE_MASTER] = NULL,     [FB_MROLE_PRODUCER] = "producer", [FB_MROLE_WORKER] = "worker",
    [FB_MROLE_ROUTER] = "router", [FB_MROLE_METRICS] = "metrics",
};

/* the ledger's columns, as the label stage says them */
static const char *const stage_names[FB_MT_STAGES] = {
    [FB_MT_RECEIVED] = "received", [FB_MT_ACKED] = "acked",
    [FB_MT_REFUSED] = "refused",   [FB_MT_IN_KAFKA] = "in_kafka",
    [FB_MT_WRITTEN] = "written",   [FB_MT_DEAD_LETTERED] = "dead_lettered",
    [FB_MT_SPOOLED] = "spooled",
};

/* mbuf_grow -- room for more bytes and a NUL; false once failed. */
static bool
mbuf_grow(fb_mbuf_t *b, size_t more)
{
    if (!b->failed && fb_buf_reserve(&b->text, more) < 0)
        b->failed = true;
    return !b->failed;
}

/* fb_mbuf_put -- append len bytes of s. */
void
fb_mbuf_put(fb_mbuf_t *b, const char *s, size_t len)
{
    if (mbuf_grow(b, len))
        fb_buf_put(&b->text, s, len); /* has its room: cannot fail */
}

/* fb_mbuf_printf -- append formatted text. */
void
fb_mbuf_printf(fb_mbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!mbuf_grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->text.data + b->text.len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->text.len += (size_t)n;
}

/* fb_mbuf_free -- release the text; b is empty again. */
void
fb_mbuf_free(fb_mbuf_t *b)
{
    fb_buf_free(&b->text);
    b->failed = false;
}

/* fb_metrics_label_escape -- s escaped as the text format wants a label
 * value: \\, \" and \n; every other byte as it is (UTF-8 passes). */
void
fb_metrics_label_escape(fb_mbuf_t *b, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        size_t plain = strcspn(p, "\\\"\n");
        fb_mbuf_put(b, p, plain);
        p += plain;
        if (*p == '\0')
            break;
        fb_mbuf_put(b, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n", 2);
    }
}

/* family -- the HELP and TYPE lines of one metric. */
static void
family(fb_mbuf_t *b, const char *name, const char *type, const char *help)
{
    fb_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* seconds -- us microseconds as seconds, without trailing zeros ("0.0025",
 * "1"); UINT64_MAX (the last bucket) is "+Inf". Integers only: the text
 * is the same on every machine. */
static void
seconds(char *out, size_t cap, uint64_t us)
{
    size_t n;

    if (us == UINT64_MAX) {
        snprintf(out, cap, "+Inf");
        return;
    }
    if (us % 1000000 == 0) {
        snprintf(out, cap, "%" PRIu64, us / 1000000);
        return;
    }
    snprintf(out, cap, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
    n = strlen(out);
    while (n > 0 && out[n - 1] == '0')
        out[--n] = '\0';
}

/* counter -- one counter, summed over every slot. */
static void
counter(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help, fb_mc_t c)
{
    family(b, name, "counter", help);
    fb_mbuf_printf(b, "%s %" PRIu64 "\n", name, fb_metrics_sum(m, c));
}

/* role_gauge -- one gauge, summed over the slots of role. */
static void
role_gauge(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help, fb_mrole_t role,
           fb_mc_t c)
{
    family(b, name, "gauge", help);
    fb_mbuf_printf(b, "%s %" PRIu64 "\n", name, fb_metrics_role_sum(m, role, c));
}

/* histogram -- FB_MHIST_BUCKETS counts from first (each bucket's own, in
 * microseconds), then the sum in microseconds and the count: rendered
 * cumulative, in seconds. */
static void
histogram(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help, fb_mc_t first)
{
    uint64_t total = 0;
    char le[LE_MAX];

    family(b, name, "histogram", help);
    for (unsigned i = 0; i < FB_MHIST_BUCKETS; i++) {
        total += fb_metrics_sum(m, (fb_mc_t)(first + i));
        seconds(le, sizeof(le), fb_mhist_le_us[i]);
        fb_mbuf_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, total);
    }
    seconds(le, sizeof(le), fb_metrics_sum(m, (fb_mc_t)(first + FB_MHIST_BUCKETS)));
    fb_mbuf_printf(b, "%s_sum %s\n", name, le);
    /* the +Inf bucket, not the zone's count word: they differ while an
     * observation is being added, and a scrape must agree with itself */
    fb_mbuf_printf(b, "%s_count %" PRIu64 "\n", name, total);
}

/* by_reason -- one counter with a series per reason. */
static void
by_reason(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help, const fb_mc_t *c,
          const char *const *reasons, size_t n)
{
    family(b, name, "counter", help);
    for (size_t i = 0; i < n; i++)
        fb_mbuf_printf(b, "%s{reason=\"%s\"} %" PRIu64 "\n", name, reasons[i],
                       fb_metrics_sum(m, c[i]));
}

/* by_role -- one of the master's counters by child role (FB_MROLE_N from
 * first, the master's own number unused). */
static void
by_role(fb_mbuf_t *b, const fb_metrics_t *m, const char *name, const char *help, fb_mc_t first)
{
    family(b, name, "counter", help);
    for (int r = 0; r < FB_MROLE_N; r++)
        if (role_names[r] != NULL)
            fb_mbuf_printf(b, "%s{role=\"%s\"} %" PRIu64 "\n", name, role_names[r],
                           fb_metrics_role_sum(m, FB_MROLE_MASTER, (fb_mc_t)(first + r)));
}

/* child_exits -- the master's count of children ended, by role and why. */
static void
child_exits(fb_mbuf_t *b, const fb_metrics_t *m)
{
    static const char *const why[FB_MEXIT_N] = {
        [FB_MEXIT_CLEAN] = "clean",         [FB_MEXIT_RETIRED] = "retired",
        [FB_MEXIT_CRASH] = "crash",         [FB_MEXIT_NOT_READY] = "not_ready",
        [FB_MEXIT_CONFIG] = "config",       [FB_MEXIT_MEMORY] = "memory_limit",
        [FB_MEXIT_NOT_ACCEPTING] = "not_accepting",
        [FB_MEXIT_LANE_QUARANTINED] = "lane_quarantined",
    };

    family(b, "fbpipe_child_exits_total", "counter",
           "Children that ended, by role and why: clean, retired (after a reload), crash, "
           "not_ready (status 6), config (status 2), memory_limit, not_accepting, "
           "lane_quarantined (workers restarted).");
    for (int r = 0; r < FB_MROLE_N; r++)
        for (int w = 0; r != FB_MROLE_MASTER && w < FB_MEXIT_N; w++)
            fb_mbuf_printf(b, "fbpipe_child_exits_total{role=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                           role_names[r], why[w],
                           fb_metrics_role_sum(m, FB_MROLE_MASTER,
                                               (fb_mc_t)(FB_MC_CHILD_EXITS + r * FB_MEXIT_N + w)));
}

/* tenant_label -- the tenant label of tenant number t ("_other" past the
 * named ones). */
static void
tenant_label(fb_mbuf_t *b, const fb_metrics_t *m, unsigned t)
{
    fb_mbuf_printf(b, "{tenant=\"");
    fb_metrics_label_escape(b, t < fb_metrics_tenants(m) ? fb_metrics_tenant_name(m, t) : "_other");
    fb_mbuf_printf(b, "\"");
}

/* tenants -- the ledger's columns and the bytes per tenant: the named
 * ones, then "_other" when it counted anything. */
static void
tenants(fb_mbuf_t *b, const fb_metrics_t *m)
{
    static const fb_mt_t bytes[] = {FB_MT_BYTES_RECEIVED, FB_MT_BYTES_WRITTEN};
    static const char *const bytes_names[] = {"received", "written"};
    unsigned named = fb_metrics_tenants(m), other = fb_metrics_other(m);
    bool other_counted = false;
    uint64_t v[FB_MT_N];

    for (int col = 0; col < FB_MT_N; col++)
        other_counted |= fb_metrics_tenant_sum(m, other, (fb_mt_t)col) != 0;
    family(b, "fbpipe_tenant_events_total", "counter",
           "Events of a tenant by stage: received, acked, refused (by a worker), in_kafka, "
           "written, dead_lettered, spooled (by a router).");
    for (unsigned t = 0; t < named + other_counted; t++) {
        unsigned num = t < named ? t : other;
        for (int col = 0; col < FB_MT_STAGES; col++) {
            v[col] = fb_metrics_tenant_sum(m, num, (fb_mt_t)col);
            fb_mbuf_printf(b, "fbpipe_tenant_events_total");
            tenant_label(b, m, t);
            fb_mbuf_printf(b, ",stage=\"%s\"} %" PRIu64 "\n", stage_names[col], v[col]);
        }
    }
    family(b, "fbpipe_tenant_bytes_total", "counter",
           "Bytes of a tenant: payload received by a worker, lines written by a router.");
    for (unsigned t = 0; t < named + other_counted; t++) {
        unsigned num = t < named ? t : other;
        for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
            fb_mbuf_printf(b, "fbpipe_tenant_bytes_total");
            tenant_label(b, m, t);
            fb_mbuf_printf(b, ",stage=\"%s\"} %" PRIu64 "\n", bytes_names[i],
                           fb_metrics_tenant_sum(m, num, bytes[i]));
        }
    }
}

/* role_max -- the largest of one gauge over the slots of role: what
 * every such process measures alike (the routers' shared spool). */
static uint64_t
role_max(const fb_metrics_t *m, fb_mrole_t role, fb_mc_t c)
{
    uint64_t max = 0;

    for (unsigned i = 0; i < fb_metrics_slots(m, role); i++) {
        uint64_t v = fb_metrics_get(m, role, i, c);
        max = v > max ? v : max;
    }
    return max;
}

/* partition_lags -- one series per partition a router holds: its lag
 * (the zone keeps 1 + lag; two routers claim one partition only for the
 * moments of a rebalance, and the larger figure is shown). */
static void
partition_lags(fb_mbuf_t *b, const fb_metrics_t *m)
{
    family(b, "fbpipe_router_partition_lag", "gauge",
           "Records behind the end of a partition a router holds, by partition.");
    for (int p = 0; p < FB_METRICS_PARTITIONS; p++) {
        uint64_t v = role_max(m, FB_MROLE_ROUTER, (fb_mc_t)(FB_MC_PARTITION_LAG + p));
        if (v > 0)
            fb_mbuf_printf(b, "fbpipe_router_partition_lag{partition=\"%d\"} %" PRIu64 "\n", p,
                           v - 1);
    }
}

/* fb_metrics_render -- every series of the zone (fbpiped(8), METRICS). */
int
fb_metrics_render(const fb_metrics_t *m, fb_mbuf_t *out)
{
    static const fb_mc_t refused[] = {FB_MC_EVENTS_REFUSED_INVALID, FB_MC_EVENTS_REFUSED_WRONG_KEY,
                                      FB_MC_EVENTS_REFUSED_TOO_LARGE};
    static const char *const refused_names[] = {"invalid", "wrong_key", "too_large"};
    static const fb_mc_t dead[] = {FB_MC_DEAD_LETTERS_UNREADABLE, FB_MC_DEAD_LETTERS_REFUSED,
                                   FB_MC_DEAD_LETTERS_TARGET};
    static const char *const dead_names[] = {"unreadable", "refused", "target"};
    fb_mc_t auth[FB_AUTH_N_ERRS];
    const char *auth_names[FB_AUTH_N_ERRS];
    unsigned lanes = fb_metrics_slots(m, FB_MROLE_WORKER);

    family(out, "fbpipe_build_info", "gauge", "The version of fbpiped, as a label; always 1.");
    fb_mbuf_printf(out, "fbpipe_build_info{version=\"");
    fb_metrics_label_escape(out, PACKAGE_VERSION);
    fb_mbuf_printf(out, "\"} 1\n");
    family(out, "fbpipe_start_time_seconds", "gauge", "When the master started (Unix time).");
    fb_mbuf_printf(out, "fbpipe_start_time_seconds %" PRId64 "\n", fb_metrics_started(m));

    /* worker */
    counter(out, m, "fbpipe_calls_total", "Calls the workers accepted (every method).",
            FB_MC_CALLS);
    counter(out, m, "fbpipe_events_received_total", "Events of accepted batches and streams.",
            FB_MC_EVENTS_RECEIVED);
    counter(out, m, "fbpipe_bytes_received_total", "Payload bytes of the events received.",
            FB_MC_BYTES_RECEIVED);
    counter(out, m, "fbpipe_events_acked_total", "Events answered OK to the agent.",
            FB_MC_EVENTS_ACKED);
    by_reason(out, m, "fbpipe_events_refused_total",
              "Events refused for what they are: invalid, another tenant's key (wrong_key), "
              "larger than the topic takes (too_large).",
              refused, refused_names, 3);
    counter(out, m, "fbpipe_events_retry_total",
            "Events answered RETRY (full ring, revoked key, stopping).", FB_MC_EVENTS_RETRY);
    for (int i = 1; i < FB_AUTH_N_ERRS; i++) {
        auth[i - 1] = (fb_mc_t)(FB_MC_AUTH_REFUSED + i);
        auth_names[i - 1] = fb_auth_err_name((fb_auth_err_t)i);
    }
    by_reason(out, m, "fbpipe_auth_refusals_total", "Calls refused by authentication, by reason.",
              auth, auth_names, FB_AUTH_N_ERRS - 1);
    family(out, "fbpipe_ring_lane_fill_bytes", "gauge", "Bytes of a worker's ring lane in use.");
    for (unsigned l = 0; l < lanes; l++)
        fb_mbuf_printf(out, "fbpipe_ring_lane_fill_bytes{lane=\"%u\"} %" PRIu64 "\n", l,
                       fb_metrics_get(m, FB_MROLE_WORKER, l, FB_MC_RING_FILL));
    family(out, "fbpipe_ring_lane_size_bytes", "gauge", "The size of a worker's ring lane.");
    for (unsigned l = 0; l < lanes; l++)
        fb_mbuf_printf(out, "fbpipe_ring_lane_size_bytes{lane=\"%u\"} %" PRIu64 "\n", l,
                       fb_metrics_get(m, FB_MROLE_WORKER, l, FB_MC_RING_SIZE));
    role_gauge(out, m, "fbpipe_workers_serving", "Workers taking calls.", FB_MROLE_WORKER,
               FB_MC_SERVING);

    /* producer */
    counter(out, m, "fbpipe_kafka_records_delivered_total", "Records Kafka acknowledged.",
            FB_MC_RECORDS_DELIVERED);
    counter(out, m, "fbpipe_kafka_bytes_delivered_total", "Bytes of the records delivered.",
            FB_MC_BYTES_DELIVERED);
    counter(out, m, "fbpipe_kafka_delivery_errors_total",
            "Delivery reports with an error (the records are retried).", FB_MC_DELIVERY_ERRORS);
    role_gauge(out, m, "fbpipe_kafka_in_flight",
               "Records handed to librdkafka and not yet acknowledged.", FB_MROLE_PRODUCER,
               FB_MC_IN_FLIGHT);
    role_gauge(out, m, "fbpipe_kafka_up", "1 when a broker answered within the last 10 s.",
               FB_MROLE_PRODUCER, FB_MC_KAFKA_UP);
    histogram(out, m, "fbpipe_kafka_delivery_latency_seconds",
              "From a record's hand-over to librdkafka to Kafka's acknowledgement, per record.", FB_MC_DELIVERY_LATENCY);

    /* router */
    counter(out, m, "fbpipe_router_records_written_total", "Records the routers wrote to files.",
            FB_MC_RECORDS_WRITTEN);
    counter(out, m, "fbpipe_router_bytes_written_total", "Bytes the routers wrote to files.",
            FB_MC_BYTES_WRITTEN);
    by_reason(out, m, "fbpipe_router_dead_letters_total",
              "Records sent to the dead letters: not a record or not decryptable (unreadable), "
              "a key whose file may not be written or named (refused), refused by a remote "
              "target for itself (target).",
              dead, dead_names, 3);
    counter(out, m, "fbpipe_router_spooled_total",
            "Lines put aside in the spool for a key whose file refused them.", FB_MC_SPOOLED);
    counter(out, m, "fbpipe_router_rotations_total", "Files rotated.", FB_MC_ROTATIONS);
    counter(out, m, "fbpipe_router_duplicates_dropped_total",
            "router.dedupe: records not written again, their file holding their line.",
            FB_MC_DUPLICATES_DROPPED);
    counter(out, m, "fbpipe_router_dedupe_unidentified_total",
            "router.dedupe: records written without an identity (original API, agents "
            "without an epoch): at least once.", FB_MC_DEDUPE_NO_ID);
    counter(out, m, "fbpipe_router_dedupe_loads_total",
            "router.dedupe: keys' sets loaded from the tails of their files.",
            FB_MC_DEDUPE_LOADS);
    role_gauge(out, m, "fbpipe_router_dedupe_memory_bytes",
               "router.dedupe: bytes the sets of identities use.", FB_MROLE_ROUTER,
               FB_MC_DEDUPE_MEMORY);
    role_gauge(out, m, "fbpipe_router_files_open", "Output files open.", FB_MROLE_ROUTER,
               FB_MC_FILES_OPEN);
    role_gauge(out, m, "fbpipe_router_consumer_lag",
               "Records behind the ends of the assigned partitions.", FB_MROLE_ROUTER,
               FB_MC_CONSUMER_LAG);
    partition_lags(out, m);
    role_gauge(out, m, "fbpipe_router_partitions_assigned", "Partitions assigned to the routers.",
               FB_MROLE_ROUTER, FB_MC_ASSIGNED);
    family(out, "fbpipe_router_spool_bytes", "gauge",
           "Bytes put aside in the spool, waiting for their keys' files.");
    fb_mbuf_printf(out, "fbpipe_router_spool_bytes %" PRIu64 "\n",
                   role_max(m, FB_MROLE_ROUTER, FB_MC_SPOOL_BYTES));
    family(out, "fbpipe_router_spool_files", "gauge", "Files in the spool (one per key).");
    fb_mbuf_printf(out, "fbpipe_router_spool_files %" PRIu64 "\n",
                   role_max(m, FB_MROLE_ROUTER, FB_MC_SPOOL_FILES));
    histogram(out, m, "fbpipe_router_fsync_latency_seconds", "How long a router's fsync took.",
              FB_MC_FSYNC_LATENCY);
    counter(out, m, "fbpipe_router_target_records_delivered_total",
            "Records remote targets (s3, elasticsearch, http) acknowledged.",
            FB_MC_TARGET_DELIVERED);
    counter(out, m, "fbpipe_router_target_failures_total",
            "Attempts of remote targets that failed and are retried.", FB_MC_TARGET_FAILURES);
    role_gauge(out, m, "fbpipe_router_target_records_pending",
               "Records the routers hold for remote targets (their offsets not stored).",
               FB_MROLE_ROUTER, FB_MC_TARGET_PENDING);
    role_gauge(out, m, "fbpipe_router_targets_failing",
               "Remote targets failing now, summed over the routers.", FB_MROLE_ROUTER,
               FB_MC_TARGET_FAILING);

    /* master */
    by_role(out, m, "fbpipe_child_starts_total", "Children the master started, by role.",
            FB_MC_CHILD_STARTS);
    child_exits(out, m);

    tenants(out, m);
    return out->failed ? -1 : 0;
}

/* fb_metrics_ready -- see metrics_render.h. */
int
fb_metrics_ready(const fb_metrics_t *m, bool ingester, bool routers, char *why, size_t cap)
{
    const char *no[3];
    size_t n = 0, off = 0;
    bool serving = false, assigned = false;

    if (ingester) {
        for (unsigned i = 0; i < fb_metrics_slots(m, FB_MROLE_WORKER); i++)
            serving |= fb_metrics_get(m, FB_MROLE_WORKER, i, FB_MC_SERVING) == 1;
        if (!serving)
            no[n++] = "no worker is serving";
        if (fb_metrics_get(m, FB_MROLE_PRODUCER, 0, FB_MC_KAFKA_UP) != 1)
            no[n++] = "Kafka is not up (no broker answered the producer within 10 s)";
    }
    if (routers) {
        for (unsigned i = 0; i < fb_metrics_slots(m, FB_MROLE_ROUTER); i++)
            assigned |= fb_metrics_get(m, FB_MROLE_ROUTER, i, FB_MC_ASSIGNED) > 0;
        if (!assigned)
            no[n++] = "no router has a partition assigned";
    }
    if (cap > 0)
        why[0] = '\0';
    for (size_t i = 0; i < n && off < cap; i++) {
        int w = snprintf(why + off, cap - off, "%s%s", i ? "; " : "not ready: ", no[i]);
        off += w > 0 ? (size_t)w : 0;
    }
    return n == 0;
}
