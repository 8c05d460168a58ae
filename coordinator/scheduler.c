/* The coordinator's routing logic (see scheduler.h): the request table, admission, the pick, and
 * the moves of a request between queued, in flight and gone. Heaps live in scheduler_queue.c,
 * clients and their turns in scheduler_fair.c, session memory in scheduler_session.c, batch
 * planning, estimates and counts in scheduler_plan.c.
 * Loop thread only. */
#include "scheduler_internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

scheduler_params scheduler_default_params(void)
{
    scheduler_params p = {
        .max_queued_per_model = SCHED_DEFAULT_MAX_QUEUED_PER_MODEL,
        .max_per_client = SCHED_DEFAULT_MAX_PER_CLIENT,
        .max_models = 64,
        .max_requests = 65536,
        .max_sessions = 4096,
        .session_ttl_ms = 600000,
        .default_gen_tps = 10.0,
        .session_overload = 2.0,
        .default_tokens = 256,
        .queue_unknown_models = false,
        .orphan_grace_ms = 30000,
        .hash_key = NULL,
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
    if (!registry || sodium_init() < 0)
        return NULL;
    scheduler_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->params = with_defaults(p);
    if (self->params.hash_key)
        memcpy(self->hash_key, self->params.hash_key, SCHED_HASH_KEY_LEN);
    else
        randombytes_buf(self->hash_key, SCHED_HASH_KEY_LEN);
    self->params.hash_key = NULL; /* copied: the caller's buffer need not outlive us */
    self->registry = registry;
    self->free_head = NIL;
    self->expired_head = NIL;
    self->inflight_head = NIL;
    self->nbuckets = 64;
    while (self->nbuckets < self->params.max_requests && self->nbuckets < (1u << 20))
        self->nbuckets *= 2;
    self->buckets = malloc(self->nbuckets * sizeof(*self->buckets));
    self->queues = calloc(self->params.max_models, sizeof(*self->queues));
    self->sessions =
        session_map_new(self->params.max_sessions, self->params.session_ttl_ms, self->hash_key);
    if (!self->buckets || !self->queues || !self->sessions || fair_init(self) != 0) {
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
        edf_free(&self->queues[i].by_deadline);
    free(self->queues);
    free(self->buckets);
    free(self->recs);
    free(self->heap_pos);
    free(self->flow_pos);
    fair_free(self);
    session_map_destroy(&self->sessions);
    sodium_memzero(self->hash_key, sizeof(self->hash_key));
    free(self);
    *self_p = NULL;
}

/* ---- request table: slots, tickets, request-id hash ------------------------------------- */

/* The request id's bucket. The id is client-chosen, so the hash is keyed: nobody can aim ids at
 * one chain and make every lookup walk all of them. */
static int32_t *id_bucket(const scheduler_t *self, const uint8_t *id)
{
    return &self->buckets[sched_hash(self->hash_key, id, SCHED_REQUEST_ID_LEN) &
                          (self->nbuckets - 1)];
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
    pos = realloc(self->flow_pos, (size_t)n * sizeof(*pos));
    if (!pos)
        return EF_ENOMEM;
    self->flow_pos = pos;
    for (uint32_t i = n; i-- > self->n_slots;) {
        memset(&recs[i], 0, sizeof(recs[i]));
        recs[i].where = W_FREE;
        recs[i].hnext = self->free_head;
        self->free_head = (int32_t)i;
    }
    self->n_slots = n;
    return 0;
}

/* Takes a free slot and fills it from the submission; the record is hashed and counted for its
 * client but in no queue. */
static int alloc_record(scheduler_t *self, const sched_submit *req, uint32_t queue, uint64_t now_ms,
                        uint32_t *slot_out)
{
    int rc;
    if (self->free_head == NIL && (rc = grow_table(self)) != 0)
        return rc;
    uint32_t tokens = req->max_tokens ? req->max_tokens : self->params.default_tokens;
    int32_t client = NIL;
    if ((rc = fair_client_hold(self, req->client ? req->client : "", tokens, &client)) != 0)
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
    strcpy(r->req.client, self->clients[client].name);
    r->req.deadline_ms = req->deadline_ms;
    r->req.max_tokens = req->max_tokens;
    r->req.seed = req->seed;
    r->req.submitted_ms = now_ms;
    r->req.state = SCHED_QUEUED;
    r->req.payload = req->payload;
    r->queue = queue;
    r->client = client;
    r->flow = NIL;
    r->tokens = tokens;
    r->seq = self->seq;
    r->mi = -1;
    r->where = W_DETACHED;
    int32_t *bucket = id_bucket(self, r->req.request_id);
    r->hnext = *bucket;
    *bucket = (int32_t)slot;
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
    int32_t i = *id_bucket(self, request_id);
    while (i != NIL && memcmp(self->recs[i].req.request_id, request_id, SCHED_REQUEST_ID_LEN) != 0)
        i = self->recs[i].hnext;
    return i;
}

sched_request *scheduler_find(scheduler_t *self, const uint8_t *request_id)
{
    int32_t i = self && request_id ? find_slot(self, request_id) : NIL;
    return i == NIL ? NULL : &self->recs[i].req;
}

/* The expired and in-flight lists are doubly linked through lprev/lnext, so a record leaves
 * either in O(1) (a cancel of an expired record, a completion). */
static void list_push(scheduler_t *self, int32_t *head, uint32_t slot)
{
    record *r = &self->recs[slot];
    r->lprev = NIL;
    r->lnext = *head;
    if (*head != NIL)
        self->recs[*head].lprev = (int32_t)slot;
    *head = (int32_t)slot;
}

static void list_unlink(scheduler_t *self, int32_t *head, uint32_t slot)
{
    record *r = &self->recs[slot];
    if (r->lprev != NIL)
        self->recs[r->lprev].lnext = r->lnext;
    else
        *head = r->lnext;
    if (r->lnext != NIL)
        self->recs[r->lnext].lprev = r->lprev;
}

/* Takes a record out of wherever it is (queue, expired list, in flight: its credit goes back),
 * copies it to *out and frees the slot. */
void sched_detach(scheduler_t *self, uint32_t slot, bool served, sched_request *out)
{
    record *r = &self->recs[slot];
    if (r->where == W_HEAP)
        fair_dequeue(self, slot, false);
    else if (r->where == W_EXPIRED)
        list_unlink(self, &self->expired_head, slot);
    else if (r->where == W_INFLIGHT) {
        registry_credit_return(self->registry, r->req.agent, (size_t)r->mi, served);
        list_unlink(self, &self->inflight_head, slot);
        self->inflight--;
    }
    int32_t *link = id_bucket(self, r->req.request_id);
    while (*link != (int32_t)slot)
        link = &self->recs[*link].hnext;
    *link = r->hnext;
    fair_client_release(self, r->client, r->tokens);
    if (out)
        *out = r->req;
    r->req.ticket = 0;
    r->req.payload = NULL;
    r->where = W_FREE;
    r->hnext = self->free_head;
    self->free_head = (int32_t)slot;
}

/* front: a requeue, whose client gets the next turn if it had nothing else waiting. */
static int enqueue(scheduler_t *self, uint32_t slot, bool front)
{
    record *r = &self->recs[slot];
    int rc = fair_enqueue(self, slot, front);
    if (rc == 0) {
        r->where = W_HEAP;
        r->req.state = SCHED_QUEUED;
        r->req.agent = AGENT_ID_NONE;
        r->mi = -1;
    }
    return rc;
}

/* ---- placing a request on its agent ---------------------------------------------------- */

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
    list_push(self, &self->inflight_head, slot);
    self->inflight++;
    if (r->req.session_id[0])
        session_map_put(self->sessions, r->req.session_id, p->agent, now_ms);
    *out = (sched_dispatch){.ticket = r->req.ticket, .agent = p->agent, .payload = r->req.payload};
}

/* ---- admission -------------------------------------------------------------------------- */

static bool model_declared(const scheduler_t *self, const char *model)
{
    return registry_model_declared(self->registry, model);
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
    if (req->client && strlen(req->client) >= SCHED_CLIENT_MAX)
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
        self->queues[q].turn = NIL;
    }
    *queue_out = (uint32_t)q;
    return 0;
}

