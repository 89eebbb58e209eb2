/*
 * metrics.c -- the metrics zone (see metrics.h): a header, the tenants'
 * names, then one slot per process (the master, the producer, each worker
 * lane, each router, the metrics child), each holding its counters and
 * its columns per tenant.
 *
 * Writers add with relaxed atomics to their own slot only; names are
 * published with a release store of their count. Readers sum the slots.
 * Never blocks, never allocates on the counting path (a process's name
 * cache is allocated once, on its first lookup).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/metrics.h"

#define ZONE_MAGIC "FBPMETR1"
#define NAME_LEN 136 /* an access key (<= 128 bytes) and its NUL, padded */
#define LAYOUT ((uint32_t)FB_MC_N | (uint32_t)FB_MT_N << 16)

const uint64_t fb_mhist_le_us[FB_MHIST_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000, UINT64_MAX,
};

typedef struct zone {
    char magic[8];
    uint32_t layout;
    uint32_t max_tenants;
    uint32_t n_slot[FB_MROLE_N]; /* slots per role */
    int32_t pid;
    int64_t started;
    uint64_t slot_words; /* uint64_t per slot */
    uint64_t size;
    _Alignas(64) _Atomic uint32_t n_named;
} zone_t;

struct fb_mslot {
    _Atomic uint64_t c[FB_MC_N];
    _Atomic uint64_t t[]; /* (max_tenants + 1) * FB_MT_N */
};

struct fb_metrics {
    zone_t *z;
    size_t size;
    bool owner;
    char *path;
    /* this process's name cache: open addressing, tenant number + 1 */
    uint32_t *cache;
    uint32_t cache_mask;
    uint32_t cached; /* names of the zone in the cache */
};

static size_t
names_off(void)
{
    return (sizeof(zone_t) + 63) & ~(size_t)63;
}

static char *
name_at(const fb_metrics_t *m, unsigned t)
{
    return (char *)m->z + names_off() + (size_t)t * NAME_LEN;
}

static size_t
slots_off(uint32_t max_tenants)
{
    return (names_off() + (size_t)max_tenants * NAME_LEN + 63) & ~(size_t)63;
}

static unsigned
n_slots(const zone_t *z)
{
    unsigned n = 0;

    for (int r = 0; r < FB_MROLE_N; r++)
        n += z->n_slot[r];
    return n;
}

static fb_mslot_t *
slot_at(const fb_metrics_t *m, unsigned i)
{
    return (fb_mslot_t *)((char *)m->z + slots_off(m->z->max_tenants) +
                          (size_t)i * m->z->slot_words * sizeof(uint64_t));
}

/* first_slot -- the number of role's first slot. */
static unsigned
first_slot(const zone_t *z, fb_mrole_t role)
{
    unsigned n = 0;

    for (int r = 0; r < (int)role; r++)
        n += z->n_slot[r];
    return n;
}

