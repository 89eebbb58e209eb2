/*
 * master_ledger.c -- `fbpiped ledger`: where each tenant's events are, from
 * the metrics zone of a running daemon (beside its pid file, -p, or the
 * configuration's main.pid_file): one row per tenant (the named ones, then
 * "_other" when it counted anything) with its columns (received, acked,
 * refused, in_kafka, written, dead_lettered, spooled) and two gaps: acked
 * and not yet in Kafka, in Kafka and not yet written, dead-lettered or
 * spooled; then a TOTAL row. --json prints the same as one JSON object.
 *
 * A command, not a role: it maps the zone read only and must never write
 * to it, signal the daemon, start anything or open a socket; it reads the
 * configuration only to find the pid file.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "master/master.h"

#define LEDGER_PATH_MAX 4096

/* the columns: the zone's stages (fb_mt_t order), then the two gaps */
enum { COL_NOT_IN_KAFKA = FB_MT_STAGES, COL_NOT_WRITTEN, COL_N };

#define ledger_err(...) fb_cmd_err("ledger", __VA_ARGS__)
static const char *const col_names[COL_N] = {
    [FB_MT_RECEIVED] = "received",         [FB_MT_ACKED] = "acked",
    [FB_MT_REFUSED] = "refused",           [FB_MT_IN_KAFKA] = "in_kafka",
    [FB_MT_WRITTEN] = "written",           [FB_MT_DEAD_LETTERED] = "dead_lettered",
    [FB_MT_SPOOLED] = "spooled",           [COL_NOT_IN_KAFKA] = "not_yet_in_kafka",
    [COL_NOT_WRITTEN] = "not_yet_written",
};

/* One row. Gaps are signed: a later stage may have counted more than an
 * earlier one (an event acknowledged after Kafka took it; a router that
 * writes records produced before this daemon started). */
typedef struct row {
    const char *tenant;
    int64_t v[COL_N];
} row_t;

static void ledger_usage(FILE *fp);
static void ledger_sink(fb_log_level_t level, const char *msg, void *arg);
static void row_fill(row_t *r, const fb_metrics_t *m, unsigned t, const char *name);
static void row_gaps(row_t *r);
static int print_table(const row_t *rows, size_t n);
static int print_json(const fb_metrics_t *m, const row_t *rows, size_t n);

/* ledger_usage -- the synopsis of `fbpiped ledger`. */
static void
ledger_usage(FILE *fp)
{
    fprintf(fp,
            "usage: fbpiped ledger [--json] [-c FILE] [-p PIDFILE]\n"
            "  -c FILE       configuration file (default %s/fbpipe.conf): its main.pid_file\n"
            "  -p PIDFILE    the running daemon's pid file (overrides main.pid_file)\n"
            "  --json        one JSON object instead of the table\n",
            FB_SYSCONFDIR);
}

/* ledger_sink -- the log lines of the modules used here, one line each on stderr. */
static void
ledger_sink(fb_log_level_t level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    fprintf(stderr, "fbpiped ledger: %s\n", msg);
}


/* row_fill -- tenant number t's columns, summed over the zone's slots. */
static void
row_fill(row_t *r, const fb_metrics_t *m, unsigned t, const char *name)
{
    r->tenant = name;
    for (int c = 0; c < FB_MT_STAGES; c++)
        r->v[c] = (int64_t)fb_metrics_tenant_sum(m, t, (fb_mt_t)c);
    row_gaps(r);
}

/* row_gaps -- the two gaps from the zone's columns. */
static void
row_gaps(row_t *r)
{
    r->v[COL_NOT_IN_KAFKA] = r->v[FB_MT_ACKED] - r->v[FB_MT_IN_KAFKA];
    r->v[COL_NOT_WRITTEN] = r->v[FB_MT_IN_KAFKA] - r->v[FB_MT_WRITTEN] - r->v[FB_MT_DEAD_LETTERED] -
                            r->v[FB_MT_SPOOLED];
}

/* print_table -- a header line, the rows, numbers right-aligned; 0, or
 * -1 when stdout failed. */
