/* The coordinator's routing logic (see scheduler.h): the request table, admission, the pick, and
 * the moves of a request between queued, in flight and gone. Queues and session memory live in
 * scheduler_queue.c and scheduler_session.c, batch planning and estimates in scheduler_plan.c.
 * Loop thread only. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

scheduler_params scheduler_default_params(void)
{
    scheduler_params p = {
        .max_queued_per_model = 1024,
        .max_models = 64,
        .max_requests = 65536,
        .max_sessions = 4096,
        .session_ttl_ms = 600000,
        .default_gen_tps = 10.0,
        .session_overload = 2.0,
        .default_tokens = 256,
        .queue_unknown_models = false,
        .orphan_grace_ms = 30000,
    };
    return p;
}

static scheduler_params with_defaults(const scheduler_params *p)
{
    scheduler_params d = scheduler_default_params();
    scheduler_params r = p ? *p : d;
    if (r.max_queued_per_model == 0)
        r.max_queued_per_model = d.max_queued_per_model;
    if (r.max_models == 0)
        r.max_models = d.max_models;
    if (r.max_requests == 0 || r.max_requests > (1u << 30))
        r.max_requests = d.max_requests;
    if (r.max_sessions == 0)
        r.max_sessions = d.max_sessions;
    if (r.session_ttl_ms == 0)
        r.session_ttl_ms = d.session_ttl_ms;
    if (!(r.default_gen_tps > 0))
        r.default_gen_tps = d.default_gen_tps;
    if (!(r.session_overload > 0))
        r.session_overload = d.session_overload;
    if (r.default_tokens == 0)
        r.default_tokens = d.default_tokens;
    if (r.orphan_grace_ms == 0)
        r.orphan_grace_ms = d.orphan_grace_ms;
    return r;
}

scheduler_t *scheduler_new(registry_t *registry, const scheduler_params *p)
{
    if (!registry)
        return NULL;
    scheduler_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->params = with_defaults(p);
    self->registry = registry;
    self->free_head = NIL;
    self->expired_head = NIL;
    self->nbuckets = 64;
    while (self->nbuckets < self->params.max_requests && self->nbuckets < (1u << 20))
        self->nbuckets *= 2;
    self->buckets = malloc(self->nbuckets * sizeof(*self->buckets));
    self->queues = calloc(self->params.max_models, sizeof(*self->queues));
    self->sessions = session_map_new(self->params.max_sessions, self->params.session_ttl_ms);
    if (!self->buckets || !self->queues || !self->sessions) {
        scheduler_destroy(&self);
        return NULL;
    }
    for (uint32_t i = 0; i < self->nbuckets; i++)
        self->buckets[i] = NIL;
    return self;
}

void scheduler_destroy(scheduler_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    scheduler_t *self = *self_p;
    for (uint32_t i = 0; self->queues && i < self->n_queues; i++)
        queue_free(&self->queues[i]);
    free(self->queues);
    free(self->buckets);
    free(self->recs);
    free(self->heap_pos);
    session_map_destroy(&self->sessions);
    free(self);
    *self_p = NULL;
}

/* ---- request table: slots, tickets, request-id hash ------------------------------------- */

static uint32_t hash_id(const uint8_t *id)
{
    uint32_t h = 2166136261u; /* FNV-1a over the 16 client-chosen bytes */
    for (int i = 0; i < SCHED_REQUEST_ID_LEN; i++)
        h = (h ^ id[i]) * 16777619u;
    return h;
}

static int grow_table(scheduler_t *self)
{
    if (self->n_slots >= self->params.max_requests)
        return EF_EBUSY;
    uint32_t n = self->n_slots ? self->n_slots * 2 : 64;
    if (n > self->params.max_requests)
        n = self->params.max_requests;
    record *recs = realloc(self->recs, (size_t)n * sizeof(*recs));
    if (!recs)
        return EF_ENOMEM;
    self->recs = recs;
    uint32_t *pos = realloc(self->heap_pos, (size_t)n * sizeof(*pos));
    if (!pos)
        return EF_ENOMEM;
    self->heap_pos = pos;
    for (uint32_t i = n; i-- > self->n_slots;) {
        memset(&recs[i], 0, sizeof(recs[i]));
        recs[i].where = W_FREE;
        recs[i].hnext = self->free_head;
        self->free_head = (int32_t)i;
    }
    self->n_slots = n;
    return 0;
}

