/*
 * test_metrics.c -- the metrics zone: slots per role, counters summed over
 * them, tenants named by the master and found by every process (new names
 * after a reload included), "_other" past max_tenants, histograms, a
 * zone read by a command through its file, and files that are not zones.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/metrics.h"
#include "helpers.h"

TestSuite(metrics, .init = test_setup, .fini = test_teardown);

Test(metrics, slots_sum_and_tenants)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 3, 4, 2);
    const char *keys[] = {"acme", "beta"};
    const char *more[] = {"beta", "gamma", "delta", "zeta"};

    cr_assert_not_null(m, "%s", test_log_buf);
    cr_assert_eq(fb_metrics_slots(m, FB_MROLE_WORKER), 4);
    cr_assert_eq(fb_metrics_slots(m, FB_MROLE_ROUTER), 2);
    fb_metrics_name_tenants(m, keys, 2);
    cr_assert_eq(fb_metrics_tenants(m), 2);
    cr_assert_eq(fb_metrics_tenant(m, "acme", 4), 0);
    cr_assert_eq(fb_metrics_tenant(m, "beta", 4), 1);
    cr_assert_eq(fb_metrics_tenant(m, "acmex", 4), 0, "the length decides, not a NUL");
    cr_assert_eq(fb_metrics_tenant(m, "nope", 4), 3, "not named: _other");
    cr_assert_str_eq(fb_metrics_tenant_name(m, 3), "_other");
    cr_assert_eq(fb_metrics_other(m), 3, "_other is max_tenants, not the count of names");

    fb_mslot_t *w0 = fb_metrics_slot(m, FB_MROLE_WORKER, 0), *w3 = fb_metrics_slot(m, FB_MROLE_WORKER, 3);
    fb_mslot_t *r = fb_metrics_slot(m, FB_MROLE_ROUTER, 5); /* index modulo the routers */
    cr_assert(w0 != w3 && w0 != NULL && r == fb_metrics_slot(m, FB_MROLE_ROUTER, 1));
    fb_metrics_add(w0, FB_MC_EVENTS_RECEIVED, 10);
    fb_metrics_add(w3, FB_MC_EVENTS_RECEIVED, 5);
    fb_metrics_add(r, FB_MC_RECORDS_WRITTEN, 7);
    fb_metrics_set(w3, FB_MC_RING_FILL, 123);
    fb_metrics_set(w3, FB_MC_RING_FILL, 100);
    cr_assert_eq(fb_metrics_sum(m, FB_MC_EVENTS_RECEIVED), 15);
    cr_assert_eq(fb_metrics_role_sum(m, FB_MROLE_ROUTER, FB_MC_RECORDS_WRITTEN), 7);
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_WORKER, 3, FB_MC_RING_FILL), 100, "a gauge is set");
    fb_metrics_tenant_add(w0, 0, FB_MT_RECEIVED, 4);
    fb_metrics_tenant_add(w3, 0, FB_MT_RECEIVED, 6);
    fb_metrics_tenant_add(r, 3, FB_MT_DEAD_LETTERED, 2);
    cr_assert_eq(fb_metrics_tenant_sum(m, 0, FB_MT_RECEIVED), 10);
    cr_assert_eq(fb_metrics_tenant_sum(m, 1, FB_MT_RECEIVED), 0);
    cr_assert_eq(fb_metrics_tenant_sum(m, 3, FB_MT_DEAD_LETTERED), 2);

    /* a child counts in its slot; the master sees it; names added after
     * the fork are found by the child */
    pid_t pid = fork();
    if (pid == 0) {
        fb_mslot_t *s = fb_metrics_slot(m, FB_MROLE_PRODUCER, 0);
        while (fb_metrics_tenants(m) < 3)
            usleep(1000);
        fb_metrics_add(s, FB_MC_RECORDS_DELIVERED, 1);
        fb_metrics_tenant_add(s, fb_metrics_tenant(m, "gamma", 5), FB_MT_IN_KAFKA, 9);
        _exit(0);
    }
    fb_metrics_name_tenants(m, more, 4); /* beta named already; delta is the third, zeta too many */
    cr_assert_eq(fb_metrics_tenants(m), 3);
    cr_assert_str_eq(fb_metrics_tenant_name(m, 2), "gamma");
    cr_assert_eq(fb_metrics_tenant(m, "zeta", 4), 3);
    cr_assert(strstr(test_log_buf, "2 tenants beyond metrics.max_tenants (3)") != NULL, "%s",
              test_log_buf);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(fb_metrics_sum(m, FB_MC_RECORDS_DELIVERED), 1);
    cr_assert_eq(fb_metrics_tenant_sum(m, 2, FB_MT_IN_KAFKA), 9);
    fb_metrics_free(m);
}

