/* What the scheduler's files (scheduler.c, scheduler_fair.c, scheduler_pick.c,
 * scheduler_plan.c, scheduler_session.c) share: the scheduler's state, the keyed hash and the
 * helpers the pick and the estimates both need. Never included outside the scheduler's own files.
 */
#ifndef EF_COORD_SCHEDULER_INTERNAL_H
#define EF_COORD_SCHEDULER_INTERNAL_H

#include "scheduler.h"
#include "scheduler_queue.h"
#include "scheduler_session.h"

#define NIL (-1)

/* Where a request slot's record is. W_DETACHED: admitted but in no structure yet (inside
 * scheduler_submit / requeue only). */
typedef enum { W_FREE, W_DETACHED, W_HEAP, W_EXPIRED, W_INFLIGHT } record_where;

typedef struct {
    sched_request req; /* the public view; req.ticket == 0 for a free slot */
    record_where where;
    int32_t hnext;        /* request-id hash chain; free list while W_FREE */
    int32_t lprev, lnext; /* expired list while W_EXPIRED, in-flight list while W_INFLIGHT */
    uint32_t queue;       /* index of its model's queue */
    int32_t client;       /* index in the client table, for the record's whole life */
    int32_t flow;         /* its client's flow in its queue while W_HEAP */
    uint32_t tokens;      /* token estimate (max_tokens or default_tokens), fixed at admission */
    int mi;               /* model index on req.agent while in flight */
    uint64_t seq;         /* admission order: FIFO among equal deadlines, kept by requeue */
} record;

/* One client (see scheduler_fair.c): what the per-client cap counts. */
typedef struct {
    char name[SCHED_CLIENT_MAX]; /* "" = the anonymous client; free entry when count == 0 */
    uint32_t count;              /* its records in the scheduler: queued, expired, in flight */
    uint64_t tokens;             /* their token estimates: the retry hint at the cap */
    int32_t flows;               /* its flows (one per model with queued requests); NIL = none */
    int32_t hnext;               /* hash chain; free list while unused */
} sched_client;

/* One client's queued requests of one model; the model's flows take turns in a ring. */
typedef struct {
    edf_heap heap;       /* EDF, then admission order; pos_of = flow_pos */
    uint32_t queue;      /* the model queue whose ring it is in */
    int32_t client;      /* the client table index */
    int32_t prev, next;  /* the ring (circular); next = free list while unused */
    int32_t client_next; /* the client's other flows */
} sched_flow;

typedef struct {
    agent_id_t agent;
    int mi;
    double score;
} sched_pick;

struct scheduler {
    scheduler_params params;
    uint8_t hash_key[SCHED_HASH_KEY_LEN]; /* keys every hash of peer-chosen bytes */
    registry_t *registry;                 /* borrowed */
    record *recs;                         /* n_slots, grows by doubling up to max_requests */
    uint32_t *heap_pos; /* per slot: position in its queue's by_deadline heap while W_HEAP */
    uint32_t *flow_pos; /* per slot: position in its flow's heap while W_HEAP */
    uint32_t n_slots;
    int32_t free_head;
    int32_t expired_head;
    int32_t inflight_head;
    int32_t *buckets; /* request-id hash: nbuckets (a power of two) chain heads */
    uint32_t nbuckets;
    model_queue *queues; /* max_models, [0, n_queues) in use; never removed */
    uint32_t n_queues;
    session_map *sessions;
    sched_client *clients; /* clients_cap entries, grows by doubling; [n] in use */
    uint32_t clients_cap;
    uint32_t n_clients;
    int32_t client_free;
    int32_t *client_buckets; /* client-name hash: nbuckets chain heads */
    sched_flow *flows;       /* flows_cap entries, grows by doubling */
    uint32_t flows_cap;
    int32_t flow_free;
    uint64_t seq;      /* admissions so far */
    uint32_t inflight; /* records W_INFLIGHT */
};

/* SipHash-2-4 (libsodium crypto_shorthash) of bytes under key, so peers that choose the bytes
 * (request ids, session ids) cannot aim many at one hash bucket. */
uint32_t sched_hash(const uint8_t key[SCHED_HASH_KEY_LEN], const void *bytes, size_t len);

record *sched_record(const scheduler_t *self, uint64_t ticket);
void sched_detach(scheduler_t *self, uint32_t slot, bool served, sched_request *out);
double sched_agent_speed(scheduler_t *self, const registry_agent *a, uint64_t now_ms);
/* scheduler_pick.c: the best agent for r now (false: no credit for its model anywhere). */
bool sched_pick_for(scheduler_t *self, const record *r, uint64_t now_ms, sched_pick *out);
/* Model index when a is live, not draining and serves model; else -1. */
int sched_candidate_model(const scheduler_t *self, const registry_agent *a, const char *model,
                          uint64_t now_ms);
int sched_queue_index(const scheduler_t *self, const char *model);
/* The retry hint for `tokens` of work on model's candidates, in [100, 600000] ms. */
uint32_t sched_retry_for_tokens(scheduler_t *self, const char *model, double tokens,
                                uint64_t now_ms);

/* ---- scheduler_fair.c: clients and their flows ---- */

/* Tables sized for max_requests; 0 or EF_ENOMEM. fair_free frees them (and every flow heap). */
int fair_init(scheduler_t *self);
void fair_free(scheduler_t *self);
/* The client table index of name ("" = anonymous), NIL when it has nothing in the scheduler. */
int32_t fair_client_find(const scheduler_t *self, const char *name);
/* Counts one more record of name with `tokens` (adding the client if new); writes its index.
 * 0 or EF_ENOMEM. fair_client_release undoes one hold and forgets the client at count 0. */
int fair_client_hold(scheduler_t *self, const char *name, uint32_t tokens, int32_t *client_out);
void fair_client_release(scheduler_t *self, int32_t client, uint32_t tokens);
/* Queues the detached record at slot: the deadline index and its client's flow, keeping its
 * (deadline, seq) claim. A client without queued requests of the model joins the ring at the
 * back (its turn comes after every client waiting now), or at the front when front is true (a
 * requeue: its turn was spent on a dispatch that failed). 0 or EF_ENOMEM (nothing changed). */
int fair_enqueue(scheduler_t *self, uint32_t slot, bool front);
/* The slot whose turn it is in q (q has queued requests): the first of the turn's flow. */
uint32_t fair_next(const scheduler_t *self, const model_queue *q);
/* Takes a queued record out of its queue and flow. picked: it was fair_next's and is being
 * dispatched, so the turn passes to the next client; otherwise the turn stays where it is. */
void fair_dequeue(scheduler_t *self, uint32_t slot, bool picked);

#endif
