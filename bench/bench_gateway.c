/* bench_gateway: what the coordinator's OpenAI HTTP gateway (--http) costs against the native
 * libedgefleet path, on the same coordinator and the same instant fake agents (fake_agent.c:
 * --tokens N one-token chunks, then Done), in one run:
 *   latency: time to first token of single requests, a streamed POST /v1/completions on a
 *            keep-alive connection vs ef_client_generate, sampled alternately so load drift
 *            hits both; the added p50/p99 is the difference (target p50 < 0.5 ms);
 *   throughput: completions/s from K keep-alive connections (whole and streamed answers; one
 *            epoll thread, http_load.c) vs ef_client_generate from K threads, one client each
 *            (target gateway >= 0.5 x native).
 * `bench_gateway --llm ...` is the other half (gw_llm.c): 4 streams through the gateway in front
 * of a real agent vs llama-server (bench/run_gateway_bench.sh starts both). Fake agents are this
 * binary re-run with --fake-agent. A benchmark, never a test: it never fails on a ratio. */
#include "bench_gateway.h"
#include "bench_util.h"
#include "fake_agent.h"
#include "http_load.h"

#include "clock.h"
#include "edgefleet.h"
#include "keys.h"

#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_MODEL      "bench-model"
#define MAX_AGENTS       8
#define MAX_CONNS        256
#define MAX_SERIES       4
#define MAX_REPS         16
#define READY_TIMEOUT_MS 20000

typedef struct {
    const char *coordinator_bin, *work_dir, *summary, *log_level;
    int samples, reps, agents, slots, tokens;
    int conns[MAX_SERIES], n_conns;
    double seconds;
    char self[4096];
} gopts;

typedef struct {
    char dir[4096], allow[4200], coord_key[4300], coord_pub[4300], client_key[4300];
    char agents_ep[64], clients_ep[64], telemetry_ep[64], http_listen[64];
    int http_port;
    pid_t coordinator, fake[MAX_AGENTS];
    int n_fake;
} gfleet;

/* ---- the fleet ------------------------------------------------------------------------------ */

static int fleet_keys(const gopts *o, gfleet *fl)
{
    char sub[4300];
    snprintf(fl->dir, sizeof fl->dir, "%s/fleet", o->work_dir);
    if (bench_fleet_dirs(fl->dir, fl->allow, sizeof fl->allow) != 0)
        return EF_EIO;
    snprintf(fl->coord_key, sizeof fl->coord_key, "%s/coordinator.key", fl->dir);
    snprintf(fl->coord_pub, sizeof fl->coord_pub, "%s/coordinator.pub", fl->dir);
    snprintf(fl->client_key, sizeof fl->client_key, "%s/bench-client.key", fl->dir);
    ef_errmsg em = {""};
    keys_pair kp;
    int rc = bench_key_with_allow(fl->dir, "coordinator", NULL, &kp, &em);
    snprintf(sub, sizeof sub, "%s/clients", fl->allow);
    if (rc == 0)
        rc = bench_key_with_allow(fl->dir, "bench-client", sub, &kp, &em);
    snprintf(sub, sizeof sub, "%s/agents", fl->allow);
    for (int i = 0; rc == 0 && i < o->agents; i++) {
        char name[32];
        snprintf(name, sizeof name, "fake-%d", i);
        rc = bench_key_with_allow(fl->dir, name, sub, &kp, &em);
    }
    if (rc != 0)
        fprintf(stderr, "bench: %s\n", em.msg);
    return rc;
}

