/* bench_fleet_scale: what one coordinator costs per board. For each fleet size N it starts the
 * coordinator and N harness agents (fleet_harness.c: CURVE DEALERs with their own keys, a few
 * processes, the real agent protocol) and prints
 *   register: seconds until all N are registered from cold;
 *   idle CPU: the coordinator's % of one core over a window with the fleet heartbeating
 *             (utime + stime from /proc/PID/stat), and its RSS (VmRSS) at the end of it;
 *   status:   ms for an operator's status to come back (and how many agents it lists);
 *   routed/s: requests/s routed with 64 in flight, and its ratio to the first size run
 *             (N = 1 by default: the pick cost of a large fleet);
 *   storm:    after a SIGKILL and restart of the coordinator, seconds until all N are back,
 *             and the latency of requests sent one after another during the storm.
 * A benchmark, never a test; it never fails on a figure. One thread drives everything. */
#include "bench_util.h"
#include "coord_client.h"
#include "fleet_harness.h"
#include "scale_probe.h"

#include "clock.h"
#include "keys.h"

#include <sodium.h>
#include <zmq.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCALE_MODEL          "scale-model"
#define SCALE_MAX_SIZES      8
#define SCALE_PER_WORKER     2500 /* harness agents per process: ~2 fds each, under 20k */
#define SCALE_MAX_WORKERS    16
#define SCALE_MAX_COORD_ARGS 8

typedef struct {
    const char *coordinator_bin, *work_dir;
    uint32_t sizes[SCALE_MAX_SIZES];
    int n_sizes;
    double window_s, route_s, register_timeout_s;
    int storm;
    int zmtp_ping; /* harness agents send ZMTP PINGs, as agents did before (a baseline) */
    char *coord_args[SCALE_MAX_COORD_ARGS]; /* --coord-arg: more coordinator options */
    int n_coord_args;
} scale_opts;

typedef struct {
    uint32_t n, registered, refused, status_agents;
    double register_s, cpu_pct, rss_mib, status_ms, routed_per_s;
    double storm_s, storm_p50_ms, storm_p99_ms, storm_max_ms;
    uint32_t storm_back, storm_probes, storm_failed;
} scale_result;

typedef struct {
    char dir[4096], allow[4200], coord_key[4300];
    char agents_ep[64], clients_ep[64], telemetry_ep[64];
    char coord_pub[KEYS_Z85_LEN + 1];
    keys_pair client;
    keys_pair *agent_keys;
    pid_t coordinator;
    pid_t workers[SCALE_MAX_WORKERS];
    int report_fd[SCALE_MAX_WORKERS], control_fd[SCALE_MAX_WORKERS];
    harness_report last[SCALE_MAX_WORKERS];
    int n_workers;
    uint32_t epoch; /* resets sent to the workers */
} scale_fleet;

static int mkdirs(scale_fleet *fl, const scale_opts *o, uint32_t n)
{
    snprintf(fl->dir, sizeof fl->dir, "%s/n%u", o->work_dir, n);
    return bench_fleet_dirs(fl->dir, fl->allow, sizeof fl->allow);
}

/* Agent keys are made in memory (the harness never reads key files); only the .pub goes into
 * the allowlist, named a-<i>. */
static int make_keys(scale_fleet *fl, uint32_t n)
{
    ef_errmsg em = {""};
    keys_pair coord;
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/operators", fl->allow);
    if (bench_key_with_allow(fl->dir, "coordinator", NULL, &coord, &em) != 0 ||
        bench_key_with_allow(fl->dir, "operator", sub, &fl->client, &em) != 0) {
        fprintf(stderr, "bench: %s\n", em.msg);
        return EF_EIO;
    }
    snprintf(fl->coord_key, sizeof fl->coord_key, "%s/coordinator.key", fl->dir);
    memcpy(fl->coord_pub, coord.public_z85, sizeof fl->coord_pub);
    fl->agent_keys = calloc(n, sizeof *fl->agent_keys);
    if (!fl->agent_keys)
        return EF_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (zmq_curve_keypair(fl->agent_keys[i].public_z85, fl->agent_keys[i].secret_z85) != 0)
            return EF_EZMQ;
        char path[4400];
        snprintf(path, sizeof path, "%s/agents/a-%u.pub", fl->allow, i);
        FILE *f = fopen(path, "w");
        if (!f)
            return EF_EIO;
        fprintf(f, "%s\n", fl->agent_keys[i].public_z85);
        fclose(f);
    }
    return 0;
}

