/* Per-model EDF wait queue of the scheduler (see scheduler_queue.h): an array binary heap that
 * records each entry's position so cancels and flushes remove from the middle in O(log n). */
#include "scheduler_queue.h"

#include "errors.h"

#include <stdlib.h>

static int before(const queue_entry *a, const queue_entry *b)
{
    if (a->deadline_key != b->deadline_key)
        return a->deadline_key < b->deadline_key;
    return a->seq < b->seq;
}

static void put(model_queue *q, uint32_t pos, queue_entry e, uint32_t *pos_of)
{
    q->heap[pos] = e;
    pos_of[e.slot] = pos;
}

static void sift_up(model_queue *q, uint32_t pos, uint32_t *pos_of)
{
    queue_entry e = q->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!before(&e, &q->heap[parent]))
            break;
        put(q, pos, q->heap[parent], pos_of);
        pos = parent;
    }
    put(q, pos, e, pos_of);
}

static void sift_down(model_queue *q, uint32_t pos, uint32_t *pos_of)
{
    queue_entry e = q->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= q->len)
            break;
        if (child + 1 < q->len && before(&q->heap[child + 1], &q->heap[child]))
            child++;
        if (!before(&q->heap[child], &e))
            break;
        put(q, pos, q->heap[child], pos_of);
        pos = child;
    }
    put(q, pos, e, pos_of);
}

int queue_push(model_queue *q, queue_entry e, uint32_t *pos_of)
{
    if (q->len == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 64;
        queue_entry *grown = realloc(q->heap, (size_t)cap * sizeof(*grown));
        if (!grown)
            return EF_ENOMEM;
        q->heap = grown;
        q->cap = cap;
    }
    q->heap[q->len] = e;
    sift_up(q, q->len++, pos_of);
    return 0;
}

const queue_entry *queue_top(const model_queue *q) { return &q->heap[0]; }

void queue_remove_at(model_queue *q, uint32_t pos, uint32_t *pos_of)
{
    q->len--;
    if (pos == q->len)
        return;
    /* The last entry fills the hole; it may belong above or below it. */
    put(q, pos, q->heap[q->len], pos_of);
    if (pos > 0 && before(&q->heap[pos], &q->heap[(pos - 1) / 2]))
        sift_up(q, pos, pos_of);
    else
        sift_down(q, pos, pos_of);
}

void queue_free(model_queue *q)
{
    free(q->heap);
    q->heap = NULL;
    q->len = q->cap = 0;
}
