/*
 * router_bulk.c -- the _bulk API client (router_bulk.h): index names from
 * patterns, NDJSON bodies, one POST per bulk over a reused libcurl handle,
 * and a verdict per document read from the answer with jansson.
 *
 * Everything that comes back is hostile: the answer is read into a buffer
 * bounded by the bulk's size, strings taken from it are cut, stripped of
 * control characters and kept valid UTF-8, and anything unexpected makes
 * the documents RETRY, never REFUSED. This file must never log, follow a
 * redirect, turn TLS verification off or put a credential into an error.
 * The URL's check, the hardened handle and the bounded answer buffer are
 * router_http's, shared with the other HTTP clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/secret.h"
#include "router/router_bulk.h"
#include "router/router_http.h"
#include "router/router_json.h"

/* What of each item the answer carries: enough for the verdicts, so that
 * an answer stays small when every document went in. */
#define BULK_PATH                                                                                  \
    "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason,"            \
    "items.*.error.caused_by.type,items.*.error.caused_by.reason"
#define GZIP_LEVEL 1 /* log lines shrink well already; the router's CPU matters more */

struct fb_bulk_body {
    fb_buf_t text;
    size_t count;
};

struct fb_bulk {
    CURL *curl;
    struct curl_slist *headers;
    char *url;   /* <base>/_bulk?filter_path=... */
    char *where; /* "POST <base>/_bulk", for errors */
    bool gzip;
    char *gz; /* the compressed body */
    size_t gz_cap;
    fb_http_answer_t answer; /* bounded per bulk; past it the transfer stops */
    fb_bulk_item_t *items;
    size_t items_cap;
    char curl_err[CURL_ERROR_SIZE];
};

static int index_valid(const char *name, size_t len, char *why, size_t whylen);
static int expand(const char *pattern, const char *key, time_t t, char *out, char *err,
                  size_t errlen);
static void copy_text(char *dst, size_t size, const char *src, size_t len);
static void shown(char *dst, size_t size, const char *src);
static const char *json_str(json_t *o, const char *key);
static void result_reset(fb_bulk_result_t *r, size_t count, long status);
static bool doc_fault(const char *type);
static int item_verdict(json_t *item, fb_bulk_item_t *out);
static const char *status_text(long status);
static bool printable(const char *s, bool spaces);
static size_t gzip_body(fb_bulk_t *c, const fb_bulk_body_t *body);

/* ===================================================================== */
/* index names                                                            */

/* index_valid -- 0 if name[0..len) is a valid index name; else why. */
static int
index_valid(const char *name, size_t len, char *why, size_t whylen)
{
    if (len == 0) {
        snprintf(why, whylen, "it is empty");
        return -1;
    }
    if (len > FB_BULK_INDEX_MAX) {
        snprintf(why, whylen, "%zu bytes, more than %d", len, FB_BULK_INDEX_MAX);
        return -1;
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        snprintf(why, whylen, "\".\" and \"..\" are not index names");
        return -1;
    }
    if (name[0] == '-' || name[0] == '_' || name[0] == '+') {
        snprintf(why, whylen, "it starts with '%c'", name[0]);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z') {
            snprintf(why, whylen, "uppercase '%c' at byte %zu (index names are lowercase)", c, i);
            return -1;
        }
        if (c <= ' ' || c >= 0x7f) {
            snprintf(why, whylen, "byte 0x%02x at byte %zu (only printable ASCII here)", c, i);
            return -1;
        }
        if (strchr("\\/*?\"<>|,#:", c) != NULL) {
            snprintf(why, whylen, "'%c' at byte %zu (none of \\ / * ? \" < > | , # : space)", c, i);
            return -1;
        }
    }
    return 0;
}

/* expand -- pattern with key and t into out (FB_BULK_INDEX_MAX + 1);
 * -1 with err on a pattern error or a name too long. */
