/*
 * test_addr.c -- host:port parsing and the loopback rule for plaintext.
 */
#include <stdio.h>
#include <string.h>
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

Test(addr, grpc_target_one_address_as_it_is)
{
    char out[256], bad[64];
    const char *why;
    unsigned n;

    cr_assert_eq(fb_addr_grpc_target("ingest.example.org:7777", out, sizeof(out), &n, &why, bad,
                                     sizeof(bad)),
                 0);
    cr_assert_str_eq(out, "ingest.example.org:7777");
    cr_assert_eq(n, 1);
    cr_assert_eq(fb_addr_grpc_target(" 10.0.0.1:7777 ", out, sizeof(out), &n, &why, bad,
                                     sizeof(bad)),
                 0);
    cr_assert_str_eq(out, "10.0.0.1:7777");
}

Test(addr, grpc_target_list_is_round_robin_literals)
{
    char out[256], bad[64];
    const char *why;
    unsigned n;

    cr_assert_eq(fb_addr_grpc_target("10.0.0.1:7777, 10.0.0.2:7778", out, sizeof(out), &n, &why,
                                     bad, sizeof(bad)),
                 0);
    cr_assert_str_eq(out, "ipv4:10.0.0.1:7777,10.0.0.2:7778");
    cr_assert_eq(n, 2);
    cr_assert_eq(fb_addr_grpc_target("[::1]:1,[fd00::2]:2,[fd00::3]:3", out, sizeof(out), &n, &why,
                                     bad, sizeof(bad)),
                 0);
    cr_assert_str_eq(out, "ipv6:[::1]:1,[fd00::2]:2,[fd00::3]:3");
    cr_assert_eq(n, 3);
    /* the same host on another port is another address */
    cr_assert_eq(fb_addr_grpc_target("10.0.0.1:1,10.0.0.1:11", out, sizeof(out), &n, &why, bad,
                                     sizeof(bad)),
                 0);
    cr_assert_str_eq(out, "ipv4:10.0.0.1:1,10.0.0.1:11");
}

Test(addr, grpc_target_list_refuses)
{
    static const struct { const char *in, *bad, *why; } cases[] = {
        {"10.0.0.1:1,ingest.example.org:2", "ingest.example.org:2", "IP addresses"},
        {"10.0.0.1:1,[::1]:2", "[::1]:2", "all IPv4 or all IPv6"},
        {"10.0.0.1:1,,10.0.0.2:2", "", "empty entry"},
        {"10.0.0.1:1,", "", "empty entry"},
        {"10.0.0.1:1,10.0.0.2", "10.0.0.2", "port"},
        {"10.0.0.1:1,10.0.0.1:1", "10.0.0.1:1", "twice"},
        {"10.0.0.11:1,10.0.0.1:1,10.0.0.1:1", "10.0.0.1:1", "twice"},
        {"10.0.0.1:1,300.0.0.1:1", "300.0.0.1:1", "IPv4"},
    };
    char out[256], bad[64];
    const char *why;
    unsigned n;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        cr_assert_eq(fb_addr_grpc_target(cases[i].in, out, sizeof(out), &n, &why, bad, sizeof(bad)),
                     -1, "accepted \"%s\"", cases[i].in);
        cr_assert_str_eq(bad, cases[i].bad, "\"%s\": bad entry \"%s\"", cases[i].in, bad);
        cr_assert_not_null(strstr(why, cases[i].why), "\"%s\": %s", cases[i].in, why);
    }
}

Test(addr, grpc_target_list_bounded)
{
    char in[4096], out[4096], bad[64];
    const char *why;
    size_t used = 0;
    unsigned n;

    for (unsigned i = 0; i <= FB_ADDR_TARGET_MAX; i++)
        used += (size_t)snprintf(in + used, sizeof(in) - used, "%s10.0.%u.1:7777", i ? "," : "",
                                 i);
    cr_assert_eq(fb_addr_grpc_target(in, out, sizeof(out), &n, &why, bad, sizeof(bad)), -1);
    cr_assert_not_null(strstr(why, "more than"));
    *strrchr(in, ',') = '\0';
    cr_assert_eq(fb_addr_grpc_target(in, out, sizeof(out), &n, &why, bad, sizeof(bad)), 0);
    cr_assert_eq(n, FB_ADDR_TARGET_MAX);
    /* an output too small is refused, never cut */
    cr_assert_eq(fb_addr_grpc_target(in, out, 64, &n, &why, bad, sizeof(bad)), -1);
    cr_assert_not_null(strstr(why, "too long"));
}
