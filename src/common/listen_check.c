/*
 * listen_check.c -- is the listen address ours to take (listen_check.h)?
 *
 * A socket with SO_REUSEADDR and without SO_REUSEPORT fails to bind with
 * EADDRINUSE exactly while something listens on the address, and binds
 * when the port only has connections in TIME-WAIT. The holder is named
 * from /proc/net/tcp{,6} (listening sockets of the port, by inode) and
 * /proc/PID/fd (which process holds that inode): as root every process is
 * found, otherwise only this user's.
 */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/listen_check.h"

#define INODES_MAX 16
#define HOLDERS_MAX 3

/* listening_inodes -- inodes of the sockets listening on port (any
 * address) from one /proc/net table; appended to ino[*n]. */
static void
listening_inodes(const char *table, uint16_t port, unsigned long *ino, size_t *n)
{
    FILE *f = fopen(table, "r");
    char line[512];

    if (f == NULL)
        return;
    if (fgets(line, sizeof(line), f) == NULL) { /* the heading */
        fclose(f);
        return;
    }
    while (*n < INODES_MAX && fgets(line, sizeof(line), f) != NULL) {
        char local[128], remote[128], st[8];
        unsigned long inode;
        const char *colon;

        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %127s %127s %7s %*s %*s %*s %*s %*s %lu", local, remote, st,
                   &inode) != 4)
            continue;
        colon = strrchr(local, ':');
        if (colon == NULL || strcmp(st, "0A") != 0 || strtoul(colon + 1, NULL, 16) != port)
            continue;
        ino[(*n)++] = inode;
    }
    fclose(f);
}

/* name_holders -- "pid N (comm)" for each process holding one of ino[]. */
static void
name_holders(const unsigned long *ino, size_t n, char *text, size_t cap)
{
    DIR *proc = opendir("/proc");
    struct dirent *p;
    size_t found = 0, used = 0;

    if (proc == NULL)
        return;
    while (found < HOLDERS_MAX && (p = readdir(proc)) != NULL) {
        char path[300], link[64], comm[64] = "?";
        struct dirent *fd;
        DIR *fds;
        FILE *c;
        int holds = 0;

        if (p->d_name[0] < '1' || p->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
        if ((fds = opendir(path)) == NULL)
            continue;
        while (!holds && (fd = readdir(fds)) != NULL) {
            char fdpath[600];
            ssize_t len;
            unsigned long inode;

            snprintf(fdpath, sizeof(fdpath), "%s/%s", path, fd->d_name);
            len = readlink(fdpath, link, sizeof(link) - 1);
            if (len <= 0)
                continue;
            link[len] = '\0';
            if (sscanf(link, "socket:[%lu]", &inode) != 1)
                continue;
            for (size_t i = 0; i < n && !holds; i++)
                holds = inode == ino[i];
        }
        closedir(fds);
        if (!holds)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/comm", p->d_name);
        if ((c = fopen(path, "r")) != NULL) {
            if (fgets(comm, sizeof(comm), c) != NULL)
                comm[strcspn(comm, "\n")] = '\0';
            fclose(c);
        }
        if (used < cap)
            used += (size_t)snprintf(text + used, cap - used, "%spid %s (%s)",
                                     found ? ", " : "", p->d_name, comm);
        found++;
    }
    closedir(proc);
}

fb_listen_verdict_t
fb_listen_check(const char *listen, char *text, size_t cap)
{
    struct addrinfo hints, *res = NULL;
    fb_addr_t a;
    const char *why;
    char port[8];
    int fd, one = 1, rc, e;

    text[0] = '\0';
    if (fb_addr_parse(listen, FB_ADDR_F_PORT_ZERO, &a, &why) < 0) {
        snprintf(text, cap, "%s: %s", listen, why);
        return FB_LISTEN_UNKNOWN;
    }
    if (a.port == 0)
        return FB_LISTEN_FREE;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)a.port);
    if ((rc = getaddrinfo(a.host, port, &hints, &res)) != 0) {
        snprintf(text, cap, "%s: %s", a.host, gai_strerror(rc));
        return rc == EAI_NONAME ? FB_LISTEN_NOT_LOCAL : FB_LISTEN_UNKNOWN;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(text, cap, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return FB_LISTEN_UNKNOWN;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    rc = bind(fd, res->ai_addr, res->ai_addrlen);
    e = errno;
    close(fd);
    freeaddrinfo(res);
    if (rc == 0)
        return FB_LISTEN_FREE;
    if (e == EADDRINUSE) {
        unsigned long ino[INODES_MAX];
        size_t n = 0;

        listening_inodes("/proc/net/tcp", a.port, ino, &n);
        listening_inodes("/proc/net/tcp6", a.port, ino, &n);
        name_holders(ino, n, text, cap);
        if (text[0] == '\0')
            snprintf(text, cap, "a process this user cannot see");
        return FB_LISTEN_HELD;
    }
    snprintf(text, cap, "%s", strerror(e));
    return e == EADDRNOTAVAIL ? FB_LISTEN_NOT_LOCAL : FB_LISTEN_UNKNOWN;
}

int
fb_listen_port_ephemeral(uint16_t port, unsigned *lo, unsigned *hi)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int n;

    if (f == NULL)
        return 0;
    n = fscanf(f, "%u %u", lo, hi);
    fclose(f);
    return n == 2 && port != 0 && port >= *lo && port <= *hi;
}
