/*
 * test_addr.c -- host:port parsing and the loopback rule for plaintext.
 */
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "common/addr.h"

Test(addr, parses_forms)
{
    fb_addr_t a;
    const char *why;

    cr_assert_eq(fb_addr_parse("0.0.0.0:7777", 0, &a, &why), 0);
    cr_assert_str_eq(a.host, "0.0.0.0");
    cr_assert_eq(a.port, 7777);
    cr_assert_eq(a.family, AF_INET);

    cr_assert_eq(fb_addr_parse("[::1]:9092", 0, &a, &why), 0);
    cr_assert_str_eq(a.host, "::1");
    cr_assert_eq(a.family, AF_INET6);

    cr_assert_eq(fb_addr_parse("kafka-1.example.org:9092", 0, &a, &why), 0);
    cr_assert_eq(a.family, AF_UNSPEC);
    cr_assert_eq(a.port, 9092);

    cr_assert_eq(fb_addr_parse("127.0.0.1:0", FB_ADDR_F_PORT_ZERO, &a, &why), 0);
    cr_assert_eq(a.port, 0);
}

Test(addr, refuses_bad)
{
    static const char *bad[] = {
        "", "7777", ":7777", "host:", "host:0", "host:65536", "host:77x", "::1:7777",
        "[::1]7777", "[::1:7777", "[nothost]:80", "300.1.1.1:80", "1.2.3:80", "a b:80",
        "-.:80", "host..x:80", "host:-1", "[]:80",
    };
    fb_addr_t a;
    const char *why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        cr_assert_eq(fb_addr_parse(bad[i], 0, &a, &why), -1, "accepted \"%s\"", bad[i]);
        cr_assert_not_null(why);
    }
    cr_assert_eq(fb_addr_parse("host:0", 0, &a, &why), -1, "port 0 without the flag");
}

Test(addr, loopback_is_strict)
{
    static const struct { const char *s; bool lo; } cases[] = {
        {"127.0.0.1:1", true}, {"127.9.8.7:1", true}, {"[::1]:1", true},
        {"localhost:1", true}, {"LOCALHOST:1", true}, {"0.0.0.0:1", false},
        {"[::]:1", false}, {"10.0.0.1:1", false}, {"128.0.0.1:1", false},
        {"localhost.evil.org:1", false}, {"[::ffff:127.0.0.1]:1", false},
    };
    fb_addr_t a;
    const char *why;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(fb_addr_parse(cases[i].s, 0, &a, &why), 0, "%s: %s", cases[i].s, why);
        cr_assert_eq(fb_addr_is_loopback(&a), cases[i].lo, "%s", cases[i].s);
    }
}

Test(addr, lists)
{
    const char *why;
    char bad[64];

    cr_assert_eq(fb_addr_list_check("127.0.0.1:9092", &why, bad, sizeof(bad)), 0);
    cr_assert_eq(fb_addr_list_check("a:1, b:2 ,[::1]:3", &why, bad, sizeof(bad)), 0);
    cr_assert_eq(fb_addr_list_check("a:1,,b:2", &why, bad, sizeof(bad)), -1);
    cr_assert_eq(fb_addr_list_check("a:1,b", &why, bad, sizeof(bad)), -1);
    cr_assert_str_eq(bad, "b");
    cr_assert_eq(fb_addr_list_check("", &why, bad, sizeof(bad)), -1);
}
