/*
 * fuzz.h -- what the libFuzzer targets of tests/fuzz/ share: inputs put in
 * memory files (memfd) so that loaders that take a path read them through
 * their real entry point, a log sink that checks what a hostile input can
 * make the code log, and a check that aborts (libFuzzer then saves the
 * input as a crash). Header-only, like tests/unit/helpers.h.
 *
 * A target never copies the code it exercises: it calls the project's
 * functions, compiled into libfbfuzz.la with coverage and sanitizers.
 */
#ifndef FB_FUZZ_H
#define FB_FUZZ_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/conf.h"
#include "common/keys.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_fail(const char *fmt, ...) __attribute__((noreturn)) FB_PRINTF(1, 2);

/* fuzz_fail -- an oracle failed: say which and abort (libFuzzer keeps the input). */
static void
fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "fuzz oracle failed: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__VA_ARGS__);                                                                \
    } while (0)

/* fuzz_printable -- s[0..len) is printable ASCII (what fb_log_show makes of
 * hostile bytes), so that it cannot forge or garble a log line. */
static inline bool
fuzz_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* fuzz_memfd -- a memory file of mode; its path (/proc/self/fd/N) in
 * path[64]. Aborts on failure: the target cannot run without it. */
static inline int
fuzz_memfd(const char *name, mode_t mode, char path[64])
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    if (fd < 0 || fchmod(fd, mode) < 0) {
        perror("memfd_create/fchmod");
        abort();
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* fuzz_memfd_put -- the file's whole content becomes data[0..len). */
static inline void
fuzz_memfd_put(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t off = 0;

    if (ftruncate(fd, 0) < 0) {
        perror("ftruncate");
        abort();
    }
    while (off < len) {
        ssize_t n = pwrite(fd, p + off, len - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("pwrite");
            abort();
        }
        off += (size_t)n;
    }
}

/* The log of one run: kept (bounded) so that an oracle can look at it. */
static char fuzz_log_text[65536];
static size_t fuzz_log_len;
static unsigned fuzz_log_errors; /* lines at FB_LOG_ERROR (warnings are not) */
static bool fuzz_log_must_be_printable;

/* fuzz_log_sink -- keeps the lines; with fuzz_log_must_be_printable, a line
 * with a control or non-ASCII byte fails the run. */
static inline void
fuzz_log_sink(fb_log_level_t level, const char *msg, void *arg)
{
    size_t n = strlen(msg);

    (void)arg;
    if (level <= FB_LOG_ERROR)
        fuzz_log_errors++;
    if (fuzz_log_must_be_printable)
        FUZZ_CHECK(fuzz_printable(msg, n), "log line with an unescaped byte: %s", msg);
    if (fuzz_log_len + n + 1 < sizeof(fuzz_log_text)) {
        memcpy(fuzz_log_text + fuzz_log_len, msg, n);
        fuzz_log_len += n;
        fuzz_log_text[fuzz_log_len++] = '\n';
        fuzz_log_text[fuzz_log_len] = '\0';
    }
}

/* fuzz_log_start -- route the log to the sink and forget the last run's lines. */
static inline void
fuzz_log_start(bool printable)
{
    fuzz_log_must_be_printable = printable;
    fuzz_log_len = 0;
    fuzz_log_errors = 0;
    fuzz_log_text[0] = '\0';
    fb_log_set_sink(fuzz_log_sink, NULL);
}

/* The tenants of the targets that need a key database: one without
 * encryption, one with two XChaCha20 keys (k2 current, k1 previous), one
 * with a seed-format AES key (32 characters). */
#define FUZZ_KEY_K2 "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
#define FUZZ_KEY_K1 "6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283"
#define FUZZ_KEY_SEED "0123456789abcdefghijklmnopqrstuv"
#define FUZZ_KEYS_JSON                                                                             \
    "{\"plain\": {\"AccessKey\": \"plain\", \"UserID\": \"u-plain\"},"                             \
    " \"acme\": {\"AccessKey\": \"acme\", \"UserID\": \"u-acme\", \"EncryptionKeys\": ["           \
    "{\"id\": \"k2\", \"key\": \"" FUZZ_KEY_K2 "\"}, {\"id\": \"k1\", \"key\": \"" FUZZ_KEY_K1     \
    "\"}]},"                                                                                       \
    " \"seed\": {\"AccessKey\": \"seed\", \"UserID\": \"u-seed\", \"EncryptionKey\": "             \
    "\"" FUZZ_KEY_SEED "\"}}"

/* fuzz_keydb -- the key database of json, loaded by fb_keydb_load from a
 * memory file; aborts when it is refused. */
static inline fb_keydb_t *
fuzz_keydb(const char *json)
{
    char path[64];
    int fd = fuzz_memfd("keys.json", 0600, path);
    fb_keydb_t *db;

    fuzz_memfd_put(fd, json, strlen(json));
    db = fb_keydb_load(path);
    if (db == NULL) {
        fprintf(stderr, "fuzz: the key database was refused\n");
        abort();
    }
    close(fd);
    return db;
}

/* The JWT set-up of fuzz_auth (and of the seeds made for it): handle A is
 * HS256 with one secret and no kid; handle B is HS512 with kids k1 and k2,
 * an issuer and an audience. The key database has bound and unbound,
 * disabled and revoking tenants. */
#define FUZZ_NOW INT64_C(1700000000)
#define FUZZ_SECRET_A "0123456789abcdef0123456789abcdef"
#define FUZZ_SECRET_K1 "k1-secret-k1-secret-k1-secret-k1-secret"
#define FUZZ_SECRET_K2 "k2-secret-k2-secret-k2-secret-k2-secret-k2-secret-k2"
/* The unbound tokens (no access_key claim) of fuzz_auth's seeds
 * a-signed-unbound (HS256, FUZZ_SECRET_A) and b-signed-k2 (HS512,
 * FUZZ_SECRET_K2), and their SHA-256 fingerprints: the tenants of
 * FUZZ_AUTH_KEYS_JSON list these two only. */
#define FUZZ_UNBOUND_TOKEN_A                                                                       \
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDM2MDAsImlhdCI6MTY5OTk5OTAwMCwicm9sZ"   \
    "SI6ImFnZW50In0.UoIrKwE-4zT-mmAn4DeVsH5eXxlT9yHSowLqZ-88gsU"
#define FUZZ_UNBOUND_SHA256_A "f6f9034a9652f48671669a2c3814772b93d573f46739c62c072d83172e8ebe7f"
#define FUZZ_UNBOUND_SHA256_B "afbb79b63b5a57d80ed7683000709f50f4ba514920843a7f1395d27850e3a6e3"
#define FUZZ_UNBOUND_LIST                                                                          \
    "\"unbound_tokens_sha256\": [\"" FUZZ_UNBOUND_SHA256_A "\", \"" FUZZ_UNBOUND_SHA256_B "\"]"
#define FUZZ_AUTH_KEYS_JSON                                                                        \
    "{\"t1\": {\"AccessKey\": \"t1\"}, \"t2\": {\"AccessKey\": \"t2\"},"                           \
    " \"open\": {\"AccessKey\": \"open\", " FUZZ_UNBOUND_LIST "},"                                 \
    " \"off\": {\"AccessKey\": \"off\", \"disabled\": true, " FUZZ_UNBOUND_LIST "},"               \
    " \"rev\": {\"AccessKey\": \"rev\", \"tokens_not_before\": 1699990000, " FUZZ_UNBOUND_LIST     \
    "}}"

/* fuzz_tenants -- the key database of FUZZ_KEYS_JSON with "plain" in
 * t[0] and the tenant named second in t[1]; aborts when either is missing. */
static inline fb_keydb_t *
fuzz_tenants(const char *second, const fb_tenant_t *t[2])
{
    fb_keydb_t *db = fuzz_keydb(FUZZ_KEYS_JSON);

    t[0] = fb_keydb_find(db, "plain", 5);
    t[1] = fb_keydb_find(db, second, strlen(second));
    if (t[0] == NULL || t[1] == NULL)
        abort();
    return db;
}

/* fuzz_secret_file -- a memory file (0600) holding s and a newline; its
 * path. Left open: fb_auth_new reads it. */
static inline void
fuzz_secret_file(const char *s, char path[64])
{
    int fd = fuzz_memfd("jwt.secret", 0600, path);
    char text[128];

    snprintf(text, sizeof(text), "%s\n", s);
    fuzz_memfd_put(fd, text, strlen(text));
}

/* fuzz_auth_from -- fb_auth_new on a configuration with these [auth]
 * lines, loaded by fb_conf_load from a memory file; aborts if refused. */
static inline fb_auth_t *
fuzz_auth_from(const char *auth_lines)
{
    char path[64], text[1024];
    int fd = fuzz_memfd("fbpipe.conf", 0644, path);
    fb_conf_t *c;
    fb_auth_t *a;

    snprintf(text, sizeof(text), "[ingester]\nlisten = 127.0.0.1:7777\n[auth]\n%s", auth_lines);
    fuzz_memfd_put(fd, text, strlen(text));
    c = fb_conf_load(path);
    a = c != NULL ? fb_auth_new(c) : NULL;
    if (a == NULL) {
        fprintf(stderr, "fuzz: the [auth] configuration was refused:\n%s", fuzz_log_text);
        abort();
    }
    fb_conf_free(c);
    close(fd);
    return a;
}

/* fuzz_auth_handles -- handles A and B into a[2]. */
static inline void
fuzz_auth_handles(fb_auth_t *a[2])
{
    char s_a[64], s_k1[64], s_k2[64], lines[512];

    fuzz_secret_file(FUZZ_SECRET_A, s_a);
    fuzz_secret_file(FUZZ_SECRET_K1, s_k1);
    fuzz_secret_file(FUZZ_SECRET_K2, s_k2);
    snprintf(lines, sizeof(lines), "jwt_secret_file = %s\n", s_a);
    a[0] = fuzz_auth_from(lines);
    snprintf(lines, sizeof(lines),
             "jwt_algorithm = HS512\njwt_secret_file =\njwt_secret_file.k1 = %s\n"
             "jwt_secret_file.k2 = %s\nissuer = fbpipe-test\naudience = ingest\n",
             s_k1, s_k2);
    a[1] = fuzz_auth_from(lines);
}

#endif /* FB_FUZZ_H */
