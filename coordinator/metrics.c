/* Implementation of metrics.h: a small table of models, each with its counters and two
 * histograms. Looked up by name with a linear scan: a fleet serves a handful of models, and a
 * request ends once. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_bucket_bounds[METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                       1,     2.5,  5,     10,   30,  60,   300};

struct metrics {
    metrics_model *models;
    size_t n;
};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (m && !(m->models = calloc(METRICS_MODELS_MAX + 1, sizeof *m->models))) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_destroy(metrics **self_p)
{
    metrics *m = *self_p;
    if (!m)
        return;
    *self_p = NULL;
    free(m->models);
    free(m);
}

static metrics_model *model_of(metrics *m, const char *name)
{
    if (!m)
        return NULL;
    if (!name || !*name)
        name = "_none";
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->models[i].model, name) == 0)
            return &m->models[i];
    if (m->n > METRICS_MODELS_MAX) /* full: the extra row, "_other", takes the rest */
        return &m->models[METRICS_MODELS_MAX];
    metrics_model *row = &m->models[m->n++];
    snprintf(row->model, sizeof row->model, "%s", m->n > METRICS_MODELS_MAX ? "_other" : name);
    return row;
}

void metrics_hist_add(metrics_hist *h, double v)
{
    if (!(v >= 0)) /* NaN or negative: a clock that went backwards says nothing */
        v = 0;
    size_t b = 0;
    while (b < METRICS_BUCKETS && v > metrics_bucket_bounds[b])
        b++;
    h->counts[b]++;
    h->count++;
    h->sum += v;
}

void metrics_request_end(metrics *m, const char *model, metrics_outcome outcome, double duration_s,
                         uint64_t tokens)
{
    metrics_model *row = model_of(m, model);
    if (!row || outcome >= METRICS_OUTCOMES)
        return;
    row->requests[outcome]++;
    row->tokens += tokens;
    if (outcome == METRICS_DONE)
        metrics_hist_add(&row->duration, duration_s);
}

void metrics_first_token(metrics *m, const char *model, double ttft_s)
{
    metrics_model *row = model_of(m, model);
    if (row)
        metrics_hist_add(&row->ttft, ttft_s);
}

void metrics_resume(metrics *m, const char *model)
{
    metrics_model *row = model_of(m, model);
    if (row)
        row->resumes++;
}

size_t metrics_count(const metrics *m) { return m ? m->n : 0; }

const metrics_model *metrics_at(const metrics *m, size_t i)
{
    return m && i < m->n ? &m->models[i] : NULL;
}