/* Takes a slot for req in the order the limits are checked: the client's cap (its own doing, so
 * reported first), the number of model queues, the model's queue bound, the request table. On
 * EF_EBUSY *busy says which, and how full it is. */
static int admit(scheduler_t *self, const sched_submit *req, uint64_t now_ms, uint32_t *slot_out,
                 sched_busy *busy)
{
    uint32_t cap = self->params.max_per_client;
    int32_t c = fair_client_find(self, req->client ? req->client : "");
    uint32_t held = c == NIL ? 0 : self->clients[c].count;
    if (cap != 0 && held >= cap) {
        *busy = (sched_busy){.reason = SCHED_BUSY_CLIENT, .count = held, .limit = cap};
        return EF_EBUSY;
    }
    uint32_t q = 0;
    if (queue_for(self, req->model, &q) != 0) {
        *busy = (sched_busy){
            .reason = SCHED_BUSY_MODELS, .count = self->n_queues, .limit = self->params.max_models};
        return EF_EBUSY;
    }
    uint32_t queued = self->queues[q].by_deadline.len;
    if (queued >= self->params.max_queued_per_model) {
        *busy = (sched_busy){.reason = SCHED_BUSY_QUEUE,
                             .count = queued,
                             .limit = self->params.max_queued_per_model};
        return EF_EBUSY;
    }
    int rc = alloc_record(self, req, q, now_ms, slot_out);
    if (rc == EF_EBUSY)
        *busy = (sched_busy){
            .reason = SCHED_BUSY_TABLE, .count = self->n_slots, .limit = self->params.max_requests};
    return rc;
}

