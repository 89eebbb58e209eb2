/*
 * test_conf.c -- fbpipe.conf: defaults, every value type, every refusal
 * with its file and line, relative paths, and the checks of fb_conf_verify.
 */
#include <criterion/criterion.h>

#include "common/conf.h"
#include "common/ring.h"
#include "helpers.h"

#define SECRET "0123456789abcdef0123456789abcdef\n"

TestSuite(conf, .init = test_setup, .fini = test_teardown);

/* load_text -- write fbpipe.conf with text and load it. */
static fb_conf_t *
load_text(const char *text)
{
    return fb_conf_load(test_write("fbpipe.conf", text, 0644));
}

/* expect_error -- text must be refused with a message containing want. */
static void
expect_error(const char *text, const char *want)
{
    fb_conf_t *c;

    test_log_buf[0] = '\0';
    c = load_text(text);
    cr_assert_null(c, "accepted:\n%s", text);
    cr_assert(strstr(test_log_buf, want) != NULL, "wanted \"%s\" in:\n%s", want, test_log_buf);
}

Test(conf, empty_file_gives_documented_defaults)
{
    fb_conf_t *c = load_text("; nothing\n[ingester]\nlisten = 127.0.0.1:7777\n");

    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_str_eq(c->pid_file, "/run/fbpipe/fbpiped.pid");
    cr_assert_eq(c->log_level, FB_LOG_INFO);
    cr_assert_eq(c->shutdown_timeout_ms, 30000);
    cr_assert(c->ingester_enabled);
    cr_assert_eq(c->workers, 2);
    cr_assert_eq(c->max_workers, 4, "twice workers by default");
    cr_assert_not(c->allow_plaintext);
    cr_assert_eq(c->ring_size, 64ULL << 20);
    cr_assert_eq(c->max_message_size, 4ULL << 20);
    cr_assert_eq(c->max_batch_records, 10000);
    cr_assert_eq(c->max_calls_per_peer, 64);
    cr_assert_eq(c->kafka_unavailable_after_ms, 30000);
    cr_assert_eq(c->worker_stall_timeout_ms, 10000);
    cr_assert_eq(c->n_jwt_secret_files, 1);
    cr_assert_str_eq(c->jwt_secret_files[0].kid, "");
    cr_assert(strstr(c->jwt_secret_files[0].path, "/jwt.secret") != NULL);
    cr_assert_str_eq(c->jwt_algorithm, "HS256");
    cr_assert_str_eq(c->key_claim, "access_key");
    cr_assert_eq(c->clock_skew_ms, 30000);
    cr_assert(c->require_exp);
    cr_assert_str_eq(c->brokers, "127.0.0.1:9092");
    cr_assert_str_eq(c->topic, "fb-kafka");
    cr_assert_eq(c->partitions, 12);
    cr_assert_eq(c->replication_factor, 1);
    cr_assert_eq(c->message_max_bytes, 1000000);
    cr_assert_str_eq(c->compression, "lz4");
    cr_assert_eq(c->linger_ms, 5);
    cr_assert_eq(c->flush_timeout_ms, 30000);
    cr_assert_not(c->router_enabled);
    cr_assert_eq(c->router_workers, 2);
    cr_assert_str_eq(c->router_group, "fbpipe-router");
    cr_assert_str_eq(c->router_dir, "/var/lib/fbpipe/out");
    cr_assert_eq(c->fsync, FB_FSYNC_BATCH);
    cr_assert_eq(c->max_open_files, 1024);
    cr_assert_eq(c->rotate_size, 100ULL << 20);
    cr_assert_eq(c->rotate_age_ms, 86400000);
    cr_assert_eq(c->rotate_keep, 7);
    cr_assert_str_eq(c->metrics_listen, "");
    fb_conf_free(c);
}

