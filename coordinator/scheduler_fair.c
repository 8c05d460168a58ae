/* Fair share between clients (see scheduler.h): the client table, keyed by the client's identity
 * (who holds how many requests, for the per-client cap), and the flows, one per (model, client)
 * with queued requests, which take turns in a ring per model so a flood from one client cannot
 * starve another. All by index, no per-request allocation. Loop thread only. */
#include "scheduler_internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define FAIR_FIRST_CAP 16 /* clients and flows: most fleets serve a handful of keys */
#define FAIR_KEEP_HEAP 64 /* entries a released flow's heap may keep for reuse */

_Static_assert(SCHED_HASH_KEY_LEN == crypto_shorthash_KEYBYTES, "SipHash key length");

uint32_t sched_hash(const uint8_t key[SCHED_HASH_KEY_LEN], const void *bytes, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, bytes, len, key);
    uint32_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

int fair_init(scheduler_t *self)
{
    self->client_free = NIL;
    self->flow_free = NIL;
    self->client_buckets = malloc(self->nbuckets * sizeof(*self->client_buckets));
    if (!self->client_buckets)
        return EF_ENOMEM;
    for (uint32_t i = 0; i < self->nbuckets; i++)
        self->client_buckets[i] = NIL;
    return 0;
}

void fair_free(scheduler_t *self)
{
    for (uint32_t i = 0; self->flows && i < self->flows_cap; i++)
        edf_free(&self->flows[i].heap);
    free(self->flows);
    free(self->clients);
    free(self->client_buckets);
}

/* ---- clients ------------------------------------------------------------------------------ */

static int32_t *client_bucket(const scheduler_t *self, const char *name)
{
    return &self->client_buckets[sched_hash(self->hash_key, name, strlen(name)) &
                                 (self->nbuckets - 1)];
}

int32_t fair_client_find(const scheduler_t *self, const char *name)
{
    int32_t i = *client_bucket(self, name);
    while (i != NIL && strcmp(self->clients[i].name, name) != 0)
        i = self->clients[i].hnext;
    return i;
}

static int grow_clients(scheduler_t *self)
{
    uint32_t n = self->clients_cap ? self->clients_cap * 2 : FAIR_FIRST_CAP;
    sched_client *grown = realloc(self->clients, (size_t)n * sizeof(*grown));
    if (!grown)
        return EF_ENOMEM;
    self->clients = grown;
    for (uint32_t i = n; i-- > self->clients_cap;) {
        memset(&grown[i], 0, sizeof(grown[i]));
        grown[i].hnext = self->client_free;
        self->client_free = (int32_t)i;
    }
    self->clients_cap = n;
    return 0;
}

int fair_client_hold(scheduler_t *self, const char *name, uint32_t tokens, int32_t *client_out)
{
    int32_t i = fair_client_find(self, name);
    if (i == NIL) {
        /* A client holds at least one record, so there are never more than max_requests. */
        if (self->client_free == NIL && grow_clients(self) != 0)
            return EF_ENOMEM;
        i = self->client_free;
        sched_client *c = &self->clients[i];
        self->client_free = c->hnext;
        strcpy(c->name, name);
        c->count = 0;
        c->tokens = 0;
        c->flows = NIL;
        int32_t *bucket = client_bucket(self, name);
        c->hnext = *bucket;
        *bucket = i;
        self->n_clients++;
    }
    self->clients[i].count++;
    self->clients[i].tokens += tokens;
    *client_out = i;
    return 0;
}

void fair_client_release(scheduler_t *self, int32_t client, uint32_t tokens)
{
    sched_client *c = &self->clients[client];
    c->count--;
    c->tokens -= tokens;
    if (c->count > 0)
        return;
    int32_t *link = client_bucket(self, c->name);
    while (*link != client)
        link = &self->clients[*link].hnext;
    *link = c->hnext;
    c->name[0] = '\0';
    c->hnext = self->client_free;
    self->client_free = client;
    self->n_clients--;
}

/* ---- flows and the ring of turns ---------------------------------------------------------- */

static int32_t flow_find(const scheduler_t *self, int32_t client, uint32_t queue)
{
    int32_t f = self->clients[client].flows; /* at most one per model: O(models) */
    while (f != NIL && self->flows[f].queue != queue)
        f = self->flows[f].client_next;
    return f;
}

