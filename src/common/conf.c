/*
 * conf.c -- parse, default and validate fbpipe.conf.
 *
 * The file is read with libinih through a reader that counts lines, so
 * every message names FILE:LINE (Debian's libinih gives its handler no line
 * number and cuts long lines; here an overlong line is an error instead).
 * One table lists every key with its type and default: the defaults pass
 * through the same parsers as the file. Must never start threads, open
 * sockets, or accept a value it has not checked.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <librdkafka/rdkafka.h>

#include "common/addr.h"
#include "common/conf.h"
#include "common/keys.h"
#include "common/listen_check.h"
#include "common/log.h"
#include "common/ring.h"
#include "common/secret.h"
#include "common/tls.h"
#include "common/units.h"

#define CONF_LINE_MAX 4096
#define CONF_SHOW_MAX 64 /* bytes of an access key shown, as keys.c shows them */

typedef enum conf_type {
    T_STR,      /* any string */
    T_PATH,     /* relative to the config folder; "" stays "" */
    T_BOOL,
    T_SIZE,     /* 64M */
    T_DURATION, /* 5s */
    T_UINT,     /* within [min, max] */
    T_LEVEL,    /* log level */
    T_ADDR,     /* host:port, port 0 allowed */
    T_ADDR_OPT, /* host:port or "" */
    T_FSYNC,    /* none | batch | DURATION */
    T_PARTBY,   /* key | key_agent */
    T_TTYPE,    /* a [target]'s type: s3 | elasticsearch | http */
    T_HEADER,   /* Name: value, repeatable ([target] header) */
    T_TARGETS,  /* names of targets, comma or space separated ([router] targets) */
} conf_type_t;

typedef struct conf_key {
    const char *section;
    const char *name;
    conf_type_t type;
    size_t offset;
    const char *def;
    uint64_t min, max;
} conf_key_t;

#define O(field) offsetof(fb_conf_t, field)
#define U64MAX UINT64_MAX

static const conf_key_t conf_keys[] = {
    {"main", "pid_file", T_PATH, O(pid_file), "/run/fbpipe/fbpiped.pid", 0, 0},
    {"main", "user", T_STR, O(user), "", 0, 0},
    {"main", "group", T_STR, O(group), "", 0, 0},
    {"main", "log_level", T_LEVEL, O(log_level), "info", 0, 0},
    {"main", "shutdown_timeout", T_DURATION, O(shutdown_timeout_ms), "30s", 0, 3600000},

    {"ingester", "enabled", T_BOOL, O(ingester_enabled), "yes", 0, 0},
    {"ingester", "listen", T_ADDR, O(listen), "0.0.0.0:7777", 0, 0},
    {"ingester", "workers", T_UINT, O(workers), "2", 1, 256},
    {"ingester", "max_workers", T_UINT, O(max_workers), "0", 0, 512},
    {"ingester", "allow_plaintext", T_BOOL, O(allow_plaintext), "no", 0, 0},
    {"ingester", "tls_cert", T_PATH, O(tls_cert), "", 0, 0},
    {"ingester", "tls_key", T_PATH, O(tls_key), "", 0, 0},
    {"ingester", "tls_client_ca", T_PATH, O(tls_client_ca), "", 0, 0},
    {"ingester", "ring_size", T_SIZE, O(ring_size), "64M", 1ULL << 20, 1ULL << 40},
    {"ingester", "max_message_size", T_SIZE, O(max_message_size), "4M", 1024, 1ULL << 30},
    {"ingester", "max_batch_records", T_UINT, O(max_batch_records), "10000", 1, 1000000},
    {"ingester", "max_calls_per_peer", T_UINT, O(max_calls_per_peer), "64", 1, 100000},
    {"ingester", "max_calls_per_tenant", T_UINT, O(max_calls_per_tenant), "1000", 1, 1000000},
    {"ingester", "max_streams_per_connection", T_UINT, O(max_streams_per_connection), "100", 1, 100000},
    {"ingester", "max_inflight_batches", T_UINT, O(max_inflight_batches), "32", 1, 4096},
    {"ingester", "memory_limit", T_SIZE, O(memory_limit), "256M", 16ULL << 20, 1ULL << 40},
    {"ingester", "backpressure_timeout", T_DURATION, O(backpressure_timeout_ms), "5s", 100, 3600000},
    {"ingester", "handshake_timeout", T_DURATION, O(handshake_timeout_ms), "10s", 100, 600000},
    {"ingester", "idle_timeout", T_DURATION, O(idle_timeout_ms), "1m", 1000, 86400000},
    {"ingester", "drain_timeout", T_DURATION, O(drain_timeout_ms), "1m", 0, 86400000},
    {"ingester", "retry_after", T_DURATION, O(retry_after_ms), "1s", 1, 3600000},
    {"ingester", "refresh_interval", T_DURATION, O(refresh_interval_ms), "5m", 1000, 86400000},
    {"ingester", "kafka_unavailable_after", T_DURATION, O(kafka_unavailable_after_ms), "30s", 0, U64MAX},
    {"ingester", "worker_stall_timeout", T_DURATION, O(worker_stall_timeout_ms), "10s", 0, 3600000},
    {"ingester", "print_events", T_BOOL, O(ingester_print_events), "no", 0, 0},

    {"auth", "jwt_secret_file", T_PATH, 0, "jwt.secret", 0, 0}, /* also .<kid> */
    {"auth", "jwt_public_key_file", T_PATH, 0, "", 0, 0},       /* also .<kid> */
    {"auth", "jwt_private_key_file", T_PATH, O(jwt_private_key_file), "", 0, 0},
    {"auth", "jwt_algorithm", T_STR, O(jwt_algorithm), "HS256", 0, 0},
    {"auth", "key_claim", T_STR, O(key_claim), "access_key", 0, 0},
    {"auth", "clock_skew", T_DURATION, O(clock_skew_ms), "30s", 0, 3600000},
    {"auth", "require_exp", T_BOOL, O(require_exp), "yes", 0, 0},
    {"auth", "issuer", T_STR, O(issuer), "", 0, 0},
    {"auth", "audience", T_STR, O(audience), "", 0, 0},
    {"auth", "keys_file", T_PATH, O(keys_file), "keys.json", 0, 0},

    {"kafka", "brokers", T_STR, O(brokers), "127.0.0.1:9092", 0, 0},
    {"kafka", "topic", T_STR, O(topic), "fb-kafka", 0, 0},
    {"kafka", "partitions", T_UINT, O(partitions), "12", 1, 10000},
    {"kafka", "replication_factor", T_UINT, O(replication_factor), "1", 1, 32},
    {"kafka", "min_insync_replicas", T_UINT, O(min_insync_replicas), "0", 0, 32},
    {"kafka", "message_max_bytes", T_UINT, O(message_max_bytes), "1000000", 1024, 1000000000},
    {"kafka", "partition_by", T_PARTBY, O(partition_by), "key", 0, 0},
    {"kafka", "compression", T_STR, O(compression), "lz4", 0, 0},
    {"kafka", "linger", T_DURATION, O(linger_ms), "5ms", 0, 900000},
    {"kafka", "flush_timeout", T_DURATION, O(flush_timeout_ms), "30s", 0, 3600000},

    {"router", "enabled", T_BOOL, O(router_enabled), "no", 0, 0},
    {"router", "workers", T_UINT, O(router_workers), "2", 1, 256},
    {"router", "group", T_STR, O(router_group), "fbpipe-router", 0, 0},
    {"router", "dir", T_PATH, O(router_dir), "/var/lib/fbpipe/out", 0, 0},
    {"router", "decrypt", T_BOOL, O(router_decrypt), "no", 0, 0},
    {"router", "accept_legacy_records", T_BOOL, O(router_accept_legacy), "no", 0, 0},
    {"router", "print_events", T_BOOL, O(router_print_events), "no", 0, 0},
    {"router", "fsync", T_FSYNC, O(fsync), "batch", 0, 0},
    {"router", "max_open_files", T_UINT, O(max_open_files), "1024", 1, 1000000},
    {"router", "rotate_size", T_SIZE, O(rotate_size), "100M", 0, U64MAX},
    {"router", "rotate_age", T_DURATION, O(rotate_age_ms), "1d", 0, U64MAX},
    {"router", "rotate_keep", T_UINT, O(rotate_keep), "7", 0, 1000},
    {"router", "spool_max", T_SIZE, O(spool_max), "1G", 0, U64MAX},
    {"router", "dedupe", T_BOOL, O(router_dedupe), "no", 0, 0},
    {"router", "dedupe_window", T_UINT, O(dedupe_window), "100000", 1, 100000000},
    {"router", "dedupe_memory", T_SIZE, O(dedupe_memory), "256M", 1ULL << 20, 1ULL << 40},
    {"router", "dedupe_load_max", T_SIZE, O(dedupe_load_max), "16M", 64ULL << 10, 1ULL << 40},
    {"router", "targets", T_TARGETS, 0, "file", 0, 0},

    {"metrics", "listen", T_ADDR_OPT, O(metrics_listen), "", 0, 0},
    {"metrics", "max_tenants", T_UINT, O(metrics_max_tenants), "1000", 1, 100000},
};