/* Takes a free slot and fills it from the submission; the record is hashed but in no queue. */
static int alloc_record(scheduler_t *self, const sched_submit *req, uint32_t queue, uint64_t now_ms,
                        uint32_t *slot_out)
{
    int rc;
    if (self->free_head == NIL && (rc = grow_table(self)) != 0)
        return rc;
    uint32_t slot = (uint32_t)self->free_head;
    record *r = &self->recs[slot];
    self->free_head = r->hnext;
    memset(r, 0, sizeof(*r));
    self->seq++;
    uint64_t gen = self->seq & 0xffffffffu;
    r->req.ticket = ((gen ? gen : 1) << 32) | slot;
    memcpy(r->req.request_id, req->request_id, SCHED_REQUEST_ID_LEN);
    strcpy(r->req.model, self->queues[queue].model);
    if (req->session_id)
        strcpy(r->req.session_id, req->session_id);
    r->req.deadline_ms = req->deadline_ms;
    r->req.max_tokens = req->max_tokens;
    r->req.seed = req->seed;
    r->req.submitted_ms = now_ms;
    r->req.state = SCHED_QUEUED;
    r->req.payload = req->payload;
    r->queue = queue;
    r->seq = self->seq;
    r->mi = -1;
    r->where = W_DETACHED;
    uint32_t b = hash_id(r->req.request_id) & (self->nbuckets - 1);
    r->hnext = self->buckets[b];
    self->buckets[b] = (int32_t)slot;
    *slot_out = slot;
    return 0;
}

record *sched_record(const scheduler_t *self, uint64_t ticket)
{
    uint32_t slot = (uint32_t)(ticket & 0xffffffffu);
    if (ticket == 0 || slot >= self->n_slots || self->recs[slot].req.ticket != ticket)
        return NULL;
    return &self->recs[slot];
}

sched_request *scheduler_get(scheduler_t *self, uint64_t ticket)
{
    record *r = self ? sched_record(self, ticket) : NULL;
    return r ? &r->req : NULL;
}

static int32_t find_slot(const scheduler_t *self, const uint8_t *request_id)
{
    int32_t i = self->buckets[hash_id(request_id) & (self->nbuckets - 1)];
    while (i != NIL && memcmp(self->recs[i].req.request_id, request_id, SCHED_REQUEST_ID_LEN) != 0)
        i = self->recs[i].hnext;
    return i;
}

sched_request *scheduler_find(scheduler_t *self, const uint8_t *request_id)
{
    int32_t i = self && request_id ? find_slot(self, request_id) : NIL;
    return i == NIL ? NULL : &self->recs[i].req;
}

static void unlink_expired(scheduler_t *self, uint32_t slot)
{
    int32_t *link = &self->expired_head;
    while (*link != (int32_t)slot)
        link = &self->recs[*link].enext;
    *link = self->recs[slot].enext;
}

/* Takes a record out of wherever it is (queue, expired list, in flight: its credit goes back),
 * copies it to *out and frees the slot. */
void sched_detach(scheduler_t *self, uint32_t slot, bool served, sched_request *out)
{
    record *r = &self->recs[slot];
    if (r->where == W_HEAP)
        queue_remove_at(&self->queues[r->queue], self->heap_pos[slot], self->heap_pos);
    else if (r->where == W_EXPIRED)
        unlink_expired(self, slot);
    else if (r->where == W_INFLIGHT) {
        registry_credit_return(self->registry, r->req.agent, (size_t)r->mi, served);
        self->inflight--;
    }
    int32_t *link = &self->buckets[hash_id(r->req.request_id) & (self->nbuckets - 1)];
    while (*link != (int32_t)slot)
        link = &self->recs[*link].hnext;
    *link = r->hnext;
    if (out)
        *out = r->req;
    r->req.ticket = 0;
    r->req.payload = NULL;
    r->where = W_FREE;
    r->hnext = self->free_head;
    self->free_head = (int32_t)slot;
}

static int enqueue(scheduler_t *self, uint32_t slot)
{
    record *r = &self->recs[slot];
    queue_entry e = {.deadline_key = r->req.deadline_ms ? r->req.deadline_ms : UINT64_MAX,
                     .seq = r->seq,
                     .slot = slot};
    int rc = queue_push(&self->queues[r->queue], e, self->heap_pos);
    if (rc == 0) {
        r->where = W_HEAP;
        r->req.state = SCHED_QUEUED;
        r->req.agent = AGENT_ID_NONE;
        r->mi = -1;
    }
    return rc;
}

/* ---- the pick --------------------------------------------------------------------------- */

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
static bool pick_for(scheduler_t *self, const record *r, uint64_t now_ms, sched_pick *out)
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

