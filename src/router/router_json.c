/*
 * router_json.c -- JSON checked and compacted in one pass, and strings
 * quoted (router_json.h). A recursive descent over the grammar of RFC
 * 8259 with a depth bound; no allocation.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "router/router_json.h"

typedef struct scan {
    const unsigned char *p, *end;
    char *out;
} scan_t;

static bool value(scan_t *s, unsigned depth);

static void
skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int
hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* u4 -- four hex digits after "\u"; -1 when not. */
static long
u4(const unsigned char *p, const unsigned char *end)
{
    long v = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hex(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static bool
string(scan_t *s)
{
    const unsigned char *start = s->p++; /* the opening quote */

    for (;;) {
        /* the plain run: no quote, backslash or control character */
        while (s->p < s->end && *s->p != '"' && *s->p != '\\' && *s->p >= 0x20)
            s->p++;
        if (s->p >= s->end || *s->p < 0x20)
            return false;
        if (*s->p == '"')
            break;
        /* an escape */
        if (s->end - s->p < 2)
            return false;
        switch (s->p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            s->p += 2;
            continue;
        case 'u': {
            long c = u4(s->p + 2, s->end);
            if (c < 0 || (c >= 0xdc00 && c <= 0xdfff))
                return false; /* not hex, or a lone low surrogate */
            s->p += 6;
            if (c >= 0xd800 && c <= 0xdbff) { /* a high surrogate needs its low one */
                long lo;
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
                    return false;
                lo = u4(s->p + 2, s->end);
                if (lo < 0xdc00 || lo > 0xdfff)
                    return false;
                s->p += 6;
            }
            continue;
        }
        default:
            return false;
        }
    }
    s->p++; /* the closing quote */
    memcpy(s->out, start, (size_t)(s->p - start));
    s->out += s->p - start;
    return true;
}

static bool
digits(scan_t *s)
{
    const unsigned char *from = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > from;
}

static bool
number(scan_t *s)
{
    const unsigned char *start = s->p;

    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    memcpy(s->out, start, (size_t)(s->p - start));
    s->out += s->p - start;
    return true;
}

static bool
literal(scan_t *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    memcpy(s->out, word, n);
    s->out += n;
    s->p += n;
    return true;
}

/* members -- the elements of an array or the members of an object, after
 * the opening bracket, up to and with the closing one. */
static bool
members(scan_t *s, unsigned depth, bool object)
{
    char close = object ? '}' : ']';

    *s->out++ = (char)*s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        *s->out++ = (char)*s->p++;
        return true;
    }
    for (;;) {
        if (object) {
            if (s->p >= s->end || *s->p != '"' || !string(s))
                return false;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return false;
            *s->out++ = (char)*s->p++;
        }
        if (!value(s, depth + 1))
            return false;
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == close) {
            *s->out++ = (char)*s->p++;
            return true;
        }
        if (*s->p != ',')
            return false;
        *s->out++ = (char)*s->p++;
        skip_ws(s);
    }
}

static bool
value(scan_t *s, unsigned depth)
{
    skip_ws(s);
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '{':
    case '[':
        return depth < FB_JSON_MAX_DEPTH && members(s, depth, *s->p == '{');
    case '"':
        return string(s);
    case 't':
        return literal(s, "true", 4);
    case 'f':
        return literal(s, "false", 5);
    case 'n':
        return literal(s, "null", 4);
    default:
        return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && number(s);
    }
}

long
fb_json_compact(const char *in, size_t len, char *out)
{
    scan_t s = {.p = (const unsigned char *)in, .end = (const unsigned char *)in + len,
                .out = out};

    if (!value(&s, 0))
        return -1;
    skip_ws(&s);
    return s.p == s.end ? (long)(s.out - out) : -1;
}

size_t
fb_json_quote(const char *in, size_t len, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    char *o = out;

    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hexd[c >> 4];
            *o++ = hexd[c & 15];
        }
    }
    *o++ = '"';
    return (size_t)(o - out);
}
