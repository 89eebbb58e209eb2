/*
 * http_client.c -- drives the HTTP target's client (src/router/router_post.c)
 * for tests/integration/test-http-client:
 *
 *   http_client [-z] [-t MS] [-u USERFILE] [-k KEY] [-n N] [-H 'Name: value']... URL FILE
 *
 * POSTs FILE's bytes as one NDJSON body. -z gzip; -t the total timeout in
 * milliseconds (the connect timeout too); -u a file holding "user:password"
 * on one line (not on the command line); -k the idempotency key; -n N
 * sends the body N times on one client (one connection); -H a header, as
 * often as wanted. Prints "OK", or "RETRY: err", "REFUSED: err",
 * "TOO_LARGE: err", and exits 0, 10, 20 or 30 (the last send's); 2 on a
 * usage or setup error (with why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "router/router_post.h"

#define HEADERS_MAX 16

static int report(fb_post_result_t r, const char *err);
static char *read_file(const char *path, size_t *len);

/* report -- one line and the exit status of a result */
static int
report(fb_post_result_t r, const char *err)
{
    switch (r) {
    case FB_POST_OK: printf("OK\n"); return 0;
    case FB_POST_RETRY: printf("RETRY: %s\n", err); return 10;
    case FB_POST_REFUSED: printf("REFUSED: %s\n", err); return 20;
    case FB_POST_TOO_LARGE: printf("TOO_LARGE: %s\n", err); return 30;
    }
    return 2;
}

/* read_file -- a whole file into a malloc'd buffer (NUL after it) */
static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *more = realloc(buf, cap = cap * 2 + 65536);
            if (more == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = more;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int
main(int argc, char **argv)
{
    const char *headers[HEADERS_MAX];
    fb_post_opts_t o = {0};
    const char *key = NULL, *userfile = NULL;
    char err[FB_POST_ERR_LEN], *body, *user = NULL;
    size_t len, ulen;
    long n = 1;
    int opt, rc = 2;
    fb_post_t *c;

    while ((opt = getopt(argc, argv, "zt:u:k:n:H:")) != -1) {
        switch (opt) {
        case 'z': o.gzip = true; break;
        case 't': o.timeout_ms = o.connect_timeout_ms = atol(optarg); break;
        case 'u': userfile = optarg; break;
        case 'k': key = optarg; break;
        case 'n': n = atol(optarg); break;
        case 'H':
            if (o.n_headers == HEADERS_MAX) {
                fprintf(stderr, "http_client: more than %d headers\n", HEADERS_MAX);
                return 2;
            }
            headers[o.n_headers++] = optarg;
            break;
        default: goto usage;
        }
    }
    if (argc - optind != 2 || n < 1)
        goto usage;
    o.url = argv[optind];
    o.headers = headers;
    body = read_file(argv[optind + 1], &len);
    if (body == NULL) {
        fprintf(stderr, "http_client: cannot read %s\n", argv[optind + 1]);
        return 2;
    }
    if (userfile != NULL) {
        user = read_file(userfile, &ulen);
        if (user == NULL) {
            fprintf(stderr, "http_client: cannot read %s\n", userfile);
            free(body);
            return 2;
        }
        user[strcspn(user, "\r\n")] = '\0';
        o.basic_auth = user;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "http_client: curl_global_init failed\n");
        free(body);
        free(user);
        return 2;
    }
    c = fb_post_new(&o, err, sizeof(err));
    if (c == NULL) {
        printf("CONFIG: %s\n", err);
    } else {
        for (long i = 0; i < n; i++)
            rc = report(fb_post_send(c, body, len, key, err, sizeof(err)), err);
        fb_post_free(c);
    }
    curl_global_cleanup();
    free(body);
    free(user);
    return rc;

usage:
    fprintf(stderr, "usage: http_client [-z] [-t MS] [-u USERFILE] [-k KEY] [-n N] "
                    "[-H 'Name: value']... URL FILE\n");
    return 2;
}
