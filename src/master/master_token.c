/*
 * master_token.c -- `fbpiped token`: mint one token bound to an access key,
 * or print the fingerprint of a token (--fingerprint) for the key
 * database's unbound_tokens_sha256.
 *
 * Loads the configuration, the key database and the token keys as whoever
 * runs it (no privilege is gained or dropped here), checks that the access
 * key exists and is enabled and that --kid names a configured key, and
 * prints one token signed by fb_auth_mint on stdout; every refusal is one
 * line on stderr. --fingerprint reads no configuration and no key: it
 * hashes the token it is given (on the command line, or one line of
 * standard input with "-", which keeps the token out of ps and shell
 * histories). It must never print key material, not even in an error;
 * never start the daemon or any child, write a pid file or open a socket;
 * and never initialise gRPC or librdkafka.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/conf.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/units.h"
#include "master/master.h"

#define TOKEN_EXPIRY_DEFAULT 3600 /* seconds: one hour */
#define TOKEN_EXPIRY_MAX 31536000 /* seconds: 365 days */
#define TOKEN_SHOW_MAX 64         /* bytes of a command-line value shown in an error */

#define token_err(...) fb_cmd_err("token", __VA_ARGS__)
static void token_usage(FILE *fp);
static void token_sink(fb_log_level_t level, const char *msg, void *arg);
static int token_twice(const char *option);
static int token_readable(const char *path, const char *what, const char *kid);
static int token_check_files(const fb_conf_t *conf, bool hs);
static int token_check_kid(const fb_conf_t *conf, bool hs, const char *kid);
static int token_check_tenant(const fb_keydb_t *db, const char *access_key, int64_t now);
static int token_fingerprint(const char *arg);

/* token_usage -- the synopsis of `fbpiped token`. */
static void
token_usage(FILE *fp)
{
    fprintf(fp,
            "usage: fbpiped token --access-key KEY [--expiry SECONDS] [--kid ID] [-c FILE]\n"
            "       fbpiped token --fingerprint TOKEN|-\n"
            "  --access-key KEY   the access key the token is bound to (key database)\n"
            "  --expiry SECONDS   lifetime, 1 to %d (default %d)\n"
            "  --kid ID           sign with the key of this kid (jwt_secret_file.ID,\n"
            "                     or jwt_public_key_file.ID with RS256/ES256)\n"
            "  -c FILE            configuration file (default %s/fbpipe.conf)\n"
            "  --fingerprint TOKEN  print the SHA-256 of TOKEN (\"-\": one line of standard\n"
            "                     input) for unbound_tokens_sha256 in the key database\n",
            TOKEN_EXPIRY_MAX, TOKEN_EXPIRY_DEFAULT, FB_SYSCONFDIR);
}

/* token_sink -- the log lines of the modules used here, one line each on stderr. */
static void
token_sink(fb_log_level_t level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    fprintf(stderr, "fbpiped token: %s\n", msg);
}


/* token_twice -- an option given twice is a usage error, not "the last one wins". */
static int
token_twice(const char *option)
{
    token_err("option %s is given twice", option);
    token_usage(stderr);
    return FB_EXIT_USAGE;
}

/* token_readable -- open path for reading as the caller, only to say clearly
 * why it cannot be read (owner and mode); the modules read it themselves. */
static int
token_readable(const char *path, const char *what, const char *kid)
{
    struct stat st;
    int fd, e;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    e = errno;
    if (e == EACCES && stat(path, &st) == 0) {
        token_err("cannot read %s ([auth] %s%s%s) as uid %ld: %s (owner uid %ld, mode %04o); "
                  "run fbpiped token as a user who may read it, such as its owner",
                  path, what, kid[0] ? "." : "", kid, (long)geteuid(), strerror(e),
                  (long)st.st_uid, (unsigned)(st.st_mode & 07777));
    } else {
        token_err("cannot read %s ([auth] %s%s%s) as uid %ld: %s", path, what, kid[0] ? "." : "",
                  kid, (long)geteuid(), strerror(e));
    }
    return -1;
}

