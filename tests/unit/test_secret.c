/*
 * test_secret.c -- secret and key files: permissions, size, trailing newline.
 */
#include <criterion/criterion.h>

#include "common/secret.h"
#include "helpers.h"

#define S32 "0123456789abcdef0123456789abcdef"

TestSuite(secret, .init = test_setup, .fini = test_teardown);

Test(secret, reads_and_strips_newline)
{
    uint8_t *buf;
    size_t len;

    cr_assert_eq(fb_secret_read(test_write("s", S32 "\n", 0600),
                                FB_SECRET_F_PRIVATE | FB_SECRET_F_STRIP_NL, 32, &buf, &len), 0);
    cr_assert_eq(len, 32);
    cr_assert_eq(memcmp(buf, S32, 32), 0);
    cr_assert_eq(buf[32], '\0');
    fb_secret_free(buf, len);

    cr_assert_eq(fb_secret_read(test_write("s", S32 "\r\n", 0600),
                                FB_SECRET_F_PRIVATE | FB_SECRET_F_STRIP_NL, 32, &buf, &len), 0);
    cr_assert_eq(len, 32);
    fb_secret_free(buf, len);

    /* only one trailing newline is removed: the rest is part of the secret */
    cr_assert_eq(fb_secret_read(test_write("s", S32 "\n\n", 0600), FB_SECRET_F_STRIP_NL, 32,
                                &buf, &len), 0);
    cr_assert_eq(len, 33);
    fb_secret_free(buf, len);
    cr_assert_eq(test_log_count, 0);
}

Test(secret, too_short_counts_without_newline)
{
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 7;

    /* 31 bytes plus a newline: 32 bytes on disk, 31 of secret */
    cr_assert_eq(fb_secret_read(test_write("s", "0123456789abcdef0123456789abcde\n", 0600),
                                FB_SECRET_F_PRIVATE | FB_SECRET_F_STRIP_NL, 32, &buf, &len), -1);
    cr_assert_null(buf);
    cr_assert_eq(len, 0);
    cr_assert(strstr(test_log_buf, "31 bytes, a secret needs at least 32") != NULL, "%s",
              test_log_buf);
    cr_assert_eq(test_log_count, 1);
}

Test(secret, refuses_group_or_other_access)
{
    static const mode_t bad[] = {0640, 0604, 0644, 0660, 0602, 0610};
    uint8_t *buf;
    size_t len;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_log_buf[0] = '\0';
        cr_assert_eq(fb_secret_read(test_write("s", S32, bad[i]), FB_SECRET_F_PRIVATE, 32, &buf,
                                    &len), -1, "mode %o accepted", bad[i]);
        cr_assert(strstr(test_log_buf, "accessible by group or others") != NULL, "%s",
                  test_log_buf);
    }
    /* a public key may be world-readable */
    cr_assert_eq(fb_secret_read(test_write("pub", "-----BEGIN PUBLIC KEY-----\n", 0644), 0, 1,
                                &buf, &len), 0);
    fb_secret_free(buf, len);
}

Test(secret, refuses_missing_directory_and_huge)
{
    uint8_t *buf;
    size_t len;
    char *big;

    cr_assert_eq(fb_secret_read("/nonexistent/fbpipe/secret", 0, 1, &buf, &len), -1);
    cr_assert(strstr(test_log_buf, "open(/nonexistent/fbpipe/secret) failed: No such file") !=
              NULL, "%s", test_log_buf);

    test_log_buf[0] = '\0';
    cr_assert_eq(fb_secret_read(test_dir, 0, 1, &buf, &len), -1);
    cr_assert(strstr(test_log_buf, "not a regular file") != NULL, "%s", test_log_buf);

    big = malloc(FB_SECRET_MAX + 2);
    memset(big, 'a', FB_SECRET_MAX + 1);
    big[FB_SECRET_MAX + 1] = '\0';
    test_log_buf[0] = '\0';
    cr_assert_eq(fb_secret_read(test_write("big", big, 0600), 0, 1, &buf, &len), -1);
    cr_assert(strstr(test_log_buf, "more than the 65536") != NULL, "%s", test_log_buf);
    free(big);
}

Test(secret, load_says_why_without_logging)
{
    uint8_t *buf;
    size_t len;
    char err[256];

    err[0] = '\0';
    cr_assert_eq(fb_secret_load(test_write("s", S32, 0640), FB_SECRET_F_PRIVATE, 32, &buf, &len,
                                err, sizeof(err)), -1);
    cr_assert_null(buf);
    cr_assert(strstr(err, "/s: is accessible by group or others (mode 0640)") != NULL, "%s", err);
    cr_assert_eq(fb_secret_load("/nonexistent/fbpipe/secret", 0, 1, &buf, &len, err,
                                sizeof(err)), -1);
    cr_assert_str_eq(err, "open(/nonexistent/fbpipe/secret) failed: No such file or directory");
    /* a short buffer is cut, never overrun */
    cr_assert_eq(fb_secret_load("/nonexistent/fbpipe/secret", 0, 1, &buf, &len, err, 5), -1);
    cr_assert_str_eq(err, "open");
    cr_assert_eq(fb_secret_load(test_write("s", S32 "\n", 0600), FB_SECRET_F_STRIP_NL, 32, &buf,
                                &len, err, sizeof(err)), 0);
    cr_assert_eq(len, 32);
    fb_secret_free(buf, len);
    cr_assert_eq(test_log_count, 0);
}