#define N_KEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* [target NAME] keys: which types take each, and their defaults (every
 * field gets its default whatever the type, so a field of another type
 * is never NULL). */
#define TT(type) (1u << (type))
#define TT_S3 TT(FB_TARGET_S3)
#define TT_ES TT(FB_TARGET_ELASTICSEARCH)
#define TT_HTTP TT(FB_TARGET_HTTP)
#define TT_REMOTE (TT_S3 | TT_ES | TT_HTTP)
#define TO(field) offsetof(fb_conf_target_t, field)

typedef struct target_key {
    conf_key_t k; /* k.section unused; k.def NULL: no default */
    unsigned types;
} target_key_t;

static const target_key_t target_keys[] = {
    {{"target", "type", T_TTYPE, TO(type), NULL, 0, 0}, TT_REMOTE},
    {{"target", "credentials_file", T_PATH, TO(credentials_file), "", 0, 0}, TT_REMOTE},
    {{"target", "ca_file", T_PATH, TO(ca_file), "", 0, 0}, TT_REMOTE},
    {{"target", "gzip", T_BOOL, TO(gzip), "no", 0, 0}, TT_REMOTE},
    {{"target", "timeout", T_DURATION, TO(timeout_ms), "30s", 1000, 3600000}, TT_REMOTE},
    {{"target", "connect_timeout", T_DURATION, TO(connect_timeout_ms), "10s", 100, 600000},
     TT_REMOTE},
    {{"target", "buffer_max", T_SIZE, TO(buffer_max), "256M", 1ULL << 20, 1ULL << 40}, TT_REMOTE},
    {{"target", "bucket", T_STR, TO(bucket), "", 0, 0}, TT_S3},
    {{"target", "region", T_STR, TO(region), "us-east-1", 0, 0}, TT_S3},
    {{"target", "endpoint", T_STR, TO(endpoint), "", 0, 0}, TT_S3},
    {{"target", "path_style", T_BOOL, TO(path_style), "no", 0, 0}, TT_S3},
    {{"target", "prefix", T_STR, TO(prefix), "", 0, 0}, TT_S3},
    {{"target", "max_records", T_UINT, TO(max_records), "10000", 1, 1000000}, TT_S3},
    {{"target", "max_bytes", T_SIZE, TO(max_bytes), "16M", 1024, 1ULL << 30}, TT_S3},
    {{"target", "max_age", T_DURATION, TO(max_age_ms), "5m", 1000, 86400000}, TT_S3},
    {{"target", "flush_after", T_DURATION, TO(flush_after_ms), "60s", 1000, 86400000}, TT_S3},
    {{"target", "url", T_STR, TO(url), "", 0, 0}, TT_ES | TT_HTTP},
    {{"target", "index", T_STR, TO(index), "logs-{key}-%Y.%m.%d", 0, 0}, TT_ES},
    {{"target", "api_key_file", T_PATH, TO(api_key_file), "", 0, 0}, TT_ES},
    {{"target", "header", T_HEADER, 0, NULL, 0, 0}, TT_HTTP},
};

#define N_TARGET_KEYS (sizeof(target_keys) / sizeof(target_keys[0]))

static const char *const target_type_names[] = {
    [FB_TARGET_FILE] = "file",
    [FB_TARGET_S3] = "s3",
    [FB_TARGET_ELASTICSEARCH] = "elasticsearch",
    [FB_TARGET_HTTP] = "http",
};

/* Headers the router sets itself, and Authorization: credentials come
 * from credentials_file, never from this file, which may be readable. */
static const char *const target_reserved_headers[] = {
    "Content-Type", "Content-Length", "Content-Encoding", "Host",
    "Transfer-Encoding", "Idempotency-Key", "Authorization",
};

static int set_value(fb_conf_t *conf, void *base, const conf_key_t *k, const char *value,
                     const char **why);

static const char *const sections[] = {"main", "ingester", "auth", "kafka",
                                       "librdkafka", "router", "metrics"};

/* librdkafka properties that would break the delivery guarantee or that
 * have a key of their own in [kafka] or [router] ([librdkafka] goes to the
 * producer and to the routers' consumers). */
static const char *const rdkafka_reserved[] = {
    "acks", "request.required.acks", "enable.idempotence", "bootstrap.servers",
    "metadata.broker.list", "compression.codec", "compression.type", "linger.ms",
    "queue.buffering.max.ms", "message.max.bytes", "group.id", "enable.auto.commit",
    "enable.auto.offset.store", "auto.offset.reset",
};

typedef struct conf_parse {
    fb_conf_t *conf;
    FILE *fp;
    unsigned line;     /* the line the reader handed out last */
    long target;       /* the [target NAME] being read: index in conf->targets, -1 for none
                        * or one refused at its header (said there) */
    int errors;
    char *linebuf;
    size_t linecap;
} conf_parse_t;

/* conf_vmsg -- one message about a line of the file (line 0: not from it). */
static void FB_PRINTF(5, 0)
conf_vmsg(fb_log_level_t level, const fb_conf_t *conf, unsigned line, const char *section,
          const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line > 0)
        fb_log_msg(level, 0, "%s:%u: [%s] %s", conf->path, line, section, msg);
    else
        fb_log_msg(level, 0, "%s: [%s] %s", conf->path, section, msg);
}

/* conf_err -- one error about a line of the file. */
static void FB_PRINTF(4, 5)
conf_err(const fb_conf_t *conf, unsigned line, const char *section, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_vmsg(FB_LOG_ERROR, conf, line, section, fmt, ap);
    va_end(ap);
}

/* conf_warn -- one warning about a line of the file. */
static void FB_PRINTF(4, 5)
conf_warn(const fb_conf_t *conf, unsigned line, const char *section, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_vmsg(FB_LOG_WARNING, conf, line, section, fmt, ap);
    va_end(ap);
}

/* target_section -- the NAME of a "target NAME" section (also of a bare
 * "target", ""), or NULL for a section of another kind. */
static const char *
target_section(const char *section)
{
    if (strncmp(section, "target", 6) != 0)
        return NULL;
    if (section[6] == '\0')
        return section + 6;
    if (section[6] != ' ' && section[6] != '\t')
        return NULL;
    return section + 6 + strspn(section + 6, " \t");
}

/* target_free -- the fields of one target (not t itself). */
static void
target_free(fb_conf_target_t *t)
{
    for (size_t i = 0; i < N_TARGET_KEYS; i++) {
        const conf_key_t *k = &target_keys[i].k;
        if (k->type == T_STR || k->type == T_PATH)
            free(*(char **)((char *)t + k->offset));
    }
    for (size_t i = 0; i < t->n_headers; i++)
        free(t->headers[i]);
    free(t->headers);
    free(t->lines);
    free(t->name);
}

/* target_open -- the header [target NAME] on cp->line: a new target with
 * every default, or an error (the section's keys are then skipped). */
static void
target_open(conf_parse_t *cp, const char *section, const char *name)
{
    fb_conf_t *conf = cp->conf;
    fb_conf_target_t *t;
    const char *why;

    cp->target = -1;
    if (name[0] == '\0') {
        conf_err(conf, cp->line, section, "a target needs a name: [target NAME]");
        goto fail;
    }
    if (!fb_target_name_valid(name, strlen(name), &why)) {
        conf_err(conf, cp->line, section,
                 "target name %s: use 1-32 characters of [a-z0-9_-]", why);
        goto fail;
    }
    if (strcmp(name, "file") == 0) {
        conf_err(conf, cp->line, section,
                 "\"file\" is the built-in target (router.dir): it has no section");
        goto fail;
    }
    for (size_t i = 0; i < conf->n_targets; i++) {
        if (strcmp(conf->targets[i].name, name) == 0) {
            conf_err(conf, cp->line, section, "defined twice (first on line %u)",
                     conf->targets[i].line);
            goto fail;
        }
    }
    t = realloc(conf->targets, (conf->n_targets + 1) * sizeof(*t));
    if (t == NULL)
        goto nomem;
    conf->targets = t;
    t = &conf->targets[conf->n_targets++];
    memset(t, 0, sizeof(*t));
    t->line = cp->line;
    t->name = strdup(name);
    t->lines = calloc(N_TARGET_KEYS, sizeof(*t->lines));
    if (t->name == NULL || t->lines == NULL)
        goto nomem;
    for (size_t i = 0; i < N_TARGET_KEYS; i++) {
        const conf_key_t *k = &target_keys[i].k;
        if (k->def != NULL && set_value(conf, t, k, k->def, &why) < 0)
            fb_panic("default of [target] %s (\"%s\") is invalid: %s", k->name, k->def, why);
    }
    cp->target = (long)(conf->n_targets - 1);
    return;

nomem:
    fb_log_errorx("%s:%u: out of memory", conf->path, cp->line);
fail:
    cp->errors++;
}

