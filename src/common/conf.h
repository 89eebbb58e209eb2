/*
 * conf.h -- fbpipe.conf: every setting, its default, and its validation.
 *
 * fb_conf_load() parses and checks values; fb_conf_verify() checks what
 * they name (files, keys, addresses). Both report every problem, each once,
 * as "FILE:LINE: [section] key: reason". Never starts threads or opens
 * sockets, so the master may call both before forking.
 */
#ifndef FB_CONF_H
#define FB_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/log.h"

struct fb_keydb; /* common/keys.h */

typedef struct fb_conf_kv {
    char *key;
    char *value;
    unsigned line;
} fb_conf_kv_t;

/* One verification key or secret, chosen by the token's kid ("" = no kid). */
typedef struct fb_conf_keyfile {
    char *kid;
    char *path;
    unsigned line;
} fb_conf_keyfile_t;

typedef enum fb_fsync_policy {
    FB_FSYNC_NONE = 0,
    FB_FSYNC_BATCH,    /* fsync before offsets are stored */
    FB_FSYNC_INTERVAL, /* at most every fsync_interval_ms */
} fb_fsync_policy_t;

/* How the producer chooses a record's partition ([kafka] partition_by). */
typedef enum fb_partition_by {
    FB_PARTITION_KEY = 0, /* librdkafka's partitioner on the Kafka key (the access key) */
    FB_PARTITION_KEY_AGENT, /* fb_partition_key_agent(access key, agent_id) */
} fb_partition_by_t;

/* Delivery destinations of the routers (docs/router-targets.md). */
typedef enum fb_target_type {
    FB_TARGET_FILE = 0,
    FB_TARGET_S3,
    FB_TARGET_ELASTICSEARCH,
    FB_TARGET_HTTP
} fb_target_type_t;

/* One [target NAME] section, every value checked and defaulted. */
typedef struct fb_conf_target {
    char *name;            /* (fb_target_name_valid) the section's NAME: [target NAME]; "file" is built in and never a section */
    fb_target_type_t type;
    unsigned line;         /* line of the [target NAME] header */
    /* every type but file */
    char *credentials_file; /* "" = none. s3: "ID:SECRET"; elasticsearch and http: "user:password" */
    char *ca_file;          /* "" = the system's CAs */
    bool gzip;              /* default no */
    uint64_t timeout_ms;         /* `timeout`, default 30s: one request, whole */
    uint64_t connect_timeout_ms; /* `connect_timeout`, default 10s */
    uint64_t buffer_max;    /* `buffer_max`, size, default 256M: records not yet delivered that
                             * each router holds in memory for this target; past it the router
                             * stops reading until the target takes some (min 1M) */
    /* s3 */
    char *bucket;            /* required for s3 */
    char *region;            /* default "us-east-1" */
    char *endpoint;          /* "https://s3.<region>.amazonaws.com" when not set */
    bool path_style;         /* default no */
    char *prefix;            /* default "" */
    uint64_t max_records;    /* default 10000, 1..1000000: records per object */
    uint64_t max_bytes;      /* default 16M, 1K..1G: bytes of lines per object (before gzip) */
    uint64_t max_age_ms;     /* default 5m: an object is cut when a record's own time is this far
                              * past its first record's */
    uint64_t flush_after_ms; /* default 60s: an object not cut otherwise is cut after this much
                              * wall-clock time */
    /* elasticsearch and http */
    char *url;               /* required for both */
    /* elasticsearch */
    char *index;             /* default "logs-{key}-%Y.%m.%d" */
    char *api_key_file;      /* "" = none; exclusive with credentials_file */
    /* http */
    char **headers;          /* `header = Name: value`, repeatable, in order */
    size_t n_headers;

    unsigned *lines;         /* conf.c's own: the line of each key, 0 = default */
} fb_conf_target_t;