fb_metrics_t *
fb_metrics_create(const char *path, unsigned max_tenants, unsigned workers, unsigned routers)
{
    fb_metrics_t *m = calloc(1, sizeof(*m));
    uint32_t counts[FB_MROLE_N] = {1, 1, workers, routers ? routers : 1, 1};
    uint64_t words = FB_MC_N + ((uint64_t)max_tenants + 1) * FB_MT_N;
    size_t size;
    int fd = -1;
    void *p;

    if (m == NULL || max_tenants > FB_METRICS_TENANTS_MAX || workers == 0) {
        fb_log_errorx("metrics zone: %s",
                      m == NULL ? "out of memory" : "max_tenants or workers out of range");
        free(m);
        return NULL;
    }
    size = slots_off(max_tenants);
    for (int r = 0; r < FB_MROLE_N; r++)
        size += (size_t)counts[r] * words * sizeof(uint64_t);
    if (path != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        unlink(tmp);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || rename(tmp, path) < 0) {
            fb_log_error("metrics zone %s (%zu bytes)", path, size);
            if (fd >= 0)
                close(fd);
            unlink(tmp);
            free(m);
            return NULL;
        }
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p != MAP_FAILED && (m->path = strdup(path)) == NULL) {
            munmap(p, size);
            p = MAP_FAILED;
        }
    } else {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    }
    if (p == MAP_FAILED) {
        fb_log_error("mmap(metrics zone, %zu bytes) failed", size);
        if (path != NULL)
            unlink(path);
        free(m->path);
        free(m);
        return NULL;
    }
    m->z = p;
    m->size = size;
    m->owner = true;
    memcpy(m->z->magic, ZONE_MAGIC, 8);
    m->z->layout = LAYOUT;
    m->z->max_tenants = max_tenants;
    memcpy(m->z->n_slot, counts, sizeof(counts));
    m->z->pid = (int32_t)getpid();
    m->z->started = (int64_t)time(NULL);
    m->z->slot_words = words;
    m->z->size = size;
    return m;
}

static fb_metrics_t *zone_in_use;

void
fb_metrics_use(fb_metrics_t *m)
{
    zone_in_use = m;
}

fb_metrics_t *
fb_metrics_zone(void)
{
    return zone_in_use;
}

