/*
 * router_replay.c -- `fbpiped replay`: the records of dead-letter files,
 * produced to the topic again once the cause is fixed (a key added to
 * the database, a file name freed), so that the routers read them anew.
 *
 * A dead letter (router_main.c) is one JSON line holding the whole
 * record: key, value and headers in base64, with its topic, partition,
 * offset, timestamp and the reason. Every line of a file is checked
 * before any is produced: a file with one line that is not a dead letter
 * is not replayed at all (its name and line are said). A file whose
 * records Kafka all acknowledged (idempotent producer, acks=all, the
 * daemon's [kafka] and [librdkafka] settings) is renamed FILE.replayed,
 * so that it is never replayed twice; a file already named so is
 * refused. --dry-run checks and counts, produces and renames nothing.
 * Runs in its own process, never in the daemon; it never writes the
 * output files itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <sodium.h>

#include "config.h"

#include "common/conf.h"
#include "common/kafka.h"
#include "common/log.h"
#include "router/router.h"

#define REPLAY_TIMEOUT_MS 60000
#define REPLAYED ".replayed"
/* exit status, as fbpiped's (fbpiped.8) */
#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_CONFIG 2
#define EXIT_USAGE 64

typedef struct letter {
    uint8_t *key, *value;
    size_t key_len, value_len;
    bool has_key;
    rd_kafka_headers_t *headers;
} letter_t;

typedef struct replay {
    size_t delivered, failed;
    char first_err[256];
} replay_t;

static void
letter_free(letter_t *l)
{
    free(l->key);
    free(l->value);
    if (l->headers != NULL)
        rd_kafka_headers_destroy(l->headers);
    memset(l, 0, sizeof(*l));
}

/* unb64 -- a base64 JSON string into a new buffer (*out, *len); JSON
 * null gives no buffer. 0, or -1 when it is neither. */
static int
unb64(json_t *j, uint8_t **out, size_t *len)
{
    const char *s;
    size_t n;

    *out = NULL;
    *len = 0;
    if (json_is_null(j))
        return 0;
    if (!json_is_string(j))
        return -1;
    s = json_string_value(j);
    n = json_string_length(j);
    if ((*out = malloc(n / 4 * 3 + 3)) == NULL)
        return -1;
    if (sodium_base642bin(*out, n / 4 * 3 + 3, s, n, NULL, len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* parse -- one line as a dead letter; 0, or -1 with why. */
static int
parse(const char *line, letter_t *l, const char **why)
{
    json_error_t jerr;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr), *hs, *h;
    size_t i;
    int rc = -1;

    memset(l, 0, sizeof(*l));
    *why = "not a JSON object";
    if (!json_is_object(o))
        goto out;
    *why = "no \"value\" in base64 (a dead letter of an older fbpiped cannot be replayed)";
    if (unb64(json_object_get(o, "value"), &l->value, &l->value_len) < 0 || l->value == NULL)
        goto out;
    *why = "\"key\" is neither base64 nor null";
    if (!json_is_object(o) || unb64(json_object_get(o, "key"), &l->key, &l->key_len) < 0)
        goto out;
    l->has_key = l->key != NULL;
    hs = json_object_get(o, "headers");
    *why = "\"headers\" is not a list of {\"name\", \"value\"}";
    if (hs != NULL && !json_is_array(hs))
        goto out;
    if (json_array_size(hs) > 0 && (l->headers = rd_kafka_headers_new(json_array_size(hs))) == NULL)
        goto out;
    json_array_foreach(hs, i, h) {
        uint8_t *v;
        size_t vlen;
        json_t *name = json_object_get(h, "name");
        if (!json_is_string(name) || unb64(json_object_get(h, "value"), &v, &vlen) < 0)
            goto out;
        rd_kafka_header_add(l->headers, json_string_value(name), -1, v, v ? (ssize_t)vlen : 0);
        free(v);
    }
    rc = 0;
out:
    json_decref(o);
    if (rc < 0)
        letter_free(l);
    return rc;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    replay_t *r = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        r->delivered++;
    } else {
        if (r->failed++ == 0)
            snprintf(r->first_err, sizeof(r->first_err), "%s", rd_kafka_err2str(m->err));
    }
}

/* check_file -- every line of path is a dead letter; their count, or -1
 * after saying which line is not. */
static long
check_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    long n = 0, no = 0;
    const char *why;
    letter_t l;

    if (fp == NULL) {
        fb_log_error("replay: cannot open %s", path);
        return -1;
    }
    while (getline(&line, &cap, fp) >= 0) {
        no++;
        if (parse(line, &l, &why) < 0) {
            fb_log_errorx("replay: %s:%ld: %s: nothing of this file is replayed", path, no, why);
            n = -1;
            break;
        }
        letter_free(&l);
        n++;
    }
    free(line);
    fclose(fp);
    return n;
}

