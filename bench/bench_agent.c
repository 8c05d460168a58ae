/* bench_agent: the agent against llama.cpp's own tools, same release, model, threads and box,
 * measured in the same run and interleaved round by round so machine noise hits both alike.
 *   single: one request over the agent link (pp128 from time to first token, tg128 from token
 *           arrivals) vs llama-bench -p 128 -n 128 (tg also at depth 128, the agent's depth);
 *   parallel: aggregate generation tokens/s with N concurrent requests vs llama-batched-bench
 *           -npl N; plus peak RSS of each. Prints medians and ratios; a benchmark, never a test.
 * Single-threaded: the bench's loop only turns inside agent_link's wait functions. */
#include "agent_link.h"
#include "baseline_llama.h"
#include "bench_prompt.h"
#include "bench_report.h"
#include "bench_util.h"

#include "clock.h"
#include "edgefleet.h"

#include <llama.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The agent's decode batch when --batch is not given (agent/backend.h: n_batch 0 = 256); the
 * baselines get the same -b/-ub so both build the same graphs. */
#define AGENT_N_BATCH 256
/* Loading a 400 MB model on a busy 2-core box takes seconds; a minute means something broke. */
#define AGENT_REGISTER_TIMEOUT_MS 120000
#define REQUEST_TIMEOUT_MS        600000

typedef struct {
    const char *agent_bin, *model, *label, *bin_dir, *work_dir, *summary, *baseline_log;
    int threads, reps, n_prompt, n_gen, slot_ctx, baseline_only;
    int pl[BASELINE_MAX_PL];
    size_t n_pl;
    double tg_target, agg_target;
} bench_opts;

typedef struct {
    agent_link *link;
    pid_t pid;
    char log[4200];
} agent_proc;

/* ---- the agent process and its link --------------------------------------------------------- */

static int agent_start(const bench_opts *o, int slots, const char *tag, agent_proc *a)
{
    char keys[4200], slots_s[16], ctx_s[16], thr_s[16], server_pub[4300], agent_key[4300];
    ef_errmsg em = {""};
    snprintf(keys, sizeof keys, "%s/%s", o->work_dir, tag);
    snprintf(a->log, sizeof a->log, "%s/%s.log", o->work_dir, tag);
    if (mkdir(keys, 0700) != 0 || !(a->link = agent_link_new(keys, &em))) {
        fprintf(stderr, "bench: link: %s\n", em.msg[0] ? em.msg : keys);
        return EF_EIO;
    }
    snprintf(server_pub, sizeof server_pub, "%s/coordinator.pub", keys);
    snprintf(agent_key, sizeof agent_key, "%s/agent.key", keys);
    snprintf(slots_s, sizeof slots_s, "%d", slots);
    snprintf(ctx_s, sizeof ctx_s, "%d", o->slot_ctx);
    snprintf(thr_s, sizeof thr_s, "%d", o->threads);
    char *argv[] = {(char *)o->agent_bin,
                    "--coordinator",
                    (char *)agent_link_endpoint(a->link),
                    "--server-key",
                    server_pub,
                    "--key",
                    agent_key,
                    "--name",
                    "bench-agent",
                    "--model",
                    (char *)o->model,
                    "--slots",
                    slots_s,
                    "--ctx",
                    ctx_s,
                    "--threads",
                    thr_s,
                    NULL};
    a->pid = bench_spawn(argv, a->log);
    uint64_t t0 = clock_mono_ms();
    while (a->pid > 0 && clock_mono_ms() - t0 < AGENT_REGISTER_TIMEOUT_MS) {
        if (agent_link_wait_register(a->link, 1000) == 0) {
            bench_progress("agent (%d slots) registered model \"%s\" after %.1f s", slots,
                           agent_link_model(a->link), (double)(clock_mono_ms() - t0) / 1e3);
            return 0;
        }
        if (!bench_alive(a->pid)) {
            fprintf(stderr, "bench: the agent exited; see %s\n", a->log);
            a->pid = -1;
        }
    }
    fprintf(stderr, "bench: the agent did not register; see %s\n", a->log);
    return EF_ETIMEDOUT;
}

/* Peak RSS first (the process must be alive for /proc), then stop it and close the link. */
static long agent_finish(agent_proc *a)
{
    long hwm = a->pid > 0 ? bench_proc_hwm_kb(a->pid) : -1;
    if (a->pid > 0)
        bench_stop(a->pid, 5000);
    agent_link_destroy(&a->link);
    return hwm;
}

