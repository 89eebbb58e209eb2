/*
 * units.c -- sizes ("64M"), durations ("5s", "1h30m"), booleans, integers.
 *
 * Sizes are binary (K = 1024). A duration without a unit is seconds. Every
 * overflow is an error, never a wrap. Never logs and never allocates.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/units.h"

/* parse_digits -- decimal digits at *p into *out; advances *p. */
static int
parse_digits(const char **p, uint64_t *out, const char **why)
{
    uint64_t v = 0;
    const char *s = *p;

    if (!isdigit((unsigned char)*s)) {
        *why = "expected a number";
        return -1;
    }
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *why = "number too large";
            return -1;
        }
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

/* fb_parse_size -- bytes with an optional K, M, G or T suffix (powers of 1024). */
int
fb_parse_size(const char *s, uint64_t *out, const char **why)
{
    uint64_t v, mult = 1;
    const char *p = s;

    if (parse_digits(&p, &v, why) < 0)
        return -1;
    switch (*p) {
    case '\0': break;
    case 'k': case 'K': mult = 1ULL << 10; p++; break;
    case 'm': case 'M': mult = 1ULL << 20; p++; break;
    case 'g': case 'G': mult = 1ULL << 30; p++; break;
    case 't': case 'T': mult = 1ULL << 40; p++; break;
    default:
        *why = "unknown size unit (use K, M, G or T)";
        return -1;
    }
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p != '\0') {
        *why = "trailing characters after the size";
        return -1;
    }
    if (v > UINT64_MAX / mult) {
        *why = "size too large";
        return -1;
    }
    *out = v * mult;
    return 0;
}

/* fb_parse_duration_ms -- "250ms", "5s", "10m", "2h", "1d", "1h30m"; bare number = s. */
int
fb_parse_duration_ms(const char *s, uint64_t *out_ms, const char **why)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    const char *p = s;
    uint64_t total = 0;
    int parts = 0;

    if (*p == '\0') {
        *why = "empty duration";
        return -1;
    }
    while (*p != '\0') {
        uint64_t v, mult = 0;
        size_t ulen = 0;

        if (parse_digits(&p, &v, why) < 0)
            return -1;
        if (*p == '\0') {
            if (parts > 0) {
                *why = "missing unit after a number (use ms, s, m, h or d)";
                return -1;
            }
            mult = 1000;
        } else {
            for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                size_t n = strlen(units[i].unit);
                if (strncmp(p, units[i].unit, n) == 0 && !isalpha((unsigned char)p[n])) {
                    mult = units[i].ms;
                    ulen = n;
                    break;
                }
            }
            if (mult == 0) {
                *why = "unknown duration unit (use ms, s, m, h or d)";
                return -1;
            }
        }
        if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult) {
            *why = "duration too large";
            return -1;
        }
        total += v * mult;
        p += ulen;
        parts++;
    }
    *out_ms = total;
    return 0;
}

/* fb_parse_bool -- yes/no, true/false, on/off, 1/0 (any case). */
int
fb_parse_bool(const char *s, bool *out, const char **why)
{
    static const char *yes[] = {"yes", "true", "on", "1"};
    static const char *no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    *why = "expected yes or no";
    return -1;
}

/* fb_parse_uint -- a plain decimal integer within [min, max]. */
int
fb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why)
{
    const char *p = s;
    uint64_t v;

    if (parse_digits(&p, &v, why) < 0)
        return -1;
    if (*p != '\0') {
        *why = "trailing characters after the number";
        return -1;
    }
    if (v < min || v > max) {
        *why = "number out of range";
        return -1;
    }
    *out = v;
    return 0;
}
