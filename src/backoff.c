/* Implementation of backoff.h. */
#include "backoff.h"

#define BACKOFF_INITIAL_MS 250u
#define BACKOFF_MAX_MS     30000u
#define BACKOFF_FACTOR     2.0
#define BACKOFF_STABLE_MS  10000u

void backoff_init(backoff *b, const backoff_params *p)
{
    b->p = *p;
    if (!b->p.initial_ms)
        b->p.initial_ms = BACKOFF_INITIAL_MS;
    if (!b->p.max_ms)
        b->p.max_ms = BACKOFF_MAX_MS;
    if (b->p.max_ms < b->p.initial_ms)
        b->p.max_ms = b->p.initial_ms;
    if (!(b->p.factor >= 1.0))
        b->p.factor = BACKOFF_FACTOR;
    if (!(b->p.jitter >= 0.0))
        b->p.jitter = 0.0;
    if (b->p.jitter > 1.0)
        b->p.jitter = 1.0;
    if (!b->p.stable_ms)
        b->p.stable_ms = BACKOFF_STABLE_MS;
    b->attempt = 0;
    b->connected_ms = 0;
}

void backoff_connected(backoff *b, uint64_t now_ms) { b->connected_ms = now_ms ? now_ms : 1; }

uint32_t backoff_next(backoff *b, uint64_t now_ms, uint32_t rnd)
{
    if (b->connected_ms && now_ms >= b->connected_ms && now_ms - b->connected_ms >= b->p.stable_ms)
        b->attempt = 0;
    b->connected_ms = 0;
    double delay = (double)b->p.initial_ms;
    for (uint32_t i = 0; i < b->attempt && delay < (double)b->p.max_ms; i++)
        delay *= b->p.factor;
    if (delay > (double)b->p.max_ms)
        delay = (double)b->p.max_ms;
    else
        b->attempt++; /* stop counting once capped: no overflow however long it is down */
    double u = (double)rnd / 4294967296.0;
    delay *= 1.0 - b->p.jitter * u;
    return delay < 1.0 ? 1u : (uint32_t)delay;
}