/* produce_file -- the records of a checked file, to the topic; 0 when
 * Kafka acknowledged every one. */
static int
produce_file(rd_kafka_t *rk, replay_t *r, const fb_conf_t *conf, const char *path, long n)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    const char *why;
    letter_t l;
    size_t before_ok = r->delivered, before_failed = r->failed;

    if (fp == NULL) {
        fb_log_error("replay: cannot open %s", path);
        return -1;
    }
    while (getline(&line, &cap, fp) >= 0) {
        if (parse(line, &l, &why) < 0)
            break; /* changed since it was checked: counted as missing below */
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(conf->topic),
                    RD_KAFKA_V_KEY(l.has_key ? l.key : NULL, l.key_len),
                    RD_KAFKA_V_VALUE(l.value, l.value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(l.headers), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 100);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            l.headers = NULL; /* the message owns them now */
        else if (r->failed++ == 0)
            snprintf(r->first_err, sizeof(r->first_err), "%s", rd_kafka_err2str(err));
        letter_free(&l);
        rd_kafka_poll(rk, 0);
    }
    free(line);
    fclose(fp);
    rd_kafka_flush(rk, REPLAY_TIMEOUT_MS);
    if (r->delivered - before_ok != (size_t)n) {
        fb_log_errorx("replay: %s: %zu of %ld records acknowledged by Kafka (%zu failed%s%s); "
                      "not renamed: replay it again once Kafka takes them", path,
                      r->delivered - before_ok, n, r->failed - before_failed,
                      r->failed > before_failed ? ": " : "",
                      r->failed > before_failed ? r->first_err : "");
        return -1;
    }
    return 0;
}

/* done_name -- path + ".replayed", or NULL. */
static char *
done_name(const char *path)
{
    size_t len = strlen(path) + sizeof(REPLAYED);
    char *to = malloc(len);

    if (to != NULL)
        snprintf(to, len, "%s%s", path, REPLAYED);
    return to;
}

static void
usage(FILE *fp)
{
    fprintf(fp, "usage: fbpiped replay [--dry-run] [-c FILE] DEAD-LETTER-FILE...\n");
}

/* fb_replay_main -- `fbpiped replay`; exit status. */
int
fb_replay_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf_path = FB_SYSCONFDIR "/fbpipe.conf";
    bool dry = false;
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *kc;
    fb_conf_t *conf;
    replay_t r = {0};
    char err[512];
    int c, rc = EXIT_OK;

    fb_log_set_role("replay");
    while ((c = getopt_long(argc, argv, "c:hn", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': conf_path = optarg; break;
        case 'n': dry = true; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fb_log_errorx("replay: sodium_init failed");
        return EXIT_FAILED;
    }
    conf = fb_conf_load(conf_path);
    if (conf == NULL) {
        fb_log_errorx("replay: %s: configuration refused (see above)", conf_path);
        return EXIT_CONFIG;
    }
    if (!dry) {
        kc = fb_kafka_producer_conf(conf, 0);
        if (kc == NULL ||
            rd_kafka_conf_set(kc, "message.timeout.ms", "60000", err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fb_log_errorx("replay: the producer settings are refused");
            fb_conf_free(conf);
            return EXIT_CONFIG;
        }
        rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
        rd_kafka_conf_set_opaque(kc, &r);
        if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err))) == NULL) {
            fb_log_errorx("replay: rd_kafka_new: %s", err);
            rd_kafka_conf_destroy(kc);
            fb_conf_free(conf);
            return EXIT_CONFIG;
        }
    }
    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        size_t len = strlen(path);
        long n;
        char *to;

        if (len >= strlen(REPLAYED) && strcmp(path + len - strlen(REPLAYED), REPLAYED) == 0) {
            fb_log_errorx("replay: %s was replayed already: refused", path);
            rc = EXIT_FAILED;
            continue;
        }
        if ((n = check_file(path)) < 0) {
            rc = EXIT_FAILED;
            continue;
        }
        if (dry) {
            printf("replay: %s: %ld records would be produced to %s (dry run)\n", path, n,
                   conf->topic);
            continue;
        }
        if (produce_file(rk, &r, conf, path, n) < 0) {
            rc = EXIT_FAILED;
            continue;
        }
        to = done_name(path);
        if (to == NULL || renameat2(AT_FDCWD, path, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
            fb_log_error("replay: %s: %ld records produced to %s, but renaming it to %s failed: "
                         "remove or rename it before it is replayed twice",
                         path, n, conf->topic, to ? to : "(out of memory)");
            rc = EXIT_FAILED;
        } else {
            printf("replay: %s: %ld records produced to %s; renamed %s\n", path, n, conf->topic,
                   to);
        }
        free(to);
    }
    if (rk != NULL)
        rd_kafka_destroy(rk);
    fb_conf_free(conf);
    return rc;
}
