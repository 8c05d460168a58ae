/* edgefleet-agent: the edge daemon: serves GGUF models to the coordinator.
 * Thin main: parse options and config, load the models (engine), dial the coordinator
 * (uplink), run the loop until SIGINT/SIGTERM. Exit codes: 0 stopped by signal, 1 runtime
 * failure, 2 bad arguments, config, keys or model file. */
#include "agent_config.h"
#include "agent_options.h"
#include "config.h"
#include "engine.h"
#include "keys.h"
#include "log.h"
#include "sysinfo.h"
#include "telemetry.h"
#include "transport.h"
#include "uplink.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Config file, then command line on top. Returns 0 or -1 (message printed). */
static int build_config(const agent_options *o, agent_config *cfg)
{
    ef_errmsg em = {{0}};
    if (o->config && agent_config_load(cfg, o->config, &em) != 0) {
        fprintf(stderr, "edgefleet-agent: %s\n", em.msg);
        return -1;
    }
    if (cfg->has_log_level && log_get_level() == LOG_INFO)
        log_set_level(cfg->level); /* --log-level, when given, wins */
    for (size_t i = 0; i < o->n_models; i++) {
        backend_kind kind = o->simulated ? BACKEND_SIMULATED : BACKEND_LLAMA;
        if (agent_config_add_model(cfg, o->models[i], kind, &em) != 0) {
            fprintf(stderr, "edgefleet-agent: %s\n", em.msg);
            return -1;
        }
        cfg->models[cfg->n_models - 1].sim_tokens_per_s = o->sim_tps;
    }
    agent_config_defaults(cfg, o->ctx, o->slots, o->threads);
    const char **dst[] = {(const char **)&cfg->name, (const char **)&cfg->coordinator,
                          (const char **)&cfg->server_key, (const char **)&cfg->key};
    const char *src[] = {o->name, o->coordinator, o->server_key, o->key};
    for (size_t i = 0; i < 4; i++) {
        if (src[i]) {
            free((char *)*dst[i]);
            *dst[i] = strdup(src[i]);
        }
    }
    if (o->heartbeat_ms)
        cfg->heartbeat_ms = o->heartbeat_ms;
    if (o->has_drain_timeout)
        cfg->drain_timeout_ms = o->drain_timeout_ms;
    if (cfg->n_models == 0) {
        fprintf(stderr, "edgefleet-agent: no model to serve (--model PATH or --config FILE)\n");
        return -1;
    }
    return 0;
}

/* Room for the names of llama.cpp's built-in chat templates (about 50, 600 bytes in 2025). */
#define AGENT_TEMPLATE_NAMES_CAP 2048

/* Each chat_template must be one llama.cpp can apply: a typo is found now, with its line, not
 * as every chat request to that model failing. Returns 0 or -1 (message printed). */
static int check_templates(const agent_options *o, const agent_config *cfg)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        const backend_params *m = &cfg->models[i];
        char known[AGENT_TEMPLATE_NAMES_CAP];
        if (!m->chat_template ||
            backend_llama_check_template(m->chat_template, known, sizeof known) == 0)
            continue;
        fprintf(stderr,
                "edgefleet-agent: %s:%d: unknown chat_template \"%.80s\" in [model %s]: neither a "
                "built-in name nor a template llama.cpp recognises; built-in names: %s\n",
                o->config ? o->config : "-", cfg->origins[i].chat_template_line, m->chat_template,
                m->name, known);
        return -1;
    }
    return 0;
}

/* Link options and keys. Returns 0 or -1 (message printed). */
static int load_link(const agent_config *cfg, keys_pair *keys, char server[KEYS_Z85_LEN + 1])
{
    const char *missing = !cfg->coordinator  ? "--coordinator"
                          : !cfg->server_key ? "--server-key"
                          : !cfg->key        ? "--key"
                                             : NULL;
    if (missing) {
        fprintf(stderr, "edgefleet-agent: %s is required (or set it in [agent])\n", missing);
        return -1;
    }
    ef_errmsg em = {{0}};
    if (keys_load_pair(cfg->key, keys, &em) != 0 ||
        keys_load_public(cfg->server_key, server, &em) != 0) {
        fprintf(stderr, "edgefleet-agent: %s\n", em.msg);
        return -1;
    }
    return 0;
}