static int fleet_start(const gopts *o, gfleet *fl)
{
    int rc = fleet_keys(o, fl);
    if (rc != 0)
        return rc;
    snprintf(fl->agents_ep, sizeof fl->agents_ep, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(fl->clients_ep, sizeof fl->clients_ep, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(fl->telemetry_ep, sizeof fl->telemetry_ep, "tcp://127.0.0.1:%d", bench_free_port());
    fl->http_port = bench_free_port();
    snprintf(fl->http_listen, sizeof fl->http_listen, "127.0.0.1:%d", fl->http_port);
    char log[4400];
    snprintf(log, sizeof log, "%s/coordinator.log", o->work_dir);
    /* --client-max well above any window: both paths share the one client key's limit. */
    char *argv[] = {(char *)o->coordinator_bin,
                    "--key",
                    fl->coord_key,
                    "--allow-dir",
                    fl->allow,
                    "--agents-endpoint",
                    fl->agents_ep,
                    "--clients-endpoint",
                    fl->clients_ep,
                    "--telemetry-endpoint",
                    fl->telemetry_ep,
                    "--http",
                    fl->http_listen,
                    "--client-max",
                    "4096",
                    "--queue",
                    "4096",
                    "--log-level",
                    "warn",
                    NULL};
    fl->coordinator = bench_spawn(argv, log);
    char slots[16], tokens[16];
    snprintf(slots, sizeof slots, "%d", o->slots);
    snprintf(tokens, sizeof tokens, "%d", o->tokens);
    for (int i = 0; i < o->agents; i++) {
        char name[32], key[4400];
        snprintf(name, sizeof name, "fake-%d", i);
        snprintf(key, sizeof key, "%s/%s.key", fl->dir, name);
        snprintf(log, sizeof log, "%s/%s.log", o->work_dir, name);
        char *fa[] = {(char *)o->self, "--fake-agent", fl->agents_ep, fl->coord_pub, key, name,
                      BENCH_MODEL,     slots,          tokens,        NULL};
        fl->fake[fl->n_fake++] = bench_spawn(fa, log);
    }
    return fl->coordinator > 0 ? 0 : EF_EIO;
}

static void fleet_stop(gfleet *fl)
{
    for (int i = 0; i < fl->n_fake; i++)
        if (fl->fake[i] > 0)
            bench_stop(fl->fake[i], 3000);
    if (fl->coordinator > 0)
        bench_stop(fl->coordinator, 3000);
}

/* ---- the native path ------------------------------------------------------------------------ */

static int count_piece(const char *text, size_t len, void *user)
{
    (void)text;
    *(size_t *)user += len;
    return 0;
}

static ef_client_t *native_open(const gfleet *fl)
{
    ef_client_params p = ef_client_default_params();
    p.endpoint = fl->clients_ep;
    p.server_key_file = fl->coord_pub;
    p.key_file = fl->client_key;
    p.request_timeout_ms = 10000;
    char why[256];
    ef_client_t *c = NULL;
    if (ef_client_open(&p, &c, why, sizeof why) != 0)
        fprintf(stderr, "bench: native client: %s\n", why);
    return c;
}

/* One native request; true when it gave `tokens` bytes of text ("x" each) and no error. */
static bool native_one(ef_client_t *c, int tokens)
{
    ef_gen_params g = ef_gen_default_params();
    g.max_tokens = (uint32_t)tokens;
    g.temperature = 0;
    size_t got = 0;
    ef_result r;
    int rc = ef_client_generate(c, BENCH_MODEL, "hi", &g, count_piece, &got, &r);
    return rc == 0 && got == (size_t)tokens && r.completion_tokens == (uint32_t)tokens;
}

/* For the latency samples: the first piece's time, then keep counting. */
typedef struct {
    uint64_t first_ns;
    size_t got;
} first_piece;

static int on_first_piece(const char *text, size_t len, void *user)
{
    (void)text;
    first_piece *fp = user;
    if (!fp->first_ns)
        fp->first_ns = clock_mono_ns();
    fp->got += len;
    return 0;
}

static uint64_t native_ttft(ef_client_t *c, int tokens)
{
    ef_gen_params g = ef_gen_default_params();
    g.max_tokens = (uint32_t)tokens;
    g.temperature = 0;
    first_piece fp = {0};
    ef_result r;
    uint64_t t0 = clock_mono_ns();
    int rc = ef_client_generate(c, BENCH_MODEL, "hi", &g, on_first_piece, &fp, &r);
    return rc == 0 && fp.got == (size_t)tokens && fp.first_ns ? fp.first_ns - t0 : 0;
}

typedef struct {
    ef_client_t *c;
    int tokens;
    pthread_barrier_t *start;
    const uint64_t *deadline_ns;
    uint64_t ok, bad;
} native_worker;

static void *native_thread(void *arg)
{
    native_worker *w = arg;
    pthread_barrier_wait(w->start);
    while (clock_mono_ns() < *w->deadline_ns) {
        bool good = native_one(w->c, w->tokens);
        if (clock_mono_ns() > *w->deadline_ns)
            break; /* ended after the window: not counted, as for the gateway */
        good ? w->ok++ : w->bad++;
    }
    return NULL;
}

/* Completions/s of K threads, each calling ef_client_generate back to back on its client. */
static double native_rps(ef_client_t **clients, int k, const gopts *o, uint64_t *bad)
{
    native_worker w[MAX_CONNS];
    pthread_t th[MAX_CONNS];
    pthread_barrier_t start;
    uint64_t deadline = 0;
    pthread_barrier_init(&start, NULL, (unsigned)k + 1);
    for (int i = 0; i < k; i++) {
        w[i] = (native_worker){clients[i], o->tokens, &start, &deadline, 0, 0};
        pthread_create(&th[i], NULL, native_thread, &w[i]);
    }
    uint64_t t0 = clock_mono_ns();
    deadline = t0 + (uint64_t)(o->seconds * 1e9);
    pthread_barrier_wait(&start);
    uint64_t ok = 0;
    for (int i = 0; i < k; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        *bad += w[i].bad;
    }
    pthread_barrier_destroy(&start);
    return (double)ok / o->seconds;
}

/* ---- the gateway ---------------------------------------------------------------------------- */

typedef struct {
    int tokens;
} gw_check_ctx;

/* A whole answer: a text_completion of exactly `tokens` "x"s, usage saying so. */
static bool check_whole(hl_conn *c, void *user)
{
    const gw_check_ctx *k = user;
    gw_answer a;
    bool ok = gw_answer_json(c->body, &a) == 0 && a.text_len == (size_t)k->tokens &&
              a.usage_tokens == k->tokens && a.finish[0];
    gw_answer_free(&a);
    return ok;
}

/* A streamed answer: events whose texts make `tokens` "x"s, a finish_reason, then [DONE]. */
static bool check_stream(hl_conn *c, void *user)
{
    const gw_check_ctx *k = user;
    gw_answer a;
    bool ok = gw_answer_sse(c->body, &a) == 0 && a.text_len == (size_t)k->tokens && a.finish[0];
    gw_answer_free(&a);
    return ok;
}

static char *gw_body(const gopts *o, const gfleet *fl, bool stream, size_t *len)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"model\":\"" BENCH_MODEL "\",\"prompt\":\"hi\",\"max_tokens\":%d,"
             "\"temperature\":0,\"stream\":%s}",
             o->tokens, stream ? "true" : "false");
    return hl_post("127.0.0.1", fl->http_port, "/v1/completions", json, len);
}

