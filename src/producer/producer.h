/*
 * producer.h -- the producer process: drains every ring lane into one
 * idempotent librdkafka producer and publishes acknowledgements back.
 *
 * fb_producer_run() is the very loop the daemon runs; tests call it in a
 * forked child on a ring they made. It must only be called after fork:
 * librdkafka starts threads.
 */
#ifndef FB_PRODUCER_H
#define FB_PRODUCER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "common/conf.h"
#include "common/kafka.h"
#include "common/ring.h"

/* exit codes of the producer process */
#define FB_PRODUCER_EXIT_OK 0
#define FB_PRODUCER_EXIT_FATAL 1 /* respawn: the new producer resumes from acked */
#define FB_PRODUCER_EXIT_CONFIG 2

int fb_producer_run(const fb_conf_t *conf, fb_ring_t *ring, volatile sig_atomic_t *stop);
/* The topic's settings are read again at once (HUP: an operator changed
 * them); async-signal-safe. */
void fb_producer_reread_topic(void);
int fb_producer_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);

#endif /* FB_PRODUCER_H */
