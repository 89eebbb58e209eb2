/*
 * metrics_render.h -- what the metrics zone says, as text: the Prometheus
 * exposition (text format 0.0.4) that GET /metrics serves, and the
 * verdict of GET /readyz, into a buffer that grows.
 *
 * Reads a zone (common/metrics.h) and nothing else: it must never write
 * to the zone, do I/O or keep state between calls, so that a unit test
 * can render a zone it filled and the metrics child can render from its
 * server thread.
 */
#ifndef FB_METRICS_RENDER_H
#define FB_METRICS_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"

/* Text that grows; failed once an allocation failed (then it stops
 * growing, and the text is not to be used). Zero it to start. */
typedef struct fb_mbuf {
    fb_buf_t text; /* NUL-terminated while !failed */
    bool failed;
} fb_mbuf_t;

void fb_mbuf_put(fb_mbuf_t *b, const char *s, size_t len);
void fb_mbuf_printf(fb_mbuf_t *b, const char *fmt, ...) FB_PRINTF(2, 3);
void fb_mbuf_free(fb_mbuf_t *b);

/* s as a label value of the text format: backslash, double quote and
 * newline escaped (\\, \", \n); the quotes around it are the caller's. */
void fb_metrics_label_escape(fb_mbuf_t *b, const char *s);

/* Every series of the zone m, appended to out (see fbpiped(8), METRICS).
 * 0, or -1 when out ran out of memory. */
int fb_metrics_render(const fb_metrics_t *m, fb_mbuf_t *out);

/* Whether the roles a configuration runs are ready: with the ingester, a
 * worker serving and the producer's Kafka up; with the routers, a router
 * with a partition assigned. 1 (ready), or 0 and why gets one line (no
 * newline) naming every role that is not. */
int fb_metrics_ready(const fb_metrics_t *m, bool ingester, bool routers, char *why, size_t cap);

#endif /* FB_METRICS_RENDER_H */
