/*
 * test_router_s3.c -- the S3 client without an S3 server: object names
 * (layout, UTC dates, padding that sorts, refusals); the result of a
 * response from its status and error Code; error bodies parsed safely
 * (entities, hostile bytes, truncation, no NUL); credentials files (both
 * forms, permissions, malformed ones, the secret never in err); option
 * checks; and whole requests against a one-shot HTTP server in a thread
 * (the signed headers and the body's SHA-256 sent, errors classified
 * and described, redirects not followed, a huge body bounded, a closed
 * port and a dropped connection retried).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <sodium.h>

#include "common/record.h"
#include "helpers.h"
#include "router/router_s3.h"

#define ZEROS20 "00000000000000000000"

static void
s3_setup(void)
{
    test_setup();
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
}

static void
s3_teardown(void)
{
    curl_global_cleanup();
    test_teardown();
}

TestSuite(s3, .init = s3_setup, .fini = s3_teardown);

/* ---------------------------------------------------------------- names */

Test(s3, object_name_layout)
{
    char out[FB_S3_NAME_MAX + 1];

    /* 2024-12-06T00:00:00Z */
    static const char want[] =
        "logs/AK1/2024-12-06/fbpipe-3-" ZEROS20 "-00000000000000000041.jsonl";

    cr_assert_eq(fb_s3_object_name(out, sizeof(out), "logs", "AK1", 1733443200, "fbpipe", 3, 0,
                                   41, false), (int)sizeof(want) - 1);
    cr_assert_str_eq(out, want);
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), NULL, "AK1", 1733443200, "t", 0, 7, 7, true),
                 0);
    cr_assert_str_eq(out, "AK1/2024-12-06/t-0-00000000000000000007-00000000000000000007.jsonl.gz");
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), "", "AK1", 1733443200, "t", 0, 7, 7, true),
                 0);
    cr_assert_eq(strncmp(out, "AK1/", 4), 0);
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), "a/b/", "AK1", 1733443200, "t", 0, 7, 7,
                                   false), 0);
    cr_assert_eq(strncmp(out, "a/b/AK1/2024-12-06/", 19), 0, "%s", out);
    /* the largest offsets Kafka has take all 20 digits */
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), NULL, "k", 0, "t", INT32_MAX, INT64_MAX,
                                   INT64_MAX, false), 0);
    cr_assert_str_eq(out, "k/1970-01-01/t-2147483647-09223372036854775807-09223372036854775807"
                          ".jsonl");
}

Test(s3, object_name_date_is_utc)
{
    char out[256];

    setenv("TZ", "Asia/Tokyo", 1); /* 09:00 local on the day UTC still calls the day before */
    tzset();
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), NULL, "k", 1733443199, "t", 0, 1, 2, false),
                 0);
    cr_assert(strstr(out, "/2024-12-05/") != NULL, "%s", out);
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), NULL, "k", 1733443200, "t", 0, 1, 2, false),
                 0);
    cr_assert(strstr(out, "/2024-12-06/") != NULL, "%s", out);
    /* the ends of what a record may carry */
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), NULL, "k", FB_TS_FIRST, "t", 0, 1, 2, false),
                 0);
    cr_assert(strstr(out, "/0001-01-01/") != NULL, "%s", out);
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), NULL, "k", FB_TS_LAST, "t", 0, 1, 2, false),
                 0);
    cr_assert(strstr(out, "/9999-12-31/") != NULL, "%s", out);
    cr_assert_gt(fb_s3_object_name(out, sizeof(out), NULL, "k", -1, "t", 0, 1, 2, false), 0);
    cr_assert(strstr(out, "/1969-12-31/") != NULL, "%s", out);
    errno = 0;
    cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, "k", FB_TS_LAST + 1, "t", 0, 1, 2,
                                   false), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, "k", FB_TS_FIRST - 1, "t", 0, 1, 2,
                                   false), -1);
    unsetenv("TZ");
    tzset();
}

