/*
 * metrics_http.h -- the metrics child (metrics_http.c): the metrics zone
 * served over HTTP (GET /metrics, /healthz, /readyz). Forked by the
 * master when [metrics] listen is set; it only reads the zone, never the
 * ring, and never writes to either.
 */
#ifndef FB_METRICS_HTTP_H
#define FB_METRICS_HTTP_H

#include "common/conf.h"
#include "common/ring.h"

#define FB_METRICS_CONNECTIONS 64 /* open connections at most */
#define FB_METRICS_TIMEOUT_S 10   /* a connection idle this long is closed */

/* An fb_child_main_t (master.h): serve until TERM; 0 then, 1 when it
 * cannot listen (said once, in the log; the master starts it again with
 * back-off while the other roles run on). Never 2: nothing here may stop
 * the daemon. */
int fb_metrics_main(const fb_conf_t *conf, fb_ring_t *ring, unsigned index);

#endif /* FB_METRICS_HTTP_H */
