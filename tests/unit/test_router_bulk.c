/*
 * test_router_bulk.c -- the _bulk client's pure parts: index names from
 * patterns and their validation (the pattern's fault or the key's), the
 * NDJSON body (action lines escaped by jansson and read back, documents
 * compacted, bad ones refused leaving the body as it was), verdicts from
 * canned answers (all created, 409 as stored, a mapping refusal with its
 * reason, 429/503 items retried, items missing, answers malformed or cut
 * at every byte, whole-request statuses), credentials files, the
 * client's configuration checks, and a send to a closed port.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "router/router_bulk.h"
#include "helpers.h"

static char err[512];

/* 2024-03-05 07:08:09 UTC */
#define T0 ((time_t)1709622489)

static void
curl_up(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
}

static void
curl_down(void)
{
    curl_global_cleanup();
}

/* ---- index names ------------------------------------------------------ */

static void
name_is(const char *pattern, const char *key, time_t t, const char *want)
{
    char out[FB_BULK_INDEX_MAX + 1];
    err[0] = '\0';
    cr_assert_eq(fb_bulk_pattern_check(pattern, err, sizeof(err)), 0, "%s: %s", pattern, err);
    cr_assert_eq(fb_bulk_index_name(pattern, key, t, out, err, sizeof(err)), 0, "%s: %s", pattern,
                 err);
    cr_assert_str_eq(out, want);
}

Test(index, patterns_expand)
{
    name_is("logs-{key}-%Y.%m.%d", "tenant1", T0, "logs-tenant1-2024.03.05");
    name_is("logs-{key}-%Y.%m.%d.%H", "a.b_c-d", T0, "logs-a.b_c-d-2024.03.05.07");
    name_is("{key}", "k9", T0, "k9");
    name_is("fixed", "anything", T0, "fixed");
    name_is("x-%%-%Y", "k", 0, "x-%-1970");
    name_is("{key}-{key}", "ab", T0, "ab-ab");
    name_is(".hidden-{key}", "k", T0, ".hidden-k");
    name_is("y%Y", "k", (time_t)253402300799, "y9999"); /* 9999-12-31T23:59:59Z */
}

static void
pattern_refused(const char *pattern, const char *because)
{
    err[0] = '\0';
    cr_assert_eq(fb_bulk_pattern_check(pattern, err, sizeof(err)), -1, "accepted [%s]", pattern);
    cr_assert_not_null(strstr(err, because), "[%s]: %s (want %s)", pattern, err, because);
}

Test(index, bad_patterns_are_configuration_errors)
{
    char longest[300];

    pattern_refused("", "empty");
    pattern_refused("Logs-{key}", "uppercase 'L'");
    pattern_refused("logs-{kye}", "unknown placeholder");
    pattern_refused("logs-{key", "unknown placeholder");
    pattern_refused("logs}", "'}' without '{'");
    pattern_refused("logs-%s", "unknown conversion %s");
    pattern_refused("logs-%", "unknown conversion");
    pattern_refused("-logs", "starts with '-'");
    pattern_refused("_logs", "starts with '_'");
    pattern_refused("+logs", "starts with '+'");
    pattern_refused(".", "not index names");
    pattern_refused("..", "not index names");
    pattern_refused("logs/{key}", "'/'");
    pattern_refused("logs\\{key}", "'\\'");
    pattern_refused("logs {key}", "byte 0x20");
    pattern_refused("logs,x", "','");
    pattern_refused("logs#x", "'#'");
    pattern_refused("logs:x", "':'");
    pattern_refused("logs*", "'*'");
    pattern_refused("logs?", "'?'");
    pattern_refused("lo\"gs", "'\"'");
    pattern_refused("logs<>", "'<'");
    pattern_refused("logs|x", "'|'");
    pattern_refused("logs-\xc3\xa9", "byte 0xc3");
    pattern_refused("logs\t", "byte 0x09");
    memset(longest, 'a', 256);
    longest[256] = '\0';
    pattern_refused(longest, "pass 255 bytes");
    memset(longest, 'a', 255);
    longest[255] = '\0';
    cr_assert_eq(fb_bulk_pattern_check(longest, err, sizeof(err)), 0, "255 bytes is fine: %s", err);
}

