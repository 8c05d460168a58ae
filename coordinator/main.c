/* edgefleet-coordinator: the fleet coordinator: registers agents and routes requests.
 * Thin main: parse options, load the key, wire registry + scheduler + the three endpoints onto
 * one libuv loop, run until SIGINT/SIGTERM, then fail what is still open and tear down. */
#include "config.h"
#include "coord.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: edgefleet-coordinator --key FILE --allow-dir DIR [options]\n"
            "  the fleet coordinator: registers agents and routes requests\n"
            "  --key FILE                 the coordinator's secret key (NAME.key, mode 0600)\n"
            "  --allow-dir DIR            holds agents/, clients/, operators/ of .pub files\n"
            "  --agents-endpoint EP       (default " COORD_AGENTS_ENDPOINT ")\n"
            "  --clients-endpoint EP      (default " COORD_CLIENTS_ENDPOINT ")\n"
            "  --telemetry-endpoint EP    (default " COORD_TELEMETRY_ENDPOINT ")\n"
            "                             endpoints are tcp://HOST:PORT; HOST * binds them all\n"
            "  --heartbeat-ms N           heartbeat interval both ways (default 1000)\n"
            "  --liveness N               silent intervals before an agent is dead (default 3)\n"
            "  --queue N                  queued requests per model (default 256)\n"
            "  --client-max N             queued + running requests per client key, over all\n"
            "                             models (default 64): one client cannot fill the\n"
            "                             queues, and clients take turns in each model's queue\n"
            "  --orphan-grace-ms N        fail queued requests of a model that no agent has\n"
            "                             served for N ms (default 30000)\n"
            "  --client-stall-ms N        a client that reads none of its stream for N ms loses\n"
            "                             the request (default 10000)\n"
            "  --max-resumes N            times a request whose agent is lost continues on\n"
            "                             another agent before it fails (default 3, 0..15;\n"
            "                             0 = fail at once)\n"
            "  --log-level debug|info|warn|error   (default info)\n"
            "exit codes: 0 stopped by signal, 1 runtime failure, 2 bad arguments or config\n");
}

/* Log lines a peer can trigger (refusals, bad messages): one a second per key, and at most
 * COORD_LOG_LINES a second in all. */
#define COORD_LOG_INTERVAL_MS 1000
#define COORD_LOG_KEYS        256
#define COORD_LOG_LINES       20

/* A whole decimal number in [min, max], or -1. */
static long parse_count(const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    return v;
}

static const struct option long_options[] = {{"help", no_argument, 0, 'h'},
                                             {"log-level", required_argument, 0, 'l'},
                                             {"agents-endpoint", required_argument, 0, 'a'},
                                             {"clients-endpoint", required_argument, 0, 'c'},
                                             {"telemetry-endpoint", required_argument, 0, 't'},
                                             {"key", required_argument, 0, 'k'},
                                             {"allow-dir", required_argument, 0, 'd'},
                                             {"heartbeat-ms", required_argument, 0, 'H'},
                                             {"liveness", required_argument, 0, 'L'},
                                             {"queue", required_argument, 0, 'q'},
                                             {"orphan-grace-ms", required_argument, 0, 'o'},
                                             {"client-stall-ms", required_argument, 0, 's'},
                                             {"client-max", required_argument, 0, 'm'},
                                             {"max-resumes", required_argument, 0, 'r'},
                                             {0, 0, 0, 0}};

/* The numeric options: name, bounds, and where each goes. */
typedef struct {
    int ch;
    const char *name;
    long min, max;
    size_t offset; /* of its uint32_t in coord_config */
} count_option;

static const count_option count_options[] = {
    {'H', "heartbeat-ms", 10, 3600000, offsetof(coord_config, heartbeat_ms)},
    {'L', "liveness", 1, 1000000, offsetof(coord_config, liveness)},
    {'q', "queue", 1, 1000000, offsetof(coord_config, queue)},
    {'o', "orphan-grace-ms", 1, 86400000, offsetof(coord_config, orphan_grace_ms)},
    {'s', "client-stall-ms", 100, 3600000, offsetof(coord_config, client_stall_ms)},
    {'m', "client-max", 1, 1000000, offsetof(coord_config, client_max)},
    {'r', "max-resumes", 0, FLIGHT_RESUMES_MAX, offsetof(coord_config, max_resumes)},
};