Test(metrics, histogram_buckets)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 1, 1, 1);
    fb_mslot_t *p = fb_metrics_slot(m, FB_MROLE_PRODUCER, 0);

    fb_metrics_observe(p, FB_MC_DELIVERY_LATENCY, 1000);     /* le 1 ms */
    fb_metrics_observe(p, FB_MC_DELIVERY_LATENCY, 1001);     /* le 2.5 ms */
    fb_metrics_observe(p, FB_MC_DELIVERY_LATENCY, 99000000); /* +Inf */
    cr_assert_eq(fb_metrics_sum(m, FB_MC_DELIVERY_LATENCY + 0), 1);
    cr_assert_eq(fb_metrics_sum(m, FB_MC_DELIVERY_LATENCY + 1), 1);
    cr_assert_eq(fb_metrics_sum(m, FB_MC_DELIVERY_LATENCY + FB_MHIST_BUCKETS - 1), 1);
    cr_assert_eq(fb_metrics_sum(m, FB_MC_DELIVERY_LATENCY + FB_MHIST_BUCKETS), 99002001);
    cr_assert_eq(fb_metrics_sum(m, FB_MC_DELIVERY_LATENCY + FB_MHIST_BUCKETS + 1), 3);
    fb_metrics_free(m);
}

Test(metrics, a_dead_process_forgets_its_live_gauges)
{
    fb_metrics_t *m = fb_metrics_create(NULL, 1, 2, 1);
    fb_mslot_t *w1 = fb_metrics_slot(m, FB_MROLE_WORKER, 1);
    fb_mslot_t *p = fb_metrics_slot(m, FB_MROLE_PRODUCER, 0);
    fb_mslot_t *r = fb_metrics_slot(m, FB_MROLE_ROUTER, 0);

    fb_metrics_set(fb_metrics_slot(m, FB_MROLE_WORKER, 0), FB_MC_SERVING, 1);
    fb_metrics_set(w1, FB_MC_SERVING, 1);
    fb_metrics_set(w1, FB_MC_RING_FILL, 500);
    fb_metrics_add(w1, FB_MC_CALLS, 3);
    fb_metrics_set(p, FB_MC_KAFKA_UP, 1);
    fb_metrics_set(p, FB_MC_IN_FLIGHT, 9);
    fb_metrics_set(r, FB_MC_ASSIGNED, 4);
    fb_metrics_set(r, FB_MC_FILES_OPEN, 2);
    fb_metrics_set(r, FB_MC_CONSUMER_LAG, 7);
    fb_metrics_forget(w1, FB_MROLE_WORKER);
    fb_metrics_forget(p, FB_MROLE_PRODUCER);
    fb_metrics_forget(r, FB_MROLE_ROUTER);
    fb_metrics_forget(NULL, FB_MROLE_WORKER); /* no zone: nothing */
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_WORKER, 1, FB_MC_SERVING), 0);
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_WORKER, 0, FB_MC_SERVING), 1, "another lane's");
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_WORKER, 1, FB_MC_RING_FILL), 500,
                 "the lane outlives it");
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_WORKER, 1, FB_MC_CALLS), 3, "counters stay");
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_PRODUCER, 0, FB_MC_KAFKA_UP), 0);
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_PRODUCER, 0, FB_MC_IN_FLIGHT), 0);
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_ROUTER, 0, FB_MC_ASSIGNED), 0);
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_ROUTER, 0, FB_MC_FILES_OPEN), 0);
    cr_assert_eq(fb_metrics_get(m, FB_MROLE_ROUTER, 0, FB_MC_CONSUMER_LAG), 7);
    fb_metrics_free(m);
}

Test(metrics, a_command_reads_the_zone_file)
{
    char path[300];
    const char *keys[] = {"acme"};

    snprintf(path, sizeof(path), "%s/fbpiped.metrics", test_dir);
    fb_metrics_t *m = fb_metrics_create(path, 10, 2, 1);
    cr_assert_not_null(m, "%s", test_log_buf);
    fb_metrics_name_tenants(m, keys, 1);
    fb_metrics_tenant_add(fb_metrics_slot(m, FB_MROLE_WORKER, 1), 0, FB_MT_ACKED, 42);
    fb_metrics_t *r = fb_metrics_open(path);
    cr_assert_not_null(r, "%s", test_log_buf);
    cr_assert_eq(fb_metrics_tenants(r), 1);
    cr_assert_str_eq(fb_metrics_tenant_name(r, 0), "acme");
    cr_assert_eq(fb_metrics_tenant_sum(r, 0, FB_MT_ACKED), 42);
    cr_assert_eq(fb_metrics_pid(r), getpid());
    fb_metrics_free(r);
    fb_metrics_free(m);
    cr_assert_neq(access(path, F_OK), 0, "the master removes its zone");

    cr_assert_null(fb_metrics_open(path));
    cr_assert(strstr(test_log_buf, "is fbpiped running with this configuration?") != NULL);
    cr_assert_null(fb_metrics_open(test_write("short", "FBPMETR1", 0600)));
    cr_assert(strstr(test_log_buf, "not a metrics zone (8 bytes)") != NULL, "%s", test_log_buf);
    char junk[4096];
    memset(junk, 'x', sizeof(junk) - 1);
    junk[sizeof(junk) - 1] = '\0';
    cr_assert_null(fb_metrics_open(test_write("junk", junk, 0600)));
    cr_assert(strstr(test_log_buf, "not a metrics zone of this fbpiped") != NULL, "%s",
              test_log_buf);
}
