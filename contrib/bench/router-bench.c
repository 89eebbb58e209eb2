/*
 * router-bench.c -- Kafka into per-key files through fbpiped's routers,
 * beside a plain librdkafka consumer reading the same topic to nowhere, in
 * one run, for 1, 100 and 10,000 access keys.
 *
 * Each round fills a fresh 4-partition topic with N Records of 256-byte
 * messages (tests/integration/feed_records.c), then times:
 *   plain:  one consumer in a fresh group (the routers' fetch settings),
 *           from its partitions' assignment to its Nth message (nothing
 *           done with them);
 *   fbpipe: `fbpiped` with [router] only (router.workers from
 *           FBPIPE_BENCH_ROUTERS, default 2 as in fbpipe.conf; fsync =
 *           batch, or FBPIPE_BENCH_FSYNC; max_open_files 16384, above the
 *           keys as fbpipe.conf(5) advises, or FBPIPE_BENCH_MAX_OPEN; no
 *           rotation), from the first router's assignment (its log line)
 *           to every file holding all its lines (the bench computes the
 *           expected bytes of each key with the router's own line code).
 * Both exclude the group join and neither excludes its first batch. The
 * routers' clock includes the rebalance when the second one joins.
 * Prints events/s, MB/s of Kafka values and the ratio; asserts nothing.
 * Needs FBPIPE_KAFKA_BROKERS; FBPIPED names the daemon (default
 * ./fbpiped).
 *
 * usage: router-bench [EVENTS]   (default 1000000; FBPIPE_BENCH_RECORDS)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_events.h"
#include "router/router_line.h"
#include "tests/integration/feed_records.h"

#define PREFIX "rb"

typedef struct expect {
    unsigned keys;
    uint64_t *bytes; /* per key: the output it must reach */
    uint64_t values; /* Kafka value bytes in all */
} expect_t;

static void
die(const char *what)
{
    fprintf(stderr, "router-bench: %s\n", what);
    exit(1);
}

/* key_index -- "rb17" -> 17; "rb" -> 0 */
static unsigned
key_index(const char *key)
{
    return (unsigned)strtoul(key + strlen(PREFIX), NULL, 10);
}

/* each_record -- what the router will write for it. */
static void
each_record(const char *key, const uint8_t *rec, size_t len, void *arg)
{
    expect_t *x = arg;
    fb_line_t line;
    char why[256];

    if (fb_line_from_record(rec, len, key, strlen(key), NULL, false, &line, why, sizeof(why)) !=
        FB_LINE_OK)
        die(why);
    x->bytes[key_index(key)] += line.len;
    x->values += len;
    free(line.text);
}

/* on_assign -- the plain consumer's clock starts with its assignment. */
static void
on_assign(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
          void *opaque)
{
    double *t0 = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (*t0 == 0)
            *t0 = bench_now();
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* plain -- one consumer to nowhere; seconds from its assignment to the nth message. */
static double
plain(const char *brokers, const char *topic, long n)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *t;
    char err[512], group[128];
    rd_kafka_t *rk;
    double t0 = 0;
    long got = 0;

    snprintf(group, sizeof(group), "%s-plain", topic);
    if (rd_kafka_conf_set(kc, "bootstrap.servers", brokers, err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "group.id", group, err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "auto.offset.reset", "earliest", err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof(err)) ||
        /* the routers' fetch settings */
        rd_kafka_conf_set(kc, "max.partition.fetch.bytes", "4194304", err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "queued.min.messages", "200000", err, sizeof(err)))
        die(err);
    rd_kafka_conf_set_opaque(kc, &t0);
    rd_kafka_conf_set_rebalance_cb(kc, on_assign);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (rk == NULL)
        die(err);
    rd_kafka_poll_set_consumer(rk);
    t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    while (got < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (m == NULL)
            continue;
        got += !m->err;
        rd_kafka_message_destroy(m);
    }
    t0 = bench_now() - t0;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return t0;
}

/* assigned -- whether the log at path says a router has partitions. */
static bool
assigned(const char *path)
{
    char line[1024];
    bool yes = false;
    FILE *fp = fopen(path, "r");

    while (fp != NULL && !yes && fgets(line, sizeof(line), fp) != NULL)
        yes = strstr(line, "partitions assigned") != NULL;
    if (fp != NULL)
        fclose(fp);
    return yes;
}

/* through_routers -- fbpiped's routers into dir/out; seconds from the
 * first assignment to the last byte expected. */
