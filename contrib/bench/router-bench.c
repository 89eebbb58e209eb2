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
 *
 * Big tenants: FBPIPE_BENCH_PARTITION_BY=key_agent fills the topic as
 * kafka.partition_by = key_agent would (each key's events from
 * FBPIPE_BENCH_AGENTS agents, default 64, each agent on the partition
 * common/partition.h names), so that one key spreads over the partitions
 * and routers; =key gives the same agents, partitioned by the key (one
 * partition per key, one router for a key). Run it with
 * FBPIPE_BENCH_KEYS=1 for one big tenant, both ways (docs/SCALING.md).
 *
 * FBPIPE_BENCH_DEDUPE=yes measures router.dedupe (files only): the
 * records carry an identity (an agent epoch, batches of 100), the routers
 * run with dedupe = yes, and every side writes the same lines, each with
 * its "fbpipe_id" (the baseline without deduplicating): the routers' ratio
 * to plain-files with and without it is dedupe's cost. Every record is
 * new (nothing is dropped): the cost of looking up and keeping the
 * identities, and of loading each key's set from its (empty) file.
 *
 * Target mode, FBPIPE_BENCH_TARGET=s3 or opensearch (unset or "files":
 * the above): the records go to a remote store instead of files, for 1
 * and 1,000 keys by default ("1,1000"), in the same alternating rounds:
 *   plain-s3 / plain-opensearch (the baseline): the same R forked
 *                   consumers in one group with the routers' settings
 *                   (and enable.partition.eof); each makes each record's
 *                   line with fb_line_build and
 *                   s3: gathers the lines per (key, partition) into
 *                   objects of max_records (FBPIPE_BENCH_MAX_RECORDS,
 *                   default 10000), PUTs each full object with the
 *                   router's S3 client (router_s3.h, named by
 *                   fb_s3_object_name, no prefix, not gzipped) and, at
 *                   the end of a partition, its partial ones;
 *                   opensearch: adds each line as a document to a _bulk
 *                   body (router_bulk.h: create, ids from fb_bulk_doc_id,
 *                   the index from fb_bulk_index_name of the pattern
 *                   PREFIX{key}-%Y.%m.%d and the record's own time, or
 *                   PREFIX%Y.%m.%d for every key with
 *                   FBPIPE_BENCH_OS_INDEX=shared: an index per key costs
 *                   the node an index creation per key and round) and
 *                   sends it at 5,000 documents, at the end of a
 *                   partition, or when nothing came for 100 ms;
 *                   then stores the offsets up to what the store
 *                   acknowledged (s3: a partition's offset stays at the
 *                   first record of its oldest object not yet PUT); a
 *                   failed request is tried again every 100 ms;
 *   fbpipe-routers: fbpiped with [router] targets = bench and a
 *                   [target bench] section of the same store, bucket or
 *                   index pattern, credentials, max_records and
 *                   flush_after = 1s. Checked first with `fbpiped -t`:
 *                   an fbpiped that refuses the section is said so and
 *                   the side is left out (the others still run);
 *   plain-discard:  as above.
 * Each side and round writes into a fresh bucket (rb-PID-KEYS-SIDE-ROUND)
 * or index prefix (rb-PID-KEYS-SIDEROUND-), removed after it. Timing:
 * from the first assignment to the store holding everything: s3, the
 * .jsonl files under $FBPIPE_S3_DATA/BUCKET/ (s3-local's filesystem back
 * end) summing to the bytes of all lines (looked at every 100 ms);
 * opensearch, PREFIX* /_count after _refresh equal to EVENTS (every
 * 250 ms). CPU also counts the store's server when its state names its
 * pid (FBPIPE_S3_STATE, FBPIPE_OPENSEARCH_STATE). What is not equal: the
 * baseline PUTs a partition's partial objects at its end, where fbpiped
 * waits flush_after (1 s) of quiet; it keeps no marks (a rebalance after
 * some objects were PUT may make objects twice, with other cut points,
 * and then the bytes exceed the goal: done is "at least").
 * s3 needs FBPIPE_S3_ENDPOINT, FBPIPE_S3_CREDENTIALS (ID:SECRET, mode
 * 0600), FBPIPE_S3_DATA (FBPIPE_S3_REGION: us-east-1), as s3-local's env
 * file sets them; opensearch needs FBPIPE_OPENSEARCH_URL, and makes an
 * index template rb-* (one shard, no replica) and raises
 * cluster.max_shards_per_node to hold 1,000 indices at once.
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
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "bench_events.h"
#include "bench_rounds.h"
#include "bench_store.h"
#include "router/router_bulk.h"
#include "router/router_line.h"
#include "router/router_s3.h"
#include "tests/integration/feed_records.h"

#define PREFIX "rb"
#define DEDUPE_EPOCH 0x0123456789abcdefULL /* FBPIPE_BENCH_DEDUPE's records' */

