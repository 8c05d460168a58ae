/* bench_coordinator: what the coordinator costs, with CURVE on every link.
 *   latency: time to first token through the coordinator (client -> coordinator -> agent and
 *            back) vs the same instant fake agent asked directly by the bench acting as its
 *            coordinator; the added p50 and p99 are the difference, sampled alternately;
 *   throughput: routed requests/s through one coordinator to instant fake agents, with a window
 *            of requests in flight.
 * Fake agents are this binary re-run with --fake-agent (one process each). A benchmark, never a
 * test. The bench's own thread drives everything between blocking calls. */
#include "agent_link.h"
#include "bench_util.h"
#include "coord_client.h"
#include "fake_agent.h"

#include "clock.h"
#include "edgefleet.h"
#include "keys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_MODEL      "bench-model"
#define MAX_FAKE_AGENTS  8
#define MAX_SAMPLES      100000
#define READY_TIMEOUT_MS 20000

typedef struct {
    const char *coordinator_bin, *work_dir, *summary;
    int samples, reps, agents, slots;
    int windows[4]; /* requests kept in flight, one throughput series each */
    int n_windows;
    double seconds;
    char self[4096]; /* this executable, re-run as fake agents */
} cbench_opts;

typedef struct {
    char dir[4096], allow[4200], coord_key[4300], coord_pub_path[4300];
    keys_pair coord, client;
    char agents_ep[64], clients_ep[64], telemetry_ep[64];
    pid_t coordinator, fake[MAX_FAKE_AGENTS + 1];
    int n_fake;
} fleet;

/* ---- set-up ---------------------------------------------------------------------------------- */

static int fleet_keys(const cbench_opts *o, fleet *fl)
{
    char sub[4300];
    snprintf(fl->dir, sizeof fl->dir, "%s/fleet", o->work_dir);
    if (bench_fleet_dirs(fl->dir, fl->allow, sizeof fl->allow) != 0)
        return EF_EIO;
    snprintf(fl->coord_key, sizeof fl->coord_key, "%s/coordinator.key", fl->dir);
    snprintf(fl->coord_pub_path, sizeof fl->coord_pub_path, "%s/coordinator.pub", fl->dir);
    ef_errmsg em = {""};
    int rc = bench_key_with_allow(fl->dir, "coordinator", NULL, &fl->coord, &em);
    snprintf(sub, sizeof sub, "%s/clients", fl->allow);
    if (rc == 0)
        rc = bench_key_with_allow(fl->dir, "bench-client", sub, &fl->client, &em);
    snprintf(sub, sizeof sub, "%s/agents", fl->allow);
    for (int i = 0; rc == 0 && i < o->agents; i++) {
        char name[32];
        keys_pair kp;
        snprintf(name, sizeof name, "fake-%d", i);
        rc = bench_key_with_allow(fl->dir, name, sub, &kp, &em);
    }
    if (rc != 0)
        fprintf(stderr, "bench: %s\n", em.msg);
    return rc;
}

static pid_t spawn_fake(const cbench_opts *o, const char *endpoint, const char *server_pub,
                        const char *key, const char *name, const char *log)
{
    char slots[16];
    snprintf(slots, sizeof slots, "%d", o->slots);
    char *argv[] = {(char *)o->self,    "--fake-agent", (char *)endpoint,
                    (char *)server_pub, (char *)key,    (char *)name,
                    BENCH_MODEL,        slots,          NULL};
    return bench_spawn(argv, log);
}

