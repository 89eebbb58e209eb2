/*
 * log.h -- the logging module of every fbpipe process.
 *
 * Messages go to stderr (foreground) or syslog (daemon), prefixed with the
 * process role. fb_log_warn/fb_log_error append strerror(errno); the x
 * variants do not. This module never allocates on the logging path and is
 * not async-signal-safe: never log from a signal handler.
 */
#ifndef FB_LOG_H
#define FB_LOG_H

#include <stdarg.h>
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

#endif /* FB_LOG_H */
