/* edgefleet-coordinator: the fleet coordinator: registers agents and routes requests.
 * Thin main: parse options, load the key, wire registry + scheduler + the three endpoints onto
 * one libuv loop, run until SIGINT/SIGTERM, then fail what is still open and tear down. */
#include "clock.h"
#include "config.h"
#include "coord.h"
#include "log.h"
#include "coord_options.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Log lines a peer can trigger (refusals, bad messages): one a second per key, and at most
 * COORD_LOG_LINES a second in all. */
#define COORD_LOG_INTERVAL_MS 1000
#define COORD_LOG_KEYS        256
#define COORD_LOG_LINES       20

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
    c->metrics = metrics_new();
    c->scheduler = c->registry ? scheduler_new(c->registry, &sp) : NULL;
    if (!c->transport || !c->scheduler || !c->peers || !c->log_limit || !c->metrics) {
        log_error("start-up failed: out of memory or ZeroMQ context");
        return 1;
    }
    transport_set_zap_rate(c->transport, c->cfg.zap_rate, 0);
    if (agents_link_open(c, &em) != 0 || frontend_open(c, &em) != 0 ||
        telemetry_open(c, &em) != 0) {
        log_error("%s", em.msg);
        return 1;
    }
    int rc = gateway_open(c, &em);
    if (rc) {
        log_error("%s", em.msg);
        return rc == EF_ECONFIG ? 2 : 1;
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

/* HTTP answers being written get a moment to go out (an idle keep-alive connection holds
 * this for the whole moment: h2o 2.2 closes those only on their idle timeout). */
#define COORD_HTTP_DRAIN_MS 1000

static void drain_http(coord *c)
{
    uint64_t until = clock_mono_ms() + COORD_HTTP_DRAIN_MS;
    while (gateway_conns(c) && clock_mono_ms() < until) {
        uv_run(c->loop, UV_RUN_NOWAIT);
        uv_sleep(5);
    }
}

/* Returns 1 when the loop can be run to its end (no HTTP connection outlived the gateway). */
static int teardown(coord *c)
{
    if (c->scheduler)
        request_flush(c); /* every open request gets an error, not a hang */
    gateway_shutdown(c);
    drain_http(c);
    if (c->agents)
        agents_link_close(c);
    request_close(c);
    int can_close = gateway_close(c) == 0;
    transport_destroy(&c->transport);
    uv_run(c->loop, UV_RUN_NOWAIT); /* close callbacks */
    telemetry_close(c);
    scheduler_destroy(&c->scheduler);
    registry_destroy(&c->registry);
    peers_destroy(&c->peers);
    ratelimit_destroy(&c->log_limit);
    metrics_destroy(&c->metrics);
    return can_close;
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
                           .max_resumes = 3,
                           .telemetry_window_s = 600,
                           .zap_rate = COORD_ZAP_RATE_DEFAULT};
    int rc = coord_options_parse(argc, argv, &c.cfg);
    if (rc)
        return rc == 1 ? 0 : 2;
    if ((rc = load_config(&c)) != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN); /* an HTTP client gone mid-write is EPIPE for h2o, not our death */
    static uv_loop_t loop;    /* static: reachable to the end if HTTP connections keep it open */
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
    int can_close = teardown(&c);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    if (can_close) {
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) != 0)
            log_warn("loop closed with handles still open");
    }
    log_info("stopped");
    return rc;
}
