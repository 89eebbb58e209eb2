/*
 * addr.c -- parse and classify "host:port" and "[v6]:port" strings.
 *
 * The loopback test decides where plaintext gRPC is allowed, so it is
 * strict: only 127.0.0.0/8, ::1 and the name "localhost" count. Never
 * resolves a name (that would make a security decision depend on DNS).
 * A client's list of addresses becomes a gRPC target of literals only.
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

/* next_entry -- the entry at *p up to a comma, spaces trimmed, into item;
 * *p moves past the comma (NULL after the last). 0, or -1 with why. */
static int
next_entry(const char **p, char *item, size_t itemlen, const char **why)
{
    const char *s = *p, *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);

    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    *p = comma ? comma + 1 : NULL;
    if (n == 0 || n >= itemlen) {
        snprintf(item, itemlen, "%.*s", (int)(n < itemlen ? n : itemlen - 1), s);
        *why = n == 0 ? "empty entry in the list" : "entry too long";
        return -1;
    }
    memcpy(item, s, n);
    item[n] = '\0';
    return 0;
}

int
fb_addr_grpc_target(const char *list, char *out, size_t outlen, unsigned *n, const char **why,
                    char *bad, unsigned badlen)
{
    char item[FB_ADDR_HOST_MAX + 16], one[FB_ADDR_HOST_MAX + 16];
    const char *p = list;
    size_t used;
    int family = AF_UNSPEC;
    fb_addr_t a;

    *n = 0;
    snprintf(bad, badlen, "%s", "");
    if (strchr(list, ',') == NULL) {
        /* one address: as it is, a name included */
        if (next_entry(&p, item, sizeof(item), why) < 0)
            return -1;
        if (strlen(item) >= outlen) {
            snprintf(bad, badlen, "%s", item);
            *why = "target too long";
            return -1;
        }
        snprintf(out, outlen, "%s", item);
        *n = 1;
        return 0;
    }
    used = (size_t)snprintf(out, outlen, "%s", "ipv4:");
    while (p != NULL) {
        if (next_entry(&p, item, sizeof(item), why) < 0 || fb_addr_parse(item, 0, &a, why) < 0) {
            snprintf(bad, badlen, "%s", item);
            return -1;
        }
        if (a.family == AF_UNSPEC) {
            snprintf(bad, badlen, "%s", item);
            *why = "several addresses must be IP addresses (a name may stand alone)";
            return -1;
        }
        if (family != AF_UNSPEC && a.family != family) {
            snprintf(bad, badlen, "%s", item);
            *why = "several addresses must be all IPv4 or all IPv6";
            return -1;
        }
        if (++*n > FB_ADDR_TARGET_MAX) {
            snprintf(bad, badlen, "%s", item);
            *why = "more than 64 addresses";
            return -1;
        }
        family = a.family;
        if (a.family == AF_INET6)
            snprintf(one, sizeof(one), "[%s]:%u", a.host, (unsigned)a.port);
        else
            snprintf(one, sizeof(one), "%s:%u", a.host, (unsigned)a.port);
        /* an address given twice would take twice its share */
        for (const char *q = out + 5; (q = strstr(q, one)) != NULL; q += strlen(one)) {
            char after = q[strlen(one)];

            if ((q == out + 5 || q[-1] == ',') && (after == ',' || after == '\0')) {
                snprintf(bad, badlen, "%s", item);
                *why = "an address is listed twice";
                return -1;
            }
        }
        if (used + strlen(one) + 2 > outlen) {
            snprintf(bad, badlen, "%s", item);
            *why = "target too long";
            return -1;
        }
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", *n > 1 ? "," : "", one);
    }
    if (family == AF_INET6)
        memcpy(out, "ipv6", 4);
    return 0;
}