static int fleet_start(const cbench_opts *o, fleet *fl)
{
    int rc = fleet_keys(o, fl);
    if (rc != 0)
        return rc;
    snprintf(fl->agents_ep, sizeof fl->agents_ep, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(fl->clients_ep, sizeof fl->clients_ep, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(fl->telemetry_ep, sizeof fl->telemetry_ep, "tcp://127.0.0.1:%d", bench_free_port());
    char log[4400];
    snprintf(log, sizeof log, "%s/coordinator.log", o->work_dir);
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
                    "--log-level",
                    "warn",
                    NULL};
    fl->coordinator = bench_spawn(argv, log);
    for (int i = 0; i < o->agents; i++) {
        char name[32], key[4400];
        snprintf(name, sizeof name, "fake-%d", i);
        snprintf(key, sizeof key, "%s/%s.key", fl->dir, name);
        snprintf(log, sizeof log, "%s/%s.log", o->work_dir, name);
        fl->fake[fl->n_fake++] = spawn_fake(o, fl->agents_ep, fl->coord_pub_path, key, name, log);
    }
    return fl->coordinator > 0 ? 0 : EF_EIO;
}

static void fleet_stop(fleet *fl)
{
    for (int i = 0; i < fl->n_fake; i++)
        if (fl->fake[i] > 0)
            bench_stop(fl->fake[i], 3000);
    if (fl->coordinator > 0)
        bench_stop(fl->coordinator, 3000);
}

/* ---- measurements ---------------------------------------------------------------------------- */

/* Send through the coordinator until one request completes: the agents have registered and the
 * coordinator routes (early tries may come back EUNKNOWNMODEL or time out). */
static int wait_routable(coord_client *c)
{
    uint64_t t0 = clock_mono_ms(), seq = 1u << 30;
    while (clock_mono_ms() - t0 < READY_TIMEOUT_MS) {
        if (coord_client_send(c, BENCH_MODEL, ++seq) != 0)
            return EF_EZMQ;
        envelope *env;
        uint64_t got;
        while (coord_client_recv(c, 500, &env, &got) == 0) {
            int kind = env->body_case;
            codec_free(&env);
            if (got == seq && kind == EDGEFLEET__ENVELOPE__BODY_DONE)
                return 0;
            if (got == seq && kind == EDGEFLEET__ENVELOPE__BODY_ERROR)
                break;
        }
        usleep(100 * 1000);
    }
    return EF_ETIMEDOUT;
}

/* Time to first token of one request through the coordinator, ns; 0 on failure. */
static uint64_t ttft_via(coord_client *c, uint64_t seq)
{
    uint64_t t0 = clock_mono_ns(), first = 0;
    if (coord_client_send(c, BENCH_MODEL, seq) != 0)
        return 0;
    envelope *env;
    uint64_t got;
    while (coord_client_recv(c, 2000, &env, &got) == 0) {
        int kind = env->body_case;
        codec_free(&env);
        if (got != seq)
            continue; /* a straggler from an earlier phase */
        if (kind == EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK && !first)
            first = clock_mono_ns();
        if (kind == EDGEFLEET__ENVELOPE__BODY_DONE || kind == EDGEFLEET__ENVELOPE__BODY_ERROR)
            return first ? first - t0 : 0;
    }
    return 0;
}

static uint64_t ttft_direct(agent_link *l)
{
    link_request r;
    uint64_t ns = 0;
    if (agent_link_submit(l, &r, "hi", 1) == 0 &&
        agent_link_wait_done(l, (link_request *[]){&r}, 1, 2000) == 0)
        ns = r.t_first_ns && !r.error ? r.t_first_ns - r.t_send_ns : 0;
    link_request_free(&r);
    return ns;
}

static double percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    bench_median(v, n); /* sorts */
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

typedef struct {
    double direct_p50, direct_p99, via_p50, via_p99; /* microseconds */
    size_t n;
    double rps[4][16]; /* [window][round] */
    size_t n_rps;
    long coord_rss_kb;
} cbench_results;

/* Alternate direct and routed requests so load changes hit both series alike. */
static int measure_latency(const cbench_opts *o, agent_link *direct, coord_client *c,
                           cbench_results *res)
{
    double *dv = calloc((size_t)o->samples, sizeof *dv),
           *vv = calloc((size_t)o->samples, sizeof *vv);
    size_t nd = 0, nv = 0;
    if (!dv || !vv) {
        free(dv), free(vv);
        return EF_ENOMEM;
    }
    for (int i = 0; i < o->samples; i++) {
        uint64_t d = ttft_direct(direct), v = ttft_via(c, (uint64_t)i);
        if (d)
            dv[nd++] = (double)d / 1e3;
        if (v)
            vv[nv++] = (double)v / 1e3;
        if ((i + 1) % (o->samples / 4 > 0 ? o->samples / 4 : 1) == 0)
            bench_progress("latency: %d/%d pairs", i + 1, o->samples);
    }
    res->n = nd < nv ? nd : nv;
    res->direct_p50 = percentile(dv, nd, 0.50), res->direct_p99 = percentile(dv, nd, 0.99);
    res->via_p50 = percentile(vv, nv, 0.50), res->via_p99 = percentile(vv, nv, 0.99);
    free(dv), free(vv);
    return res->n ? 0 : EF_EPROTO;
}

/* Keep `window` requests in flight for `seconds`; routed requests/s = Dones / elapsed. */
static double measure_throughput(const cbench_opts *o, int window, coord_client *c, uint64_t *seq,
                                 uint64_t *errors, uint64_t *max_gap_ns)
{
    uint64_t t0 = clock_mono_ns(), end = t0 + (uint64_t)(o->seconds * 1e9), done = 0;
    int inflight = 0;
    while (clock_mono_ns() < end) {
        while (inflight < window && coord_client_send(c, BENCH_MODEL, ++*seq) == 0)
            inflight++;
        envelope *env;
        uint64_t got, before = clock_mono_ns();
        if (coord_client_recv(c, 1000, &env, &got) != 0)
            break; /* nothing for a second: the fleet stalled; report what was done */
        uint64_t gap = clock_mono_ns() - before;
        *max_gap_ns = gap > *max_gap_ns ? gap : *max_gap_ns;
        if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE)
            done++, inflight--;
        else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR)
            (*errors)++, inflight--;
        codec_free(&env);
    }
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    envelope *env; /* let the tail drain so the next round starts empty */
    uint64_t got;
    while (inflight > 0 && coord_client_recv(c, 2000, &env, &got) == 0) {
        if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE ||
            env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR)
            inflight--;
        codec_free(&env);
    }
    return (double)done / secs;
}

