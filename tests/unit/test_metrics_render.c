/*
 * test_metrics_render.c -- the metrics zone as Prometheus text: exact
 * sample lines for counters summed over slots, gauges per lane and per
 * role, reasons, child roles and tenants; histograms made cumulative,
 * in seconds, with _count equal to the +Inf bucket; "_other" only once it
 * counted; label values escaped; every sample under its own HELP and TYPE;
 * and the readiness verdict of /readyz.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config.h"

#include "common/auth.h"
#include "common/metrics.h"
#include "helpers.h"
#include "metrics/metrics_render.h"

TestSuite(metrics_render, .init = test_setup, .fini = test_teardown);

/* has_line -- text holds line as a whole line. */
static bool
has_line(const char *text, const char *line)
{
    size_t len = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[len] == '\n')
            return true;
    return false;
}

/* render -- the zone's text (the caller frees it). */
static char *
render(const fb_metrics_t *m)
{
    fb_mbuf_t b = {0};

    cr_assert_eq(fb_metrics_render(m, &b), 0);
    cr_assert_not_null(b.text.data);
    cr_assert_eq(strlen(b.text.data), b.text.len);
    return b.text.data;
}

#define LINE(text, line) cr_assert(has_line(text, line), "no line \"%s\" in:\n%s", line, text)
#define NO_LINE(text, s) cr_assert(strstr(text, s) == NULL, "\"%s\" in:\n%s", s, text)

Test(metrics_render, label_escape)
{
    fb_mbuf_t b = {0};

    fb_metrics_label_escape(&b, "plain-key_1.x");
    cr_assert_str_eq(b.text.data, "plain-key_1.x");
    fb_mbuf_free(&b);
    fb_metrics_label_escape(&b, "a\\b\"c\nd\\");
    cr_assert_str_eq(b.text.data, "a\\\\b\\\"c\\nd\\\\");
    fb_mbuf_free(&b);
    fb_metrics_label_escape(&b, "\"\"\n\n");
    cr_assert_str_eq(b.text.data, "\\\"\\\"\\n\\n");
    fb_mbuf_free(&b);
    fb_mbuf_put(&b, "", 0);
    fb_metrics_label_escape(&b, "");
    cr_assert_str_eq(b.text.data, "", "an empty value is an empty text");
    cr_assert_eq(b.text.len, 0);
    fb_mbuf_free(&b);
}