static int32_t flow_alloc(scheduler_t *self, int32_t client, uint32_t queue)
{
    if (self->flow_free == NIL) {
        uint32_t n = self->flows_cap ? self->flows_cap * 2 : FAIR_FIRST_CAP;
        sched_flow *grown = realloc(self->flows, (size_t)n * sizeof(*grown));
        if (!grown)
            return NIL;
        self->flows = grown;
        for (uint32_t i = n; i-- > self->flows_cap;) {
            memset(&grown[i], 0, sizeof(grown[i]));
            grown[i].next = self->flow_free;
            self->flow_free = (int32_t)i;
        }
        self->flows_cap = n;
    }
    int32_t f = self->flow_free;
    sched_flow *fl = &self->flows[f];
    self->flow_free = fl->next;
    fl->queue = queue;
    fl->client = client;
    fl->prev = fl->next = f;
    fl->client_next = self->clients[client].flows;
    self->clients[client].flows = f;
    return f;
}

/* Puts an emptied flow back on the free list. A small heap stays for the next user; a big one
 * (a flood's) is freed, so what free flows hold stays bounded by their number. */
static void flow_release(scheduler_t *self, int32_t f)
{
    sched_flow *fl = &self->flows[f];
    if (fl->heap.cap > FAIR_KEEP_HEAP)
        edf_free(&fl->heap);
    int32_t *link = &self->clients[fl->client].flows;
    while (*link != f)
        link = &self->flows[*link].client_next;
    *link = fl->client_next;
    fl->client = NIL;
    fl->next = self->flow_free;
    self->flow_free = f;
}

/* Links f into q's ring just before the flow whose turn is next: the back of the round. front
 * makes it the next turn instead. */
static void ring_insert(scheduler_t *self, model_queue *q, int32_t f, bool front)
{
    sched_flow *fl = &self->flows[f];
    if (q->turn == NIL) {
        fl->prev = fl->next = f;
        q->turn = f;
        return;
    }
    sched_flow *head = &self->flows[q->turn];
    fl->next = q->turn;
    fl->prev = head->prev;
    self->flows[head->prev].next = f;
    head->prev = f;
    if (front)
        q->turn = f;
}

static void ring_remove(scheduler_t *self, model_queue *q, int32_t f)
{
    sched_flow *fl = &self->flows[f];
    if (fl->next == f) {
        q->turn = NIL;
        return;
    }
    self->flows[fl->prev].next = fl->next;
    self->flows[fl->next].prev = fl->prev;
    if (q->turn == f)
        q->turn = fl->next;
}

int fair_enqueue(scheduler_t *self, uint32_t slot, bool front)
{
    record *r = &self->recs[slot];
    model_queue *q = &self->queues[r->queue];
    int32_t f = flow_find(self, r->client, r->queue);
    bool joined = f == NIL;
    if (joined && (f = flow_alloc(self, r->client, r->queue)) == NIL)
        return EF_ENOMEM;
    queue_entry e = {.deadline_key = r->req.deadline_ms ? r->req.deadline_ms : UINT64_MAX,
                     .seq = r->seq,
                     .slot = slot};
    if (edf_push(&q->by_deadline, e, self->heap_pos) != 0)
        goto fail;
    if (edf_push(&self->flows[f].heap, e, self->flow_pos) != 0) {
        edf_remove_at(&q->by_deadline, self->heap_pos[slot], self->heap_pos);
        goto fail;
    }
    if (joined)
        ring_insert(self, q, f, front);
    r->flow = f;
    q->queued_tokens += r->tokens;
    return 0;
fail:
    if (joined)
        flow_release(self, f);
    return EF_ENOMEM;
}

uint32_t fair_next(const scheduler_t *self, const model_queue *q)
{
    return edf_top(&self->flows[q->turn].heap)->slot;
}

void fair_dequeue(scheduler_t *self, uint32_t slot, bool picked)
{
    record *r = &self->recs[slot];
    model_queue *q = &self->queues[r->queue];
    int32_t f = r->flow;
    sched_flow *fl = &self->flows[f];
    edf_remove_at(&q->by_deadline, self->heap_pos[slot], self->heap_pos);
    edf_remove_at(&fl->heap, self->flow_pos[slot], self->flow_pos);
    q->queued_tokens -= r->tokens;
    r->flow = NIL;
    if (picked && q->turn == f)
        q->turn = fl->next; /* its turn is used: the next client's comes */
    if (fl->heap.len == 0) {
        ring_remove(self, q, f);
        flow_release(self, f);
    }
}