Test(conf, every_type_parses)
{
    fb_conf_t *c = load_text(
        "[main]\nlog_level = debug\nshutdown_timeout = 1m30s\npid_file = run/f.pid\n"
        "[ingester]\nlisten = [::1]:0\nworkers = 3\nmax_workers = 8\nring_size = 128M\n"
        "allow_plaintext = true ; inline comment\nprint_events = on\n"
        "[auth]\njwt_secret_file.old = /etc/old.secret\njwt_secret_file.new = new.secret\n"
        "clock_skew = 0\nissuer = https://issuer\n"
        "[kafka]\nbrokers = 127.0.0.1:1, [::1]:2\ncompression = zstd\nlinger = 0ms\n"
        "[librdkafka]\nqueue.buffering.max.kbytes = 1024\nmessage.timeout.ms = 10000\n"
        "[router]\nenabled = yes\nfsync = 250ms\ndir = out\n"
        "[metrics]\nlisten = 127.0.0.1:9187\n");

    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(c->log_level, FB_LOG_DEBUG);
    cr_assert_eq(c->shutdown_timeout_ms, 90000);
    cr_assert_eq(strncmp(c->pid_file, test_dir, strlen(test_dir)), 0, "relative to the conf");
    cr_assert_eq(c->listen_addr.port, 0);
    cr_assert_eq(c->workers, 3);
    cr_assert_eq(c->max_workers, 8);
    cr_assert_eq(c->ring_size, 128ULL << 20);
    cr_assert(c->allow_plaintext);
    cr_assert(c->ingester_print_events);
    cr_assert_eq(c->n_jwt_secret_files, 3, "default plus two kids");
    cr_assert_str_eq(c->jwt_secret_files[1].kid, "old");
    cr_assert_str_eq(c->jwt_secret_files[1].path, "/etc/old.secret");
    cr_assert_eq(c->jwt_secret_files[1].line, 13);
    cr_assert_str_eq(c->issuer, "https://issuer");
    cr_assert_eq(c->clock_skew_ms, 0);
    cr_assert_str_eq(c->compression, "zstd");
    cr_assert_eq(c->n_rdkafka, 2);
    cr_assert_str_eq(c->rdkafka[1].key, "message.timeout.ms");
    cr_assert_str_eq(c->rdkafka[1].value, "10000");
    cr_assert_eq(c->fsync, FB_FSYNC_INTERVAL);
    cr_assert_eq(c->fsync_interval_ms, 250);
    cr_assert_eq(c->metrics_addr.port, 9187);
    cr_assert_eq(fb_conf_line(c, "router", "dir"), 27);
    cr_assert_eq(fb_conf_line(c, "router", "rotate_keep"), 0);
    fb_conf_free(c);
}

Test(conf, errors_name_file_line_and_reason)
{
    char want[512];

    snprintf(want, sizeof(want), "%s/fbpipe.conf:3: [ingester] ring_size: invalid value \"64Q\"",
             test_dir);
    expect_error("[ingester]\n\nring_size = 64Q\n", want);
    expect_error("[ingester]\nworkers = 0\n", ":2: [ingester] workers: invalid value \"0\": "
                                              "number out of range");
    expect_error("[kafka]\nlinger = 5 s\n", "linger: invalid value \"5 s\"");
    expect_error("[main]\nlog_level = loud\n", "expected error, warning, notice, info or debug");
    expect_error("[ingester]\nallow_plaintext = maybe\n", "expected yes or no");
    expect_error("[router]\nfsync = sometimes\n", "expected none, batch or an interval");
    expect_error("[ingester]\nlisten = 0.0.0.0\n", "listen: invalid value \"0.0.0.0\": missing :port");
    expect_error("[metrics]\nlisten = nowhere\n", "[metrics] listen: invalid value");
}

Test(conf, unknown_duplicate_and_misplaced_keys)
{
    expect_error("[ingester]\nlisten = 127.0.0.1:1\nworkerz = 2\n", ":3: [ingester] workerz: unknown key");
    expect_error("[ingestor]\nworkers = 2\n", ":2: [ingestor] unknown section");
    expect_error("workers = 2\n", ":1: [] workers: setting outside of any section");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\nworkers = 2\nworkers = 3\n",
                 ":4: [ingester] workers: duplicate key (first set on line 3)");
    expect_error("[auth]\njwt_secret_file.a = x\njwt_secret_file.a = y\n",
                 ":3: [auth] jwt_secret_file.a: duplicate key (first set on line 2)");
    expect_error("[auth]\njwt_secret_file.bad/kid = x\n", "key id must be 1-64 characters");
    expect_error("[auth]\njwt_secret_filex = x\n", "jwt_secret_filex: unknown key");
}

Test(conf, syntax_errors_and_long_lines)
{
    char *text = malloc(8192);

    expect_error("[ingester\nworkers = 2\n", ":1: syntax error");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\nthis line has no equals sign\n",
                 ":3: syntax error");
    strcpy(text, "[kafka]\nbrokers = ");
    memset(text + strlen(text), 'a', 5000);
    strcpy(text + strlen("[kafka]\nbrokers = ") + 5000, ":1\n");
    expect_error(text, ":2: line longer than 4093 bytes");
    free(text);
}