Test(metrics_render, counters_gauges_and_roles)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 3, 2, 1);
    const char *keys[] = {"acme", "beta"};
    char line[128], *text;

    cr_assert_not_null(m, "%s", test_log_buf);
    fb_metrics_name_tenants(m, keys, 2);
    fb_mslot_t *w0 = fb_metrics_slot(m, FB_MROLE_WORKER, 0);
    fb_mslot_t *w1 = fb_metrics_slot(m, FB_MROLE_WORKER, 1);
    fb_mslot_t *p = fb_metrics_slot(m, FB_MROLE_PRODUCER, 0);
    fb_mslot_t *r = fb_metrics_slot(m, FB_MROLE_ROUTER, 0);
    fb_mslot_t *master = fb_metrics_slot(m, FB_MROLE_MASTER, 0);
    fb_metrics_add(w0, FB_MC_CALLS, 5);
    fb_metrics_add(w1, FB_MC_CALLS, 2);
    fb_metrics_add(w1, FB_MC_EVENTS_REFUSED_WRONG_KEY, 3);
    fb_metrics_add(w0, (fb_mc_t)(FB_MC_AUTH_REFUSED + FB_AUTH_ERR_EXPIRED), 4);
    fb_metrics_add(w1, (fb_mc_t)(FB_MC_AUTH_REFUSED + FB_AUTH_ERR_EXPIRED), 1);
    fb_metrics_set(w0, FB_MC_RING_SIZE, 1000);
    fb_metrics_set(w1, FB_MC_RING_SIZE, 1000);
    fb_metrics_set(w1, FB_MC_RING_FILL, 100);
    fb_metrics_set(w0, FB_MC_SERVING, 1);
    fb_metrics_set(w1, FB_MC_SERVING, 1);
    fb_metrics_add(p, FB_MC_RECORDS_DELIVERED, 42);
    fb_metrics_set(p, FB_MC_KAFKA_UP, 1);
    fb_metrics_add(r, FB_MC_DEAD_LETTERS_REFUSED, 6);
    fb_metrics_set(r, FB_MC_ASSIGNED, 4);
    fb_metrics_add(master, (fb_mc_t)(FB_MC_CHILD_STARTS + FB_MROLE_WORKER), 2);
    fb_metrics_add(master, (fb_mc_t)(FB_MC_CHILD_STARTS + FB_MROLE_METRICS), 1);
    fb_metrics_add(master,
                   (fb_mc_t)(FB_MC_CHILD_EXITS + FB_MROLE_ROUTER * FB_MEXIT_N + FB_MEXIT_CRASH), 1);
    fb_metrics_add(master,
                   (fb_mc_t)(FB_MC_CHILD_EXITS + FB_MROLE_WORKER * FB_MEXIT_N + FB_MEXIT_MEMORY),
                   3);
    fb_metrics_tenant_add(w0, 0, FB_MT_RECEIVED, 10);
    fb_metrics_tenant_add(w1, 0, FB_MT_RECEIVED, 1);
    fb_metrics_tenant_add(w0, 0, FB_MT_ACKED, 9);
    fb_metrics_tenant_add(p, 1, FB_MT_IN_KAFKA, 7);
    text = render(m);

    snprintf(line, sizeof(line), "fbpipe_build_info{version=\"%s\"} 1", PACKAGE_VERSION);
    LINE(text, line);
    snprintf(line, sizeof(line), "fbpipe_start_time_seconds %lld",
             (long long)fb_metrics_started(m));
    LINE(text, line);
    LINE(text, "# HELP fbpipe_calls_total Calls the workers accepted (every method).");
    LINE(text, "# TYPE fbpipe_calls_total counter");
    LINE(text, "fbpipe_calls_total 7");
    LINE(text, "fbpipe_events_refused_total{reason=\"invalid\"} 0");
    LINE(text, "fbpipe_events_refused_total{reason=\"wrong_key\"} 3");
    LINE(text, "fbpipe_events_refused_total{reason=\"too_large\"} 0");
    LINE(text, "fbpipe_auth_refusals_total{reason=\"expired\"} 5");
    LINE(text, "fbpipe_auth_refusals_total{reason=\"bad_signature\"} 0");
    LINE(text, "fbpipe_auth_refusals_total{reason=\"internal\"} 0");
    NO_LINE(text, "reason=\"ok\"");
    LINE(text, "# TYPE fbpipe_ring_lane_fill_bytes gauge");
    LINE(text, "fbpipe_ring_lane_fill_bytes{lane=\"0\"} 0");
    LINE(text, "fbpipe_ring_lane_fill_bytes{lane=\"1\"} 100");
    LINE(text, "fbpipe_ring_lane_size_bytes{lane=\"1\"} 1000");
    LINE(text, "fbpipe_workers_serving 2");
    LINE(text, "fbpipe_kafka_records_delivered_total 42");
    LINE(text, "# TYPE fbpipe_kafka_up gauge");
    LINE(text, "fbpipe_kafka_up 1");
    LINE(text, "fbpipe_router_dead_letters_total{reason=\"unreadable\"} 0");
    LINE(text, "fbpipe_router_dead_letters_total{reason=\"refused\"} 6");
    LINE(text, "fbpipe_router_partitions_assigned 4");
    LINE(text, "fbpipe_child_starts_total{role=\"producer\"} 0");
    LINE(text, "fbpipe_child_starts_total{role=\"worker\"} 2");
    LINE(text, "fbpipe_child_starts_total{role=\"metrics\"} 1");
    LINE(text, "fbpipe_child_exits_total{role=\"router\",reason=\"crash\"} 1");
    LINE(text, "fbpipe_child_exits_total{role=\"router\",reason=\"not_ready\"} 0");
    LINE(text, "fbpipe_child_exits_total{role=\"worker\",reason=\"memory_limit\"} 3");
    LINE(text, "fbpipe_child_exits_total{role=\"worker\",reason=\"crash\"} 0");
    NO_LINE(text, "fbpipe_child_crashes_total");
    NO_LINE(text, "role=\"master\"");
    LINE(text, "# TYPE fbpipe_tenant_events_total counter");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"acme\",stage=\"received\"} 11");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"acme\",stage=\"acked\"} 9");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"acme\",stage=\"spooled\"} 0");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"beta\",stage=\"in_kafka\"} 7");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"beta\",stage=\"dead_lettered\"} 0");
    NO_LINE(text, "_other");
    free(text);

    /* a key the zone does not name counts as _other, which appears */
    fb_metrics_tenant_add(r, fb_metrics_tenant(m, "zeta", 4), FB_MT_WRITTEN, 2);
    text = render(m);
    LINE(text, "fbpipe_tenant_events_total{tenant=\"_other\",stage=\"written\"} 2");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"_other\",stage=\"received\"} 0");
    LINE(text, "fbpipe_tenant_bytes_total{tenant=\"_other\",stage=\"written\"} 0");
    free(text);
    fb_metrics_free(m);
}

