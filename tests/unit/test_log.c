/*
 * test_log.c -- fb_log_show: what a client or a file sent, fit for a log
 * line (printable ASCII, the rest escaped, capped, always terminated); the
 * rate limiter (fb_log_limit_*): per reason, one line per interval with
 * the count of what was held back, a bounded table, no line lost from the
 * counts. The clock is the test's: nothing sleeps.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/log.h"
#include "helpers.h"

/* count -- occurrences of needle in test_log_buf. */
static int
count(const char *needle)
{
    int n = 0;

    for (const char *p = test_log_buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

Test(log, show_keeps_printable_ascii)
{
    char out[64];

    fb_log_show(out, sizeof(out), "acme-1.key_2", 12, 64);
    cr_assert_str_eq(out, "acme-1.key_2");
}

Test(log, show_escapes_what_could_forge_a_line)
{
    char out[128];
    const char in[] = "a\n2026 master: notice: x\"\\\x01\xff";

    fb_log_show(out, sizeof(out), in, sizeof(in) - 1, 64);
    cr_assert_str_eq(out, "a\\x0a2026 master: notice: x\\x22\\x5c\\x01\\xff");
    cr_assert_null(strchr(out, '\n'));
}

Test(log, show_caps_and_marks_the_cut)
{
    char out[64];

    fb_log_show(out, sizeof(out), "abcdefghij", 10, 4);
    cr_assert_str_eq(out, "abcd...");
    /* a small buffer: cut, terminated, never overrun */
    memset(out, 'Z', sizeof(out));
    fb_log_show(out, 8, "\x01\x02\x03\x04", 4, 64);
    cr_assert_lt(strlen(out), 8);
    cr_assert_eq(out[8], 'Z');
}

Test(log, show_keeps_embedded_nul_visible)
{
    char out[64];

    fb_log_show(out, sizeof(out), "a\0b", 3, 64);
    cr_assert_str_eq(out, "a\\x00b");
}

Test(log_limit, first_line_at_once_then_one_per_interval)
{
    fb_log_limit_t l;

    test_log_capture();
    fb_log_limit_init(&l, 10000);
    cr_assert_eq(fb_log_limit_msg(&l, 5, FB_LOG_NOTICE, "auth missing", "peer %d refused", 0), 1);
    cr_assert_str_eq(test_log_buf, "peer 0 refused\n");
    for (int i = 1; i <= 20000; i++)
        cr_assert_eq(fb_log_limit_msg(&l, 5 + (uint64_t)i / 4, FB_LOG_NOTICE, "auth missing",
                                      "peer %d refused", i), 0, "held back at %d", i);
    cr_assert_eq(test_log_count, 1, "one line for 20001 refusals within 10 s:\n%s",
                 test_log_buf);
    cr_assert_eq(fb_log_limit_held(&l, "auth missing"), 20000);
    /* not due yet: nothing written */
    cr_assert_eq(fb_log_limit_flush(&l, 10004, false), 0);
    cr_assert_eq(test_log_count, 1);
    /* due: the last one held back, with the count */
    cr_assert_eq(fb_log_limit_flush(&l, 10005, false), 1);
    cr_assert_eq(test_log_count, 2);
    cr_assert_not_null(strstr(test_log_buf, "peer 20000 refused [20000 like it since the last "
                                            "line, this the latest; one line per 10 s]\n"),
                       "%s", test_log_buf);
    cr_assert_eq(fb_log_limit_held(&l, "auth missing"), 0);
    /* nothing held: a flush writes nothing, however late */
    cr_assert_eq(fb_log_limit_flush(&l, 90000, true), 0);
    fb_log_limit_destroy(&l);
}

Test(log_limit, a_line_after_the_interval_carries_the_held_count)
{
    fb_log_limit_t l;

    test_log_capture();
    fb_log_limit_init(&l, 1000);
    fb_log_limit_msg(&l, 100, FB_LOG_NOTICE, "r", "a");
    fb_log_limit_msg(&l, 200, FB_LOG_NOTICE, "r", "b");
    fb_log_limit_msg(&l, 1099, FB_LOG_NOTICE, "r", "c");
    cr_assert_eq(test_log_count, 1);
    /* the interval is over: this line is written, the two held back counted in it */
    cr_assert_eq(fb_log_limit_msg(&l, 1100, FB_LOG_NOTICE, "r", "d"), 1);
    cr_assert_str_eq(test_log_buf, "a\nd [3 like it since the last line, this the latest; one "
                                   "line per 1 s]\n");
    /* a new interval from there: e at 2099 is held, f at 2100 is written alone */
    cr_assert_eq(fb_log_limit_msg(&l, 2099, FB_LOG_NOTICE, "r", "e"), 0);
    cr_assert_eq(fb_log_limit_flush(&l, 2099, false), 0);
    cr_assert_eq(fb_log_limit_flush(&l, 2100, false), 1);
    cr_assert_not_null(strstr(test_log_buf, "\ne [1 like it since"), "%s", test_log_buf);
    cr_assert_eq(fb_log_limit_msg(&l, 3100, FB_LOG_NOTICE, "r", "f"), 1);
    cr_assert(strstr(test_log_buf, "\nf\n") != NULL, "%s", test_log_buf);
    cr_assert_eq(test_log_count, 4);
    fb_log_limit_destroy(&l);
}

Test(log_limit, reasons_are_limited_apart)
{
    fb_log_limit_t l;

    test_log_capture();
    fb_log_limit_init(&l, 10000);
    for (int i = 0; i < 100; i++) {
        fb_log_limit_msg(&l, 1, FB_LOG_NOTICE, "auth missing", "missing %d", i);
        fb_log_limit_msg(&l, 1, FB_LOG_NOTICE, "auth bad_signature", "signature %d", i);
        fb_log_limit_msg(&l, 1, FB_LOG_INFO, "peer limit", "peer %d", i);
    }
    cr_assert_eq(test_log_count, 3, "%s", test_log_buf);
    cr_assert_eq(count("missing 0\n"), 1);
    cr_assert_eq(count("signature 0\n"), 1);
    cr_assert_eq(count("peer 0\n"), 1);
    cr_assert_eq(fb_log_limit_held(&l, "peer limit"), 99);
    /* at exit: everything held back, due or not */
    cr_assert_eq(fb_log_limit_flush(&l, 2, true), 3);
    cr_assert_eq(count("missing 99 [99 like it"), 1, "%s", test_log_buf);
    cr_assert_eq(count("signature 99 [99 like it"), 1, "%s", test_log_buf);
    cr_assert_eq(count("peer 99 [99 like it"), 1, "%s", test_log_buf);
    fb_log_limit_destroy(&l);
}

Test(log_limit, the_table_is_bounded_and_loses_no_count)
{
    fb_log_limit_t l;
    char reason[32];
    uint64_t held = 0;
    const char *p;

    test_log_capture();
    fb_log_limit_init(&l, 10000);
    /* twice as many reasons as slots, ten lines each */
    for (int r = 0; r < 2 * FB_LOG_LIMIT_SLOTS; r++) {
        snprintf(reason, sizeof(reason), "reason %d", r);
        for (int i = 0; i < 10; i++)
            fb_log_limit_msg(&l, 1, FB_LOG_NOTICE, reason, "line %d of %s", i, reason);
    }
    cr_assert_eq(l.n_slots, FB_LOG_LIMIT_SLOTS - 1);
    /* each reason of its own slot once, the overflow slot once */
    cr_assert_eq(test_log_count, FB_LOG_LIMIT_SLOTS, "%d lines", test_log_count);
    cr_assert_eq(fb_log_limit_held(&l, "(other reasons)"),
                 (uint64_t)(FB_LOG_LIMIT_SLOTS + 1) * 10 - 1);
    fb_log_limit_flush(&l, 1, true);
    /* written + the counts in the summaries = every line offered */
    for (p = test_log_buf; (p = strstr(p, " [")) != NULL; p++) {
        uint64_t n;
        cr_assert_eq(sscanf(p, " [%" SCNu64 " like it", &n), 1, "%s", p);
        held += n;
    }
    cr_assert_eq((uint64_t)FB_LOG_LIMIT_SLOTS + held, 2 * FB_LOG_LIMIT_SLOTS * 10);
    fb_log_limit_destroy(&l);
}

Test(log_limit, long_lines_and_reasons_are_cut_not_overrun)
{
    fb_log_limit_t l;
    char big[4 * FB_LOG_LIMIT_LINE_MAX];
    char reason[2 * FB_LOG_LIMIT_REASON_MAX];

    test_log_capture();
    fb_log_limit_init(&l, 10);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    fb_log_limit_msg(&l, 0, FB_LOG_NOTICE, reason, "%s", big);
    fb_log_limit_msg(&l, 1, FB_LOG_NOTICE, reason, "%s", big);
    cr_assert_eq(fb_log_limit_flush(&l, 10, false), 1);
    cr_assert_eq(test_log_count, 2);
    cr_assert_lt(strlen(test_log_buf), 2 * (FB_LOG_LIMIT_LINE_MAX + 128));
    cr_assert_not_null(strstr(test_log_buf, "x [1 like it since the last line, this the latest; "
                                            "one line per 10 ms]"), "%s", test_log_buf);
    cr_assert_eq(strlen(l.slots[0].reason), FB_LOG_LIMIT_REASON_MAX - 1);
    fb_log_limit_destroy(&l);
}

Test(log_limit, lines_below_the_level_are_neither_written_nor_counted)
{
    fb_log_limit_t l;

    test_log_capture();
    fb_log_set_level(FB_LOG_NOTICE);
    fb_log_limit_init(&l, 10000);
    cr_assert_eq(fb_log_limit_msg(&l, 1, FB_LOG_INFO, "r", "info"), 0);
    cr_assert_eq(fb_log_limit_held(&l, "r"), 0);
    cr_assert_eq(fb_log_limit_msg(&l, 1, FB_LOG_NOTICE, "r", "notice"), 1);
    cr_assert_str_eq(test_log_buf, "notice\n");
    fb_log_set_level(FB_LOG_INFO);
    fb_log_limit_destroy(&l);
}

Test(log_limit, interval_zero_writes_every_line)
{
    fb_log_limit_t l;

    test_log_capture();
    fb_log_limit_init(&l, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(fb_log_limit_msg(&l, 7, FB_LOG_NOTICE, "r", "%d", i), 1);
    cr_assert_str_eq(test_log_buf, "0\n1\n2\n3\n4\n");
    fb_log_limit_destroy(&l);
}

Test(log_limit, the_process_table)
{
    test_log_capture();
    for (int i = 0; i < 1000; i++)
        fb_log_limited(FB_LOG_NOTICE, "process table", "refused %d", i);
    cr_assert_str_eq(test_log_buf, "refused 0\n", "interval %d ms", FB_LOG_LIMIT_INTERVAL_MS);
    fb_log_limited_flush(false); /* not due for 10 s */
    cr_assert_eq(test_log_count, 1);
    fb_log_limited_flush(true);
    cr_assert_eq(count("refused 999 [999 like it since the last line"), 1, "%s", test_log_buf);
}
