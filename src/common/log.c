/*
 * log.c -- stderr / syslog logging with levels and a process role.
 *
 * Formats into a stack buffer and writes it with one call, so lines from
 * several processes sharing stderr do not interleave. Must never allocate,
 * never be called from a signal handler, and never change errno for the
 * caller beyond what it reports.
 *
 * The rate limiter (fb_log_limit_*) keeps a fixed table of reasons: what
 * a client sends can make it count, never grow, and a line held back is
 * always counted in the next one written.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define FB_LOG_LINE_MAX 2048

static const char *log_ident = "fbpiped";
static char log_role[32] = "main";
static int log_use_syslog;
static fb_log_level_t log_level = FB_LOG_INFO;
static fb_log_sink_t log_sink;
static void *log_sink_arg;
static fb_log_limit_t log_limits = {.mu = PTHREAD_MUTEX_INITIALIZER,
                                    .interval_ms = FB_LOG_LIMIT_INTERVAL_MS};

static fb_log_limit_slot_t *limit_slot(fb_log_limit_t *l, const char *reason);
static void limit_take(fb_log_limit_t *l, fb_log_limit_slot_t *s, uint64_t now_ms, char *out,
                       size_t size, fb_log_level_t *level);

static const struct {
    const char *name;
    fb_log_level_t level;
} level_names[] = {
    {"error", FB_LOG_ERROR}, {"warning", FB_LOG_WARNING}, {"warn", FB_LOG_WARNING},
    {"notice", FB_LOG_NOTICE}, {"info", FB_LOG_INFO}, {"debug", FB_LOG_DEBUG},
};

/* fb_log_init -- choose stderr or syslog and name the program. */
void
fb_log_init(const char *ident, int use_syslog)
{
    if (ident != NULL)
        log_ident = ident;
    if (log_use_syslog && !use_syslog)
        closelog();
    log_use_syslog = use_syslog;
    if (use_syslog)
        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* fb_log_set_role -- name the process role shown in every line. */
void
fb_log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void
fb_log_set_level(fb_log_level_t level)
{
    log_level = level;
}

fb_log_level_t
fb_log_get_level(void)
{
    return log_level;
}

/* fb_log_level_parse -- "error", "warning", "notice", "info" or "debug". */
int
fb_log_level_parse(const char *name, fb_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i].name) == 0) {
            *out = level_names[i].level;
            return 0;
        }
    }
    return -1;
}

const char *
fb_log_level_name(fb_log_level_t level)
{
    switch (level) {
    case FB_LOG_ERROR: return "error";
    case FB_LOG_WARNING: return "warning";
    case FB_LOG_NOTICE: return "notice";
    case FB_LOG_INFO: return "info";
    case FB_LOG_DEBUG: return "debug";
    }
    return "?";
}

/* fb_log_set_sink -- route messages to a callback; NULL restores stderr/syslog. */
void
fb_log_set_sink(fb_log_sink_t sink, void *arg)
{
    log_sink = sink;
    log_sink_arg = arg;
}

/* fb_log_vmsg -- format one message, append strerror(errnum) when non-zero. */
void
fb_log_vmsg(fb_log_level_t level, int errnum, const char *fmt, va_list ap)
{
    char msg[FB_LOG_LINE_MAX];
    int saved_errno = errno;
    int n;

    if (level > log_level)
        return;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    if (errnum != 0)
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(errnum));

    if (log_sink != NULL) {
        log_sink(level, msg, log_sink_arg);
    } else if (log_use_syslog) {
        syslog(level, "%s: %s", log_role, msg);
    } else {
        char line[FB_LOG_LINE_MAX + 128];
        struct timespec ts;
        struct tm tm;
        int len;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        len = snprintf(line, sizeof(line),
                       "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: %s: %s\n",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                       tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_ident,
                       (long)getpid(), log_role, fb_log_level_name(level), msg);
        if (len > (int)sizeof(line) - 1) {
            len = sizeof(line) - 1;
            line[len - 1] = '\n';
        }
        if (write(STDERR_FILENO, line, (size_t)len) < 0) {
            /* nowhere left to report it */
        }
    }
    errno = saved_errno;
}