/* Bytes per tenant, the routers' partitions each with its lag (only
 * those a router holds; the larger figure while two claim one), and the
 * spool the routers all look at (shown once, not summed). */
Test(metrics_render, tenant_bytes_partitions_and_spool)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 2, 1, 2);
    const char *keys[] = {"acme"};
    fb_mslot_t *w = fb_metrics_slot(m, FB_MROLE_WORKER, 0);
    fb_mslot_t *r0 = fb_metrics_slot(m, FB_MROLE_ROUTER, 0);
    fb_mslot_t *r1 = fb_metrics_slot(m, FB_MROLE_ROUTER, 1);
    char *text;

    fb_metrics_name_tenants(m, keys, 1);
    fb_metrics_tenant_add(w, 0, FB_MT_BYTES_RECEIVED, 1234);
    fb_metrics_tenant_add(r0, 0, FB_MT_BYTES_WRITTEN, 1000);
    fb_metrics_tenant_add(r1, 0, FB_MT_BYTES_WRITTEN, 500);
    fb_metrics_set(r0, (fb_mc_t)(FB_MC_PARTITION_LAG + 0), 1);  /* held, nothing behind */
    fb_metrics_set(r0, (fb_mc_t)(FB_MC_PARTITION_LAG + 3), 11); /* 10 behind */
    fb_metrics_set(r1, (fb_mc_t)(FB_MC_PARTITION_LAG + 3), 4);  /* a rebalance: 3 */
    fb_metrics_set(r1, (fb_mc_t)(FB_MC_PARTITION_LAG + FB_METRICS_PARTITIONS - 1), 8);
    fb_metrics_set(r0, FB_MC_SPOOL_BYTES, 700);
    fb_metrics_set(r1, FB_MC_SPOOL_BYTES, 650); /* looked a moment earlier */
    fb_metrics_set(r0, FB_MC_SPOOL_FILES, 2);
    fb_metrics_set(r1, FB_MC_SPOOL_FILES, 2);
    text = render(m);
    LINE(text, "fbpipe_tenant_bytes_total{tenant=\"acme\",stage=\"received\"} 1234");
    LINE(text, "fbpipe_tenant_bytes_total{tenant=\"acme\",stage=\"written\"} 1500");
    LINE(text, "# TYPE fbpipe_router_partition_lag gauge");
    LINE(text, "fbpipe_router_partition_lag{partition=\"0\"} 0");
    LINE(text, "fbpipe_router_partition_lag{partition=\"3\"} 10");
    LINE(text, "fbpipe_router_partition_lag{partition=\"255\"} 7");
    NO_LINE(text, "fbpipe_router_partition_lag{partition=\"1\"}");
    LINE(text, "fbpipe_router_spool_bytes 700");
    LINE(text, "fbpipe_router_spool_files 2");
    free(text);
    /* a router that died holds nothing any more; the spool is what the
     * live one saw */
    fb_metrics_forget(r1, FB_MROLE_ROUTER);
    text = render(m);
    NO_LINE(text, "fbpipe_router_partition_lag{partition=\"255\"}");
    LINE(text, "fbpipe_router_partition_lag{partition=\"3\"} 10");
    LINE(text, "fbpipe_router_spool_bytes 700");
    free(text);
    /* and once none is left, a stale figure does not outlive them: a
     * live router's 0 is never hidden behind a dead one's last look */
    fb_metrics_forget(r0, FB_MROLE_ROUTER);
    text = render(m);
    LINE(text, "fbpipe_router_spool_bytes 0");
    LINE(text, "fbpipe_router_spool_files 0");
    free(text);
    fb_metrics_free(m);
}

