/*
 * addr.h -- "host:port" addresses for listen and broker settings.
 *
 * Parses and classifies only: never resolves names, never opens sockets.
 * Also turns a client's list of ingest addresses into a gRPC target.
 */
#ifndef FB_ADDR_H
#define FB_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_ADDR_HOST_MAX 255

typedef struct fb_addr {
    char host[FB_ADDR_HOST_MAX + 1]; /* without brackets */
    uint16_t port;
    int family; /* AF_INET, AF_INET6, or AF_UNSPEC for a name */
} fb_addr_t;

#define FB_ADDR_F_PORT_ZERO (1u << 0) /* port 0 (any free port) is allowed */

int fb_addr_parse(const char *s, unsigned flags, fb_addr_t *out, const char **why);
bool fb_addr_is_loopback(const fb_addr_t *a);
int fb_addr_list_check(const char *list, const char **why, char *bad, unsigned badlen);

#define FB_ADDR_TARGET_MAX 64 /* addresses in one client target */

/* fb_addr_grpc_target -- a client's "host:port" or list "A:P,B:P,..."
 * (spaces around entries ignored) as a gRPC target into out; *n: the
 * number of addresses. One entry is copied as it is (gRPC resolves a
 * name). Several must be IP addresses of one family, each once, at most
 * FB_ADDR_TARGET_MAX, written "ipv4:A:P,B:P" or "ipv6:[A]:P,[B]:P" (a
 * list is never resolved). 0, or -1 with why, and the bad entry in bad. */
int fb_addr_grpc_target(const char *list, char *out, size_t outlen, unsigned *n, const char **why,
                        char *bad, unsigned badlen);

#endif /* FB_ADDR_H */