/* conf_header -- a [section] line, as inih will read it: a [target NAME]
 * is opened here, where its line is known, even when no key follows. */
static void
conf_header(conf_parse_t *cp, const char *line)
{
    char section[CONF_LINE_MAX];
    const char *start = line + strspn(line, " \t\r\n\f\v"), *end, *name;

    if (*start != '[')
        return;
    cp->target = -1;
    end = strchr(start, ']');
    if (end == NULL)
        return; /* inih says it */
    snprintf(section, sizeof(section), "%.*s", (int)(end - start - 1), start + 1);
    name = target_section(section);
    if (name != NULL)
        target_open(cp, section, name);
}

/* conf_reader -- fgets for inih that counts lines and refuses long ones. */
static char *
conf_reader(char *str, int num, void *stream)
{
    conf_parse_t *cp = stream;
    ssize_t n;

    n = getline(&cp->linebuf, &cp->linecap, cp->fp);
    if (n < 0)
        return NULL;
    cp->line++;
    if (memchr(cp->linebuf, '\0', (size_t)n) != NULL) {
        fb_log_errorx("%s:%u: NUL byte in the line", cp->conf->path, cp->line);
        cp->errors++;
        snprintf(str, (size_t)num, "\n");
        return str;
    }
    if (n >= num - 2 || n >= CONF_LINE_MAX) {
        fb_log_errorx("%s:%u: line longer than %d bytes", cp->conf->path, cp->line,
                      CONF_LINE_MAX - 3);
        cp->errors++;
        snprintf(str, (size_t)num, "\n");
        return str;
    }
    memcpy(str, cp->linebuf, (size_t)n + 1);
    conf_header(cp, str);
    return str;
}

/* resolve_path -- relative paths start at the config file's folder. */
static char *
resolve_path(const fb_conf_t *conf, const char *value)
{
    char *out;

    if (value[0] == '\0' || value[0] == '/')
        return strdup(value);
    if (asprintf(&out, "%s/%s", conf->dir, value) < 0)
        return NULL;
    return out;
}

/* add_keyfile -- append to jwt_secret_file(.kid) or jwt_public_key_file(.kid). */
static int
add_keyfile(fb_conf_t *conf, fb_conf_keyfile_t **arr, size_t *n, const char *kid,
            const char *value, unsigned line, const char *name)
{
    fb_conf_keyfile_t *a;

    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*arr)[i].kid, kid) == 0) {
            if ((*arr)[i].line == 0) { /* the default: the file replaces it */
                free((*arr)[i].path);
                (*arr)[i].path = resolve_path(conf, value);
                (*arr)[i].line = line;
                if (value[0] == '\0') { /* "jwt_secret_file =" drops the default */
                    free((*arr)[i].kid);
                    free((*arr)[i].path);
                    (*arr)[i] = (*arr)[--(*n)];
                    return 0;
                }
                return (*arr)[i].path ? 0 : -1;
            }
            conf_err(conf, line, "auth", "%s: duplicate key (first set on line %u)", name,
                     (*arr)[i].line);
            return -1;
        }
    }
    if (value[0] == '\0')
        return 0;
    a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (a == NULL)
        return -1;
    *arr = a;
    a[*n].kid = strdup(kid);
    a[*n].path = resolve_path(conf, value);
    a[*n].line = line;
    (*n)++;
    return a[*n - 1].kid && a[*n - 1].path ? 0 : -1;
}

/* kid_ok -- key ids: [A-Za-z0-9._-], 1..64 bytes. */
static bool
kid_ok(const char *kid)
{
    size_t n = strlen(kid);

    if (n == 0 || n > 64)
        return false;
    return strspn(kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* header_ok -- "Name: value" of [target] header: a token name (RFC 7230
 * tchar) that the router does not set itself, a value without control
 * characters but tab. */
static bool
header_ok(const char *h, const char **why)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t n = strspn(h, tchar);

    if (n == 0 || h[n] != ':') {
        *why = "expected Name: value, the name of letters, digits and !#$%&'*+-.^_`|~ "
               "right before the colon";
        return false;
    }
    for (const char *p = h + n + 1; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 ? *p != '\t' : *p == 0x7f) {
            *why = "the value holds a control character";
            return false;
        }
    }
    for (size_t i = 0; i < sizeof(target_reserved_headers) / sizeof(target_reserved_headers[0]);
         i++) {
        if (strlen(target_reserved_headers[i]) == n &&
            strncasecmp(h, target_reserved_headers[i], n) == 0) {
            *why = strcasecmp(target_reserved_headers[i], "Authorization") == 0
                       ? "Authorization comes from credentials_file, never from this file"
                       : "the router sets this header itself";
            return false;
        }
    }
    return true;
}

/* add_header -- append "Name: value" (one space after the colon). */
static int
add_header(fb_conf_target_t *t, const char *h, const char **why)
{
    size_t n = strcspn(h, ":");
    const char *v = h + n + 1;
    char **a, *line;

    if (!header_ok(h, why))
        return -1;
    v += strspn(v, " \t");
    a = realloc(t->headers, (t->n_headers + 1) * sizeof(*a));
    if (a == NULL || asprintf(&line, "%.*s: %s", (int)n, h, v) < 0) {
        if (a != NULL)
            t->headers = a;
        *why = "out of memory";
        return -1;
    }
    t->headers = a;
    t->headers[t->n_headers++] = line;
    return 0;
}

/* set_router_targets -- [router] targets: names, comma or space separated. */
static int
set_router_targets(fb_conf_t *conf, const char *value, const char **why)
{
    char **names = NULL, *copy = strdup(value), *tok, *save = NULL;
    size_t n = 0;

    if (copy == NULL) {
        *why = "out of memory";
        return -1;
    }
    for (tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
        char **a;
        if (!fb_target_name_valid(tok, strlen(tok), why))
            goto fail;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(names[i], tok) == 0) {
                *why = "a target is listed twice";
                goto fail;
            }
        }
        a = realloc(names, (n + 1) * sizeof(*a));
        if (a == NULL)
            goto nomem;
        names = a;
        if ((names[n] = strdup(tok)) == NULL)
            goto nomem;
        n++;
    }
    if (n == 0) {
        *why = "name at least one target (file is the built-in one)";
        goto fail;
    }
    for (size_t i = 0; i < conf->n_router_targets; i++)
        free(conf->router_targets[i]);
    free(conf->router_targets);
    conf->router_targets = names;
    conf->n_router_targets = n;
    free(copy);
    return 0;

nomem:
    *why = "out of memory";
fail:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(copy);
    return -1;
}

/* set_value -- parse one value of key k into base (conf, or one of its
 * targets); 0 or -1 with *why set. */
static int
set_value(fb_conf_t *conf, void *base, const conf_key_t *k, const char *value, const char **why)
{
    void *field = (char *)base + k->offset;
    uint64_t u;
    bool b;
    fb_addr_t addr;

    switch (k->type) {
    case T_STR:
    case T_PATH:
    case T_ADDR:
    case T_ADDR_OPT: {
        char *s;
        if (k->type == T_ADDR || (k->type == T_ADDR_OPT && value[0] != '\0')) {
            if (fb_addr_parse(value, FB_ADDR_F_PORT_ZERO, &addr, why) < 0)
                return -1;
        }
        s = k->type == T_PATH ? resolve_path(conf, value) : strdup(value);
        if (s == NULL) {
            *why = "out of memory";
            return -1;
        }
        free(*(char **)field);
        *(char **)field = s;
        if (k->type == T_ADDR)
            conf->listen_addr = addr;
        else if (k->type == T_ADDR_OPT)
            conf->metrics_addr = value[0] ? addr : (fb_addr_t){0};
        return 0;
    }
    case T_BOOL:
        if (fb_parse_bool(value, &b, why) < 0)
            return -1;
        *(bool *)field = b;
        return 0;
    case T_SIZE:
        if (fb_parse_size(value, &u, why) < 0)
            return -1;
        if (u < k->min || u > k->max) {
            *why = "size out of range";
            return -1;
        }
        *(uint64_t *)field = u;
        return 0;
    case T_DURATION:
        if (fb_parse_duration_ms(value, &u, why) < 0)
            return -1;
        if (u < k->min || u > k->max) {
            *why = "duration out of range";
            return -1;
        }
        *(uint64_t *)field = u;
        return 0;
    case T_UINT:
        if (fb_parse_uint(value, k->min, k->max, &u, why) < 0)
            return -1;
        *(uint64_t *)field = u;
        return 0;
    case T_LEVEL:
        if (fb_log_level_parse(value, (fb_log_level_t *)field) < 0) {
            *why = "expected error, warning, notice, info or debug";
            return -1;
        }
        return 0;
    case T_FSYNC:
        if (strcmp(value, "none") == 0) {
            conf->fsync = FB_FSYNC_NONE;
        } else if (strcmp(value, "batch") == 0) {
            conf->fsync = FB_FSYNC_BATCH;
        } else if (fb_parse_duration_ms(value, &u, why) == 0 && u > 0) {
            conf->fsync = FB_FSYNC_INTERVAL;
            conf->fsync_interval_ms = u;
        } else {
            *why = "expected none, batch or an interval such as 1s";
            return -1;
        }
        return 0;
    case T_PARTBY:
        if (strcmp(value, "key") == 0) {
            conf->partition_by = FB_PARTITION_KEY;
        } else if (strcmp(value, "key_agent") == 0) {
            conf->partition_by = FB_PARTITION_KEY_AGENT;
        } else {
            *why = "expected key or key_agent";
            return -1;
        }
        return 0;
    case T_TTYPE:
        for (int t = FB_TARGET_S3; t <= FB_TARGET_HTTP; t++) {
            if (strcmp(value, target_type_names[t]) == 0) {
                *(fb_target_type_t *)field = (fb_target_type_t)t;
                return 0;
            }
        }
        *why = strcmp(value, "file") == 0
                   ? "file is the built-in target, named without a section"
                   : "expected s3, elasticsearch or http";
        return -1;
    case T_HEADER:
        return add_header(base, value, why);
    case T_TARGETS:
        return set_router_targets(conf, value, why);
    }
    *why = "internal error: unknown type";
    return -1;
}

