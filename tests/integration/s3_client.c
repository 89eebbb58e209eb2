/*
 * s3_client.c -- drives the router's S3 client (src/router/router_s3.c)
 * for tests/integration/test-s3-client:
 *
 *   s3_client [-p] [-r REGION] [-t MS] ENDPOINT BUCKET CREDENTIALS bucket
 *   s3_client [-p] [-r REGION] [-t MS] [-z] [-n N] ENDPOINT BUCKET CREDENTIALS put NAME FILE
 *
 * -p path style; -z gzip the file and send it with Content-Encoding: gzip
 * (the gzip bytes are also written to FILE.gz, to compare); -n N sends the
 * same object N times on one client (keep-alive, and retried uploads are
 * identical). Prints "OK", or "RETRY: err" / "REFUSED: err", and exits
 * 0, 10 or 20; 2 on a usage or setup error. Never prints the secret.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "router/router_gzip.h"
#include "router/router_s3.h"

static int report(fb_s3_result_t r, const char *err);
static int read_file(const char *path, uint8_t **out, size_t *len);
static int write_file(const char *path, const uint8_t *buf, size_t len);

/* report -- one line and the exit status of a result */
static int
report(fb_s3_result_t r, const char *err)
{
    switch (r) {
    case FB_S3_OK: printf("OK\n"); return 0;
    case FB_S3_RETRY: printf("RETRY: %s\n", err); return 10;
    case FB_S3_REFUSED: printf("REFUSED: %s\n", err); return 20;
    }
    return 2;
}

/* read_file -- a whole file into a malloc'd buffer */
static int
read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (f == NULL)
        return -1;
    do {
        if (n == cap) {
            uint8_t *more = realloc(buf, cap = cap * 2 + 65536);
            if (more == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = more;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

/* write_file -- buf into path */
static int
write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL)
        return -1;
    if (fwrite(buf, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

int
main(int argc, char **argv)
{
    fb_s3_opts_t opts = {0};
    fb_s3_credentials_t cred;
    char err[FB_S3_ERR_LEN];
    fb_s3_t *s3;
    fb_s3_result_t r = FB_S3_OK;
    bool gzip = false;
    long times = 1;
    int c, rc;

    while ((c = getopt(argc, argv, "pr:t:zn:")) != -1) {
        switch (c) {
        case 'p': opts.path_style = true; break;
        case 'r': opts.region = optarg; break;
        case 't': opts.timeout_ms = opts.connect_timeout_ms = atol(optarg); break;
        case 'z': gzip = true; break;
        case 'n': times = atol(optarg); break;
        default: return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 4 || times < 1 || (strcmp(argv[3], "bucket") == 0 && argc != 4) ||
        (strcmp(argv[3], "put") == 0 && argc != 6) ||
        (strcmp(argv[3], "bucket") != 0 && strcmp(argv[3], "put") != 0)) {
        fprintf(stderr, "usage: s3_client [-p] [-r REGION] [-t MS] [-z] [-n N] ENDPOINT BUCKET "
                        "CREDENTIALS bucket|put NAME FILE\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "s3_client: curl_global_init failed\n");
        return 2;
    }
    if (fb_s3_credentials_load(argv[2], &cred, err, sizeof(err)) < 0) {
        fprintf(stderr, "s3_client: %s\n", err);
        curl_global_cleanup();
        return 2;
    }
    opts.endpoint = argv[0];
    opts.bucket = argv[1];
    opts.access_key_id = cred.id;
    opts.secret_access_key = cred.secret;
    s3 = fb_s3_client_new(&opts, err, sizeof(err));
    fb_s3_credentials_wipe(&cred);
    if (s3 == NULL) {
        fprintf(stderr, "s3_client: %s\n", err);
        curl_global_cleanup();
        return 2;
    }
    if (strcmp(argv[3], "bucket") == 0) {
        r = fb_s3_create_bucket(s3, err, sizeof(err));
    } else {
        uint8_t *body, *gz = NULL;
        size_t len, gzlen = 0;
        char path[4096];

        if (read_file(argv[5], &body, &len) < 0) {
            fprintf(stderr, "s3_client: %s: %s\n", argv[5], strerror(errno));
            fb_s3_client_free(s3);
            curl_global_cleanup();
            return 2;
        }
        if (gzip) {
            snprintf(path, sizeof(path), "%s.gz", argv[5]);
            if (fb_gzip(body, len, FB_GZIP_LEVEL, &gz, &gzlen) < 0 ||
                write_file(path, gz, gzlen) < 0) {
                fprintf(stderr, "s3_client: gzip into %s: %s\n", path, strerror(errno));
                free(gz);
                free(body);
                fb_s3_client_free(s3);
                curl_global_cleanup();
                return 2;
            }
        }
        for (long i = 0; i < times && r == FB_S3_OK; i++)
            r = fb_s3_put(s3, argv[4], gzip ? gz : body, gzip ? gzlen : len, "application/x-ndjson",
                          gzip ? "gzip" : NULL, err, sizeof(err));
        free(gz);
        free(body);
    }
    rc = report(r, err);
    fb_s3_client_free(s3);
    curl_global_cleanup();
    return rc;
}
