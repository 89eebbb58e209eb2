/*
 * addr.c -- parse and classify "host:port" and "[v6]:port" strings.
 *
 * The loopback test decides where plaintext gRPC is allowed, so it is
 * strict: only 127.0.0.0/8, ::1 and the name "localhost" count. Never
 * resolves a name (that would make a security decision depend on DNS).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/units.h"

/* host_name_ok -- letters, digits, '-' and '.', labels of 1..63 bytes. */
static bool
host_name_ok(const char *h)
{
    size_t label = 0;

    if (*h == '\0' || strlen(h) > 253)
        return false;
    for (const char *p = h; *p != '\0'; p++) {
        if (*p == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* fb_addr_parse -- split and validate an address; the port is required. */
int
fb_addr_parse(const char *s, unsigned flags, fb_addr_t *out, const char **why)
{
    const char *host, *colon, *port;
    size_t hlen;
    uint64_t p;
    unsigned char buf[sizeof(struct in6_addr)];

    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':') {
            *why = "expected [IPv6 address]:port";
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(end - host);
        port = end + 2;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "missing :port";
            return -1;
        }
        if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
            *why = "an IPv6 address must be written in brackets, as [::1]:port";
            return -1;
        }
        host = s;
        hlen = (size_t)(colon - s);
        port = colon + 1;
    }
    if (hlen == 0 || hlen > FB_ADDR_HOST_MAX) {
        *why = "missing or overlong host";
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';

    if (fb_parse_uint(port, (flags & FB_ADDR_F_PORT_ZERO) ? 0 : 1, 65535, &p, why) < 0) {
        *why = "port must be a number from 1 to 65535";
        return -1;
    }
    out->port = (uint16_t)p;

    if (s[0] == '[') {
        if (inet_pton(AF_INET6, out->host, buf) != 1) {
            *why = "invalid IPv6 address";
            return -1;
        }
        out->family = AF_INET6;
    } else if (inet_pton(AF_INET, out->host, buf) == 1) {
        out->family = AF_INET;
    } else if (isdigit((unsigned char)out->host[hlen - 1])) {
        /* a name's last label is never all digits: a malformed IPv4 address */
        *why = "invalid IPv4 address";
        return -1;
    } else if (host_name_ok(out->host)) {
        out->family = AF_UNSPEC;
    } else {
        *why = "invalid host name";
        return -1;
    }
    return 0;
}

/* fb_addr_is_loopback -- 127.0.0.0/8, ::1 or "localhost"; nothing else. */
bool
fb_addr_is_loopback(const fb_addr_t *a)
{
    struct in_addr v4;
    struct in6_addr v6;

    switch (a->family) {
    case AF_INET:
        if (inet_pton(AF_INET, a->host, &v4) != 1)
            return false;
        return (ntohl(v4.s_addr) >> 24) == 127;
    case AF_INET6:
        if (inet_pton(AF_INET6, a->host, &v6) != 1)
            return false;
        return IN6_IS_ADDR_LOOPBACK(&v6);
    default:
        return strcasecmp(a->host, "localhost") == 0;
    }
}

/* fb_addr_list_check -- validate "h:p,h:p"; copies the first bad entry to bad. */
int
fb_addr_list_check(const char *list, const char **why, char *bad, unsigned badlen)
{
    char item[FB_ADDR_HOST_MAX + 16];
    const char *p = list;
    fb_addr_t a;

    if (*p == '\0') {
        *why = "empty address list";
        return -1;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);

        while (n > 0 && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        if (n == 0 || n >= sizeof(item)) {
            snprintf(bad, badlen, "%.*s", (int)n, p);
            *why = n == 0 ? "empty entry in the list" : "entry too long";
            return -1;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        if (fb_addr_parse(item, 0, &a, why) < 0) {
            snprintf(bad, badlen, "%s", item);
            return -1;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}