/* target_handler -- one name = value of the [target NAME] being read. */
static int
target_handler(conf_parse_t *cp, const char *section, const char *name, const char *value)
{
    fb_conf_t *conf = cp->conf;
    fb_conf_target_t *t;
    const char *why = NULL;

    if (cp->target < 0)
        return 1; /* its header was refused, and said why */
    t = &conf->targets[cp->target];
    for (size_t i = 0; i < N_TARGET_KEYS; i++) {
        const conf_key_t *k = &target_keys[i].k;
        if (strcmp(k->name, name) != 0)
            continue;
        if (t->lines[i] != 0 && k->type != T_HEADER) {
            conf_err(conf, cp->line, section, "%s: duplicate key (first set on line %u)", name,
                     t->lines[i]);
            cp->errors++;
            return 1;
        }
        if (t->lines[i] == 0)
            t->lines[i] = cp->line; /* header: its first line */
        if (set_value(conf, t, k, value, &why) < 0) {
            /* a header's value may be a secret of the receiver's: never shown */
            if (k->type == T_HEADER)
                conf_err(conf, cp->line, section, "%s: invalid \"%.*s: ...\": %s", name,
                         (int)strcspn(value, ":"), value, why);
            else
                conf_err(conf, cp->line, section, "%s: invalid value \"%s\": %s", name, value,
                         why);
            cp->errors++;
        }
        return 1;
    }
    conf_err(conf, cp->line, section, "%s: unknown key", name);
    cp->errors++;
    return 1;
}

/* conf_handler -- inih callback for one name = value. */
static int
conf_handler(void *user, const char *section, const char *name, const char *value)
{
    conf_parse_t *cp = user;
    fb_conf_t *conf = cp->conf;
    const char *why = NULL;
    bool known_section = false;

    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
        known_section |= strcmp(section, sections[i]) == 0;
    if (target_section(section) != NULL)
        return target_handler(cp, section, name, value);
    if (section[0] == '\0') {
        conf_err(conf, cp->line, "", "%s: setting outside of any section", name);
        goto fail;
    }
    if (!known_section) {
        conf_err(conf, cp->line, section, "unknown section");
        goto fail;
    }

    if (strcmp(section, "librdkafka") == 0) {
        fb_conf_kv_t *kv;
        for (size_t i = 0; i < sizeof(rdkafka_reserved) / sizeof(rdkafka_reserved[0]); i++) {
            if (strcmp(name, rdkafka_reserved[i]) == 0) {
                conf_err(conf, cp->line, section,
                         "%s: set by fbpipe itself (see [kafka]) and not overridable", name);
                goto fail;
            }
        }
        for (size_t i = 0; i < conf->n_rdkafka; i++) {
            if (strcmp(conf->rdkafka[i].key, name) == 0) {
                conf_err(conf, cp->line, section, "%s: duplicate key (first set on line %u)",
                         name, conf->rdkafka[i].line);
                goto fail;
            }
        }
        kv = realloc(conf->rdkafka, (conf->n_rdkafka + 1) * sizeof(*kv));
        if (kv == NULL)
            goto nomem;
        conf->rdkafka = kv;
        kv[conf->n_rdkafka].key = strdup(name);
        kv[conf->n_rdkafka].value = strdup(value);
        kv[conf->n_rdkafka].line = cp->line;
        conf->n_rdkafka++;
        if (kv[conf->n_rdkafka - 1].key == NULL || kv[conf->n_rdkafka - 1].value == NULL)
            goto nomem;
        return 1;
    }

    if (strcmp(section, "auth") == 0 &&
        (strncmp(name, "jwt_secret_file", 15) == 0 ||
         strncmp(name, "jwt_public_key_file", 19) == 0)) {
        bool secret = name[4] == 's';
        const char *rest = name + (secret ? 15 : 19);
        const char *kid = "";

        if (*rest == '.') {
            kid = rest + 1;
            if (!kid_ok(kid)) {
                conf_err(conf, cp->line, section,
                         "%s: key id must be 1-64 characters of [A-Za-z0-9._-]", name);
                goto fail;
            }
        } else if (*rest != '\0') {
            goto unknown;
        }
        if (add_keyfile(conf, secret ? &conf->jwt_secret_files : &conf->jwt_public_key_files,
                        secret ? &conf->n_jwt_secret_files : &conf->n_jwt_public_key_files,
                        kid, value, cp->line, name) < 0)
            goto fail;
        return 1;
    }

    for (size_t i = 0; i < N_KEYS; i++) {
        const conf_key_t *k = &conf_keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
            continue;
        if (conf->lines[i] != 0) {
            conf_err(conf, cp->line, section, "%s: duplicate key (first set on line %u)", name,
                     conf->lines[i]);
            goto fail;
        }
        conf->lines[i] = cp->line;
        if (set_value(conf, conf, k, value, &why) < 0) {
            conf_err(conf, cp->line, section, "%s: invalid value \"%s\": %s", name, value, why);
            goto fail;
        }
        return 1;
    }
unknown:
    conf_err(conf, cp->line, section, "%s: unknown key", name);
fail:
    cp->errors++;
    return 1; /* keep going: report every error in one run */
nomem:
    fb_log_errorx("%s:%u: out of memory", conf->path, cp->line);
    cp->errors++;
    return 1;
}

/* conf_defaults -- apply every default through the same parsers as the file. */
static int
conf_defaults(fb_conf_t *conf)
{
    const char *why;

    for (size_t i = 0; i < N_KEYS; i++) {
        const conf_key_t *k = &conf_keys[i];
        if (k->offset == 0 && k->type != T_TARGETS)
            continue; /* the keyfile lists */
        if (set_value(conf, conf, k, k->def, &why) < 0)
            fb_panic("default of [%s] %s (\"%s\") is invalid: %s", k->section, k->name, k->def,
                     why);
    }
    return add_keyfile(conf, &conf->jwt_secret_files, &conf->n_jwt_secret_files, "",
                       "jwt.secret", 0, "jwt_secret_file");
}

/* topic_ok -- Kafka's rule: [a-zA-Z0-9._-], 1..249, not "." or "..". */
static bool
topic_ok(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    return strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* ring_size_for -- the smallest ring_size, in whole MiB, that the ring
 * can cut into n_lanes lanes (FB_RING_LANE_MIN each at least) that take a
 * record of need bytes. */
static unsigned long long
ring_size_for(size_t need, unsigned n_lanes)
{
    unsigned long long mib = 1ULL << 20;
    unsigned long long size = ((unsigned long long)need * 2 * n_lanes + mib - 1) / mib * mib;

    while (fb_ring_lane_size((size_t)size, n_lanes) < FB_RING_LANE_MIN ||
           fb_ring_lane_size((size_t)size, n_lanes) / 2 / FB_REC_ALIGN * FB_REC_ALIGN < need)
        size += mib;
    return size;
}

/* url_check -- http:// or https://, a host, no user or password (they
 * come from credentials_file), no fragment, no space or control
 * character; authority_only: nothing after the host and port but "/".
 * The router's client parses it again (libcurl). */
static bool
url_check(const char *url, bool authority_only, const char **why)
{
    const char *p, *auth, *end, *port;

    for (p = url; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            *why = "holds a space or a control character";
            return false;
        }
    }
    if (strncasecmp(url, "http://", 7) == 0) {
        auth = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        auth = url + 8;
    } else {
        *why = "must start with http:// or https://";
        return false;
    }
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
        *why = "holds a user or password: they come from credentials_file";
        return false;
    }
    port = auth;
    if (*auth == '[') { /* [v6 address] */
        port = memchr(auth, ']', (size_t)(end - auth));
        if (port == NULL || port == auth + 1) {
            *why = "has no host";
            return false;
        }
        port++;
    } else {
        port = memchr(auth, ':', (size_t)(end - auth));
        if (port == NULL)
            port = end;
    }
    if (port == auth) {
        *why = "has no host";
        return false;
    }
    if (port < end) {
        uint64_t u;
        char digits[8];
        const char *perr;

        if (*port != ':' || end - port - 1 < 1 || end - port - 1 > 5) {
            *why = "has a port that is not a number from 1 to 65535";
            return false;
        }
        snprintf(digits, sizeof(digits), "%.*s", (int)(end - port - 1), port + 1);
        if (strspn(digits, "0123456789") != strlen(digits) ||
            fb_parse_uint(digits, 1, 65535, &u, &perr) < 0) {
            *why = "has a port that is not a number from 1 to 65535";
            return false;
        }
    }
    if (strchr(end, '#') != NULL) {
        *why = "has a fragment (#...)";
        return false;
    }
    if (authority_only && end[0] != '\0' && strcmp(end, "/") != 0) {
        *why = "must be scheme://host[:port] alone, without path or query";
        return false;
    }
    return true;
}