Test(conf, cross_key_rules)
{
    expect_error("[ingester]\nworkers = 4\nmax_workers = 2\nlisten = 127.0.0.1:1\n",
                 ":3: [ingester] max_workers: 2 is less than workers (4)");
    expect_error("[ingester]\nlisten = 0.0.0.0:7777\n",
                 "plaintext gRPC on 0.0.0.0:7777, which is not a loopback address");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\ntls_cert = c.pem\n",
                 "tls_cert is set but tls_key is not");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\ntls_client_ca = ca.pem\n",
                 "tls_client_ca needs TLS");
    expect_error("[ingester]\nenabled = no\n", "neither [ingester] nor [router] is enabled");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\n[auth]\njwt_algorithm = none\n",
                 "jwt_algorithm: \"none\" is not one of");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\n[kafka]\ntopic = a/b\n",
                 "topic: \"a/b\" is not a valid Kafka topic name");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\n[kafka]\nbrokers = a:1,b\n",
                 "brokers: \"b\": missing :port");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\n[kafka]\ncompression = brotli\n",
                 "compression: \"brotli\" is not one of");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\nring_size = 2M\n",
                 "take records of at most");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\nworker_stall_timeout = 500ms\n",
                 ":3: [ingester] worker_stall_timeout: 500 ms would kill healthy workers");
    expect_error("[librdkafka]\nacks = 1\n",
                 ":2: [librdkafka] acks: set by fbpipe itself (see [kafka]) and not overridable");
    expect_error("[librdkafka]\nenable.idempotence = false\n", "not overridable");

    /* the same listen with TLS or allow_plaintext is fine */
    fb_conf_t *c = load_text("[ingester]\nlisten = 0.0.0.0:7777\nallow_plaintext = yes\n");
    cr_assert_not_null(c, "%s", test_log_buf);
    fb_conf_free(c);
}

Test(conf, worker_stall_timeout_off_or_at_least_a_second)
{
    fb_conf_t *c = load_text("[ingester]\nlisten = 127.0.0.1:1\nworker_stall_timeout = 0\n");

    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(c->worker_stall_timeout_ms, 0, "no watchdog");
    fb_conf_free(c);
    c = load_text("[ingester]\nlisten = 127.0.0.1:1\nworker_stall_timeout = 1m30s\n");
    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(c->worker_stall_timeout_ms, 90000);
    fb_conf_free(c);
    expect_error("[ingester]\nlisten = 127.0.0.1:1\nworker_stall_timeout = 2h\n",
                 "worker_stall_timeout");
}

Test(conf, reports_every_error_in_one_run)
{
    expect_error("[ingester]\nworkers = x\nring_size = y\n[kafka]\nfoo = 1\n", "workers");
    cr_assert(strstr(test_log_buf, ":3: [ingester] ring_size") != NULL, "%s", test_log_buf);
    cr_assert(strstr(test_log_buf, ":5: [kafka] foo: unknown key") != NULL, "%s", test_log_buf);
}

Test(conf, missing_file)
{
    cr_assert_null(fb_conf_load("/nonexistent/fbpipe.conf"));
    cr_assert(strstr(test_log_buf, "fopen(/nonexistent/fbpipe.conf) failed: No such file") != NULL,
              "%s", test_log_buf);
}

/* write_good_set -- a secret and a key database beside the config. */
static void
write_good_set(void)
{
    test_write("jwt.secret", SECRET, 0600);
    test_write("keys.json", "{\"acme\": {\"AccessKey\": \"acme\", \"EncryptionKey\": \"\", "
                            "\"UserID\": \"u1\", \"targets\": [{\"file\": \"acme.log\"}]}}",
               0640);
}

Test(conf, verify_accepts_a_good_set)
{
    fb_conf_t *c;

    write_good_set();
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n[librdkafka]\nmessage.timeout.ms = 0\n");
    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(fb_conf_verify(c), 0, "%s", test_log_buf);
    cr_assert_eq(test_log_count, 0, "%s", test_log_buf);
    fb_conf_free(c);
}

