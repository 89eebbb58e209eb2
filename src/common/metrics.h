/*
 * metrics.h -- the metrics zone: what every process counts, in shared
 * memory of its own (not the ring), for the metrics child (/metrics), for
 * fbpiped ledger and fbpiped status.
 *
 * The master makes the zone before it forks (a file under the run
 * directory, mapped shared, so that a command can read it too) and
 * publishes the tenants' names in it (at start and on reload; at most
 * max_tenants, the rest count as "_other"). Each process adds to its own
 * slot only: the master, the producer, each worker lane, each router.
 * A reader sums the slots. Counters only grow (a child restarted goes on
 * in its slot); gauges are set. Nothing in the zone is a secret: access
 * keys name tenants here as they do in file names and log lines.
 */
#ifndef FB_METRICS_H
#define FB_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/auth.h"

#define FB_METRICS_TENANTS_MAX 100000
/* Partitions whose lag has a series of its own (0..N-1); the total lag
 * counts every partition. */
#define FB_METRICS_PARTITIONS 256

/* Where a process counts. */
typedef enum fb_mrole {
    FB_MROLE_MASTER,
    FB_MROLE_PRODUCER,
    FB_MROLE_WORKER,
    FB_MROLE_ROUTER,
    FB_MROLE_METRICS,
    FB_MROLE_N
} fb_mrole_t;

/* Delivery latency buckets (producer: from a record's hand-over to
 * librdkafka to Kafka's acknowledgement) and fsync buckets (router), in
 * microseconds. */
#define FB_MHIST_BUCKETS 12
extern const uint64_t fb_mhist_le_us[FB_MHIST_BUCKETS]; /* the last is +Inf */

/* Why a child ended, as the master counts it. */
typedef enum fb_mexit {
    FB_MEXIT_CLEAN,            /* exit 0 (a stop) */
    FB_MEXIT_RETIRED,          /* of a previous generation, after a reload */
    FB_MEXIT_CRASH,            /* a signal, or a status the master does not expect */
    FB_MEXIT_NOT_READY,        /* status 6: what it needs is not there yet */
    FB_MEXIT_CONFIG,           /* status 2: a configuration error, not restarted */
    FB_MEXIT_MEMORY,           /* a worker past its memory limit, restarted */
    FB_MEXIT_NOT_ACCEPTING,    /* a worker whose gRPC server stopped accepting, restarted */
    FB_MEXIT_LANE_QUARANTINED, /* a worker that left its quarantined lane, restarted */
    FB_MEXIT_N
} fb_mexit_t;