static void place(scheduler_t *self, uint32_t slot, const sched_pick *p, uint64_t now_ms,
                  sched_dispatch *out)
{
    record *r = &self->recs[slot];
    registry_credit_take(self->registry, p->agent, (size_t)p->mi);
    r->where = W_INFLIGHT;
    r->mi = p->mi;
    r->req.state = SCHED_INFLIGHT;
    r->req.agent = p->agent;
    r->req.dispatched_ms = now_ms;
    r->req.attempts++;
    self->inflight++;
    if (r->req.session_id[0])
        session_map_put(self->sessions, r->req.session_id, p->agent, now_ms);
    *out = (sched_dispatch){.ticket = r->req.ticket, .agent = p->agent, .payload = r->req.payload};
}

/* ---- admission -------------------------------------------------------------------------- */

static bool model_declared(const scheduler_t *self, const char *model)
{
    size_t n = registry_count(self->registry);
    for (size_t i = 0; i < n; i++)
        if (registry_model_index(registry_at(self->registry, i), model) >= 0)
            return true;
    return false;
}

int sched_queue_index(const scheduler_t *self, const char *model)
{
    for (uint32_t i = 0; i < self->n_queues; i++)
        if (strcmp(self->queues[i].model, model) == 0)
            return (int)i;
    return -1;
}

static int validate(const scheduler_t *self, const sched_submit *req, uint64_t now_ms)
{
    if (!req->request_id || !req->model || !req->model[0] ||
        strlen(req->model) >= REGISTRY_MODEL_NAME_MAX)
        return EF_EINVAL;
    if (req->session_id && strlen(req->session_id) >= SCHED_SESSION_MAX)
        return EF_EINVAL;
    if (req->deadline_ms != 0 && req->deadline_ms <= now_ms)
        return EF_EDEADLINE;
    if (find_slot(self, req->request_id) != NIL)
        return EF_EDUPLICATE;
    if (!self->params.queue_unknown_models && !model_declared(self, req->model))
        return EF_EUNKNOWNMODEL;
    return 0;
}

static int queue_for(scheduler_t *self, const char *model, uint32_t *queue_out)
{
    int q = sched_queue_index(self, model);
    if (q < 0) {
        if (self->n_queues == self->params.max_models)
            return EF_EBUSY;
        q = (int)self->n_queues++;
        strcpy(self->queues[q].model, model);
    }
    *queue_out = (uint32_t)q;
    return 0;
}

int scheduler_submit(scheduler_t *self, const sched_submit *req, uint64_t now_ms,
                     sched_dispatch *out, uint32_t *retry_after_ms)
{
    if (!self || !req || !out)
        return EF_EINVAL;
    memset(out, 0, sizeof(*out));
    int rc = validate(self, req, now_ms);
    uint32_t q = 0, slot = 0;
    if (rc == 0)
        rc = queue_for(self, req->model, &q);
    bool queue_full = rc == 0 && self->queues[q].len >= self->params.max_queued_per_model;
    if (rc == 0 && !queue_full)
        rc = alloc_record(self, req, q, now_ms, &slot);
    if (queue_full || rc == EF_EBUSY) {
        if (retry_after_ms)
            *retry_after_ms = scheduler_retry_after_ms(self, req->model, now_ms);
        return EF_EBUSY;
    }
    if (rc != 0)
        return rc;
    sched_pick p;
    /* Only an empty queue may be overtaken: anything waiting has an earlier claim. */
    if (self->queues[q].len == 0 && pick_for(self, &self->recs[slot], now_ms, &p)) {
        place(self, slot, &p, now_ms, out);
        return 0;
    }
    if ((rc = enqueue(self, slot)) != 0) {
        sched_detach(self, slot, false, NULL);
        return rc;
    }
    out->ticket = self->recs[slot].req.ticket;
    return 0;
}

/* ---- moves between states --------------------------------------------------------------- */

/* Moves queued requests whose deadline passed from the heads of the queues to the expired list,
 * where scheduler_expire reports them; they are never dispatched. */
static void collect_expired(scheduler_t *self, model_queue *q, uint64_t now_ms)
{
    while (q->len > 0 && queue_top(q)->deadline_key <= now_ms) {
        uint32_t slot = queue_top(q)->slot;
        queue_remove_at(q, 0, self->heap_pos);
        record *r = &self->recs[slot];
        r->where = W_EXPIRED;
        r->enext = self->expired_head;
        self->expired_head = (int32_t)slot;
    }
}