static unsigned line_flags; /* FB_LINE_F_ID with FBPIPE_BENCH_DEDUPE=yes */
#define BATCH_MAX 100000   /* as the router's */
#define BATCH_WAIT_MS 100  /* as the router's */
#define SYNC_WHOLE 1024    /* as the router's: past this many files, one syncfs */
#define CONSUMERS_MAX 64
#define PARTS_MAX 16        /* partitions of a topic (feed_records makes 4) */
#define BULK_DOCS 5000      /* documents per _bulk, as the router's */
#define RETRY_US 100000     /* a failed request to the store, again after */
#define GIVE_UP_S 120       /* ... until this many seconds passed: the bench fails */

enum { SIDE_FILES, SIDE_ROUTERS, SIDE_DISCARD };
enum { TARGET_FILES, TARGET_S3, TARGET_OPENSEARCH };

/* where target mode sends the records; both sides use these settings */
typedef struct target {
    int kind;                /* TARGET_* */
    const char *name;        /* "s3", "opensearch" */
    const char *endpoint;    /* s3 */
    const char *region;      /* s3 */
    const char *credentials; /* s3: an ID:SECRET file, mode 0600 */
    const char *data;        /* s3: s3-local's filesystem back end */
    const char *url;         /* opensearch */
    const char *state;       /* the server's state folder (its pid), or NULL */
    long max_records;        /* s3: records per object */
} target_t;

static target_t tg = {.kind = TARGET_FILES};

/* os_index_of_key -- the part of an OpenSearch index pattern that names
 * the key: "{key}-" (an index per key), or "" with
 * FBPIPE_BENCH_OS_INDEX=shared (one index for every key). */
static const char *
os_index_of_key(void)
{
    const char *v = getenv("FBPIPE_BENCH_OS_INDEX");

    return v != NULL && strcmp(v, "shared") == 0 ? "" : "{key}-";
}

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

typedef struct remote remote_t;
static remote_t *child_remote; /* a target baseline process's state, for on_assign */
static void remote_revoked(remote_t *r);
static void store_name(char *out, size_t len, unsigned keys, char side, int round);
static void store_make(const char *store);
static void store_remove(const char *store);
static void target_conf(FILE *fp, const char *store);
static double stored(const char *store, const expect_t *x, long n, const char *log,
                     const pid_t *pids, int npids, bench_run_t *run, int side);

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

    if (fb_line_from_record(rec, len, key, strlen(key), NULL, line_flags, &line, why,
                            sizeof(why)) !=
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
        /* eager rebalancing: every partition goes; what was not stored
         * is read again by the next owner */
        if (child_remote != NULL)
            remote_revoked(child_remote);
        rd_kafka_assign(rk, NULL);
    }
}

/* consumer -- a consumer in group with the routers' settings; eof: with
 * an event at the end of each partition. */
