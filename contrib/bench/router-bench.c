/*
 * router-bench.c -- Kafka into per-key files through fbpiped's routers,
 * beside plain librdkafka consumers writing the same files (the fair
 * baseline) and a plain consumer reading to nowhere (the ceiling), for
 * 1, 100 and 10,000 access keys, in alternating rounds (files, routers,
 * discard, files...; FBPIPE_BENCH_ROUNDS, default 3).
 *
 * For each key count a fresh 4-partition topic is filled once with N
 * Records of 256-byte messages (tests/integration/feed_records.c); each
 * round, each side reads it all in a fresh consumer group:
 *   plain-files:    R forked consumer processes in one group (R =
 *                   router.workers, FBPIPE_BENCH_ROUTERS, default 2),
 *                   the routers' consumer settings; each gathers a batch
 *                   as a router does (what comes within 100 ms, at most
 *                   100,000 records), makes each record's line with the
 *                   router's own line code (fb_line_build), appends the
 *                   lines to dir/KEY.log (files kept open), fsyncs per
 *                   the same policy (fsync = batch: each file written, or
 *                   one syncfs past 1,024 files, and the folder after a
 *                   new file; none otherwise), then stores the offsets;
 *   fbpipe-routers: `fbpiped` with [router] only (the same R; fsync =
 *                   batch, or FBPIPE_BENCH_FSYNC; max_open_files 16384,
 *                   above the keys as fbpipe.conf(5) advises, or
 *                   FBPIPE_BENCH_MAX_OPEN; no rotation);
 *   plain-discard:  one consumer (the routers' fetch settings) that
 *                   drops every message: no side can beat it.
 * Files and routers are timed alike: from their first assignment (the
 * routers' log line; the consumers' rebalance callback) to every file
 * holding all its bytes (the bench computes each key's bytes with the
 * router's line code and looks every 50 ms), so both include the
 * rebalance when the second consumer joins. The discard side runs from
 * its assignment to its Nth message. What is not equal: the baseline
 * keeps every file open and has no dead letters, rotation, reopening or
 * retries; fsync = interval is not copied (the baseline then never
 * syncs). Prints min/median rates, per-round ratios to plain-files, CPU
 * per million events of each process (bench_rounds.h) and the load
 * average, and row: lines; asserts nothing. Needs FBPIPE_KAFKA_BROKERS;
 * FBPIPED names the daemon (default ./fbpiped).
 *
 * usage: router-bench [EVENTS]   (default 1000000; FBPIPE_BENCH_RECORDS;
 * FBPIPE_BENCH_KEYS lists the key counts, default "1,100,10000")
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_events.h"
#include "bench_rounds.h"
#include "router/router_line.h"
#include "tests/integration/feed_records.h"

#define PREFIX "rb"
#define BATCH_MAX 100000   /* as the router's */
#define BATCH_WAIT_MS 100  /* as the router's */
#define SYNC_WHOLE 1024    /* as the router's: past this many files, one syncfs */
#define CONSUMERS_MAX 64

enum { SIDE_FILES, SIDE_ROUTERS, SIDE_DISCARD };

typedef struct expect {
    unsigned keys;
    uint64_t *bytes; /* per key: the output it must reach */
    uint64_t values; /* Kafka value bytes in all */
} expect_t;

/* shared with the baseline's consumer processes */
typedef struct shared {
    _Atomic uint64_t assigned_ns; /* the first assignment in the group; 0: none yet */
} shared_t;

static shared_t *sh;

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

    if (fb_line_from_record(rec, len, key, strlen(key), NULL, 0, &line, why, sizeof(why)) !=
        FB_LINE_OK)
        die(why);
    x->bytes[key_index(key)] += line.len;
    x->values += len;
    free(line.text);
}

