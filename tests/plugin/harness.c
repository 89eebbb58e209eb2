/*
 * harness.c -- drives out_fbpipe.so exactly as Fluent Bit does: dlopen,
 * FLBPluginRegister, FLBPluginInit with properties read through the API
 * struct, FLBPluginFlushCtx on a 64 KiB stack (ucontext) from several
 * threads at once with chunks in both record formats, retries as Fluent
 * Bit makes them, FLBPluginExitCtx, FLBPluginExit, FLBPluginUnregister.
 *
 * Properties are read as Fluent Bit reads them: the keys it keeps for
 * itself (Host, Port, TLS, Match, Retry_Limit...) read as NULL, and TLS on
 * is refused before init.
 *
 * Like the fluent-bit executable, it exports its own msgpack_*,
 * protobuf_c_* and ares_* symbols (decoys that abort): a plugin whose
 * libraries bind to them instead of their own copies crashes here.
 *
 *   harness PLUGIN MODE [ARGS] [-- key=value ...]
 *     init                             Init, then exit; says whether it succeeded
 *                                      (exit 0 either way)
 *     init-fail                        Init must fail (exit 0 if it did)
 *     send THREADS CHUNKS EVENTS RUN   every flush must end OK (after retries);
 *                                      HARNESS_PAUSE_MS=N pauses after each chunk;
 *                                      HARNESS_TIMES=FILE gets the wall-clock ms
 *                                      at which each flush ended OK, a line each
 *     big BYTES ok|error               one record whose body is BYTES of JSON
 *                                      must end OK (or ERROR), after retries
 *     marked EVENTS STEP ok|error      one chunk of EVENTS events, run "marked",
 *                                      every STEP-th of run "BAD": must end OK
 *                                      (or ERROR), after retries
 *     exit-race THREADS                THREADS flushes wait in the plugin when
 *                                      FLBPluginExitCtx runs (the ingester is a
 *                                      socket of the harness that never answers):
 *                                      each must end RETRY
 *     hostile                          hostile chunks: no crash; ERROR for what
 *                                      cannot be read, OK for odd but valid ones
 *     decoy-check AGENT                the agent opened without DEEPBIND must
 *                                      hit a decoy (the harness aborts)
 * Prints what happened; exit 0 on success.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, SCHED_IDLE */
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "plugin/agent.h"

#define STACK_SIZE (64 * 1024) /* Fluent Bit's coroutine stack */
#define MAX_TRIES 120

/* ---- decoys: what fluent-bit exports, here to catch a leaky plugin ---- */

#define DECOY(name)                                                                 \
    void name(void);                                                                \
    __attribute__((visibility("default"))) void name(void)                          \
    {                                                                               \
        fprintf(stderr, "harness: DECOY %s called: the plugin is not isolated\n", #name); \
        abort();                                                                    \
    }
DECOY(msgpack_unpack_next)
DECOY(msgpack_unpacked_destroy)
DECOY(msgpack_zone_free)
DECOY(msgpack_sbuffer_write)
DECOY(msgpack_pack_object)
DECOY(protobuf_c_message_pack)
DECOY(protobuf_c_message_unpack)
DECOY(protobuf_c_message_free_unpacked)
DECOY(protobuf_c_message_get_packed_size)
DECOY(protobuf_c_message_init)
DECOY(ares_init)
DECOY(ares_init_options)
DECOY(ares_library_init)
DECOY(ares_getaddrinfo)
DECOY(ares_gethostbyname)
DECOY(ares_destroy)

/* ---- properties --------------------------------------------------------- */

static char **props;
static int n_props;
static char own_port[16]; /* Ingester_Port, when the harness listens itself */

/* section -- the value key has in the [OUTPUT] section (the arguments). */
static const char *
section(const char *key)
{
    if (own_port[0] && strcasecmp(key, "ingester_port") == 0)
        return own_port;
    for (int i = 0; i < n_props; i++) {
        const char *eq = strchr(props[i], '=');
        if (eq && (size_t)(eq - props[i]) == strlen(key) && strncasecmp(props[i], key, strlen(key)) == 0)
            return eq + 1;
    }
    return NULL;
}

/* fluent_bits_own -- a key that Fluent Bit's flb_output_set_property
 * keeps for itself (5.1.1): it never reaches a proxy plugin. */
static bool
fluent_bits_own(const char *key)
{
    static const char *const own[] = {
        "match", "match_regex", "alias", "log_level", "log_suppress_interval", "host", "port",
        "ipv6", "retry_limit", "tls", "storage.total_limit_size", "workers",
    };

    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strcasecmp(key, own[i]) == 0)
            return true;
    return strncasecmp(key, "tls.", 4) == 0 || strncasecmp(key, "net.", 4) == 0;
}

