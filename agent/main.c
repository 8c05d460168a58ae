/* edgefleet-agent: the edge daemon: serves GGUF models to the coordinator.
 * Thin main: parse options and config, load the models (engine), dial the coordinator
 * (uplink), run the loop until SIGINT/SIGTERM. Exit codes: 0 stopped by signal, 1 runtime
 * failure, 2 bad arguments, config, keys or model file. */
#include "agent_config.h"
#include "config.h"
#include "engine.h"
#include "keys.h"
#include "log.h"
#include "sysinfo.h"
#include "transport.h"
#include "uplink.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
    const char *config, *name, *coordinator, *server_key, *key;
    const char *models[AGENT_MAX_MODELS];
    size_t n_models;
    uint32_t slots, ctx, threads, heartbeat_ms, drain_timeout_ms;
    int has_drain_timeout;
    int simulated;
    double sim_tps;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: edgefleet-agent --coordinator ENDPOINT --server-key FILE --key FILE\n"
            "                       (--model PATH ... | --config FILE) [options]\n"
            "  the edge daemon: serves GGUF models to an edgefleet coordinator\n"
            "  --coordinator ENDPOINT  coordinator's agent endpoint, e.g. tcp://10.0.0.1:7701\n"
            "  --server-key FILE       the coordinator's public key (NAME.pub)\n"
            "  --key FILE              this agent's secret key (NAME.key, mode 0600)\n"
            "  --name NAME             the name to ask for; the fleet names agents after their\n"
            "                          key's allowlist file (allow/agents/NAME.pub) and refuses\n"
            "                          any other (default: ask for none)\n"
            "  --config FILE           INI file: [agent] and [model NAME] sections\n"
            "  --model PATH            serve a GGUF file, named after its file stem (repeatable)\n"
            "  --slots N               parallel requests per model (default 1)\n"
            "  --ctx N                 context tokens per slot (default min(2048, model's))\n"
            "  --threads N             inference threads (default, or 0: all online CPUs)\n"
            "  --heartbeat-ms N        heartbeat interval (default 1000)\n"
            "  --drain-timeout-ms N    on SIGTERM/SIGINT, time running requests get to finish\n"
            "                          before the agent stops anyway (default 30000; a second\n"
            "                          signal stops at once)\n"
            "  --simulated             serve --model names with the simulated backend (no\n"
            "                          file is read; for fleet tests; reported as simulated)\n"
            "  --sim-tps N             simulated tokens/s per slot (default 20)\n"
            "  --log-level debug|info|warn|error|off   (default info)\n"
            "  --help\n"
            "exit codes: 0 stopped by signal, 1 runtime failure, 2 bad arguments, config, keys "
            "or model\n");
}

static int parse_number(const char *opt, const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (end == v || *end || *v == '-' || n < lo || n > hi) {
        fprintf(stderr, "edgefleet-agent: %s: \"%s\" is not a number in %u..%u\n", opt, v, lo, hi);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

/* Returns 0 to go on, 1 for --help, -1 on a bad argument. */
static int parse_args(int argc, char **argv, options *o)
{
    enum {
        O_COORD = 256,
        O_SKEY,
        O_KEY,
        O_NAME,
        O_CONFIG,
        O_MODEL,
        O_SLOTS,
        O_CTX,
        O_THREADS,
        O_HB,
        O_DRAIN,
        O_LOG,
        O_SIM,
        O_SIMTPS
    };
    static const struct option opts[] = {{"help", no_argument, 0, 'h'},
                                         {"coordinator", required_argument, 0, O_COORD},
                                         {"server-key", required_argument, 0, O_SKEY},
                                         {"key", required_argument, 0, O_KEY},
                                         {"name", required_argument, 0, O_NAME},
                                         {"config", required_argument, 0, O_CONFIG},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"slots", required_argument, 0, O_SLOTS},
                                         {"ctx", required_argument, 0, O_CTX},
                                         {"threads", required_argument, 0, O_THREADS},
                                         {"heartbeat-ms", required_argument, 0, O_HB},
                                         {"drain-timeout-ms", required_argument, 0, O_DRAIN},
                                         {"log-level", required_argument, 0, O_LOG},
                                         {"simulated", no_argument, 0, O_SIM},
                                         {"sim-tps", required_argument, 0, O_SIMTPS},
                                         {0, 0, 0, 0}};
    int c;
    uint32_t tps = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        log_level lvl;
        int rc = 0;
        switch (c) {
        case 'h':
            usage(stdout);
            return 1;
        case O_COORD: {
            ef_errmsg em = {{0}};
            if (config_check_endpoint(optarg, &em) != 0) {
                fprintf(stderr, "edgefleet-agent: --coordinator: %s\n", em.msg);
                return -1;
            }
            o->coordinator = optarg;
            break;
        }
        case O_SKEY:
            o->server_key = optarg;
            break;
        case O_KEY:
            o->key = optarg;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        case O_CONFIG:
            o->config = optarg;
            break;
        case O_MODEL:
            if (o->n_models == AGENT_MAX_MODELS) {
                fprintf(stderr, "edgefleet-agent: more than %d --model\n", AGENT_MAX_MODELS);
                return -1;
            }
            o->models[o->n_models++] = optarg;
            break;
        case O_SLOTS:
            rc = parse_number("--slots", optarg, 1, BACKEND_MAX_SLOTS, &o->slots);
            break;
        case O_CTX:
            rc = parse_number("--ctx", optarg, 16, 1u << 20, &o->ctx);
            break;
        case O_THREADS:
            rc = parse_number("--threads", optarg, 0, 256, &o->threads); /* 0 = all CPUs */
            break;
        case O_HB:
            rc = parse_number("--heartbeat-ms", optarg, 10, 600000, &o->heartbeat_ms);
            break;
        case O_DRAIN:
            rc = parse_number("--drain-timeout-ms", optarg, 0, 86400000, &o->drain_timeout_ms);
            o->has_drain_timeout = 1;
            break;
        case O_SIM:
            o->simulated = 1;
            break;
        case O_SIMTPS:
            rc = parse_number("--sim-tps", optarg, 1, 1000000, &tps);
            break;
        case O_LOG:
            if (log_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "edgefleet-agent: unknown log level \"%s\"\n", optarg);
                return -1;
            }
            log_set_level(lvl);
            break;
        default:
            usage(stderr);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    o->sim_tps = tps;
    if (optind < argc) {
        fprintf(stderr, "edgefleet-agent: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Config file, then command line on top. Returns 0 or -1 (message printed). */
static int build_config(const options *o, agent_config *cfg)
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
static int check_templates(const options *o, const agent_config *cfg)
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
    log_info("agent on %s serving %zu model(s)%s%s", board.hostname, engine_n_models(e),
             up.name ? ", asking for the name " : "", up.name ? up.name : "");
    uv_run(loop, UV_RUN_DEFAULT);
    uplink_destroy(&al->uplink);
    transport_destroy(&t);
    return 0;
}

int main(int argc, char **argv)
{
    log_set_component("agent");
    options o = {0};
    int rc = parse_args(argc, argv, &o);
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