static double
through_routers(const char *fbpiped, const char *brokers, const char *topic, const char *dir,
                const expect_t *x)
{
    const char *routers = getenv("FBPIPE_BENCH_ROUTERS"), *fsync = getenv("FBPIPE_BENCH_FSYNC");
    const char *max_open = getenv("FBPIPE_BENCH_MAX_OPEN");
    char conf[600], out[600], path[700], log[600];
    bool *done = calloc(x->keys, sizeof(bool));
    unsigned left = x->keys;
    double t0 = 0;
    pid_t pid;
    FILE *fp;
    int st;

    snprintf(out, sizeof(out), "%s/out-%s", dir, topic);
    snprintf(conf, sizeof(conf), "%s/fbpipe.conf", dir);
    snprintf(log, sizeof(log), "%s/fbpiped-%s.log", dir, topic);
    if (done == NULL || mkdir(out, 0750) < 0 || (fp = fopen(conf, "w")) == NULL)
        die("cannot prepare the router's folder");
    fprintf(fp, "[ingester]\nenabled = no\n[kafka]\nbrokers = %s\ntopic = %s\n"
                "[router]\nenabled = yes\nworkers = %s\ngroup = %s-routers\ndir = %s\n"
                "fsync = %s\nrotate_size = 0\nrotate_age = 0\nmax_open_files = %s\n",
            brokers, topic, routers ? routers : "2", topic, out, fsync ? fsync : "batch",
            max_open ? max_open : "16384");
    fclose(fp);
    pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(fbpiped, fbpiped, "-f", "-c", conf, (char *)NULL);
        _exit(127);
    }
    while (left > 0) {
        int dirfd = open(out, O_RDONLY | O_DIRECTORY);
        if (t0 == 0 && assigned(log))
            t0 = bench_now();
        for (unsigned k = 0; t0 != 0 && k < x->keys; k++) {
            struct stat sb;
            char name[64];
            if (done[k])
                continue;
            if (x->keys == 1)
                snprintf(name, sizeof(name), PREFIX ".log");
            else
                snprintf(name, sizeof(name), PREFIX "%u.log", k);
            if (fstatat(dirfd, name, &sb, 0) < 0)
                continue;
            if ((uint64_t)sb.st_size >= x->bytes[k]) {
                done[k] = true;
                left--;
            }
        }
        close(dirfd);
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "router-bench: fbpiped ended early; see %s\n", log);
            exit(1);
        }
        if (left > 0)
            usleep(t0 == 0 ? 2000 : 50000);
    }
    t0 = bench_now() - t0;
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    snprintf(path, sizeof(path), "rm -rf '%s'", out);
    if (system(path) != 0)
        fprintf(stderr, "router-bench: could not remove %s\n", out);
    free(done);
    return t0;
}

int
main(int argc, char **argv)
{
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    const char *fbpiped = getenv("FBPIPED") ? getenv("FBPIPED") : "./fbpiped";
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 1000000;
    static const unsigned rounds[] = {1, 100, 10000};
    char dir[] = "/tmp/router-bench-XXXXXX", file[300], err[512];

    if (brokers == NULL)
        die("FBPIPE_KAFKA_BROKERS is not set");
    if (n < 10000)
        die("at least 10000 events");
    if (access(fbpiped, X_OK) < 0)
        die("no fbpiped to run (FBPIPED=path)");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp failed");
    umask(077); /* the key database and the secret are refused when readable by others */
    snprintf(file, sizeof(file), "%s/keys.json", dir);
    FILE *fp = fopen(file, "w");
    if (fp == NULL)
        die("cannot write keys.json");
    fputs("{}\n", fp);
    fclose(fp);
    snprintf(file, sizeof(file), "%s/jwt.secret", dir);
    fp = fopen(file, "w");
    if (fp == NULL)
        die("cannot write jwt.secret");
    fputs("router-bench-secret-router-bench-secret\n", fp);
    fclose(fp);
    printf("router-bench: %ld events of 256-byte messages per round, fsync = %s, %s router(s), "
           "max_open_files = %s\n",
           n, getenv("FBPIPE_BENCH_FSYNC") ? getenv("FBPIPE_BENCH_FSYNC") : "batch",
           getenv("FBPIPE_BENCH_ROUTERS") ? getenv("FBPIPE_BENCH_ROUTERS") : "2",
           getenv("FBPIPE_BENCH_MAX_OPEN") ? getenv("FBPIPE_BENCH_MAX_OPEN") : "16384");
    printf("%6s  %22s  %22s  %6s\n", "keys", "plain consumer", "fbpipe routers", "ratio");
    for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]); r++) {
        expect_t x = {.keys = rounds[r], .bytes = calloc(rounds[r], sizeof(uint64_t))};
        char topic[96];
        feed_opts_t o = {.brokers = brokers, .prefix = PREFIX, .keys = rounds[r], .n = n,
                         .pad = BENCH_REC, .user_id = "u-bench", .each = each_record, .arg = &x};
        double tp, tr;

        snprintf(topic, sizeof(topic), "fbpipe-rbench-%ld-%u", (long)getpid(), rounds[r]);
        o.topic = topic;
        if (x.bytes == NULL || feed_records(&o, err, sizeof(err)) < 0)
            die(err);
        tp = plain(brokers, topic, n);
        tr = through_routers(fbpiped, brokers, topic, dir, &x);
        printf("%6u  %9.0f ev/s %5.1f MB/s  %9.0f ev/s %5.1f MB/s  %6.2f\n", rounds[r], n / tp,
               x.values / tp / 1e6, n / tr, x.values / tr / 1e6, tp / tr);
        fflush(stdout);
        free(x.bytes);
    }
    snprintf(file, sizeof(file), "rm -rf '%s'", dir);
    return system(file) == 0 ? 0 : 1;
}