static void
key_refused(const char *pattern, const char *key, time_t t, const char *because)
{
    char out[FB_BULK_INDEX_MAX + 1];
    err[0] = '\0';
    cr_assert_eq(fb_bulk_pattern_check(pattern, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(fb_bulk_index_name(pattern, key, t, out, err, sizeof(err)), -1,
                 "accepted key [%s]: %s", key, out);
    cr_assert_str_eq(out, "");
    cr_assert_not_null(strstr(err, because), "%s (want %s)", err, because);
}

Test(index, a_key_that_makes_it_invalid_is_named)
{
    char big[260];

    key_refused("logs-{key}", "Tenant", T0,
                "key \"Tenant\" makes the index name \"logs-Tenant\" invalid: uppercase 'T'");
    key_refused("{key}-logs", "-x", T0, "key \"-x\" makes");
    key_refused("{key}-logs", "_x", T0, "starts with '_'");
    key_refused("logs-{key}", "a/b", T0, "'/'");
    key_refused("logs-{key}", "a\nb", T0, "key \"a?b\""); /* shown safely */
    key_refused("{key}", "", T0, "empty");
    key_refused("{key}", "..", T0, "not index names");
    memset(big, 'k', 250);
    big[250] = '\0';
    key_refused("logs-{key}-%Y.%m.%d", big, T0, "pass 255 bytes");
    /* a time that %Y cannot show in 4 digits */
    key_refused("logs-%Y", "k", (time_t)-62200000000LL, "outside the years");
    key_refused("logs-%Y", "k", (time_t)253402300800LL, "outside the years");
}

Test(index, doc_ids)
{
    char id[FB_BULK_ID_MAX + 1], topic[600];

    cr_assert_eq(fb_bulk_doc_id(id, "fbpipe", 3, 12345), 0);
    cr_assert_str_eq(id, "fbpipe-3-12345");
    cr_assert_eq(fb_bulk_doc_id(id, "t", 0, INT64_MAX), 0);
    cr_assert_str_eq(id, "t-0-9223372036854775807");
    memset(topic, 't', 505);
    topic[505] = '\0';
    cr_assert_eq(fb_bulk_doc_id(id, topic, 1, 1), 0); /* 509 bytes */
    topic[510] = '\0';
    memset(topic, 't', 510);
    cr_assert_eq(fb_bulk_doc_id(id, topic, 1, 1), -1);
    cr_assert_str_eq(id, "");
}

/* ---- the body --------------------------------------------------------- */

/* line_at -- the n-th line (0-based) of text, without "\n", as a copy. */
static char *
line_at(const char *text, int n)
{
    const char *p = text, *e;
    for (int i = 0; i < n; i++) {
        p = strchr(p, '\n');
        cr_assert_not_null(p);
        p++;
    }
    e = strchr(p, '\n');
    cr_assert_not_null(e, "every line ends in \\n");
    return strndup(p, (size_t)(e - p));
}

static void
action_is(const char *line, const char *index, const char *id)
{
    json_error_t jerr;
    json_t *a = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(a, "action line [%s]: %s", line, jerr.text);
    cr_assert_eq(json_object_size(a), 1);
    json_t *c = json_object_get(a, "create");
    cr_assert(json_is_object(c));
    cr_assert_eq(json_object_size(c), 2);
    cr_assert_str_eq(json_string_value(json_object_get(c, "_index")), index);
    cr_assert_str_eq(json_string_value(json_object_get(c, "_id")), id);
    json_decref(a);
}

Test(body, ndjson_with_escaped_ids_and_compacted_documents)
{
    fb_bulk_body_t *b = fb_bulk_body_new();
    const char *id2 = "q\"uote\\back\nline\x01\xc3\xa9";
    char *l;

    cr_assert_not_null(b);
    cr_assert_str_eq(fb_bulk_body_text(b), "");
    cr_assert_eq(fb_bulk_body_add(b, "logs-k-2024.03.05", "fbpipe-0-1",
                                  "{\"time\":\"t\",\"message\":{\"a\":1}}\n", 31, err, sizeof(err)),
                 0, "%s", err);
    const char *doc2 = "{ \"a\" : [ 1 , 2 ] ,\t\"s\" : \"x y\" }";
    cr_assert_eq(
        fb_bulk_body_add(b, "logs-k-2024.03.05", id2, doc2, strlen(doc2), err, sizeof(err)), 0,
        "%s", err);
    cr_assert_eq(fb_bulk_body_count(b), 2);
    const char *t = fb_bulk_body_text(b);
    cr_assert_eq(fb_bulk_body_size(b), strlen(t));
    cr_assert_eq(t[strlen(t) - 1], '\n');
    int lines = 0;
    for (const char *p = t; *p != '\0'; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 4, "two lines per document: [%s]", t);

    l = line_at(t, 0);
    cr_assert_str_eq(l, "{\"create\":{\"_index\":\"logs-k-2024.03.05\",\"_id\":\"fbpipe-0-1\"}}");
    free(l);
    l = line_at(t, 1);
    cr_assert_str_eq(l, "{\"time\":\"t\",\"message\":{\"a\":1}}");
    free(l);
    l = line_at(t, 2);
    action_is(l, "logs-k-2024.03.05", id2); /* jansson escaped it; it reads back */
    free(l);
    l = line_at(t, 3);
    cr_assert_str_eq(l, "{\"a\":[1,2],\"s\":\"x y\"}");
    free(l);

    fb_bulk_body_clear(b);
    cr_assert_eq(fb_bulk_body_count(b), 0);
    cr_assert_eq(fb_bulk_body_size(b), 0);
    cr_assert_str_eq(fb_bulk_body_text(b), "");
    fb_bulk_body_free(b);
    fb_bulk_body_free(NULL);
}

static void
doc_refused(fb_bulk_body_t *b, const char *index, const char *id, const char *doc, size_t len,
            const char *because)
{
    char *before = strdup(fb_bulk_body_text(b));
    size_t count = fb_bulk_body_count(b);

    err[0] = '\0';
    cr_assert_eq(fb_bulk_body_add(b, index, id, doc, len, err, sizeof(err)), FB_BULK_E_DOC,
                 "accepted [%.*s] id [%s] index [%s]", (int)len, doc, id, index);
    cr_assert_not_null(strstr(err, because), "%s (want %s)", err, because);
    cr_assert_str_eq(fb_bulk_body_text(b), before, "the body is as it was");
    cr_assert_eq(fb_bulk_body_count(b), count);
    free(before);
}

#define DOC(s) s, sizeof(s) - 1

Test(body, bad_documents_ids_and_indices_leave_it_as_it_was)
{
    fb_bulk_body_t *b = fb_bulk_body_new();
    char id[600];

    cr_assert_eq(fb_bulk_body_add(b, "i", "1", DOC("{}"), err, sizeof(err)), 0, "%s", err);
    doc_refused(b, "i", "2", DOC("[1]"), "not one JSON object");
    doc_refused(b, "i", "2", DOC("\"s\""), "not one JSON object");
    doc_refused(b, "i", "2", DOC("1"), "not one JSON object");
    doc_refused(b, "i", "2", DOC(""), "not one JSON object");
    doc_refused(b, "i", "2", DOC("\n"), "not one JSON object");
    doc_refused(b, "i", "2", DOC(" "), "not one JSON object");
    doc_refused(b, "i", "2", DOC("{\"a\":}"), "not one JSON object");
    doc_refused(b, "i", "2", DOC("{\"a\":1"), "not one JSON object");
    doc_refused(b, "i", "2", DOC("{} {}"), "not one JSON object");
    doc_refused(b, "i", "2", DOC("{}\n{}"), "not one JSON object");
    doc_refused(b, "i", "2", DOC("{\"a\":\"x\ny\"}"), "not one JSON object");
    doc_refused(b, "i", "2", DOC("{\"a\":\"x\0y\"}"), "not one JSON object");
    doc_refused(b, "i", "2", DOC("{}\n\n{}"), "not one JSON object");
    doc_refused(b, "i", "\xff\xfe", DOC("{}"), "not UTF-8");
    doc_refused(b, "i", "", DOC("{}"), "_id of 0 bytes");
    memset(id, 'x', 513);
    id[513] = '\0';
    doc_refused(b, "i", id, DOC("{}"), "_id of 513 bytes");
    id[512] = '\0';
    cr_assert_eq(fb_bulk_body_add(b, "i", id, DOC("{}"), err, sizeof(err)), 0, "%s", err);
    doc_refused(b, "I", "2", DOC("{}"), "uppercase");
    doc_refused(b, "a\"b", "2", DOC("{}"), "'\"'");
    doc_refused(b, "_x", "2", DOC("{}"), "starts with '_'");
    /* white space around the object is dropped with the rest */
    cr_assert_eq(fb_bulk_body_add(b, "i", "3", DOC(" \t{ }\r\n"), err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(strcmp(fb_bulk_body_text(b) + fb_bulk_body_size(b) - 4, "\n{}\n"), 0);
    cr_assert_eq(fb_bulk_body_count(b), 3);
    fb_bulk_body_free(b);
}

/* ---- verdicts --------------------------------------------------------- */

static fb_bulk_item_t items[16];
static fb_bulk_result_t res;

static int
judge(long status, const char *answer, size_t count)
{
    memset(items, 0x5a, sizeof(items)); /* nothing left from before may count */
    memset(&res, 0, sizeof(res));
    res.items = items;
    return fb_bulk_verdicts(status, answer, strlen(answer), count, &res);
}

static void
all_retry(size_t count, fb_bulk_failure_t failure)
{
    cr_assert_eq(res.failure, failure, "failure %d, want %d (%s)", res.failure, failure, res.error);
    cr_assert_eq(res.retry, count);
    cr_assert_eq(res.ok + res.refused, 0);
    for (size_t i = 0; i < count; i++) {
        cr_assert_eq(items[i].verdict, FB_BULK_RETRY);
        cr_assert_eq(items[i].status, 0);
    }
    cr_assert_neq(res.error[0], '\0', "says why");
}

#define OK201 "{\"create\":{\"status\":201}}"
#define CONFLICT                                                                                   \
    "{\"create\":{\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\","       \
    "\"reason\":\"[a]: version conflict, document already exists (current version [1])\"}}}"
#define MAPPING                                                                                    \
    "{\"create\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\",\"reason\":"     \
    "\"failed to parse field [n] of type [long] in document with id 'b'. Preview of "              \
    "field's value: 'abc'\",\"caused_by\":{\"type\":\"illegal_argument_exception\","               \
    "\"reason\":\"For input string: \\\"abc\\\"\"}}}}"
#define REJECTED                                                                                   \
    "{\"create\":{\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\","         \
    "\"reason\":\"rejected execution of coordinating operation\"}}}"
#define UNAVAILABLE                                                                                \
    "{\"create\":{\"status\":503,\"error\":{\"type\":\"unavailable_shards_exception\","            \
    "\"reason\":\"[logs][0] primary shard is not active\"}}}"

Test(verdicts, all_created)
{
    cr_assert_eq(judge(200,
                       "{\"errors\":false,\"items\":[" OK201 "," OK201 ","
                       "{\"create\":{\"status\":200}}]}",
                       3),
                 0, "%s", res.error);
    cr_assert_eq(res.failure, FB_BULK_FAIL_NONE);
    cr_assert_eq(res.ok, 3);
    cr_assert_eq(res.retry + res.refused, 0);
    cr_assert_eq(res.count, 3);
    cr_assert_eq(res.http_status, 200);
    cr_assert_str_eq(res.error, "");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(items[i].verdict, FB_BULK_OK);
        cr_assert_str_eq(items[i].type, "");
        cr_assert_str_eq(items[i].reason, "");
    }
}

Test(verdicts, version_conflict_counts_as_stored)
{
    cr_assert_eq(judge(200, "{\"errors\":true,\"items\":[" CONFLICT "," OK201 "]}", 2), 0);
    cr_assert_eq(res.ok, 2);
    cr_assert_eq(items[0].verdict, FB_BULK_OK);
    cr_assert_eq(items[0].status, 409);
    cr_assert_str_eq(items[0].type, "version_conflict_engine_exception");
    /* another 409 is not "already there" */
    cr_assert_eq(judge(200,
                       "{\"items\":[{\"create\":{\"status\":409,\"error\":{\"type\":"
                       "\"something_else\"}}}]}",
                       1),
                 0);
    cr_assert_eq(items[0].verdict, FB_BULK_RETRY);
    cr_assert_eq(res.retry, 1);
}

Test(verdicts, mapping_refusal_is_refused_with_its_reason)
{
    cr_assert_eq(judge(200, "{\"errors\":true,\"items\":[" OK201 "," MAPPING "," OK201 "]}", 3), 0);
    cr_assert_eq(res.ok, 2);
    cr_assert_eq(res.refused, 1);
    cr_assert_eq(res.retry, 0);
    cr_assert_str_eq(res.error, "", "nothing to retry: %s", res.error);
    cr_assert_eq(items[1].verdict, FB_BULK_REFUSED);
    cr_assert_eq(items[1].status, 400);
    cr_assert_str_eq(items[1].type, "mapper_parsing_exception");
    cr_assert_str_eq(items[1].reason,
                     "failed to parse field [n] of type [long] in document with id 'b'. Preview "
                     "of field's value: 'abc' (caused by illegal_argument_exception: For input "
                     "string: \"abc\")");
    /* the other types that blame the document */
    cr_assert_eq(judge(200,
                       "{\"items\":[{\"create\":{\"status\":400,\"error\":{\"type\":"
                       "\"strict_dynamic_mapping_exception\",\"reason\":\"r\"}}},"
                       "{\"create\":{\"status\":400,\"error\":{\"type\":"
                       "\"illegal_argument_exception\",\"reason\":\"immense term\"}}},"
                       "{\"create\":{\"status\":400,\"error\":{\"type\":"
                       "\"document_parsing_exception\"}}}]}",
                       3),
                 0);
    cr_assert_eq(res.refused, 3);
}

Test(verdicts, what_does_not_blame_the_document_is_retried)
{
    cr_assert_eq(judge(200,
                       "{\"errors\":true,\"items\":[" REJECTED "," OK201 "," UNAVAILABLE "," MAPPING
                       "]}",
                       4),
                 0);
    cr_assert_eq(res.failure, FB_BULK_FAIL_NONE);
    cr_assert_eq(res.ok, 1);
    cr_assert_eq(res.retry, 2);
    cr_assert_eq(res.refused, 1);
    cr_assert_eq(items[0].verdict, FB_BULK_RETRY);
    cr_assert_eq(items[0].status, 429);
    cr_assert_str_eq(items[0].type, "es_rejected_execution_exception");
    cr_assert_eq(items[2].verdict, FB_BULK_RETRY);
    cr_assert_eq(items[2].status, 503);
    cr_assert_str_eq(items[2].reason, "[logs][0] primary shard is not active");
    cr_assert_not_null(strstr(res.error, "2 of 4 documents to retry; item 0: status 429 "
                                         "es_rejected_execution_exception: rejected"),
                       "%s", res.error);
    /* a 400 that blames something else, or nothing; other 4xx; odd 2xx */
    cr_assert_eq(judge(200,
                       "{\"items\":["
                       "{\"create\":{\"status\":400,\"error\":{\"type\":"
                       "\"invalid_index_name_exception\",\"reason\":\"r\"}}},"
                       "{\"create\":{\"status\":400}},"
                       "{\"create\":{\"status\":400,\"error\":\"mapper_parsing_exception\"}},"
                       "{\"create\":{\"status\":404,\"error\":{\"type\":"
                       "\"index_not_found_exception\"}}},"
                       "{\"create\":{\"status\":403,\"error\":{\"type\":"
                       "\"cluster_block_exception\"}}},"
                       "{\"create\":{\"status\":202}}]}",
                       6),
                 0);
    cr_assert_eq(res.retry, 6);
    cr_assert_eq(res.ok + res.refused, 0);
}

Test(verdicts, items_that_do_not_match_make_all_retry)
{
    cr_assert_eq(judge(200, "{\"errors\":false,\"items\":[" OK201 "," OK201 "]}", 3), -1);
    all_retry(3, FB_BULK_FAIL_ANSWER);
    cr_assert_str_eq(res.error, "HTTP 200 but 2 items for 3 documents");
    cr_assert_eq(judge(200, "{\"errors\":false,\"items\":[" OK201 "," OK201 "]}", 1), -1);
    all_retry(1, FB_BULK_FAIL_ANSWER);
    cr_assert_eq(judge(200, "{\"errors\":false}", 1), -1);
    all_retry(1, FB_BULK_FAIL_ANSWER);
    cr_assert_eq(judge(200, "{\"items\":{}}", 1), -1);
    all_retry(1, FB_BULK_FAIL_ANSWER);
    cr_assert_eq(judge(200, "[" OK201 "]", 1), -1);
    all_retry(1, FB_BULK_FAIL_ANSWER);
    /* one bad item spoils the others' verdicts too: the order cannot be trusted */
    static const char *bad[] = {
        "{\"items\":[" OK201 ",{\"index\":{\"status\":201}}]}",
        "{\"items\":[" OK201 ",{\"create\":{\"status\":\"201\"}}]}",
        "{\"items\":[" OK201 ",{\"create\":{\"status\":201.0}}]}",
        "{\"items\":[" OK201 ",{\"create\":{\"status\":99}}]}",
        "{\"items\":[" OK201 ",{\"create\":{\"status\":600}}]}",
        "{\"items\":[" OK201 ",{\"create\":{\"status\":-201}}]}",
        "{\"items\":[" OK201 ",{\"create\":{}}]}",
        "{\"items\":[" OK201 ",{\"create\":[]}]}",
        "{\"items\":[" OK201 ",{\"create\":{\"status\":201},\"create2\":{\"status\":201}}]}",
        "{\"items\":[" OK201 ",null]}",
        "{\"items\":[" OK201 ",{}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(judge(200, bad[i], 2), -1, "%s", bad[i]);
        all_retry(2, FB_BULK_FAIL_ANSWER);
        cr_assert_not_null(strstr(res.error, "item 1"), "%s", res.error);
    }
}

Test(verdicts, malformed_and_truncated_answers_make_all_retry)
{
    const char *full = "{\"errors\":true,\"items\":[" OK201 "," MAPPING "," CONFLICT "]}";
    size_t len = strlen(full);

    static const char *bad[] = {
        "",
        " ",
        "null",
        "{",
        "not json",
        "<html>502 Bad Gateway</html>",
        "{\"items\":[" OK201 "]} trailing",
        "{\"items\":[" OK201 "],\"items\":[" OK201 "]}", /* duplicate keys */
        "{\"items\":[{\"create\":{\"status\":201,\"error\":{\"reason\":\"\\u0000\"}}}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(judge(200, bad[i], 1), -1, "[%s]", bad[i]);
        all_retry(1, FB_BULK_FAIL_ANSWER);
    }
    for (size_t cut = 0; cut < len; cut++) {
        memset(&res, 0, sizeof(res));
        res.items = items;
        cr_assert_eq(fb_bulk_verdicts(200, full, cut, 3, &res), -1, "cut at %zu", cut);
        all_retry(3, FB_BULK_FAIL_ANSWER);
    }
    memset(&res, 0, sizeof(res));
    res.items = items;
    cr_assert_eq(fb_bulk_verdicts(200, full, len, 3, &res), 0);
    cr_assert_eq(res.ok + res.refused, 3);
}

Test(verdicts, whole_request_statuses_make_all_retry)
{
    cr_assert_eq(judge(401,
                       "{\"error\":{\"root_cause\":[],\"type\":\"security_exception\","
                       "\"reason\":\"missing authentication credentials\"},\"status\":401}",
                       2),
                 -1);
    all_retry(2, FB_BULK_FAIL_AUTH);
    cr_assert_eq(res.http_status, 401);
    cr_assert_str_eq(res.error, "HTTP 401: the credentials are refused (check the user and "
                                "password or the API key) -- security_exception: missing "
                                "authentication credentials");
    cr_assert_eq(judge(403, "", 1), -1);
    all_retry(1, FB_BULK_FAIL_AUTH);
    cr_assert_eq(judge(503, "<html>\n<b>503</b> Service Unavailable</html>", 1), -1);
    all_retry(1, FB_BULK_FAIL_HTTP);
    cr_assert_str_eq(res.error, "HTTP 503 -- <html> <b>503</b> Service Unavailable</html>");
    cr_assert_eq(judge(429, "{\"error\":\"too many requests\"}", 1), -1);
    all_retry(1, FB_BULK_FAIL_HTTP);
    cr_assert_not_null(strstr(res.error, "overloaded -- too many requests"), "%s", res.error);
    cr_assert_eq(judge(301, "", 1), -1);
    all_retry(1, FB_BULK_FAIL_HTTP);
    cr_assert_not_null(strstr(res.error, "redirects are not followed"), "%s", res.error);
    /* a 400 for the whole bulk names no document: retried, never refused */
    cr_assert_eq(judge(400,
                       "{\"error\":{\"type\":\"illegal_argument_exception\",\"reason\":"
                       "\"Malformed action/metadata line [3]\"},\"status\":400}",
                       2),
                 -1);
    all_retry(2, FB_BULK_FAIL_HTTP);
    /* even with items in it */
    cr_assert_eq(judge(500, "{\"items\":[" OK201 "]}", 1), -1);
    all_retry(1, FB_BULK_FAIL_HTTP);
}

Test(verdicts, texts_from_the_answer_are_cut_and_made_safe)
{
    char answer[4096], reason[1201];
    size_t n = 0;

    /* 600 two-byte characters: cut inside one, the cut must not split it */
    for (int i = 0; i < 600; i++) {
        reason[n++] = '\xc3';
        reason[n++] = '\xa9';
    }
    reason[n] = '\0';
    snprintf(answer, sizeof(answer),
             "{\"items\":[{\"create\":{\"status\":400,\"error\":{\"type\":\"%s\",\"reason\":"
             "\"line1\\nline2\\t%s\"}}}]}",
             "mapper_parsing_exception_with_a_type_name_longer_than_sixty_four_bytes", reason);
    cr_assert_eq(judge(200, answer, 1), 0);
    cr_assert_eq(items[0].verdict, FB_BULK_RETRY, "the whole type must match");
    cr_assert_eq(strlen(items[0].type), sizeof(items[0].type) - 1);
    cr_assert_eq(strncmp(items[0].reason, "line1 line2 ", 12), 0, "%s", items[0].reason);
    json_t *s = json_string(items[0].reason);
    cr_assert_not_null(s, "still UTF-8 after the cut: %s", items[0].reason);
    json_decref(s);
    cr_assert_lt(strlen(items[0].reason), sizeof(items[0].reason));
    cr_assert_lt(strlen(res.error), sizeof(res.error));
}

/* ---- credentials files ------------------------------------------------ */

Test(secret, read_private_one_line_files, .init = test_mkdir, .fini = test_rmdir)
{
    char *s = NULL;

    cr_assert_eq(
        fb_bulk_secret_read(test_write("ok", "elastic:pa ss\n", 0600), &s, err, sizeof(err)), 0,
        "%s", err);
    cr_assert_str_eq(s, "elastic:pa ss");
    fb_bulk_secret_free(s);
    cr_assert_eq(
        fb_bulk_secret_read(test_write("crlf", "a2V5OmlkCg==\r\n", 0400), &s, err, sizeof(err)), 0,
        "%s", err);
    cr_assert_str_eq(s, "a2V5OmlkCg==");
    fb_bulk_secret_free(s);
    fb_bulk_secret_free(NULL);

    static const struct {
        const char *name, *content;
        mode_t mode;
        const char *because;
    } bad[] = {
        {"group", "u:topsecret\n", 0640, "accessible by group or others (mode 0640)"},
        {"other", "u:topsecret\n", 0604, "accessible by group or others"},
        {"exec", "u:topsecret\n", 0610, "accessible by group or others"},
        {"empty", "", 0600, "0 bytes, a secret needs at least 1"},
        {"newline", "\n", 0600, "0 bytes, a secret needs at least 1"},
        {"two", "u:topsecret\nmore\n", 0600, "control character at byte 11"},
        {"tab", "u:top\tsecret", 0600, "control character"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = (char *)"untouched";
        cr_assert_eq(fb_bulk_secret_read(test_write(bad[i].name, bad[i].content, bad[i].mode), &s,
                                         err, sizeof(err)),
                     -1, "%s", bad[i].name);
        cr_assert_null(s);
        cr_assert_not_null(strstr(err, bad[i].because), "%s: %s", bad[i].name, err);
        cr_assert_null(strstr(err, "topsecret"), "the contents are never shown: %s", err);
    }
    cr_assert_eq(fb_bulk_secret_read(test_dir, &s, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
    cr_assert_eq(fb_bulk_secret_read("/nonexistent/fbpipe", &s, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "open(/nonexistent/fbpipe) failed"), "%s", err);
}

/* ---- the client's options --------------------------------------------- */

static void
opts_refused(const fb_bulk_opts_t *o, const char *because)
{
    err[0] = '\0';
    fb_bulk_t *c = fb_bulk_new(o, err, sizeof(err));
    cr_assert_null(c, "accepted %s", o->url != NULL ? o->url : "(null)");
    cr_assert_not_null(strstr(err, because), "%s (want %s)", err, because);
    cr_assert_null(strstr(err, "hunter2"), "no credential in errors: %s", err);
}

Test(client, options_are_checked, .init = curl_up, .fini = curl_down)
{
    fb_bulk_t *c;

    opts_refused(&(fb_bulk_opts_t){.url = NULL}, "URL: missing");
    opts_refused(&(fb_bulk_opts_t){.url = "http://exa mple"}, "not printable");
    opts_refused(&(fb_bulk_opts_t){.url = "localhost:9200"}, "not a URL");
    opts_refused(&(fb_bulk_opts_t){.url = "ftp://h/"}, "scheme must be http or https");
    opts_refused(&(fb_bulk_opts_t){.url = "https://elastic:hunter2@h:9200"}, "credentials in it");
    opts_refused(&(fb_bulk_opts_t){.url = "https://h:9200/?pretty"}, "no query or fragment");
    opts_refused(&(fb_bulk_opts_t){.url = "https://h:9200/#x"}, "no query or fragment");
    opts_refused(&(fb_bulk_opts_t){.url = "https://h", .basic_auth = "u:hunter2", .api_key = "k"},
                 "not both");
    opts_refused(&(fb_bulk_opts_t){.url = "https://h", .basic_auth = "hunter2"},
                 "not \"user:password\"");
    opts_refused(&(fb_bulk_opts_t){.url = "https://h", .api_key = "hunter2 x"}, "API key");
    opts_refused(&(fb_bulk_opts_t){.url = "http://search.example:9200", .basic_auth = "u:hunter2"},
                 "clear text; use https");
    opts_refused(&(fb_bulk_opts_t){.url = "https://h", .ca_file = "/nonexistent/ca.pem"},
                 "CA file /nonexistent/ca.pem");
    opts_refused(&(fb_bulk_opts_t){.url = "https://h", .timeout_ms = -1}, "negative");

    static const fb_bulk_opts_t good[] = {
        {.url = "http://127.0.0.1:9200"},
        {.url = "http://127.0.0.1:9200/", .basic_auth = "u:p:with:colons"},
        {.url = "http://localhost:9200/prefix/", .api_key = "a2V5OmlkCg=="},
        {.url = "https://search.example/es", .basic_auth = "u:p", .gzip = true},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        c = fb_bulk_new(&good[i], err, sizeof(err));
        cr_assert_not_null(c, "%s: %s", good[i].url, err);
        fb_bulk_free(c);
    }
    fb_bulk_free(NULL);
}

Test(client, a_closed_port_makes_all_retry, .init = curl_up, .fini = curl_down)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    char url[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    fb_bulk_body_t *b = fb_bulk_body_new();
    fb_bulk_result_t r;

    /* a port that was free a moment ago and has no listener */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)ntohs(a.sin_port));
    fb_bulk_t *c = fb_bulk_new(&(fb_bulk_opts_t){.url = url, .gzip = true}, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);

    cr_assert_eq(fb_bulk_send(c, b, &r), 0, "an empty body sends nothing");
    cr_assert_eq(r.count, 0);
    cr_assert_eq(fb_bulk_body_add(b, "i", "1", DOC("{}"), err, sizeof(err)), 0);
    cr_assert_eq(fb_bulk_body_add(b, "i", "2", DOC("{}"), err, sizeof(err)), 0);
    cr_assert_eq(fb_bulk_send(c, b, &r), -1);
    cr_assert_eq(r.failure, FB_BULK_FAIL_NETWORK, "%s", r.error);
    cr_assert_eq(r.http_status, 0);
    cr_assert_eq(r.retry, 2);
    cr_assert_eq(r.items[0].verdict, FB_BULK_RETRY);
    cr_assert_eq(r.items[1].verdict, FB_BULK_RETRY);
    char want[96];
    snprintf(want, sizeof(want), "POST http://127.0.0.1:%u/_bulk: ", (unsigned)ntohs(a.sin_port));
    cr_assert_eq(strncmp(r.error, want, strlen(want)), 0, "%s", r.error);
    cr_assert_not_null(strstr(r.error, "onnect"), "%s", r.error);
    close(fd);
    fb_bulk_free(c);
    fb_bulk_body_free(b);
}