Test(s3, object_names_sort_as_offsets)
{
    char a[256], b[256];
    static const int64_t offs[] = {0, 9, 10, 99, 100, 999999999, 1000000000, INT64_MAX - 1};

    for (size_t i = 0; i + 1 < sizeof(offs) / sizeof(offs[0]); i++) {
        cr_assert_gt(fb_s3_object_name(a, sizeof(a), "p", "k", 0, "t", 1, offs[i], offs[i], false),
                     0);
        cr_assert_gt(fb_s3_object_name(b, sizeof(b), "p", "k", 0, "t", 1, offs[i + 1],
                                       offs[i + 1], false), 0);
        cr_assert_lt(strcmp(a, b), 0, "%s >= %s", a, b);
        cr_assert_eq(strlen(a), strlen(b));
    }
}

Test(s3, object_name_refusals)
{
    char out[256], big[2048];
    static const char *bad_parts[] = {"", ".", "..", "a/b", "/", "a\nb", "a\x7f", "\xc3\xa9"};

    for (size_t i = 0; i < sizeof(bad_parts) / sizeof(bad_parts[0]); i++) {
        errno = 0;
        cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, bad_parts[i], 0, "t", 0, 1, 2,
                                       false), -1, "key %zu", i);
        cr_assert_eq(errno, EINVAL);
        cr_assert_eq(out[0], '\0');
        cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, "k", 0, bad_parts[i], 0, 1, 2,
                                       false), -1, "topic %zu", i);
    }
    static const char *bad_prefixes[] = {"/a", "a//b", "..", "a/./b", "a/../b", "//", "x\ty"};
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
        errno = 0;
        cr_assert_eq(fb_s3_object_name(out, sizeof(out), bad_prefixes[i], "k", 0, "t", 0, 1, 2,
                                       false), -1, "prefix %s", bad_prefixes[i]);
        cr_assert_eq(errno, EINVAL);
        cr_assert_eq(out[0], '\0');
    }
    cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, NULL, 0, "t", 0, 1, 2, false), -1);
    cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, "k", 0, NULL, 0, 1, 2, false), -1);
    cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, "k", 0, "t", -1, 1, 2, false), -1);
    cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, "k", 0, "t", 0, -1, 2, false), -1);
    cr_assert_eq(fb_s3_object_name(out, sizeof(out), NULL, "k", 0, "t", 0, 3, 2, false), -1);
    cr_assert_eq(errno, EINVAL);
    /* too small a buffer, or longer than S3 allows */
    errno = 0;
    cr_assert_eq(fb_s3_object_name(out, 20, NULL, "k", 0, "t", 0, 1, 2, false), -1);
    cr_assert_eq(errno, ENAMETOOLONG);
    cr_assert_eq(out[0], '\0');
    memset(big, 'p', 980);
    big[980] = '\0';
    errno = 0;
    cr_assert_eq(fb_s3_object_name(big + 1000, 1, big, "k", 0, "t", 0, 1, 2, false), -1);
    cr_assert_eq(errno, ENAMETOOLONG);
    char name[2 * FB_S3_NAME_MAX];
    cr_assert_eq(fb_s3_object_name(name, sizeof(name), big, "k", 0, "t", 0, 1, 2, false), -1);
    cr_assert_eq(errno, ENAMETOOLONG);
}

/* ---------------------------------------------------------------- responses */