static int
expand(const char *pattern, const char *key, time_t t, char *out, char *err, size_t errlen)
{
    struct tm tm;
    size_t n = 0;
    bool have_tm = false;

    for (const char *p = pattern; *p != '\0'; p++) {
        char part[16];
        const char *add = part;
        size_t add_len;

        if (*p == '{') {
            if (strncmp(p, "{key}", 5) != 0) {
                snprintf(err, errlen, "unknown placeholder at byte %zu (only {key})",
                         (size_t)(p - pattern));
                return -1;
            }
            add = key;
            add_len = strlen(key);
            p += 4;
        } else if (*p == '}') {
            snprintf(err, errlen, "'}' without '{' at byte %zu", (size_t)(p - pattern));
            return -1;
        } else if (*p == '%') {
            p++;
            if (*p == '%') {
                part[0] = '%';
                add_len = 1;
            } else if (*p == 'Y' || *p == 'm' || *p == 'd' || *p == 'H') {
                if (!have_tm) {
                    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 ||
                        tm.tm_year > 9999 - 1900) {
                        snprintf(err, errlen, "time %lld is outside the years 0..9999",
                                 (long long)t);
                        return -1;
                    }
                    have_tm = true;
                }
                int v = *p == 'Y'   ? tm.tm_year + 1900
                        : *p == 'm' ? tm.tm_mon + 1
                        : *p == 'd' ? tm.tm_mday
                                    : tm.tm_hour;
                add_len = (size_t)snprintf(part, sizeof(part), *p == 'Y' ? "%04d" : "%02d", v);
            } else {
                snprintf(err, errlen,
                         "unknown conversion %%%c at byte %zu (only %%Y %%m %%d %%H %%%%)",
                         *p > ' ' && *p < 0x7f ? *p : '?', (size_t)(p - 1 - pattern));
                return -1;
            }
        } else {
            part[0] = *p;
            add_len = 1;
        }
        if (add_len > FB_BULK_INDEX_MAX - n) {
            snprintf(err, errlen, "the name would pass %d bytes", FB_BULK_INDEX_MAX);
            return -1;
        }
        memcpy(out + n, add, add_len);
        n += add_len;
    }
    out[n] = '\0';
    return 0;
}

/* fb_bulk_pattern_check -- the pattern makes valid names (with key "k"). */
int
fb_bulk_pattern_check(const char *pattern, char *err, size_t errlen)
{
    char name[FB_BULK_INDEX_MAX + 1], why[160], what[64];

    if (pattern == NULL || *pattern == '\0') {
        snprintf(err, errlen, "index pattern: empty");
        return -1;
    }
    shown(what, sizeof(what), pattern);
    if (expand(pattern, "k", 0, name, why, sizeof(why)) < 0 ||
        index_valid(name, strlen(name), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "index pattern \"%s\": %s", what, why);
        return -1;
    }
    return 0;
}