Test(metrics_render, histograms_cumulative_in_seconds)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 1, 1, 2);
    fb_mslot_t *p = fb_metrics_slot(m, FB_MROLE_PRODUCER, 0);
    fb_mslot_t *r0 = fb_metrics_slot(m, FB_MROLE_ROUTER, 0);
    fb_mslot_t *r1 = fb_metrics_slot(m, FB_MROLE_ROUTER, 1);
    char *text;

    fb_metrics_observe(p, FB_MC_DELIVERY_LATENCY, 1000);     /* le 0.001 */
    fb_metrics_observe(p, FB_MC_DELIVERY_LATENCY, 1001);     /* le 0.0025 */
    fb_metrics_observe(p, FB_MC_DELIVERY_LATENCY, 2000000);  /* le 5 */
    fb_metrics_observe(p, FB_MC_DELIVERY_LATENCY, 99000000); /* +Inf */
    fb_metrics_observe(r0, FB_MC_FSYNC_LATENCY, 30000);      /* le 0.05, two routers */
    fb_metrics_observe(r1, FB_MC_FSYNC_LATENCY, 40000);
    text = render(m);
    LINE(text, "# TYPE fbpipe_kafka_delivery_latency_seconds histogram");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_bucket{le=\"0.001\"} 1");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_bucket{le=\"0.0025\"} 2");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_bucket{le=\"0.005\"} 2");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_bucket{le=\"0.25\"} 2");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_bucket{le=\"1\"} 2");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_bucket{le=\"5\"} 3");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_bucket{le=\"+Inf\"} 4");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_sum 101.002001");
    LINE(text, "fbpipe_kafka_delivery_latency_seconds_count 4");
    LINE(text, "fbpipe_router_fsync_latency_seconds_bucket{le=\"0.025\"} 0");
    LINE(text, "fbpipe_router_fsync_latency_seconds_bucket{le=\"0.05\"} 2");
    LINE(text, "fbpipe_router_fsync_latency_seconds_bucket{le=\"+Inf\"} 2");
    LINE(text, "fbpipe_router_fsync_latency_seconds_sum 0.07");
    LINE(text, "fbpipe_router_fsync_latency_seconds_count 2");
    /* FB_MHIST_BUCKETS buckets each */
    size_t n = 0;
    for (const char *s = text; (s = strstr(s, "fbpipe_kafka_delivery_latency_seconds_bucket{"));
         s++)
        n++;
    cr_assert_eq(n, FB_MHIST_BUCKETS);
    free(text);
    fb_metrics_free(m);
}

/* Names a label must escape, through the renderer: the zone takes any
 * name, though the master names only access keys ([A-Za-z0-9._-]). */
Test(metrics_render, tenant_names_escaped)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 4, 1, 1);
    const char *keys[] = {"we\"ird", "back\\slash", "new\nline"};
    char *text;

    fb_metrics_name_tenants(m, keys, 3);
    cr_assert_eq(fb_metrics_tenants(m), 3);
    text = render(m);
    LINE(text, "fbpipe_tenant_events_total{tenant=\"we\\\"ird\",stage=\"received\"} 0");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"back\\\\slash\",stage=\"acked\"} 0");
    LINE(text, "fbpipe_tenant_events_total{tenant=\"new\\nline\",stage=\"written\"} 0");
    NO_LINE(text, "new\nline");
    free(text);
    fb_metrics_free(m);
}

/* Every sample follows the HELP and TYPE of its family, every family
 * appears once, every line ends; with many tenants the text grows far
 * past the buffer's first size. */