/* get_property -- output_get_property: what the [OUTPUT] section set, less
 * what Fluent Bit keeps (Host, Port, TLS... read as NULL there too). */
static const char *
get_property(const char *key, void *o_ins)
{
    (void)o_ins;
    return fluent_bits_own(key) ? NULL : section(key);
}

/* ---- msgpack, written by hand (the harness links no msgpack) ----------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static void
put(buf_t *b, const void *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void
put_be(buf_t *b, uint8_t tag, uint64_t v, unsigned n)
{
    uint8_t x[9] = {tag};

    for (unsigned i = 0; i < n; i++)
        x[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    put(b, x, 1 + n);
}

static void
mp_array(buf_t *b, uint32_t n)
{
    n < 16 ? put_be(b, (uint8_t)(0x90 | n), 0, 0) : put_be(b, 0xdd, n, 4);
}

static void
mp_map(buf_t *b, uint32_t n)
{
    n < 16 ? put_be(b, (uint8_t)(0x80 | n), 0, 0) : put_be(b, 0xdf, n, 4);
}

static void
mp_str(buf_t *b, const char *s)
{
    size_t n = strlen(s);

    n < 32 ? put_be(b, (uint8_t)(0xa0 | n), 0, 0) : put_be(b, 0xdb, n, 4);
    put(b, s, n);
}

static void
mp_uint(buf_t *b, uint64_t v)
{
    v < 128 ? put_be(b, (uint8_t)v, 0, 0) : put_be(b, 0xcf, v, 8);
}

static void
mp_time(buf_t *b, uint32_t sec, uint32_t nsec)
{
    uint8_t x[10] = {0xd7, 0x00, /* fixext 8, type 0: EventTime */
                     (uint8_t)(sec >> 24), (uint8_t)(sec >> 16), (uint8_t)(sec >> 8), (uint8_t)sec,
                     (uint8_t)(nsec >> 24), (uint8_t)(nsec >> 16), (uint8_t)(nsec >> 8),
                     (uint8_t)nsec};
    put(b, x, sizeof(x));
}

/* event -- one record, v2 or legacy format */
static void
event(buf_t *b, bool v2, const char *run, int t, int c, int i)
{
    mp_array(b, 2);
    if (v2) {
        mp_array(b, 2);
        mp_time(b, 1764370000u + (uint32_t)i, 123456789u);
        mp_map(b, 0);
    } else {
        mp_uint(b, 1764370000u + (uint64_t)i);
    }
    mp_map(b, 5);
    mp_str(b, "msg");
    mp_str(b, "harness event with some text to carry");
    mp_str(b, "r");
    mp_str(b, run);
    mp_str(b, "t");
    mp_uint(b, (uint64_t)t);
    mp_str(b, "c");
    mp_uint(b, (uint64_t)c);
    mp_str(b, "i");
    mp_uint(b, (uint64_t)i);
}

/* ---- flushing on a small stack ------------------------------------------ */

static void *lib, *ctx;
static int (*flush_fn)(void *, const void *, size_t, char *);

typedef struct flush_call {
    const buf_t *chunk;
    char *tag;
    int result;
    ucontext_t caller, co;
} flush_call_t;

static __thread flush_call_t *current;

static void
on_coroutine(void)
{
    flush_call_t *f = current;

    f->result = flush_fn(ctx, f->chunk->p, f->chunk->len, f->tag);
    swapcontext(&f->co, &f->caller);
}

/* flush -- one FLBPluginFlushCtx on a 64 KiB stack, as a coroutine. */
static int
flush(const buf_t *chunk, const char *tag)
{
    flush_call_t f = {.chunk = chunk, .tag = strdup(tag)};
    void *stack = malloc(STACK_SIZE);

    if (stack == NULL || f.tag == NULL || getcontext(&f.co) < 0)
        abort();
    f.co.uc_stack.ss_sp = stack;
    f.co.uc_stack.ss_size = STACK_SIZE;
    f.co.uc_link = NULL;
    makecontext(&f.co, on_coroutine, 0);
    current = &f;
    swapcontext(&f.caller, &f.co);
    free(stack);
    free(f.tag);
    return f.result;
}

typedef struct worker {
    int t, chunks, events;
    const char *run;
    long ok, retries, errors;
    int times_fd; /* HARNESS_TIMES (O_APPEND: a line is one write), or -1 */
} worker_t;