static void report(const cbench_opts *o, cbench_results *r)
{
    double add50 = r->via_p50 - r->direct_p50, add99 = r->via_p99 - r->direct_p99;
    printf("\n== coordinator: CURVE on, instant fake agents | %d latency pairs | %d agents x %d "
           "slots | %d rounds ==\n",
           o->samples, o->agents, o->slots, o->reps);
    printf("  %-40s %10s %10s %10s  %s\n", "metric", "direct", "via coord", "added", "target");
    printf("  %-40s %10.1f %10.1f %10.1f  < 300 us %s\n", "TTFT p50 (us)", r->direct_p50,
           r->via_p50, add50, add50 < 300 ? "ok" : "ABOVE");
    printf("  %-40s %10.1f %10.1f %10.1f  < 2000 us %s\n", "TTFT p99 (us)", r->direct_p99,
           r->via_p99, add99, add99 < 2000 ? "ok" : "ABOVE");
    FILE *tsv = o->summary ? fopen(o->summary, "a") : NULL;
    if (tsv) {
        fprintf(tsv, "coordinator\tadded TTFT p50 us\t%.1f\t%.1f direct\t-\t< 300 %s\n", add50,
                r->direct_p50, add50 < 300 ? "ok" : "ABOVE");
        fprintf(tsv, "coordinator\tadded TTFT p99 us\t%.1f\t%.1f direct\t-\t< 2000 %s\n", add99,
                r->direct_p99, add99 < 2000 ? "ok" : "ABOVE");
    }
    for (int w = 0; w < o->n_windows; w++) {
        char m[64];
        double rps = bench_median(r->rps[w], r->n_rps);
        snprintf(m, sizeof m, "routed req/s, %d in flight (median)", o->windows[w]);
        printf("  %-40s %10s %10.0f %10s  >= 20000 %s\n", m, "-", rps, "-",
               rps >= 20000 ? "ok" : "BELOW");
        if (tsv)
            fprintf(tsv, "coordinator\t%s\t%.0f\t-\t-\t>= 20000 %s\n", m, rps,
                    rps >= 20000 ? "ok" : "BELOW");
    }
    printf("  %-40s %10s %10.1f\n", "coordinator peak RSS MiB", "-", r->coord_rss_kb / 1024.0);
    if (tsv)
        fclose(tsv);
}

/* ---- main ------------------------------------------------------------------------------------ */

static int fake_agent_main(int argc, char **argv)
{
    if (argc != 8)
        return 2;
    fake_agent_params p = {.endpoint = argv[2],
                           .server_pub = argv[3],
                           .key = argv[4],
                           .name = argv[5],
                           .model = argv[6],
                           .n_slots = (uint32_t)atoi(argv[7])};
    return fake_agent_run(&p) == 0 ? 0 : 1;
}

