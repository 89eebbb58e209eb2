/*
 * units.h -- parsing of the value types used in fbpipe.conf.
 *
 * Pure functions: no logging, no allocation. Each returns 0 or -1 and, on
 * failure, points *why at a static phrase the caller puts in its message.
 */
#ifndef FB_UNITS_H
#define FB_UNITS_H

#include <stdbool.h>
#include <stdint.h>

int fb_parse_size(const char *s, uint64_t *out, const char **why);
int fb_parse_duration_ms(const char *s, uint64_t *out_ms, const char **why);
int fb_parse_bool(const char *s, bool *out, const char **why);
int fb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why);

#endif /* FB_UNITS_H */
