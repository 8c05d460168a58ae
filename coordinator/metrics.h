/* The coordinator's request counters and histograms for Prometheus (GET /metrics): per model,
 * requests ended by outcome, tokens relayed, resumes, time to first token and request duration.
 * Pure bookkeeping on plain structs (no clock of its own, no socket): request.c reports events
 * with the times it measured, gateway_metrics.c renders the text. Loop thread only. */
#ifndef EF_COORD_METRICS_H
#define EF_COORD_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Histogram buckets in seconds (upper bounds; +Inf is implied): from a token that comes in a
 * millisecond on a small board to a long answer of minutes. */
#define METRICS_BUCKETS 14
extern const double metrics_bucket_bounds[METRICS_BUCKETS];

/* How a request ended, as the `outcome` label says it. */
typedef enum {
    METRICS_DONE = 0,  /* answered (finish stop, length, context) */
    METRICS_CANCELLED, /* by its client */
    METRICS_BUSY,      /* refused: fleet busy */
    METRICS_FAILED,    /* any other error */
    METRICS_OUTCOMES
} metrics_outcome;

typedef struct {
    uint64_t counts[METRICS_BUCKETS + 1]; /* per bucket (not cumulative); last is +Inf */
    uint64_t count;
    double sum;
} metrics_hist;

typedef struct {
    char model[128];
    uint64_t requests[METRICS_OUTCOMES];
    uint64_t tokens;  /* completion tokens relayed to clients */
    uint64_t resumes; /* streams moved to another board */
    metrics_hist ttft, duration;
} metrics_model;

typedef struct metrics metrics;

metrics *metrics_new(void);
void metrics_destroy(metrics **self_p);

/* Events. A model name beyond the table's bound (METRICS_MODELS_MAX distinct names) counts under
 * "_other": a flood of made-up names cannot grow it. */
#define METRICS_MODELS_MAX 256
void metrics_request_end(metrics *m, const char *model, metrics_outcome outcome, double duration_s,
                         uint64_t tokens);
void metrics_first_token(metrics *m, const char *model, double ttft_s);
void metrics_resume(metrics *m, const char *model);

/* The models seen so far, in first-seen order. */
size_t metrics_count(const metrics *m);
const metrics_model *metrics_at(const metrics *m, size_t i);

void metrics_hist_add(metrics_hist *h, double v);

#endif
