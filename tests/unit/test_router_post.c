/*
 * test_router_post.c -- the HTTP target's client without a receiver: the
 * result of every class of status, the checks of configured headers (CR
 * and LF injection, names this client sets, empty names and values), the
 * URLs and credentials refused (user info in the URL, other schemes,
 * credentials over plain http off this machine), idempotency keys and
 * bodies refused before any request, and a send to a closed port.
 * tests/integration/test-http-client drives it against a receiver.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>

#include "router/router_post.h"
#include "helpers.h"

static char err[FB_POST_ERR_LEN];

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

/* closed_url -- a URL on 127.0.0.1 with no listener (a port that was
 * free a moment ago, still bound by fd so nobody else takes it) */
static int
closed_url(char *url, size_t len, const char *path)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, len, "http://127.0.0.1:%u%s", (unsigned)ntohs(a.sin_port), path);
    return fd;
}

/* ---- statuses --------------------------------------------------------- */

Test(classify, every_class_of_status)
{
    static const struct {
        long status;
        fb_post_result_t want;
    } cases[] = {
        {200, FB_POST_OK},      {201, FB_POST_OK},        {202, FB_POST_OK},
        {204, FB_POST_OK},      {299, FB_POST_OK},        {400, FB_POST_REFUSED},
        {422, FB_POST_REFUSED}, {413, FB_POST_TOO_LARGE}, {0, FB_POST_RETRY},
        {100, FB_POST_RETRY},   {199, FB_POST_RETRY},     {300, FB_POST_RETRY},
        {301, FB_POST_RETRY},   {302, FB_POST_RETRY},     {307, FB_POST_RETRY},
        {308, FB_POST_RETRY},   {401, FB_POST_RETRY},     {403, FB_POST_RETRY},
        {404, FB_POST_RETRY},   {405, FB_POST_RETRY},     {408, FB_POST_RETRY},
        {409, FB_POST_RETRY},   {411, FB_POST_RETRY},     {415, FB_POST_RETRY},
        {429, FB_POST_RETRY},   {431, FB_POST_RETRY},     {499, FB_POST_RETRY},
        {500, FB_POST_RETRY},   {502, FB_POST_RETRY},     {503, FB_POST_RETRY},
        {504, FB_POST_RETRY},   {599, FB_POST_RETRY},     {600, FB_POST_RETRY},
        {999, FB_POST_RETRY},   {-1, FB_POST_RETRY},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(fb_post_classify(cases[i].status), cases[i].want, "HTTP %ld: %d, want %d",
                     cases[i].status, (int)fb_post_classify(cases[i].status), (int)cases[i].want);
}

/* ---- headers ---------------------------------------------------------- */

Test(headers, good_ones_pass)
{
    static const char *const good[] = {
        "X-Token: abc", "Authorization: Bearer eyJhbGciOi.x.y", "X-A:b",
        "x-tab:\tv",    "X!#$%&'*+-.^_`|~1: v a l u e",         "X-Utf8: caf\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert_eq(fb_post_check_header(good[i], err, sizeof(err)), 0, "%s: %s", good[i], err);
}

Test(headers, injection_forbidden_names_and_empty_parts_are_refused)
{
    static const struct {
        const char *h, *why;
    } bad[] = {
        {"X-A: b\r\nX-Evil: 1", "control character"},
        {"X-A: b\nX-Evil: 1", "control character"},
        {"X-A: b\r", "control character"},
        {"X-A: b\x01", "control character"},
        {"X-A: b\x7f", "control character"},
        {"X-A\r\nX-Evil: 1", "not a token"},
        {": value", "empty name"},
        {"", "empty name"},
        {" X-A: b", "empty name"},
        {"X-A : b", "not a token"},
        {"X A: b", "not a token"},
        {"X-A b", "not a token"},
        {"X-A", "not a token"},
        {"X-A:", "empty value"},
        {"X-A:   \t", "empty value"},
        {"Content-Type: text/plain", "Content-Type"},
        {"content-type: text/plain", "Content-Type"},
        {"Content-Length: 5", "Content-Length"},
        {"CONTENT-ENCODING: br", "Content-Encoding"},
        {"Host: elsewhere", "Host"},
        {"Transfer-Encoding: chunked", "Transfer-Encoding"},
        {"idempotency-key: x", "Idempotency-Key"},
        {NULL, "none"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_assert_eq(fb_post_check_header(bad[i].h, err, sizeof(err)), -1, "case %zu accepted", i);
        cr_assert_not_null(strstr(err, bad[i].why), "case %zu: %s (want %s)", i, err, bad[i].why);
        cr_assert_null(strstr(err, "Evil"), "case %zu: the value echoed: %s", i, err);
        cr_assert_null(strchr(err, '\n'), "case %zu: %s", i, err);
    }
    char longer[FB_POST_HEADER_MAX + 16];
    memset(longer, 'v', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    memcpy(longer, "X-Long: ", 8);
    cr_assert_eq(fb_post_check_header(longer, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "longer than"), "%s", err);
}

Test(headers, the_client_checks_them_and_never_shows_a_value, .init = curl_up, .fini = curl_down)
{
    const char *const hs[] = {"X-Ok: 1", "X-Token: s3cr3t\r\nX-Evil: 1"};
    fb_post_t *c;

    c = fb_post_new(&(fb_post_opts_t){.url = "https://h/in", .headers = hs, .n_headers = 2}, err,
                    sizeof(err));
    cr_assert_null(c);
    cr_assert_not_null(strstr(err, "header 2"), "%s", err);
    cr_assert_null(strstr(err, "s3cr3t"), "%s", err);
    const char *const auth[] = {"authorization: Bearer t0ken"};
    c = fb_post_new(
        &(fb_post_opts_t){
            .url = "https://h/in", .headers = auth, .n_headers = 1, .basic_auth = "u:pw"},
        err, sizeof(err));
    cr_assert_null(c);
    cr_assert_not_null(strstr(err, "one or the other"), "%s", err);
    cr_assert_null(strstr(err, "t0ken"), "%s", err);
    c = fb_post_new(&(fb_post_opts_t){.url = "https://h/in", .headers = auth, .n_headers = 1}, err,
                    sizeof(err));
    cr_assert_not_null(c, "%s", err);
    fb_post_free(c);
}

/* ---- URLs and credentials --------------------------------------------- */

static void
refused(const fb_post_opts_t *o, const char *why)
{
    err[0] = '\0';
    fb_post_t *c = fb_post_new(o, err, sizeof(err));
    cr_assert_null(c, "accepted %s", o->url != NULL ? o->url : "(null)");
    cr_assert_not_null(strstr(err, why), "%s: %s (want %s)", o->url != NULL ? o->url : "(null)",
                       err, why);
    cr_assert_null(strstr(err, "hunter2"), "a credential in err: %s", err);
}

Test(client, urls_and_credentials_are_checked, .init = curl_up, .fini = curl_down)
{
    refused(&(fb_post_opts_t){.url = NULL}, "URL: missing");
    refused(&(fb_post_opts_t){.url = ""}, "URL: missing");
    refused(&(fb_post_opts_t){.url = "http://in take/x"}, "not printable");
    refused(&(fb_post_opts_t){.url = "https://u:hunter2@h/in"}, "credentials in it");
    refused(&(fb_post_opts_t){.url = "https://u:hunter2@h:8/in?x=1"}, "credentials in it");
    refused(&(fb_post_opts_t){.url = "https://:hunter2@h/in"}, "credentials in it");
    refused(&(fb_post_opts_t){.url = "https://hunter2@h/in"}, "credentials in it");
    refused(&(fb_post_opts_t){.url = "ftp://h/in"}, "scheme must be http or https");
    refused(&(fb_post_opts_t){.url = "ftp://u:hunter2@h/in"}, "with user info, not shown");
    refused(&(fb_post_opts_t){.url = "file:///etc/passwd"}, "URL");
    refused(&(fb_post_opts_t){.url = "h:8080/in"}, "not a URL");
    refused(&(fb_post_opts_t){.url = "https://h/in#frag"}, "no fragment");
    refused(&(fb_post_opts_t){.url = "http://intake.example/in", .basic_auth = "u:hunter2"},
            "clear text; use https");
    refused(&(fb_post_opts_t){.url = "http://10.0.0.1:8080/in", .basic_auth = "u:hunter2"},
            "clear text; use https");
    refused(&(fb_post_opts_t){.url = "http://127.example.com/in", .basic_auth = "u:hunter2"},
            "clear text; use https");
    refused(&(fb_post_opts_t){.url = "http://[::2]/in", .basic_auth = "u:hunter2"},
            "clear text; use https");
    refused(&(fb_post_opts_t){.url = "https://h/in", .basic_auth = "hunter2"},
            "not \"user:password\"");
    refused(&(fb_post_opts_t){.url = "https://h/in", .basic_auth = ":hunter2"},
            "not \"user:password\"");
    refused(&(fb_post_opts_t){.url = "https://h/in", .basic_auth = "u:hunter2\r\nX: 1"},
            "not \"user:password\"");
    refused(&(fb_post_opts_t){.url = "https://h/in", .ca_file = "/nonexistent/ca.pem"},
            "CA file /nonexistent/ca.pem");
    refused(&(fb_post_opts_t){.url = "https://h/in", .timeout_ms = -1}, "negative");
    refused(&(fb_post_opts_t){.url = "https://h/in", .n_headers = 1}, "headers");

    static const fb_post_opts_t good[] = {
        {.url = "https://intake.example/v1/logs?source=fbpipe&x=1", .basic_auth = "u:p:w"},
        {.url = "http://intake.example:8080"},
        {.url = "http://127.0.0.1:8080/in", .basic_auth = "u:p"},
        {.url = "http://127.1.2.3/in", .basic_auth = "u:p"},
        {.url = "http://localhost/in", .basic_auth = "u:p", .gzip = true},
        {.url = "http://[::1]:9/in", .basic_auth = "u:p"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        fb_post_t *c = fb_post_new(&good[i], err, sizeof(err));
        cr_assert_not_null(c, "%s: %s", good[i].url, err);
        fb_post_free(c);
    }
    fb_post_free(NULL);
}

/* ---- sends ------------------------------------------------------------ */

Test(send, invalid_keys_and_bodies_are_refused_without_a_request, .init = curl_up,
     .fini = curl_down)
{
    char url[64];
    int fd = closed_url(url, sizeof(url), "/in");
    fb_post_t *c = fb_post_new(&(fb_post_opts_t){.url = url}, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    char longkey[FB_POST_KEY_MAX + 2];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    static const char *const bad[] = {"",          "a b",         "a\r\nX-Evil: 1",
                                      "tab\there", "caf\xc3\xa9", "del\x7f"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(fb_post_send(c, "{}\n", 3, bad[i], err, sizeof(err)), FB_POST_REFUSED,
                     "key %zu", i);
        cr_assert_not_null(strstr(err, "invalid idempotency key"), "key %zu: %s", i, err);
        cr_assert_null(strstr(err, "Evil"), "%s", err);
    }
    cr_assert_eq(fb_post_send(c, "{}\n", 3, longkey, err, sizeof(err)), FB_POST_REFUSED);
    longkey[FB_POST_KEY_MAX] = '\0';
    /* a valid key: the request is made, and nothing listens */
    cr_assert_eq(fb_post_send(c, "{}\n", 3, longkey, err, sizeof(err)), FB_POST_RETRY, "%s", err);
    cr_assert_eq(fb_post_send(c, "{}\n", 3, "topic-0-00000000000000000042", err, sizeof(err)),
                 FB_POST_RETRY, "%s", err);

    cr_assert_eq(fb_post_send(c, "{}", 2, NULL, err, sizeof(err)), FB_POST_REFUSED);
    cr_assert_not_null(strstr(err, "not NDJSON"), "%s", err);
    cr_assert_eq(fb_post_send(c, NULL, 3, NULL, err, sizeof(err)), FB_POST_REFUSED);
    cr_assert_eq(fb_post_send(c, "", 0, NULL, err, sizeof(err)), FB_POST_OK, "%s", err);
    cr_assert_str_eq(err, "");
    fb_post_free(c);
    close(fd);
}

Test(send, a_closed_port_is_retry_with_method_and_url, .init = curl_up, .fini = curl_down)
{
    char url[64], want[96];
    int fd = closed_url(url, sizeof(url), "/v1/in?src=fb");
    fb_post_t *c = fb_post_new(
        &(fb_post_opts_t){.url = url, .basic_auth = "u:hunter2", .gzip = true}, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(fb_post_send(c, "{\"a\":1}\n", 8, "k-1", err, sizeof(err)), FB_POST_RETRY);
    snprintf(want, sizeof(want), "POST %s: ", url);
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
    cr_assert_not_null(strstr(err, "onnect"), "%s", err);
    cr_assert_null(strstr(err, "hunter2"), "%s", err);
    fb_post_free(c);
    close(fd);
}
