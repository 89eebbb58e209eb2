/*
 * plugin-bench.c -- events through out_fbpipe.so, driven as Fluent Bit
 * drives it (FLBPluginInit, FLBPluginFlushCtx from 2 threads, or
 * FBPIPE_BENCH_THREADS, as Fluent Bit's output workers), into an
 * fbpiped it starts itself and on to Kafka: events/s from the first flush
 * to the last acknowledged one, and the CPU time per event of every
 * process: this one (the plugin's thread and gRPC's; the flushing threads
 * only wait) and fbpiped's master, workers and producer (/proc). For a
 * tenant in plaintext and one whose events are encrypted
 * (XChaCha20-Poly1305), alternating (plain, sealed, plain, sealed...;
 * FBPIPE_BENCH_ROUNDS, default 3); each round inits the plugin afresh and
 * flushes one untimed chunk first. Chunks of 1,000 events with 256-byte
 * messages are packed before the clock starts. Prints min/median rates,
 * per-round ratios (sealed / plain), CPU per million events per process
 * (bench_rounds.h) and the load average; asserts nothing. Needs
 * FBPIPE_KAFKA_BROKERS; FBPIPED names the daemon (default ./fbpiped),
 * FBPIPE_PLUGIN the plugin (default ./.libs/out_fbpipe.so).
 *
 * usage: plugin-bench [EVENTS]   (default 200000; FBPIPE_BENCH_RECORDS)
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "bench_events.h"
#include "bench_rounds.h"
#include "plugin/agent.h"

#define CHUNK 1000
#define THREADS_MAX 64

static char dir[] = "/tmp/plugin-bench-XXXXXX";
static char log_path[300];
static pid_t daemon_pid;
static int (*flush_fn)(void *, const void *, size_t, char *);
static char **props;
static int threads = 2; /* Fluent Bit workers flushing at once (FBPIPE_BENCH_THREADS) */

static void
cleanup(void)
{
    char cmd[128];

    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "plugin-bench: could not remove %s\n", dir);
}

static void
die(const char *what)
{
    fprintf(stderr, "plugin-bench: %s\n", what);
    exit(1);
}

static void
write_file(const char *name, const char *text)
{
    char path[300];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0 || chmod(path, 0600) < 0)
        die("cannot write the daemon's files");
}

static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("no free port");
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static const char *
get_property(const char *key, void *o_ins)
{
    (void)o_ins;
    for (char **p = props; *p != NULL; p += 2)
        if (strcasecmp(p[0], key) == 0)
            return p[1];
    return NULL;
}

/* chunks -- n events in chunks of CHUNK, as Fluent Bit 2 writes them. */
static msgpack_sbuffer *
chunks(long n, const char *events, size_t *count)
{
    msgpack_sbuffer *out = calloc((size_t)(n / CHUNK), sizeof(*out));

    *count = (size_t)(n / CHUNK);
    for (size_t c = 0; c < *count; c++) {
        msgpack_packer pk;
        msgpack_sbuffer_init(&out[c]);
        msgpack_packer_init(&pk, &out[c], msgpack_sbuffer_write);
        for (size_t i = 0; i < CHUNK; i++) {
            char t[8] = {0x69, 0x2a, 0x7b, 0x00, 0, 0, 0, (char)i};
            msgpack_pack_array(&pk, 2);
            msgpack_pack_array(&pk, 2);
            msgpack_pack_ext(&pk, 8, 0);
            msgpack_pack_ext_body(&pk, t, 8);
            msgpack_pack_map(&pk, 0);
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str(&pk, 3);
            msgpack_pack_str_body(&pk, "log", 3);
            msgpack_pack_str(&pk, BENCH_REC);
            msgpack_pack_str_body(&pk, events + (c * CHUNK + i) * BENCH_REC, BENCH_REC);
        }
    }
    return out;
}

typedef struct job {
    void *ctx;
    msgpack_sbuffer *chunks;
    size_t from, to;
    long retries, errors;
} job_t;

static void *
flusher(void *arg)
{
    job_t *j = arg;

    for (size_t c = j->from; c < j->to; c++) {
        int r;
        while ((r = flush_fn(j->ctx, j->chunks[c].data, j->chunks[c].size, "bench")) ==
               FB_FLB_RETRY) {
            j->retries++;
            usleep(100000);
        }
        j->errors += r != FB_FLB_OK;
    }
    return NULL;
}

static double
now(void)
{
    return bench_now();
}

/* round_for -- one tenant's round, its figures into side of run. */
static void
round_for(void *lib, const char *tenant, const char *token, const char *port,
          msgpack_sbuffer *ch, size_t n_chunks, bench_run_t *run, int side)
{
    int (*init)(struct flbgo_output_plugin *) =
        (int (*)(struct flbgo_output_plugin *))dlsym(lib, "FLBPluginInit");
    int (*exit_ctx)(void *) = (int (*)(void *))dlsym(lib, "FLBPluginExitCtx");
    char *kv[] = {"ingester_port", (char *)port, "access_key", (char *)tenant, "access_token",
                  (char *)token, "batch_records", "1000", NULL};
    struct flb_api_head api = {.output_get_property = get_property};
    struct flb_plugin_proxy_context pctx = {0};
    struct flbgo_output_plugin p = {.name = "fbpipe", .api = &api, .o_ins = &p, .context = &pctx};
    pthread_t th[THREADS_MAX];
    job_t jobs[THREADS_MAX];
    bench_procs_t before, after;
    double t0, wall;
    long retries = 0, errors = 0;

    props = kv;
    if (init(&p) <= 0)
        die("FLBPluginInit failed");
    /* warm up: the stream and the producer's first records */
    flush_fn(pctx.remote_context, ch[0].data, ch[0].size, "bench");
    bench_procs_sample(daemon_pid, log_path, "bench+plugin", &before);
    t0 = now();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job_t){.ctx = pctx.remote_context, .chunks = ch,
                          .from = n_chunks * (size_t)t / (size_t)threads,
                          .to = n_chunks * (size_t)(t + 1) / (size_t)threads};
        pthread_create(&th[t], NULL, flusher, &jobs[t]);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        retries += jobs[t].retries;
        errors += jobs[t].errors;
    }
    wall = now() - t0;
    bench_procs_sample(daemon_pid, log_path, "bench+plugin", &after);
    bench_run_add(run, side, (double)(n_chunks * CHUNK), wall);
    bench_run_cpu_diff(run, side, &before, &after);
    if (retries > 0 || errors > 0)
        printf("  %s: %ld retries, %ld errors\n", tenant, retries, errors);
    exit_ctx(pctx.remote_context);
}

