/*
 * secret.h -- reading secret and key files (JWT secrets, PEM keys).
 *
 * Checks type, size and permissions on the opened descriptor, so what is
 * checked is what is read. Never logs the contents. fb_secret_read logs
 * why it refused a file; fb_secret_load says it in err instead, for the
 * modules that never log.
 */
#ifndef FB_SECRET_H
#define FB_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define FB_SECRET_F_PRIVATE (1u << 0)  /* refuse any group or other access */
#define FB_SECRET_F_STRIP_NL (1u << 1) /* a trailing \n or \r\n is not part of it */

#define FB_SECRET_MIN_HMAC 32          /* bytes of an HS256/384/512 secret */
#define FB_SECRET_MAX (64 * 1024)

int fb_secret_read(const char *path, unsigned flags, size_t min_len, uint8_t **out,
                   size_t *out_len);
int fb_secret_load(const char *path, unsigned flags, size_t min_len, uint8_t **out,
                   size_t *out_len, char *err, size_t errlen);
void fb_secret_free(uint8_t *buf, size_t len);

#endif /* FB_SECRET_H */
