/*
 * bulk_check.c -- the router's _bulk client (src/router/router_bulk.c)
 * driven from test-opensearch-client against a real node.
 *
 * usage: bulk_check index PATTERN KEY UNIXTIME
 *            print the index name of KEY at UNIXTIME (exit 1 with why if invalid)
 *        bulk_check send URL INDEX TOPIC FIRST COUNT [--gzip] [BAD...]
 *            one bulk of COUNT documents {"n":I,"message":"document I"} with
 *            the _ids TOPIC-0-(FIRST+I); the documents at the 0-based
 *            positions BAD carry "n":"not a number" instead (the test's
 *            mapping makes n a long). Prints a line per item
 *            ("item I VERDICT STATUS TYPE"), then
 *            "result failure=F status=S ok=O retry=R refused=X" and
 *            "error: ..." when there is one.
 * Exit 0 when it could ask (whatever the verdicts), 1 on a setup error,
 * 2 on a usage error. It checks nothing itself: the test reads its output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "router/router_bulk.h"

static const char *const verdicts[] = {"ok", "retry", "refused"};
static const char *const failures[] = {"none", "network", "auth", "http", "answer", "local"};

static int
usage(void)
{
    fprintf(stderr, "usage: bulk_check index PATTERN KEY UNIXTIME\n"
                    "       bulk_check send URL INDEX TOPIC FIRST COUNT [--gzip] [BAD...]\n");
    return 2;
}

/* cmd_index -- the index name, or why not. */
static int
cmd_index(char **argv)
{
    char name[FB_BULK_INDEX_MAX + 1], err[512];

    if (fb_bulk_pattern_check(argv[0], err, sizeof(err)) < 0 ||
        fb_bulk_index_name(argv[0], argv[1], (time_t)strtoll(argv[2], NULL, 10), name, err,
                           sizeof(err)) < 0) {
        fprintf(stderr, "bulk_check: %s\n", err);
        return 1;
    }
    printf("%s\n", name);
    return 0;
}

/* is_bad -- position i is listed among the bad ones. */
static int
is_bad(long i, char **bad, int nbad)
{
    for (int k = 0; k < nbad; k++)
        if (strtol(bad[k], NULL, 10) == i)
            return 1;
    return 0;
}

/* cmd_send -- one bulk, its verdicts printed. */
static int
cmd_send(int argc, char **argv)
{
    fb_bulk_opts_t o = {.url = argv[0], .connect_timeout_ms = 5000, .timeout_ms = 30000};
    const char *index = argv[1], *topic = argv[2];
    long first = strtol(argv[3], NULL, 10), count = strtol(argv[4], NULL, 10);
    char **bad = argv + 5, err[512], id[FB_BULK_ID_MAX + 1], doc[128];
    int nbad = argc - 5, rc = 1;
    fb_bulk_body_t *body = NULL;
    fb_bulk_t *c = NULL;
    fb_bulk_result_t r;

    if (nbad > 0 && strcmp(bad[0], "--gzip") == 0) {
        o.gzip = true;
        bad++;
        nbad--;
    }
    if (count < 1 || first < 0)
        return usage();
    c = fb_bulk_new(&o, err, sizeof(err));
    body = fb_bulk_body_new();
    if (c == NULL || body == NULL) {
        fprintf(stderr, "bulk_check: %s\n", c == NULL ? err : "out of memory");
        goto out;
    }
    for (long i = 0; i < count; i++) {
        if (fb_bulk_doc_id(id, topic, 0, first + i) < 0) {
            fprintf(stderr, "bulk_check: topic too long for an _id\n");
            goto out;
        }
        if (is_bad(i, bad, nbad))
            snprintf(doc, sizeof(doc), "{\"n\":\"not a number\",\"message\":\"document %ld\"}\n",
                     i);
        else
            snprintf(doc, sizeof(doc), "{\"n\":%ld,\"message\":\"document %ld\"}\n", first + i, i);
        if (fb_bulk_body_add(body, index, id, doc, strlen(doc), err, sizeof(err)) != 0) {
            fprintf(stderr, "bulk_check: document %ld: %s\n", i, err);
            goto out;
        }
    }
    fb_bulk_send(c, body, &r);
    for (size_t i = 0; i < r.count; i++)
        printf("item %zu %s %d %s\n", i, verdicts[r.items[i].verdict], r.items[i].status,
               r.items[i].type[0] != '\0' ? r.items[i].type : "-");
    printf("result failure=%s status=%ld ok=%zu retry=%zu refused=%zu\n", failures[r.failure],
           r.http_status, r.ok, r.retry, r.refused);
    for (size_t i = 0; i < r.count; i++)
        if (r.items[i].verdict == FB_BULK_REFUSED)
            printf("refused %zu: %s: %s\n", i, r.items[i].type, r.items[i].reason);
    if (r.error[0] != '\0')
        printf("error: %s\n", r.error);
    rc = 0;
out:
    fb_bulk_free(c);
    fb_bulk_body_free(body);
    return rc;
}

int
main(int argc, char **argv)
{
    int rc;

    if (argc == 5 && strcmp(argv[1], "index") == 0)
        return cmd_index(argv + 2);
    if (argc < 7 || strcmp(argv[1], "send") != 0)
        return usage();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bulk_check: curl_global_init failed\n");
        return 1;
    }
    rc = cmd_send(argc - 2, argv + 2);
    curl_global_cleanup();
    return rc;
}
