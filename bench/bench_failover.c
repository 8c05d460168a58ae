/* bench_failover: how long a client's stream stalls when its agent dies, from the death to the
 * next token at the client, for a killed process (SIGKILL: its kernel closes the connection,
 * which the coordinator sees at once) and a frozen one (SIGSTOP: silence, which takes the
 * liveness window). Real coordinator, real agents serving a real model, on loopback.
 *   bench_failover --build-dir build [--model PATH] [--runs N] [--heartbeat-ms N]
 * Prints p50/p99/max in ms per kind of the stall: the longest wait for a piece of text after the
 * fault (from the fault itself, or from the last piece already on its way when it struck). */
#include "clock.h"
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "test_support.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_AGENTS 3

typedef struct {
    fleet_fixture f;
    pid_t agents[N_AGENTS];
    char model_path[512], model[64], hb[16];
} bench;

static int start_agent(bench *b, int i)
{
    char bin[512], key[512], server[512], log[512], name[16];
    snprintf(name, sizeof name, "board%d", i);
    ts_bin_path("agent/edgefleet-agent", bin, sizeof bin);
    fx_key_path(&b->f, name, "key", key, sizeof key);
    fx_key_path(&b->f, "coordinator", "pub", server, sizeof server);
    snprintf(log, sizeof log, "%s/agent-%d.log", b->f.dir, i);
    char *argv[] = {bin,
                    "--coordinator",
                    b->f.agents_ep,
                    "--server-key",
                    server,
                    "--key",
                    key,
                    "--model",
                    b->model_path,
                    "--slots",
                    "1",
                    "--threads",
                    "1",
                    "--ctx",
                    "2048",
                    "--heartbeat-ms",
                    b->hb,
                    "--log-level",
                    "warn",
                    NULL};
    b->agents[i] = ts_spawn(argv, log);
    return b->agents[i] > 0 ? 0 : -1;
}

/* Which agent is busy now (by status), or -1. */
static int serving(const bench *b) { return fx_busy_agent(&b->f, "op", "board%d"); }

typedef struct {
    bench *b;
    int sig, pieces, victim;
    uint64_t killed_ns; /* the fault */
    uint64_t last_ns;   /* the last piece */
    uint64_t stall_ns;  /* the longest wait for a piece since the fault (what the caller sees:
                           pieces already on their way when it struck arrive at once) */
} run_state;

static int on_piece(const char *text, size_t len, void *user)
{
    (void)text;
    (void)len;
    run_state *r = user;
    uint64_t now = clock_mono_ns();
    if (r->killed_ns) {
        uint64_t since = r->last_ns > r->killed_ns ? r->last_ns : r->killed_ns;
        if (now - since > r->stall_ns)
            r->stall_ns = now - since;
    }
    r->last_ns = now;
    if (++r->pieces == 20 && !r->killed_ns) {
        r->victim = serving(r->b);
        if (r->victim >= 0) {
            r->killed_ns = clock_mono_ns();
            kill(r->b->agents[r->victim], r->sig);
        }
    }
    return 0;
}

/* One faulted stream; returns the stall in ms, or -1. */
static double one_run(bench *b, int sig)
{
    run_state r = {.b = b, .sig = sig, .victim = -1};
    ef_client_t *c = fx_client(&b->f, "cli", 120000);
    ef_gen_params g = ef_gen_default_params();
    g.temperature = 0;
    g.max_tokens = 1500;
    ef_result res;
    int rc = c ? ef_client_generate(c, b->model, "Once upon a time", &g, on_piece, &r, &res) : -1;
    ef_client_destroy(&c);
    if (r.victim >= 0) { /* bring the fleet back to full strength for the next run */
        if (sig == SIGSTOP)
            kill(b->agents[r.victim], SIGCONT);
        ts_kill_wait(b->agents[r.victim], SIGKILL, 2000);
        start_agent(b, r.victim);
        fx_wait_agents(&b->f, "op", N_AGENTS, 20000);
    }
    if (rc != 0 || !r.killed_ns)
        return -1;
    return (double)r.stall_ns / 1e6;
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    if (n == 0) {
        printf("%-34s no successful run\n", what);
        return;
    }
    int p99 = (int)(0.99 * (n - 1) + 0.5);
    printf("%-34s runs %3d  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n", what, n, v[n / 2], v[p99],
           v[n - 1]);
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    const char *build = "build", *model = NULL;
    int runs = 20, hb_ms = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--build-dir"))
            build = argv[i + 1];
        else if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--heartbeat-ms"))
            hb_ms = atoi(argv[i + 1]);
    }
    if (runs < 1 || runs > 1000 || hb_ms < 50) {
        fprintf(stderr, "usage: bench_failover --build-dir DIR [--model PATH] [--runs N] "
                        "[--heartbeat-ms N]\n");
        return 2;
    }
    setenv("EDGEFLEET_BIN_DIR", build, 1);
    snprintf(b.hb, sizeof b.hb, "%d", hb_ms);
    if (model)
        snprintf(b.model_path, sizeof b.model_path, "%s", model);
    else if (ts_model_path("stories260K.gguf", b.model_path, sizeof b.model_path) != 0) {
        fprintf(stderr, "bench_failover: no model (--model PATH or $EDGEFLEET_MODEL_DIR)\n");
        return 2;
    }
    if (fx_setup(&b.f) || fx_add_key(&b.f, "op", "operators", NULL) ||
        fx_add_key(&b.f, "cli", "clients", NULL))
        return 1;
    for (int i = 0; i < N_AGENTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "board%d", i);
        if (fx_add_key(&b.f, name, "agents", NULL))
            return 1;
    }
    if (fx_start_coordinator(&b.f, hb_ms, 3, 64) != 0)
        return 1;
    for (int i = 0; i < N_AGENTS; i++)
        start_agent(&b, i);
    if (fx_wait_agents(&b.f, "op", N_AGENTS, 30000) != N_AGENTS)
        return 1;
    ef_client_t *op = fx_client(&b.f, "op", 5000);
    ef_fleet_status *st = NULL;
    if (!op || ef_client_status(op, &st) != 0)
        return 1;
    snprintf(b.model, sizeof b.model, "%s", st->agents[0].models[0].model);
    ef_fleet_status_free(&st);
    ef_client_destroy(&op);
    printf("bench_failover: %d agents, heartbeat %d ms, liveness 3, model %s\n", N_AGENTS, hb_ms,
           b.model_path);
    int sigs[2] = {SIGKILL, SIGSTOP};
    const char *names[2] = {"SIGKILL (connection closes)", "SIGSTOP (silence, liveness)"};
    for (int k = 0; k < 2; k++) {
        double *v = calloc((size_t)runs, sizeof *v);
        int n = 0;
        for (int i = 0; i < runs; i++) {
            double ms = one_run(&b, sigs[k]);
            if (ms >= 0)
                v[n++] = ms;
            fprintf(stderr, "\r%s: run %d/%d", names[k], i + 1, runs);
        }
        fprintf(stderr, "\n");
        report(names[k], v, n);
        free(v);
    }
    for (int i = 0; i < N_AGENTS; i++)
        ts_kill_wait(b.agents[i], SIGKILL, 2000);
    fx_teardown(&b.f);
    return 0;
}
