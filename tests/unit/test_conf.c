/*
 * test_conf.c -- fbpipe.conf: defaults, every value type, every refusal
 * with its file and line, relative paths, and the checks of fb_conf_verify.
 */
#include <criterion/criterion.h>

#include "common/conf.h"
#include "common/keys.h"
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
    cr_assert_eq(c->partition_by, FB_PARTITION_KEY);
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
    cr_assert_not(c->router_dedupe);
    cr_assert_eq(c->dedupe_window, 100000);
    cr_assert_eq(c->dedupe_memory, 256ULL << 20);
    cr_assert_eq(c->dedupe_load_max, 16ULL << 20);
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
        "partition_by = key_agent\n"
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
    cr_assert_eq(c->partition_by, FB_PARTITION_KEY_AGENT);
    cr_assert_eq(c->n_rdkafka, 2);
    cr_assert_str_eq(c->rdkafka[1].key, "message.timeout.ms");
    cr_assert_str_eq(c->rdkafka[1].value, "10000");
    cr_assert_eq(c->fsync, FB_FSYNC_INTERVAL);
    cr_assert_eq(c->fsync_interval_ms, 250);
    cr_assert_eq(c->metrics_addr.port, 9187);
    cr_assert_eq(fb_conf_line(c, "router", "dir"), 28); /* partition_by is line 21 */
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
    expect_error("[ingester]\nlisten = 127.0.0.1:1\n[kafka]\npartition_by = agent\n",
                 ":4: [kafka] partition_by: invalid value \"agent\": expected key or key_agent");
    expect_error("[ingester]\nlisten = 127.0.0.1:1\n[kafka]\npartition_by = key_agent\n"
                 "[librdkafka]\npartitioner = murmur2\n",
                 ":6: [librdkafka] partitioner: kafka.partition_by = key_agent chooses the "
                 "partition itself (line 4)");
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

#define L "[ingester]\nlisten = 127.0.0.1:7777\n" /* lines 1-2 of every target case */

Test(conf, targets_load_with_their_defaults)
{
    const fb_conf_target_t *t;
    fb_conf_t *c = load_text(L "[target archive]\ntype = s3\nbucket = acme-logs\n"
                               "credentials_file = s3.cred\nmax_bytes = 8M\nmax_age = 10m\n"
                               "[target minio]\ntype = s3\nbucket = logs\nregion = eu-west-3\n"
                               "endpoint = http://127.0.0.1:9000/\npath_style = yes\n"
                               "[target search]\ntype = elasticsearch\nurl = https://es:9200\n"
                               "api_key_file = /etc/es.key\ngzip = yes\ntimeout = 2m\n"
                               "[target hook]\ntype = http\nurl = http://[::1]:8080/in?x=1\n"
                               "header = X-One: 1\nheader = X-Two:two words\n"
                               "[router]\ntargets = file\n");

    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(c->n_targets, 4);

    t = &c->targets[0];
    cr_assert_str_eq(t->name, "archive");
    cr_assert_eq(t->type, FB_TARGET_S3);
    cr_assert_eq(t->line, 3);
    cr_assert_str_eq(t->bucket, "acme-logs");
    cr_assert_str_eq(t->region, "us-east-1");
    cr_assert_str_eq(t->endpoint, "https://s3.us-east-1.amazonaws.com");
    cr_assert_not(t->path_style);
    cr_assert_str_eq(t->prefix, "");
    cr_assert_eq(strncmp(t->credentials_file, test_dir, strlen(test_dir)), 0,
                 "relative to the conf: %s", t->credentials_file);
    cr_assert_str_eq(t->ca_file, "");
    cr_assert_not(t->gzip);
    cr_assert_eq(t->timeout_ms, 30000);
    cr_assert_eq(t->connect_timeout_ms, 10000);
    cr_assert_eq(t->buffer_max, 256ULL << 20);
    cr_assert_eq(t->max_records, 10000);
    cr_assert_eq(t->max_bytes, 8ULL << 20);
    cr_assert_eq(t->max_age_ms, 600000);
    cr_assert_eq(t->flush_after_ms, 60000);
    cr_assert_eq(t->n_headers, 0);

    t = &c->targets[1];
    cr_assert_str_eq(t->endpoint, "http://127.0.0.1:9000/");
    cr_assert_str_eq(t->region, "eu-west-3");
    cr_assert(t->path_style);

    t = &c->targets[2];
    cr_assert_eq(t->type, FB_TARGET_ELASTICSEARCH);
    cr_assert_str_eq(t->url, "https://es:9200");
    cr_assert_str_eq(t->index, "logs-{key}-%Y.%m.%d");
    cr_assert_str_eq(t->api_key_file, "/etc/es.key");
    cr_assert_str_eq(t->credentials_file, "");
    cr_assert(t->gzip);
    cr_assert_eq(t->timeout_ms, 120000);

    t = &c->targets[3];
    cr_assert_eq(t->type, FB_TARGET_HTTP);
    cr_assert_eq(t->line, 21);
    cr_assert_eq(t->n_headers, 2);
    cr_assert_str_eq(t->headers[0], "X-One: 1");
    cr_assert_str_eq(t->headers[1], "X-Two: two words");

    cr_assert_eq(c->n_router_targets, 1);
    cr_assert_str_eq(c->router_targets[0], "file");
    fb_conf_free(c);
}