/* Time to first token of one streamed request on the keep-alive connection c, ns; 0 if bad. */
static uint64_t gateway_ttft(hl_conn *c, const char *req, size_t len, gw_check_ctx *k)
{
    uint64_t t0 = clock_mono_ns();
    if (hl_request(c, req, len, 5000) != 0 || c->status != 200 || !check_stream(c, k) ||
        !c->t_first_ns)
        return 0;
    return c->t_first_ns - t0;
}

/* Wait until both paths complete a request: the fake agents registered, the gateway answers. */
static int wait_ready(const gfleet *fl, const gopts *o, ef_client_t *c)
{
    uint64_t t0 = clock_mono_ms();
    size_t len;
    char *req = gw_body(o, fl, true, &len);
    gw_check_ctx k = {o->tokens};
    int rc = EF_ETIMEDOUT;
    while (req && clock_mono_ms() - t0 < READY_TIMEOUT_MS) {
        hl_conn h;
        bool gw_ok = hl_open(&h, "127.0.0.1", fl->http_port) == 0 && gateway_ttft(&h, req, len, &k);
        hl_close(&h);
        if (gw_ok && native_one(c, o->tokens)) {
            rc = 0;
            break;
        }
        usleep(200 * 1000);
    }
    free(req);
    return rc;
}

/* ---- measurements --------------------------------------------------------------------------- */

typedef struct {
    double nat_p50, nat_p99, gw_p50, gw_p99; /* microseconds */
    size_t n_nat, n_gw;
    double nat[MAX_SERIES][MAX_REPS], whole[MAX_SERIES][MAX_REPS], stream[MAX_SERIES][MAX_REPS];
    int n_reps;
    uint64_t nat_bad, gw_bad, gw_http_err, gw_broken;
    int last_status;
    long coord_rss_kb;
    double coord_cpu_s;
} gresults;