Test(metrics_render, well_formed_and_grows)
{
    enum { TENANTS = 2000 };
    fb_metrics_t *m = fb_metrics_create(NULL, TENANTS, 4, 2);
    static char names[TENANTS][16];
    const char *keys[TENANTS];
    char family[128] = "", seen[64][128], *text, *save = NULL;
    size_t samples = 0, tenant_lines = 0, types = 0;

    for (int i = 0; i < TENANTS; i++) {
        snprintf(names[i], sizeof(names[i]), "tenant-%04d", i);
        keys[i] = names[i];
    }
    fb_metrics_name_tenants(m, keys, TENANTS);
    text = render(m);
    cr_assert(strlen(text) > 100000);
    cr_assert_eq(text[strlen(text) - 1], '\n');
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        char name[128], type[32];
        if (sscanf(l, "# TYPE %127s %31s", name, type) == 2) {
            for (size_t i = 0; i < types; i++)
                cr_assert(strcmp(seen[i], name) != 0, "family %s twice", name);
            cr_assert_lt(types, 64);
            snprintf(seen[types++], sizeof(seen[0]), "%s", name);
            snprintf(family, sizeof(family), "%s", name);
            continue;
        }
        if (l[0] == '#') {
            cr_assert(strncmp(l, "# HELP fbpipe_", 14) == 0, "%s", l);
            continue;
        }
        /* a sample: its family's name, maybe a suffix, labels, a value */
        cr_assert(strncmp(l, family, strlen(family)) == 0, "%s outside its family %s", l, family);
        cr_assert(strchr(l, ' ') != NULL, "%s", l);
        samples++;
        tenant_lines += strncmp(l, "fbpipe_tenant_events_total{", 27) == 0;
        tenant_lines += strncmp(l, "fbpipe_tenant_bytes_total{", 26) == 0;
    }
    /* every stage of the ledger and the two byte counts, per tenant */
    cr_assert_eq(tenant_lines, (size_t)TENANTS * FB_MT_N);
    cr_assert_gt(types, 30);
    cr_assert_gt(samples, tenant_lines);
    free(text);
    fb_metrics_free(m);
}

Test(metrics_render, readiness)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 1, 3, 2);
    char why[256];

    cr_assert_eq(fb_metrics_ready(m, false, false, why, sizeof(why)), 1, "nothing to wait for");
    cr_assert_str_eq(why, "");
    cr_assert_eq(fb_metrics_ready(m, true, true, why, sizeof(why)), 0);
    cr_assert_str_eq(why, "not ready: no worker is serving; Kafka is not up (no broker answered "
                          "the producer within 10 s); no router has a partition assigned");
    fb_metrics_set(fb_metrics_slot(m, FB_MROLE_WORKER, 2), FB_MC_SERVING, 1);
    cr_assert_eq(fb_metrics_ready(m, true, false, why, sizeof(why)), 0);
    cr_assert_str_eq(why, "not ready: Kafka is not up (no broker answered the producer within "
                          "10 s)");
    fb_metrics_set(fb_metrics_slot(m, FB_MROLE_PRODUCER, 0), FB_MC_KAFKA_UP, 1);
    cr_assert_eq(fb_metrics_ready(m, true, false, why, sizeof(why)), 1, "%s", why);
    cr_assert_eq(fb_metrics_ready(m, true, true, why, sizeof(why)), 0);
    cr_assert_str_eq(why, "not ready: no router has a partition assigned");
    fb_metrics_set(fb_metrics_slot(m, FB_MROLE_ROUTER, 1), FB_MC_ASSIGNED, 3);
    cr_assert_eq(fb_metrics_ready(m, true, true, why, sizeof(why)), 1, "%s", why);
    /* a worker no longer serving: not ready again */
    fb_metrics_set(fb_metrics_slot(m, FB_MROLE_WORKER, 2), FB_MC_SERVING, 0);
    cr_assert_eq(fb_metrics_ready(m, true, true, why, sizeof(why)), 0);
    cr_assert_str_eq(why, "not ready: no worker is serving");
    /* a short buffer holds a cut line, never more */
    cr_assert_eq(fb_metrics_ready(m, true, true, why, 8), 0);
    cr_assert_str_eq(why, "not rea");
    fb_metrics_free(m);
}