Test(conf, target_find_and_router_targets)
{
    const fb_conf_target_t *t;
    fb_conf_t *c = load_text(L);

    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(c->n_targets, 0);
    cr_assert_eq(c->n_router_targets, 1, "default: file");
    cr_assert_str_eq(c->router_targets[0], "file");
    t = fb_conf_target_find(c, "file");
    cr_assert_not_null(t);
    cr_assert_str_eq(t->name, "file");
    cr_assert_eq(t->type, FB_TARGET_FILE);
    cr_assert_null(fb_conf_target_find(c, "archive"));
    cr_assert_null(fb_conf_target_find(c, NULL));
    fb_conf_free(c);

    c = load_text(L "[target archive]\ntype = s3\nbucket = b-1\n"
                    "[router]\ntargets = file , file2,file3 file4\n");
    cr_assert_null(c, "file2..4 are no targets");
    cr_assert(strstr(test_log_buf, ":7: [router] targets: \"file2\" is not a [target] of this "
                                   "file"), "%s", test_log_buf);
    cr_assert(strstr(test_log_buf, "\"file4\" is not a [target]"), "%s", test_log_buf);

    c = load_text(L "[target archive]\ntype = s3\nbucket = b-1\n");
    cr_assert_not_null(c, "%s", test_log_buf);
    t = fb_conf_target_find(c, "archive");
    cr_assert_eq(t, &c->targets[0]);
    cr_assert_null(fb_conf_target_find(c, "archiv"));
    cr_assert_str_eq(fb_conf_target_type_name(FB_TARGET_ELASTICSEARCH), "elasticsearch");
    fb_conf_free(c);
}