/* bucket_ok -- S3 bucket names: 3..63 of [a-z0-9.-], a letter or digit at both ends. */
static bool
bucket_ok(const char *b)
{
    size_t n = strlen(b);

    return n >= 3 && n <= 63 && strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n &&
           strchr(".-", b[0]) == NULL && strchr(".-", b[n - 1]) == NULL;
}

/* prefix_ok -- parts of object names: printable ASCII without spaces,
 * '/' between parts none of which is empty, "." or "..". */
static bool
prefix_ok(const char *p)
{
    const char *part = p;

    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - part);
            if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && strncmp(part, "..", 2) == 0))
                return false;
            if (*c == '\0')
                return true;
            part = c + 1;
        } else if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            return false;
        }
    }
}

/* index_ok -- an index pattern: not empty, no capitals (index names
 * refuse them) but the conversions of strftime (%Y). The router checks
 * the whole pattern. */
static bool
index_ok(const char *p)
{
    if (p[0] == '\0')
        return false;
    for (; *p != '\0'; p++) {
        if (*p == '%' && p[1] != '\0')
            p++;
        else if (*p >= 'A' && *p <= 'Z')
            return false;
    }
    return true;
}

/* target_types_text -- "elasticsearch and http" for a mask of types. */
static void
target_types_text(unsigned types, char *out, size_t len)
{
    size_t used = 0;
    int n = 0, total = 0;

    for (int t = FB_TARGET_S3; t <= FB_TARGET_HTTP; t++)
        total += (types & TT(t)) != 0;
    out[0] = '\0';
    for (int t = FB_TARGET_S3; t <= FB_TARGET_HTTP && used < len; t++) {
        if ((types & TT(t)) == 0)
            continue;
        n++;
        used += (size_t)snprintf(out + used, len - used, "%s%s",
                                 n == 1 ? "" : n == total ? " and " : ", ", target_type_names[t]);
    }
}

/* target_line -- the line that set a target's key, else its header's. */
static unsigned
target_line(const fb_conf_target_t *t, const char *key)
{
    for (size_t i = 0; i < N_TARGET_KEYS; i++)
        if (strcmp(target_keys[i].k.name, key) == 0 && t->lines[i] != 0)
            return t->lines[i];
    return t->line;
}

/* check_target -- one [target NAME]'s rules across keys; fills the
 * endpoint of an s3 target from its region. Returns the errors. */
static int
check_target(fb_conf_t *conf, fb_conf_target_t *t)
{
    char sec[64], types[64];
    const char *why;
    int errors = 0;

    snprintf(sec, sizeof(sec), "target %s", t->name);
    if (t->lines[0] == 0) { /* type */
        conf_err(conf, t->line, sec, "type: missing: one of s3, elasticsearch or http");
        return 1;
    }
    for (size_t i = 1; i < N_TARGET_KEYS; i++) {
        if (t->lines[i] == 0 || (target_keys[i].types & TT(t->type)) != 0)
            continue;
        target_types_text(target_keys[i].types, types, sizeof(types));
        conf_err(conf, t->lines[i], sec, "%s: not a key of %s targets (only of %s)",
                 target_keys[i].k.name, target_type_names[t->type], types);
        errors++;
    }
    /* a connect_timeout left to its default follows a shorter timeout */
    if (t->connect_timeout_ms > t->timeout_ms && target_line(t, "connect_timeout") == t->line)
        t->connect_timeout_ms = t->timeout_ms;
    if (t->connect_timeout_ms > t->timeout_ms) {
        conf_err(conf, target_line(t, "connect_timeout"), sec,
                 "connect_timeout: %llu ms is longer than timeout (%llu ms), which is the whole "
                 "request's", (unsigned long long)t->connect_timeout_ms,
                 (unsigned long long)t->timeout_ms);
        errors++;
    }
    switch (t->type) {
    case FB_TARGET_S3:
        if (t->bucket[0] == '\0') {
            conf_err(conf, t->line, sec, "bucket: missing: an s3 target needs its bucket");
            errors++;
        } else if (!bucket_ok(t->bucket)) {
            conf_err(conf, target_line(t, "bucket"), sec,
                     "bucket: \"%s\" is not a bucket name (3 to 63 of a-z, 0-9, '.' and '-', a "
                     "letter or digit at both ends)", t->bucket);
            errors++;
        }
        if (t->region[0] == '\0' || strlen(t->region) > 64 ||
            strspn(t->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(t->region)) {
            conf_err(conf, target_line(t, "region"), sec,
                     "region: \"%s\" is not a region name (1-64 of a-z, 0-9 and '-')", t->region);
            errors++;
        } else if (t->endpoint[0] == '\0') {
            free(t->endpoint);
            if (asprintf(&t->endpoint, "https://s3.%s.amazonaws.com", t->region) < 0) {
                t->endpoint = NULL;
                fb_log_errorx("%s: out of memory", conf->path);
                return errors + 1;
            }
        }
        if (t->endpoint[0] != '\0' && !url_check(t->endpoint, true, &why)) {
            conf_err(conf, target_line(t, "endpoint"), sec, "endpoint: \"%s\" %s",
                     strchr(t->endpoint, '@') ? "(not shown)" : t->endpoint, why);
            errors++;
        }
        if (t->prefix[0] != '\0' && !prefix_ok(t->prefix)) {
            conf_err(conf, target_line(t, "prefix"), sec,
                     "prefix: \"%s\" is not a part of object names: printable ASCII without "
                     "spaces, parts between '/' neither empty (no leading, trailing or double "
                     "'/'), \".\" nor \"..\"", t->prefix);
            errors++;
        }
        break;
    case FB_TARGET_ELASTICSEARCH:
    case FB_TARGET_HTTP:
        if (t->url[0] == '\0') {
            conf_err(conf, t->line, sec, "url: missing: an %s target needs its url",
                     target_type_names[t->type]);
            errors++;
        } else if (!url_check(t->url, false, &why)) {
            conf_err(conf, target_line(t, "url"), sec, "url: \"%s\" %s",
                     strchr(t->url, '@') ? "(not shown)" : t->url, why);
            errors++;
        }
        if (t->type == FB_TARGET_ELASTICSEARCH && !index_ok(t->index)) {
            conf_err(conf, target_line(t, "index"), sec,
                     "index: \"%s\" must not be empty and must be lowercase (index names are; "
                     "%%Y and the other conversions aside)", t->index);
            errors++;
        }
        if (t->credentials_file[0] != '\0' && t->api_key_file[0] != '\0') {
            conf_err(conf, target_line(t, "api_key_file"), sec,
                     "api_key_file: set with credentials_file (line %u): choose one",
                     target_line(t, "credentials_file"));
            errors++;
        }
        break;
    case FB_TARGET_FILE:
        fb_panic("[%s] has type file", sec); /* T_TTYPE refuses it */
    }
    return errors;
}

/* check_router_targets -- [router] targets name targets this version delivers to. */
static int
check_router_targets(const fb_conf_t *conf)
{
    unsigned line = fb_conf_line(conf, "router", "targets");
    int errors = 0;

    for (size_t i = 0; i < conf->n_router_targets; i++) {
        const fb_conf_target_t *t = fb_conf_target_find(conf, conf->router_targets[i]);
        if (t == NULL) {
            conf_err(conf, line, "router", "targets: \"%s\" is not a [target] of this file",
                     conf->router_targets[i]);
            errors++;
        }
    }
    return errors;
}

/* conf_check_values -- rules across keys that need no file or network. */
static int
conf_check_values(fb_conf_t *conf)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "ES256"};
    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    const char *why;
    char bad[300];
    int errors = 0;
    bool ok = false;

