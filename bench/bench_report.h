/* What bench_agent measures, how one request's replies become rates, and the table it prints
 * (plus TSV rows for run_all.sh's summary). Pure functions over recorded timestamps. */
#ifndef EF_BENCH_REPORT_H
#define EF_BENCH_REPORT_H

#include "agent_link.h"
#include "baseline_llama.h"

#include <stdio.h>

#define REPORT_MAX_REPS 16

typedef struct {
    size_t n;
    double v[REPORT_MAX_REPS];
} sample_set;

void sample_add(sample_set *s, double v);

typedef struct {
    const char *label; /* model label as printed ("synthetic qwen2.5-0.5b Q4_K_M") */
    int threads, reps, n_prompt, n_gen;
    double tg_target, agg_target;
    /* single request vs llama-bench */
    sample_set lb_pp, lb_tg, lb_tg_depth, ag_pp, ag_tg, ag_pp_own, ag_tg_own;
    long lb_rss_kb, ag1_rss_kb;
    /* N parallel requests vs llama-batched-bench */
    size_t n_pl;
    int pl[BASELINE_MAX_PL];
    sample_set bb_tg[BASELINE_MAX_PL], bb_total[BASELINE_MAX_PL];
    sample_set ag_agg[BASELINE_MAX_PL], ag_total[BASELINE_MAX_PL];
    long bb_rss_kb, agn_rss_kb;
} bench_results;

/* Prompt tokens/s from the time to first token (send -> first chunk), wall clock. */
double rate_prompt_wall(const link_request *r, int n_prompt);
/* Generation tokens/s from token arrivals: tokens after the first over first -> last. */
double rate_gen_wall(const link_request *r);
/* The agent's own figures from Done.timings (0 when it reports none). */
double rate_prompt_own(const link_request *r);
double rate_gen_own(const link_request *r);
/* Aggregate generation tokens/s of n concurrent requests: tokens arriving while all n are
 * generating (from the last first token to the first last token) over that window, which is
 * what batched-bench's S_TG measures (every sequence decoding in every step). */
double rate_gen_aggregate(const link_request *rs, int n);
/* Everything over everything: (prompts + completions) / (first send -> last Done), as
 * batched-bench's S. */
double rate_total(const link_request *rs, int n);

/* Print the table (medians) to f; append TSV rows (label, metric, agent, baseline, ratio,
 * target) to tsv when it is not NULL. */
void report_print(FILE *f, FILE *tsv, bench_results *res);

#endif