Test(conf, target_errors_name_line_section_and_key)
{
    expect_error(L "[target a]\ntype = ftp\n",
                 ":4: [target a] type: invalid value \"ftp\": expected s3, elasticsearch or http");
    expect_error(L "[target a]\ntype = file\n", "file is the built-in target");
    expect_error(L "[target a]\nbucket = b-1\n",
                 ":3: [target a] type: missing: one of s3, elasticsearch or http");
    expect_error(L "[target a]\n", ":3: [target a] type: missing");
    expect_error(L "[target a]\ntype = s3\n",
                 ":3: [target a] bucket: missing: an s3 target needs its bucket");
    expect_error(L "[target a]\ntype = http\n",
                 ":3: [target a] url: missing: an http target needs its url");
    expect_error(L "[target a]\ntype = elasticsearch\n",
                 ":3: [target a] url: missing: an elasticsearch target needs its url");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nheader = X: y\n",
                 ":6: [target a] header: not a key of s3 targets (only of http)");
    expect_error(L "[target a]\ntype = http\nurl = http://h\nprefix = p\n",
                 ":6: [target a] prefix: not a key of http targets (only of s3)");
    expect_error(L "[target a]\ntype = http\nurl = http://h\napi_key_file = k\n",
                 "api_key_file: not a key of http targets (only of elasticsearch)");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nbuckett = x\n",
                 ":6: [target a] buckett: unknown key");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nbucket = b-2\n",
                 ":6: [target a] bucket: duplicate key (first set on line 5)");
    expect_error(L "[target a]\ntype = s3\ntype = http\n",
                 ":5: [target a] type: duplicate key (first set on line 4)");
    expect_error(L "[target a]\ntype = s3\nbucket = b\n", "bucket: \"b\" is not a bucket name");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nregion = EU\n",
                 "region: \"EU\" is not a region name");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nprefix = /x\n", "prefix: \"/x\" is not");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nprefix = x/../y\n", "prefix:");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nendpoint = minio:9000\n",
                 ":6: [target a] endpoint: \"minio:9000\" must start with http:// or https://");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nendpoint = https://\n", "has no host");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nendpoint = https://:9000\n",
                 "has no host");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nendpoint = https://h:99999\n",
                 "has a port that is not a number from 1 to 65535");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nendpoint = https://h/b\n",
                 "must be scheme://host[:port] alone");
    expect_error(L "[target a]\ntype = http\nurl = https://u:pw@h/\n",
                 "url: \"(not shown)\" holds a user or password: they come from credentials_file");
    cr_assert_null(strstr(test_log_buf, "pw@"), "a password is never shown: %s", test_log_buf);
    expect_error(L "[target a]\ntype = http\nurl = https://h/#x\n", "has a fragment");
    expect_error(L "[target a]\ntype = elasticsearch\nurl = https://h\nindex = Logs-%Y\n",
                 ":6: [target a] index: \"Logs-%Y\" must not be empty and must be lowercase");
    expect_error(L "[target a]\ntype = elasticsearch\nurl = https://h\nindex =\n",
                 ":6: [target a] index: \"\" must not be empty");
    expect_error(L "[target a]\ntype = elasticsearch\nurl = https://h\ncredentials_file = c\n"
                   "api_key_file = k\n",
                 ":7: [target a] api_key_file: set with credentials_file (line 6): choose one");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nmax_records = 0\n",
                 "max_records: invalid value \"0\"");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nmax_bytes = 2G\n",
                 "max_bytes: invalid value \"2G\": size out of range");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\nbuffer_max = 512K\n",
                 "buffer_max: invalid value \"512K\": size out of range");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\ntimeout = 5s\nconnect_timeout = 6s\n",
                 "connect_timeout: 6000 ms is longer than timeout (5000 ms)");
    expect_error(L "[target a]\ntype = s3\nbucket = b-1\n[target a]\ntype = s3\nbucket = b-2\n",
                 ":6: [target a] defined twice (first on line 3)");
    expect_error(L "[target file]\ntype = s3\n", ":3: [target file] \"file\" is the built-in");
    expect_error(L "[target Archive]\ntype = s3\n", "target name has a character outside");
    expect_error(L "[target]\ntype = s3\n", ":3: [target] a target needs a name");
    expect_error(L "[router]\ntargets = file, file\n", "a target is listed twice");
    expect_error(L "[router]\ntargets = ,\n", "name at least one target");
    expect_error(L "[router]\ntargets = archive\n",
                 ":4: [router] targets: \"archive\" is not a [target] of this file");
}

Test(conf, target_headers)
{
    static const char *const bad[] = {
        "Content-Type: x",    "content-length: 1", "Content-Encoding: gzip", "HOST: h",
        "Transfer-Encoding: chunked", "Idempotency-Key: k", "authorization: Basic x",
        "X Y: z",             ": z",                "X-Y z",                  "X-Y\x01: z",
        "X-Y: a\x01" "b",     "(X): y",
    };
    char text[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), L "[target a]\ntype = http\nurl = https://h\nheader = %s\n",
                 bad[i]);
        expect_error(text, ":6: [target a] header: invalid \"");
    }
    expect_error(L "[target a]\ntype = http\nurl = https://h\nheader = Authorization: Bearer s3kr1t\n",
                 "Authorization comes from credentials_file");
    cr_assert_null(strstr(test_log_buf, "s3kr1t"), "a header's value is never shown: %s",
                   test_log_buf);
}