void
fb_log_msg(fb_log_level_t level, int errnum, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fb_log_vmsg(level, errnum, fmt, ap);
    va_end(ap);
}

#define FB_LOG_DEFINE(name, level, with_errno)                                 \
    void name(const char *fmt, ...)                                            \
    {                                                                          \
        int errnum = (with_errno) ? errno : 0;                                 \
        va_list ap;                                                            \
        va_start(ap, fmt);                                                     \
        fb_log_vmsg(level, errnum, fmt, ap);                                   \
        va_end(ap);                                                            \
    }

FB_LOG_DEFINE(fb_log_debug, FB_LOG_DEBUG, 0)
FB_LOG_DEFINE(fb_log_info, FB_LOG_INFO, 0)
FB_LOG_DEFINE(fb_log_notice, FB_LOG_NOTICE, 0)
FB_LOG_DEFINE(fb_log_warn, FB_LOG_WARNING, 1)
FB_LOG_DEFINE(fb_log_warnx, FB_LOG_WARNING, 0)
FB_LOG_DEFINE(fb_log_error, FB_LOG_ERROR, 1)
FB_LOG_DEFINE(fb_log_errorx, FB_LOG_ERROR, 0)

/* fb_fatal -- log with strerror(errno) and exit with status. */
void
fb_fatal(int status, const char *fmt, ...)
{
    int errnum = errno;
    va_list ap;

    va_start(ap, fmt);
    fb_log_vmsg(FB_LOG_ERROR, errnum, fmt, ap);
    va_end(ap);
    exit(status);
}

/* fb_fatalx -- log and exit with status. */
void
fb_fatalx(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fb_log_vmsg(FB_LOG_ERROR, 0, fmt, ap);
    va_end(ap);
    exit(status);
}

/* fb_panic -- a broken invariant: log and abort for a core dump. */
void
fb_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fb_log_vmsg(FB_LOG_ERROR, 0, fmt, ap);
    va_end(ap);
    abort();
}