typedef struct {
    uv_async_t events;
    uv_signal_t sigint, sigterm;
    uplink *uplink;
    uint32_t drain_timeout_ms;
} agent_loop;

static void on_engine_events(uv_async_t *h)
{
    agent_loop *al = h->data;
    if (al->uplink)
        uplink_deliver(al->uplink);
}

/* Called on the inference thread: uv_async_send is the one libuv call that is thread-safe. */
static void notify_loop(void *user) { uv_async_send(user); }

static void on_drained(void *loop) { uv_stop(loop); }

/* The first signal drains (running requests finish, then the agent leaves the fleet); a second
 * one, from an impatient operator or systemd's stop timeout, stops at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    agent_loop *al = h->data;
    log_info("signal %d (%s)", signum, signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (al->uplink)
        uplink_stop(al->uplink, al->drain_timeout_ms, on_drained, h->loop);
    else
        uv_stop(h->loop);
}

static int serve(uv_loop_t *loop, agent_loop *al, engine *e, const agent_config *cfg,
                 const keys_pair *keys, const char *server)
{
    transport *t = transport_new(loop);
    if (!t) {
        log_error("cannot start the transport");
        return 1;
    }
    sysinfo_board board;
    sysinfo_read_board(&board);
    uplink_params up = {.loop = loop,
                        .transport = t,
                        .engine = e,
                        .endpoint = cfg->coordinator,
                        .name = cfg->name,
                        .server_public = server,
                        .keys = keys,
                        .heartbeat_ms = cfg->heartbeat_ms};
    ef_errmsg em = {{0}};
    al->uplink = uplink_new(&up, &em);
    if (!al->uplink) {
        log_error("%s", em.msg);
        transport_destroy(&t);
        return 1;
    }
    al->drain_timeout_ms = cfg->drain_timeout_ms;
    al->sigint.data = al->sigterm.data = al;
    uv_signal_start(&al->sigint, on_signal, SIGINT);
    uv_signal_start(&al->sigterm, on_signal, SIGTERM);
    backend_desc d0;
    engine_model_desc(e, 0, &d0);
    agent_telemetry *tel =
        agent_telemetry_new(loop, e, al->uplink, cfg->telemetry_ms, d0.simulated);
    log_info("agent on %s serving %zu model(s)%s%s", board.hostname, engine_n_models(e),
             up.name ? ", asking for the name " : "", up.name ? up.name : "");
    uv_run(loop, UV_RUN_DEFAULT);
    agent_telemetry_destroy(&tel);
    uplink_destroy(&al->uplink);
    transport_destroy(&t);
    return 0;
}

int main(int argc, char **argv)
{
    log_set_component("agent");
    agent_options o = {0};
    int rc = agent_options_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    agent_config cfg = {.drain_timeout_ms = AGENT_DRAIN_TIMEOUT_MS};
    keys_pair keys;
    char server[KEYS_Z85_LEN + 1];
    /* Keys before models: a bad key file is reported at once, not after loading gigabytes. */
    if (build_config(&o, &cfg) != 0 || check_templates(&o, &cfg) != 0 ||
        load_link(&cfg, &keys, server) != 0) {
        agent_config_free(&cfg);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    agent_loop al = {0};
    uv_async_init(&loop, &al.events, on_engine_events);
    al.events.data = &al;
    uv_signal_init(&loop, &al.sigint);
    uv_signal_init(&loop, &al.sigterm);
    engine_params ep = {.models = cfg.models,
                        .n_models = cfg.n_models,
                        .notify = notify_loop,
                        .notify_user = &al.events};
    int err = 0;
    ef_errmsg em = {{0}};
    engine *e = engine_new(&ep, &err, &em);
    if (!e)
        fprintf(stderr, "edgefleet-agent: %s\n", em.msg);
    int status = e ? 0 : 2;
    if (status == 0)
        status = serve(&loop, &al, e, &cfg, &keys, server);
    engine_destroy(&e); /* joins the inference thread: no notify after this */
    uv_close((uv_handle_t *)&al.events, NULL);
    uv_close((uv_handle_t *)&al.sigint, NULL);
    uv_close((uv_handle_t *)&al.sigterm, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    agent_config_free(&cfg);
    return status;
}