size_t scheduler_dispatch(scheduler_t *self, uint64_t now_ms, sched_dispatch *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t qi = 0; self && qi < self->n_queues && n < cap; qi++) {
        model_queue *q = &self->queues[qi];
        collect_expired(self, q, now_ms);
        while (n < cap && q->len > 0) {
            uint32_t slot = queue_top(q)->slot;
            sched_pick p;
            if (!pick_for(self, &self->recs[slot], now_ms, &p))
                break; /* no credit for this model anywhere: the rest waits too */
            queue_remove_at(q, 0, self->heap_pos);
            place(self, slot, &p, now_ms, &out[n++]);
        }
    }
    return n;
}

size_t scheduler_expire(scheduler_t *self, uint64_t now_ms, sched_request *out, size_t cap)
{
    if (!self)
        return 0;
    for (uint32_t qi = 0; qi < self->n_queues; qi++)
        collect_expired(self, &self->queues[qi], now_ms);
    size_t n = 0;
    while (n < cap && self->expired_head != NIL)
        sched_detach(self, (uint32_t)self->expired_head, false, &out[n++]);
    return n;
}

static bool has_candidate(const scheduler_t *self, const char *model, uint64_t now_ms)
{
    size_t n = registry_count(self->registry);
    for (size_t i = 0; i < n; i++)
        if (sched_candidate_model(self, registry_at(self->registry, i), model, now_ms) >= 0)
            return true;
    return false;
}

size_t scheduler_orphaned(scheduler_t *self, uint64_t now_ms, sched_request *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t qi = 0; self && qi < self->n_queues && n < cap; qi++) {
        model_queue *q = &self->queues[qi];
        if (q->len == 0 || has_candidate(self, q->model, now_ms)) {
            q->orphan_since_ms = 0;
            continue;
        }
        if (q->orphan_since_ms == 0)
            q->orphan_since_ms = now_ms ? now_ms : 1;
        if (now_ms - q->orphan_since_ms < self->params.orphan_grace_ms)
            continue;
        while (n < cap && q->len > 0)
            sched_detach(self, queue_top(q)->slot, false, &out[n++]);
    }
    return n;
}

int scheduler_complete(scheduler_t *self, uint64_t ticket, bool served, sched_request *out)
{
    record *r = self ? sched_record(self, ticket) : NULL;
    if (!r)
        return EF_ENOENT;
    if (r->where != W_INFLIGHT)
        return EF_EINVAL;
    sched_detach(self, (uint32_t)(r - self->recs), served, out);
    return 0;
}

int scheduler_requeue(scheduler_t *self, uint64_t ticket, uint64_t now_ms)
{
    record *r = self ? sched_record(self, ticket) : NULL;
    if (!r)
        return EF_ENOENT;
    if (r->where != W_INFLIGHT)
        return EF_EINVAL;
    registry_credit_return(self->registry, r->req.agent, (size_t)r->mi, false);
    self->inflight--;
    /* The agent just refused or lost it: a session pinned there would pull it straight back. */
    if (session_map_get(self->sessions, r->req.session_id, now_ms) == r->req.agent)
        session_map_forget(self->sessions, r->req.session_id);
    int rc = enqueue(self, (uint32_t)(r - self->recs));
    if (rc != 0) { /* out of memory: leave it in flight where it was, the caller decides */
        registry_credit_take(self->registry, r->req.agent, (size_t)r->mi);
        self->inflight++;
    }
    return rc;
}

int scheduler_cancel(scheduler_t *self, uint64_t ticket, sched_request *out)
{
    record *r = self ? sched_record(self, ticket) : NULL;
    if (!r)
        return EF_ENOENT;
    if (r->where == W_INFLIGHT) {
        if (out)
            *out = r->req;
        return 0;
    }
    sched_detach(self, (uint32_t)(r - self->recs), false, out);
    return 0;
}

size_t scheduler_agent_gone(scheduler_t *self, agent_id_t agent, sched_request *out, size_t cap)
{
    if (!self || agent == AGENT_ID_NONE)
        return 0;
    session_map_forget_agent(self->sessions, agent);
    size_t n = 0;
    for (uint32_t slot = 0; slot < self->n_slots && n < cap; slot++) {
        record *r = &self->recs[slot];
        if (r->where == W_INFLIGHT && r->req.agent == agent)
            sched_detach(self, slot, false, &out[n++]);
    }
    return n;
}

size_t scheduler_flush(scheduler_t *self, sched_request *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t slot = 0; self && slot < self->n_slots && n < cap; slot++)
        if (self->recs[slot].where != W_FREE)
            sched_detach(self, slot, false, &out[n++]);
    return n;
}
