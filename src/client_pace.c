/* Implementation of client_pace.h: a binary min-heap of waiting items keyed by (not_before,
 * index), so items go out in batch order unless a busy refusal put them back for later. */
#include "client_pace.h"
#include "edgefleet.h"

#include <stdlib.h>

enum { PACE_WAITING, PACE_IN_FLIGHT, PACE_ENDED };

static int earlier(const pace *p, size_t a, size_t b)
{
    uint64_t ta = p->not_before[a], tb = p->not_before[b];
    return ta < tb || (ta == tb && a < b);
}

static void heap_push(pace *p, size_t item)
{
    size_t i = p->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(p, item, p->heap[parent]))
            break;
        p->heap[i] = p->heap[parent];
        i = parent;
    }
    p->heap[i] = item;
}

static void heap_pop(pace *p)
{
    size_t last = p->heap[--p->heap_len], i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= p->heap_len)
            break;
        if (child + 1 < p->heap_len && earlier(p, p->heap[child + 1], p->heap[child]))
            child++;
        if (!earlier(p, p->heap[child], last))
            break;
        p->heap[i] = p->heap[child];
        i = child;
    }
    if (p->heap_len > 0)
        p->heap[i] = last;
}

/* The earliest waiting item, dropping ended ones from the top. PACE_NONE when none waits. */
static size_t heap_top(pace *p)
{
    while (p->heap_len > 0 && p->state[p->heap[0]] != PACE_WAITING)
        heap_pop(p);
    return p->heap_len > 0 ? p->heap[0] : PACE_NONE;
}

int pace_init(pace *p, size_t n_items, size_t first_window)
{
    *p = (pace){.n = n_items, .window = first_window ? first_window : 1};
    p->state = calloc(n_items ? n_items : 1, sizeof *p->state);
    p->not_before = calloc(n_items ? n_items : 1, sizeof *p->not_before);
    p->heap = calloc(n_items ? n_items : 1, sizeof *p->heap);
    if (!p->state || !p->not_before || !p->heap) {
        pace_free(p);
        return EF_ENOMEM;
    }
    for (size_t i = 0; i < n_items; i++) /* all due at 0: index order is already a heap */
        p->heap[i] = i;
    p->heap_len = n_items;
    return 0;
}

void pace_free(pace *p)
{
    if (!p)
        return;
    free(p->state);
    free(p->not_before);
    free(p->heap);
    *p = (pace){0};
}

size_t pace_next(pace *p, uint64_t now_ms)
{
    if (p->in_flight >= p->window)
        return PACE_NONE;
    size_t top = heap_top(p);
    return top != PACE_NONE && p->not_before[top] <= now_ms ? top : PACE_NONE;
}

void pace_sent(pace *p, size_t i)
{
    if (i >= p->n || heap_top(p) != i) /* only pace_next's answer: keeps one entry per item */
        return;
    heap_pop(p);
    p->state[i] = PACE_IN_FLIGHT;
    p->in_flight++;
}

void pace_busy(pace *p, size_t i, uint64_t retry_at_ms)
{
    if (i >= p->n || p->state[i] != PACE_IN_FLIGHT)
        return;
    p->in_flight--;
    p->state[i] = PACE_WAITING;
    p->not_before[i] = retry_at_ms;
    heap_push(p, i);
    /* What is still in flight is what the fleet took: send no more than that at once. */
    p->window = p->in_flight > 0 ? p->in_flight : 1;
    p->ended_in_window = 0;
}

void pace_end(pace *p, size_t i)
{
    if (i >= p->n || p->state[i] == PACE_ENDED)
        return;
    int was_in_flight = p->state[i] == PACE_IN_FLIGHT;
    p->state[i] = PACE_ENDED;
    if (!was_in_flight)
        return; /* its heap entry goes when it reaches the top */
    p->in_flight--;
    if (++p->ended_in_window >= p->window && p->window < p->n) {
        p->window++;
        p->ended_in_window = 0;
    }
}

uint64_t pace_wake_ms(pace *p)
{
    if (p->in_flight >= p->window)
        return UINT64_MAX;
    size_t top = heap_top(p);
    return top != PACE_NONE ? p->not_before[top] : UINT64_MAX;
}