Test(conf, verify_target_files_and_the_keys_targets)
{
    fb_conf_t *c;

    write_good_set();
    test_write("s3.cred", "AKID:secret\n", 0644);
    test_write("es.cred", "no colon\n", 0600);
    test_write("es.key", "abc\n", 0600);
    c = load_text(L "[target archive]\ntype = s3\nbucket = b-1\ncredentials_file = s3.cred\n"
                    "[target search]\ntype = elasticsearch\nurl = https://h\n"
                    "credentials_file = es.cred\nca_file = none.pem\n"
                    "[target k]\ntype = elasticsearch\nurl = https://h\napi_key_file = es.key\n");
    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, ":6: [target archive] credentials_file: "), "%s", test_log_buf);
    cr_assert(strstr(test_log_buf, "s3.cred: is accessible by group or others (mode 0644)"), "%s",
              test_log_buf);
    cr_assert(strstr(test_log_buf, ":10: [target search] credentials_file: "), "%s", test_log_buf);
    cr_assert(strstr(test_log_buf, "es.cred: must hold user:password"), "%s", test_log_buf);
    cr_assert(strstr(test_log_buf, ":11: [target search] ca_file: open("), "%s", test_log_buf);
    cr_assert_null(strstr(test_log_buf, "[target k]"), "%s", test_log_buf);
    fb_conf_free(c);

    /* all good: an s3 file of two lines, a CA */
    test_log_buf[0] = '\0';
    test_write("s3.cred", "AKID\nsecret\n", 0600);
    test_write("es.cred", "user:pw\n", 0600);
    test_write("none.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644);
    c = load_text(L "[target archive]\ntype = s3\nbucket = b-1\ncredentials_file = s3.cred\n"
                    "[target search]\ntype = elasticsearch\nurl = https://h\n"
                    "credentials_file = es.cred\nca_file = none.pem\n");
    cr_assert_eq(fb_conf_verify(c), 0, "%s", test_log_buf);
    fb_conf_free(c);

    /* a key naming an unknown target, a configured one, and the old form */
    test_log_buf[0] = '\0';
    test_write("keys.json", "{\"acme\": {\"targets\": [\"file\", \"archive\", \"nope\"]},"
                            " \"old\": {\"targets\": [{\"file\": \"old.log\"}]}}", 0640);
    c = load_text(L "[target archive]\ntype = s3\nbucket = b-1\n");
    cr_assert_eq(fb_conf_verify(c), -1);
    cr_assert(strstr(test_log_buf, "keys.json: key \"acme\": targets: \"nope\" is not a [target] "
                                   "of "), "%s", test_log_buf);
    cr_assert_null(strstr(test_log_buf, "\"archive\""), "%s", test_log_buf);
    cr_assert_null(strstr(test_log_buf, "key \"old\""), "%s", test_log_buf);
    fb_conf_free(c);

    test_log_buf[0] = '\0';
    test_write("keys.json", "{\"old\": {\"targets\": [{\"file\": \"old.log\"}]}, \"new\": "
                            "{\"targets\": [\"file\"]}, \"none\": {}}", 0640);
    c = load_text(L "[target archive]\ntype = s3\nbucket = b-1\n");
    cr_assert_eq(fb_conf_verify(c), 0, "%s", test_log_buf);
    fb_conf_free(c);
}

Test(conf, keydb_check_targets)
{
    fb_keydb_t *db;
    fb_conf_t *c;

    c = load_text(L "[target archive]\ntype = s3\nbucket = b-1\n");
    cr_assert_not_null(c, "%s", test_log_buf);
    cr_assert_eq(fb_keydb_check_targets(NULL, c), 0);
    db = fb_keydb_load(test_write("k.json", "{\"b\": {\"targets\": [\"file\", \"x\"]}, "
                                            "\"a\": {\"targets\": [\"y\"]}, \"c\": {}}", 0600));
    cr_assert_not_null(db, "%s", test_log_buf);
    test_log_buf[0] = '\0';
    test_log_count = 0;
    cr_assert_eq(fb_keydb_check_targets(db, c), -1);
    cr_assert_eq(test_log_count, 2, "one per tenant and name: %s", test_log_buf);
    cr_assert(strstr(test_log_buf, "key \"a\": targets: \"y\" is not a [target] of"), "%s",
              test_log_buf);
    cr_assert(strstr(test_log_buf, "key \"b\": targets: \"x\" is not a [target] of"), "%s",
              test_log_buf);
    fb_keydb_free(db);
    fb_conf_free(c);
}
#undef L