/* Counters and gauges of one process slot. */
typedef enum fb_mc {
    /* every process */
    FB_MC_PID,               /* gauge: the process now in the slot (0: none yet) */
    FB_MC_STARTED,           /* gauge: when it started (unix seconds) */
    /* worker */
    FB_MC_CALLS,             /* calls accepted (every method) */
    FB_MC_EVENTS_RECEIVED,   /* events of accepted batches and streams */
    FB_MC_BYTES_RECEIVED,    /* their payload bytes */
    FB_MC_EVENTS_ACKED,      /* answered OK to the agent */
    FB_MC_EVENTS_REFUSED_INVALID,   /* the record is wrong (REJECTED) */
    FB_MC_EVENTS_REFUSED_WRONG_KEY, /* another tenant's key */
    FB_MC_EVENTS_REFUSED_TOO_LARGE, /* larger than the topic takes */
    FB_MC_EVENTS_RETRY,      /* answered RETRY (full ring, revoked, stopping) */
    FB_MC_AUTH_REFUSED,      /* FB_AUTH_N_ERRS counters from here, by fb_auth_err_t */
    FB_MC_AUTH_REFUSED_END = FB_MC_AUTH_REFUSED + FB_AUTH_N_ERRS,
    FB_MC_RING_FILL = FB_MC_AUTH_REFUSED_END, /* gauge: bytes of the lane in use */
    FB_MC_RING_SIZE,         /* gauge: the lane's size */
    FB_MC_SERVING,           /* gauge: 1 while the worker takes calls */
    /* producer */
    FB_MC_RECORDS_DELIVERED, /* acknowledged by Kafka */
    FB_MC_BYTES_DELIVERED,
    FB_MC_DELIVERY_ERRORS,   /* delivery reports with an error (retried) */
    FB_MC_IN_FLIGHT,         /* gauge: records handed to librdkafka, not yet acknowledged */
    FB_MC_KAFKA_UP,          /* gauge: 1 when a broker answered within the last 10 s */
    FB_MC_DELIVERY_LATENCY,  /* histogram: FB_MHIST_BUCKETS counts, then sum (us), count */
    FB_MC_DELIVERY_LATENCY_END = FB_MC_DELIVERY_LATENCY + FB_MHIST_BUCKETS + 2,
    /* router */
    FB_MC_RECORDS_WRITTEN = FB_MC_DELIVERY_LATENCY_END,
    FB_MC_BYTES_WRITTEN,
    FB_MC_DEAD_LETTERS_UNREADABLE, /* not a record, or not decryptable */
    FB_MC_DEAD_LETTERS_REFUSED,    /* a key whose file may not be written or named */
    FB_MC_SPOOLED,           /* lines put aside for a key whose file refused them */
    FB_MC_ROTATIONS,
    FB_MC_FILES_OPEN,        /* gauge */
    FB_MC_CONSUMER_LAG,      /* gauge: records behind the partitions' ends (sum) */
    FB_MC_ASSIGNED,          /* gauge: partitions assigned */
    FB_MC_SPOOL_BYTES,       /* gauge: bytes in <router.dir>/.spool (each router looks) */
    FB_MC_SPOOL_FILES,       /* gauge: files there */
    FB_MC_DEAD_LETTERS_TARGET, /* records a remote target refused for themselves */
    FB_MC_TARGET_DELIVERED,  /* records remote targets acknowledged */
    FB_MC_TARGET_FAILURES,   /* attempts of remote targets that failed (retried) */
    FB_MC_TARGET_PENDING,    /* gauge: records the router holds for remote targets */
    FB_MC_TARGET_FAILING,    /* gauge: remote targets failing now */
    FB_MC_DUPLICATES_DROPPED, /* router.dedupe: records whose line their file held */
    FB_MC_DEDUPE_NO_ID,      /* router.dedupe: records written without an identity */
    FB_MC_DEDUPE_LOADS,      /* router.dedupe: keys' sets loaded from their files */
    FB_MC_DEDUPE_MEMORY,     /* gauge: router.dedupe: bytes of the sets */
    FB_MC_PARTITION_LAG,     /* FB_METRICS_PARTITIONS gauges: 1 + the lag of each partition
                              * the router holds, 0 for the others */
    FB_MC_PARTITION_LAG_END = FB_MC_PARTITION_LAG + FB_METRICS_PARTITIONS,
    FB_MC_FSYNC_LATENCY = FB_MC_PARTITION_LAG_END, /* histogram, as above */
    FB_MC_FSYNC_LATENCY_END = FB_MC_FSYNC_LATENCY + FB_MHIST_BUCKETS + 2,
    /* master */
    FB_MC_CHILD_STARTS = FB_MC_FSYNC_LATENCY_END, /* FB_MROLE_N counters, by role */
    FB_MC_CHILD_EXITS = FB_MC_CHILD_STARTS + FB_MROLE_N, /* by role, then by fb_mexit_t:
                                                          * FB_MC_CHILD_EXITS + role * FB_MEXIT_N
                                                          * + why */
    FB_MC_N = FB_MC_CHILD_EXITS + FB_MROLE_N * FB_MEXIT_N
} fb_mc_t;

/* Per tenant, where its events are (the ledger's columns, up to
 * FB_MT_STAGES), then bytes. */
typedef enum fb_mt {
    FB_MT_RECEIVED,      /* by a worker */
    FB_MT_ACKED,         /* answered OK to the agent */
    FB_MT_REFUSED,       /* refused for what the record is */
    FB_MT_IN_KAFKA,      /* acknowledged by Kafka */
    FB_MT_WRITTEN,       /* written by a router */
    FB_MT_DEAD_LETTERED, /* to the dead letters */
    FB_MT_SPOOLED,       /* put aside in the spool */
    FB_MT_STAGES,
    FB_MT_BYTES_RECEIVED = FB_MT_STAGES, /* payload bytes received by a worker */
    FB_MT_BYTES_WRITTEN, /* bytes of the lines a router wrote */
    FB_MT_N
} fb_mt_t;

