/* The scheduler's per-model wait queue: a binary min-heap ordered earliest deadline first, no
 * deadline after every deadline, admission order among equals. Entries name a request slot of
 * the scheduler; the heap keeps pos_of[slot] current so any entry can be removed in O(log n).
 * Private to scheduler.c; loop thread only. */
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
    char model[REGISTRY_MODEL_NAME_MAX];
    queue_entry *heap; /* grows on demand; the bound is the scheduler's to enforce */
    uint32_t len;
    uint32_t cap;
    uint64_t orphan_since_ms; /* scheduler's: when it first saw no candidate agent; 0 = has one */
} model_queue;

/* Adds e; pos_of[e.slot] is set. Returns 0 or EF_ENOMEM (queue unchanged). */
int queue_push(model_queue *q, queue_entry e, uint32_t *pos_of);

/* The entry that goes first; q must not be empty. */
const queue_entry *queue_top(const model_queue *q);

/* Removes the entry at heap position pos (pos_of[slot] of its slot); pos < q->len. */
void queue_remove_at(model_queue *q, uint32_t pos, uint32_t *pos_of);

/* Frees the heap memory; the queue is then empty. */
void queue_free(model_queue *q);

#endif