/* Fill cfg from argv. Returns 0, 1 for --help, or 2 (message printed). */
static int parse_options(int argc, char **argv, coord_config *cfg)
{
    int ch;
    long v;
    log_level lvl;
    while ((ch = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (ch) {
        case 'h':
            usage(stdout);
            return 1;
        case 'l':
            if (log_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "edgefleet-coordinator: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            log_set_level(lvl);
            break;
        case 'a':
            cfg->agents_endpoint = optarg;
            break;
        case 'c':
            cfg->clients_endpoint = optarg;
            break;
        case 't':
            cfg->telemetry_endpoint = optarg;
            break;
        case 'k':
            cfg->key_path = optarg;
            break;
        case 'd':
            cfg->allow_dir = optarg;
            break;
        case 'H':
        case 'L':
        case 'q':
        case 'o':
        case 's':
        case 'm':
        case 'r': {
            const count_option *o = count_options;
            while (o->ch != ch)
                o++;
            v = parse_count(optarg, o->min, o->max);
            if (v < 0) {
                fprintf(stderr,
                        "edgefleet-coordinator: --%s: \"%s\" is not a number in [%ld, %ld]\n",
                        o->name, optarg, o->min, o->max);
                return 2;
            }
            *(uint32_t *)((char *)cfg + o->offset) = (uint32_t)v;
            break;
        }
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgefleet-coordinator: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* Check the options' values and what they name on disk. Returns 0 or 2 (message printed). */
static int load_config(coord *c)
{
    ef_errmsg em = {{0}};
    if (!c->cfg.key_path || !c->cfg.allow_dir) {
        fprintf(stderr, "edgefleet-coordinator: --key and --allow-dir are required\n");
        return 2;
    }
    const struct {
        const char *flag, *endpoint;
    } endpoints[] = {{"--agents-endpoint", c->cfg.agents_endpoint},
                     {"--clients-endpoint", c->cfg.clients_endpoint},
                     {"--telemetry-endpoint", c->cfg.telemetry_endpoint}};
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        if (config_check_endpoint(endpoints[i].endpoint, &em) != 0) {
            fprintf(stderr, "edgefleet-coordinator: %s: %s\n", endpoints[i].flag, em.msg);
            return 2;
        }
    }
    if (keys_load_pair(c->cfg.key_path, &c->keys, &em) != 0) {
        fprintf(stderr, "edgefleet-coordinator: %s\n", em.msg);
        return 2;
    }
    struct stat st;
    if (stat(c->cfg.allow_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "edgefleet-coordinator: --allow-dir %s: not a directory\n",
                c->cfg.allow_dir);
        return 2;
    }
    if (gethostname(c->name, sizeof c->name) != 0)
        snprintf(c->name, sizeof c->name, "coordinator");
    c->name[sizeof c->name - 1] = '\0';
    return 0;
}

static int wire(coord *c)
{
    registry_params rp = registry_default_params();
    rp.heartbeat_interval_ms = c->cfg.heartbeat_ms;
    rp.liveness = c->cfg.liveness;
    scheduler_params sp = scheduler_default_params();
    sp.max_queued_per_model = c->cfg.queue;
    sp.max_per_client = c->cfg.client_max;
    sp.orphan_grace_ms = c->cfg.orphan_grace_ms;
    ef_errmsg em = {{0}};
    c->transport = transport_new(c->loop);
    c->peers = peers_new();
    c->log_limit = ratelimit_new(COORD_LOG_INTERVAL_MS, COORD_LOG_KEYS, COORD_LOG_LINES);
    c->registry = registry_new(&rp);
    c->scheduler = c->registry ? scheduler_new(c->registry, &sp) : NULL;
    if (!c->transport || !c->scheduler || !c->peers || !c->log_limit) {
        log_error("start-up failed: out of memory or ZeroMQ context");
        return 1;
    }
    if (agents_link_open(c, &em) != 0 || frontend_open(c, &em) != 0 ||
        telemetry_open(c, &em) != 0) {
        log_error("%s", em.msg);
        return 1;
    }
    log_info("listening: agents %s, clients %s, telemetry %s; heartbeat %u ms, liveness %u, "
             "queue %u per model, %u per client",
             c->cfg.agents_endpoint, c->cfg.clients_endpoint, c->cfg.telemetry_endpoint,
             c->cfg.heartbeat_ms, c->cfg.liveness, c->cfg.queue, c->cfg.client_max);
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    log_info("signal %d: stopping", signum);
    uv_stop(h->loop);
}

static void teardown(coord *c)
{
    if (c->scheduler)
        request_flush(c); /* every open request gets an error, not a hang */
    if (c->agents)
        agents_link_close(c);
    request_close(c);
    transport_destroy(&c->transport);
    uv_run(c->loop, UV_RUN_NOWAIT); /* close callbacks */
    scheduler_destroy(&c->scheduler);
    registry_destroy(&c->registry);
    peers_destroy(&c->peers);
    ratelimit_destroy(&c->log_limit);
}

int main(int argc, char **argv)
{
    log_set_component("coordinator");
    coord c;
    memset(&c, 0, sizeof c);
    c.cfg = (coord_config){.agents_endpoint = COORD_AGENTS_ENDPOINT,
                           .clients_endpoint = COORD_CLIENTS_ENDPOINT,
                           .telemetry_endpoint = COORD_TELEMETRY_ENDPOINT,
                           .heartbeat_ms = 1000,
                           .liveness = 3,
                           .queue = 256,
                           .client_max = 64,
                           .orphan_grace_ms = 30000,
                           .client_stall_ms = DELIVERY_STALL_MS,
                           .max_resumes = 3};
    int rc = parse_options(argc, argv, &c.cfg);
    if (rc)
        return rc == 1 ? 0 : 2;
    if ((rc = load_config(&c)) != 0)
        return rc;
    uv_loop_t loop;
    uv_loop_init(&loop);
    c.loop = &loop;
    uv_signal_t sigint, sigterm;
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    request_init(&c); /* its timers must exist before anything can fail */
    rc = wire(&c);
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    teardown(&c);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_warn("loop closed with handles still open");
    log_info("stopped");
    return rc;
}
