/*
 * bench_store.c -- the remote stores as router-bench sees them
 * (bench_store.h): directory walks of s3-local's data and plain HTTP
 * requests to OpenSearch. Never used by fbpiped itself.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bench_store.h"

#define ANSWER_MAX 65536 /* bytes of an answer kept: _count's is tiny */

typedef struct answer {
    char text[ANSWER_MAX];
    size_t len;
} answer_t;

static uint64_t dir_bytes(int dirfd);
static int dir_remove(int dirfd);
static size_t keep(char *data, size_t size, size_t n, void *arg);
static long http(const char *method, const char *url, const char *body, answer_t *a);

/* dir_bytes -- the sizes of the .jsonl files below dirfd (closed). */
static uint64_t
dir_bytes(int dirfd)
{
    DIR *d = fdopendir(dirfd);
    struct dirent *e;
    uint64_t sum = 0;

    if (d == NULL) {
        close(dirfd);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        size_t len = strlen(e->d_name);
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* gone meanwhile (a temporary file renamed) */
        if (S_ISDIR(sb.st_mode)) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0)
                sum += dir_bytes(sub);
        } else if (S_ISREG(sb.st_mode) && len > 6 && strcmp(e->d_name + len - 6, ".jsonl") == 0) {
            sum += (uint64_t)sb.st_size;
        }
    }
    closedir(d);
    return sum;
}

uint64_t
bench_s3_bytes(const char *data, const char *bucket)
{
    char path[1024];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", data, bucket);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? 0 : dir_bytes(fd);
}

/* dir_remove -- everything below dirfd (closed), never following a link. */
static int
dir_remove(int dirfd)
{
    DIR *d = fdopendir(dirfd);
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        close(dirfd);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 || dir_remove(sub) < 0 || unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0)
                rc = -1;
        } else if (unlinkat(dirfd, e->d_name, 0) < 0) {
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

int
bench_s3_remove(const char *data, const char *bucket)
{
    char path[1024];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", data, bucket);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0; /* never made */
    if (dir_remove(fd) < 0 || rmdir(path) < 0)
        return -1;
    return 0;
}

/* keep -- libcurl's write callback: the answer's first ANSWER_MAX - 1 bytes. */
static size_t
keep(char *data, size_t size, size_t n, void *arg)
{
    answer_t *a = arg;
    size_t len = size * n, room = sizeof(a->text) - 1 - a->len;

    memcpy(a->text + a->len, data, len < room ? len : room);
    a->len += len < room ? len : room;
    a->text[a->len] = '\0';
    return len;
}

/* http -- one request with an optional JSON body; the HTTP status, or -1
 * when there was no answer. */
static long
http(const char *method, const char *url, const char *body, answer_t *a)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long status = -1;

    if (c == NULL)
        return -1;
    a->len = 0;
    a->text[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    if (body != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

int
bench_os_prepare(const char *url, const char *prefix, unsigned indices, char *err, size_t errlen)
{
    answer_t *a = malloc(sizeof(*a));
    char u[1024], body[512];
    long st;

    if (a == NULL) {
        snprintf(err, errlen, "no memory");
        return -1;
    }
    snprintf(u, sizeof(u), "%s/_index_template/router-bench", url);
    snprintf(body, sizeof(body),
             "{\"index_patterns\":[\"%s*\"],\"template\":{\"settings\":"
             "{\"number_of_shards\":1,\"number_of_replicas\":0}}}",
             prefix);
    st = http("PUT", u, body, a);
    if (st != 200) {
        snprintf(err, errlen, "PUT %s: HTTP %ld %.200s", u, st, a->text);
        free(a);
        return -1;
    }
    /* 1,000 keys make 1,000 indices per side and round, the node's
     * default limit; the bench deletes each round's before the next */
    snprintf(u, sizeof(u), "%s/_cluster/settings", url);
    snprintf(body, sizeof(body),
             "{\"persistent\":{\"cluster.max_shards_per_node\":%u}}", indices + 1000);
    st = http("PUT", u, body, a);
    if (st != 200) {
        snprintf(err, errlen, "PUT %s: HTTP %ld %.200s", u, st, a->text);
        free(a);
        return -1;
    }
    free(a);
    return 0;
}

long long
bench_os_count(const char *url, const char *prefix)
{
    answer_t *a = malloc(sizeof(*a));
    json_t *j, *count;
    char u[1024];
    long long n = -1;

    if (a == NULL)
        return -1;
    snprintf(u, sizeof(u), "%s/%s*/_refresh", url, prefix);
    if (http("POST", u, NULL, a) != 200) {
        free(a);
        return -1;
    }
    snprintf(u, sizeof(u), "%s/%s*/_count", url, prefix);
    if (http("GET", u, NULL, a) == 200 && (j = json_loadb(a->text, a->len, 0, NULL)) != NULL) {
        count = json_object_get(j, "count");
        if (json_is_integer(count))
            n = json_integer_value(count);
        json_decref(j);
    }
    free(a);
    return n;
}

int
bench_os_delete(const char *url, const char *prefix)
{
    answer_t *a = malloc(sizeof(*a));
    char u[1024];
    long st;

    if (a == NULL)
        return -1;
    snprintf(u, sizeof(u), "%s/%s*", url, prefix);
    st = http("DELETE", u, NULL, a);
    free(a);
    return st == 200 || st == 404 ? 0 : -1;
}

pid_t
bench_store_pid(const char *state)
{
    char path[1024];
    long pid = 0;
    FILE *fp;

    if (state == NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/pid", state);
    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    if (fscanf(fp, "%ld", &pid) != 1)
        pid = 0;
    fclose(fp);
    return (pid_t)pid;
}