/* token_check_files -- every file fb_auth_new and fb_keydb_load will read. */
static int
token_check_files(const fb_conf_t *conf, bool hs)
{
    const fb_conf_keyfile_t *files = hs ? conf->jwt_secret_files : conf->jwt_public_key_files;
    size_t n = hs ? conf->n_jwt_secret_files : conf->n_jwt_public_key_files;
    const char *what = hs ? "jwt_secret_file" : "jwt_public_key_file";
    int errors = 0;

    if (n == 0) {
        token_err("%s: [auth] jwt_algorithm %s needs %s", conf->path, conf->jwt_algorithm, what);
        return -1;
    }
    if (!hs && conf->jwt_private_key_file[0] == '\0') {
        token_err("%s: [auth] jwt_algorithm %s signs with jwt_private_key_file, which is not "
                  "set", conf->path, conf->jwt_algorithm);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        errors += token_readable(files[i].path, what, files[i].kid) < 0;
    if (!hs)
        errors += token_readable(conf->jwt_private_key_file, "jwt_private_key_file", "") < 0;
    errors += token_readable(conf->keys_file, "keys_file", "") < 0;
    return errors ? -1 : 0;
}

/* token_check_kid -- kid ("" = none given) names a key fb_auth_mint will sign for. */
static int
token_check_kid(const fb_conf_t *conf, bool hs, const char *kid)
{
    const fb_conf_keyfile_t *files = hs ? conf->jwt_secret_files : conf->jwt_public_key_files;
    size_t n = hs ? conf->n_jwt_secret_files : conf->n_jwt_public_key_files;
    const char *what = hs ? "jwt_secret_file" : "jwt_public_key_file";
    char kids[512] = "";
    size_t used = 0;
    bool plain = false;

    for (size_t i = 0; i < n; i++) {
        if (kid[0] != '\0' && strcmp(files[i].kid, kid) == 0)
            return 0;
        if (files[i].kid[0] == '\0') {
            plain = true;
            continue;
        }
        if (used < sizeof(kids)) {
            int w = snprintf(kids + used, sizeof(kids) - used, "%s%s", used ? ", " : "",
                             files[i].kid);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    if (kid[0] == '\0') {
        if (plain || n == 1)
            return 0;
        token_err("several %s keys have kids (%s) and none is without one: name one with "
                  "--kid", what, kids);
        return -1;
    }
    if (kids[0] == '\0')
        token_err("--kid %s: no key has this kid; %s configures only a key without kid "
                  "(%s)", kid, conf->path, what);
    else
        token_err("--kid %s: no key has this kid; the configured kids are: %s (%s.<kid>)%s",
                  kid, kids, what, plain ? ", and one key without kid" : "");
    return -1;
}

/* token_check_tenant -- access_key is in db, enabled, and a token minted now
 * is not already revoked. */
static int
token_check_tenant(const fb_keydb_t *db, const char *access_key, int64_t now)
{
    const fb_tenant_t *t = fb_keydb_find(db, access_key, strlen(access_key));

    if (t == NULL) {
        token_err("access key \"%s\" is not in the key database %s", access_key, db->path);
        return -1;
    }
    if (t->disabled) {
        token_err("access key \"%s\" is disabled in %s (\"disabled\": true): the ingester "
                  "would refuse every token for it", access_key, db->path);
        return -1;
    }
    if (t->tokens_not_before > now) {
        token_err("access key \"%s\" revokes tokens issued before %lld (tokens_not_before in "
                  "%s), %lld s from now: a token issued now would be refused",
                  access_key, (long long)t->tokens_not_before, db->path,
                  (long long)(t->tokens_not_before - now));
        return -1;
    }
    return 0;
}

/* token_fingerprint -- --fingerprint: the hex SHA-256 of the token arg
 * ("-": the first line of standard input) on stdout; an FB_EXIT_* status. */
static int
token_fingerprint(const char *arg)
{
    char line[FB_AUTH_HEADER_MAX + 2], hex[2 * FB_TOKEN_SHA256_LEN + 1];
    const char *tok = arg, *dot;
    size_t len = 0, n_dots = 0;
    int c = 0, rc = FB_EXIT_USAGE;

    if (strcmp(arg, "-") == 0) {
        /* up to the newline; at most the longest token the ingester reads */
        while (len < sizeof(line) - 1 && (c = getchar()) != EOF && c != '\n') {
            if (c == '\0') {
                token_err("--fingerprint -: the token on standard input contains a NUL byte");
                goto done;
            }
            line[len++] = (char)c;
        }
        if (ferror(stdin)) {
            token_err("--fingerprint -: reading standard input failed");
            goto done;
        }
        if (len == sizeof(line) - 1 && c != '\n' && c != EOF) {
            token_err("--fingerprint -: the line on standard input is longer than %d bytes, "
                      "more than the ingester reads", FB_AUTH_HEADER_MAX);
            goto done;
        }
        if (len > 0 && line[len - 1] == '\r')
            len--;
        line[len] = '\0';
        tok = line;
    }
    len = strlen(tok);
    /* "Bearer <token>" pasted from a header: the token is what is listed */
    if (len >= 7 && strncasecmp(tok, "bearer", 6) == 0 && (tok[6] == ' ' || tok[6] == '\t') &&
        fb_auth_bearer_token(tok, len, &tok, &len) < 0) {
        token_err("--fingerprint: no token after Bearer");
        goto done;
    }
    if (len == 0 || len > FB_AUTH_HEADER_MAX) {
        token_err("--fingerprint: a token is 1 to %d bytes, not %zu", FB_AUTH_HEADER_MAX, len);
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)tok[i];
        if (!((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
              b == '-' || b == '_' || b == '.')) {
            token_err("--fingerprint: the token has a byte that is not base64url or '.' at "
                      "offset %zu: a JWT is header.payload.signature", i);
            goto done;
        }
        n_dots += b == '.';
    }
    dot = memchr(tok, '.', len);
    if (n_dots != 2 || dot == tok || dot[1] == '.') {
        token_err("--fingerprint: the token has %zu parts%s, not header.payload.signature",
                  n_dots + 1, n_dots == 2 ? " and an empty header or payload" : "");
        goto done;
    }
    fb_auth_fingerprint(tok, len, hex);
    if (printf("%s\n", hex) < 0 || fflush(stdout) != 0) {
        token_err("writing the fingerprint to standard output failed: %s", strerror(errno));
        rc = FB_EXIT_FAILURE;
        goto done;
    }
    rc = FB_EXIT_OK;

done:
    explicit_bzero(line, sizeof(line)); /* a credential, though not key material */
    return rc;
}

/* fb_token_main -- `fbpiped token ...` (argv[0] is "token"); an FB_EXIT_* status. */
int
fb_token_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"access-key", required_argument, NULL, 'k'},
        {"expiry", required_argument, NULL, 'e'},
        {"kid", required_argument, NULL, 'i'},
        {"config", required_argument, NULL, 'c'},
        {"fingerprint", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf_path = FB_SYSCONFDIR "/fbpipe.conf";
    const char *access_key = NULL, *expiry_arg = NULL, *kid = NULL, *fingerprint = NULL, *why;
    bool conf_given = false;
    char shown[TOKEN_SHOW_MAX * 4 + 4];
    fb_conf_t *conf = NULL;
    fb_keydb_t *db = NULL;
    fb_auth_t *auth = NULL;
    uint64_t expiry = TOKEN_EXPIRY_DEFAULT;
    char *token = NULL;
    int64_t now;
    bool hs;
    int c, rc = FB_EXIT_FAILURE;

    /* modules log through here: one plain line each, no timestamps */
    fb_log_set_sink(token_sink, NULL);
    fb_log_set_level(FB_LOG_WARNING);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (access_key != NULL)
                return token_twice("--access-key");
            access_key = optarg;
            break;
        case 'e':
            if (expiry_arg != NULL)
                return token_twice("--expiry");
            expiry_arg = optarg;
            break;
        case 'i':
            if (kid != NULL)
                return token_twice("--kid");
            kid = optarg;
            break;
        case 'c':
            conf_path = optarg;
            conf_given = true;
            break;
        case 'f':
            if (fingerprint != NULL)
                return token_twice("--fingerprint");
            fingerprint = optarg;
            break;
        case 'h':
            token_usage(stdout);
            return FB_EXIT_OK;
        default:
            return fb_cmd_bad_option("token", c, argv, token_usage);
        }
    }
    if (fb_cmd_no_operands("token", argc, argv, token_usage) != 0)
        return FB_EXIT_USAGE;
    if (fingerprint != NULL) {
        if (access_key != NULL || expiry_arg != NULL || kid != NULL || conf_given) {
            token_err("--fingerprint takes no other option: it reads no configuration and "
                      "mints nothing");
            token_usage(stderr);
            return FB_EXIT_USAGE;
        }
        return token_fingerprint(fingerprint);
    }
    if (access_key == NULL) {
        token_err("--access-key is required");
        token_usage(stderr);
        return FB_EXIT_USAGE;
    }
    /* values are shown escaped: they may hold any byte */
    if (!fb_access_key_valid(access_key, strlen(access_key), &why)) {
        fb_log_show(shown, sizeof(shown), access_key, strlen(access_key), TOKEN_SHOW_MAX);
        token_err("--access-key \"%s\" is not an access key: it %s", shown, why);
        return FB_EXIT_USAGE;
    }
    if (expiry_arg != NULL) {
        fb_log_show(shown, sizeof(shown), expiry_arg, strlen(expiry_arg), TOKEN_SHOW_MAX);
        if (fb_parse_uint(expiry_arg, 0, UINT64_MAX, &expiry, &why) < 0) {
            token_err("--expiry \"%s\" is not a whole number of seconds: %s", shown, why);
            return FB_EXIT_USAGE;
        }
        if (expiry < 1 || expiry > TOKEN_EXPIRY_MAX) {
            token_err("--expiry %s is out of range: 1 to %d seconds (365 days)", shown,
                      TOKEN_EXPIRY_MAX);
            return FB_EXIT_USAGE;
        }
    }
    if (kid != NULL && !fb_key_id_valid(kid, strlen(kid))) {
        fb_log_show(shown, sizeof(shown), kid, strlen(kid), TOKEN_SHOW_MAX);
        token_err("--kid \"%s\" is not a key id: 1 to 64 characters of [A-Za-z0-9._-]", shown);
        return FB_EXIT_USAGE;
    }

    conf = fb_conf_load(conf_path);
    if (conf == NULL) {
        token_err("%s: configuration refused (see above)", conf_path);
        return FB_EXIT_CONFIG;
    }
    hs = strncmp(conf->jwt_algorithm, "HS", 2) == 0;
    if (token_check_files(conf, hs) < 0) {
        rc = FB_EXIT_CONFIG;
        goto done;
    }
    db = fb_keydb_load(conf->keys_file);
    if (db == NULL) {
        token_err("key database %s refused (see above)", conf->keys_file);
        rc = FB_EXIT_CONFIG;
        goto done;
    }
    now = (int64_t)time(NULL);
    if (token_check_tenant(db, access_key, now) < 0 ||
        token_check_kid(conf, hs, kid != NULL ? kid : "") < 0)
        goto done;
    auth = fb_auth_new(conf);
    if (auth == NULL) {
        token_err("%s: the [auth] keys were refused (see above)", conf_path);
        rc = FB_EXIT_CONFIG;
        goto done;
    }
    if (fb_auth_mint(auth, access_key, now, (int64_t)expiry, kid, &token) < 0) {
        token_err("no token minted for access key \"%s\" (see above)", access_key);
        goto done;
    }
    if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
        token_err("writing the token to standard output failed: %s", strerror(errno));
        goto done;
    }
    rc = FB_EXIT_OK;
    goto done;

done:
    if (token != NULL) {
        explicit_bzero(token, strlen(token)); /* a credential, though not key material */
        free(token);
    }
    fb_auth_free(auth);
    fb_keydb_free(db);
    fb_conf_free(conf);
    return rc;
}
