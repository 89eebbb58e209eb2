/*
 * master_notify.c -- tell systemd (Type=notify) where the daemon stands:
 * READY=1 once the children are started, RELOADING=1 and READY=1 around a
 * reload, STOPPING=1 when a stop begins.
 *
 * Writes datagrams to $NOTIFY_SOCKET itself (a path, or "@name" for the
 * abstract namespace): no libsystemd. The variable is removed from the
 * environment at once, so that no child inherits it. Never blocks and
 * never stops the daemon: a failed write is logged once.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "master/master.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static int notify_failed;

/* fb_master_notify_init -- take $NOTIFY_SOCKET, when set; 0, or -1 after
 * logging (a value systemd never sets). */
int
fb_master_notify_init(void)
{
    const char *p = getenv("NOTIFY_SOCKET");
    size_t len;

    if (p == NULL)
        return 0;
    len = strlen(p);
    if ((p[0] != '/' && p[0] != '@') || len < 2 || len >= sizeof(notify_addr.sun_path)) {
        fb_log_errorx("NOTIFY_SOCKET=\"%.*s\": not a socket path or @name: not notifying systemd",
                      (int)(len > 120 ? 120 : len), p);
        unsetenv("NOTIFY_SOCKET");
        return -1;
    }
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, p, len);
    if (p[0] == '@')
        notify_addr.sun_path[0] = '\0';
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    unsetenv("NOTIFY_SOCKET");
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0) {
        fb_log_error("socket(AF_UNIX) for NOTIFY_SOCKET failed: not notifying systemd");
        return -1;
    }
    return 0;
}

/* fb_master_notify -- send one state ("READY=1", "RELOADING=1",
 * "STOPPING=1"); READY carries MAINPID and RELOADING the monotonic time
 * systemd asks for. */
void
fb_master_notify(const char *state)
{
    char msg[128];
    struct timespec ts;
    int n;

    if (notify_fd < 0)
        return;
    if (strcmp(state, "READY=1") == 0) {
        n = snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld", (long)getpid());
    } else if (strcmp(state, "RELOADING=1") == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        n = snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
                     (unsigned long long)ts.tv_sec * 1000000ULL +
                         (unsigned long long)ts.tv_nsec / 1000ULL);
    } else {
        n = snprintf(msg, sizeof(msg), "%s", state);
    }
    if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT,
               (const struct sockaddr *)&notify_addr, notify_len) < 0 &&
        !notify_failed++)
        fb_log_warn("notifying systemd (%s) failed", state);
}
