/*
 * test_log.c -- fb_log_show: what a client or a file sent, fit for a log
 * line (printable ASCII, the rest escaped, capped, always terminated).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "common/log.h"

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
