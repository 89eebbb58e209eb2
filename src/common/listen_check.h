/*
 * listen_check.h -- whether the ingester's listen address can be ours:
 * something already listening there (gRPC sets SO_REUSEPORT, so a second
 * server of the same user would silently share the port), an address this
 * host does not have, a port in the kernel's ephemeral range.
 *
 * Opens one socket for a moment and closes it; reads /proc to name the
 * holder. Never keeps a socket, never logs.
 */
#ifndef FB_LISTEN_CHECK_H
#define FB_LISTEN_CHECK_H

#include <stddef.h>
#include <stdint.h>

typedef enum fb_listen_verdict {
    FB_LISTEN_FREE = 0, /* a socket without SO_REUSEPORT binds there */
    FB_LISTEN_HELD,     /* something listens there: who says what, when known */
    FB_LISTEN_NOT_LOCAL, /* no such address on this host (yet) */
    FB_LISTEN_UNKNOWN,  /* the check itself failed: why says so */
} fb_listen_verdict_t;

/* Check listen ("host:port"; port 0 is always free). text gets a sentence
 * for every verdict but FB_LISTEN_FREE: the holder ("pid 123 (fbpiped)")
 * or the system's reason. */
fb_listen_verdict_t fb_listen_check(const char *listen, char *text, size_t cap);

/* The kernel's ephemeral port range (net.ipv4.ip_local_port_range) when
 * port lies in it: 1 and *lo, *hi; 0 when it does not or the range
 * cannot be read. */
int fb_listen_port_ephemeral(uint16_t port, unsigned *lo, unsigned *hi);

#endif /* FB_LISTEN_CHECK_H */
