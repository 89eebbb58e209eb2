/*
 * fuzz_conf.c -- libFuzzer target: the configuration parser
 * (common/conf.c, fb_conf_load) on fbpipe.conf text, written into a memory
 * file that the parser opens by path, as it opens /etc/fbpipe.conf.
 * fb_conf_verify is left out: it reads the files a configuration names
 * (any path) and asks librdkafka, neither of which is the parser.
 *
 * Oracles besides the sanitizers: a configuration refused logs an
 * error that says why; one accepted logs no error (warnings may be) and
 * holds the values its checks promise, and the master can build
 * what it describes: the ring (fb_ring_format on a segment of ring_size,
 * mapped without reserving memory, for max_workers lanes) takes a record
 * of kafka.message_max_bytes in each lane.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/conf.h"
#include "common/ring.h"
#include "fuzz.h"

static int fd;
static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fd = fuzz_memfd("fbpipe.conf", 0644, path);
    return 0;
}

/* check_ring -- the ring of c can be laid out, and its lanes take the
 * largest record (half a lane each, as fb_lane_reserve allows). */
static void
check_ring(const fb_conf_t *c)
{
    void *base;
    const char *why = "";
    size_t lane;

    FUZZ_CHECK(c->max_workers >= c->workers && c->max_workers <= FB_RING_MAX_LANES,
               "max_workers %llu, workers %llu", (unsigned long long)c->max_workers,
               (unsigned long long)c->workers);
    base = mmap(NULL, c->ring_size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    FUZZ_CHECK(fb_ring_format(base, c->ring_size, (unsigned)c->max_workers, &why) == 0,
               "ring_size %llu with %llu lanes accepted, but the ring cannot be made: %s",
               (unsigned long long)c->ring_size, (unsigned long long)c->max_workers, why);
    munmap(base, c->ring_size);
    lane = fb_ring_lane_size(c->ring_size, (unsigned)c->max_workers);
    FUZZ_CHECK(fb_rec_size(0, c->message_max_bytes) <= lane / 2,
               "a lane of %zu bytes cannot take a record of %llu", lane,
               (unsigned long long)c->message_max_bytes);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_conf_t *c;

    fuzz_log_start(false); /* values are echoed as the operator wrote them */
    fuzz_memfd_put(fd, data, size);
    c = fb_conf_load(path);
    if (c == NULL) {
        FUZZ_CHECK(fuzz_log_errors > 0, "a configuration refused without an error logged");
        return 0;
    }
    FUZZ_CHECK(fuzz_log_errors == 0, "a configuration accepted with errors:\n%s", fuzz_log_text);
    FUZZ_CHECK(c->ingester_enabled || c->router_enabled, "neither role enabled");
    FUZZ_CHECK(c->key_claim[0] != '\0' && c->router_dir[0] != '\0' && c->router_group[0] != '\0',
               "an empty value accepted");
    FUZZ_CHECK(c->workers >= 1 && c->router_workers >= 1, "no workers");
    for (size_t i = 0; i < c->n_jwt_secret_files; i++)
        FUZZ_CHECK(c->jwt_secret_files[i].path[0] != '\0', "empty secret path");
    if (c->ingester_enabled)
        check_ring(c);
    fb_conf_free(c);
    return 0;
}