#define LINE(s, k) fb_conf_line(conf, s, k)
    if (conf->max_workers == 0)
        conf->max_workers = conf->workers * 2;
    if (conf->max_workers < conf->workers) {
        conf_err(conf, LINE("ingester", "max_workers"), "ingester",
                 "max_workers: %llu is less than workers (%llu)",
                 (unsigned long long)conf->max_workers, (unsigned long long)conf->workers);
        errors++;
    }
    /* a lane takes records up to half its size (fb_lane_reserve); the
     * largest record Kafka takes (key and value) must be one of them */
    if (conf->max_workers >= conf->workers) {
        size_t lane = fb_ring_lane_size(conf->ring_size, (unsigned)conf->max_workers);
        size_t max_rec = lane / 2 / FB_REC_ALIGN * FB_REC_ALIGN;
        size_t need = fb_rec_size(0, conf->message_max_bytes);

        /* fb_ring_format refuses lanes under FB_RING_LANE_MIN: found here,
         * not when the master starts */
        if (lane < FB_RING_LANE_MIN) {
            conf_err(conf, LINE("ingester", "ring_size"), "ingester",
                     "ring_size: %llu bytes over %llu lanes (ingester.max_workers) makes lanes "
                     "of %zu bytes, less than the %u bytes the ring needs in each: raise "
                     "ring_size to %llu or lower max_workers",
                     (unsigned long long)conf->ring_size, (unsigned long long)conf->max_workers,
                     lane, FB_RING_LANE_MIN,
                     (unsigned long long)ring_size_for(need, (unsigned)conf->max_workers));
            errors++;
        } else if (need > max_rec) {
            conf_err(conf, LINE("ingester", "ring_size"), "ingester",
                     "ring_size: %llu bytes over %llu lanes (ingester.max_workers) makes lanes "
                     "of %zu bytes, which take records of at most %zu bytes (half a lane); a "
                     "record of kafka.message_max_bytes (%llu) needs %zu: raise ring_size to "
                     "%llu or lower max_workers or message_max_bytes",
                     (unsigned long long)conf->ring_size, (unsigned long long)conf->max_workers,
                     lane, max_rec, (unsigned long long)conf->message_max_bytes, need,
                     (unsigned long long)ring_size_for(need, (unsigned)conf->max_workers));
            errors++;
        }
    }
    /* a worker beats every 200 ms from its loop; the master looks every second */
    if (conf->worker_stall_timeout_ms != 0 && conf->worker_stall_timeout_ms < 1000) {
        conf_err(conf, LINE("ingester", "worker_stall_timeout"), "ingester",
                 "worker_stall_timeout: %llu ms would kill healthy workers: 0 (no watchdog) "
                 "or at least 1s", (unsigned long long)conf->worker_stall_timeout_ms);
        errors++;
    }
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        ok |= strcmp(conf->jwt_algorithm, algs[i]) == 0;
    if (!ok) {
        conf_err(conf, LINE("auth", "jwt_algorithm"), "auth",
                 "jwt_algorithm: \"%s\" is not one of HS256, HS384, HS512, RS256, ES256",
                 conf->jwt_algorithm);
        errors++;
    }
    if (conf->key_claim[0] == '\0') {
        conf_err(conf, LINE("auth", "key_claim"), "auth", "key_claim: must not be empty");
        errors++;
    }
    if (fb_addr_list_check(conf->brokers, &why, bad, sizeof(bad)) < 0) {
        conf_err(conf, LINE("kafka", "brokers"), "kafka", "brokers: \"%s\": %s", bad, why);
        errors++;
    }
    if (conf->min_insync_replicas > conf->replication_factor) {
        conf_err(conf, LINE("kafka", "min_insync_replicas"), "kafka",
                 "min_insync_replicas: %llu is above replication_factor (%llu): Kafka would "
                 "refuse every record", (unsigned long long)conf->min_insync_replicas,
                 (unsigned long long)conf->replication_factor);
        errors++;
    }
    if (!topic_ok(conf->topic)) {
        conf_err(conf, LINE("kafka", "topic"), "kafka",
                 "topic: \"%s\" is not a valid Kafka topic name "
                 "(1-249 characters of [a-zA-Z0-9._-])", conf->topic);
        errors++;
    }
    ok = false;
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
        ok |= strcmp(conf->compression, codecs[i]) == 0;
    if (!ok) {
        conf_err(conf, LINE("kafka", "compression"), "kafka",
                 "compression: \"%s\" is not one of none, gzip, snappy, lz4, zstd",
                 conf->compression);
        errors++;
    }
    for (size_t i = 0; conf->partition_by == FB_PARTITION_KEY_AGENT && i < conf->n_rdkafka; i++) {
        if (strcmp(conf->rdkafka[i].key, "partitioner") == 0) {
            conf_err(conf, conf->rdkafka[i].line, "librdkafka",
                     "partitioner: kafka.partition_by = key_agent chooses the partition itself "
                     "(line %u); remove one of them", LINE("kafka", "partition_by"));
            errors++;
        }
    }
    if (conf->router_group[0] == '\0') {
        conf_err(conf, LINE("router", "group"), "router", "group: must not be empty");
        errors++;
    }
    if (conf->router_dir[0] == '\0') {
        conf_err(conf, LINE("router", "dir"), "router", "dir: must not be empty");
        errors++;
    }
    if (conf->tls_cert[0] != '\0' && conf->tls_key[0] == '\0') {
        conf_err(conf, LINE("ingester", "tls_cert"), "ingester",
                 "tls_cert is set but tls_key is not");
        errors++;
    }
    if (conf->tls_key[0] != '\0' && conf->tls_cert[0] == '\0') {
        conf_err(conf, LINE("ingester", "tls_key"), "ingester",
                 "tls_key is set but tls_cert is not");
        errors++;
    }
    if (conf->tls_client_ca[0] != '\0' && conf->tls_cert[0] == '\0') {
        conf_err(conf, LINE("ingester", "tls_client_ca"), "ingester",
                 "tls_client_ca needs TLS: set tls_cert and tls_key too");
        errors++;
    }
    if (conf->ingester_enabled && conf->tls_cert[0] == '\0' && !conf->allow_plaintext &&
        !fb_addr_is_loopback(&conf->listen_addr)) {
        conf_err(conf, LINE("ingester", "listen"), "ingester",
                 "listen: plaintext gRPC on %s, which is not a loopback address: tokens and "
                 "encryption keys would cross the network in clear; set tls_cert and tls_key, "
                 "or allow_plaintext = yes",
                 conf->listen);
        errors++;
    }
    if (!conf->ingester_enabled && !conf->router_enabled) {
        conf_err(conf, 0, "main",
                 "neither [ingester] nor [router] is enabled: this host would run nothing");
        errors++;
    }
    for (size_t i = 0; i < conf->n_targets; i++)
        errors += check_target(conf, &conf->targets[i]);
    errors += check_router_targets(conf);
#undef LINE
    return errors ? -1 : 0;
}

/* fb_conf_load -- read FILE; NULL after logging every problem. */
fb_conf_t *
fb_conf_load(const char *path)
{
    conf_parse_t cp = {0};
    fb_conf_t *conf;
    char *tmp = NULL;
    int rc;

    conf = calloc(1, sizeof(*conf));
    if (conf == NULL)
        return NULL;
    conf->lines = calloc(N_KEYS, sizeof(*conf->lines));
    conf->path = strdup(path);
    tmp = strdup(path);
    if (conf->lines == NULL || conf->path == NULL || tmp == NULL)
        goto nomem;
    conf->dir = strdup(dirname(tmp));
    if (conf->dir == NULL)
        goto nomem;
    if (conf_defaults(conf) < 0)
        goto nomem;

    cp.conf = conf;
    cp.target = -1;
    cp.fp = fopen(path, "re");
    if (cp.fp == NULL) {
        fb_log_error("fopen(%s) failed", path);
        goto fail;
    }
    ini_use_stack = false;
    ini_max_line = CONF_LINE_MAX;
    ini_allow_realloc = false;
    ini_allow_multiline = false;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    rc = ini_parse_stream(conf_reader, &cp, conf_handler, &cp);
    if (ferror(cp.fp)) {
        fb_log_error("read(%s) failed", path);
        cp.errors++;
    }
    fclose(cp.fp);
    free(cp.linebuf);
    if (rc == -2) {
        fb_log_errorx("%s: out of memory while parsing", path);
        goto fail;
    }
    if (rc > 0) {
        /* The handler never refuses a line (it counts its own errors), so a
         * positive result is a line inih could not parse: no '=', no ']'. */
        fb_log_errorx("%s:%d: syntax error: expected [section] or key = value", path, rc);
        cp.errors++;
    }
    if (cp.errors > 0)
        goto fail;
    if (conf_check_values(conf) < 0)
        goto fail;
    free(tmp);
    return conf;

nomem:
    fb_log_errorx("%s: out of memory", path);
fail:
    free(tmp);
    fb_conf_free(conf);
    return NULL;
}

