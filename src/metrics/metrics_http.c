/*
 * metrics_http.c -- the metrics child: the metrics zone the master made
 * before forking, served with libmicrohttpd on [metrics] listen.
 *
 *   GET /metrics  Prometheus text format 0.0.4 (metrics_render.c)
 *   GET /healthz  200 "ok": this process answers
 *   GET /readyz   200 "ready", or 503 and one line naming what is not
 *   anything else 404; a method other than GET or HEAD 405
 *
 * libmicrohttpd's polling thread answers; this thread waits for TERM
 * (the signal is blocked in both and taken with sigtimedwait). Bounded:
 * FB_METRICS_CONNECTIONS connections, FB_METRICS_TIMEOUT_S seconds idle.
 * The listening socket is made here, without SO_REUSEPORT, so that an
 * address already held fails to bind, said once, and the child exits 1
 * (the master restarts it with back-off; the other roles are not
 * affected).
 *
 * It must never write to the zone (but its own slot's pid and start
 * time, as every process does) or touch the ring, and never exit 2
 * (a configuration error, which stops the daemon). Threads start here,
 * in the child, never in the master.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/listen_check.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/proc.h"
#include "metrics/metrics_http.h"
#include "metrics/metrics_render.h"

#define LISTEN_BACKLOG 64
#define MHD_LINE_MAX 512
#define TEXT_TYPE "text/plain; charset=utf-8"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct server {
    const fb_conf_t *conf;
    const fb_metrics_t *zone;
} server_t;

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig);
static void mhd_log(void *cls, const char *fmt, va_list ap) FB_PRINTF(2, 0);
static int listen_socket(const fb_conf_t *conf, char *where, size_t cap);
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode);
static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text);
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **req_cls);

/* on_stop -- TERM or INT before they are blocked: only a flag. */
static void
on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* mhd_log -- libmicrohttpd's error lines, one line each; a client can
 * trigger them (a malformed request), so they are rate-limited. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[MHD_LINE_MAX];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    fb_log_limited(FB_LOG_WARNING, "metrics http", "libmicrohttpd: %s", line);
}

/* listen_socket -- a socket listening on metrics.listen; where gets the
 * address it is bound to. The descriptor, or -1 after one log line that
 * says why. */
static int
listen_socket(const fb_conf_t *conf, char *where, size_t cap)
{
    const fb_addr_t *a = &conf->metrics_addr;
    struct addrinfo hints = {.ai_family = a->family,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char port[8], host[NI_MAXHOST], serv[NI_MAXSERV], held[256];
    int fd = -1, one = 1, rc, e;
    const char *call;

    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    rc = getaddrinfo(a->host[0] != '\0' ? a->host : NULL, port, &hints, &res);
    if (rc != 0) {
        fb_log_errorx("cannot serve metrics on %s (metrics.listen): getaddrinfo(%s) failed: %s",
                      conf->metrics_listen, a->host, gai_strerror(rc));
        return -1;
    }
    call = "socket";
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    /* a restart may bind while the last one's connections linger in
     * TIME_WAIT; SO_REUSEADDR never lets two listeners share the port */
    call = "setsockopt(SO_REUSEADDR)";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    call = "bind";
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        goto fail;
    call = "listen";
    if (listen(fd, LISTEN_BACKLOG) < 0)
        goto fail;
    freeaddrinfo(res);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(where, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    else
        snprintf(where, cap, "%s", conf->metrics_listen);
    return fd;

fail:
    e = errno;
    freeaddrinfo(res);
    if (fd >= 0)
        close(fd);
    held[0] = '\0';
    if (e == EADDRINUSE &&
        fb_listen_check(conf->metrics_listen, held, sizeof(held)) != FB_LISTEN_HELD)
        held[0] = '\0';
    fb_log_errorx("cannot serve metrics on %s (metrics.listen): %s() failed: %s%s%s%s; "
                  "the master starts this child again with back-off, the other roles run on",
                  conf->metrics_listen, call, strerror(e), held[0] ? " (held by " : "", held,
                  held[0] ? ")" : "");
    return -1;
}

/* reply -- queue one response (HEAD: libmicrohttpd sends the headers
 * only); body is freed or copied as mode says. */
static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body, size_t len,
      enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result ret;

    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO; /* the connection is closed */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* reply_text -- a short constant or stack text, copied. */
static enum MHD_Result
reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return reply(conn, status, TEXT_TYPE, (char *)text, strlen(text), MHD_RESPMEM_MUST_COPY);
}

/* answer -- libmicrohttpd's handler: every request is answered on its
 * first call (a body, which none of these takes, is not read). */
static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    const server_t *srv = cls;

    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0) {
        fb_mbuf_t page = {0};
        if (fb_metrics_render(srv->zone, &page) < 0) {
            fb_mbuf_free(&page);
            return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        }
        return reply(conn, MHD_HTTP_OK, METRICS_TYPE, page.text.data, page.text.len,
                     MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/healthz") == 0)
        return reply_text(conn, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0) {
        char why[256];
        size_t n;
        if (fb_metrics_ready(srv->zone, srv->conf->ingester_enabled, srv->conf->router_enabled, why,
                             sizeof(why) - 1))
            return reply_text(conn, MHD_HTTP_OK, "ready\n");
        n = strlen(why);
        why[n] = '\n';
        why[n + 1] = '\0';
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, why);
    }
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: /metrics, /healthz, /readyz\n");
}

/* fb_metrics_main -- the metrics child (see the top of this file). */
int
fb_metrics_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index)
{
    server_t srv = {.conf = conf, .zone = fb_metrics_zone()};
    struct timespec tick = {.tv_sec = 1};
    struct MHD_Daemon *d;
    sigset_t stop;
    char where[NI_MAXHOST + NI_MAXSERV + 4];
    int fd;

    (void)ring;
    fb_proc_child_signals(on_stop);
    if (srv.zone == NULL) {
        fb_log_errorx("no metrics zone to serve (the master makes it before forking)");
        return 1;
    }
    /* its pid and start in its own slot, for fbpiped status: the only
     * words of the zone it writes */
    fb_metrics_take_slot(fb_metrics_zone(), FB_MROLE_METRICS, index);
    /* blocked before libmicrohttpd's thread starts, which inherits the
     * mask: TERM and INT reach this thread's sigtimedwait only */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if ((fd = listen_socket(conf, where, sizeof(where))) < 0)
        return 1;
    d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer,
                         &srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
                         fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)FB_METRICS_CONNECTIONS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)FB_METRICS_TIMEOUT_S,
                         MHD_OPTION_END);
    if (d == NULL) {
        fb_log_errorx("cannot serve metrics on %s (metrics.listen): MHD_start_daemon failed "
                      "(see above)",
                      where);
        close(fd);
        return 1;
    }
    fb_log_notice("serving metrics on http://%s/metrics (also /healthz, /readyz)", where);
    while (!stop_requested) {
        int sig = sigtimedwait(&stop, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        fb_log_limited_flush(false);
    }
    MHD_stop_daemon(d); /* closes the listening socket, waits for its thread */
    fb_log_limited_flush(true);
    fb_log_info("metrics endpoint stopped");
    return 0;
}
