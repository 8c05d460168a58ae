/* The baselines every agent figure is divided by: llama-bench (one sequence: pp and tg) and
 * llama-batched-bench (N parallel sequences), both built from the same llama.cpp release as the
 * agent, run as children on the same model, threads and box, in the same run. Their
 * machine-readable output (llama-bench -o json, batched-bench --output-format jsonl) is parsed
 * with cJSON. */
#ifndef EF_BENCH_BASELINE_LLAMA_H
#define EF_BENCH_BASELINE_LLAMA_H

#include "bench_util.h"

#include <stddef.h>

typedef struct {
    const char *bin_dir;    /* holds llama-bench and llama-batched-bench */
    const char *model;      /* GGUF path */
    int threads;            /* -t */
    int n_prompt;           /* pp tokens (128) */
    int n_gen;              /* tg tokens (128) */
    int n_batch;            /* -b and -ub, mirroring the agent's decode batch */
    int n_ctx;              /* batched-bench -c: slots x context per slot, as the agent's */
    const char *stderr_log; /* the tools' stderr goes here (NULL = discarded) */
    bench_idle_fn idle;     /* called while a tool runs (may be NULL) */
    void *idle_user;
} baseline_params;

/* One llama-bench run (-r 1, after its own warm-up). */
typedef struct {
    double pp_tps;   /* pp<n_prompt> at depth 0, tokens/s */
    double tg_tps;   /* tg<n_gen> at depth 0, tokens/s (the usual figure) */
    double tg_d_tps; /* tg<n_gen> at depth n_prompt: the KV depth the agent generates at */
    long maxrss_kb;
} llama_bench_run;

/* One llama-batched-bench run at each of the n_pl batch sizes in pl[]. */
#define BASELINE_MAX_PL 8
typedef struct {
    size_t n_pl;
    int pl[BASELINE_MAX_PL];
    double tg_tps[BASELINE_MAX_PL];    /* S_TG: aggregate generation tokens/s */
    double total_tps[BASELINE_MAX_PL]; /* S: (pl*pp + pl*tg) / (t_pp + t_tg) */
    long maxrss_kb;
} batched_bench_run;

/* Returns 0, or EF_EIO (tool failed: see stderr_log) / EF_EPROTO (output not understood). */
int baseline_llama_bench(const baseline_params *p, llama_bench_run *out);
int baseline_batched_bench(const baseline_params *p, const int *pl, size_t n_pl,
                           batched_bench_run *out);

#endif
