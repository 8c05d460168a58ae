/* The scheduler's choice of agent for one request (see scheduler.h): among live, non-draining
 * agents serving the model with a free credit, the lowest load per unit of capacity, or the
 * session's agent while it is within session_overload of that. O(log agents) per decision (the
 * registry's per-model heaps, registry_pick), never O(requests). Loop thread only. */
#include "scheduler_internal.h"

/* The fallback speed of agents that have not measured theirs (see sched_agent_speed). */
static double fallback_speed(scheduler_t *self, uint64_t now_ms)
{
    double median = registry_median_gen_tps_at(self->registry, now_ms);
    return median > 0 ? median : self->params.default_gen_tps;
}

/* Per-slot speed used as weight: measured, else the fleet median, else the configured default,
 * so a board that has not reported yet is neither starved nor flooded. */
double sched_agent_speed(scheduler_t *self, const registry_agent *a, uint64_t now_ms)
{
    if (a->gen_tps > 0)
        return a->gen_tps;
    return fallback_speed(self, now_ms);
}

int sched_candidate_model(const scheduler_t *self, const registry_agent *a, const char *model,
                          uint64_t now_ms)
{
    if (registry_agent_draining(a) || !registry_agent_live(self->registry, a, now_ms))
        return -1;
    return registry_model_index(a, model);
}

static bool pick_best(scheduler_t *self, const char *model, uint64_t now_ms, sched_pick *best)
{
    registry_pick_result p;
    bool found = registry_pick(self->registry, model, now_ms, fallback_speed(self, now_ms), &p);
    *best = (sched_pick){.agent = p.agent, .mi = p.mi, .score = p.score};
    return found;
}

/* The best agent for r, or the session's agent while it is healthy, has a credit and its load is
 * within session_overload of the best: a warm KV cache is worth a somewhat busier board. */
bool sched_pick_for(scheduler_t *self, const record *r, uint64_t now_ms, sched_pick *out)
{
    if (!pick_best(self, r->req.model, now_ms, out))
        return false;
    agent_id_t held = session_map_get(self->sessions, r->req.session_id, now_ms);
    if (held == AGENT_ID_NONE || held == out->agent)
        return true;
    const registry_agent *a = registry_get(self->registry, held);
    int mi = a ? sched_candidate_model(self, a, r->req.model, now_ms) : -1;
    if (mi < 0 || registry_free_slots(a, (size_t)mi) == 0)
        return true;
    double score = registry_load_score(a, (size_t)mi, fallback_speed(self, now_ms));
    if (score <= self->params.session_overload * out->score)
        *out = (sched_pick){.agent = held, .mi = mi, .score = score};
    return true;
}
