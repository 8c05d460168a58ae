/* Telemetry interval accounting (sampler.h). */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sampler_init(sampler *s, uint64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->start_ms = now_ms;
}

void sampler_add_tokens(sampler *s, uint64_t prompt, uint64_t gen)
{
    s->prompt_tokens += prompt;
    s->gen_tokens += gen;
}

void sampler_add_end(sampler *s, int ok, double ttft_ms)
{
    if (ok)
        s->finished++;
    else
        s->failed++;
    if (ttft_ms >= 0 && isfinite(ttft_ms) && s->n_ttft < SAMPLER_TTFT_MAX)
        s->ttft_ms[s->n_ttft++] = ttft_ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sampler_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    /* Nearest rank: the smallest value with at least p% of the values at or below it. */
    double rank = ceil(p / 100.0 * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return v[i < n ? i : n - 1];
}

void sampler_take(sampler *s, uint64_t now_ms, sampler_interval *out)
{
    memset(out, 0, sizeof *out);
    uint64_t span = now_ms > s->start_ms ? now_ms - s->start_ms : 0;
    out->interval_ms = span > UINT32_MAX ? UINT32_MAX : (uint32_t)span;
    out->prompt_tokens = s->prompt_tokens;
    out->gen_tokens = s->gen_tokens;
    if (span) {
        out->prompt_tps = (double)s->prompt_tokens * 1000.0 / (double)span;
        out->gen_tps = (double)s->gen_tokens * 1000.0 / (double)span;
    }
    out->finished = s->finished;
    out->failed = s->failed;
    out->ttft_count = (uint32_t)s->n_ttft;
    out->ttft_p50_ms = sampler_percentile(s->ttft_ms, s->n_ttft, 50);
    out->ttft_p95_ms = sampler_percentile(s->ttft_ms, s->n_ttft, 95);
    sampler_init(s, now_ms);
}