/* check_keyfile -- a secret (HS*) or a PEM public key (RS/ES). */
static int
check_keyfile(const fb_conf_t *conf, const fb_conf_keyfile_t *kf, bool secret)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = 0;

    if (secret) {
        if (fb_secret_read(kf->path, FB_SECRET_F_PRIVATE | FB_SECRET_F_STRIP_NL,
                           FB_SECRET_MIN_HMAC, &buf, &len) < 0)
            rc = -1;
    } else if (fb_secret_read(kf->path, 0, 1, &buf, &len) < 0) {
        rc = -1;
    } else if (strstr((char *)buf, "-----BEGIN PUBLIC KEY-----") == NULL) {
        conf_err(conf, kf->line, "auth", "%s: not a PEM public key (no BEGIN PUBLIC KEY)",
                 kf->path);
        rc = -1;
    }
    fb_secret_free(buf, len);
    if (rc < 0 && kf->line > 0)
        conf_err(conf, kf->line, "auth", "jwt_%s_file%s%s: refused (see above)",
                 secret ? "secret" : "public_key", kf->kid[0] ? "." : "", kf->kid);
    return rc;
}

/* check_tls -- the certificate, its key and the client CA load as the
 * gRPC server will load them (common/tls.c); a certificate out of its
 * validity dates is a warning. */
static int
check_tls(const fb_conf_t *conf)
{
    uint8_t *cert = NULL, *key = NULL, *ca = NULL;
    size_t cert_len = 0, key_len = 0, ca_len = 0;
    char why[512], warn[256];
    int rc = -1;

    if (conf->tls_cert[0] == '\0')
        return 0;
    if (fb_secret_read(conf->tls_cert, 0, 1, &cert, &cert_len) < 0) {
        conf_err(conf, fb_conf_line(conf, "ingester", "tls_cert"), "ingester",
                 "tls_cert: refused (see above)");
        goto out;
    }
    if (fb_secret_read(conf->tls_key, FB_SECRET_F_PRIVATE, 1, &key, &key_len) < 0) {
        conf_err(conf, fb_conf_line(conf, "ingester", "tls_key"), "ingester",
                 "tls_key: refused (see above)");
        goto out;
    }
    if (conf->tls_client_ca[0] != '\0' &&
        fb_secret_read(conf->tls_client_ca, 0, 1, &ca, &ca_len) < 0) {
        conf_err(conf, fb_conf_line(conf, "ingester", "tls_client_ca"), "ingester",
                 "tls_client_ca: refused (see above)");
        goto out;
    }
    switch (fb_tls_check(cert, cert_len, key, key_len, ca, ca_len, why, sizeof(why), warn,
                         sizeof(warn))) {
    case FB_TLS_OK:
        rc = 0;
        if (warn[0] != '\0')
            conf_warn(conf, fb_conf_line(conf, "ingester", "tls_cert"), "ingester",
                      "tls_cert: %s: %s", conf->tls_cert, warn);
        break;
    case FB_TLS_BAD_CERT:
        conf_err(conf, fb_conf_line(conf, "ingester", "tls_cert"), "ingester",
                 "tls_cert: %s: %s", conf->tls_cert, why);
        break;
    case FB_TLS_BAD_KEY:
        conf_err(conf, fb_conf_line(conf, "ingester", "tls_key"), "ingester",
                 "tls_key: %s: %s", conf->tls_key, why);
        break;
    case FB_TLS_BAD_CA:
        conf_err(conf, fb_conf_line(conf, "ingester", "tls_client_ca"), "ingester",
                 "tls_client_ca: %s: %s", conf->tls_client_ca, why);
        break;
    default:
        conf_err(conf, 0, "ingester", "TLS files not checked: %s", why);
        break;
    }
out:
    fb_secret_free(cert, cert_len);
    fb_secret_free(key, key_len);
    fb_secret_free(ca, ca_len);
    return rc;
}

/* check_listen_port -- a warning when the port is one the kernel hands
 * out to outgoing connections: one of them may hold it at start. */
static int
check_listen_port(const fb_conf_t *conf)
{
    fb_addr_t a;
    const char *why;
    unsigned lo, hi;

    if (fb_addr_parse(conf->listen, FB_ADDR_F_PORT_ZERO, &a, &why) == 0 &&
        fb_listen_port_ephemeral(a.port, &lo, &hi))
        conf_warn(conf, fb_conf_line(conf, "ingester", "listen"), "ingester",
                  "listen: port %u is in the kernel's ephemeral range %u-%u "
                  "(net.ipv4.ip_local_port_range): an outgoing connection may hold it when "
                  "fbpiped starts; choose a port below %u, or reserve it "
                  "(net.ipv4.ip_local_reserved_ports = %u)",
                  (unsigned)a.port, lo, hi, lo, (unsigned)a.port);
    return 0;
}

/* check_router_dir_owner -- a warning when the routers, which run as
 * main.user and main.group alone (no other groups), may not write
 * router.dir by its mode bits: made by root, it is the usual mistake.
 * Only a warning: an ACL may allow them, and a router that cannot write
 * there waits as "not ready" and says so. */
static void
check_router_dir_owner(const fb_conf_t *conf, const struct stat *st)
{
    struct passwd *pw = conf->user[0] != '\0' ? getpwnam(conf->user) : NULL;
    struct group *gr = conf->group[0] != '\0' ? getgrnam(conf->group) : NULL;
    uid_t uid;
    gid_t gid;
    mode_t need;

    if (pw == NULL && gr == NULL)
        return; /* no user to run as, or a missing one (said above) */
    uid = pw != NULL ? pw->pw_uid : getuid();
    gid = gr != NULL ? gr->gr_gid : pw != NULL ? pw->pw_gid : getgid();
    if (uid == 0)
        return;
    need = st->st_uid == uid ? (S_IWUSR | S_IXUSR)
           : st->st_gid == gid ? (S_IWGRP | S_IXGRP)
                               : (S_IWOTH | S_IXOTH);
    if ((st->st_mode & need) == need)
        return;
    conf_warn(conf, fb_conf_line(conf, "router", "dir"), "router",
              "dir: %s (owner uid %ld, gid %ld, mode %04o) is not writable by the routers, "
              "which run as uid %ld, gid %ld (main.user, main.group): they will wait as not "
              "ready until it is (chown %ld:%ld %s)",
              conf->router_dir, (long)st->st_uid, (long)st->st_gid,
              (unsigned)(st->st_mode & 07777), (long)uid, (long)gid, (long)uid, (long)gid,
              conf->router_dir);
}

/* check_target_file -- a target's credentials_file, api_key_file or
 * ca_file loads by secret.c's rules as the router will load it; a
 * credentials file holds ID:SECRET or user:password. */
static int
check_target_file(const fb_conf_t *conf, const fb_conf_target_t *t, const char *key,
                  const char *path)
{
    bool ca = strcmp(key, "ca_file") == 0, creds = strcmp(key, "credentials_file") == 0;
    char sec[64], err[PATH_MAX + 256];
    const char *why = NULL;
    uint8_t *buf;
    size_t len;

    if (path[0] == '\0')
        return 0;
    snprintf(sec, sizeof(sec), "target %s", t->name);
    if (fb_secret_load(path, ca ? 0 : FB_SECRET_F_PRIVATE | FB_SECRET_F_STRIP_NL, 1, &buf, &len,
                       err, sizeof(err)) < 0) {
        conf_err(conf, target_line(t, key), sec, "%s: %s", key, err);
        return -1;
    }
    if (ca) {
        if (strstr((char *)buf, "-----BEGIN CERTIFICATE-----") == NULL)
            why = "not a PEM certificate (no BEGIN CERTIFICATE)";
    } else {
        /* an s3 file may hold the id and the secret on two lines */
        size_t nl = strcspn((char *)buf, "\r\n");
        bool two_lines = t->type == FB_TARGET_S3 && creds && nl < len;
        for (size_t i = 0; i < len && why == NULL; i++) {
            if ((buf[i] < 0x20 || buf[i] == 0x7f) && !(two_lines && i >= nl && i <= nl + 1 &&
                                                        (buf[i] == '\n' || buf[i] == '\r')))
                why = "holds a control character (one line expected)";
        }
        if (why == NULL && creds && !two_lines && memchr(buf, ':', len) == NULL)
            why = t->type == FB_TARGET_S3 ? "must hold ID:SECRET (or the ID and the SECRET on two "
                                            "lines)"
                                          : "must hold user:password";
    }
    fb_secret_free(buf, len);
    if (why != NULL) {
        conf_err(conf, target_line(t, key), sec, "%s: %s: %s", key, path, why);
        return -1;
    }
    return 0;
}