static int
print_table(const row_t *rows, size_t n)
{
    int wt = (int)strlen("tenant"), w[COL_N];

    for (size_t i = 0; i < n; i++)
        if ((int)strlen(rows[i].tenant) > wt)
            wt = (int)strlen(rows[i].tenant);
    for (int c = 0; c < COL_N; c++) {
        w[c] = (int)strlen(col_names[c]);
        for (size_t i = 0; i < n; i++) {
            char num[24];
            int len = snprintf(num, sizeof(num), "%" PRId64, rows[i].v[c]);
            if (len > w[c])
                w[c] = len;
        }
    }
    printf("%-*s", wt, "tenant");
    for (int c = 0; c < COL_N; c++)
        printf("  %*s", w[c], col_names[c]);
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        printf("%-*s", wt, rows[i].tenant);
        for (int c = 0; c < COL_N; c++)
            printf("  %*" PRId64, w[c], rows[i].v[c]);
        putchar('\n');
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

/* print_json -- {"pid", "started", "tenants": [{"tenant", columns...}],
 * "total": {columns...}}; rows[n - 1] is the total. 0, or -1. */
static int
print_json(const fb_metrics_t *m, const row_t *rows, size_t n)
{
    json_t *root = json_object(), *list = json_array(), *total = json_object();
    int rc = -1;

    if (root == NULL || list == NULL || total == NULL)
        goto done;
    json_object_set_new(root, "pid", json_integer(fb_metrics_pid(m)));
    json_object_set_new(root, "started", json_integer(fb_metrics_started(m)));
    for (size_t i = 0; i < n; i++) {
        json_t *o = i + 1 < n ? json_object() : total;
        if (o == NULL)
            goto done;
        if (i + 1 < n) {
            json_object_set_new(o, "tenant", json_string(rows[i].tenant));
            json_array_append_new(list, o);
        }
        for (int c = 0; c < COL_N; c++)
            json_object_set_new(o, col_names[c], json_integer(rows[i].v[c]));
    }
    json_object_set(root, "tenants", list);
    json_object_set(root, "total", total);
    if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 &&
        putchar('\n') != EOF && fflush(stdout) == 0)
        rc = 0;
done:
    json_decref(list);
    json_decref(total);
    json_decref(root);
    return rc;
}

/* fb_ledger_main -- `fbpiped ledger ...` (argv[0] is "ledger"); an FB_EXIT_* status. */
int
fb_ledger_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"pid-file", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf_path = FB_SYSCONFDIR "/fbpipe.conf", *pid_file = NULL;
    char zpath[LEDGER_PATH_MAX];
    fb_metrics_t *m = NULL;
    row_t *rows = NULL;
    bool json = false;
    unsigned named;
    size_t n = 0;
    int c, rc = FB_EXIT_FAILURE;

    fb_log_set_sink(ledger_sink, NULL);
    fb_log_set_level(FB_LOG_WARNING);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:hp:", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': conf_path = optarg; break;
        case 'p': pid_file = optarg; break;
        case 'j': json = true; break;
        case 'h': ledger_usage(stdout); return FB_EXIT_OK;
        default:
            return fb_cmd_bad_option("ledger", c, argv, ledger_usage);
        }
    }
    if (fb_cmd_no_operands("ledger", argc, argv, ledger_usage) != 0)
        return FB_EXIT_USAGE;
    if ((m = fb_cmd_zone("ledger", conf_path, pid_file, zpath, sizeof(zpath), &rc)) == NULL)
        goto done;
    if (kill((pid_t)fb_metrics_pid(m), 0) < 0 && errno == ESRCH)
        ledger_err("the fbpiped that made %s (pid %ld) is not running: these are its last "
                   "counts",
                   zpath, (long)fb_metrics_pid(m));
    /* the named tenants, _other when it counted anything, and the total */
    named = fb_metrics_tenants(m);
    if ((rows = calloc((size_t)named + 2, sizeof(*rows))) == NULL) {
        ledger_err("out of memory for %u tenants", named);
        goto done;
    }
    for (unsigned t = 0; t < named; t++)
        row_fill(&rows[n++], m, t, fb_metrics_tenant_name(m, t));
    row_fill(&rows[n], m, fb_metrics_other(m), "_other");
    for (int col = 0; col < FB_MT_STAGES; col++)
        if (rows[n].v[col] != 0) {
            n++;
            break;
        }
    rows[n].tenant = "TOTAL";
    for (size_t i = 0; i < n; i++)
        for (int col = 0; col < FB_MT_STAGES; col++)
            rows[n].v[col] += rows[i].v[col];
    row_gaps(&rows[n]);
    n++;
    if ((json ? print_json(m, rows, n) : print_table(rows, n)) < 0) {
        ledger_err("writing to standard output failed: %s", strerror(errno));
        goto done;
    }
    rc = FB_EXIT_OK;
done:
    free(rows);
    fb_metrics_free(m);
    return rc;
}