int
fb_metrics_path(const char *pid_file, char *out, size_t cap)
{
    size_t len = strlen(pid_file);
    int n;

    if (len > 4 && strcmp(pid_file + len - 4, ".pid") == 0)
        len -= 4;
    n = snprintf(out, cap, "%.*s.metrics", (int)len, pid_file);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

fb_metrics_t *
fb_metrics_open(const char *path)
{
    fb_metrics_t *m = calloc(1, sizeof(*m));
    struct stat st;
    zone_t *z;
    int fd;

    if (m == NULL) {
        fb_log_errorx("out of memory");
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        fb_log_error("metrics zone %s (is fbpiped running with this configuration?)", path);
        if (fd >= 0)
            close(fd);
        free(m);
        return NULL;
    }
    if ((size_t)st.st_size < sizeof(zone_t)) {
        fb_log_errorx("%s: not a metrics zone (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        free(m);
        return NULL;
    }
    z = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (z == MAP_FAILED) {
        fb_log_error("mmap(%s) failed", path);
        free(m);
        return NULL;
    }
    m->z = z;
    m->size = (size_t)st.st_size;
    if (memcmp(z->magic, ZONE_MAGIC, 8) != 0 || z->layout != LAYOUT ||
        z->size != (uint64_t)st.st_size || z->max_tenants > FB_METRICS_TENANTS_MAX ||
        z->slot_words != FB_MC_N + ((uint64_t)z->max_tenants + 1) * FB_MT_N ||
        slots_off(z->max_tenants) + (uint64_t)n_slots(z) * z->slot_words * 8 != z->size) {
        fb_log_errorx("%s: not a metrics zone of this fbpiped (another version wrote it?)", path);
        fb_metrics_free(m);
        return NULL;
    }
    return m;
}

void
fb_metrics_free(fb_metrics_t *m)
{
    if (m == NULL)
        return;
    if (m->owner && m->path != NULL && m->z->pid == (int32_t)getpid())
        unlink(m->path);
    munmap(m->z, m->size);
    free(m->cache);
    free(m->path);
    free(m);
}

void
fb_metrics_name_tenants(fb_metrics_t *m, const char *const *keys, size_t n)
{
    uint32_t named = atomic_load_explicit(&m->z->n_named, memory_order_relaxed);
    size_t skipped = 0;

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(keys[i]);
        if (len == 0 || len >= NAME_LEN)
            continue;
        if (fb_metrics_tenant(m, keys[i], len) < named)
            continue; /* named already */
        if (named == m->z->max_tenants) {
            skipped++;
            continue;
        }
        memcpy(name_at(m, named), keys[i], len + 1);
        atomic_store_explicit(&m->z->n_named, ++named, memory_order_release);
    }
    if (skipped > 0)
        fb_log_warnx("metrics: %zu tenants beyond metrics.max_tenants (%u) count as "
                     "tenant=\"_other\"", skipped, m->z->max_tenants);
}

fb_mslot_t *
fb_metrics_slot(fb_metrics_t *m, fb_mrole_t role, unsigned index)
{
    if (m == NULL || role >= FB_MROLE_N || m->z->n_slot[role] == 0)
        return NULL;
    return slot_at(m, first_slot(m->z, role) + index % m->z->n_slot[role]);
}

fb_mslot_t *
fb_metrics_take_slot(fb_metrics_t *m, fb_mrole_t role, unsigned index)
{
    fb_mslot_t *s = fb_metrics_slot(m, role, index);

    fb_metrics_set(s, FB_MC_PID, (uint64_t)getpid());
    fb_metrics_set(s, FB_MC_STARTED, (uint64_t)time(NULL));
    return s;
}

void
fb_metrics_add(fb_mslot_t *s, fb_mc_t c, uint64_t n)
{
    if (s != NULL && c < FB_MC_N)
        atomic_fetch_add_explicit(&s->c[c], n, memory_order_relaxed);
}

void
fb_metrics_set(fb_mslot_t *s, fb_mc_t c, uint64_t v)
{
    if (s != NULL && c < FB_MC_N)
        atomic_store_explicit(&s->c[c], v, memory_order_relaxed);
}

void
fb_metrics_observe(fb_mslot_t *s, fb_mc_t c, uint64_t us)
{
    unsigned b = 0;

    if (s == NULL)
        return;
    while (b < FB_MHIST_BUCKETS - 1 && us > fb_mhist_le_us[b])
        b++;
    fb_metrics_add(s, (fb_mc_t)(c + b), 1); /* counted in its bucket; readers accumulate */
    fb_metrics_add(s, (fb_mc_t)(c + FB_MHIST_BUCKETS), us);
    fb_metrics_add(s, (fb_mc_t)(c + FB_MHIST_BUCKETS + 1), 1);
}

/* fb_metrics_forget -- see metrics.h: a process killed cannot say that it
 * no longer serves, and /readyz must not count it. */
void
fb_metrics_forget(fb_mslot_t *s, fb_mrole_t role)
{
    switch (role) {
    case FB_MROLE_WORKER:
        fb_metrics_set(s, FB_MC_SERVING, 0);
        break;
    case FB_MROLE_PRODUCER:
        fb_metrics_set(s, FB_MC_KAFKA_UP, 0);
        fb_metrics_set(s, FB_MC_IN_FLIGHT, 0);
        break;
    case FB_MROLE_ROUTER:
        fb_metrics_set(s, FB_MC_FILES_OPEN, 0);
        fb_metrics_set(s, FB_MC_ASSIGNED, 0);
        for (int p = 0; p < FB_METRICS_PARTITIONS; p++)
            fb_metrics_set(s, (fb_mc_t)(FB_MC_PARTITION_LAG + p), 0);
        /* shown as the largest over the routers: a dead one's last look
         * must not hide a live one's fresh figure */
        fb_metrics_set(s, FB_MC_SPOOL_BYTES, 0);
        fb_metrics_set(s, FB_MC_SPOOL_FILES, 0);
        fb_metrics_set(s, FB_MC_TARGET_PENDING, 0);
        fb_metrics_set(s, FB_MC_TARGET_FAILING, 0);
        break;
    default:
        break;
    }
}

static uint32_t
hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

unsigned
fb_metrics_tenant(fb_metrics_t *m, const char *key, size_t len)
{
    uint32_t named = atomic_load_explicit(&m->z->n_named, memory_order_acquire);
    uint32_t h = hash(key, len), i;

    if (m->cache == NULL) {
        uint32_t cap = 16;
        while (cap < 2 * (m->z->max_tenants + 1))
            cap *= 2;
        if ((m->cache = calloc(cap, sizeof(uint32_t))) == NULL)
            return m->z->max_tenants; /* counted as _other: no memory for the cache */
        m->cache_mask = cap - 1;
    }
    for (; m->cached < named; m->cached++) { /* names the master added since */
        const char *n = name_at(m, m->cached);
        for (i = hash(n, strlen(n)) & m->cache_mask; m->cache[i] != 0; i = (i + 1) & m->cache_mask)
            ;
        m->cache[i] = m->cached + 1;
    }
    for (i = h & m->cache_mask; m->cache[i] != 0; i = (i + 1) & m->cache_mask) {
        const char *n = name_at(m, m->cache[i] - 1);
        if (strncmp(n, key, len) == 0 && n[len] == '\0')
            return m->cache[i] - 1;
    }
    return m->z->max_tenants; /* not named: _other */
}

void
fb_metrics_tenant_add(fb_mslot_t *s, unsigned tenant, fb_mt_t col, uint64_t n)
{
    if (s != NULL && col < FB_MT_N)
        atomic_fetch_add_explicit(&s->t[(size_t)tenant * FB_MT_N + col], n,
                                  memory_order_relaxed);
}

unsigned
fb_metrics_tenants(const fb_metrics_t *m)
{
    return atomic_load_explicit(&m->z->n_named, memory_order_acquire);
}

/* fb_metrics_other -- the tenant number of "_other": fb_metrics_tenant
 * gives max_tenants to a key not named, however many names there are. */
unsigned
fb_metrics_other(const fb_metrics_t *m)
{
    return m->z->max_tenants;
}

const char *
fb_metrics_tenant_name(const fb_metrics_t *m, unsigned t)
{
    return t < fb_metrics_tenants(m) ? name_at(m, t) : "_other";
}

uint64_t
fb_metrics_role_sum(const fb_metrics_t *m, fb_mrole_t role, fb_mc_t c)
{
    uint64_t sum = 0;
    unsigned first = first_slot(m->z, role);

    for (unsigned i = 0; i < m->z->n_slot[role]; i++)
        sum += atomic_load_explicit(&slot_at(m, first + i)->c[c], memory_order_relaxed);
    return sum;
}

uint64_t
fb_metrics_sum(const fb_metrics_t *m, fb_mc_t c)
{
    uint64_t sum = 0;

    for (int r = 0; r < FB_MROLE_N; r++)
        sum += fb_metrics_role_sum(m, (fb_mrole_t)r, c);
    return sum;
}

uint64_t
fb_metrics_tenant_sum(const fb_metrics_t *m, unsigned t, fb_mt_t col)
{
    uint64_t sum = 0;

    if (t > m->z->max_tenants)
        return 0;
    for (unsigned i = 0; i < n_slots(m->z); i++)
        sum += atomic_load_explicit(&slot_at(m, i)->t[(size_t)t * FB_MT_N + col],
                                    memory_order_relaxed);
    return sum;
}

unsigned
fb_metrics_slots(const fb_metrics_t *m, fb_mrole_t role)
{
    return role < FB_MROLE_N ? m->z->n_slot[role] : 0;
}

uint64_t
fb_metrics_get(const fb_metrics_t *m, fb_mrole_t role, unsigned index, fb_mc_t c)
{
    if (role >= FB_MROLE_N || index >= m->z->n_slot[role] || c >= FB_MC_N)
        return 0;
    return atomic_load_explicit(&slot_at(m, first_slot(m->z, role) + index)->c[c],
                                memory_order_relaxed);
}

int64_t
fb_metrics_started(const fb_metrics_t *m)
{
    return m->z->started;
}

int32_t
fb_metrics_pid(const fb_metrics_t *m)
{
    return m->z->pid;
}
