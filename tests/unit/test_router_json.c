/*
 * test_router_json.c -- the router's JSON check-and-compact and quoting:
 * every text jansson accepts as one value is accepted and compacts to the
 * same value on one line; what it refuses is refused (hostile texts,
 * truncations of valid ones at every byte, depth past the bound); quoted
 * strings read back as the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "router/router_json.h"

/* same_as_jansson -- fb_json_compact agrees with jansson on text. */
static void
same_as_jansson(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    long n = fb_json_compact(text, len, out);
    json_t *want = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    if (want == NULL) {
        cr_assert_eq(n, -1, "accepted what jansson refuses: [%.*s]", (int)len, text);
    } else {
        cr_assert_geq(n, 0, "refused what jansson accepts: [%.*s]", (int)len, text);
        cr_assert_null(memchr(out, '\n', (size_t)n), "one line");
        json_t *got = json_loadb(out, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        cr_assert_not_null(got, "compacted text is JSON: [%.*s]", (int)n, out);
        cr_assert(json_equal(got, want), "same value: [%.*s] -> [%.*s]", (int)len, text,
                  (int)n, out);
        json_decref(got);
        json_decref(want);
    }
    free(out);
}

static const char *cases[] = {
    "{}", "[]", "0", "-0", "1.5e10", "-12.25E-3", "true", "false", "null", "\"\"",
    "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\\n\\u00e9\\ud83d\\ude00\"}",
    " \n\t{ \"pretty\" :\n  [ 1 ,\n 2 ]\n }\r\n",
    "\"caf\xc3\xa9\"", "{\"k\":\"x\\\"y\\\\z\\/\"}",
    /* refused */
    "", " ", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{,}", "[1 2]", "01", "1.", ".5", "1e",
    "-", "+1", "tru", "nul", "True", "NaN", "Infinity", "'a'", "{a:1}", "\"a", "\"\\x\"",
    "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"tab\there\"",
    "{} {}", "[] x", "{\"a\":1,}", "[\"a\"\n", "\"\\",
};

Test(json, agrees_with_jansson)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same_as_jansson(cases[i], strlen(cases[i]));
}

Test(json, every_truncation_agrees_with_jansson)
{
    const char *t = "{\"a\": [1, -2.5e3, {\"b\": null, \"c\": true}], \"d\": \"\\u00e9\\ud83d\\ude00x\"}";

    for (size_t n = 0; n <= strlen(t); n++)
        same_as_jansson(t, n);
}

Test(json, depth_is_bounded)
{
    size_t d = FB_JSON_MAX_DEPTH;
    char *t = malloc(2 * (d + 1) + 1), *out = malloc(2 * (d + 1) + 1);

    memset(t, '[', d);
    memset(t + d, ']', d);
    cr_assert_eq(fb_json_compact(t, 2 * d, out), (long)(2 * d), "at the bound");
    memset(t, '[', d + 1);
    memset(t + d + 1, ']', d + 1);
    cr_assert_eq(fb_json_compact(t, 2 * (d + 1), out), -1, "past the bound");
    /* a hostile depth does not exhaust the stack */
    free(t);
    free(out);
    t = malloc(1000000);
    out = malloc(1000000);
    memset(t, '[', 1000000);
    cr_assert_eq(fb_json_compact(t, 1000000, out), -1);
    free(t);
    free(out);
}

Test(json, quoted_strings_read_back_the_same)
{
    const char s[] = "a\"b\\c\n\r\t\b\f\x01\x1f caf\xc3\xa9 </script>";
    char out[6 * sizeof(s) + 2];
    size_t n = fb_json_quote(s, sizeof(s) - 1, out);
    json_t *j = json_loadb(out, n, JSON_DECODE_ANY, NULL);

    cr_assert_not_null(j, "[%.*s]", (int)n, out);
    cr_assert_eq(json_string_length(j), sizeof(s) - 1);
    cr_assert_eq(memcmp(json_string_value(j), s, sizeof(s) - 1), 0);
    cr_assert_null(memchr(out, '\n', n));
    json_decref(j);
}