static rd_kafka_t *
consumer(const char *brokers, const char *topic, const char *group, void *opaque, bool eof)
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
        {"enable.partition.eof", eof ? "true" : "false"},
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
    rd_kafka_t *rk = consumer(brokers, topic, group, &t0, false);
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
    rd_kafka_t *rk = consumer(brokers, topic, group, NULL, false);
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
            if (fb_line_build(liner, m->payload, m->len, key, kl, NULL, line_flags, &line, why,
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

/* side_cpu -- the CPU a side used into run: the daemon and its children
 * since before (log given), or each consumer's. */
static void
side_cpu(const char *log, const pid_t *pids, int npids, const bench_procs_t *before,
         bench_run_t *run, int side)
{
    bench_procs_t after;

    if (log != NULL) {
        bench_procs_sample(pids[0], log, NULL, &after);
        bench_run_cpu_diff(run, side, before, &after);
        return;
    }
    for (int i = 0; i < npids; i++) {
        char name[32];
        snprintf(name, sizeof(name), "consumer[%d]", i);
        bench_run_cpu(run, side, name, bench_cpu_pid(pids[i]));
    }
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
    bench_procs_t before;
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
    side_cpu(log, pids, npids, &before, run, side);
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

/* routers_conf -- fbpiped's configuration for a round into conf (out:
 * router.dir; store: the target's bucket or index prefix in target
 * mode); 0 or -1. */
static int
routers_conf(const char *conf, const char *brokers, const char *topic, int round,
             const char *out, int routers, const char *fsync, const char *store)
{
    const char *max_open = getenv("FBPIPE_BENCH_MAX_OPEN");
    FILE *fp = fopen(conf, "w");

    if (fp == NULL)
        return -1;
    fprintf(fp, "[ingester]\nenabled = no\n[kafka]\nbrokers = %s\ntopic = %s\n"
                "[router]\nenabled = yes\nworkers = %d\ngroup = %s-routers-%d\ndir = %s\n"
                "fsync = %s\nrotate_size = 0\nrotate_age = 0\nmax_open_files = %s\n"
                "dedupe = %s\n",
            brokers, topic, routers, topic, round, out, fsync, max_open ? max_open : "16384",
            line_flags ? "yes" : "no");
    if (store != NULL)
        target_conf(fp, store);
    return fclose(fp) == 0 ? 0 : -1;
}

/* through_routers -- fbpiped's routers into dir/out-... (or, in target
 * mode, a fresh bucket or index prefix); seconds from the first
 * assignment to the last byte or document expected. */
static double
through_routers(const char *fbpiped, const char *brokers, const char *topic, const char *dir,
                int round, const expect_t *x, long n, int routers, const char *fsync,
                bench_run_t *run)
{
    char conf[600], out[600], log[600], store[128];
    double t;
    pid_t pid;

    snprintf(out, sizeof(out), "%s/out-%s-%d", dir, topic, round);
    snprintf(conf, sizeof(conf), "%s/fbpipe.conf", dir);
    snprintf(log, sizeof(log), "%s/fbpiped-%s-%d.log", dir, topic, round);
    if (tg.kind != TARGET_FILES) {
        store_name(store, sizeof(store), x->keys, 'f', round);
        store_make(store);
    }
    if (mkdir(out, 0750) < 0 ||
        routers_conf(conf, brokers, topic, round, out, routers, fsync,
                     tg.kind != TARGET_FILES ? store : NULL) < 0)
        die("cannot prepare the router's folder");
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
    if (tg.kind == TARGET_FILES)
        t = written(out, x, log, &pid, 1, run, SIDE_ROUTERS);
    else
        t = stored(store, x, n, log, &pid, 1, run, SIDE_ROUTERS);
    stop(&pid, 1);
    if (tg.kind != TARGET_FILES)
        store_remove(store);
    remove_dir(out);
    unlink(log);
    return t;
}

/* ---- target mode: the records into a remote store ------------------- */

/* one (key, partition)'s object being filled (s3) */
typedef struct pending {
    char *buf;
    size_t len, cap;
    long count;
    int64_t first, last; /* Kafka offsets */
    int64_t first_s;     /* the first record's own time */
} pending_t;

/* a target baseline process's state */
struct remote {
    rd_kafka_t *rk;
    const char *topic;
    unsigned keys;
    fb_liner_t *liner;
    int64_t next[PARTS_MAX]; /* per partition: after the last record taken; -1: none */
    fb_s3_t *s3;             /* s3 */
    pending_t *obj;          /* s3: keys x PARTS_MAX */
    fb_bulk_t *bulk;         /* opensearch */
    fb_bulk_body_t *body;
    const char *pattern;
};

/* line_seconds -- the record's own time, read back from its line's
 * "time" (the router's line starts {"time":"YYYY-MM-DDTHH:MM:SS.), the
 * last answer kept: the records of a round share a few seconds. */
static int64_t
line_seconds(const fb_line_t *line)
{
    static char last[20];
    static int64_t last_s;
    struct tm tm = {0};
    const char *t = line->text + 9;

    if (line->len < 9 + 19 || memcmp(line->text, "{\"time\":\"", 9) != 0)
        die("a line without its time first");
    if (memcmp(t, last, 19) == 0)
        return last_s;
    if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        die("a line's time unreadable");
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    memcpy(last, t, 19);
    last_s = (int64_t)timegm(&tm);
    return last_s;
}

/* remote_store -- the offset of partition p up to what the store has. */
static void
remote_store(remote_t *r, int32_t p)
{
    rd_kafka_topic_partition_list_t *l;
    int64_t hold = r->next[p];

    if (hold < 0)
        return;
    for (unsigned k = 0; r->obj != NULL && k < r->keys; k++) {
        const pending_t *o = &r->obj[(size_t)k * PARTS_MAX + (size_t)p];
        if (o->count > 0 && o->first < hold)
            hold = o->first;
    }
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->topic, p)->offset = hold;
    rd_kafka_offsets_store(r->rk, l); /* fails harmlessly for a partition just revoked */
    rd_kafka_topic_partition_list_destroy(l);
}

/* remote_revoked -- forget what was taken: the next owner reads it again
 * from the offsets stored. */
static void
remote_revoked(remote_t *r)
{
    for (int p = 0; p < PARTS_MAX; p++)
        r->next[p] = -1;
    for (size_t i = 0; r->obj != NULL && i < (size_t)r->keys * PARTS_MAX; i++) {
        r->obj[i].len = 0;
        r->obj[i].count = 0;
    }
    if (r->body != NULL)
        fb_bulk_body_clear(r->body);
}

/* remote_put -- PUT object o of key (partition p), again until stored. */
static void
remote_put(remote_t *r, const char *key, int32_t p, pending_t *o)
{
    char name[FB_S3_NAME_MAX + 1], err[FB_S3_ERR_LEN];
    fb_s3_result_t rc;
    double t0 = bench_now();

    if (fb_s3_object_name(name, sizeof(name), NULL, key, o->first_s, r->topic, p, o->first,
                          o->last, false) < 0)
        _exit(1);
    while ((rc = fb_s3_put(r->s3, name, o->buf, o->len, "application/x-ndjson", NULL, err,
                           sizeof(err))) == FB_S3_RETRY &&
           bench_now() - t0 < GIVE_UP_S)
        usleep(RETRY_US);
    if (rc != FB_S3_OK) {
        fprintf(stderr, "router-bench: plain-s3: %s\n", err);
        _exit(1);
    }
    o->len = 0;
    o->count = 0;
}

/* remote_send -- the bulk body, again until every document is in. */
static void
remote_send(remote_t *r)
{
    fb_bulk_result_t res;
    double t0 = bench_now();

    if (fb_bulk_body_count(r->body) == 0)
        return;
    for (;;) {
        int rc = fb_bulk_send(r->bulk, r->body, &res);
        if (rc == 0 && res.refused > 0) {
            for (size_t i = 0; i < res.count; i++)
                if (res.items[i].verdict == FB_BULK_REFUSED)
                    fprintf(stderr, "router-bench: plain-opensearch: a document refused: %s %s\n",
                            res.items[i].type, res.items[i].reason);
            _exit(1);
        }
        if (rc == 0 && res.retry == 0)
            break;
        if (bench_now() - t0 >= GIVE_UP_S) {
            fprintf(stderr, "router-bench: plain-opensearch: %s\n", res.error);
            _exit(1);
        }
        usleep(RETRY_US); /* the documents already in answer 409: delivered */
    }
    fb_bulk_body_clear(r->body);
    for (int p = 0; p < PARTS_MAX; p++)
        remote_store(r, p);
}

/* remote_take -- one record into its object or the bulk. */
static void
remote_take(remote_t *r, const rd_kafka_message_t *m)
{
    char key[FB_ACCESS_KEY_MAX + 1], why[256];
    int32_t p = m->partition;
    fb_line_t line;
    size_t kl = m->key_len < sizeof(key) - 1 ? m->key_len : sizeof(key) - 1;

    if (p < 0 || p >= PARTS_MAX)
        _exit(1);
    memcpy(key, m->key, kl);
    key[kl] = '\0';
    if (fb_line_build(r->liner, m->payload, m->len, key, kl, NULL, 0, &line, why,
                      sizeof(why)) != FB_LINE_OK)
        _exit(1);
    r->next[p] = m->offset + 1;
    if (r->s3 != NULL) {
        pending_t *o = &r->obj[(size_t)(key_index(key) % r->keys) * PARTS_MAX + (size_t)p];
        if (o->len + line.len > o->cap) {
            o->cap = (o->len + line.len) * 2;
            o->buf = realloc(o->buf, o->cap);
            if (o->buf == NULL)
                _exit(1);
        }
        if (o->count == 0) {
            o->first = m->offset;
            o->first_s = line_seconds(&line);
        }
        memcpy(o->buf + o->len, line.text, line.len);
        o->len += line.len;
        o->last = m->offset;
        if (++o->count >= tg.max_records) {
            remote_put(r, key, p, o);
            remote_store(r, p);
        }
    } else {
        char index[FB_BULK_INDEX_MAX + 1], id[FB_BULK_ID_MAX + 1], err[256];
        int rc;
        if (fb_bulk_index_name(r->pattern, key, (time_t)line_seconds(&line), index, err,
                               sizeof(err)) < 0 ||
            fb_bulk_doc_id(id, r->topic, p, m->offset) < 0) {
            fprintf(stderr, "router-bench: plain-opensearch: %s\n", err);
            _exit(1);
        }
        while ((rc = fb_bulk_body_add(r->body, index, id, line.text, line.len, err,
                                      sizeof(err))) == FB_BULK_E_FULL &&
               fb_bulk_body_count(r->body) > 0)
            remote_send(r);
        if (rc != 0) {
            fprintf(stderr, "router-bench: plain-opensearch: %s\n", err);
            _exit(1);
        }
        if (fb_bulk_body_count(r->body) >= BULK_DOCS)
            remote_send(r);
    }
}

/* remote_eof -- partition p read to its end: its partial objects (s3) or
 * the bulk so far (opensearch) go now. */
static void
remote_eof(remote_t *r, int32_t p)
{
    if (p < 0 || p >= PARTS_MAX)
        return;
    if (r->s3 != NULL) {
        for (unsigned k = 0; k < r->keys; k++) {
            pending_t *o = &r->obj[(size_t)k * PARTS_MAX + (size_t)p];
            char key[32];
            if (o->count == 0)
                continue;
            if (r->keys == 1)
                snprintf(key, sizeof(key), PREFIX);
            else
                snprintf(key, sizeof(key), PREFIX "%u", k);
            remote_put(r, key, p, o);
        }
        remote_store(r, p);
    } else {
        remote_send(r);
    }
}

/* remote_consumer -- a target baseline process: records into the store
 * (store names the bucket, or the index prefix) until TERM; never
 * returns. */
static void
remote_consumer(const char *brokers, const char *topic, const char *group, const char *store,
                unsigned keys)
{
    remote_t r = {.topic = topic, .keys = keys};
    char err[FB_S3_ERR_LEN], pattern[200];

    for (int p = 0; p < PARTS_MAX; p++)
        r.next[p] = -1;
    r.liner = fb_liner_new();
    if (r.liner == NULL)
        _exit(1);
    if (tg.kind == TARGET_S3) {
        fb_s3_credentials_t c;
        if (fb_s3_credentials_load(tg.credentials, &c, err, sizeof(err)) < 0) {
            fprintf(stderr, "router-bench: %s\n", err);
            _exit(1);
        }
        fb_s3_opts_t o = {.endpoint = tg.endpoint, .region = tg.region, .bucket = store,
                          .path_style = true, .access_key_id = c.id,
                          .secret_access_key = c.secret};
        r.s3 = fb_s3_client_new(&o, err, sizeof(err));
        fb_s3_credentials_wipe(&c);
        r.obj = calloc((size_t)keys * PARTS_MAX, sizeof(*r.obj));
        if (r.s3 == NULL || r.obj == NULL) {
            fprintf(stderr, "router-bench: %s\n", r.s3 == NULL ? err : "no memory");
            _exit(1);
        }
    } else {
        fb_bulk_opts_t o = {.url = tg.url};
        snprintf(pattern, sizeof(pattern), "%s%s%%Y.%%m.%%d", store, os_index_of_key());
        r.pattern = pattern;
        r.bulk = fb_bulk_new(&o, err, sizeof(err));
        r.body = fb_bulk_body_new();
        if (r.bulk == NULL || r.body == NULL) {
            fprintf(stderr, "router-bench: %s\n", r.bulk == NULL ? err : "no memory");
            _exit(1);
        }
    }
    child_remote = &r;
    r.rk = consumer(brokers, topic, group, NULL, true);
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r.rk, 100);
        if (m == NULL) {
            if (r.body != NULL)
                remote_send(&r); /* nothing came for 100 ms */
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            remote_eof(&r, m->partition);
        else if (!m->err)
            remote_take(&r, m);
        rd_kafka_message_destroy(m);
    }
}

/* store_name -- the bucket (s3) or index prefix (opensearch) of a side's
 * round: fresh for each, lowercase. */
static void
store_name(char *out, size_t len, unsigned keys, char side, int round)
{
    if (tg.kind == TARGET_S3)
        snprintf(out, len, "rb-%ld-%u-%c-%d", (long)getpid(), keys, side, round);
    else
        snprintf(out, len, "rb-%ld-%u-%c%d-", (long)getpid(), keys, side, round);
}

/* store_remove -- a side's bucket or indices, gone. */
static void
store_remove(const char *store)
{
    int rc = tg.kind == TARGET_S3 ? bench_s3_remove(tg.data, store)
                                  : bench_os_delete(tg.url, store);
    if (rc < 0)
        fprintf(stderr, "router-bench: could not remove %s from the store\n", store);
}

/* stored -- seconds from the first assignment (routers: log given;
 * baseline: sh) to the store holding all (s3: x's bytes; opensearch: n
 * documents); CPU of pids (or of the daemon and its children) and of the
 * store's server into run. */
static double
stored(const char *store, const expect_t *x, long n, const char *log, const pid_t *pids,
       int npids, bench_run_t *run, int side)
{
    pid_t server = bench_store_pid(tg.state);
    double t0 = 0, server_cpu = server > 0 ? bench_cpu_pid(server) : -1;
    uint64_t goal = 0;
    bench_procs_t before;

    for (unsigned k = 0; k < x->keys; k++)
        goal += x->bytes[k];
    if (log != NULL)
        bench_procs_sample(pids[0], log, NULL, &before);
    for (;;) {
        if (t0 == 0 && log != NULL && assigned(log))
            t0 = bench_now();
        if (t0 == 0 && log == NULL && atomic_load(&sh->assigned_ns) != 0)
            t0 = (double)atomic_load(&sh->assigned_ns) / 1e9;
        if (t0 != 0 && tg.kind == TARGET_S3 && bench_s3_bytes(tg.data, store) >= goal)
            break;
        if (t0 != 0 && tg.kind == TARGET_OPENSEARCH && bench_os_count(tg.url, store) >= n)
            break;
        for (int i = 0; i < npids; i++) {
            int st;
            if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                fprintf(stderr, "router-bench: %s ended early%s%s\n",
                        log ? "fbpiped" : "a consumer", log ? "; see " : "", log ? log : "");
                for (int j = 0; j < npids; j++)
                    if (j != i)
                        kill(pids[j], SIGTERM); /* the rest of the group, not left behind */
                store_remove(store);
                exit(1);
            }
        }
        usleep(t0 == 0 ? 2000 : tg.kind == TARGET_S3 ? 100000 : 250000);
    }
    t0 = bench_now() - t0;
    side_cpu(log, pids, npids, &before, run, side);
    if (server_cpu >= 0 && bench_cpu_pid(server) >= server_cpu)
        bench_run_cpu(run, side, tg.kind == TARGET_S3 ? "s3-local" : "opensearch",
                      bench_cpu_pid(server) - server_cpu);
    return t0;
}

