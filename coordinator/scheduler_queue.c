/* EDF heaps of the scheduler's wait queues (see scheduler_queue.h): arrays that record each
 * entry's position so cancels, expiries and flushes remove from the middle in O(log n). */
#include "scheduler_queue.h"

#include "errors.h"

#include <stdlib.h>

#define EDF_FIRST_CAP 8 /* most heaps are one client's few requests of one model */

static int before(const queue_entry *a, const queue_entry *b)
{
    if (a->deadline_key != b->deadline_key)
        return a->deadline_key < b->deadline_key;
    return a->seq < b->seq;
}

static void put(edf_heap *h, uint32_t pos, queue_entry e, uint32_t *pos_of)
{
    h->heap[pos] = e;
    pos_of[e.slot] = pos;
}

static void sift_up(edf_heap *h, uint32_t pos, uint32_t *pos_of)
{
    queue_entry e = h->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!before(&e, &h->heap[parent]))
            break;
        put(h, pos, h->heap[parent], pos_of);
        pos = parent;
    }
    put(h, pos, e, pos_of);
}

static void sift_down(edf_heap *h, uint32_t pos, uint32_t *pos_of)
{
    queue_entry e = h->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && before(&h->heap[child + 1], &h->heap[child]))
            child++;
        if (!before(&h->heap[child], &e))
            break;
        put(h, pos, h->heap[child], pos_of);
        pos = child;
    }
    put(h, pos, e, pos_of);
}

int edf_push(edf_heap *h, queue_entry e, uint32_t *pos_of)
{
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : EDF_FIRST_CAP;
        queue_entry *grown = realloc(h->heap, (size_t)cap * sizeof(*grown));
        if (!grown)
            return EF_ENOMEM;
        h->heap = grown;
        h->cap = cap;
    }
    h->heap[h->len] = e;
    sift_up(h, h->len++, pos_of);
    return 0;
}

const queue_entry *edf_top(const edf_heap *h) { return &h->heap[0]; }

void edf_remove_at(edf_heap *h, uint32_t pos, uint32_t *pos_of)
{
    h->len--;
    if (pos == h->len)
        return;
    /* The last entry fills the hole; it may belong above or below it. */
    put(h, pos, h->heap[h->len], pos_of);
    if (pos > 0 && before(&h->heap[pos], &h->heap[(pos - 1) / 2]))
        sift_up(h, pos, pos_of);
    else
        sift_down(h, pos, pos_of);
}

void edf_free(edf_heap *h)
{
    free(h->heap);
    h->heap = NULL;
    h->len = h->cap = 0;
}
