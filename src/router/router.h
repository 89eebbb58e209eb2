/*
 * router.h -- a router process (router_main.c): Kafka to per-key files,
 * at least once. Forked by the master when [router] enabled = yes; it
 * never writes to the ring.
 */
#ifndef FB_ROUTER_H
#define FB_ROUTER_H

#include "common/conf.h"
#include "common/ring.h"

int fb_router_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);

/* `fbpiped replay [--dry-run] [-c FILE] DEAD-LETTER-FILE...` (argv[0] is
 * "replay"): dead letters produced to the topic again; an exit status */
int fb_replay_main(int argc, char **argv);

#endif /* FB_ROUTER_H */
