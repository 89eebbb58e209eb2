/*
 * test_units.c -- sizes, durations, booleans and integers from the config.
 */
#include <stdint.h>

#include <criterion/criterion.h>

#include "common/units.h"

Test(units, sizes)
{
    static const struct { const char *s; uint64_t v; } ok[] = {
        {"0", 0}, {"1", 1}, {"1024", 1024}, {"1K", 1024}, {"1k", 1024}, {"64M", 64ULL << 20},
        {"64MB", 64ULL << 20}, {"2G", 2ULL << 30}, {"1T", 1ULL << 40}, {"4m", 4ULL << 20},
        {"18446744073709551615", UINT64_MAX},
    };
    const char *why;
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_assert_eq(fb_parse_size(ok[i].s, &v, &why), 0, "%s", ok[i].s);
        cr_assert_eq(v, ok[i].v, "%s gave %llu", ok[i].s, (unsigned long long)v);
    }
}

Test(units, bad_sizes)
{
    static const char *bad[] = {"", "M", "-1", "1.5M", "64 M", "64X", "64MiB", "1MBB",
                                "18446744073709551616", "17179869184G", " 1", "1\n"};
    const char *why = NULL;
    uint64_t v = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        cr_assert_eq(fb_parse_size(bad[i], &v, &why), -1, "accepted \"%s\"", bad[i]);
        cr_assert_not_null(why);
    }
    cr_assert_eq(v, 42, "output written on failure");
}

Test(units, durations)
{
    static const struct { const char *s; uint64_t ms; } ok[] = {
        {"0", 0}, {"30", 30000}, {"5ms", 5}, {"5s", 5000}, {"10m", 600000},
        {"2h", 7200000}, {"1d", 86400000}, {"1h30m", 5400000}, {"1m30s", 90000},
        {"1s500ms", 1500},
    };
    const char *why;
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_assert_eq(fb_parse_duration_ms(ok[i].s, &v, &why), 0, "%s", ok[i].s);
        cr_assert_eq(v, ok[i].ms, "%s gave %llu", ok[i].s, (unsigned long long)v);
    }
}

Test(units, bad_durations)
{
    static const char *bad[] = {"", "s", "5x", "5 s", "-5s", "1h30", "5sec", "1.5s", "5S",
                                "99999999999999999999d", "213503982335d", "5mss"};
    const char *why;
    uint64_t v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        cr_assert_eq(fb_parse_duration_ms(bad[i], &v, &why), -1, "accepted \"%s\"", bad[i]);
        cr_assert_not_null(why, "no reason for \"%s\"", bad[i]);
    }
}

Test(units, booleans)
{
    static const char *yes[] = {"yes", "YES", "true", "on", "1"};
    static const char *no[] = {"no", "False", "off", "0"};
    static const char *bad[] = {"", "y", "2", "yes please", "nope"};
    const char *why;
    bool b;

    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(fb_parse_bool(yes[i], &b, &why), 0);
        cr_assert(b, "%s", yes[i]);
    }
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(fb_parse_bool(no[i], &b, &why), 0);
        cr_assert_not(b, "%s", no[i]);
    }
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(fb_parse_bool(bad[i], &b, &why), -1, "accepted \"%s\"", bad[i]);
}

Test(units, integers_in_range)
{
    const char *why;
    uint64_t v;

    cr_assert_eq(fb_parse_uint("4", 1, 256, &v, &why), 0);
    cr_assert_eq(v, 4);
    cr_assert_eq(fb_parse_uint("256", 1, 256, &v, &why), 0);
    cr_assert_eq(fb_parse_uint("0", 1, 256, &v, &why), -1);
    cr_assert_str_eq(why, "number out of range");
    cr_assert_eq(fb_parse_uint("257", 1, 256, &v, &why), -1);
    cr_assert_eq(fb_parse_uint("4x", 1, 256, &v, &why), -1);
    cr_assert_eq(fb_parse_uint("", 1, 256, &v, &why), -1);
    cr_assert_eq(fb_parse_uint("+4", 1, 256, &v, &why), -1);
}