/* on_assign -- the clock starts with the first assignment. */
static void
on_assign(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
          void *opaque)
{
    double *t0 = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (t0 != NULL && *t0 == 0)
            *t0 = bench_now();
        if (t0 == NULL) {
            uint64_t zero = 0, now = (uint64_t)(bench_now() * 1e9);
            /* the first consumer to get partitions sets the start */
            atomic_compare_exchange_strong(&sh->assigned_ns, &zero, now);
        }
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* consumer -- a consumer in group with the routers' settings. */
static rd_kafka_t *
consumer(const char *brokers, const char *topic, const char *group, void *opaque)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *t;
    char err[512];
    rd_kafka_t *rk;
    struct {
        const char *k, *v;
    } set[] = {
        {"bootstrap.servers", brokers},
        {"group.id", group},
        {"enable.auto.commit", "true"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"auto.commit.interval.ms", "1000"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "2000"},
        {"max.partition.fetch.bytes", "4194304"},
        {"queued.min.messages", "200000"},
    };

    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        if (rd_kafka_conf_set(kc, set[i].k, set[i].v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
            die(err);
    rd_kafka_conf_set_opaque(kc, opaque);
    rd_kafka_conf_set_rebalance_cb(kc, on_assign);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (rk == NULL)
        die(err);
    rd_kafka_poll_set_consumer(rk);
    t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    return rk;
}

/* discard -- one consumer to nowhere; seconds from its assignment to the
 * nth message. */
static double
discard(const char *brokers, const char *topic, const char *group, long n)
{
    double t0 = 0;
    rd_kafka_t *rk = consumer(brokers, topic, group, &t0);
    long got = 0;

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

typedef struct keyfile {
    int fd;
    char *buf;
    size_t len, cap;
    bool dirty;
} keyfile_t;

/* files_flush -- write every key's lines, sync per the policy; 0 or -1. */
static int
files_flush(keyfile_t *kf, unsigned keys, int dirfd, const char *out, bool sync)
{
    unsigned written = 0;
    bool new_file = false;

    for (unsigned k = 0; k < keys; k++) {
        keyfile_t *f = &kf[k];
        if (f->len == 0)
            continue;
        if (f->fd < 0) {
            char name[64];
            if (keys == 1)
                snprintf(name, sizeof(name), PREFIX ".log");
            else
                snprintf(name, sizeof(name), PREFIX "%u.log", k);
            f->fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
            if (f->fd < 0) {
                fprintf(stderr, "router-bench: open(%s/%s) failed\n", out, name);
                return -1;
            }
            new_file = true;
        }
        for (size_t off = 0; off < f->len;) {
            ssize_t w = write(f->fd, f->buf + off, f->len - off);
            if (w <= 0)
                return -1;
            off += (size_t)w;
        }
        f->len = 0;
        f->dirty = true;
        written++;
    }
    if (sync && written > SYNC_WHOLE) {
        if (syncfs(dirfd) < 0)
            return -1;
    } else if (sync) {
        for (unsigned k = 0; k < keys; k++)
            if (kf[k].dirty && fsync(kf[k].fd) < 0)
                return -1;
    }
    for (unsigned k = 0; k < keys; k++)
        kf[k].dirty = false;
    if (sync && new_file && fsync(dirfd) < 0)
        return -1;
    return 0;
}

/* files_consumer -- a baseline process: batches into per-key files until
 * TERM; never returns. */
static void
files_consumer(const char *brokers, const char *topic, const char *group, const char *out,
               unsigned keys, bool sync)
{
    rd_kafka_t *rk = consumer(brokers, topic, group, NULL);
    keyfile_t *kf = calloc(keys, sizeof(*kf));
    rd_kafka_message_t **ms = calloc(BATCH_MAX, sizeof(*ms));
    fb_liner_t *liner = fb_liner_new();
    int dirfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char why[256];

    if (kf == NULL || ms == NULL || liner == NULL || dirfd < 0)
        _exit(1);
    for (unsigned k = 0; k < keys; k++)
        kf[k].fd = -1;
    for (;;) {
        rd_kafka_topic_partition_list_t *done;
        double first = 0;
        size_t n = 0;

        while (n < BATCH_MAX) {
            int wait = 100;
            rd_kafka_message_t *m;
            if (n > 0) {
                double age = (bench_now() - first) * 1000;
                if (age >= BATCH_WAIT_MS)
                    break;
                wait = BATCH_WAIT_MS - (int)age;
            }
            m = rd_kafka_consumer_poll(rk, wait);
            if (m == NULL) {
                if (n == 0 || !sync)
                    break;
                continue;
            }
            if (m->err) {
                rd_kafka_message_destroy(m);
                continue;
            }
            if (n == 0)
                first = bench_now();
            ms[n++] = m;
        }
        for (size_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = ms[i];
            fb_line_t line;
            keyfile_t *f;
            char key[64];
            size_t kl = m->key_len < sizeof(key) - 1 ? m->key_len : sizeof(key) - 1;
            memcpy(key, m->key, kl);
            key[kl] = '\0';
            if (fb_line_build(liner, m->payload, m->len, key, kl, NULL, 0, &line, why,
                              sizeof(why)) != FB_LINE_OK)
                _exit(1);
            f = &kf[key_index(key) % keys];
            if (f->len + line.len > f->cap) {
                f->cap = (f->len + line.len) * 2;
                f->buf = realloc(f->buf, f->cap);
                if (f->buf == NULL)
                    _exit(1);
            }
            memcpy(f->buf + f->len, line.text, line.len);
            f->len += line.len;
        }
        if (n == 0)
            continue;
        if (files_flush(kf, keys, dirfd, out, sync) < 0)
            _exit(1);
        /* written (and synced) first, then the offsets, as the router */
        done = rd_kafka_topic_partition_list_new(4);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = ms[i];
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_find(done, topic, m->partition);
            if (tp == NULL)
                tp = rd_kafka_topic_partition_list_add(done, topic, m->partition);
            tp->offset = m->offset + 1;
            rd_kafka_message_destroy(m);
        }
        rd_kafka_offsets_store(rk, done);
        rd_kafka_topic_partition_list_destroy(done);
    }
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

/* written -- seconds from the first assignment (routers: log given;
 * baseline: sh) to every file in out holding its bytes; CPU of pids (or
 * of the daemon and its children) into run. */
static double
written(const char *out, const expect_t *x, const char *log, const pid_t *pids, int npids,
        bench_run_t *run, int side)
{
    bool *done = calloc(x->keys, sizeof(bool));
    unsigned left = x->keys;
    bench_procs_t before, after;
    double t0 = 0;

    if (done == NULL)
        die("no memory");
    if (log != NULL)
        bench_procs_sample(pids[0], log, NULL, &before);
    while (left > 0) {
        int dirfd = open(out, O_RDONLY | O_DIRECTORY);
        if (t0 == 0 && log != NULL && assigned(log))
            t0 = bench_now();
        if (t0 == 0 && log == NULL && atomic_load(&sh->assigned_ns) != 0)
            t0 = (double)atomic_load(&sh->assigned_ns) / 1e9;
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
        for (int i = 0; i < npids; i++) {
            int st;
            if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                fprintf(stderr, "router-bench: %s ended early%s%s\n",
                        log ? "fbpiped" : "a consumer", log ? "; see " : "", log ? log : "");
                exit(1);
            }
        }
        if (left > 0)
            usleep(t0 == 0 ? 2000 : 50000);
    }
    t0 = bench_now() - t0;
    if (log != NULL) {
        bench_procs_sample(pids[0], log, NULL, &after);
        bench_run_cpu_diff(run, side, &before, &after);
    } else {
        for (int i = 0; i < npids; i++) {
            char name[32];
            snprintf(name, sizeof(name), "consumer[%d]", i);
            bench_run_cpu(run, side, name, bench_cpu_pid(pids[i]));
        }
    }
    free(done);
    return t0;
}

static void
remove_dir(const char *out)
{
    char cmd[700];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", out);
    if (system(cmd) != 0)
        fprintf(stderr, "router-bench: could not remove %s\n", out);
}

static void
stop(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    for (int i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
}

/* through_files -- the baseline's consumers into dir/out-...; seconds. */
static double
through_files(const char *brokers, const char *topic, const char *dir, int round,
              const expect_t *x, int consumers, bool sync, bench_run_t *run)
{
    pid_t pids[CONSUMERS_MAX];
    char out[600], group[200];
    double t;

    snprintf(out, sizeof(out), "%s/files-%s-%d", dir, topic, round);
    snprintf(group, sizeof(group), "%s-files-%d", topic, round);
    if (mkdir(out, 0750) < 0)
        die("cannot make the baseline's folder");
    atomic_store(&sh->assigned_ns, 0);
    fflush(NULL);
    for (int i = 0; i < consumers; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            signal(SIGTERM, SIG_DFL);
            files_consumer(brokers, topic, group, out, x->keys, sync);
            _exit(0);
        }
    }
    t = written(out, x, NULL, pids, consumers, run, SIDE_FILES);
    stop(pids, consumers);
    remove_dir(out);
    return t;
}

/* through_routers -- fbpiped's routers into dir/out-...; seconds from
 * the first assignment to the last byte expected. */
static double
through_routers(const char *fbpiped, const char *brokers, const char *topic, const char *dir,
                int round, const expect_t *x, int routers, const char *fsync, bench_run_t *run)
{
    const char *max_open = getenv("FBPIPE_BENCH_MAX_OPEN");
    char conf[600], out[600], log[600];
    double t;
    pid_t pid;
    FILE *fp;

    snprintf(out, sizeof(out), "%s/out-%s-%d", dir, topic, round);
    snprintf(conf, sizeof(conf), "%s/fbpipe.conf", dir);
    snprintf(log, sizeof(log), "%s/fbpiped-%s-%d.log", dir, topic, round);
    if (mkdir(out, 0750) < 0 || (fp = fopen(conf, "w")) == NULL)
        die("cannot prepare the router's folder");
    fprintf(fp, "[ingester]\nenabled = no\n[kafka]\nbrokers = %s\ntopic = %s\n"
                "[router]\nenabled = yes\nworkers = %d\ngroup = %s-routers-%d\ndir = %s\n"
                "fsync = %s\nrotate_size = 0\nrotate_age = 0\nmax_open_files = %s\n",
            brokers, topic, routers, topic, round, out, fsync, max_open ? max_open : "16384");
    fclose(fp);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(fbpiped, fbpiped, "-f", "-c", conf, (char *)NULL);
        _exit(127);
    }
    usleep(200000); /* the master's children started, for the CPU sample */
    t = written(out, x, log, &pid, 1, run, SIDE_ROUTERS);
    stop(&pid, 1);
    remove_dir(out);
    unlink(log);
    return t;
}

int
main(int argc, char **argv)
{
    static const char *const names[] = {"plain-files", "fbpipe-routers", "plain-discard"};
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    const char *fbpiped = getenv("FBPIPED") ? getenv("FBPIPED") : "./fbpiped";
    const char *fsync = getenv("FBPIPE_BENCH_FSYNC") ? getenv("FBPIPE_BENCH_FSYNC") : "batch";
    const char *keys_list = getenv("FBPIPE_BENCH_KEYS") ? getenv("FBPIPE_BENCH_KEYS")
                                                        : "1,100,10000";
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 1000000;
    int routers = getenv("FBPIPE_BENCH_ROUTERS") ? atoi(getenv("FBPIPE_BENCH_ROUTERS")) : 2;
    int rounds = bench_rounds();
    char dir[] = "/tmp/router-bench-XXXXXX", file[300], err[512];

    if (brokers == NULL)
        die("FBPIPE_KAFKA_BROKERS is not set");
    if (n < 10000)
        die("at least 10000 events");
    if (routers < 1 || routers > CONSUMERS_MAX)
        die("FBPIPE_BENCH_ROUTERS: 1 to 64");
    if (access(fbpiped, X_OK) < 0)
        die("no fbpiped to run (FBPIPED=path)");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp failed");
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap failed");
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
    printf("router-bench: %ld events of 256-byte messages per round, fsync = %s, %d router(s) "
           "and as many baseline consumers, max_open_files = %s; %d rounds, sides "
           "alternating\n",
           n, fsync, routers,
           getenv("FBPIPE_BENCH_MAX_OPEN") ? getenv("FBPIPE_BENCH_MAX_OPEN") : "16384", rounds);
    bench_print_load("router-bench", "before");
    for (const char *l = keys_list; *l != '\0';) {
        char *end;
        unsigned keys = (unsigned)strtoul(l, &end, 10);
        if (end == l || keys == 0)
            break;
        l = *end == ',' ? end + 1 : end;
        expect_t x = {.keys = keys, .bytes = calloc(keys, sizeof(uint64_t))};
        char topic[96], config[32], group[200];
        feed_opts_t o = {.brokers = brokers, .prefix = PREFIX, .keys = keys, .n = n,
                         .pad = BENCH_REC, .user_id = "u-bench", .each = each_record, .arg = &x};
        bench_run_t run;

        snprintf(topic, sizeof(topic), "fbpipe-rbench-%ld-%u", (long)getpid(), keys);
        o.topic = topic;
        if (x.bytes == NULL || feed_records(&o, err, sizeof(err)) < 0)
            die(err);
        snprintf(config, sizeof(config), "keys=%u", keys);
        bench_run_init(&run, "router-bench", config, 3, names);
        for (int k = 0; k < rounds; k++) {
            double c0, t;
            t = through_files(brokers, topic, dir, k, &x, routers, strcmp(fsync, "batch") == 0,
                              &run);
            bench_run_add(&run, SIDE_FILES, (double)n, t);
            t = through_routers(fbpiped, brokers, topic, dir, k, &x, routers, fsync, &run);
            bench_run_add(&run, SIDE_ROUTERS, (double)n, t);
            snprintf(group, sizeof(group), "%s-discard-%d", topic, k);
            c0 = bench_cpu_self();
            t = discard(brokers, topic, group, n);
            bench_run_add(&run, SIDE_DISCARD, (double)n, t);
            bench_run_cpu(&run, SIDE_DISCARD, "bench+librdkafka", bench_cpu_self() - c0);
        }
        bench_run_print(&run);
        printf("  (MB/s of Kafka values = ev/s x %.0f bytes)\n", (double)x.values / (double)n);
        free(x.bytes);
    }
    printf("ratio = a side's events/s / plain-files' in the same round\n");
    bench_print_load("router-bench", "after");
    snprintf(file, sizeof(file), "rm -rf '%s'", dir);
    return system(file) == 0 ? 0 : 1;
}
