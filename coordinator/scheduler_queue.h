/* The scheduler's wait queues. edf_heap: a binary min-heap ordered earliest deadline first, no
 * deadline after every deadline, admission order among equals; entries name a request slot and
 * the heap keeps pos_of[slot] current so any entry can be removed in O(log n). A model_queue
 * holds one edf_heap over all its queued requests (the deadline index: expiry, next deadline)
 * and the ring of its clients' flows that take turns (scheduler_fair.c). Loop thread only. */
#ifndef EF_COORD_SCHEDULER_QUEUE_H
#define EF_COORD_SCHEDULER_QUEUE_H

#include "registry.h"

#include <stdint.h>

typedef struct {
    uint64_t deadline_key; /* deadline, or UINT64_MAX for none: after all deadlines */
    uint64_t seq;          /* admission order: FIFO among equal deadlines */
    uint32_t slot;         /* the scheduler's request slot */
} queue_entry;

typedef struct {
    queue_entry *heap; /* grows on demand; the bound is the scheduler's to enforce */
    uint32_t len;
    uint32_t cap;
} edf_heap;

typedef struct {
    char model[REGISTRY_MODEL_NAME_MAX];
    edf_heap by_deadline;     /* every queued request of the model; pos_of = heap_pos */
    int32_t turn;             /* the flow whose turn is next in the ring; -1 = none queued */
    uint64_t queued_tokens;   /* token estimates of the queued requests: the retry hint */
    uint64_t orphan_since_ms; /* scheduler's: when it first saw no candidate agent; 0 = has one */
} model_queue;

/* Adds e; pos_of[e.slot] is set. Returns 0 or EF_ENOMEM (heap unchanged). */
int edf_push(edf_heap *h, queue_entry e, uint32_t *pos_of);

/* The entry that goes first; h must not be empty. */
const queue_entry *edf_top(const edf_heap *h);

/* Removes the entry at heap position pos (pos_of[slot] of its slot); pos < h->len. */
void edf_remove_at(edf_heap *h, uint32_t pos, uint32_t *pos_of);

/* Frees the heap memory; the heap is then empty. */
void edf_free(edf_heap *h);

#endif