static int parse_args(int argc, char **argv, cbench_opts *o)
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
        else if (!strcmp(a, "--windows")) {
            o->n_windows = 0;
            for (char *p = (char *)v; *p && o->n_windows < 4; p += *p == ',')
                o->windows[o->n_windows++] = (int)strtol(p, &p, 10);
        } else if (!strcmp(a, "--work-dir"))
            o->work_dir = v;
        else if (!strcmp(a, "--summary"))
            o->summary = v;
        else
            return EF_EINVAL;
    }
    ssize_t n = readlink("/proc/self/exe", o->self, sizeof o->self - 1);
    if (n <= 0)
        return EF_EIO;
    o->self[n] = '\0';
    return argc % 2 == 1 && o->coordinator_bin && o->samples > 0 && o->samples <= MAX_SAMPLES &&
                   o->reps > 0 && o->reps <= 16 && o->agents > 0 && o->agents <= MAX_FAKE_AGENTS &&
                   o->slots > 0 && o->n_windows > 0 && o->windows[0] > 0
               ? 0
               : EF_EINVAL;
}

/* The direct path: the bench's own ROUTER (agent_link) and one more fake agent dialling it. */
static agent_link *direct_start(const cbench_opts *o, fleet *fl)
{
    char dir[4300], key[4400], pub[4400], log[4400];
    ef_errmsg em = {""};
    snprintf(dir, sizeof dir, "%s/direct", o->work_dir);
    agent_link *l = mkdir(dir, 0700) == 0 ? agent_link_new(dir, &em) : NULL;
    if (!l) {
        fprintf(stderr, "bench: direct link: %s\n", em.msg);
        return NULL;
    }
    snprintf(key, sizeof key, "%s/agent.key", dir);
    snprintf(pub, sizeof pub, "%s/coordinator.pub", dir);
    snprintf(log, sizeof log, "%s/fake-direct.log", o->work_dir);
    fl->fake[fl->n_fake++] = spawn_fake(o, agent_link_endpoint(l), pub, key, "fake-direct", log);
    if (agent_link_wait_register(l, READY_TIMEOUT_MS) != 0)
        agent_link_destroy(&l);
    return l;
}

static int run(const cbench_opts *o, fleet *fl, cbench_results *res)
{
    agent_link *direct = direct_start(o, fl);
    coord_client *c = coord_client_new(fl->clients_ep, &fl->client, fl->coord.public_z85);
    int rc = direct && c ? wait_routable(c) : EF_EIO;
    if (rc != 0)
        fprintf(stderr, "bench: the fleet did not come up (%s); logs in %s\n", ef_strerror(rc),
                o->work_dir);
    if (rc == 0) {
        bench_progress("fleet up: coordinator + %d fake agents; latency, %d pairs", o->agents,
                       o->samples);
        rc = measure_latency(o, direct, c, res);
    }
    uint64_t seq = 1u << 20, errors = 0;
    for (int r = 1; rc == 0 && r <= o->reps; r++, res->n_rps++) {
        for (int w = 0; w < o->n_windows; w++) {
            uint64_t gap = 0;
            res->rps[w][res->n_rps] = measure_throughput(o, o->windows[w], c, &seq, &errors, &gap);
            bench_progress("throughput round %d/%d, %d in flight: %.0f routed req/s (%llu refused "
                           "so far; longest wait for a reply %.1f ms)",
                           r, o->reps, o->windows[w], res->rps[w][res->n_rps],
                           (unsigned long long)errors, (double)gap / 1e6);
        }
    }
    res->coord_rss_kb = bench_proc_hwm_kb(fl->coordinator);
    coord_client_destroy(&c);
    agent_link_destroy(&direct);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--fake-agent"))
        return fake_agent_main(argc, argv);
    cbench_opts o = {.samples = 2000,
                     .reps = 3,
                     .agents = 2,
                     .slots = 64,
                     .windows = {16, 64, 128},
                     .n_windows = 3,
                     .seconds = 3.0};
    char work[] = "/tmp/edgefleet-cbench.XXXXXX";
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr,
                "usage: bench_coordinator --coordinator PATH [--samples N] [--reps N] "
                "[--seconds S] [--agents N] [--slots N] [--windows 16,64,128] [--work-dir DIR] "
                "[--summary FILE]\n");
        return 2;
    }
    if (!o.work_dir && !(o.work_dir = mkdtemp(work)))
        return 1;
    bench_progress("coordinator bench: logs and keys in %s", o.work_dir);
    fleet fl = {0};
    cbench_results res = {0};
    int rc = fleet_start(&o, &fl);
    if (rc == 0)
        rc = run(&o, &fl, &res);
    fleet_stop(&fl);
    if (rc != 0)
        return 1;
    report(&o, &res);
    return 0;
}
