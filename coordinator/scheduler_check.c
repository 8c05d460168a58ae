/* The scheduler's self-check (scheduler_check in scheduler.h): recounts, brute force, every
 * figure the scheduler keeps incrementally and walks every link, so tests can assert the books
 * after any sequence of moves. O(everything); tests and debugging only. Loop thread only. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t *client_count, *queue_len, *flow_len;
    uint64_t *client_tokens, *queue_tokens;
    uint32_t inflight, expired;
} recount;

static bool heap_ok(const edf_heap *h, const uint32_t *pos_of)
{
    for (uint32_t i = 0; i < h->len; i++) {
        if (pos_of[h->heap[i].slot] != i)
            return false;
        if (i == 0)
            continue;
        const queue_entry *e = &h->heap[i], *p = &h->heap[(i - 1) / 2];
        if (p->deadline_key > e->deadline_key ||
            (p->deadline_key == e->deadline_key && p->seq > e->seq))
            return false;
    }
    return true;
}

/* One pass over the records: everything they say the counters must be. */
static bool count_records(const scheduler_t *self, recount *rc)
{
    for (uint32_t slot = 0; slot < self->n_slots; slot++) {
        const record *r = &self->recs[slot];
        if ((r->where == W_FREE) != (r->req.ticket == 0))
            return false;
        if (r->where == W_FREE)
            continue;
        if (r->client < 0 || (uint32_t)r->client >= self->clients_cap ||
            strcmp(self->clients[r->client].name, r->req.client) != 0 || r->queue >= self->n_queues)
            return false;
        int32_t i =
            self->buckets[sched_hash(self->hash_key, r->req.request_id, SCHED_REQUEST_ID_LEN) &
                          (self->nbuckets - 1)];
        while (i != NIL && i != (int32_t)slot)
            i = self->recs[i].hnext;
        if (i == NIL)
            return false; /* not reachable through its request-id bucket */
        rc->client_count[r->client]++;
        rc->client_tokens[r->client] += r->tokens;
        if (r->where == W_HEAP) {
            if (r->flow < 0 || (uint32_t)r->flow >= self->flows_cap ||
                self->flows[r->flow].queue != r->queue || self->flows[r->flow].client != r->client)
                return false;
            rc->queue_len[r->queue]++;
            rc->queue_tokens[r->queue] += r->tokens;
            rc->flow_len[r->flow]++;
        }
        rc->inflight += r->where == W_INFLIGHT;
        rc->expired += r->where == W_EXPIRED;
    }
    return rc->inflight == self->inflight;
}

static bool list_ok(const scheduler_t *self, int32_t head, record_where where, uint32_t want)
{
    uint32_t n = 0;
    for (int32_t i = head, prev = NIL; i != NIL; prev = i, i = self->recs[i].lnext, n++)
        if (n > self->n_slots || self->recs[i].where != where || self->recs[i].lprev != prev)
            return false;
    return n == want;
}

/* Each queue: its deadline heap, and a ring of flows holding exactly its queued requests. */
static bool queues_ok(const scheduler_t *self, const recount *rc, uint32_t *flows_seen)
{
    for (uint32_t qi = 0; qi < self->n_queues; qi++) {
        const model_queue *q = &self->queues[qi];
        if (q->by_deadline.len != rc->queue_len[qi] || q->queued_tokens != rc->queue_tokens[qi] ||
            !heap_ok(&q->by_deadline, self->heap_pos) ||
            (q->turn == NIL) != (q->by_deadline.len == 0))
            return false;
        uint32_t in_ring = 0, steps = 0;
        for (int32_t f = q->turn; f != NIL; steps++) {
            const sched_flow *fl = &self->flows[f];
            if (steps > self->flows_cap || fl->queue != qi || fl->heap.len == 0 ||
                fl->heap.len != rc->flow_len[f] || self->flows[fl->next].prev != f ||
                !heap_ok(&fl->heap, self->flow_pos))
                return false;
            in_ring += fl->heap.len;
            (*flows_seen)++;
            f = fl->next == q->turn ? NIL : fl->next;
        }
        if (in_ring != q->by_deadline.len)
            return false;
    }
    return true;
}

static bool clients_ok(const scheduler_t *self, const recount *rc, uint32_t flows_seen)
{
    uint32_t used = 0, flows = 0;
    for (uint32_t c = 0; c < self->clients_cap; c++) {
        const sched_client *cl = &self->clients[c];
        if (cl->count != rc->client_count[c] || cl->tokens != rc->client_tokens[c])
            return false;
        if (cl->count == 0)
            continue;
        used++;
        if (fair_client_find(self, cl->name) != (int32_t)c)
            return false;
        for (int32_t f = cl->flows; f != NIL; f = self->flows[f].client_next, flows++)
            if (flows > self->flows_cap || self->flows[f].client != (int32_t)c ||
                self->flows[f].heap.len == 0)
                return false;
    }
    return used == self->n_clients && flows == flows_seen;
}

int scheduler_check(const scheduler_t *self)
{
    if (!self)
        return EF_EINVAL;
    recount rc = {
        .client_count = calloc(self->clients_cap + 1, sizeof(uint32_t)),
        .client_tokens = calloc(self->clients_cap + 1, sizeof(uint64_t)),
        .queue_len = calloc(self->params.max_models, sizeof(uint32_t)),
        .queue_tokens = calloc(self->params.max_models, sizeof(uint64_t)),
        .flow_len = calloc(self->flows_cap + 1, sizeof(uint32_t)),
    };
    uint32_t flows_seen = 0;
    bool ok = rc.client_count && rc.client_tokens && rc.queue_len && rc.queue_tokens &&
              rc.flow_len && count_records(self, &rc) &&
              list_ok(self, self->inflight_head, W_INFLIGHT, rc.inflight) &&
              list_ok(self, self->expired_head, W_EXPIRED, rc.expired) &&
              queues_ok(self, &rc, &flows_seen) && clients_ok(self, &rc, flows_seen);
    free(rc.client_count);
    free(rc.client_tokens);
    free(rc.queue_len);
    free(rc.queue_tokens);
    free(rc.flow_len);
    return ok ? 0 : EF_EINTERNAL;
}