static double percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    bench_median(v, n); /* sorts */
    return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

/* Alternate the two paths sample by sample (and which goes first) so drift hits both alike. */
static int measure_latency(const gopts *o, const gfleet *fl, ef_client_t *c, gresults *res)
{
    double *nv = calloc((size_t)o->samples, sizeof *nv),
           *gv = calloc((size_t)o->samples, sizeof *gv);
    size_t len;
    char *req = gw_body(o, fl, true, &len);
    hl_conn h;
    int rc = nv && gv && req && hl_open(&h, "127.0.0.1", fl->http_port) == 0 ? 0 : EF_EIO;
    gw_check_ctx k = {o->tokens};
    for (int i = 0; rc == 0 && i < o->samples; i++) {
        uint64_t n = 0, g = 0;
        if (i % 2) {
            n = native_ttft(c, o->tokens);
            g = gateway_ttft(&h, req, len, &k);
        } else {
            g = gateway_ttft(&h, req, len, &k);
            n = native_ttft(c, o->tokens);
        }
        if (n)
            nv[res->n_nat++] = (double)n / 1e3;
        if (g)
            gv[res->n_gw++] = (double)g / 1e3;
        if (!g) { /* a failed answer: count it and go on on a fresh connection */
            res->gw_broken++;
            hl_close(&h);
            if (hl_open(&h, "127.0.0.1", fl->http_port) != 0)
                rc = EF_EIO;
        }
        if ((i + 1) % (o->samples / 4 > 0 ? o->samples / 4 : 1) == 0)
            bench_progress("latency: %d/%d pairs", i + 1, o->samples);
    }
    if (rc == 0)
        hl_close(&h);
    res->nat_p50 = percentile(nv, res->n_nat, 0.50),
    res->nat_p99 = percentile(nv, res->n_nat, 0.99);
    res->gw_p50 = percentile(gv, res->n_gw, 0.50), res->gw_p99 = percentile(gv, res->n_gw, 0.99);
    free(nv), free(gv), free(req);
    return rc == 0 && res->n_nat && res->n_gw ? 0 : EF_EPROTO;
}

static double gateway_rps(const gopts *o, const gfleet *fl, int k, bool stream, gresults *res)
{
    size_t len;
    char *req = gw_body(o, fl, stream, &len);
    gw_check_ctx ck = {o->tokens};
    hl_load_params p = {.host = "127.0.0.1",
                        .port = fl->http_port,
                        .req = req,
                        .req_len = len,
                        .conns = k,
                        .seconds = o->seconds,
                        .check = stream ? check_stream : check_whole,
                        .user = &ck};
    hl_load_result r;
    int rc = req ? hl_load_run(&p, &r) : -1;
    free(req);
    if (rc != 0)
        return 0;
    res->gw_bad += r.bad, res->gw_http_err += r.http_err, res->gw_broken += r.broken;
    if (r.last_err_status)
        res->last_status = r.last_err_status;
    return (double)r.ok / r.seconds;
}

/* Each round runs every K on the three paths, the order turning from round to round. */
static void measure_throughput(const gopts *o, const gfleet *fl, ef_client_t **clients,
                               gresults *res)
{
    for (int r = 0; r < o->reps; r++, res->n_reps++) {
        for (int s = 0; s < o->n_conns; s++) {
            int k = o->conns[s];
            for (int step = 0; step < 3; step++) {
                int which = (step + r) % 3;
                if (which == 0)
                    res->nat[s][r] = native_rps(clients, k, o, &res->nat_bad);
                else if (which == 1)
                    res->whole[s][r] = gateway_rps(o, fl, k, false, res);
                else
                    res->stream[s][r] = gateway_rps(o, fl, k, true, res);
            }
            bench_progress("round %d/%d, K=%d: native %.0f, gateway whole %.0f, streamed %.0f "
                           "req/s (refused or bad so far: native %llu, gateway %llu)",
                           r + 1, o->reps, k, res->nat[s][r], res->whole[s][r], res->stream[s][r],
                           (unsigned long long)res->nat_bad,
                           (unsigned long long)(res->gw_bad + res->gw_http_err + res->gw_broken));
        }
    }
}