typedef struct fb_conf {
    char *path; /* the config file */
    char *dir;  /* its folder: relative paths start here */

    /* [main] */
    char *pid_file;
    char *user;
    char *group;
    fb_log_level_t log_level;
    uint64_t shutdown_timeout_ms;

    /* [ingester] */
    bool ingester_enabled;
    char *listen;
    fb_addr_t listen_addr;
    uint64_t workers;
    uint64_t max_workers; /* 0 in the file = twice workers */
    bool allow_plaintext;
    char *tls_cert;
    char *tls_key;
    char *tls_client_ca;
    uint64_t ring_size;
    uint64_t max_message_size;
    uint64_t max_batch_records;
    uint64_t max_calls_per_peer;   /* before they authenticate */
    uint64_t max_calls_per_tenant; /* per access key, once authenticated */
    uint64_t max_streams_per_connection;
    uint64_t max_inflight_batches;
    uint64_t memory_limit;
    uint64_t backpressure_timeout_ms;
    uint64_t handshake_timeout_ms; /* a connection without its HTTP/2 preface or TLS */
    uint64_t idle_timeout_ms;      /* a connection without a call */
    uint64_t drain_timeout_ms;     /* a retiring worker's calls, at most */
    uint64_t retry_after_ms;
    uint64_t refresh_interval_ms;
    uint64_t kafka_unavailable_after_ms;
    uint64_t worker_stall_timeout_ms; /* 0: no watchdog */
    bool ingester_print_events;

    /* [auth] */
    fb_conf_keyfile_t *jwt_secret_files;
    size_t n_jwt_secret_files;
    fb_conf_keyfile_t *jwt_public_key_files;
    size_t n_jwt_public_key_files;
    char *jwt_private_key_file;
    char *jwt_algorithm;
    char *key_claim;
    uint64_t clock_skew_ms;
    bool require_exp;
    char *issuer;
    char *audience;
    char *keys_file;

    /* [kafka] */
    char *brokers;
    char *topic;
    uint64_t partitions;
    uint64_t replication_factor;
    uint64_t min_insync_replicas; /* 0: min(2, replication_factor) */
    uint64_t message_max_bytes;
    fb_partition_by_t partition_by;
    char *compression;
    uint64_t linger_ms;
    uint64_t flush_timeout_ms;

    /* [librdkafka]: passed to librdkafka as they are */
    fb_conf_kv_t *rdkafka;
    size_t n_rdkafka;

    /* [router] */
    bool router_enabled;
    uint64_t router_workers;
    char *router_group;
    char *router_dir;
    bool router_decrypt;
    bool router_accept_legacy; /* read records without a Kafka key (the Go version's) */
    bool router_print_events;
    fb_fsync_policy_t fsync;
    uint64_t fsync_interval_ms;
    uint64_t max_open_files;
    uint64_t rotate_size;
    uint64_t rotate_age_ms;
    uint64_t rotate_keep;
    uint64_t spool_max;
    bool router_dedupe;     /* native records with an identity are written once per file */
    uint64_t dedupe_window; /* identities remembered per key (the file's last records) */
    uint64_t dedupe_memory; /* bytes of identities per router, all keys together */
    uint64_t dedupe_load_max; /* bytes of a key's file tail read to load its set */
    fb_conf_target_t *targets; /* the [target NAME] sections, in file order */
    size_t n_targets;
    char **router_targets;     /* [router] targets = file, archive (comma/space separated
                                * names), default "file": the list for keys that name none */
    size_t n_router_targets;

    /* [metrics] */
    char *metrics_listen; /* "" = off */
    fb_addr_t metrics_addr;
    uint64_t metrics_max_tenants; /* named tenants in the metrics; the rest: "_other" */

    unsigned *lines; /* line of each table entry, 0 = default */
} fb_conf_t;

fb_conf_t *fb_conf_load(const char *path);
int fb_conf_verify(const fb_conf_t *conf);
void fb_conf_free(fb_conf_t *conf);
unsigned fb_conf_line(const fb_conf_t *conf, const char *section, const char *key);

/* The target called name: a [target] section, the built-in "file" (type
 * FB_TARGET_FILE, nothing else set), or NULL for an unknown name. */
const fb_conf_target_t *fb_conf_target_find(const fb_conf_t *conf, const char *name);

/* The name of a target type as the file spells it ("s3", ...). */
const char *fb_conf_target_type_name(fb_target_type_t type);

/* 0 if every target each tenant of db names is a target of conf (a
 * [target] section or "file") that this version delivers to; else -1
 * after logging one error per tenant and name ("KEYS: key "acme":
 * targets: "archive" is not a [target] of FILE"). The key database cannot
 * check this when it loads: it does not know the configuration. */
int fb_keydb_check_targets(const struct fb_keydb *db, const fb_conf_t *conf);

#endif /* FB_CONF_H */
