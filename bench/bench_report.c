/* Implementation of bench_report.h. */
#include "bench_report.h"

#include "bench_util.h"

#include <string.h>

void sample_add(sample_set *s, double v)
{
    if (s->n < REPORT_MAX_REPS && v > 0)
        s->v[s->n++] = v;
}

static double median(sample_set *s) { return bench_median(s->v, s->n); }

double rate_prompt_wall(const link_request *r, int n_prompt)
{
    double evaluated = r->prompt_evaluated ? r->prompt_evaluated : (double)n_prompt;
    return r->t_first_ns > r->t_send_ns ? evaluated * 1e9 / (double)(r->t_first_ns - r->t_send_ns)
                                        : 0;
}

double rate_gen_wall(const link_request *r)
{
    if (r->n_tokens < 2)
        return 0;
    uint64_t span = r->token_ns[r->n_tokens - 1] - r->t_first_ns;
    return span ? (double)(r->n_tokens - 1) * 1e9 / (double)span : 0;
}

double rate_prompt_own(const link_request *r)
{
    return r->prompt_ms > 0 ? r->prompt_evaluated * 1e3 / r->prompt_ms : 0;
}

double rate_gen_own(const link_request *r)
{
    return r->generation_ms > 0 ? r->completion_tokens * 1e3 / r->generation_ms : 0;
}

double rate_gen_aggregate(const link_request *rs, int n)
{
    uint64_t start = 0, end = UINT64_MAX;
    for (int i = 0; i < n; i++) {
        if (rs[i].n_tokens < 2)
            return 0;
        if (rs[i].t_first_ns > start)
            start = rs[i].t_first_ns;
        if (rs[i].token_ns[rs[i].n_tokens - 1] < end)
            end = rs[i].token_ns[rs[i].n_tokens - 1];
    }
    if (end <= start)
        return 0;
    size_t count = 0;
    for (int i = 0; i < n; i++)
        for (uint32_t k = 0; k < rs[i].n_tokens; k++)
            count += rs[i].token_ns[k] > start && rs[i].token_ns[k] <= end;
    return (double)count * 1e9 / (double)(end - start);
}

double rate_total(const link_request *rs, int n)
{
    uint64_t start = UINT64_MAX, end = 0;
    double tokens = 0;
    for (int i = 0; i < n; i++) {
        start = rs[i].t_send_ns < start ? rs[i].t_send_ns : start;
        end = rs[i].t_done_ns > end ? rs[i].t_done_ns : end;
        tokens += rs[i].prompt_tokens + rs[i].n_tokens;
    }
    return end > start ? tokens * 1e9 / (double)(end - start) : 0;
}

/* One table row: agent figure, baseline figure, ratio, and the target verdict if any. */
static void row(FILE *f, FILE *tsv, const char *label, const char *metric, double agent,
                double base, const char *base_name, double target)
{
    double ratio = base > 0 && agent > 0 ? agent / base : 0;
    char verdict[32] = "";
    if (target > 0 && ratio > 0)
        snprintf(verdict, sizeof verdict, ">= %.2fx %s", target, ratio >= target ? "ok" : "BELOW");
    char a[32] = "-", r[32] = "-";
    if (agent > 0)
        snprintf(a, sizeof a, "%.1f", agent);
    if (ratio > 0)
        snprintf(r, sizeof r, "%.3fx", ratio);
    fprintf(f, "  %-34s %10s  %10.1f %-24s %7s  %s\n", metric, a, base, base_name, r, verdict);
    if (tsv)
        fprintf(tsv, "%s\t%s\t%.1f\t%.1f %s\t%.3f\t%s\n", label, metric, agent, base, base_name,
                ratio, verdict);
}

void report_print(FILE *f, FILE *tsv, bench_results *r)
{
    char m[96], b[64];
    fprintf(f, "\n== agent vs llama.cpp: %s | -t %d | median of %d | pp%d tg%d ==\n", r->label,
            r->threads, r->reps, r->n_prompt, r->n_gen);
    fprintf(f, "  %-34s %10s  %10s %-24s %7s  %s\n", "metric", "agent", "baseline", "(tool)",
            "ratio", "target");
    if (r->lb_pp.n) {
        snprintf(m, sizeof m, "pp%d t/s (TTFT, wall)", r->n_prompt);
        snprintf(b, sizeof b, "llama-bench pp%d", r->n_prompt);
        row(f, tsv, r->label, m, median(&r->ag_pp), median(&r->lb_pp), b, 0);
        snprintf(m, sizeof m, "tg%d t/s (wall)", r->n_gen);
        snprintf(b, sizeof b, "llama-bench tg%d@d%d", r->n_gen, r->n_prompt);
        row(f, tsv, r->label, m, median(&r->ag_tg), median(&r->lb_tg_depth), b, r->tg_target);
        snprintf(b, sizeof b, "llama-bench tg%d", r->n_gen);
        row(f, tsv, r->label, m, median(&r->ag_tg), median(&r->lb_tg), b, 0);
        row(f, tsv, r->label, "pp t/s (agent's Done.timings)", median(&r->ag_pp_own),
            median(&r->lb_pp), "llama-bench", 0);
        row(f, tsv, r->label, "tg t/s (agent's Done.timings)", median(&r->ag_tg_own),
            median(&r->lb_tg_depth), "llama-bench", 0);
        row(f, tsv, r->label, "peak RSS MiB (1 slot)", r->ag1_rss_kb / 1024.0,
            r->lb_rss_kb / 1024.0, "llama-bench", 0);
    }
    for (size_t i = 0; i < r->n_pl; i++) {
        snprintf(m, sizeof m, "aggregate tg t/s, %d parallel", r->pl[i]);
        snprintf(b, sizeof b, "batched-bench npl=%d", r->pl[i]);
        row(f, tsv, r->label, m, median(&r->ag_agg[i]), median(&r->bb_tg[i]), b, r->agg_target);
        snprintf(m, sizeof m, "total t/s (pp+tg), %d parallel", r->pl[i]);
        row(f, tsv, r->label, m, median(&r->ag_total[i]), median(&r->bb_total[i]), b, 0);
    }
    if (r->n_pl) {
        snprintf(m, sizeof m, "peak RSS MiB (%d slots)", r->pl[r->n_pl - 1]);
        row(f, tsv, r->label, m, r->agn_rss_kb / 1024.0, r->bb_rss_kb / 1024.0, "batched-bench", 0);
    }
    fflush(f);
}
