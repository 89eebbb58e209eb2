/*
 * agent.h -- the Fluent Bit output plugin's work, in fbpipe-agent.so: what
 * out_fbpipe.so (the shim Fluent Bit loads) forwards its calls to. The
 * structs are Fluent Bit's proxy ABI, as much of them as is read here.
 *
 * The agent library is opened with RTLD_DEEPBIND, so that it and the
 * libraries it pulls in (gRPC, c-ares, protobuf-c, msgpack-c) bind to
 * their own copies, never to the ones the fluent-bit executable exports.
 */
#ifndef FB_PLUGIN_AGENT_H
#define FB_PLUGIN_AGENT_H

#include <stddef.h>

/* Fluent Bit's return codes */
#define FB_FLB_ERROR 0
#define FB_FLB_OK 1
#define FB_FLB_RETRY 2

struct flb_plugin_proxy_def {
    int type;  /* 2: output */
    int proxy; /* 11: the Go proxy ABI */
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map;
};

struct flb_api_head {
    const char *(*output_get_property)(const char *key, void *o_ins);
};

struct flb_plugin_proxy_context {
    void *remote_context;
    void *proxy;
};

struct flbgo_output_plugin {
    char *name;
    struct flb_api_head *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
};

/* What Fluent Bit calls in out_fbpipe.so (the proxy ABI). */
int FLBPluginRegister(struct flb_plugin_proxy_def *def);
int FLBPluginInit(struct flbgo_output_plugin *p);
int FLBPluginFlushCtx(void *ctx, const void *data, size_t size, char *tag);
int FLBPluginExitCtx(void *ctx);
int FLBPluginExit(void);
int FLBPluginUnregister(void *def);

/* The agent's entry points (looked up by the shim). */
typedef int (*fb_agent_init_fn)(struct flbgo_output_plugin *p);
typedef int (*fb_agent_flush_fn)(void *ctx, const void *data, size_t size, const char *tag);
typedef int (*fb_agent_exit_ctx_fn)(void *ctx);

int fb_agent_init(struct flbgo_output_plugin *p);
int fb_agent_flush(void *ctx, const void *data, size_t size, const char *tag);
int fb_agent_exit_ctx(void *ctx);

#endif /* FB_PLUGIN_AGENT_H */
