/*
 * secret.c -- read a secret or key file after checking what it is.
 *
 * The checks run on the opened descriptor (fstat), never on the path, so a
 * file swapped between check and read cannot slip through. The buffer is
 * NUL-terminated for PEM parsers and wiped when freed. Never logs contents;
 * fb_secret_load does not log at all (it says why in a buffer) for the
 * modules that never log.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/secret.h"

/* fb_secret_load -- the whole file into *out (NUL-terminated); says why in err. */
int
fb_secret_load(const char *path, unsigned flags, size_t min_len, uint8_t **out, size_t *out_len,
               char *err, size_t errlen)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fb_errf(err, errlen, "open(%s) failed: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        fb_errf(err, errlen, "fstat(%s) failed: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        fb_errf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if ((flags & FB_SECRET_F_PRIVATE) && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        fb_errf(err, errlen,
            "%s: is accessible by group or others (mode %04o); "
            "refusing it, chmod 600 it",
            path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    if (st.st_size > FB_SECRET_MAX) {
        fb_errf(err, errlen, "%s: %lld bytes, more than the %d a key file may have", path,
            (long long)st.st_size, FB_SECRET_MAX);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fb_errf(err, errlen, "malloc(%lld) for %s failed: %s", (long long)st.st_size + 1, path,
            strerror(errno));
        goto fail;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fb_errf(err, errlen, "read(%s) failed: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (flags & FB_SECRET_F_STRIP_NL) {
        if (len > 0 && buf[len - 1] == '\n')
            len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    buf[len] = '\0';
    if (len < min_len) {
        fb_errf(err, errlen, "%s: %zu bytes, a secret needs at least %zu", path, len, min_len);
        goto fail;
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;

fail:
    fb_secret_free(buf, len);
    close(fd);
    return -1;
}

/* fb_secret_read -- fb_secret_load that logs every refusal. */
int
fb_secret_read(const char *path, unsigned flags, size_t min_len, uint8_t **out, size_t *out_len)
{
    char err[PATH_MAX + 256]; /* the path and a sentence */

    if (fb_secret_load(path, flags, min_len, out, out_len, err, sizeof(err)) < 0) {
        fb_log_errorx("%s", err);
        return -1;
    }
    return 0;
}

/* fb_secret_free -- wipe and free a buffer from fb_secret_read. */
void
fb_secret_free(uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    sodium_memzero(buf, len + 1);
    free(buf);
}
