/*
 * test_buf.c -- common/buf.c: appended bytes stay NUL-terminated, the room
 * doubles and is kept when a buffer is reused, and a size past size_t's
 * range is refused with the buffer unchanged.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/buf.h"

Test(buf, appends_and_stays_terminated)
{
    fb_buf_t b = {0};

    cr_assert_eq(fb_buf_put(&b, "", 0), 0);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(fb_buf_put(&b, "abc", 3), 0);
    cr_assert_eq(fb_buf_put(&b, "de", 2), 0);
    cr_assert_eq(b.len, 5);
    cr_assert_str_eq(b.data, "abcde");
    fb_buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len + b.cap, 0);
}

Test(buf, grows_by_doubling_and_keeps_its_room)
{
    fb_buf_t b = {0};
    char block[1000];
    size_t cap;

    memset(block, 'x', sizeof(block));
    for (int i = 0; i < 100; i++)
        cr_assert_eq(fb_buf_put(&b, block, sizeof(block)), 0);
    cr_assert_eq(b.len, 100000);
    cr_assert_eq(b.data[b.len], '\0');
    cr_assert_geq(b.cap, b.len + 1);
    cr_assert_eq(b.cap & (b.cap - 1), 0, "a power of two: %zu", b.cap);
    cap = b.cap;
    b.len = 0; /* reused for the next batch */
    cr_assert_eq(fb_buf_put(&b, "y", 1), 0);
    cr_assert_eq(b.cap, cap);
    cr_assert_str_eq(b.data, "y");
    fb_buf_free(&b);
}

Test(buf, refuses_a_size_past_size_t_and_keeps_the_text)
{
    fb_buf_t b = {0};

    cr_assert_eq(fb_buf_put(&b, "keep", 4), 0);
    cr_assert_eq(fb_buf_reserve(&b, SIZE_MAX - 2), -1);
    cr_assert_eq(fb_buf_reserve(&b, SIZE_MAX / 2 + 1), -1);
    cr_assert_eq(b.len, 4);
    cr_assert_str_eq(b.data, "keep");
    fb_buf_free(&b);
}
