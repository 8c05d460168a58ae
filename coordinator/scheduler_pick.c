/* The scheduler's choice of agent for one request (see scheduler.h): among live, non-draining
 * agents serving the model with a free credit, the lowest load per unit of capacity, or the
 * session's agent while it is within session_overload of that. O(agents) per decision, never
 * O(requests). Loop thread only. */
#include "scheduler_internal.h"

/* Per-slot speed used as weight: measured, else the fleet median, else the configured default,
 * so a board that has not reported yet is neither starved nor flooded. */
double sched_agent_speed(scheduler_t *self, const registry_agent *a)
{
    if (a->gen_tps > 0)
        return a->gen_tps;
    double median = registry_median_gen_tps(self->registry);
    return median > 0 ? median : self->params.default_gen_tps;
}

int sched_candidate_model(const scheduler_t *self, const registry_agent *a, const char *model,
                          uint64_t now_ms)
{
    if (registry_agent_draining(a) || !registry_agent_live(self->registry, a, now_ms))
        return -1;
    return registry_model_index(a, model);
}

/* Load after taking one more request, in capacity units: the agent with the lowest value is the
 * one whose share of work is furthest below its share of capacity. */
static double load_score(scheduler_t *self, const registry_agent *a, int mi)
{
    const registry_model *m = &a->models[mi];
    double capacity = (m->total_slots ? m->total_slots : 1) * sched_agent_speed(self, a);
    return (m->inflight + 1) / capacity;
}

static bool pick_best(scheduler_t *self, const char *model, uint64_t now_ms, sched_pick *best)
{
    best->agent = AGENT_ID_NONE;
    size_t n = registry_count(self->registry);
    for (size_t i = 0; i < n; i++) {
        const registry_agent *a = registry_at(self->registry, i);
        int mi = sched_candidate_model(self, a, model, now_ms);
        if (mi < 0 || registry_free_slots(a, (size_t)mi) == 0)
            continue;
        double score = load_score(self, a, mi);
        if (best->agent == AGENT_ID_NONE || score < best->score ||
            (score == best->score && a->id < best->agent))
            *best = (sched_pick){.agent = a->id, .mi = mi, .score = score};
    }
    return best->agent != AGENT_ID_NONE;
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
    double score = load_score(self, a, mi);
    if (score <= self->params.session_overload * out->score)
        *out = (sched_pick){.agent = held, .mi = mi, .score = score};
    return true;
}