typedef struct fb_metrics fb_metrics_t;
typedef struct fb_mslot fb_mslot_t;

/* The master: a zone for max_tenants names, workers lanes and routers
 * routers, at path (created 0640, replaced; NULL: anonymous, which no
 * command can read). NULL after logging. */
fb_metrics_t *fb_metrics_create(const char *path, unsigned max_tenants, unsigned workers,
                                unsigned routers);
/* A command: the zone a running daemon made at path, read only. NULL
 * after logging (with the reason: absent, not a zone, another layout). */
fb_metrics_t *fb_metrics_open(const char *path);
/* Unmap (and, for the master, remove the file). */
void fb_metrics_free(fb_metrics_t *m);

/* The zone of this process (the master sets it before it forks; NULL:
 * none), and where a daemon whose pid file is pid_file keeps its zone
 * (the pid file's name with ".metrics" for ".pid"); -1 when too long. */
void fb_metrics_use(fb_metrics_t *m);
fb_metrics_t *fb_metrics_zone(void);
int fb_metrics_path(const char *pid_file, char *out, size_t cap);

/* The master: name the tenants of a key database (add those not named
 * yet, in order, until max_tenants; names are never taken back). */
void fb_metrics_name_tenants(fb_metrics_t *m, const char *const *keys, size_t n);

/* A process's slot (a worker's by its lane, a router's by its index
 * modulo the routers the zone has). */
fb_mslot_t *fb_metrics_slot(fb_metrics_t *m, fb_mrole_t role, unsigned index);
/* The same, taken by the calling process: its pid and start time set. */
fb_mslot_t *fb_metrics_take_slot(fb_metrics_t *m, fb_mrole_t role, unsigned index);

/* Add to, or set, one counter of a slot (NULL: nothing). */
void fb_metrics_add(fb_mslot_t *s, fb_mc_t c, uint64_t n);
void fb_metrics_set(fb_mslot_t *s, fb_mc_t c, uint64_t v);
/* A histogram starting at c: one observation of us microseconds. */
void fb_metrics_observe(fb_mslot_t *s, fb_mc_t c, uint64_t us);
/* The master, when a process of role died: the gauges of its slot that
 * only a live process keeps true (serving, Kafka up, in flight, files
 * open, partitions assigned and each one's lag, what it saw in the
 * spool) back to 0; the others (a lane's fill, the total lag) describe
 * what outlives it and stay. */
void fb_metrics_forget(fb_mslot_t *s, fb_mrole_t role);

/* The tenant number of an access key: a name of the zone, or the
 * "_other" number (fb_metrics_tenants). Cached per process; names the
 * master added since are found. */
unsigned fb_metrics_tenant(fb_metrics_t *m, const char *key, size_t len);
/* Add n to a tenant's column in a slot. */
void fb_metrics_tenant_add(fb_mslot_t *s, unsigned tenant, fb_mt_t col, uint64_t n);

/* Reading: the named tenants (their numbers are 0..n-1), the number
 * "_other" counts under (fb_metrics_other: the zone's max_tenants, not n),
 * a name, the sum of a counter or a tenant's column over every slot, and
 * one role's gauge or counter by slot. */
unsigned fb_metrics_tenants(const fb_metrics_t *m);
unsigned fb_metrics_other(const fb_metrics_t *m);
const char *fb_metrics_tenant_name(const fb_metrics_t *m, unsigned t);
uint64_t fb_metrics_sum(const fb_metrics_t *m, fb_mc_t c);
uint64_t fb_metrics_role_sum(const fb_metrics_t *m, fb_mrole_t role, fb_mc_t c);
uint64_t fb_metrics_tenant_sum(const fb_metrics_t *m, unsigned t, fb_mt_t col);
unsigned fb_metrics_slots(const fb_metrics_t *m, fb_mrole_t role);
uint64_t fb_metrics_get(const fb_metrics_t *m, fb_mrole_t role, unsigned index, fb_mc_t c);
/* When the master made the zone (unix seconds) and its pid. */
int64_t fb_metrics_started(const fb_metrics_t *m);
int32_t fb_metrics_pid(const fb_metrics_t *m);

#endif /* FB_METRICS_H */
