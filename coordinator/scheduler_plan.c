/* The scheduler's read-mostly side: batch split plans, retry estimates for refused clients, and
 * the counts status reports need (per model and per client). Loop thread only. */
#include "scheduler_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_MS 100u    /* a busy fleet is not worth hammering sooner than this */
#define RETRY_MAX_MS 600000u /* past ten minutes an estimate means nothing */

typedef struct {
    agent_id_t agent;
    double weight;
    uint32_t count;
    double remainder;
} share;

static int by_weight_desc(const void *a, const void *b)
{
    const share *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight < y->weight ? 1 : -1;
    return (x->agent > y->agent) - (x->agent < y->agent);
}

/* Candidates for model with weight free slots x speed; when nothing is free anywhere, total
 * slots x speed (the batch will queue, but still lands where capacity is). Returns how many. */
static size_t gather_shares(scheduler_t *self, const char *model, uint64_t now_ms, share *s)
{
    size_t k = 0;
    double free_sum = 0;
    registry_model_iter it;
    registry_model_iter_begin(self->registry, model, &it);
    for (const registry_agent *a; (a = registry_model_iter_next(&it, NULL)) != NULL;) {
        int mi = sched_candidate_model(self, a, model, now_ms);
        if (mi < 0)
            continue;
        double speed = sched_agent_speed(self, a, now_ms);
        s[k] = (share){.agent = a->id, .weight = registry_free_slots(a, (size_t)mi) * speed};
        free_sum += s[k].weight;
        s[k].remainder = a->models[mi].total_slots * speed; /* the fallback weight, for now */
        k++;
    }
    for (size_t i = 0; free_sum <= 0 && i < k; i++)
        s[i].weight = s[i].remainder;
    return k;
}

/* Largest remainder: floors of the exact quotas, then one more each to the biggest fractions. */
static void apportion(share *s, size_t m, uint32_t n)
{
    double total = 0;
    for (size_t i = 0; i < m; i++)
        total += s[i].weight;
    uint32_t given = 0;
    for (size_t i = 0; i < m; i++) {
        double quota = total > 0 ? n * s[i].weight / total : (double)n / m;
        s[i].count = (uint32_t)floor(quota);
        s[i].remainder = quota - s[i].count;
        given += s[i].count;
    }
    for (; given < n; given++) {
        size_t best = 0;
        for (size_t i = 1; i < m; i++)
            if (s[i].remainder > s[best].remainder)
                best = i;
        s[best].count++;
        s[best].remainder = -1;
    }
}

int scheduler_plan_split(scheduler_t *self, const char *model, uint32_t n, uint64_t now_ms,
                         agent_id_t *agents_out, uint32_t *counts_out, size_t cap,
                         size_t *n_agents_out)
{
    if (!self || !model || !n_agents_out || cap == 0 || !agents_out || !counts_out)
        return EF_EINVAL;
    *n_agents_out = 0;
    size_t na = registry_count(self->registry);
    share *s = malloc((na ? na : 1) * sizeof(*s));
    if (!s)
        return EF_ENOMEM;
    size_t k = gather_shares(self, model, now_ms, s);
    if (k == 0) {
        free(s);
        return EF_EUNKNOWNMODEL;
    }
    qsort(s, k, sizeof(*s), by_weight_desc);
    size_t m = k < cap ? k : cap;
    apportion(s, m, n);
    for (size_t i = 0; i < m; i++) {
        if (s[i].count == 0)
            continue;
        agents_out[*n_agents_out] = s[i].agent;
        counts_out[(*n_agents_out)++] = s[i].count;
    }
    free(s);
    return 0;
}

uint32_t sched_retry_for_tokens(scheduler_t *self, const char *model, double tokens,
                                uint64_t now_ms)
{
    double tps = 0;
    registry_model_iter it;
    registry_model_iter_begin(self->registry, model, &it);
    for (const registry_agent *a; (a = registry_model_iter_next(&it, NULL)) != NULL;) {
        int mi = sched_candidate_model(self, a, model, now_ms);
        if (mi >= 0)
            tps += a->models[mi].total_slots * sched_agent_speed(self, a, now_ms);
    }
    if (!(tps > 0))
        tps = self->params.default_gen_tps; /* no agent now: assume one slot will appear */
    double ms = 1000.0 * tokens / tps;
    return ms < RETRY_MIN_MS ? RETRY_MIN_MS : ms > RETRY_MAX_MS ? RETRY_MAX_MS : (uint32_t)ms;
}

uint32_t scheduler_retry_after_ms(scheduler_t *self, const char *model, uint64_t now_ms)
{
    if (!self || !model)
        return RETRY_MIN_MS;
    /* The queue keeps its token sum: a refusal must not walk the queue it was refused from. */
    int qi = sched_queue_index(self, model);
    double tokens = qi >= 0 ? (double)self->queues[qi].queued_tokens : 0;
    return sched_retry_for_tokens(self, model, tokens, now_ms);
}

uint64_t scheduler_next_deadline_ms(const scheduler_t *self)
{
    if (!self)
        return 0;
    if (self->expired_head != NIL) /* already due: the caller's timer should fire at once */
        return self->recs[self->expired_head].req.deadline_ms;
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < self->n_queues; i++)
        if (self->queues[i].by_deadline.len > 0 &&
            edf_top(&self->queues[i].by_deadline)->deadline_key < next)
            next = edf_top(&self->queues[i].by_deadline)->deadline_key;
    return next == UINT64_MAX ? 0 : next;
}

uint32_t scheduler_queued(const scheduler_t *self, const char *model)
{
    int qi = self && model ? sched_queue_index(self, model) : -1;
    return qi < 0 ? 0 : self->queues[qi].by_deadline.len;
}

uint32_t scheduler_inflight(const scheduler_t *self) { return self ? self->inflight : 0; }

uint32_t scheduler_queue_capacity(const scheduler_t *self)
{
    return self ? self->params.max_queued_per_model : 0;
}

size_t scheduler_queue_count(const scheduler_t *self) { return self ? self->n_queues : 0; }

const char *scheduler_queue_at(const scheduler_t *self, size_t i, uint32_t *queued)
{
    if (!self || i >= self->n_queues)
        return NULL;
    if (queued)
        *queued = self->queues[i].by_deadline.len;
    return self->queues[i].model;
}

agent_id_t scheduler_session_agent(const scheduler_t *self, const char *session_id, uint64_t now_ms)
{
    return self ? session_map_get(self->sessions, session_id, now_ms) : AGENT_ID_NONE;
}

uint32_t scheduler_client_count(const scheduler_t *self, const char *client)
{
    if (!self || (client && strlen(client) >= SCHED_CLIENT_MAX))
        return 0;
    int32_t c = fair_client_find(self, client ? client : "");
    return c == NIL ? 0 : self->clients[c].count;
}

uint32_t scheduler_client_cap(const scheduler_t *self)
{
    return self ? self->params.max_per_client : 0;
}

size_t scheduler_clients(const scheduler_t *self) { return self ? self->n_clients : 0; }