/* Send n requests back to back (as a coordinator with n credits would) and wait for all. */
static int agent_requests(const bench_opts *o, agent_proc *a, bench_prompts *bp, int *variant,
                          link_request *rs, int n)
{
    char prompt[8192];
    link_request *ptrs[BASELINE_MAX_PL * 8];
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = bench_prompt_make(bp, (*variant)++, o->n_prompt, prompt, sizeof prompt);
        if (rc == 0)
            rc = agent_link_submit(a->link, &rs[i], prompt, (uint32_t)o->n_gen);
        ptrs[i] = &rs[i];
    }
    if (rc == 0)
        rc = agent_link_wait_done(a->link, ptrs, (size_t)n, REQUEST_TIMEOUT_MS);
    for (int i = 0; i < n && rc == 0; i++)
        if (rs[i].error || rs[i].n_tokens < 2)
            rc = rs[i].error ? rs[i].error : EF_EPROTO;
        else if (rs[i].n_tokens < (uint32_t)o->n_gen)
            bench_progress("note: a request stopped after %u tokens (end of generation)",
                           rs[i].n_tokens);
    return rc;
}

/* The agent sits idle while a baseline runs; if it burns CPU then, it slows the baseline (and
 * says something about the agent), so say so. */
static void report_idle_cpu(const agent_proc *a, double cpu0, uint64_t t0)
{
    double cpu1 = a->pid > 0 ? bench_proc_cpu_s(a->pid) : -1;
    double wall = (double)(clock_mono_ns() - t0) / 1e9;
    if (cpu0 >= 0 && cpu1 >= 0 && wall > 0 && (cpu1 - cpu0) / wall > 0.05)
        bench_progress("note: the idle agent used %.0f%% of a core while the baseline ran",
                       100.0 * (cpu1 - cpu0) / wall);
}

static void pump_link(void *user)
{
    agent_proc *a = user;
    if (a->link)
        agent_link_pump(a->link);
}

/* ---- phases ---------------------------------------------------------------------------------- */

static baseline_params baseline_for(const bench_opts *o, int slots)
{
    return (baseline_params){.bin_dir = o->bin_dir,
                             .model = o->model,
                             .threads = o->threads,
                             .n_prompt = o->n_prompt,
                             .n_gen = o->n_gen,
                             .n_batch = AGENT_N_BATCH,
                             .n_ctx = slots * o->slot_ctx,
                             .stderr_log = o->baseline_log};
}

/* One request at a time vs llama-bench, interleaved round by round. */
static int phase_single(const bench_opts *o, bench_prompts *bp, bench_results *res)
{
    baseline_params bl = baseline_for(o, 1);
    agent_proc a = {0};
    bl.idle = pump_link, bl.idle_user = &a;
    int variant = 0, rc = o->baseline_only ? 0 : agent_start(o, 1, "single", &a);
    link_request r;
    if (rc == 0 && !o->baseline_only) { /* warm-up: page in the model, settle the threads */
        rc = agent_requests(o, &a, bp, &variant, &r, 1);
        link_request_free(&r);
    }
    for (int round = 1; rc == 0 && round <= o->reps; round++) {
        llama_bench_run lb;
        double cpu0 = a.pid > 0 ? bench_proc_cpu_s(a.pid) : -1;
        uint64_t t0 = clock_mono_ns();
        rc = baseline_llama_bench(&bl, &lb);
        report_idle_cpu(&a, cpu0, t0);
        if (rc != 0) {
            fprintf(stderr, "bench: llama-bench failed (%d); see %s\n", rc, bl.stderr_log);
            break;
        }
        sample_add(&res->lb_pp, lb.pp_tps), sample_add(&res->lb_tg, lb.tg_tps);
        sample_add(&res->lb_tg_depth, lb.tg_d_tps);
        res->lb_rss_kb = lb.maxrss_kb > res->lb_rss_kb ? lb.maxrss_kb : res->lb_rss_kb;
        bench_progress("round %d/%d llama-bench: pp%d %.1f t/s, tg%d %.2f t/s (%.2f at depth %d)",
                       round, o->reps, o->n_prompt, lb.pp_tps, o->n_gen, lb.tg_tps, lb.tg_d_tps,
                       o->n_prompt);
        if (o->baseline_only)
            continue;
        rc = agent_requests(o, &a, bp, &variant, &r, 1);
        if (rc == 0) {
            sample_add(&res->ag_pp, rate_prompt_wall(&r, o->n_prompt));
            sample_add(&res->ag_tg, rate_gen_wall(&r));
            sample_add(&res->ag_pp_own, rate_prompt_own(&r));
            sample_add(&res->ag_tg_own, rate_gen_own(&r));
            bench_progress("round %d/%d agent:       pp %.1f t/s (%u evaluated), tg %.2f t/s "
                           "(%u tokens); own timings pp %.1f tg %.2f",
                           round, o->reps, rate_prompt_wall(&r, o->n_prompt), r.prompt_evaluated,
                           rate_gen_wall(&r), r.n_tokens, rate_prompt_own(&r), rate_gen_own(&r));
        }
        link_request_free(&r);
    }
    if (!o->baseline_only)
        res->ag1_rss_kb = agent_finish(&a);
    return rc;
}

