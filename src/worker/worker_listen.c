/*
 * worker_listen.c -- the worker's watch on its own listening sockets.
 *
 * gRPC's accept loop gives up for good when accept4() fails with EMFILE
 * (every descriptor in use, e.g. by a flood of idle connections): the
 * kernel keeps queueing connections that nobody accepts, even after the
 * flood is gone. The accept queue of a listener is visible through
 * TCP_INFO (tcpi_unacked; its backlog in tcpi_sacked): a queue that stays
 * non-empty for LISTEN_STALL_MS means the worker no longer accepts, and it
 * exits so that the master starts a fresh one on the same port. It only
 * reads socket state; it never closes or accepts anything itself.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/worker.h"

#define LISTEN_CHECK_MS 1000
#define LISTEN_STALL_MS 5000 /* a healthy worker empties its queue in microseconds */

/* port_of -- the local port of socket fd, or -1. */
static int
port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* fb_worker_listen_find -- the listening TCP sockets of this process on
 * port (gRPC made them: one per address family). Called once, after the
 * server started. */
void
fb_worker_listen_find(fb_worker_t *w, int port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;

    w->n_listen = 0;
    if (d == NULL) {
        fb_log_warn("worker %u: /proc/self/fd: its listener is not watched", w->index);
        return;
    }
    while ((de = readdir(d)) != NULL && w->n_listen < sizeof(w->listen_fd) / sizeof(int)) {
        int fd = atoi(de->d_name), on = 0;
        socklen_t len = sizeof(on);
        if (fd <= 2 || fd == dirfd(d))
            continue;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on &&
            port_of(fd) == port)
            w->listen_fd[w->n_listen++] = fd;
    }
    closedir(d);
    if (w->n_listen == 0)
        fb_log_warnx("worker %u: no listening socket found on port %d: its listener is not "
                     "watched", w->index, port);
}

/* open_descriptors -- how many this process has open (for the log). */
static unsigned long
open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    unsigned long n = 0;

    if (d == NULL)
        return 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the DIR's own */
}

/* fb_worker_listen_stalled -- sampled once a second: true (logged once)
 * when a listener's accept queue has not been empty for LISTEN_STALL_MS. */
bool
fb_worker_listen_stalled(fb_worker_t *w, uint64_t now_ms)
{
    unsigned waiting = 0, backlog = 0;

    if (w->n_listen == 0 || w->not_accepting || now_ms - w->listen_check_ms < LISTEN_CHECK_MS)
        return w->not_accepting;
    w->listen_check_ms = now_ms;
    for (unsigned i = 0; i < w->n_listen; i++) {
        struct tcp_info ti;
        socklen_t len = sizeof(ti);
        if (getsockopt(w->listen_fd[i], IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
            ti.tcpi_unacked > waiting) {
            waiting = ti.tcpi_unacked; /* a listener's accept queue */
            backlog = ti.tcpi_sacked;  /* and its length limit */
        }
    }
    if (waiting == 0) {
        w->listen_waiting_since_ms = 0;
        return false;
    }
    if (w->listen_waiting_since_ms == 0) {
        w->listen_waiting_since_ms = now_ms;
        return false;
    }
    if (now_ms - w->listen_waiting_since_ms < LISTEN_STALL_MS)
        return false;
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    fb_log_errorx("worker %u: stopped accepting connections: %u waiting (backlog %u) for %llu "
                  "ms, %lu descriptors open of %llu (RLIMIT_NOFILE); exiting so that a new "
                  "worker takes the port", w->index, waiting, backlog,
                  (unsigned long long)(now_ms - w->listen_waiting_since_ms),
                  open_descriptors(), (unsigned long long)rl.rlim_cur);
    w->not_accepting = true;
    return true;
}
