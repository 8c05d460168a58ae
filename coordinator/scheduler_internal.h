/* What scheduler.c shares with scheduler_plan.c: the scheduler's state and the helpers the pick
 * and the estimates both need. Never included outside the scheduler's own files. */
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
    int32_t hnext;  /* request-id hash chain; free list while W_FREE */
    int32_t enext;  /* expired list while W_EXPIRED */
    uint32_t queue; /* index of its model's queue */
    int mi;         /* model index on req.agent while in flight */
    uint64_t seq;   /* admission order: FIFO among equal deadlines */
} record;

typedef struct {
    agent_id_t agent;
    int mi;
    double score;
} sched_pick;

struct scheduler {
    scheduler_params params;
    registry_t *registry; /* borrowed */
    record *recs;         /* n_slots, grows by doubling up to max_requests */
    uint32_t *heap_pos;   /* per slot: position in its queue's heap while W_HEAP */
    uint32_t n_slots;
    int32_t free_head;
    int32_t expired_head;
    int32_t *buckets; /* request-id hash: nbuckets (a power of two) chain heads */
    uint32_t nbuckets;
    model_queue *queues; /* max_models, [0, n_queues) in use; never removed */
    uint32_t n_queues;
    session_map *sessions;
    uint64_t seq;      /* admissions so far */
    uint32_t inflight; /* records W_INFLIGHT */
};

record *sched_record(const scheduler_t *self, uint64_t ticket);
void sched_detach(scheduler_t *self, uint32_t slot, bool served, sched_request *out);
double sched_agent_speed(scheduler_t *self, const registry_agent *a);
/* Model index when a is live, not draining and serves model; else -1. */
int sched_candidate_model(const scheduler_t *self, const registry_agent *a, const char *model,
                          uint64_t now_ms);
int sched_queue_index(const scheduler_t *self, const char *model);

#endif