static int agent_parallel_round(const bench_opts *o, agent_proc *a, bench_prompts *bp, int *variant,
                                int round, bench_results *res)
{
    for (size_t i = 0; i < o->n_pl; i++) {
        link_request rs[BASELINE_MAX_PL * 8];
        int n = o->pl[i];
        int rc = agent_requests(o, a, bp, variant, rs, n);
        if (rc == 0) {
            sample_add(&res->ag_agg[i], rate_gen_aggregate(rs, n));
            sample_add(&res->ag_total[i], rate_total(rs, n));
            bench_progress("round %d/%d agent x%d: aggregate tg %.2f t/s, total %.1f t/s", round,
                           o->reps, n, rate_gen_aggregate(rs, n), rate_total(rs, n));
        }
        for (int k = 0; k < n; k++)
            link_request_free(&rs[k]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* N concurrent requests vs llama-batched-bench -npl, interleaved round by round. */
static int phase_parallel(const bench_opts *o, bench_prompts *bp, bench_results *res)
{
    int max_pl = o->pl[o->n_pl - 1];
    baseline_params bl = baseline_for(o, max_pl);
    agent_proc a = {0};
    bl.idle = pump_link, bl.idle_user = &a;
    int variant = 1000, rc = o->baseline_only ? 0 : agent_start(o, max_pl, "parallel", &a);
    link_request warm[BASELINE_MAX_PL * 8];
    if (rc == 0 && !o->baseline_only) {
        rc = agent_requests(o, &a, bp, &variant, warm, max_pl);
        for (int k = 0; k < max_pl; k++)
            link_request_free(&warm[k]);
    }
    for (int round = 1; rc == 0 && round <= o->reps; round++) {
        batched_bench_run bb;
        double cpu0 = a.pid > 0 ? bench_proc_cpu_s(a.pid) : -1;
        uint64_t t0 = clock_mono_ns();
        rc = baseline_batched_bench(&bl, o->pl, o->n_pl, &bb);
        report_idle_cpu(&a, cpu0, t0);
        if (rc != 0) {
            fprintf(stderr, "bench: llama-batched-bench failed (%d); see %s\n", rc, bl.stderr_log);
            break;
        }
        for (size_t i = 0; i < o->n_pl; i++) {
            sample_add(&res->bb_tg[i], bb.tg_tps[i]),
                sample_add(&res->bb_total[i], bb.total_tps[i]);
            bench_progress("round %d/%d batched-bench npl=%d: S_TG %.2f t/s, S %.1f t/s", round,
                           o->reps, bb.pl[i], bb.tg_tps[i], bb.total_tps[i]);
        }
        res->bb_rss_kb = bb.maxrss_kb > res->bb_rss_kb ? bb.maxrss_kb : res->bb_rss_kb;
        if (!o->baseline_only)
            rc = agent_parallel_round(o, &a, bp, &variant, round, res);
    }
    if (!o->baseline_only)
        res->agn_rss_kb = agent_finish(&a);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bench_agent --model GGUF --agent PATH [options]\n"
        "  --label TEXT        model label in the table (say \"synthetic\" for synthetic models)\n"
        "  --threads N         -t for the agent and both llama.cpp tools (default 2)\n"
        "  --reps N            rounds; medians are reported (default 3)\n"
        "  --pl LIST           parallel requests, e.g. 1,2,4 (default); \"\" skips the phase\n"
        "  --prompt N --gen N  pp and tg lengths (default 128 and 128)\n"
        "  --ctx N             agent context per slot (default 512)\n"
        "  --tg-target X --agg-target X   ratios printed as targets (default 0.97, 0.95)\n"
        "  --llama-bin DIR     llama-bench / llama-batched-bench (default: the build's)\n"
        "  --work-dir DIR      keys and logs (default: a new /tmp/edgefleet-bench.XXXXXX)\n"
        "  --summary FILE      append the table as TSV rows\n"
        "  --baseline-only     run only llama-bench / batched-bench (no agent needed)\n");
}

static int parse_pl(const char *s, bench_opts *o)
{
    o->n_pl = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 8 || o->n_pl == BASELINE_MAX_PL)
            return EF_EINVAL;
        o->pl[o->n_pl++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return EF_EINVAL;
    }
    return 0;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = v != NULL;
        if (!strcmp(a, "--baseline-only")) {
            o->baseline_only = 1;
            continue;
        }
        if (!takes)
            return EF_EINVAL;
        i++;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--agent"))
            o->agent_bin = v;
        else if (!strcmp(a, "--label"))
            o->label = v;
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--reps"))
            o->reps = atoi(v);
        else if (!strcmp(a, "--prompt"))
            o->n_prompt = atoi(v);
        else if (!strcmp(a, "--gen"))
            o->n_gen = atoi(v);
        else if (!strcmp(a, "--ctx"))
            o->slot_ctx = atoi(v);
        else if (!strcmp(a, "--tg-target"))
            o->tg_target = atof(v);
        else if (!strcmp(a, "--agg-target"))
            o->agg_target = atof(v);
        else if (!strcmp(a, "--llama-bin"))
            o->bin_dir = v;
        else if (!strcmp(a, "--work-dir"))
            o->work_dir = v;
        else if (!strcmp(a, "--summary"))
            o->summary = v;
        else if (!strcmp(a, "--pl") ? parse_pl(v, o) != 0 : 1)
            return EF_EINVAL;
    }
    int bad = !o->model || (!o->agent_bin && !o->baseline_only) || o->threads < 1 || o->reps < 1 ||
              o->reps > REPORT_MAX_REPS || o->n_prompt < 1 || o->n_gen < 2 ||
              o->slot_ctx < o->n_prompt + o->n_gen;
    return bad ? EF_EINVAL : 0;
}

