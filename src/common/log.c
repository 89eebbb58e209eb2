/*
 * log.c -- stderr / syslog logging with levels and a process role.
 *
 * Formats into a stack buffer and writes it with one call, so lines from
 * several processes sharing stderr do not interleave. Must never allocate,
 * never be called from a signal handler, and never change errno for the
 * caller beyond what it reports.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define FB_LOG_LINE_MAX 2048

static const char *log_ident = "fbpiped";
static char log_role[32] = "main";
static int log_use_syslog;
static fb_log_level_t log_level = FB_LOG_INFO;
static fb_log_sink_t log_sink;
static void *log_sink_arg;

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