static void *
send_all(void *arg)
{
    worker_t *w = arg;

    for (int c = 0; c < w->chunks; c++) {
        buf_t b = {0};
        int tries = 0, r;
        for (int i = 0; i < w->events; i++)
            event(&b, (c + i) % 2 == 0, w->run, w->t, c, i);
        /* Fluent Bit retries a chunk after a pause; with Retry_Limit
         * no_limits it never gives up */
        while ((r = flush(&b, "harness.test")) == FB_FLB_RETRY && ++tries < MAX_TRIES) {
            w->retries++;
            usleep(500000);
        }
        if (r == FB_FLB_OK) {
            w->ok++;
            if (w->times_fd >= 0) {
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                dprintf(w->times_fd, "%lld\n",
                        (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
            }
        } else
            w->errors++;
        free(b.p);
        if (getenv("HARNESS_PAUSE_MS") != NULL) /* chunks spread over time */
            usleep((useconds_t)atoi(getenv("HARNESS_PAUSE_MS")) * 1000u);
    }
    return NULL;
}

/* ---- one big record ---------------------------------------------------- */

/* big -- {"r":"big","pad":"xx...x"}, bytes of JSON in all, in one chunk:
 * the flush must end as want says (after retries). */
static int
big(long bytes, const char *want)
{
    static const char head[] = "{\"r\":\"big\",\"pad\":\"", tail[] = "\"}";
    long n = bytes - (long)(sizeof(head) - 1 + sizeof(tail) - 1);
    buf_t b = {0};
    char *pad;
    int r, tries = 0;

    if (n < 0 || (pad = malloc((size_t)n + 1)) == NULL)
        return 1;
    memset(pad, 'x', (size_t)n);
    pad[n] = '\0';
    mp_array(&b, 2);
    mp_array(&b, 2);
    mp_time(&b, 1764370000u, 0);
    mp_map(&b, 0);
    mp_map(&b, 2);
    mp_str(&b, "r");
    mp_str(&b, "big");
    mp_str(&b, "pad");
    mp_str(&b, pad);
    while ((r = flush(&b, "harness.big")) == FB_FLB_RETRY && ++tries < MAX_TRIES)
        usleep(500000);
    printf("harness: a record of %ld bytes of JSON: %s\n", bytes,
           r == FB_FLB_OK ? "OK" : r == FB_FLB_ERROR ? "ERROR" : "RETRY");
    free(pad);
    free(b.p);
    return (r == FB_FLB_OK && strcmp(want, "ok") == 0) ||
                   (r == FB_FLB_ERROR && strcmp(want, "error") == 0)
               ? 0
               : 1;
}

/* ---- a chunk with marked events ---------------------------------------- */

/* marked -- one chunk of events events, every step-th of run "BAD" (the
 * stub refuses a call holding one): the flush must end as want says
 * (after retries). */
static int
marked(int events, int step, const char *want)
{
    buf_t b = {0};
    int r, tries = 0;

    if (events < 1 || step < 1)
        return 1;
    for (int i = 0; i < events; i++)
        event(&b, i % 2 == 0, (i + 1) % step == 0 ? "BAD" : "marked", 0, 0, i);
    while ((r = flush(&b, "harness.marked")) == FB_FLB_RETRY && ++tries < MAX_TRIES)
        usleep(500000);
    printf("harness: a chunk of %d events, %d marked: %s (%d retries)\n", events,
           events / step, r == FB_FLB_OK ? "OK" : r == FB_FLB_ERROR ? "ERROR" : "RETRY",
           tries);
    free(b.p);
    return (r == FB_FLB_OK && strcmp(want, "ok") == 0) ||
                   (r == FB_FLB_ERROR && strcmp(want, "error") == 0)
               ? 0
               : 1;
}

/* ---- exit while flushes wait -------------------------------------------- */

/* black_hole -- a listening socket on 127.0.0.1 that never accepts: the
 * kernel completes connections, nothing ever answers. Its port into
 * own_port; the socket, or -1. */
static int
black_hole(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    snprintf(own_port, sizeof(own_port), "%u", ntohs(a.sin_port));
    return fd;
}

static int entered, results[64];
static pthread_mutex_t entered_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
flush_once(void *arg)
{
    int t = (int)(intptr_t)arg;
    struct sched_param sp = {0};
    buf_t b = {0};

    /* last in line for the CPU: once exit lets the flushes go, main runs
     * on, into what exit frees, before they touch the plugin again */
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    event(&b, true, "exit-race", t, 0, 0);
    pthread_mutex_lock(&entered_mu);
    entered++;
    pthread_mutex_unlock(&entered_mu);
    results[t] = flush(&b, "harness.exit");
    free(b.p);
    return NULL;
}

/* exit_race -- threads flushes, one each, all waiting in the plugin (its
 * thread held by an exchange that never gets an answer) when exit runs:
 * exit must let each of them out, RETRY, before it frees what they use. */
static int
exit_race(int threads, int (*exit_ctx)(void *))
{
    pthread_t th[64];
    int retry = 0;

    cpu_set_t one;

    if (threads < 1 || threads > 64)
        return 1;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    sched_setaffinity(0, sizeof(one), &one); /* main and the flushes take turns */
    for (int t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, flush_once, (void *)(intptr_t)t);
    for (;;) {
        pthread_mutex_lock(&entered_mu);
        int n = entered;
        pthread_mutex_unlock(&entered_mu);
        if (n == threads)
            break;
        usleep(10000);
    }
    usleep(300000); /* all in the plugin, waiting */
    exit_ctx(ctx);
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        retry += results[t] == FB_FLB_RETRY;
    }
    printf("harness: exit with %d flushes waiting: %d RETRY\n", threads, retry);
    return retry == threads ? 0 : 1;
}

/* ---- hostile chunks ---------------------------------------------------- */

static int
hostile(void)
{
    buf_t good = {0}, b;
    int bad = 0;

    event(&good, true, "hostile", 0, 0, 0);
    event(&good, false, "hostile", 0, 0, 1);
    /* every truncation of a good chunk */
    for (size_t n = 0; n <= good.len; n++) {
        buf_t cut = {.p = good.p, .len = n};
        int r = flush(&cut, "hostile");
        bad += r != FB_FLB_OK && r != FB_FLB_ERROR;
    }
    /* a map claiming 4 billion pairs; nesting far too deep; keys that are
     * not strings; binary values; a string that is not UTF-8 */
    static const uint8_t huge[] = {0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff};
    b = (buf_t){.p = (uint8_t *)huge, .len = sizeof(huge)};
    bad += flush(&b, "hostile") != FB_FLB_ERROR; /* unreadable: lost for good */
    memset(&b, 0, sizeof(b));
    mp_array(&b, 2);
    mp_uint(&b, 1);
    for (int i = 0; i < 100000; i++)
        mp_array(&b, 1);
    mp_uint(&b, 1);
    bad += flush(&b, "hostile") != FB_FLB_ERROR; /* too deep: refused */
    free(b.p);
    memset(&b, 0, sizeof(b));
    mp_array(&b, 2);
    mp_uint(&b, 1764370000);
    mp_map(&b, 3);
    mp_uint(&b, 42); /* an integer key */
    mp_str(&b, "integer key");
    mp_str(&b, "bin");
    put_be(&b, 0xc4, 3, 1); /* bin 8 */
    put(&b, "\x00\xff\x01", 3);
    mp_str(&b, "latin1");
    put_be(&b, 0xa4, 0, 0); /* fixstr 4, not UTF-8 */
    put(&b, "caf\xe9", 4);
    bad += flush(&b, "hostile") != FB_FLB_OK; /* odd, but sent */
    free(b.p);
    free(good.p);
    printf("harness: hostile chunks: %d unexpected results\n", bad);
    return bad == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    struct flb_plugin_proxy_def def = {0};
    struct flb_api_head api = {.output_get_property = get_property};
    struct flb_plugin_proxy_context pctx = {0};
    struct flbgo_output_plugin p = {.name = "fbpipe", .api = &api, .o_ins = &p, .context = &pctx};
    int (*reg)(struct flb_plugin_proxy_def *), (*init)(struct flbgo_output_plugin *);
    int (*exit_ctx)(void *), (*exit_all)(void), (*unreg)(void *);
    const char *mode, *tls;
    int rc = 0, sep = argc;

    if (argc < 3) {
        fprintf(stderr, "usage: harness PLUGIN MODE [ARGS] [-- key=value ...]\n");
        return 2;
    }
    for (int i = 3; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            sep = i;
            props = argv + i + 1;
            n_props = argc - i - 1;
            break;
        }
    mode = argv[2];
    if (strcmp(mode, "exit-race") == 0 && black_hole() < 0) {
        perror("harness: a listening socket");
        return 2;
    }
    if (strcmp(mode, "decoy-check") == 0 && sep > 3) {
        /* the agent without the shim and without DEEPBIND: its libraries
         * bind to the decoys */
        void *agent = dlopen(argv[3], RTLD_NOW | RTLD_GLOBAL);
        fb_agent_init_fn ai = agent ? (fb_agent_init_fn)dlsym(agent, "fb_agent_init") : NULL;
        if (ai == NULL) {
            fprintf(stderr, "harness: %s\n", dlerror());
            return 2;
        }
        ai(&p);
        fprintf(stderr, "harness: no decoy was called\n");
        return 1;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "harness: %s\n", dlerror());
        return 2;
    }
    reg = (int (*)(struct flb_plugin_proxy_def *))dlsym(lib, "FLBPluginRegister");
    init = (int (*)(struct flbgo_output_plugin *))dlsym(lib, "FLBPluginInit");
    flush_fn = (int (*)(void *, const void *, size_t, char *))dlsym(lib, "FLBPluginFlushCtx");
    exit_ctx = (int (*)(void *))dlsym(lib, "FLBPluginExitCtx");
    exit_all = (int (*)(void))dlsym(lib, "FLBPluginExit");
    unreg = (int (*)(void *))dlsym(lib, "FLBPluginUnregister");
    if (!reg || !init || !flush_fn || !exit_ctx || !exit_all || !unreg) {
        fprintf(stderr, "harness: a FLBPlugin* symbol is missing\n");
        return 2;
    }
    if (reg(&def) != 0 || def.type != 2 || def.proxy != 11 || strcmp(def.name, "fbpipe") != 0) {
        fprintf(stderr, "harness: FLBPluginRegister failed or filled the wrong values\n");
        return 1;
    }
    tls = section("tls");
    if (tls != NULL && (strcasecmp(tls, "on") == 0 || strcasecmp(tls, "true") == 0 ||
                        strcasecmp(tls, "yes") == 0)) {
        /* Fluent Bit refuses TLS on for a plugin without FLB_IO_TLS, as a
         * proxy plugin is, before init */
        fprintf(stderr, "harness: [config] fbpipe does not support TLS (as Fluent Bit)\n");
        unreg(&def);
        dlclose(lib);
        return 1;
    }
    if (init(&p) <= 0) {
        unreg(&def);
        dlclose(lib);
        if (strcmp(mode, "init-fail") == 0 || strcmp(mode, "init") == 0) {
            printf("harness: init failed%s\n", mode[4] ? ", as expected" : "");
            return 0;
        }
        fprintf(stderr, "harness: FLBPluginInit failed\n");
        return 1;
    }
    if (strcmp(mode, "init-fail") == 0) {
        fprintf(stderr, "harness: FLBPluginInit succeeded, and should not have\n");
        rc = 1;
    }
    if (strcmp(mode, "init") == 0)
        printf("harness: init succeeded\n");
    ctx = pctx.remote_context;
    if (strcmp(mode, "send") == 0 && sep > 6) {
        int threads = atoi(argv[3]), chunks = atoi(argv[4]), events = atoi(argv[5]);
        worker_t *w = calloc((size_t)threads, sizeof(*w));
        pthread_t *th = calloc((size_t)threads, sizeof(*th));
        long ok = 0, retries = 0, errors = 0;
        const char *times = getenv("HARNESS_TIMES");
        int times_fd = times ? open(times, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
        if (times != NULL && times_fd < 0) {
            perror(times);
            return 1;
        }
        for (int t = 0; t < threads; t++) {
            w[t] = (worker_t){.t = t, .chunks = chunks, .events = events, .run = argv[6],
                              .times_fd = times_fd};
            pthread_create(&th[t], NULL, send_all, &w[t]);
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            ok += w[t].ok;
            retries += w[t].retries;
            errors += w[t].errors;
        }
        if (times_fd >= 0)
            close(times_fd);
        printf("harness: %d threads sent %ld of %d chunks of %d events (%ld retries, %ld errors)\n",
               threads, ok, threads * chunks, events, retries, errors);
        rc = ok == (long)threads * chunks ? rc : 1;
        free(w);
        free(th);
    } else if (strcmp(mode, "hostile") == 0) {
        rc = hostile() || rc;
    } else if (strcmp(mode, "exit-race") == 0 && sep > 3) {
        rc = exit_race(atoi(argv[3]), exit_ctx) || rc;
        ctx = NULL; /* exited */
    } else if (strcmp(mode, "big") == 0 && sep > 4) {
        rc = big(atol(argv[3]), argv[4]) || rc;
    } else if (strcmp(mode, "marked") == 0 && sep > 5) {
        rc = marked(atoi(argv[3]), atoi(argv[4]), argv[5]) || rc;
    } else if (strcmp(mode, "init") != 0 && strcmp(mode, "init-fail") != 0) {
        fprintf(stderr, "harness: unknown mode %s, or arguments missing\n", mode);
        rc = 2;
    }
    exit_ctx(ctx);
    exit_all();
    unreg(&def);
    dlclose(lib);
    return rc;
}