/* fb_bulk_index_name -- the index for key at time t; why not in err. */
int
fb_bulk_index_name(const char *pattern, const char *key, time_t t, char *out, char *err,
                   size_t errlen)
{
    char why[160], k[64], what[64];

    shown(k, sizeof(k), key);
    if (expand(pattern, key, t, out, why, sizeof(why)) < 0) {
        shown(what, sizeof(what), pattern);
        snprintf(err, errlen, "index name from \"%s\" for key \"%s\": %s", what, k, why);
        out[0] = '\0';
        return -1;
    }
    if (index_valid(out, strlen(out), why, sizeof(why)) < 0) {
        shown(what, sizeof(what), out);
        snprintf(err, errlen, "key \"%s\" makes the index name \"%s\" invalid: %s", k, what, why);
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* fb_bulk_doc_id -- "<topic>-<partition>-<offset>". */
int
fb_bulk_doc_id(char *out, const char *topic, int32_t partition, int64_t offset)
{
    int n =
        snprintf(out, FB_BULK_ID_MAX + 1, "%s-%ld-%lld", topic, (long)partition, (long long)offset);
    if (n < 0 || n > FB_BULK_ID_MAX) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ===================================================================== */
/* the body                                                               */

/* fb_bulk_body_new -- an empty body. */
fb_bulk_body_t *
fb_bulk_body_new(void)
{
    return calloc(1, sizeof(fb_bulk_body_t));
}

/* fb_bulk_body_free -- free it (NULL is fine). */
void
fb_bulk_body_free(fb_bulk_body_t *b)
{
    if (b == NULL)
        return;
    fb_buf_free(&b->text);
    free(b);
}

/* fb_bulk_body_clear -- no documents, memory kept. */
void
fb_bulk_body_clear(fb_bulk_body_t *b)
{
    b->text.len = 0;
    b->count = 0;
}

/* fb_bulk_body_add -- the action line and the document line. */
int
fb_bulk_body_add(fb_bulk_body_t *b, const char *index, const char *id, const char *doc, size_t len,
                 char *err, size_t errlen)
{
    char why[160];
    size_t id_len = strlen(id), action_len, need, at = b->text.len;
    json_t *action;
    long n;

    if (index_valid(index, strlen(index), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "index name: %s", why);
        return FB_BULK_E_DOC;
    }
    if (id_len == 0 || id_len > FB_BULK_ID_MAX) {
        snprintf(err, errlen, "_id of %zu bytes (1..%d)", id_len, FB_BULK_ID_MAX);
        return FB_BULK_E_DOC;
    }
    if (len > 0 && doc[len - 1] == '\n')
        len--;
    if (len == 0) {
        snprintf(err, errlen, "the document is not one JSON object");
        return FB_BULK_E_DOC;
    }
    /* jansson refuses an _id that is not UTF-8 and escapes the rest */
    action = json_pack("{s:{s:s,s:s}}", "create", "_index", index, "_id", id);
    if (action == NULL) {
        snprintf(err, errlen, "the _id is not UTF-8");
        return FB_BULK_E_DOC;
    }
    action_len = json_dumpb(action, NULL, 0, JSON_COMPACT);
    need = action_len + 1 + len + 1;
    if (action_len == 0 || need > FB_BULK_BODY_MAX - b->text.len) {
        json_decref(action);
        if (action_len != 0 && b->count > 0)
            return FB_BULK_E_FULL;
        snprintf(err, errlen, "the document (%zu bytes) is larger than a bulk may be (%u)", len,
                 FB_BULK_BODY_MAX);
        return FB_BULK_E_DOC;
    }
    if (fb_buf_reserve(&b->text, need) < 0) {
        json_decref(action);
        snprintf(err, errlen, "out of memory for a body of %zu bytes", b->text.len + need);
        return FB_BULK_E_FULL;
    }
    json_dumpb(action, b->text.data + at, action_len, JSON_COMPACT);
    json_decref(action);
    at += action_len;
    b->text.data[at++] = '\n';
    /* checked and copied in one pass, without the white space that a
     * newline inside would break the NDJSON framing with */
    n = fb_json_compact(doc, len, b->text.data + at);
    if (n <= 0 || b->text.data[at] != '{') {
        b->text.data[b->text.len] = '\0'; /* as it was */
        snprintf(err, errlen, "the document is not one JSON object");
        return FB_BULK_E_DOC;
    }
    at += (size_t)n;
    b->text.data[at++] = '\n';
    b->text.data[at] = '\0';
    b->text.len = at;
    b->count++;
    return 0;
}

size_t
fb_bulk_body_count(const fb_bulk_body_t *b)
{
    return b->count;
}

size_t
fb_bulk_body_size(const fb_bulk_body_t *b)
{
    return b->text.len;
}

const char *
fb_bulk_body_text(const fb_bulk_body_t *b)
{
    return b->text.len > 0 ? b->text.data : "";
}

/* ===================================================================== */
/* verdicts                                                               */

/* copy_text -- src[0..len) into dst (size > 0) cut to fit, control
 * characters as spaces, never ending in half a UTF-8 sequence. */
static void
copy_text(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    if (n < len) {
        /* back to the start of the last character; drop it if cut */
        size_t start = n;
        while (start > 0 && n - start < 4 && ((unsigned char)dst[start - 1] & 0xc0) == 0x80)
            start--;
        if (start > 0 && ((unsigned char)dst[start - 1] & 0x80) != 0) {
            unsigned char lead = (unsigned char)dst[start - 1];
            size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
            if (n - (start - 1) < want)
                n = start - 1;
        }
    }
    dst[n] = '\0';
}

/* shown -- a C string fit for an error text (cut, control characters
 * and bytes past ASCII as '?'). */
static void
shown(char *dst, size_t size, const char *src)
{
    size_t i = 0;

    for (; src[i] != '\0' && i < size - 1; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    dst[i] = '\0';
}

/* json_str -- the string o.key, or NULL. */
static const char *
json_str(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* result_reset -- every document RETRY, nothing said yet. */
static void
result_reset(fb_bulk_result_t *r, size_t count, long status)
{
    r->failure = FB_BULK_FAIL_NONE;
    r->http_status = status;
    r->ok = r->refused = 0;
    r->retry = count;
    r->count = count;
    r->error[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        r->items[i].verdict = FB_BULK_RETRY;
        r->items[i].status = 0;
        r->items[i].type[0] = '\0';
        r->items[i].reason[0] = '\0';
    }
}

/* doc_fault -- an item's 400 error type that blames the document itself. */
static bool
doc_fault(const char *type)
{
    static const char *const types[] = {
        "mapper_parsing_exception",         /* a field does not fit the mapping */
        "document_parsing_exception",       /* the same, in later versions */
        "strict_dynamic_mapping_exception", /* a field the strict mapping lacks */
        "illegal_argument_exception",       /* e.g. an immense term, a bad value */
    };
    if (type == NULL)
        return false;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(type, types[i]) == 0)
            return true;
    return false;
}

/* item_verdict -- one {"create":{"status":N,"error":{...}}}; -1 when it
 * is not such an item. */
static int
item_verdict(json_t *item, fb_bulk_item_t *out)
{
    json_t *body, *status, *error, *cause;
    const char *type, *reason, *ctype, *creason;
    json_int_t st;

    if (!json_is_object(item) || json_object_size(item) != 1)
        return -1;
    body = json_object_get(item, "create");
    if (!json_is_object(body))
        return -1;
    status = json_object_get(body, "status");
    if (!json_is_integer(status))
        return -1;
    st = json_integer_value(status);
    if (st < 100 || st > 599)
        return -1;
    out->status = (int)st;
    error = json_object_get(body, "error");
    type = json_str(error, "type");
    reason = json_is_string(error) ? json_string_value(error) : json_str(error, "reason");
    cause = json_is_object(error) ? json_object_get(error, "caused_by") : NULL;
    ctype = json_str(cause, "type");
    creason = json_str(cause, "reason");
    copy_text(out->type, sizeof(out->type), type != NULL ? type : "",
              type != NULL ? strlen(type) : 0);
    if (reason != NULL || ctype != NULL || creason != NULL) {
        char text[1024];
        int n =
            snprintf(text, sizeof(text), "%s%s%s%s%s%s", reason != NULL ? reason : "",
                     ctype != NULL || creason != NULL ? " (caused by " : "",
                     ctype != NULL ? ctype : "", ctype != NULL && creason != NULL ? ": " : "",
                     creason != NULL ? creason : "", ctype != NULL || creason != NULL ? ")" : "");
        size_t len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
        copy_text(out->reason, sizeof(out->reason), text, len);
    } else {
        out->reason[0] = '\0';
    }
    if (st == 200 || st == 201)
        out->verdict = FB_BULK_OK;
    else if (st == 409 && type != NULL && strcmp(type, "version_conflict_engine_exception") == 0)
        out->verdict = FB_BULK_OK; /* create on an _id that is there: sent before */
    else if (st == 400 && doc_fault(type))
        out->verdict = FB_BULK_REFUSED;
    else
        out->verdict = FB_BULK_RETRY;
    return 0;
}

/* status_text -- what an HTTP status other than 200 means here. */
static const char *
status_text(long status)
{
    if (status == 401 || status == 403)
        return ": the credentials are refused (check the user and password or the API key)";
    if (status >= 300 && status < 400)
        return ": redirects are not followed (check the URL)";
    if (status == 413)
        return ": the bulk is larger than the server takes (send smaller bulks)";
    if (status == 429)
        return ": the server is overloaded";
    return "";
}

/* fb_bulk_verdicts -- the verdicts of count documents from an answer. */
int
fb_bulk_verdicts(long http_status, const char *text, size_t len, size_t count, fb_bulk_result_t *r)
{
    json_error_t jerr;
    json_t *root, *items;
    size_t first_retry = count;

    result_reset(r, count, http_status);
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (http_status != 200) {
        json_t *error = json_is_object(root) ? json_object_get(root, "error") : NULL;
        const char *type = json_str(error, "type");
        const char *reason =
            json_is_string(error) ? json_string_value(error) : json_str(error, "reason");
        char t[64], why[256];
        r->failure =
            http_status == 401 || http_status == 403 ? FB_BULK_FAIL_AUTH : FB_BULK_FAIL_HTTP;
        if (reason == NULL && root == NULL) {
            reason = text; /* e.g. a proxy's page: its start, made printable */
            len = len < 120 ? len : 120;
        } else {
            len = reason != NULL ? strlen(reason) : 0;
        }
        copy_text(t, sizeof(t), type != NULL ? type : "", type != NULL ? strlen(type) : 0);
        copy_text(why, sizeof(why), reason != NULL ? reason : "", len);
        snprintf(r->error, sizeof(r->error), "HTTP %ld%s%s%s%s%s", http_status,
                 status_text(http_status), t[0] != '\0' || why[0] != '\0' ? " -- " : "", t,
                 t[0] != '\0' && why[0] != '\0' ? ": " : "", why);
        json_decref(root);
        return -1;
    }
    if (root == NULL) {
        r->failure = FB_BULK_FAIL_ANSWER;
        snprintf(r->error, sizeof(r->error),
                 "HTTP 200 but the answer is not JSON (%.80s at byte %d)", jerr.text,
                 jerr.position);
        return -1;
    }
    items = json_is_object(root) ? json_object_get(root, "items") : NULL;
    if (!json_is_array(items) || json_array_size(items) != count) {
        r->failure = FB_BULK_FAIL_ANSWER;
        if (json_is_array(items))
            snprintf(r->error, sizeof(r->error), "HTTP 200 but %zu items for %zu documents",
                     json_array_size(items), count);
        else
            snprintf(r->error, sizeof(r->error), "HTTP 200 but no items in the answer");
        json_decref(root);
        return -1;
    }
    r->retry = 0;
    for (size_t i = 0; i < count; i++) {
        if (item_verdict(json_array_get(items, i), &r->items[i]) < 0) {
            json_decref(root);
            result_reset(r, count, http_status);
            r->failure = FB_BULK_FAIL_ANSWER;
            snprintf(r->error, sizeof(r->error),
                     "HTTP 200 but item %zu is not a create with a status", i);
            return -1;
        }
        switch (r->items[i].verdict) {
        case FB_BULK_OK: r->ok++; break;
        case FB_BULK_REFUSED: r->refused++; break;
        case FB_BULK_RETRY:
            if (r->retry++ == 0)
                first_retry = i;
            break;
        }
    }
    json_decref(root);
    if (first_retry < count) {
        const fb_bulk_item_t *it = &r->items[first_retry];
        snprintf(r->error, sizeof(r->error),
                 "%zu of %zu documents to retry; item %zu: status %d%s%s%s%s", r->retry, count,
                 first_retry, it->status, it->type[0] != '\0' ? " " : "", it->type,
                 it->reason[0] != '\0' ? ": " : "", it->reason);
    }
    return 0;
}

/* ===================================================================== */
/* the client                                                             */

/* printable -- s has only printable ASCII (space too if spaces). */
static bool
printable(const char *s, bool spaces)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < (spaces ? 0x20 : 0x21) || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(c->curl, opt, val) != CURLE_OK) {                                     \
            snprintf(err, errlen, "curl_easy_setopt(" #opt ") failed");                            \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* fb_bulk_new -- check the options and make the handle. */
fb_bulk_t *
fb_bulk_new(const fb_bulk_opts_t *o, char *err, size_t errlen)
{
    fb_bulk_t *c = NULL;
    fb_http_url_t url = {0};
    size_t base_len;

    if (fb_http_url_check(o->url, FB_HTTP_URL_F_PATH, &url, err, errlen) != FB_HTTP_URL_OK)
        goto fail;
    if (o->basic_auth != NULL && o->api_key != NULL) {
        snprintf(err, errlen, "credentials: a user and password or an API key, not both");
        goto fail;
    }
    if (o->basic_auth != NULL && (strchr(o->basic_auth, ':') == NULL || o->basic_auth[0] == ':' ||
                                  !printable(o->basic_auth, true))) {
        snprintf(err, errlen, "credentials: not \"user:password\" in printable ASCII");
        goto fail;
    }
    if (o->api_key != NULL && (o->api_key[0] == '\0' || !printable(o->api_key, false))) {
        snprintf(err, errlen, "API key: empty, or not printable ASCII without spaces");
        goto fail;
    }
    if ((o->basic_auth != NULL || o->api_key != NULL) &&
        fb_http_credentials_check(&url, o->url, err, errlen) < 0)
        goto fail;
    if (fb_http_ca_check(o->ca_file, err, errlen) < 0)
        goto fail;
    if (o->connect_timeout_ms < 0 || o->timeout_ms < 0) {
        snprintf(err, errlen, "timeouts must not be negative");
        goto fail;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    base_len = strlen(o->url);
    while (base_len > 0 && o->url[base_len - 1] == '/')
        base_len--;
    c->url = malloc(base_len + sizeof(BULK_PATH));
    c->where = malloc(base_len + sizeof("POST /_bulk"));
    if (c->url == NULL || c->where == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    sprintf(c->url, "%.*s%s", (int)base_len, o->url, BULK_PATH);
    sprintf(c->where, "POST %.*s/_bulk", (int)base_len, o->url);
    c->gzip = o->gzip;

    c->answer.stop = true;
    c->curl = fb_http_handle_new(
        &(fb_http_opts_t){.ca_file = o->ca_file,
                          .connect_timeout_ms = o->connect_timeout_ms != 0
                                                    ? o->connect_timeout_ms
                                                    : (long)FB_BULK_CONNECT_TIMEOUT_MS,
                          .timeout_ms = o->timeout_ms != 0 ? o->timeout_ms
                                                           : (long)FB_BULK_TIMEOUT_MS,
                          .user_agent = "fbpipe-router",
                          .curl_err = c->curl_err,
                          .answer = &c->answer},
        err, errlen);
    if (c->curl == NULL)
        goto fail;
    c->headers = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    if (c->headers != NULL)
        c->headers = curl_slist_append(c->headers, "Accept: application/json");
    if (c->headers != NULL) /* no 100-continue round trip before large bodies */
        c->headers = curl_slist_append(c->headers, "Expect:");
    if (c->headers != NULL && o->gzip)
        c->headers = curl_slist_append(c->headers, "Content-Encoding: gzip");
    if (c->headers != NULL && o->api_key != NULL) {
        size_t n = strlen(o->api_key) + sizeof("Authorization: ApiKey ");
        char *h = malloc(n);
        if (h != NULL) {
            snprintf(h, n, "Authorization: ApiKey %s", o->api_key);
            c->headers = curl_slist_append(c->headers, h);
            explicit_bzero(h, n);
            free(h);
        } else {
            curl_slist_free_all(c->headers);
            c->headers = NULL;
        }
    }
    if (c->headers == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    SETOPT(CURLOPT_URL, c->url);
    SETOPT(CURLOPT_HTTPHEADER, c->headers);
    SETOPT(CURLOPT_POST, 1L);
    if (o->basic_auth != NULL) {
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(CURLOPT_USERPWD, o->basic_auth);
    }
    fb_http_url_free(&url);
    return c;

fail:
    fb_http_url_free(&url);
    fb_bulk_free(c);
    return NULL;
}

/* fb_bulk_free -- close the connection and free (NULL is fine). */
void
fb_bulk_free(fb_bulk_t *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    for (struct curl_slist *h = c->headers; h != NULL; h = h->next)
        explicit_bzero(h->data, strlen(h->data)); /* the API key header */
    curl_slist_free_all(c->headers);
    free(c->url);
    free(c->where);
    free(c->gz);
    fb_http_answer_free(&c->answer);
    free(c->items);
    free(c);
}

/* gzip_body -- body into c->gz; its length, or 0 on failure. */
static size_t
gzip_body(fb_bulk_t *c, const fb_bulk_body_t *body)
{
    z_stream z;
    size_t bound, out;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    bound = deflateBound(&z, (uLong)body->text.len) + 32;
    if (bound > c->gz_cap) {
        char *p = realloc(c->gz, bound);
        if (p == NULL) {
            deflateEnd(&z);
            return 0;
        }
        c->gz = p;
        c->gz_cap = bound;
    }
    z.next_in = (Bytef *)body->text.data;
    z.avail_in = (uInt)body->text.len;
    z.next_out = (Bytef *)c->gz;
    z.avail_out = (uInt)c->gz_cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        return 0;
    }
    out = (size_t)z.total_out;
    deflateEnd(&z);
    return out;
}

/* fb_bulk_send -- one POST /_bulk and its verdicts. */
int
fb_bulk_send(fb_bulk_t *c, const fb_bulk_body_t *body, fb_bulk_result_t *r)
{
    char why[FB_HTTP_URL_MAX + 2 * sizeof(r->error)];
    const char *data = body->text.data;
    size_t count = body->count, size = body->text.len;
    CURLcode rc;
    long status = 0;
    int ret;

    if (count > c->items_cap) {
        fb_bulk_item_t *p = realloc(c->items, count * sizeof(*p));
        if (p == NULL) {
            r->items = NULL;
            r->count = 0;
            r->failure = FB_BULK_FAIL_LOCAL;
            r->http_status = 0;
            r->ok = r->refused = 0;
            r->retry = count;
            snprintf(r->error, sizeof(r->error), "%s: out of memory for %zu verdicts", c->where,
                     count);
            return -1;
        }
        c->items = p;
        c->items_cap = count;
    }
    r->items = c->items;
    result_reset(r, count, 0);
    if (count == 0)
        return 0;
    if (c->gzip) {
        size = gzip_body(c, body);
        data = c->gz;
        if (size == 0) {
            r->failure = FB_BULK_FAIL_LOCAL;
            snprintf(r->error, sizeof(r->error), "%s: gzip of %zu bytes failed", c->where,
                     body->text.len);
            return -1;
        }
    }
    fb_http_answer_reset(&c->answer, FB_BULK_ANSWER_BASE + FB_BULK_ANSWER_PER_DOC * count);
    c->curl_err[0] = '\0';
    if (curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, data) != CURLE_OK) {
        r->failure = FB_BULK_FAIL_LOCAL;
        snprintf(r->error, sizeof(r->error), "%s: curl_easy_setopt(CURLOPT_POSTFIELDS) failed",
                 c->where);
        return -1;
    }
    rc = curl_easy_perform(c->curl);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    r->http_status = status;
    if (c->answer.over) {
        r->failure = FB_BULK_FAIL_ANSWER;
        snprintf(r->error, sizeof(r->error),
                 "%s: HTTP %ld but the answer passed %zu bytes; not read", c->where, status,
                 c->answer.max);
        return -1;
    }
    if (c->answer.nomem) {
        r->failure = FB_BULK_FAIL_LOCAL;
        snprintf(r->error, sizeof(r->error), "%s: out of memory for the answer", c->where);
        return -1;
    }
    if (rc != CURLE_OK) {
        r->failure = FB_BULK_FAIL_NETWORK;
        snprintf(r->error, sizeof(r->error), "%s: %s%s%s", c->where, curl_easy_strerror(rc),
                 c->curl_err[0] != '\0' ? ": " : "", c->curl_err);
        return -1;
    }
    ret = fb_bulk_verdicts(status, c->answer.len > 0 ? c->answer.buf : "", c->answer.len, count, r);
    if (r->error[0] != '\0') {
        /* cut where a character ends: items' texts end up in dead letters */
        int n = snprintf(why, sizeof(why), "%s: %s", c->where, r->error);
        if (n > 0)
            copy_text(r->error, sizeof(r->error), why, strlen(why));
    }
    return ret;
}

/* ===================================================================== */
/* credentials files                                                      */

/* fb_bulk_secret_read -- secret.c's rules (fb_secret_load: a regular
 * file, private, bounded, a trailing newline dropped), and one line of
 * printable characters, with the refusal returned instead of logged. */
int
fb_bulk_secret_read(const char *path, char **out, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;

    *out = NULL;
    if (fb_secret_load(path, FB_SECRET_F_PRIVATE | FB_SECRET_F_STRIP_NL, 1, &buf, &len, err,
                       errlen) < 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] < 0x20 || buf[i] == 0x7f) {
            snprintf(err, errlen, "%s: a control character at byte %zu (one line expected)", path,
                     i);
            fb_secret_free(buf, len);
            return -1;
        }
    }
    *out = (char *)buf;
    return 0;
}

/* fb_bulk_secret_free -- wipe and free. */
void
fb_bulk_secret_free(char *s)
{
    if (s != NULL)
        fb_secret_free((uint8_t *)s, strlen(s));
}