/* fb_conf_verify -- check what the settings name: files, keys, users. */
int
fb_conf_verify(const fb_conf_t *conf)
{
    int errors = 0;
    bool hs = strncmp(conf->jwt_algorithm, "HS", 2) == 0;
    fb_keydb_t *db;
    uint8_t *buf;
    size_t len;

    if (conf->ingester_enabled) {
        if (hs && conf->n_jwt_secret_files == 0) {
            conf_err(conf, fb_conf_line(conf, "auth", "jwt_algorithm"), "auth",
                     "jwt_algorithm %s needs jwt_secret_file", conf->jwt_algorithm);
            errors++;
        }
        if (!hs && conf->n_jwt_public_key_files == 0) {
            conf_err(conf, fb_conf_line(conf, "auth", "jwt_algorithm"), "auth",
                     "jwt_algorithm %s needs jwt_public_key_file", conf->jwt_algorithm);
            errors++;
        }
        for (size_t i = 0; hs && i < conf->n_jwt_secret_files; i++)
            errors += check_keyfile(conf, &conf->jwt_secret_files[i], true) < 0;
        for (size_t i = 0; !hs && i < conf->n_jwt_public_key_files; i++)
            errors += check_keyfile(conf, &conf->jwt_public_key_files[i], false) < 0;
        errors += check_tls(conf) < 0;
        errors += check_listen_port(conf) < 0;
    }
    if (conf->jwt_private_key_file[0] != '\0') {
        if (fb_secret_read(conf->jwt_private_key_file, FB_SECRET_F_PRIVATE, 1, &buf, &len) < 0) {
            conf_err(conf, fb_conf_line(conf, "auth", "jwt_private_key_file"), "auth",
                     "jwt_private_key_file: refused (see above)");
            errors++;
        } else {
            fb_secret_free(buf, len);
        }
    }

    db = fb_keydb_load(conf->keys_file);
    if (db == NULL) {
        conf_err(conf, fb_conf_line(conf, "auth", "keys_file"), "auth",
                 "keys_file: %s refused (see above)", conf->keys_file);
        errors++;
    } else if (fb_keydb_check_targets(db, conf) < 0) {
        errors++;
    }
    fb_keydb_free(db);

    for (size_t i = 0; i < conf->n_targets; i++) {
        const fb_conf_target_t *t = &conf->targets[i];
        errors += check_target_file(conf, t, "credentials_file", t->credentials_file) < 0;
        errors += check_target_file(conf, t, "api_key_file", t->api_key_file) < 0;
        errors += check_target_file(conf, t, "ca_file", t->ca_file) < 0;
    }

    /* the sample names a system user that packaging, the init script or
     * systemd-sysusers creates: say how, since a fresh host has none */
    if (conf->user[0] != '\0' && getpwnam(conf->user) == NULL) {
        conf_err(conf, fb_conf_line(conf, "main", "user"), "main",
                 "user: no user \"%s\": create it (useradd --system --user-group "
                 "--home-dir /nonexistent --shell /usr/sbin/nologin %s; systemd-sysusers "
                 "fbpipe.conf and the init script create fbpipe), or empty main.user and "
                 "main.group to run every process as root",
                 conf->user, conf->user);
        errors++;
    }
    if (conf->group[0] != '\0' && getgrnam(conf->group) == NULL) {
        conf_err(conf, fb_conf_line(conf, "main", "group"), "main",
                 "group: no group \"%s\": create it (useradd --user-group creates it with "
                 "the user of that name, or groupadd --system %s), or empty main.group",
                 conf->group, conf->group);
        errors++;
    }

    if (conf->router_enabled) {
        struct stat st;
        if (stat(conf->router_dir, &st) < 0) {
            /* a file system not mounted yet at boot: the routers wait for
             * it (with back-off) while the ingester runs */
            int e = errno;
            if (e == ENOENT) {
                conf_warn(conf, fb_conf_line(conf, "router", "dir"), "router",
                          "dir: %s: %s (not mounted yet?): the routers retry until it is "
                          "there; the ingester runs and Kafka keeps the records",
                          conf->router_dir, strerror(e));
            } else {
                conf_err(conf, fb_conf_line(conf, "router", "dir"), "router", "dir: %s: %s",
                         conf->router_dir, strerror(e));
                errors++;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            conf_err(conf, fb_conf_line(conf, "router", "dir"), "router",
                     "dir: %s is not a directory", conf->router_dir);
            errors++;
        } else {
            check_router_dir_owner(conf, &st);
        }
    }

    /* Let librdkafka judge the pass-through properties, without starting it. */
    if (conf->n_rdkafka > 0) {
        rd_kafka_conf_t *rk = rd_kafka_conf_new();
        char errstr[512];
        for (size_t i = 0; i < conf->n_rdkafka; i++) {
            if (rd_kafka_conf_set(rk, conf->rdkafka[i].key, conf->rdkafka[i].value, errstr,
                                  sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                conf_err(conf, conf->rdkafka[i].line, "librdkafka", "%s: %s",
                         conf->rdkafka[i].key, errstr);
                errors++;
            }
        }
        rd_kafka_conf_destroy(rk);
    }
    return errors ? -1 : 0;
}

/* fb_conf_line -- the line that set [section] key, 0 for a default. */
unsigned
fb_conf_line(const fb_conf_t *conf, const char *section, const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(conf_keys[i].section, section) == 0 && strcmp(conf_keys[i].name, key) == 0)
            return conf->lines[i];
    }
    return 0;
}

/* fb_keydb_check_targets -- every name in a tenant's targets is a target
 * of conf that this version delivers to. Here, not in keys.c: the agent
 * links keys.c and nothing of the configuration. */
int
fb_keydb_check_targets(const fb_keydb_t *db, const fb_conf_t *conf)
{
    char shown[CONF_SHOW_MAX * 4 + 4];
    int errors = 0;

    for (size_t i = 0; db != NULL && i < db->n_tenants; i++) {
        const fb_tenant_t *t = &db->tenants[i];

        fb_log_show(shown, sizeof(shown), t->access_key, strlen(t->access_key),
                    CONF_SHOW_MAX);
        for (size_t j = 0; j < t->n_targets; j++) {
            const fb_conf_target_t *tg = fb_conf_target_find(conf, t->targets[j]);

            if (tg == NULL) {
                fb_log_errorx("%s: key \"%s\": targets: \"%s\" is not a [target] of %s",
                              db->path, shown, t->targets[j], conf->path);
                errors++;
            }
        }
    }
    return errors ? -1 : 0;
}

/* fb_conf_target_find -- a [target] section, the built-in "file", or NULL. */
const fb_conf_target_t *
fb_conf_target_find(const fb_conf_t *conf, const char *name)
{
    static char file_name[] = "file";
    static const fb_conf_target_t file_target = {.name = file_name, .type = FB_TARGET_FILE};

    if (name == NULL)
        return NULL;
    if (strcmp(name, "file") == 0)
        return &file_target;
    for (size_t i = 0; conf != NULL && i < conf->n_targets; i++)
        if (strcmp(conf->targets[i].name, name) == 0)
            return &conf->targets[i];
    return NULL;
}

/* fb_conf_target_type_name -- "file", "s3", "elasticsearch", "http". */
const char *
fb_conf_target_type_name(fb_target_type_t type)
{
    if ((unsigned)type < sizeof(target_type_names) / sizeof(target_type_names[0]))
        return target_type_names[type];
    return "?";
}

/* fb_conf_free -- free everything; tolerates NULL and a half-built conf. */
void
fb_conf_free(fb_conf_t *conf)
{
    if (conf == NULL)
        return;
    for (size_t i = 0; i < N_KEYS; i++) {
        const conf_key_t *k = &conf_keys[i];
        if (k->offset != 0 && (k->type == T_STR || k->type == T_PATH || k->type == T_ADDR ||
                               k->type == T_ADDR_OPT))
            free(*(char **)((char *)conf + k->offset));
    }
    for (size_t i = 0; i < conf->n_jwt_secret_files; i++) {
        free(conf->jwt_secret_files[i].kid);
        free(conf->jwt_secret_files[i].path);
    }
    free(conf->jwt_secret_files);
    for (size_t i = 0; i < conf->n_jwt_public_key_files; i++) {
        free(conf->jwt_public_key_files[i].kid);
        free(conf->jwt_public_key_files[i].path);
    }
    free(conf->jwt_public_key_files);
    for (size_t i = 0; i < conf->n_rdkafka; i++) {
        free(conf->rdkafka[i].key);
        free(conf->rdkafka[i].value);
    }
    free(conf->rdkafka);
    for (size_t i = 0; i < conf->n_targets; i++)
        target_free(&conf->targets[i]);
    free(conf->targets);
    for (size_t i = 0; i < conf->n_router_targets; i++)
        free(conf->router_targets[i]);
    free(conf->router_targets);
    free(conf->lines);
    free(conf->path);
    free(conf->dir);
    free(conf);
}