/* ---- report --------------------------------------------------------------------------------- */

static void tsv_line(FILE *tsv, const char *metric, double v, double base, double ratio,
                     const char *target)
{
    if (tsv)
        fprintf(tsv, "gateway\t%s\t%.1f\t%.1f\t%.3f\t%s\n", metric, v, base, ratio, target);
}

static void report(const gopts *o, gresults *r)
{
    double add50 = r->gw_p50 - r->nat_p50, add99 = r->gw_p99 - r->nat_p99;
    printf("\n== gateway: OpenAI HTTP/1.1 keep-alive vs libedgefleet (CURVE), same coordinator, "
           "instant fake agents (%d token%s then Done) | %zu/%zu latency samples | %d agents x %d "
           "slots | %d rounds of %.0f s | load %s ==\n",
           o->tokens, o->tokens == 1 ? "" : "s", r->n_gw, r->n_nat, o->agents, o->slots, o->reps,
           o->seconds, gw_loadavg());
    printf("  %-44s %10s %10s %10s  %s\n", "metric", "native", "gateway", "added/ratio", "target");
    printf("  %-44s %10.1f %10.1f %+10.1f  < 500 us %s\n", "TTFT p50 (us), streamed", r->nat_p50,
           r->gw_p50, add50, add50 < 500 ? "ok" : "ABOVE");
    printf("  %-44s %10.1f %10.1f %+10.1f\n", "TTFT p99 (us), streamed", r->nat_p99, r->gw_p99,
           add99);
    FILE *tsv = o->summary ? fopen(o->summary, "a") : NULL;
    tsv_line(tsv, "added TTFT p50 us", add50, r->nat_p50, r->gw_p50 / r->nat_p50,
             add50 < 500 ? "< 500 ok" : "< 500 ABOVE");
    for (int s = 0; s < o->n_conns; s++) {
        double nat = bench_median(r->nat[s], (size_t)r->n_reps);
        double whole = bench_median(r->whole[s], (size_t)r->n_reps);
        double stream = bench_median(r->stream[s], (size_t)r->n_reps);
        char m[80];
        snprintf(m, sizeof m, "req/s, K=%d, whole answer (median)", o->conns[s]);
        printf("  %-44s %10.0f %10.0f %10.2f  >= 0.5 %s\n", m, nat, whole, whole / nat,
               whole / nat >= 0.5 ? "ok" : "BELOW");
        tsv_line(tsv, m, whole, nat, whole / nat,
                 whole / nat >= 0.5 ? ">= 0.5 ok" : ">= 0.5 BELOW");
        snprintf(m, sizeof m, "req/s, K=%d, streamed (median)", o->conns[s]);
        printf("  %-44s %10.0f %10.0f %10.2f  >= 0.5 %s\n", m, nat, stream, stream / nat,
               stream / nat >= 0.5 ? "ok" : "BELOW");
        tsv_line(tsv, m, stream, nat, stream / nat,
                 stream / nat >= 0.5 ? ">= 0.5 ok" : ">= 0.5 BELOW");
    }
    printf("  failures: native %llu, gateway bad %llu, non-200 %llu (last %d), broken %llu\n",
           (unsigned long long)r->nat_bad, (unsigned long long)r->gw_bad,
           (unsigned long long)r->gw_http_err, r->last_status, (unsigned long long)r->gw_broken);
    printf("  coordinator peak RSS %.1f MiB, CPU %.1f s over the run\n", r->coord_rss_kb / 1024.0,
           r->coord_cpu_s);
    if (tsv)
        fclose(tsv);
}

/* ---- main ----------------------------------------------------------------------------------- */

static int fake_agent_main(int argc, char **argv)
{
    if (argc != 9)
        return 2;
    fake_agent_params p = {.endpoint = argv[2],
                           .server_pub = argv[3],
                           .key = argv[4],
                           .name = argv[5],
                           .model = argv[6],
                           .n_slots = (uint32_t)atoi(argv[7]),
                           .n_tokens = (uint32_t)atoi(argv[8])};
    return fake_agent_run(&p) == 0 ? 0 : 1;
}