Test(conf, verify_refuses_what_settings_name)
{
    fb_conf_t *c;

    write_good_set();
    test_write("jwt.secret", SECRET, 0640);
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, "jwt.secret: is accessible by group or others (mode 0640)"),
              "%s", test_log_buf);
    fb_conf_free(c);

    test_log_buf[0] = '\0';
    test_write("jwt.secret", "short\n", 0600);
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, "5 bytes, a secret needs at least 32"), "%s", test_log_buf);
    fb_conf_free(c);

    test_log_buf[0] = '\0';
    write_good_set();
    test_write("keys.json", "{\"a\": {}}", 0644);
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, "keys_file:"), "%s", test_log_buf);
    fb_conf_free(c);

    test_log_buf[0] = '\0';
    write_good_set();
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n[librdkafka]\nno.such.property = 1\n"
                  "batch.num.messages = many\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, ":4: [librdkafka] no.such.property: No such configuration "
                                   "property"), "%s", test_log_buf);
    cr_assert(strstr(test_log_buf, ":5: [librdkafka] batch.num.messages:"), "%s", test_log_buf);
    fb_conf_free(c);

    test_log_buf[0] = '\0';
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n[main]\nuser = no-such-user-fbpipe\n"
                  "[router]\nenabled = yes\ndir = missing-dir\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, ":4: [main] user: no user \"no-such-user-fbpipe\""), "%s",
              test_log_buf);
    cr_assert(strstr(test_log_buf, ":7: [router] dir:"), "%s", test_log_buf);
    cr_assert(strstr(test_log_buf, "missing-dir: No such file or directory"), "%s", test_log_buf);
    fb_conf_free(c);
}

Test(conf, verify_public_keys_for_rs256)
{
    fb_conf_t *c;

    write_good_set();
    test_write("pub.pem", "not a key\n", 0644);
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n[auth]\njwt_algorithm = RS256\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, "jwt_algorithm RS256 needs jwt_public_key_file"), "%s",
              test_log_buf);
    fb_conf_free(c);

    test_log_buf[0] = '\0';
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n[auth]\njwt_algorithm = RS256\n"
                  "jwt_public_key_file = pub.pem\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, "not a PEM public key"), "%s", test_log_buf);
    fb_conf_free(c);

    test_log_buf[0] = '\0';
    test_write("pub.pem", "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", 0644);
    c = load_text("[ingester]\nlisten = 127.0.0.1:7777\n[auth]\njwt_algorithm = RS256\n"
                  "jwt_public_key_file = pub.pem\n");
    cr_assert_eq(fb_conf_verify(c), 0, "%s", test_log_buf);
    fb_conf_free(c);
}

/* found while writing fuzz_conf's oracle (#10): a ring whose lanes are
 * under FB_RING_LANE_MIN passed `fbpiped -t` and then failed to start */
Test(conf, every_ring_accepted_can_be_made)
{
    static const char *const sizes[] = {"1M", "2M", "4M", "16M"};
    static const unsigned workers[] = {1, 4, 8, 32, 128, 256};
    char text[256];
    int refused = 0;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t j = 0; j < sizeof(workers) / sizeof(workers[0]); j++) {
            fb_conf_t *c;
            fb_ring_t *r;

            snprintf(text, sizeof(text),
                     "[ingester]\nlisten = 127.0.0.1:1\nring_size = %s\nworkers = %u\n"
                     "[kafka]\nmessage_max_bytes = 1024\n",
                     sizes[i], workers[j]);
            test_log_buf[0] = '\0';
            c = load_text(text);
            if (c == NULL) {
                cr_assert(strstr(test_log_buf, "bytes the ring needs in each") != NULL ||
                              strstr(test_log_buf, "take records of at most") != NULL,
                          "%s", test_log_buf);
                refused++;
                continue;
            }
            r = fb_ring_create(c->ring_size, (unsigned)c->max_workers);
            cr_assert_not_null(r, "ring_size %s, workers %u accepted, the ring not made: %s",
                               sizes[i], workers[j], test_log_buf);
            fb_ring_destroy(r);
            fb_conf_free(c);
        }
    }
    cr_assert_gt(refused, 0);
    expect_error("[ingester]\nlisten = 127.0.0.1:1\nring_size = 1M\nworkers = 8\n"
                 "[kafka]\nmessage_max_bytes = 1024\n",
                 ":3: [ingester] ring_size: 1048576 bytes over 16 lanes (ingester.max_workers) "
                 "makes lanes of 61440 bytes, less than the 65536 bytes the ring needs in each: "
                 "raise ring_size to 2097152 or lower max_workers");
}