int scheduler_submit(scheduler_t *self, const sched_submit *req, uint64_t now_ms,
                     sched_dispatch *out, uint32_t *retry_after_ms)
{
    sched_busy busy = {.reason = SCHED_BUSY_NONE};
    if (req && req->busy)
        *req->busy = busy;
    if (!self || !req || !out)
        return EF_EINVAL;
    memset(out, 0, sizeof(*out));
    uint32_t slot = 0;
    int rc = validate(self, req, now_ms);
    if (rc == 0)
        rc = admit(self, req, now_ms, &slot, &busy);
    if (req->busy)
        *req->busy = busy;
    if (rc == EF_EBUSY && retry_after_ms) {
        int32_t c = fair_client_find(self, req->client ? req->client : "");
        *retry_after_ms =
            busy.reason == SCHED_BUSY_CLIENT
                ? sched_retry_for_tokens(self, req->model, (double)self->clients[c].tokens, now_ms)
                : scheduler_retry_after_ms(self, req->model, now_ms);
    }
    if (rc != 0)
        return rc;
    record *r = &self->recs[slot];
    sched_pick p;
    /* Only an empty queue may be overtaken: anything waiting has an earlier claim or turn. */
    if (self->queues[r->queue].by_deadline.len == 0 && sched_pick_for(self, r, now_ms, &p)) {
        place(self, slot, &p, now_ms, out);
        return 0;
    }
    if ((rc = enqueue(self, slot, false)) != 0) {
        sched_detach(self, slot, false, NULL);
        return rc;
    }
    out->ticket = r->req.ticket;
    return 0;
}

/* ---- moves between states --------------------------------------------------------------- */

/* Moves queued requests whose deadline passed from the heads of the queues to the expired list,
 * where scheduler_expire reports them; they are never dispatched. */
