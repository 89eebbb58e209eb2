/*
 * fuzz_seeds.c -- writes the seed corpora of tests/fuzz/corpus/ with
 * fbpipe's own encoders, so that every seed is an input the project makes
 * or accepts: Batches and Events packed by the generated protobuf-c code,
 * tokens minted by fb_auth_mint, Kafka records written by
 * fb_batch_record_write and fb_record_pack (encrypted by common/cipher.c),
 * Fluent Bit chunks packed by msgpack-c as Fluent Bit packs them, and the
 * sample and test configurations and key databases of the source tree.
 *
 * usage: fuzz_seeds CORPUS-DIR SOURCE-DIR   (`make fuzz-seeds`)
 * Encryption nonces are random: a second run writes other bytes of the
 * same inputs.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>
#include <sodium.h>

#include "api.pb-c.h"
#include "common/batch.h"
#include "common/cipher.h"
#include "common/record.h"
#include "fbpipe.pb-c.h"
#include "fuzz.h"

static const char *corpus;
static fb_keydb_t *db;

/* put -- corpus/<target>/<name> = data[0..len). */
static void
put(const char *target, const char *name, const void *data, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", corpus, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", corpus, target, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* copy -- corpus/<target>/<name> = the file src. */
static void
copy(const char *target, const char *name, const char *src)
{
    static char buf[1 << 20];
    FILE *f = fopen(src, "rb");
    size_t n;

    if (f == NULL) {
        perror(src);
        exit(1);
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    put(target, name, buf, n);
}

/* ---- native batches, and the Kafka records the worker writes of them -- */

typedef struct brec {
    int64_t seconds; /* -1: no time */
    int32_t nanos;
    const char *payload;
    int cipher; /* 0, or FB_CIPHER_XCHACHA(_V2) with acme's key of key_id */
    const char *key_id;
} brec_t;

/* batch -- a packed fbpipe.v1.Batch of recs (malloc'd). */
static uint8_t *
batch(uint64_t seq, const char *tag, const char *agent, const brec_t *recs, size_t n, size_t *len)
{
    Fbpipe__V1__Batch b = FBPIPE__V1__BATCH__INIT;
    Fbpipe__V1__BatchRecord r[8], *rp[8];
    Google__Protobuf__Timestamp ts[8];
    uint8_t *sealed[8] = {0}, *out;
    const fb_tenant_t *acme = fb_keydb_find(db, "acme", 4);

    b.seq = seq;
    b.tag = (char *)tag;
    b.agent_id = (char *)agent;
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(recs[i].payload);

        fbpipe__v1__batch_record__init(&r[i]);
        google__protobuf__timestamp__init(&ts[i]);
        if (recs[i].seconds >= 0) {
            ts[i].seconds = recs[i].seconds;
            ts[i].nanos = recs[i].nanos;
            r[i].time = &ts[i];
        }
        if (recs[i].cipher != 0) {
            const fb_enc_key_t *k = fb_tenant_enc_key(acme, recs[i].key_id);
            sealed[i] = malloc(plen + FB_XCHACHA_NONCE + FB_XCHACHA_TAG);
            fb_cipher_seal_xchacha(recs[i].cipher, k->key, "acme", recs[i].key_id,
                                   (const uint8_t *)recs[i].payload, plen, sealed[i]);
            r[i].payload.data = sealed[i];
            r[i].payload.len = plen + FB_XCHACHA_NONCE + FB_XCHACHA_TAG;
            r[i].enc = (Fbpipe__V1__Cipher)recs[i].cipher; /* the same numbers */
            r[i].key_id = (char *)recs[i].key_id;
        } else {
            r[i].payload.data = (uint8_t *)recs[i].payload;
            r[i].payload.len = plen;
        }
        rp[i] = &r[i];
    }
    b.n_records = n;
    b.records = rp;
    *len = fbpipe__v1__batch__get_packed_size(&b);
    out = malloc(*len ? *len : 1);
    fbpipe__v1__batch__pack(&b, out);
    for (size_t i = 0; i < n; i++)
        free(sealed[i]);
    return out;
}

/* line_seed -- fuzz_line's input: flags, key, record. */
static void
line_seed(const char *name, uint8_t flags, const char *key, const uint8_t *rec, size_t len)
{
    size_t klen = strlen(key);
    uint8_t *buf = malloc(2 + klen + len);

    buf[0] = flags;
    buf[1] = (uint8_t)klen;
    memcpy(buf + 2, key, klen);
    memcpy(buf + 2 + klen, rec, len);
    put("line", name, buf, 2 + klen + len);
    free(buf);
}

/* batch_seed -- a batch seed, and a line seed per record the worker takes
 * (written for tenant; decrypt flag set when encrypted). */
static void
batch_seed(const char *name, uint64_t seq, const brec_t *recs, size_t n, const char *tenant)
{
    const fb_tenant_t *t = fb_keydb_find(db, tenant, strlen(tenant));
    fb_batch_rec_t parsed[8];
    fb_batch_t b;
    size_t len, size;
    uint8_t *wire = batch(seq, "app.log", "agent-1", recs, n, &len);
    char why[256], lname[128];

    put("batch", name, wire, len);
    if (fb_batch_parse(wire, len, parsed, 8, &b) < 0 || fb_batch_check(&b, why, sizeof(why)) != 0) {
        fprintf(stderr, "fuzz_seeds: batch %s refused\n", name);
        exit(1);
    }
    for (size_t i = 0; i < b.n; i++) {
        uint8_t *rec;
        if (fb_batch_record_check(&b, i, t, FUZZ_NOW * 1000000000, 1000000, &size, why,
                                  sizeof(why)) != FB_RECORD_OK) {
            fprintf(stderr, "fuzz_seeds: batch %s record %zu refused: %s\n", name, i, why);
            exit(1);
        }
        rec = malloc(size);
        fb_batch_record_write(&b, i, t, FUZZ_NOW * 1000000000, rec);
        snprintf(lname, sizeof(lname), "%s-%zu", name, i);
        line_seed(lname, recs[i].cipher != 0 ? 1 : 0, tenant, rec, size);
        free(rec);
    }
    free(wire);
}

static void
batches(void)
{
    static const brec_t plain[] = {
        {1764331200, 42, "{\"log\":\"hello\",\"level\":\"info\",\"n\":3}", 0, NULL},
        {1764331201, 0, "plain text with \"quotes\"\nand a newline", 0, NULL},
        {-1, 0, "[1, 2.5e3, true, null, {\"k\": \"\\u00e9\\ud83d\\ude00\"}]", 0, NULL},
    };
    static const brec_t enc[] = {
        {1764331200, 999999999, "{\"log\":\"secret\"}", FB_CIPHER_XCHACHA, "k2"},
        {1764331200, 1, "older key", FB_CIPHER_XCHACHA, "k1"},
        {1764331202, 7, "{\"log\":\"length-prefixed associated data\"}", FB_CIPHER_XCHACHA_V2,
         "k2"},
    };
    static const brec_t old_agent[] = {
        {INT64_C(1764331200123456789), 0, "{\"log\":\"nanoseconds in seconds\"}", 0, NULL},
        {-62135596800, 0, "year one", 0, NULL},
        {253402300799, 999999999, "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0, NULL},
    };
    size_t len;
    uint8_t *empty = batch(7, "", "", NULL, 0, &len);

    batch_seed("plain-3", 1, plain, 3, "plain");
    batch_seed("xchacha-3", 2, enc, 3, "acme");
    batch_seed("times-utf8", 3, old_agent, 3, "plain");
    put("batch", "empty", empty, len);
    free(empty);
}

/* ---- seed-API events, and their Kafka records ------------------------ */

static void
event_seed(const char *name, const char *message, int64_t seconds, const char *access_key,
           const char *tenant)
{
    Api__Event ev = API__EVENT__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    const fb_tenant_t *t = fb_keydb_find(db, tenant, strlen(tenant));
    fb_record_t rec;
    char why[256], lname[128];
    uint8_t *buf, *packed;
    size_t len;

    if (seconds >= 0) {
        ts.seconds = seconds;
        ts.nanos = 500;
        ev.timestamp = &ts;
    }
    ev.agent_id = "agent-7";
    ev.tag = "kube.var.log";
    ev.message = (char *)message;
    ev.userid = "ignored-user";
    ev.accesskey = (char *)access_key;
    len = api__event__get_packed_size(&ev);
    buf = malloc(len ? len : 1);
    api__event__pack(&ev, buf);
    put("event", name, buf, len);
    /* the same event as the Go version writes it to the topic: a record
     * without a Kafka key (flags: accepted, no key, decrypt when encrypted) */
    snprintf(lname, sizeof(lname), "legacy-%s", name);
    line_seed(lname, (uint8_t)(4 | 8 | (t->n_enc_keys > 0 ? 1 : 0)), "", buf, len);
    free(buf);
    if (fb_record_from_event(&ev, t, FUZZ_NOW * 1000000000, 1000000, &rec, why, sizeof(why)) !=
        FB_RECORD_OK) {
        fprintf(stderr, "fuzz_seeds: event %s refused: %s\n", name, why);
        exit(1);
    }
    packed = malloc(rec.size);
    fb_record_pack(&rec, packed);
    snprintf(lname, sizeof(lname), "seed-%s", name);
    line_seed(lname, t->n_enc_keys > 0 ? 1 : 0, tenant, packed, rec.size);
    free(packed);
}

static void
events(void)
{
    const fb_tenant_t *seed = fb_keydb_find(db, "seed", 4);
    static const char msg[] = "{\"log\":\"from the original agent\"}";
    char hex[2 * (28 + sizeof(msg)) + 1];

    event_seed("json", "{\"log\":\"hello\",\"stream\":\"stdout\"}", 1764331200, "", "plain");
    event_seed("nanoseconds", "text", INT64_C(1764331200123456789), "plain", "plain");
    event_seed("no-time", "\xe2\x9c\x93 utf-8", -1, "", "plain");
    fb_cipher_seal_aesgcm_hex(seed->enc_keys[0].key, (const uint8_t *)msg, strlen(msg), hex);
    event_seed("aesgcm-hex", hex, 1764331200, "seed", "seed");
}

/* ---- tokens ---------------------------------------------------------- */

static void
token_seed(const char *name, uint8_t mode, const fb_auth_t *a, const char *key, const char *kid)
{
    char *tok = NULL, buf[4096];
    int n;

    if (fb_auth_mint(a, key, FUZZ_NOW - 60, 3600, kid, &tok) < 0)
        exit(1);
    n = snprintf(buf, sizeof(buf), "%cBearer %s", (char)mode, tok);
    put("auth", name, buf, (size_t)n);
    free(tok);
}

/* signed_seed -- fuzz_auth's signed mode: header NUL payload. */
static void
signed_seed(const char *name, uint8_t mode, const char *header, const char *payload)
{
    char buf[2048];
    size_t h = strlen(header), p = strlen(payload);

    buf[0] = (char)mode;
    memcpy(buf + 1, header, h);
    buf[1 + h] = '\0';
    memcpy(buf + 2 + h, payload, p);
    put("auth", name, buf, 2 + h + p);
}

static void
tokens(void)
{
    fb_auth_t *a[2];

    fuzz_auth_handles(a);
    token_seed("a-t1", 0, a[0], "t1", NULL);
    token_seed("a-rev", 0, a[0], "rev", NULL);
    token_seed("b-k1-t2", 2, a[1], "t2", "k1");
    token_seed("b-k2-open", 2, a[1], "open", "k2");
    signed_seed("a-signed-bound", 1, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                "{\"access_key\":\"t1\",\"iat\":1699999990,\"exp\":1700003600}");
    signed_seed("a-signed-unbound", 1, "{\"typ\":\"JWT\",\"alg\":\"HS256\"}",
                "{\"exp\":1700003600,\"iat\":1699999000,\"role\":\"agent\"}");
    signed_seed("a-signed-nbf", 1, "{\"alg\":\"HS256\"}",
                "{\"access_key\":\"open\",\"nbf\":1699999999.5,\"exp\":1.7e9,\"jti\":\"x\"}");
    signed_seed("b-signed-k1", 3, "{\"alg\":\"HS512\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
                "{\"iss\":\"fbpipe-test\",\"aud\":[\"other\",\"ingest\"],\"access_key\":\"t2\","
                "\"iat\":1699999990,\"exp\":1700003600}");
    signed_seed("b-signed-k2", 7, "{\"alg\":\"HS512\",\"kid\":\"k2\"}",
                "{\"iss\":\"fbpipe-test\",\"aud\":\"ingest\",\"exp\":1700003600,"
                "\"iat\":1699999990}");
    fb_auth_free(a[0]);
    fb_auth_free(a[1]);
}

/* ---- key databases and configurations --------------------------------- */

static void
keys_and_confs(const char *src)
{
    static const char rich[] =
        "{\n  \"acme\": {\n    \"AccessKey\": \"acme\",\n    \"UserID\": \"u-acme\",\n"
        "    \"EncryptionKey\": \"" FUZZ_KEY_K2 "\",\n    \"EncryptionKeys\": [\n"
        "      {\"id\": \"k2\", \"key\": \"" FUZZ_KEY_K2 "\"},\n"
        "      {\"id\": \"k1\", \"key\": \"" FUZZ_KEY_SEED "\"}\n    ],\n"
        "    \"targets\": [{\"file\": \"acme.log\"}],\n"
        "    \"tokens_not_before\": \"2026-01-01T00:00:00Z\",\n"
        "    \"unbound_tokens_sha256\": [\"" FUZZ_UNBOUND_SHA256_A "\"],\n"
        "    \"allow_unbound_tokens\": false\n  },\n"
        "  \"legacy.key_1\": {\"AccessKey\": \"legacy.key_1\", \"EncryptionKey\": \"\","
        " \"UserID\": \"\", \"targets\": [], \"disabled\": true,"
        " \"tokens_not_before\": 1767225600}\n}\n";
    static const char confs[] =
        "[main]\nlog_level = debug\nshutdown_timeout = 1h30m\n"
        "[ingester]\nlisten = [::1]:7777\nworkers = 4\nmax_workers = 8\nring_size = 256M\n"
        "max_message_size = 8M\nbackpressure_timeout = 250ms\nworker_stall_timeout = 0\n"
        "[auth]\njwt_algorithm = HS512\njwt_secret_file =\njwt_secret_file.k1 = k1.secret\n"
        "jwt_secret_file.k2 = /etc/fbpipe/k2.secret\nclock_skew = 0\nissuer = me\n"
        "[kafka]\nbrokers = 10.0.0.1:9092,[fe80::1]:9093\nmin_insync_replicas = 1\n"
        "compression = zstd\nlinger = 0\n"
        "[librdkafka]\nqueue.buffering.max.kbytes = 1048576\nsocket.keepalive.enable = true\n"
        "[router]\nenabled = yes\nfsync = 500ms\nrotate_size = 1G\nrotate_age = 0\n"
        "[metrics]\nlisten = 127.0.0.1:9187\n";
    char path[1024];
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof(path), "%s/etc/keys.json", src);
    copy("keys", "etc-keys.json", path);
    put("keys", "tenants.json", FUZZ_KEYS_JSON, strlen(FUZZ_KEYS_JSON));
    put("keys", "auth.json", FUZZ_AUTH_KEYS_JSON, strlen(FUZZ_AUTH_KEYS_JSON));
    put("keys", "rotation.json", rich, strlen(rich));
    snprintf(path, sizeof(path), "%s/etc/fbpipe.conf", src);
    copy("conf", "etc-fbpipe.conf", path);
    put("conf", "many-keys.conf", confs, strlen(confs));
    snprintf(path, sizeof(path), "%s/tests/conf/cases", src);
    d = opendir(path);
    if (d == NULL) {
        perror(path);
        exit(1);
    }
    while ((e = readdir(d)) != NULL) {
        char name[300];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/tests/conf/cases/%s/fbpipe.conf", src, e->d_name);
        snprintf(name, sizeof(name), "case-%s.conf", e->d_name);
        copy("conf", name, path);
        snprintf(path, sizeof(path), "%s/tests/conf/cases/%s/keys.json", src, e->d_name);
        snprintf(name, sizeof(name), "case-%s.json", e->d_name);
        /* most cases share one keys.json: the ones about it, and one more */
        if ((strncmp(e->d_name, "keys-", 5) == 0 || strcmp(e->d_name, "good-minimal") == 0) &&
            access(path, R_OK) == 0)
            copy("keys", name, path);
    }
    closedir(d);
}

/* ---- Fluent Bit chunks -------------------------------------------------- */

static void
mp_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* mp_time -- a Fluent Bit EventTime (extension 0: seconds, nanoseconds). */
static void
mp_time(msgpack_packer *pk, uint32_t sec, uint32_t nsec)
{
    char b[8] = {(char)(sec >> 24),  (char)(sec >> 16),  (char)(sec >> 8),  (char)sec,
                 (char)(nsec >> 24), (char)(nsec >> 16), (char)(nsec >> 8), (char)nsec};
    msgpack_pack_ext(pk, 8, 0);
    msgpack_pack_ext_body(pk, b, 8);
}

/* mp_body -- {"log": text, "kubernetes": {...}, ...} */
static void
mp_body(msgpack_packer *pk, const char *text)
{
    msgpack_pack_map(pk, 4);
    mp_str(pk, "log");
    mp_str(pk, text);
    mp_str(pk, "kubernetes");
    msgpack_pack_map(pk, 2);
    mp_str(pk, "pod_name");
    mp_str(pk, "web-1");
    mp_str(pk, "labels");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int64(pk, -42);
    msgpack_pack_double(pk, 0.5);
    mp_str(pk, "bytes");
    msgpack_pack_bin(pk, 5);
    msgpack_pack_bin_body(pk, "\x00\x01\x02\xfe\xff", 5);
    msgpack_pack_uint64(pk, UINT64_MAX); /* a key that is not a string */
    msgpack_pack_true(pk);
}

static void
chunks(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    /* Fluent Bit 2: [[EventTime, metadata], body], twice, and a group */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    mp_time(&pk, 1764331200, 42);
    msgpack_pack_map(&pk, 0);
    mp_body(&pk, "hello");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int64(&pk, -1); /* group start marker */
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    mp_time(&pk, 1764331201, 999999999);
    msgpack_pack_map(&pk, 1);
    mp_str(&pk, "otel");
    msgpack_pack_nil(&pk);
    mp_body(&pk, "caf\xc3\xa9 \xff not utf-8 \x01");
    put("chunk", "v2-events-group", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

    /* older Fluent Bit: [time, body] with integer and float times */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, 1764331200);
    mp_body(&pk, "integer time");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_double(&pk, 1764331200.25);
    msgpack_pack_map(&pk, 2);
    mp_str(&pk, "f");
    msgpack_pack_float(&pk, 1.5f);
    mp_str(&pk, "nested");
    for (int i = 0; i < 8; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_ext(&pk, 3, 7);
    msgpack_pack_ext_body(&pk, "abc", 3);
    put("chunk", "v1-times", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds CORPUS-DIR SOURCE-DIR\n");
        return 2;
    }
    corpus = argv[1];
    mkdir(corpus, 0755);
    if (fb_cipher_init() < 0)
        return 1;
    fuzz_log_start(false);
    db = fuzz_keydb(FUZZ_KEYS_JSON);
    batches();
    events();
    tokens();
    keys_and_confs(argv[2]);
    chunks();
    fb_keydb_free(db);
    printf("fuzz_seeds: corpora written in %s\n", corpus);
    return 0;
}
