/*
 * router_json.h -- what the router's line writer needs of JSON, without
 * building a tree: check that a text is one JSON value and copy it without
 * its insignificant white space (so that it fits on one line), and escape
 * a UTF-8 text as a JSON string.
 *
 * The input is hostile: the check is bounded in depth and reads each byte
 * once; it never writes beyond the room it is given. Never logs.
 */
#ifndef FB_ROUTER_JSON_H
#define FB_ROUTER_JSON_H

#include <stddef.h>

#define FB_JSON_MAX_DEPTH 128

/* in[0..len) as one JSON value (RFC 8259, surrogates paired, at most
 * FB_JSON_MAX_DEPTH nested arrays and objects) copied into out without
 * white space outside strings; out has room for len bytes. Returns the
 * length written, or -1 when in is not such a value. in must be UTF-8. */
long fb_json_compact(const char *in, size_t len, char *out);

/* in[0..len) (UTF-8) as a JSON string with its quotes into out, which has
 * room for 6 * len + 2 bytes; returns the length written. */
size_t fb_json_quote(const char *in, size_t len, char *out);

#endif /* FB_ROUTER_JSON_H */