/* store_make -- a fresh bucket (s3; opensearch makes indices on their
 * first document). */
static void
store_make(const char *store)
{
    char err[FB_S3_ERR_LEN];
    fb_s3_credentials_t c;
    fb_s3_t *s3;
    fb_s3_result_t rc;

    if (tg.kind != TARGET_S3)
        return;
    if (fb_s3_credentials_load(tg.credentials, &c, err, sizeof(err)) < 0)
        die(err);
    fb_s3_opts_t o = {.endpoint = tg.endpoint, .region = tg.region, .bucket = store,
                      .path_style = true, .access_key_id = c.id, .secret_access_key = c.secret};
    s3 = fb_s3_client_new(&o, err, sizeof(err));
    fb_s3_credentials_wipe(&c);
    if (s3 == NULL)
        die(err);
    rc = fb_s3_create_bucket(s3, err, sizeof(err));
    fb_s3_client_free(s3);
    if (rc != FB_S3_OK)
        die(err);
}

/* through_remote -- the target baseline's consumers into a fresh
 * bucket or index prefix; seconds. */
static double
through_remote(const char *brokers, const char *topic, int round, const expect_t *x, long n,
               int consumers, bench_run_t *run)
{
    pid_t pids[CONSUMERS_MAX];
    char store[128], group[200];
    double t;

    store_name(store, sizeof(store), x->keys, 'b', round);
    snprintf(group, sizeof(group), "%s-%s-%d", topic, tg.name, round);
    store_make(store);
    atomic_store(&sh->assigned_ns, 0);
    fflush(NULL);
    for (int i = 0; i < consumers; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            signal(SIGTERM, SIG_DFL);
            remote_consumer(brokers, topic, group, store, x->keys);
            _exit(0);
        }
    }
    t = stored(store, x, n, NULL, pids, consumers, run, SIDE_FILES);
    stop(pids, consumers);
    store_remove(store);
    return t;
}