static pid_t spawn_coordinator(const scale_opts *o, scale_fleet *fl)
{
    char log[4400];
    snprintf(log, sizeof log, "%s/coordinator.log", fl->dir);
    char *argv[16 + SCALE_MAX_COORD_ARGS] = {(char *)o->coordinator_bin,
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
    for (int i = 0; i < o->n_coord_args; i++)
        argv[13 + i] = o->coord_args[i];
    return bench_spawn(argv, log);
}

static int spawn_workers(const scale_opts *o, scale_fleet *fl, uint32_t n)
{
    int k = (int)((n + SCALE_PER_WORKER - 1) / SCALE_PER_WORKER);
    for (int w = 0; w < k && w < SCALE_MAX_WORKERS; w++) {
        int rep[2], ctl[2];
        if (pipe(rep) != 0 || pipe(ctl) != 0)
            return EF_EIO;
        size_t first = (size_t)n * (size_t)w / (size_t)k, last = (size_t)n * (size_t)(w + 1) / k;
        pid_t pid = fork();
        if (pid == 0) {
            close(rep[0]);
            close(ctl[1]);
            harness_params hp = {.endpoint = fl->agents_ep,
                                 .server_public = fl->coord_pub,
                                 .keys = fl->agent_keys + first,
                                 .n = last - first,
                                 .model = SCALE_MODEL,
                                 .n_slots = 4,
                                 .zmtp_ping = o->zmtp_ping,
                                 .report_fd = rep[1],
                                 .control_fd = ctl[0]};
            _exit(harness_run(&hp) == 0 ? 0 : 1);
        }
        close(rep[1]);
        close(ctl[0]);
        fl->workers[w] = pid;
        fl->report_fd[w] = rep[0];
        fl->control_fd[w] = ctl[1];
        memset(&fl->last[w], 0, sizeof fl->last[w]);
        fl->n_workers = w + 1;
    }
    return 0;
}

/* Reads every report waiting (without blocking) and sums the latest of each worker. */
static harness_report fleet_counts(scale_fleet *fl)
{
    harness_report sum = {0};
    for (int w = 0; w < fl->n_workers; w++) {
        harness_report r;
        for (;;) {
            struct timeval tv = {0, 0};
            fd_set fds;
            FD_ZERO(&fds);
            FD_SET(fl->report_fd[w], &fds);
            if (select(fl->report_fd[w] + 1, &fds, NULL, NULL, &tv) <= 0 ||
                read(fl->report_fd[w], &r, sizeof r) != (ssize_t)sizeof r)
                break;
            if (r.epoch == fl->epoch)
                fl->last[w] = r;
        }
        sum.registered += fl->last[w].registered;
        sum.refused += fl->last[w].refused;
        sum.answered += fl->last[w].answered;
    }
    return sum;
}

static void fleet_command(scale_fleet *fl, char cmd)
{
    for (int w = 0; w < fl->n_workers; w++)
        if (write(fl->control_fd[w], &cmd, 1) != 1)
            fprintf(stderr, "bench: worker %d did not take a command\n", w);
}

/* Seconds until all n are registered (polling every 10 ms), or -1 after timeout_s. While
 * waiting, probe (may be NULL) is called between polls. */
static double wait_registered(scale_fleet *fl, uint32_t n, double timeout_s, uint64_t t0_ns,
                              scale_probe *probe, scale_result *res)
{
    double next_note_s = 5;
    for (;;) {
        harness_report c = fleet_counts(fl);
        double s = (double)(clock_mono_ns() - t0_ns) / 1e9;
        if (s >= next_note_s) { /* the shape of a slow registration, not only its end */
            bench_progress("  %.0f s: %u registered", s, c.registered);
            next_note_s += 5;
        }
        res->registered = c.registered;
        res->refused = c.refused;
        if (c.registered >= n)
            return s;
        if (s > timeout_s)
            return -1;
        if (probe)
            scale_probe_step(probe, 10);
        else
            usleep(10 * 1000);
    }
}

static long proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void fleet_stop(scale_fleet *fl)
{
    fleet_command(fl, HARNESS_CMD_QUIT);
    for (int w = 0; w < fl->n_workers; w++) {
        bench_stop(fl->workers[w], 5000);
        close(fl->report_fd[w]);
        close(fl->control_fd[w]);
    }
    fl->n_workers = 0;
    if (fl->coordinator > 0)
        bench_stop(fl->coordinator, 5000);
    free(fl->agent_keys);
    fl->agent_keys = NULL;
}

/* The idle window: CPU of the coordinator while only heartbeats flow, then its RSS. */
static void measure_idle(const scale_opts *o, scale_fleet *fl, scale_result *r)
{
    double cpu0 = bench_proc_cpu_s(fl->coordinator);
    uint64_t t0 = clock_mono_ns();
    usleep((useconds_t)(o->window_s * 1e6));
    double cpu1 = bench_proc_cpu_s(fl->coordinator);
    double wall = (double)(clock_mono_ns() - t0) / 1e9;
    r->cpu_pct = cpu0 >= 0 && cpu1 >= 0 ? 100.0 * (cpu1 - cpu0) / wall : -1;
    long kb = proc_rss_kb(fl->coordinator);
    r->rss_mib = kb >= 0 ? (double)kb / 1024.0 : -1;
}

static void measure_storm(const scale_opts *o, scale_fleet *fl, scale_result *r)
{
    kill(fl->coordinator, SIGKILL);
    waitpid(fl->coordinator, NULL, 0);
    fleet_command(fl, HARNESS_CMD_RESET);
    fl->epoch++;
    memset(fl->last, 0, sizeof fl->last);
    uint64_t t0 = clock_mono_ns();
    fl->coordinator = spawn_coordinator(o, fl);
    bench_progress("N=%u: storm: coordinator restarted as pid %d", r->n, (int)fl->coordinator);
    scale_probe *probe = scale_probe_new(fl->clients_ep, &fl->client, fl->coord_pub, SCALE_MODEL);
    r->storm_s = wait_registered(fl, r->n, o->register_timeout_s, t0, probe, r);
    r->storm_back = r->registered;
    scale_probe_stats(probe, &r->storm_probes, &r->storm_failed, &r->storm_p50_ms, &r->storm_p99_ms,
                      &r->storm_max_ms);
    const scale_probe_failure *why;
    size_t n_why = scale_probe_failures(probe, &why);
    for (size_t i = 0; i < n_why; i++)
        bench_progress("N=%u: storm: %u probes failed with %d (%s)", r->n, why[i].count,
                       why[i].code, why[i].message);
    scale_probe_destroy(&probe);
}

static int run_size(const scale_opts *o, uint32_t n, scale_result *r)
{
    scale_fleet fl = {0};
    memset(r, 0, sizeof *r);
    r->n = n;
    if (mkdirs(&fl, o, n) != 0 || make_keys(&fl, n) != 0) {
        fprintf(stderr, "bench: cannot set up %s\n", fl.dir);
        free(fl.agent_keys);
        return EF_EIO;
    }
    /* A directory changed within two seconds makes ZAP read it at every handshake (file times
     * are coarse); a fleet's keys are older than its coordinator's start. */
    sleep(2);
    snprintf(fl.agents_ep, sizeof fl.agents_ep, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(fl.clients_ep, sizeof fl.clients_ep, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(fl.telemetry_ep, sizeof fl.telemetry_ep, "tcp://127.0.0.1:%d", bench_free_port());
    uint64_t t0 = clock_mono_ns();
    fl.coordinator = spawn_coordinator(o, &fl);
    usleep(200 * 1000); /* the coordinator binds; the harness would only retry meanwhile */
    if (fl.coordinator <= 0 || spawn_workers(o, &fl, n) != 0) {
        fleet_stop(&fl);
        return EF_EIO;
    }
    r->register_s = wait_registered(&fl, n, o->register_timeout_s, t0, NULL, r);
    bench_progress("N=%u: %u registered (%u refusals) after %.2f s", n, r->registered, r->refused,
                   r->register_s);
    usleep(2000 * 1000); /* let the registration burst pass before the idle window */
    measure_idle(o, &fl, r);
    bench_progress("N=%u: idle %.1f %% of a core, RSS %.1f MiB", n, r->cpu_pct, r->rss_mib);
    r->status_ms = scale_status_ms(fl.clients_ep, &fl.client, fl.coord_pub, &r->status_agents);
    r->routed_per_s =
        scale_route_rate(fl.clients_ep, &fl.client, fl.coord_pub, SCALE_MODEL, 64, o->route_s);
    bench_progress("N=%u: status %.1f ms (%u agents), %.0f routed/s", n, r->status_ms,
                   r->status_agents, r->routed_per_s);
    if (o->storm) {
        measure_storm(o, &fl, r);
        bench_progress("N=%u: storm: %u back after %.2f s, %u probes (%u failed) p50 %.1f ms p99 "
                       "%.1f ms max %.1f ms",
                       n, r->storm_back, r->storm_s, r->storm_probes, r->storm_failed,
                       r->storm_p50_ms, r->storm_p99_ms, r->storm_max_ms);
    }
    fleet_stop(&fl);
    return 0;
}

static void report(const scale_opts *o, const scale_result *r, int n)
{
    printf("\n| N | registered | register s | idle CPU %% of a core | RSS MiB | status ms (agents) "
           "| routed/s | vs first |%s\n",
           o->storm ? " storm: back | all back s | probes (failed) | p50 / p99 / max ms |" : "");
    printf("|---|---|---|---|---|---|---|---|%s\n", o->storm ? "---|---|---|---|" : "");
    for (int i = 0; i < n; i++) {
        printf("| %u | %u%s | %.2f | %.1f | %.1f | %.1f (%u) | %.0f | %.2f |", r[i].n,
               r[i].registered, r[i].refused ? " (refusals)" : "", r[i].register_s, r[i].cpu_pct,
               r[i].rss_mib, r[i].status_ms, r[i].status_agents, r[i].routed_per_s,
               r[0].routed_per_s > 0 ? r[i].routed_per_s / r[0].routed_per_s : 0);
        if (o->storm)
            printf(" %u | %.2f | %u (%u) | %.1f / %.1f / %.1f |", r[i].storm_back, r[i].storm_s,
                   r[i].storm_probes, r[i].storm_failed, r[i].storm_p50_ms, r[i].storm_p99_ms,
                   r[i].storm_max_ms);
        printf("\n");
    }
    fflush(stdout);
}

static int parse_sizes(const char *text, scale_opts *o)
{
    o->n_sizes = 0;
    for (const char *p = text; *p && o->n_sizes < SCALE_MAX_SIZES;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v == 0 || v > 100000)
            return -1;
        o->sizes[o->n_sizes++] = (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return o->n_sizes ? 0 : -1;
}

static int parse_args(int argc, char **argv, scale_opts *o)
{
    *o = (scale_opts){.coordinator_bin = "build/coordinator/edgefleet-coordinator",
                      .window_s = 10,
                      .route_s = 3,
                      .register_timeout_s = 120,
                      .storm = 1};
    parse_sizes("1,100,1000,10000", o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-storm")) {
            o->storm = 0;
            continue;
        }
        if (!strcmp(a, "--zmtp-ping")) {
            o->zmtp_ping = 1;
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--coordinator"))
            o->coordinator_bin = v;
        else if (!strcmp(a, "--coord-arg") && o->n_coord_args < SCALE_MAX_COORD_ARGS)
            o->coord_args[o->n_coord_args++] = (char *)v;
        else if (!strcmp(a, "--work-dir"))
            o->work_dir = v;
        else if (!strcmp(a, "--sizes")) {
            if (parse_sizes(v, o) != 0)
                return -1;
        } else if (!strcmp(a, "--window-s"))
            o->window_s = atof(v);
        else if (!strcmp(a, "--route-s"))
            o->route_s = atof(v);
        else if (!strcmp(a, "--register-timeout-s"))
            o->register_timeout_s = atof(v);
        else
            return -1;
    }
    return o->window_s > 0 && o->route_s > 0 ? 0 : -1;
}

/* 10,000 links need about 2 fds each in the harness processes (socket + mailbox). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    scale_opts o;
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(
            stderr,
            "usage: bench_fleet_scale [--coordinator BIN] [--sizes 1,100,1000,10000] "
            "[--window-s 10] [--route-s 3] [--register-timeout-s 120] [--no-storm] [--zmtp-ping] "
            "[--work-dir DIR] [--coord-arg ARG]...\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    char tmp[] = "/tmp/ef-scale-XXXXXX";
    if (!o.work_dir && !(o.work_dir = mkdtemp(tmp))) {
        perror("mkdtemp");
        return 1;
    }
    bench_progress("work dir %s, coordinator %s", o.work_dir, o.coordinator_bin);
    scale_result res[SCALE_MAX_SIZES];
    int done = 0;
    for (int i = 0; i < o.n_sizes; i++) {
        if (run_size(&o, o.sizes[i], &res[done]) == 0)
            done++;
        report(&o, res, done);
    }
    return done == o.n_sizes ? 0 : 1;
}