static void collect_expired(scheduler_t *self, model_queue *q, uint64_t now_ms)
{
    while (q->by_deadline.len > 0 && edf_top(&q->by_deadline)->deadline_key <= now_ms) {
        uint32_t slot = edf_top(&q->by_deadline)->slot;
        fair_dequeue(self, slot, false);
        self->recs[slot].where = W_EXPIRED;
        list_push(self, &self->expired_head, slot);
    }
}

size_t scheduler_dispatch(scheduler_t *self, uint64_t now_ms, sched_dispatch *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t qi = 0; self && qi < self->n_queues && n < cap; qi++) {
        model_queue *q = &self->queues[qi];
        collect_expired(self, q, now_ms);
        while (n < cap && q->by_deadline.len > 0) {
            uint32_t slot = fair_next(self, q); /* the first request of the client whose turn */
            sched_pick p;
            if (!sched_pick_for(self, &self->recs[slot], now_ms, &p))
                break; /* no credit for this model anywhere: the rest waits too */
            fair_dequeue(self, slot, true);
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
    registry_model_iter it;
    registry_model_iter_begin(self->registry, model, &it);
    for (const registry_agent *a; (a = registry_model_iter_next(&it, NULL)) != NULL;)
        if (sched_candidate_model(self, a, model, now_ms) >= 0)
            return true;
    return false;
}

size_t scheduler_orphaned(scheduler_t *self, uint64_t now_ms, sched_request *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t qi = 0; self && qi < self->n_queues && n < cap; qi++) {
        model_queue *q = &self->queues[qi];
        if (q->by_deadline.len == 0 || has_candidate(self, q->model, now_ms)) {
            q->orphan_since_ms = 0;
            continue;
        }
        if (q->orphan_since_ms == 0)
            q->orphan_since_ms = now_ms ? now_ms : 1;
        if (now_ms - q->orphan_since_ms < self->params.orphan_grace_ms)
            continue;
        while (n < cap && q->by_deadline.len > 0)
            sched_detach(self, edf_top(&q->by_deadline)->slot, false, &out[n++]);
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
    uint32_t slot = (uint32_t)(r - self->recs);
    agent_id_t agent = r->req.agent;
    int mi = r->mi;
    /* Its claim stands: its (deadline, admission) order puts it before everything its client
     * sent later, and a client with nothing else waiting gets the next turn. */
    int rc = enqueue(self, slot, true);
    if (rc != 0) /* out of memory: it stays in flight where it was, the caller decides */
        return rc;
    registry_credit_return(self->registry, agent, (size_t)mi, false);
    list_unlink(self, &self->inflight_head, slot);
    self->inflight--;
    /* The agent just refused or lost it: a session pinned there would pull it straight back. */
    if (session_map_get(self->sessions, r->req.session_id, now_ms) == agent)
        session_map_forget(self->sessions, r->req.session_id);
    return 0;
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
    /* The in-flight list, not the whole table: at most the fleet's slots, whatever is queued. */
    for (int32_t slot = self->inflight_head; slot != NIL && n < cap;) {
        int32_t next = self->recs[slot].lnext;
        if (self->recs[slot].req.agent == agent)
            sched_detach(self, (uint32_t)slot, false, &out[n++]);
        slot = next;
    }
    return n;
}

void scheduler_set_queue_unknown_models(scheduler_t *self, bool queue)
{
    if (self)
        self->params.queue_unknown_models = queue;
}

size_t scheduler_inflight_on(const scheduler_t *self, agent_id_t agent, uint64_t *tickets,
                             size_t cap)
{
    size_t n = 0;
    for (int32_t slot = self ? self->inflight_head : NIL; slot != NIL && n < cap;
         slot = self->recs[slot].lnext)
        if (self->recs[slot].req.agent == agent)
            tickets[n++] = self->recs[slot].req.ticket;
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
