/*
 * out_fbpipe.c -- out_fbpipe.so, the object Fluent Bit loads (-e or
 * [PLUGINS]): the Fluent Bit proxy ABI's FLBPlugin* functions, and nothing
 * else exported. They are forwarded to the agent library, fbpipe-agent.so
 * beside this file, opened with RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND: the
 * fluent-bit executable exports its own msgpack, protobuf-c, c-ares and
 * more, and without DEEPBIND they would capture the calls of the agent and
 * of the libraries it pulls in (gRPC's c-ares among them). This file links
 * nothing but libdl and must never call into those libraries itself.
 */
#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "plugin/agent.h"

#define EXPORT __attribute__((visibility("default")))
#define AGENT_NAME "fbpipe-agent.so"

static void *agent;
static fb_agent_init_fn agent_init;
static fb_agent_flush_fn agent_flush;
static fb_agent_exit_ctx_fn agent_exit_ctx;

/* load -- the agent library beside this object; 0, or -1 after saying why. */
static int
load(void)
{
    Dl_info self;
    char path[4096], dir[4096];

    if (agent != NULL)
        return 0;
    if (dladdr((void *)load, &self) == 0 || self.dli_fname == NULL) {
        fprintf(stderr, "[output:fbpipe] cannot tell where out_fbpipe.so is\n");
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", self.dli_fname);
    snprintf(path, sizeof(path), "%s/%s", dirname(dir), AGENT_NAME);
    agent = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (agent == NULL) {
        fprintf(stderr, "[output:fbpipe] cannot load %s: %s\n", path, dlerror());
        return -1;
    }
    agent_init = (fb_agent_init_fn)dlsym(agent, "fb_agent_init");
    agent_flush = (fb_agent_flush_fn)dlsym(agent, "fb_agent_flush");
    agent_exit_ctx = (fb_agent_exit_ctx_fn)dlsym(agent, "fb_agent_exit_ctx");
    if (agent_init == NULL || agent_flush == NULL || agent_exit_ctx == NULL) {
        fprintf(stderr, "[output:fbpipe] %s is not the fbpipe agent library\n", path);
        dlclose(agent);
        agent = NULL;
        return -1;
    }
    return 0;
}

EXPORT int
FLBPluginRegister(struct flb_plugin_proxy_def *def)
{
    if (load() < 0)
        return -1;
    def->type = 2;   /* output */
    def->proxy = 11; /* the Go proxy ABI */
    def->flags = 0;
    def->name = "fbpipe";
    def->description = "fbpipe: events to fbpiped over gRPC, acknowledged after Kafka";
    return 0;
}

EXPORT int
FLBPluginInit(struct flbgo_output_plugin *p)
{
    return load() < 0 ? FB_FLB_ERROR : agent_init(p);
}

EXPORT int
FLBPluginFlushCtx(void *ctx, const void *data, size_t size, char *tag)
{
    return agent_flush(ctx, data, size, tag);
}

EXPORT int
FLBPluginExitCtx(void *ctx)
{
    return agent_exit_ctx(ctx);
}

EXPORT int
FLBPluginExit(void)
{
    return FB_FLB_OK;
}

EXPORT int
FLBPluginUnregister(void *def)
{
    (void)def;
    if (agent != NULL)
        dlclose(agent);
    agent = NULL;
    return 0;
}