Test(s3, classify)
{
    static const struct {
        long status;
        const char *code;
        fb_s3_result_t want;
    } cases[] = {
        {200, "", FB_S3_OK},
        {204, NULL, FB_S3_OK},
        {400, "EntityTooLarge", FB_S3_REFUSED},
        {400, "KeyTooLongError", FB_S3_REFUSED},
        {413, "EntityTooLarge", FB_S3_REFUSED},
        /* the store's or the operator's to fix: never a dead letter */
        {500, "EntityTooLarge", FB_S3_RETRY},
        {500, "InternalError", FB_S3_RETRY},
        {502, "", FB_S3_RETRY},
        {503, "SlowDown", FB_S3_RETRY},
        {503, "ServiceUnavailable", FB_S3_RETRY},
        {429, "", FB_S3_RETRY},
        {408, NULL, FB_S3_RETRY},
        {400, "RequestTimeout", FB_S3_RETRY},
        {400, "ExpiredToken", FB_S3_RETRY},
        {400, "InvalidArgument", FB_S3_RETRY},
        {400, "XAmzContentSHA256Mismatch", FB_S3_RETRY},
        {400, "BadDigest", FB_S3_RETRY},
        {400, "AuthorizationHeaderMalformed", FB_S3_RETRY},
        {400, "", FB_S3_RETRY},
        {403, "InvalidAccessKeyId", FB_S3_RETRY},
        {403, "SignatureDoesNotMatch", FB_S3_RETRY},
        {403, "AccessDenied", FB_S3_RETRY},
        {403, "RequestTimeTooSkewed", FB_S3_RETRY},
        {404, "NoSuchBucket", FB_S3_RETRY},
        {301, "PermanentRedirect", FB_S3_RETRY},
        {307, "TemporaryRedirect", FB_S3_RETRY},
        {100, "", FB_S3_RETRY},
        {0, NULL, FB_S3_RETRY},
        {999, "", FB_S3_RETRY},
        {-1, "EntityTooLarge", FB_S3_RETRY},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(fb_s3_classify(cases[i].status, cases[i].code), cases[i].want,
                     "HTTP %ld %s", cases[i].status, cases[i].code ? cases[i].code : "(null)");
}

/* parse -- fb_s3_error_parse of a copy of body without a NUL after it */
static void
parse(const char *body, size_t len, char *code, size_t codelen, char *msg, size_t msglen,
      char *rid, size_t ridlen)
{
    char *copy = malloc(len > 0 ? len : 1);

    memcpy(copy, body, len);
    fb_s3_error_parse(copy, len, code, codelen, msg, msglen, rid, ridlen);
    free(copy);
}

Test(s3, error_parse)
{
    static const char aws[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please "
        "reduce your request rate &amp; don&apos;t &lt;panic&gt; &quot;now&quot; &bogus;"
        "</Message><RequestId>4442587FB7D0A2F9</RequestId><HostId>x</HostId></Error>";
    char code[64], msg[256], rid[64];

    parse(aws, sizeof(aws) - 1, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_str_eq(code, "SlowDown");
    cr_assert_str_eq(msg, "Please reduce your request rate & don't <panic> \"now\" &bogus;");
    cr_assert_str_eq(rid, "4442587FB7D0A2F9");

    /* cut to the buffers */
    parse(aws, sizeof(aws) - 1, code, 5, msg, 7, rid, 1);
    cr_assert_str_eq(code, "Slow");
    cr_assert_str_eq(msg, "Please");
    cr_assert_str_eq(rid, "");

    /* cut off before the closing tag: nothing is made up */
    parse(aws, 60, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_str_eq(code, "");
    cr_assert_str_eq(msg, "");
    parse(aws, 55, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_str_eq(code, "");

    /* not XML at all, and nothing */
    static const char html[] = "<html><body>502 Bad Gateway</body></html>";
    parse(html, sizeof(html) - 1, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_str_eq(code, "");
    cr_assert_str_eq(msg, "");
    cr_assert_str_eq(rid, "");
    fb_s3_error_parse(NULL, 0, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_str_eq(code, "");
    fb_s3_error_parse("x", 1, code, 0, msg, 0, rid, 0); /* no room: nothing written */

    /* every byte value inside: out comes printable ASCII only */
    char hostile[600];
    size_t n = (size_t)snprintf(hostile, sizeof(hostile), "<Code>");
    for (int c = 0; c < 256; c++)
        if (c != '<')
            hostile[n++] = (char)c;
    n += (size_t)snprintf(hostile + n, sizeof(hostile) - n, "</Code>");
    parse(hostile, n, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_eq(strlen(code), sizeof(code) - 1);
    for (size_t i = 0; code[i] != '\0'; i++)
        cr_assert(code[i] >= 0x20 && code[i] <= 0x7e, "byte %zu: %d", i, code[i]);
    char big_msg[sizeof(msg) * 4];
    parse(hostile + 6, n - 6 - 7, big_msg, sizeof(big_msg), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_str_eq(big_msg, "");

    /* an entity at the very end of the text, and a lone '&' */
    static const char ends[] = "<Code>a&am</Code><Message>&</Message>";
    parse(ends, sizeof(ends) - 1, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid));
    cr_assert_str_eq(code, "a&am");
    cr_assert_str_eq(msg, "&");
}

/* ---------------------------------------------------------------- credentials */

/* load -- fb_s3_credentials_load of a file with content and mode */
static int
load(const char *content, mode_t mode, fb_s3_credentials_t *c, char *err, size_t errlen)
{
    err[0] = '\0';
    return fb_s3_credentials_load(test_write("cred", content, mode), c, err, errlen);
}

Test(s3, credentials_forms)
{
    fb_s3_credentials_t c;
    char err[512];

    cr_assert_eq(load("AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n", 0600, &c, err,
                      sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(c.id, "AKIDEXAMPLE");
    cr_assert_str_eq(c.secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    cr_assert_eq(load("AKID\nsec:ret\n", 0400, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(c.id, "AKID");
    cr_assert_str_eq(c.secret, "sec:ret");
    cr_assert_eq(load("AKID\r\nsecret\r\n\r\n", 0600, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(c.id, "AKID");
    cr_assert_str_eq(c.secret, "secret");
    cr_assert_eq(load("AKID:se:cret", 0600, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(c.secret, "se:cret");
    fb_s3_credentials_wipe(&c);
    cr_assert_eq(c.id[0] | c.secret[0], 0);
    cr_assert_eq(test_log_count, 0);
}

Test(s3, credentials_refusals)
{
    static const struct {
        const char *content;
        mode_t mode;
        const char *why;
    } cases[] = {
        {"AKID:topsecret\n", 0640, "accessible by group or others"},
        {"AKID:topsecret\n", 0604, "accessible by group or others"},
        {"AKID:topsecret\n", 0660, "accessible by group or others"},
        {"AKIDtopsecret\n", 0600, "one line without ':'"},
        {"AKID\ntopsecret\nmore\n", 0600, "more than two lines"},
        {":topsecret\n", 0600, "access key id must be"},
        {"\ntopsecret\n", 0600, "access key id must be"},
        {"AK:ID\ntopsecret\n", 0600, "access key id must be"},
        {"AK ID:topsecret\n", 0600, "access key id must be"},
        {"AKID:\n", 0600, "the secret must be"},
        {"AKID\n\n", 0600, "one line without ':'"},
        {"AKID:top secret\n", 0600, "the secret must be"},
        {"AKID:topsecret \n", 0600, "the secret must be"},
        {"AKID:top\tsecret\n", 0600, "the secret must be"},
        {"AKID:top\xc3\xa9secret\n", 0600, "the secret must be"},
        {"\n", 0600, "one line without ':'"},
        {"", 0600, "a secret needs at least 1"},
    };
    fb_s3_credentials_t c;
    char err[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&c, 'x', sizeof(c));
        cr_assert_eq(load(cases[i].content, cases[i].mode, &c, err, sizeof(err)), -1, "case %zu",
                     i);
        cr_assert(strstr(err, cases[i].why) != NULL, "case %zu: %s", i, err);
        cr_assert(strstr(err, "secret\n") == NULL && strstr(err, "topsecret") == NULL &&
                      strstr(err, "top secret") == NULL,
                  "the secret in err: %s", err);
        cr_assert_eq(c.id[0] | c.secret[0], 0, "case %zu: half a result", i);
    }

    /* too long; a NUL byte; not a file; no file */
    char long_id[FB_S3_ID_MAX + 16];
    memset(long_id, 'A', FB_S3_ID_MAX + 1);
    strcpy(long_id + FB_S3_ID_MAX + 1, ":s\n");
    cr_assert_eq(load(long_id, 0600, &c, err, sizeof(err)), -1);
    long_id[FB_S3_ID_MAX] = ':';
    cr_assert_eq(load(long_id, 0600, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(strlen(c.id), FB_S3_ID_MAX);

    char path[256];
    snprintf(path, sizeof(path), "%s/nul", test_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite("AKID:se\0cret\n", 1, 13, f), 13);
    fclose(f);
    chmod(path, 0600);
    cr_assert_eq(fb_s3_credentials_load(path, &c, err, sizeof(err)), -1);
    cr_assert(strstr(err, "NUL") != NULL, "%s", err);
    cr_assert_eq(fb_s3_credentials_load(test_dir, &c, err, sizeof(err)), -1);
    cr_assert(strstr(err, "not a regular file") != NULL, "%s", err);
    cr_assert_eq(fb_s3_credentials_load("/nonexistent/fbpipe/cred", &c, err, sizeof(err)), -1);
    cr_assert(strstr(err, "No such file") != NULL, "%s", err);
    cr_assert_eq(test_log_count, 0, "the module logged: %s", test_log_buf);
}

/* ---------------------------------------------------------------- options */

/* client -- fb_s3_client_new with the test's key and these settings */
static fb_s3_t *
client(const char *endpoint, const char *bucket, const char *region, bool path_style, char *err,
       size_t errlen)
{
    fb_s3_opts_t o = {
        .endpoint = endpoint,
        .bucket = bucket,
        .region = region,
        .path_style = path_style,
        .access_key_id = "AKIDTEST",
        .secret_access_key = "s3cr3t/Key+XYZ",
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
    };
    err[0] = '\0';
    return fb_s3_client_new(&o, err, errlen);
}

Test(s3, options_checked)
{
    static const struct {
        const char *endpoint, *bucket, *region;
        bool path_style;
        const char *why;
    } bad[] = {
        {NULL, "bkt", NULL, true, "no endpoint"},
        {"", "bkt", NULL, true, "no endpoint"},
        {"ftp://h", "bkt", NULL, true, "not http"},
        {"127.0.0.1:9000", "bkt", NULL, true, "endpoint"},
        {"http://user:pw@h:9000", "bkt", NULL, true, "without user"},
        {"http://user:pw@h st:9000", "bkt", NULL, true, "with user info, not shown"},
        {"ftp://user:pw@h", "bkt", NULL, true, "with user info, not shown"},
        {"http://h:9000/path", "bkt", NULL, true, "without user, path"},
        {"http://h:9000/?q=1", "bkt", NULL, true, "query"},
        {"http://h:9000/#f", "bkt", NULL, true, "fragment"},
        {"http://h", "Bkt", NULL, true, "not a valid name"},
        {"http://h", "b_k", NULL, true, "not a valid name"},
        {"http://h", "bk", NULL, true, "not a valid name"},
        {"http://h", "-bkt", NULL, true, "not a valid name"},
        {"http://h", "bkt.", NULL, true, "not a valid name"},
        {"http://h", "b..kt", NULL, true, "not a valid name"},
        {"http://h", NULL, NULL, true, "not a valid name"},
        {"http://h", "bkt", "us east", true, "not a region"},
        {"http://h", "bkt", "x:y", true, "not a region"},
        {"http://h", "bkt", "", true, "not a region"},
        {"http://127.0.0.1:9000", "bkt", NULL, false, "virtual-host style needs a host name"},
        {"http://[::1]:9000", "bkt", NULL, false, "virtual-host style needs a host name"},
    };
    char err[FB_S3_ERR_LEN];
    fb_s3_t *s3;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s3 = client(bad[i].endpoint, bad[i].bucket, bad[i].region, bad[i].path_style, err,
                    sizeof(err));
        cr_assert_null(s3, "case %zu accepted", i);
        cr_assert(strstr(err, bad[i].why) != NULL, "case %zu: %s", i, err);
        cr_assert(strstr(err, "pw") == NULL, "a password in err: %s", err);
    }
    fb_s3_opts_t o = {.endpoint = "http://h", .bucket = "bkt", .path_style = true};
    cr_assert_null(fb_s3_client_new(&o, err, sizeof(err)));
    cr_assert(strstr(err, "access key id") != NULL, "%s", err);
    o.access_key_id = "a:b";
    cr_assert_null(fb_s3_client_new(&o, err, sizeof(err)));
    o.access_key_id = "AKID";
    o.secret_access_key = "has space";
    cr_assert_null(fb_s3_client_new(&o, err, sizeof(err)));
    cr_assert(strstr(err, "secret") != NULL && strstr(err, "has space") == NULL, "%s", err);

    s3 = client("https://s3.example.com", "my.bucket-1", "eu-west-3", false, err, sizeof(err));
    cr_assert_not_null(s3, "%s", err);
    fb_s3_client_free(s3);
    s3 = client("http://[::1]:9000/", "bkt", NULL, true, err, sizeof(err));
    cr_assert_not_null(s3, "%s", err);
    fb_s3_client_free(s3);
    fb_s3_client_free(NULL);
}

/* ---------------------------------------------------------------- requests */

/* A one-shot HTTP server: accepts one connection, reads one request
 * (headers and Content-Length bytes), answers reply (or closes at once
 * when reply is NULL), closes. */
typedef struct fixture {
    int lfd;
    int port;
    pthread_t th;
    const char *reply;
    size_t reply_len;
    char req[65536];
    size_t req_len;
} fixture_t;

static void *
fixture_run(void *arg)
{
    fixture_t *fx = arg;
    int fd = accept(fx->lfd, NULL, NULL);
    size_t want = 0;
    char *end;

    if (fd < 0)
        return NULL;
    while (fx->reply != NULL && fx->req_len < sizeof(fx->req) - 1) {
        ssize_t n = read(fd, fx->req + fx->req_len, sizeof(fx->req) - 1 - fx->req_len);
        if (n <= 0)
            break;
        fx->req_len += (size_t)n;
        fx->req[fx->req_len] = '\0';
        end = strstr(fx->req, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(fx->req, "\r\nContent-Length:");
            if (want == 0)
                want = (size_t)(end + 4 - fx->req) + (cl != NULL ? strtoul(cl + 17, NULL, 10) : 0);
            if (fx->req_len >= want)
                break;
        }
    }
    for (size_t off = 0; fx->reply != NULL && off < fx->reply_len;) {
        ssize_t n = write(fd, fx->reply + off, fx->reply_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    return NULL;
}

static void
fixture_start(fixture_t *fx, const char *reply, size_t reply_len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);

    memset(fx, 0, sizeof(*fx));
    fx->reply = reply;
    fx->reply_len = reply_len;
    fx->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fx->lfd, 0);
    cr_assert_eq(bind(fx->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fx->lfd, 1), 0);
    cr_assert_eq(getsockname(fx->lfd, (struct sockaddr *)&sa, &slen), 0);
    fx->port = ntohs(sa.sin_port);
    cr_assert_eq(pthread_create(&fx->th, NULL, fixture_run, fx), 0);
}

static void
fixture_stop(fixture_t *fx)
{
    pthread_join(fx->th, NULL);
    close(fx->lfd);
}

/* put_to -- start a fixture answering reply, PUT body as name through a path-style client */
static fb_s3_result_t
put_to(fixture_t *fx, const char *reply, const char *name, const char *body,
       const char *encoding, char *err, size_t errlen)
{
    char endpoint[64];
    fb_s3_t *s3;
    fb_s3_result_t r;

    fixture_start(fx, reply, reply != NULL ? strlen(reply) : 0);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fx->port);
    s3 = client(endpoint, "bkt", "eu-central-1", true, err, errlen);
    cr_assert_not_null(s3, "%s", err);
    r = fb_s3_put(s3, name, body, strlen(body), "application/x-ndjson", encoding, err, errlen);
    fb_s3_client_free(s3);
    fixture_stop(fx);
    return r;
}

Test(s3, put_sends_signed_request_with_body_digest)
{
    static const char body[] = "{\"a\":1}\n{\"a\":2}\n";
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1], want[128], err[FB_S3_ERR_LEN];
    fixture_t fx;

    cr_assert_eq(put_to(&fx, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        "p/k/2024-12-06/t-0-1-2.jsonl.gz", body, "gzip", err, sizeof(err)),
                 FB_S3_OK, "%s", err);
    cr_assert_str_eq(err, "");
    crypto_hash_sha256(digest, (const unsigned char *)body, strlen(body));
    sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
    snprintf(want, sizeof(want), "\r\nx-amz-content-sha256: %s\r\n", hex);
    cr_assert(strncmp(fx.req, "PUT /bkt/p/k/2024-12-06/t-0-1-2.jsonl.gz HTTP/1.1\r\n", 51) == 0,
              "%s", fx.req);
    cr_assert(strstr(fx.req, want) != NULL, "%s", fx.req);
    cr_assert(strstr(fx.req, "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/") != NULL,
              "%s", fx.req);
    cr_assert(strstr(fx.req, "/eu-central-1/s3/aws4_request") != NULL, "%s", fx.req);
    const char *signed_headers = strstr(fx.req, "SignedHeaders=");
    cr_assert_not_null(signed_headers, "%s", fx.req);
    size_t signed_len = strcspn(signed_headers, ",\r");
    cr_assert(memmem(signed_headers, signed_len, "x-amz-content-sha256", 20) != NULL &&
                  memmem(signed_headers, signed_len, "content-type", 12) != NULL,
              "the digest or the type is not signed: %.*s", (int)signed_len, signed_headers);
    cr_assert(strstr(fx.req, "\r\nContent-Type: application/x-ndjson\r\n") != NULL, "%s", fx.req);
    cr_assert(strstr(fx.req, "\r\nContent-Encoding: gzip\r\n") != NULL, "%s", fx.req);
    cr_assert(strstr(fx.req, "s3cr3t") == NULL, "the secret on the wire: %s", fx.req);
    cr_assert_str_eq(fx.req + fx.req_len - strlen(body), body);
}

Test(s3, put_encodes_names)
{
    char err[FB_S3_ERR_LEN];
    fixture_t fx;

    cr_assert_eq(put_to(&fx, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "a b/c+d%e~f_g.h",
                        "x", NULL, err, sizeof(err)),
                 FB_S3_OK, "%s", err);
    cr_assert(strncmp(fx.req, "PUT /bkt/a%20b/c%2Bd%25e~f_g.h HTTP/1.1\r\n", 41) == 0, "%s",
              fx.req);
    cr_assert(strstr(fx.req, "Content-Encoding") == NULL, "%s", fx.req);
}

Test(s3, put_errors_classified_and_described)
{
    static const struct {
        const char *head; /* status line and headers; NULL: reply raw */
        const char *body; /* the body, or the raw reply (NULL: close at once) */
        fb_s3_result_t want;
        const char *says;
    } cases[] = {
        {"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n",
         "<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code>"
         "<Message>Forbidden</Message><RequestId>4442587F</RequestId></Error>",
         FB_S3_RETRY,
         "HTTP 403 SignatureDoesNotMatch: Forbidden (request id 4442587F); check the access key "
         "id and secret"},
        {"HTTP/1.1 403 Forbidden\r\n", "<Error><Code>InvalidAccessKeyId</Code></Error>",
         FB_S3_RETRY, "HTTP 403 InvalidAccessKeyId; check the access key id and secret"},
        {"HTTP/1.1 400 Bad Request\r\n",
         "<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum"
         "</Message></Error>",
         FB_S3_REFUSED, "HTTP 400 EntityTooLarge: Your proposed upload exceeds the maximum"},
        {"HTTP/1.1 400 Bad Request\r\n", "<Error><Code>InvalidArgument</Code></Error>",
         FB_S3_RETRY, "HTTP 400 InvalidArgument"},
        {"HTTP/1.1 503 Slow Down\r\n", "<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>",
         FB_S3_RETRY, "HTTP 503 SlowDown: Reduce"},
        {"HTTP/1.1 429 Too Many\r\n", "", FB_S3_RETRY, "HTTP 429"},
        {"HTTP/1.1 502 Bad Gateway\r\n", "<html>\x01" "bad\r\ngateway</html>", FB_S3_RETRY,
         "HTTP 502; body: <html>?bad  gateway</html>"},
        {"HTTP/1.1 301 Moved Permanently\r\nLocation: http://elsewhere.example/bkt/k/o.jsonl\r\n",
         "", FB_S3_RETRY,
         "HTTP 301; redirected (not followed) to http://elsewhere.example/bkt/k/o.jsonl"},
        {"HTTP/1.1 404 Not Found\r\n", "<Error><Code>NoSuchBucket</Code></Error>", FB_S3_RETRY,
         "HTTP 404 NoSuchBucket; check the bucket's name, or create it"},
        {NULL, "garbage\r\n\r\n", FB_S3_RETRY, ": "},
        {NULL, NULL, FB_S3_RETRY, ": "}, /* closed at once */
    };
    char err[FB_S3_ERR_LEN], url[128], reply[1024];
    fixture_t fx;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *r = cases[i].body;
        if (cases[i].head != NULL) {
            snprintf(reply, sizeof(reply), "%sContent-Length: %zu\r\n\r\n%s", cases[i].head,
                     strlen(cases[i].body), cases[i].body);
            r = reply;
        }
        cr_assert_eq(put_to(&fx, r, "k/o.jsonl", "{}\n", NULL, err, sizeof(err)), cases[i].want,
                     "case %zu: %s", i, err);
        snprintf(url, sizeof(url), "PUT http://127.0.0.1:%d/bkt/k/o.jsonl: ", fx.port);
        cr_assert(strncmp(err, url, strlen(url)) == 0, "case %zu: %s", i, err);
        cr_assert(strstr(err, cases[i].says) != NULL, "case %zu: %s\nwant: %s", i, err,
                  cases[i].says);
        cr_assert_gt(strlen(err), strlen(url), "case %zu: no reason: %s", i, err);
        cr_assert(strstr(err, "s3cr3t") == NULL, "the secret in err: %s", err);
    }
}

Test(s3, put_bounds_a_huge_response)
{
    size_t n = 4u << 20;
    char *reply = malloc(n + 128), err[FB_S3_ERR_LEN];
    int h = snprintf(reply, 128, "HTTP/1.1 500 Oops\r\nContent-Length: %zu\r\n\r\n<Error><Code>",
                     n);
    fixture_t fx;

    memset(reply + h, 'C', n);
    strcpy(reply + h + n - 20, "</Code></Error>");
    cr_assert_eq(put_to(&fx, reply, "k/o", "x", NULL, err, sizeof(err)), FB_S3_RETRY);
    /* the closing tag lies beyond what is kept: no Code, a bounded snippet */
    cr_assert(strstr(err, "HTTP 500; body: <Error><Code>CCCC") != NULL, "%s", err);
    cr_assert_lt(strlen(err), 256, "%s", err);
    free(reply);
}

Test(s3, put_refuses_bad_names_without_a_request)
{
    char err[FB_S3_ERR_LEN];
    fb_s3_t *s3 = client("http://127.0.0.1:1", "bkt", NULL, true, err, sizeof(err));
    static const char *bad[] = {"", "/k", "k/", "k//o", "k/./o", "k/../o", "..", "k\no",
                                "k/\xc3\xa9"};

    cr_assert_not_null(s3, "%s", err);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(fb_s3_put(s3, bad[i], "x", 1, NULL, NULL, err, sizeof(err)), FB_S3_REFUSED,
                     "name %zu", i);
        cr_assert(strstr(err, "invalid object name") != NULL, "%s", err);
        cr_assert(strchr(err, '\n') == NULL, "%s", err);
    }
    cr_assert_eq(fb_s3_put(s3, NULL, "x", 1, NULL, NULL, err, sizeof(err)), FB_S3_REFUSED);
    char longname[FB_S3_NAME_MAX + 2];
    memset(longname, 'n', FB_S3_NAME_MAX + 1);
    longname[FB_S3_NAME_MAX + 1] = '\0';
    cr_assert_eq(fb_s3_put(s3, longname, "x", 1, NULL, NULL, err, sizeof(err)), FB_S3_REFUSED);
    cr_assert_eq(fb_s3_put(s3, "k/o", "x", 1, NULL, "br", err, sizeof(err)), FB_S3_REFUSED);
    cr_assert_eq(fb_s3_put(s3, "k/o", "x", 1, "text/plain\r\nX-Evil: 1", NULL, err, sizeof(err)),
                 FB_S3_REFUSED);
    /* a valid name to a closed port: retried, and says so */
    cr_assert_eq(fb_s3_put(s3, "k/o", "x", 1, NULL, NULL, err, sizeof(err)), FB_S3_RETRY);
    cr_assert(strstr(err, "PUT http://127.0.0.1:1/bkt/k/o: ") != NULL, "%s", err);
    cr_assert(strstr(err, "onnect") != NULL, "%s", err);
    /* a short err buffer is cut, never overrun */
    char tiny[8];
    cr_assert_eq(fb_s3_put(s3, "k/o", "x", 1, NULL, NULL, tiny, sizeof(tiny)), FB_S3_RETRY);
    cr_assert_str_eq(tiny, "PUT htt");
    fb_s3_client_free(s3);
}