static int parse_args(int argc, char **argv, gopts *o)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--coordinator"))
            o->coordinator_bin = v;
        else if (!strcmp(a, "--samples"))
            o->samples = atoi(v);
        else if (!strcmp(a, "--reps"))
            o->reps = atoi(v);
        else if (!strcmp(a, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(a, "--agents"))
            o->agents = atoi(v);
        else if (!strcmp(a, "--slots"))
            o->slots = atoi(v);
        else if (!strcmp(a, "--tokens"))
            o->tokens = atoi(v);
        else if (!strcmp(a, "--conns")) {
            o->n_conns = 0;
            for (char *p = (char *)v; *p && o->n_conns < MAX_SERIES; p += *p == ',')
                o->conns[o->n_conns++] = (int)strtol(p, &p, 10);
        } else if (!strcmp(a, "--work-dir"))
            o->work_dir = v;
        else if (!strcmp(a, "--summary"))
            o->summary = v;
        else if (!strcmp(a, "--log-level"))
            o->log_level = v;
        else
            return EF_EINVAL;
    }
    ssize_t n = readlink("/proc/self/exe", o->self, sizeof o->self - 1);
    if (n <= 0)
        return EF_EIO;
    o->self[n] = '\0';
    bool conns_ok = o->n_conns > 0;
    for (int i = 0; i < o->n_conns; i++)
        conns_ok = conns_ok && o->conns[i] > 0 && o->conns[i] <= MAX_CONNS;
    return argc % 2 == 1 && o->coordinator_bin && o->samples > 0 && o->reps > 0 &&
                   o->reps <= MAX_REPS && o->agents > 0 && o->agents <= MAX_AGENTS &&
                   o->slots > 0 && o->tokens > 0 && o->tokens <= 4096 && o->seconds > 0 && conns_ok
               ? 0
               : EF_EINVAL;
}

static int run(const gopts *o, gfleet *fl, gresults *res)
{
    int max_k = 1;
    for (int s = 0; s < o->n_conns; s++)
        max_k = o->conns[s] > max_k ? o->conns[s] : max_k;
    ef_client_t *clients[MAX_CONNS] = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < max_k; i++)
        rc = (clients[i] = native_open(fl)) ? 0 : EF_EIO;
    if (rc == 0 && (rc = wait_ready(fl, o, clients[0])) != 0)
        fprintf(stderr, "bench: the fleet did not come up (%s); logs in %s\n", ef_strerror(rc),
                o->work_dir);
    if (rc == 0) {
        bench_progress("fleet up: coordinator (--http %s) + %d fake agents; latency, %d pairs",
                       fl->http_listen, o->agents, o->samples);
        rc = measure_latency(o, fl, clients[0], res);
    }
    if (rc == 0)
        measure_throughput(o, fl, clients, res);
    res->coord_rss_kb = bench_proc_hwm_kb(fl->coordinator);
    res->coord_cpu_s = bench_proc_cpu_s(fl->coordinator);
    for (int i = 0; i < max_k; i++)
        ef_client_destroy(&clients[i]);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--fake-agent"))
        return fake_agent_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "--llm"))
        return gw_llm_main(argc - 1, argv + 1);
    gopts o = {.samples = 2000,
               .reps = 3,
               .agents = 2,
               .slots = 64,
               .tokens = 1,
               .conns = {1, 16, 64},
               .n_conns = 3,
               .seconds = 3.0,
               .log_level = "warn"};
    char work[] = "/tmp/edgefleet-gwbench.XXXXXX";
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr,
                "usage: bench_gateway --coordinator PATH [--tokens N] [--conns 1,16,64] "
                "[--samples N] [--reps N] [--seconds S] [--agents N] [--slots N] [--work-dir DIR] "
                "[--summary FILE] [--log-level LEVEL (the coordinator's; warn)]\n"
                "       bench_gateway --llm --help   (4 streams: gateway vs llama-server)\n");
        return 2;
    }
    if (!o.work_dir && !(o.work_dir = mkdtemp(work)))
        return 1;
    bench_progress("gateway bench: logs and keys in %s", o.work_dir);
    gfleet fl = {0};
    gresults res = {0};
    int rc = fleet_start(&o, &fl);
    if (rc == 0)
        rc = run(&o, &fl, &res);
    fleet_stop(&fl);
    if (rc != 0)
        return 1;
    report(&o, &res);
    return 0;
}