/* target_conf -- the [router] targets and [target bench] lines of
 * fbpiped's configuration for store. */
static void
target_conf(FILE *fp, const char *store)
{
    fprintf(fp, "targets = bench\n[target bench]\n");
    if (tg.kind == TARGET_S3)
        fprintf(fp, "type = s3\nendpoint = %s\nbucket = %s\npath_style = yes\nregion = %s\n"
                    "credentials_file = %s\nmax_records = %ld\nflush_after = 1s\n",
                tg.endpoint, store, tg.region, tg.credentials, tg.max_records);
    else
        fprintf(fp, "type = elasticsearch\nurl = %s\nindex = %s%s%%Y.%%m.%%d\n", tg.url,
                store, os_index_of_key());
}

/* routers_take_targets -- whether `fbpiped -t` accepts a configuration
 * with the target (conf, as written for a round); if not, says why. */
static bool
routers_take_targets(const char *fbpiped, const char *conf, const char *dir)
{
    char out[600], line[1024];
    int st = 0;
    pid_t pid;
    FILE *fp;

    snprintf(out, sizeof(out), "%s/fbpiped-t.out", dir);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(fbpiped, fbpiped, "-t", "-c", conf, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        die("cannot run fbpiped -t");
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        unlink(out);
        return true;
    }
    fprintf(stderr, "router-bench: this fbpiped refuses the [target] configuration (%s = %d):\n",
            WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    if ((fp = fopen(out, "r")) != NULL) {
        while (fgets(line, sizeof(line), fp) != NULL)
            fprintf(stderr, "  %s", line);
        fclose(fp);
    }
    fprintf(stderr, "router-bench: the fbpipe-routers side is left out; the baseline and the "
                    "ceiling run\n");
    printf("router-bench: fbpipe-routers left out: fbpiped refuses [target] sections (not in "
           "this build)\n");
    unlink(out);
    return false;
}

/* target_from_env -- FBPIPE_BENCH_TARGET and its store's settings into
 * tg; dies naming what is missing. */
static void
target_from_env(void)
{
    const char *t = getenv("FBPIPE_BENCH_TARGET"), *max = getenv("FBPIPE_BENCH_MAX_RECORDS");

    if (t == NULL || *t == '\0' || strcmp(t, "files") == 0)
        return;
    if (strcmp(t, "s3") == 0) {
        tg.kind = TARGET_S3;
        tg.name = "s3";
        tg.endpoint = getenv("FBPIPE_S3_ENDPOINT");
        tg.credentials = getenv("FBPIPE_S3_CREDENTIALS");
        tg.data = getenv("FBPIPE_S3_DATA");
        tg.region = getenv("FBPIPE_S3_REGION") ? getenv("FBPIPE_S3_REGION") : "us-east-1";
        tg.state = getenv("FBPIPE_S3_STATE");
        if (tg.endpoint == NULL || tg.credentials == NULL || tg.data == NULL)
            die("FBPIPE_BENCH_TARGET=s3 needs FBPIPE_S3_ENDPOINT, FBPIPE_S3_CREDENTIALS and "
                "FBPIPE_S3_DATA (source s3-local's env file)");
    } else if (strcmp(t, "opensearch") == 0) {
        tg.kind = TARGET_OPENSEARCH;
        tg.name = "opensearch";
        tg.url = getenv("FBPIPE_OPENSEARCH_URL");
        tg.state = getenv("FBPIPE_OPENSEARCH_STATE");
        if (tg.url == NULL)
            die("FBPIPE_BENCH_TARGET=opensearch needs FBPIPE_OPENSEARCH_URL");
    } else {
        die("FBPIPE_BENCH_TARGET: files, s3 or opensearch");
    }
    tg.max_records = max ? atol(max) : 10000;
    if (tg.max_records < 1)
        die("FBPIPE_BENCH_MAX_RECORDS: at least 1");
}

int
main(int argc, char **argv)
{
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    const char *fbpiped = getenv("FBPIPED") ? getenv("FBPIPED") : "./fbpiped";
    const char *fsync = getenv("FBPIPE_BENCH_FSYNC") ? getenv("FBPIPE_BENCH_FSYNC") : "batch";
    const char *keys_list;
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 1000000;
    int routers = getenv("FBPIPE_BENCH_ROUTERS") ? atoi(getenv("FBPIPE_BENCH_ROUTERS")) : 2;
    const char *partby = getenv("FBPIPE_BENCH_PARTITION_BY");
    unsigned agents = getenv("FBPIPE_BENCH_AGENTS") ? (unsigned)atoi(getenv("FBPIPE_BENCH_AGENTS"))
                                                    : 64;
    int rounds = bench_rounds();
    char dir[] = "/tmp/router-bench-XXXXXX", file[300], err[512], baseline[32];
    bool with_routers = true;

    /* libcurl's global state before any thread (librdkafka's) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("curl_global_init failed");
    target_from_env();
    if (getenv("FBPIPE_BENCH_DEDUPE") != NULL && strcmp(getenv("FBPIPE_BENCH_DEDUPE"), "yes") == 0) {
        if (tg.kind != TARGET_FILES)
            die("FBPIPE_BENCH_DEDUPE=yes measures files only");
        line_flags = FB_LINE_F_ID;
    }
    keys_list = getenv("FBPIPE_BENCH_KEYS")   ? getenv("FBPIPE_BENCH_KEYS")
                : tg.kind == TARGET_FILES ? "1,100,10000"
                                          : "1,1000";
    snprintf(baseline, sizeof(baseline), "plain-%s", tg.kind == TARGET_FILES ? "files" : tg.name);
    if (brokers == NULL)
        die("FBPIPE_KAFKA_BROKERS is not set");
    if (n < 10000)
        die("at least 10000 events");
    if (partby != NULL && strcmp(partby, "key") != 0 && strcmp(partby, "key_agent") != 0)
        die("FBPIPE_BENCH_PARTITION_BY: key or key_agent");
    if (agents < 1 || agents > 100000)
        die("FBPIPE_BENCH_AGENTS: 1 to 100000");
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
    if (tg.kind == TARGET_FILES)
        printf("router-bench: %ld events of 256-byte messages per round, fsync = %s, %d "
               "router(s) and as many baseline consumers, max_open_files = %s, dedupe = %s; %d "
               "rounds, sides alternating\n",
               n, fsync, routers,
               getenv("FBPIPE_BENCH_MAX_OPEN") ? getenv("FBPIPE_BENCH_MAX_OPEN") : "16384",
               line_flags ? "yes" : "no", rounds);
    else
        printf("router-bench: target %s (%s), %ld events of 256-byte messages per round, %d "
               "router(s) and as many baseline consumers, %s; %d rounds, sides alternating\n",
               tg.name, tg.kind == TARGET_S3 ? tg.endpoint : tg.url, n, routers, baseline,
               rounds);
    if (tg.kind == TARGET_S3)
        printf("  objects of max_records = %ld per key and partition\n", tg.max_records);
    if (tg.kind == TARGET_OPENSEARCH) {
        unsigned most = 1;
        for (const char *l = keys_list; *l != '\0'; l++)
            if (l == keys_list || l[-1] == ',')
                most = (unsigned)strtoul(l, NULL, 10) > most ? (unsigned)strtoul(l, NULL, 10)
                                                             : most;
        if (bench_os_prepare(tg.url, "rb-", most, err, sizeof(err)) < 0)
            die(err);
        printf("  index template rb-*: 1 shard, 0 replicas; bulks of %d documents\n", BULK_DOCS);
    }
    bench_print_load("router-bench", "before");
    for (const char *l = keys_list; *l != '\0';) {
        char *end;
        unsigned keys = (unsigned)strtoul(l, &end, 10);
        if (end == l || keys == 0)
            break;
        l = *end == ',' ? end + 1 : end;
        expect_t x = {.keys = keys, .bytes = calloc(keys, sizeof(uint64_t))};
        char topic[96], config[48], group[200];
        feed_opts_t o = {.brokers = brokers, .prefix = PREFIX, .keys = keys, .n = n,
                         .pad = BENCH_REC, .user_id = "u-bench", .each = each_record, .arg = &x,
                         .agents = partby ? agents : 0,
                         .key_agent = partby && strcmp(partby, "key_agent") == 0,
                         .epoch = line_flags ? DEDUPE_EPOCH : 0, .batch = 100};
        const char *names[3] = {baseline, "fbpipe-routers", "plain-discard"};
        int s_routers = SIDE_ROUTERS, s_discard = SIDE_DISCARD;
        bench_run_t run;

        snprintf(topic, sizeof(topic), "fbpipe-rbench-%ld-%u", (long)getpid(), keys);
        o.topic = topic;
        if (x.bytes == NULL || feed_records(&o, err, sizeof(err)) < 0)
            die(err);
        if (tg.kind != TARGET_FILES && with_routers) {
            char conf[600], out[600], store[128];
            snprintf(conf, sizeof(conf), "%s/fbpipe.conf", dir);
            snprintf(out, sizeof(out), "%s/check", dir);
            store_name(store, sizeof(store), keys, 'f', 0);
            if (routers_conf(conf, brokers, topic, 0, out, routers, fsync, store) < 0)
                die("cannot write fbpipe.conf");
            with_routers = routers_take_targets(fbpiped, conf, dir);
        }
        if (!with_routers) {
            names[1] = "plain-discard";
            s_routers = -1;
            s_discard = 1;
        }
        if (tg.kind == TARGET_FILES && partby != NULL)
            snprintf(config, sizeof(config), "keys=%u,by=%s", keys, partby);
        else if (tg.kind == TARGET_FILES)
            snprintf(config, sizeof(config), "keys=%u", keys);
        else
            snprintf(config, sizeof(config), "%s,keys=%u", tg.name, keys);
        bench_run_init(&run, "router-bench", config, with_routers ? 3 : 2, names);
        for (int k = 0; k < rounds; k++) {
            double c0, t;
            if (tg.kind == TARGET_FILES)
                t = through_files(brokers, topic, dir, k, &x, routers,
                                  strcmp(fsync, "batch") == 0, &run);
            else
                t = through_remote(brokers, topic, k, &x, n, routers, &run);
            bench_run_add(&run, SIDE_FILES, (double)n, t);
            if (s_routers >= 0) {
                t = through_routers(fbpiped, brokers, topic, dir, k, &x, n, routers, fsync,
                                    &run);
                bench_run_add(&run, s_routers, (double)n, t);
            }
            snprintf(group, sizeof(group), "%s-discard-%d", topic, k);
            c0 = bench_cpu_self();
            t = discard(brokers, topic, group, n);
            bench_run_add(&run, s_discard, (double)n, t);
            bench_run_cpu(&run, s_discard, "bench+librdkafka", bench_cpu_self() - c0);
        }
        bench_run_print(&run);
        printf("  (MB/s of Kafka values = ev/s x %.0f bytes)\n", (double)x.values / (double)n);
        free(x.bytes);
    }
    printf("ratio = a side's events/s / the baseline's (%s) in the same round\n", baseline);
    bench_print_load("router-bench", "after");
    curl_global_cleanup();
    snprintf(file, sizeof(file), "rm -rf '%s'", dir);
    return system(file) == 0 ? 0 : 1;
}