int
main(int argc, char **argv)
{
    const char *env = getenv("FBPIPE_BENCH_RECORDS"), *brokers = getenv("FBPIPE_KAFKA_BROKERS");
    const char *fbpiped = getenv("FBPIPED") ? getenv("FBPIPED") : "./fbpiped";
    const char *plugin = getenv("FBPIPE_PLUGIN") ? getenv("FBPIPE_PLUGIN") : "./.libs/out_fbpipe.so";
    long n = argc > 1 ? atol(argv[1]) : env ? atol(env) : 200000;
    char text[1024], conf_path[300], port[16], token[2][1024];
    static const char *const tenants[2] = {"plain", "sealed"};
    bench_run_t run;
    struct flb_plugin_proxy_def def = {0};
    msgpack_sbuffer *ch;
    size_t n_chunks;
    pid_t parent = getpid();
    void *lib;

    if (brokers == NULL)
        die("set FBPIPE_KAFKA_BROKERS");
    if (getenv("FBPIPE_BENCH_THREADS") != NULL)
        threads = atoi(getenv("FBPIPE_BENCH_THREADS"));
    if (threads < 1 || threads > THREADS_MAX)
        die("FBPIPE_BENCH_THREADS: 1 to 64");
    if (n < 10 * CHUNK || mkdtemp(dir) == NULL)
        die("at least 10000 events, and a temporary folder");
    atexit(cleanup);
    snprintf(port, sizeof(port), "%d", free_port());
    write_file("jwt.secret", "plugin-bench-secret-plugin-bench-secret-0123456789\n");
    write_file("keys.json",
               "{\"plain\": {\"UserID\": \"u-plain\"}, \"sealed\": {\"UserID\": \"u-sealed\", "
               "\"EncryptionKeys\": [{\"id\": \"k1\", \"key\": "
               "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}]}}\n");
    snprintf(text, sizeof(text),
             "[ingester]\nlisten = 127.0.0.1:%s\nworkers = 2\n[kafka]\nbrokers = %s\n"
             "topic = plugin-bench-%ld\npartitions = 4\ncompression = lz4\nlinger = 5ms\n",
             port, brokers, (long)time(NULL));
    write_file("fbpipe.conf", text);
    snprintf(conf_path, sizeof(conf_path), "%s/fbpipe.conf", dir);
    snprintf(log_path, sizeof(log_path), "%s/fbpiped.log", dir);
    daemon_pid = fork();
    if (daemon_pid == 0) {
        if (freopen(log_path, "w", stderr) == NULL || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
            _exit(127);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        execl(fbpiped, fbpiped, "-f", "-c", conf_path, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2; i++) {
        FILE *p;
        snprintf(text, sizeof(text), "'%s' token --access-key %s -c '%s'", fbpiped, tenants[i],
                 conf_path);
        p = popen(text, "r");
        if (p == NULL || fgets(token[i], sizeof(token[i]), p) == NULL)
            die("fbpiped token failed");
        pclose(p);
        token[i][strcspn(token[i], "\n")] = '\0';
    }
    sleep(1); /* the workers listening */
    lib = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        die(dlerror());
    flush_fn = (int (*)(void *, const void *, size_t, char *))dlsym(lib, "FLBPluginFlushCtx");
    if (((int (*)(struct flb_plugin_proxy_def *))dlsym(lib, "FLBPluginRegister"))(&def) != 0)
        die("FLBPluginRegister failed");
    char *events = bench_make_events(n);
    ch = chunks(n, events, &n_chunks);
    free(events);
    printf("plugin-bench: %zu events of %d bytes in chunks of %d, %d flushing threads, "
           "batches of 1000, 8 in flight; fbpiped with 2 workers, lz4, acks=all; %d rounds, "
           "tenants alternating\n",
           n_chunks * CHUNK, BENCH_REC, CHUNK, threads, bench_rounds());
    bench_print_load("plugin-bench", "before");
    snprintf(text, sizeof(text), "threads=%d", threads);
    bench_run_init(&run, "plugin-bench", text, 2, tenants);
    for (int k = 0; k < bench_rounds(); k++)
        for (int i = 0; i < 2; i++)
            round_for(lib, tenants[i], token[i], port, ch, n_chunks, &run, i);
    bench_run_print(&run);
    printf("ratio = sealed's events/s / plain's in the same round\n");
    bench_print_load("plugin-bench", "after");
    ((int (*)(void))dlsym(lib, "FLBPluginExit"))();
    ((int (*)(void *))dlsym(lib, "FLBPluginUnregister"))(&def);
    for (size_t c = 0; c < n_chunks; c++)
        msgpack_sbuffer_destroy(&ch[c]);
    free(ch);
    return 0;
}
