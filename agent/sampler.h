/* Telemetry interval accounting, pure logic: the agent feeds what its replies carry (tokens
 * generated, prompt tokens evaluated, a request's time to first token, a request ending well or
 * not) and, once per telemetry interval, takes the interval's rates, counts and TTFT
 * percentiles, which resets them. Nothing is kept from one interval to the next, so an idle
 * board reports 0 tokens/s rather than its last busy value. Times are an argument (any
 * monotonic ms clock, the same for every call); no clock is read here. Not thread-safe. */
#ifndef EF_AGENT_SAMPLER_H
#define EF_AGENT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

/* TTFTs kept per interval: beyond, the percentiles are over the first SAMPLER_TTFT_MAX. */
#define SAMPLER_TTFT_MAX 1024

typedef struct {
    uint64_t start_ms; /* when the current interval began */
    uint64_t prompt_tokens, gen_tokens;
    uint32_t finished, failed;
    size_t n_ttft;
    double ttft_ms[SAMPLER_TTFT_MAX];
} sampler;

/* One interval's figures, as sampler_take returns them. */
typedef struct {
    uint32_t interval_ms;
    uint64_t prompt_tokens, gen_tokens;
    double prompt_tps, gen_tps; /* tokens / interval; 0 when the interval is empty */
    uint32_t finished, failed;
    uint32_t ttft_count;
    double ttft_p50_ms, ttft_p95_ms; /* 0 when ttft_count is 0 */
} sampler_interval;

/* Start the first interval at now_ms. */
void sampler_init(sampler *s, uint64_t now_ms);
/* Tokens generated (sent to the coordinator) and prompt tokens evaluated. */
void sampler_add_tokens(sampler *s, uint64_t prompt, uint64_t gen);
/* A request ended: ok (Done) or not (Error). ttft_ms < 0 = it had no first token. */
void sampler_add_end(sampler *s, int ok, double ttft_ms);
/* The interval from the last take (or init) to now_ms: fills out and starts the next one. A
 * clock that did not move gives an interval of 0 ms and rates of 0. */
void sampler_take(sampler *s, uint64_t now_ms, sampler_interval *out);
/* The p-th percentile (0..100, nearest rank) of v[0..n); sorts v. 0 when n is 0. */
double sampler_percentile(double *v, size_t n, double p);

#endif
