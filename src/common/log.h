/*
 * log.h -- the logging module of every fbpipe process.
 *
 * Messages go to stderr (foreground) or syslog (daemon), prefixed with the
 * process role. fb_log_warn/fb_log_error append strerror(errno); the x
 * variants do not. This module never allocates on the logging path and is
 * not async-signal-safe: never log from a signal handler.
 *
 * Lines a client can trigger at will (refusals) go through a rate limiter
 * (fb_log_limit_*): per reason, the first line at once, then at most one
 * per interval carrying the count of the lines held back and the last of
 * them. Its table is fixed and keyed by reason, never by client, so that
 * no client can make it grow.
 */
#ifndef FB_LOG_H
#define FB_LOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum fb_log_level {
    FB_LOG_ERROR = 3,
    FB_LOG_WARNING = 4,
    FB_LOG_NOTICE = 5,
    FB_LOG_INFO = 6,
    FB_LOG_DEBUG = 7,
} fb_log_level_t;

/* A sink receives every message at or above the current level instead of
 * stderr/syslog; the plugin and the tests install one. */
typedef void (*fb_log_sink_t)(fb_log_level_t level, const char *msg, void *arg);

void fb_log_init(const char *ident, int use_syslog);
void fb_log_set_role(const char *role);
void fb_log_set_level(fb_log_level_t level);
fb_log_level_t fb_log_get_level(void);
int fb_log_level_parse(const char *name, fb_log_level_t *out);
const char *fb_log_level_name(fb_log_level_t level);
void fb_log_set_sink(fb_log_sink_t sink, void *arg);

#define FB_PRINTF(f, a) __attribute__((format(printf, f, a)))

void fb_log_msg(fb_log_level_t level, int errnum, const char *fmt, ...) FB_PRINTF(3, 4);
/* A message into err (at most errlen bytes with its NUL; nothing when err
 * is NULL or errlen 0), for modules that never log: their caller logs it
 * or shows it. */
void fb_errf(char *err, size_t errlen, const char *fmt, ...) FB_PRINTF(3, 4);
void fb_log_vmsg(fb_log_level_t level, int errnum, const char *fmt, va_list ap) FB_PRINTF(3, 0);

void fb_log_debug(const char *fmt, ...) FB_PRINTF(1, 2);
void fb_log_info(const char *fmt, ...) FB_PRINTF(1, 2);
void fb_log_notice(const char *fmt, ...) FB_PRINTF(1, 2);
void fb_log_warn(const char *fmt, ...) FB_PRINTF(1, 2);
void fb_log_warnx(const char *fmt, ...) FB_PRINTF(1, 2);
void fb_log_error(const char *fmt, ...) FB_PRINTF(1, 2);
void fb_log_errorx(const char *fmt, ...) FB_PRINTF(1, 2);
_Noreturn void fb_fatal(int status, const char *fmt, ...) FB_PRINTF(2, 3);
_Noreturn void fb_fatalx(int status, const char *fmt, ...) FB_PRINTF(2, 3);
_Noreturn void fb_panic(const char *fmt, ...) FB_PRINTF(1, 2);

/* s[0..len) fit for a log line or a detail: printable ASCII (no quote or
 * backslash), the rest as \xNN, at most max bytes of s, "..." when cut.
 * out is always NUL-terminated. */
void fb_log_show(char *out, size_t size, const char *s, size_t len, size_t max);

/* ---- Rate-limited lines --------------------------------------------------
 * Per reason (a short constant string naming the kind of line, such as
 * "auth missing"): the first line is written at once; later ones within
 * interval_ms of it are held back, counted, and the last of them kept.
 * The next line written for the reason -- by fb_log_limit_flush once the
 * interval is over, or by fb_log_limit_msg when one comes after it --
 * is that last line with "[N like it since the last line, this the
 * latest; one line per S s]". Nothing held back is lost from the count.
 * A fixed table of FB_LOG_LIMIT_SLOTS reasons; reasons beyond it share
 * the last slot. Thread-safe (one mutex per table). Clocks are the
 * caller's (monotonic milliseconds), so tests need not sleep. */
#define FB_LOG_LIMIT_SLOTS 64      /* reasons per table: the worker has about 40 */
#define FB_LOG_LIMIT_REASON_MAX 48 /* bytes of a reason, NUL included; longer is cut */
#define FB_LOG_LIMIT_LINE_MAX 512  /* bytes of the line kept, NUL included */
#define FB_LOG_LIMIT_INTERVAL_MS 10000 /* the process table's interval */

typedef struct fb_log_limit_slot {
    char reason[FB_LOG_LIMIT_REASON_MAX]; /* "" = free */
    fb_log_level_t level;                 /* of the line kept */
    uint64_t next_ms;                     /* no line of this reason before */
    uint64_t last_ms;                     /* when the last line was written */
    uint64_t held;                        /* lines held back since */
    char kept[FB_LOG_LIMIT_LINE_MAX];     /* the last of them, formatted */
} fb_log_limit_slot_t;

typedef struct fb_log_limit {
    pthread_mutex_t mu;
    uint64_t interval_ms;
    unsigned n_slots; /* in use */
    fb_log_limit_slot_t slots[FB_LOG_LIMIT_SLOTS];
} fb_log_limit_t;

void fb_log_limit_init(fb_log_limit_t *l, uint64_t interval_ms);
void fb_log_limit_destroy(fb_log_limit_t *l);
/* One line of reason at now_ms: 1 when written now, 0 when held back. */
int fb_log_limit_msg(fb_log_limit_t *l, uint64_t now_ms, fb_log_level_t level, const char *reason,
                     const char *fmt, ...) FB_PRINTF(5, 6);
int fb_log_limit_vmsg(fb_log_limit_t *l, uint64_t now_ms, fb_log_level_t level,
                      const char *reason, const char *fmt, va_list ap) FB_PRINTF(5, 0);
/* Write what is held back for reasons whose interval is over (every one
 * when force, as at exit); returns the lines written. */
unsigned fb_log_limit_flush(fb_log_limit_t *l, uint64_t now_ms, bool force);
/* Lines held back for reason and not yet written (tests, metrics). */
uint64_t fb_log_limit_held(fb_log_limit_t *l, const char *reason);

/* The process's own table (interval FB_LOG_LIMIT_INTERVAL_MS, monotonic
 * clock), for lines a client can trigger: fb_log_limited writes through
 * it; the process calls fb_log_limited_flush now and then (every second
 * or so) and with force before it exits. */
void fb_log_limited(fb_log_level_t level, const char *reason, const char *fmt, ...)
    FB_PRINTF(3, 4);
void fb_log_limited_flush(bool force);

#endif /* FB_LOG_H */