/* fb_log_show -- see log.h. */
void
fb_log_show(char *out, size_t size, const char *s, size_t len, size_t max)
{
    size_t o = 0, i;

    if (size == 0)
        return;
    for (i = 0; i < len && i < max && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    }
    if (i < len && o + 4 <= size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- Rate-limited lines ------------------------------------------------- */

/* fb_log_limit_init -- an empty table: one line per reason per interval_ms
 * (0: every line is written). */
void
fb_log_limit_init(fb_log_limit_t *l, uint64_t interval_ms)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    l->interval_ms = interval_ms;
}

/* fb_log_limit_destroy -- drops what is held back without writing it. */
void
fb_log_limit_destroy(fb_log_limit_t *l)
{
    pthread_mutex_destroy(&l->mu);
}

/* limit_slot -- the slot of reason, taken if new; the shared last slot
 * once the others are taken. Under l->mu. */
static fb_log_limit_slot_t *
limit_slot(fb_log_limit_t *l, const char *reason)
{
    fb_log_limit_slot_t *s;

    for (unsigned i = 0; i < l->n_slots; i++)
        if (strncmp(l->slots[i].reason, reason, FB_LOG_LIMIT_REASON_MAX - 1) == 0)
            return &l->slots[i];
    if (l->n_slots < FB_LOG_LIMIT_SLOTS - 1) {
        s = &l->slots[l->n_slots++];
        snprintf(s->reason, sizeof(s->reason), "%s", reason[0] ? reason : "(none)");
        return s;
    }
    s = &l->slots[FB_LOG_LIMIT_SLOTS - 1];
    if (s->reason[0] == '\0')
        snprintf(s->reason, sizeof(s->reason), "(other reasons)");
    return s;
}

/* limit_take -- the line s holds back, with its count, into out; the slot
 * starts a new interval at now_ms. Under l->mu; s->held > 0. */
static void
limit_take(fb_log_limit_t *l, fb_log_limit_slot_t *s, uint64_t now_ms, char *out, size_t size,
           fb_log_level_t *level)
{
    uint64_t iv = l->interval_ms;

    if (iv % 1000 == 0)
        snprintf(out, size, "%s [%" PRIu64 " like it since the last line, this the latest; "
                 "one line per %" PRIu64 " s]", s->kept, s->held, iv / 1000);
    else
        snprintf(out, size, "%s [%" PRIu64 " like it since the last line, this the latest; "
                 "one line per %" PRIu64 " ms]", s->kept, s->held, iv);
    *level = s->level;
    s->held = 0;
    s->kept[0] = '\0';
    s->last_ms = now_ms;
    s->next_ms = now_ms + iv;
}

/* fb_log_limit_vmsg -- see log.h. */
int
fb_log_limit_vmsg(fb_log_limit_t *l, uint64_t now_ms, fb_log_level_t level, const char *reason,
                  const char *fmt, va_list ap)
{
    char line[FB_LOG_LIMIT_LINE_MAX + 128];
    fb_log_limit_slot_t *s;
    int saved_errno = errno;

    if (level > log_level)
        return 0;
    pthread_mutex_lock(&l->mu);
    s = limit_slot(l, reason ? reason : "");
    if (now_ms < s->next_ms) { /* within the interval: count it, keep it */
        s->held++;
        s->level = level;
        vsnprintf(s->kept, sizeof(s->kept), fmt, ap);
        pthread_mutex_unlock(&l->mu);
        errno = saved_errno;
        return 0;
    }
    if (s->held > 0) { /* the ones held back, this one the latest */
        s->held++;
        s->level = level;
        vsnprintf(s->kept, sizeof(s->kept), fmt, ap);
        limit_take(l, s, now_ms, line, sizeof(line), &level);
    } else {
        vsnprintf(line, FB_LOG_LIMIT_LINE_MAX, fmt, ap);
        s->last_ms = now_ms;
        s->next_ms = now_ms + l->interval_ms;
    }
    pthread_mutex_unlock(&l->mu);
    fb_log_msg(level, 0, "%s", line);
    errno = saved_errno;
    return 1;
}

/* fb_log_limit_msg -- see log.h. */
int
fb_log_limit_msg(fb_log_limit_t *l, uint64_t now_ms, fb_log_level_t level, const char *reason,
                 const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = fb_log_limit_vmsg(l, now_ms, level, reason, fmt, ap);
    va_end(ap);
    return rc;
}

/* fb_log_limit_flush -- see log.h. */
unsigned
fb_log_limit_flush(fb_log_limit_t *l, uint64_t now_ms, bool force)
{
    char line[FB_LOG_LIMIT_LINE_MAX + 128];
    fb_log_level_t level;
    unsigned written = 0;
    int saved_errno = errno;

    pthread_mutex_lock(&l->mu);
    for (unsigned i = 0; i < FB_LOG_LIMIT_SLOTS; i++) {
        fb_log_limit_slot_t *s = &l->slots[i];

        if (s->held == 0 || (!force && now_ms < s->next_ms))
            continue;
        limit_take(l, s, now_ms, line, sizeof(line), &level);
        pthread_mutex_unlock(&l->mu); /* a sink may take its time */
        fb_log_msg(level, 0, "%s", line);
        written++;
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    errno = saved_errno;
    return written;
}

/* fb_log_limit_held -- see log.h. */
uint64_t
fb_log_limit_held(fb_log_limit_t *l, const char *reason)
{
    uint64_t n = 0;

    pthread_mutex_lock(&l->mu);
    for (unsigned i = 0; i < FB_LOG_LIMIT_SLOTS; i++)
        if (strncmp(l->slots[i].reason, reason, FB_LOG_LIMIT_REASON_MAX - 1) == 0 &&
            l->slots[i].reason[0] != '\0') {
            n = l->slots[i].held;
            break;
        }
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* fb_log_limited -- one line of reason through the process table. */
void
fb_log_limited(fb_log_level_t level, const char *reason, const char *fmt, ...)
{
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    fb_log_limit_vmsg(&log_limits, fb_monotonic_ms(), level, reason, fmt, ap);
    va_end(ap);
}

/* fb_log_limited_flush -- what the process table holds back and is due. */
void
fb_log_limited_flush(bool force)
{
    fb_log_limit_flush(&log_limits, fb_monotonic_ms(), force);
}

/* fb_errf -- see log.h. */
void
fb_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