static void quiet_llama_log(enum ggml_log_level level, const char *text, void *user)
{
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

int main(int argc, char **argv)
{
    bench_opts o = {.bin_dir = EF_LLAMA_BIN_DIR,
                    .threads = 2,
                    .reps = 3,
                    .n_prompt = 128,
                    .n_gen = 128,
                    .slot_ctx = 512,
                    .tg_target = 0.97,
                    .agg_target = 0.95,
                    .pl = {1, 2, 4},
                    .n_pl = 3};
    char work[] = "/tmp/edgefleet-bench.XXXXXX", blog[4200];
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (!o.work_dir && !(o.work_dir = mkdtemp(work))) {
        perror("bench: mkdtemp");
        return 1;
    }
    snprintf(blog, sizeof blog, "%s/baseline.log", o.work_dir);
    o.baseline_log = blog;
    o.label = o.label ? o.label : o.model;
    llama_log_set(quiet_llama_log, NULL);
    llama_backend_init();
    bench_prompts *bp = bench_prompts_new(o.model);
    if (!bp) {
        fprintf(stderr, "bench: cannot load the vocabulary of %s\n", o.model);
        return 1;
    }
    bench_results res = {.label = o.label,
                         .threads = o.threads,
                         .reps = o.reps,
                         .n_prompt = o.n_prompt,
                         .n_gen = o.n_gen,
                         .tg_target = o.tg_target,
                         .agg_target = o.agg_target,
                         .n_pl = o.n_pl};
    memcpy(res.pl, o.pl, sizeof o.pl);
    bench_progress("%s: %s, -t %d, %d rounds; logs in %s", o.label, o.model, o.threads, o.reps,
                   o.work_dir);
    int rc = phase_single(&o, bp, &res);
    if (rc == 0 && o.n_pl)
        rc = phase_parallel(&o, bp, &res);
    bench_prompts_destroy(&bp);
    llama_backend_free();
    if (rc != 0) {
        fprintf(stderr, "bench: stopped: %s (logs in %s)\n", ef_strerror(rc), o.work_dir);
        return 1;
    }
    FILE *tsv = o.summary ? fopen(o.summary, "a") : NULL;
    report_print(stdout, tsv, &res);
    if (tsv)
        fclose(tsv);
    return 0;
}
