/* libedgefleet's ef_client_batch_async: a batch on the loop is the blocking batch's call and
 * pump (client_batch.c: pacing, busy resends, deadlines) with the caller's items copied, started
 * and driven by client_async_call.c like any async call; here are the copy, the per-item
 * callback and the batch's on_done. Loop thread only; see include/edgefleet.h. */
#include "client_async.h"
#include "clock.h"

#include <stdlib.h>
#include <string.h>

EF_API ef_batch_params ef_batch_default_params(void)
{
    ef_batch_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static size_t room(const char *s) { return s ? strlen(s) + 1 : 0; }

static char *put(char **at, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *out = memcpy(*at, s, n);
    *at += n;
    return out;
}

/* Copy model and items (prompts, params with their stop strings and session ids) into a.
 * 0 or EF_ENOMEM. */
static int copy_items(struct ef_call *a, const char *model, const ef_batch_item *items, size_t n)
{
    size_t need = room(model), n_stop = 0;
    for (size_t i = 0; i < n; i++) {
        const ef_gen_params *p = items[i].params;
        need += room(items[i].prompt);
        if (!p)
            continue;
        need += room(p->session_id);
        for (size_t j = 0; p->stop && j < p->n_stop; j++)
            need += room(p->stop[j] ? p->stop[j] : "");
        n_stop += p->stop ? p->n_stop : 0;
    }
    a->strings = malloc(need);
    a->items = calloc(n, sizeof *a->items);
    a->item_params = calloc(n, sizeof *a->item_params);
    a->stop = n_stop ? calloc(n_stop, sizeof *a->stop) : NULL;
    if (!a->strings || !a->items || !a->item_params || (n_stop && !a->stop))
        return EF_ENOMEM;
    char *at = a->strings, **stop = a->stop;
    a->model = put(&at, model);
    for (size_t i = 0; i < n; i++) {
        a->items[i].prompt = put(&at, items[i].prompt);
        if (!items[i].params)
            continue; /* NULL: the defaults, as in ef_client_batch */
        ef_gen_params *p = &a->item_params[i];
        *p = *items[i].params;
        p->session_id = put(&at, p->session_id);
        size_t k = p->stop ? p->n_stop : 0;
        for (size_t j = 0; j < k; j++)
            stop[j] = put(&at, p->stop[j] ? p->stop[j] : "");
        p->stop = k ? (const char *const *)stop : NULL;
        p->n_stop = k;
        stop += k;
        a->items[i].params = p;
    }
    return 0;
}

static int batch_item(size_t index, const char *text, size_t text_len, const ef_result *r,
                      void *user)
{
    struct ef_call *a = user;
    if (a->state == ACALL_ENDED) /* cancelled from an earlier callback */
        return 1;
    return a->bcb.on_item(a, index, text, text_len, r, a->bcb.user);
}

void async_batch_done(struct ef_call *a)
{
    const call *k = &a->s.k;
    ef_batch_result r = {.n_items = k->n,
                         .n_ok = k->n_done - k->n_failed,
                         .n_failed = k->n_failed,
                         .n_retried = batch_retried(a->b),
                         .elapsed_ms = (double)(clock_mono_ms() - k->start_ms)};
    a->bcb.on_done(a, a->status, &r, a->bcb.user);
}

EF_API int ef_client_batch_async(ef_client_t *client, const char *model, const ef_batch_item *items,
                                 size_t n_items, const ef_batch_params *cb, ef_call_t **call_out)
{
    if (call_out)
        *call_out = NULL;
    if (batch_check(client, model, items, n_items) || !client->loop || client->calls.destroying ||
        !cb || !cb->on_item || !cb->on_done)
        return EF_EINVAL;
    struct ef_call *a = calloc(1, sizeof *a);
    if (!a)
        return EF_ENOMEM;
    a->c = client;
    a->bcb = *cb;
    call *k = &a->s.k;
    *k = (call){.c = client,
                .n = n_items,
                .on_item = batch_item,
                .user = a,
                .start_ms = clock_mono_ms(),
                .keep_tokens = 1};
    k->items = calloc(n_items, sizeof *k->items);
    if (!k->items || copy_items(a, model, items, n_items) != 0 || async_call_slot(a) != 0) {
        async_call_free(a);
        return EF_ENOMEM;
    }
    k->slotted = 1;
    k->slot = a->slot;
    if (batch_new(k, a->model, a->items, &a->b) != 0) {
        client->calls.slots[a->slot] = NULL; /* give the slot back */
        client->calls.free_slots[client->calls.n_free++] = a->slot;
        async_call_free(a);
        return EF_ENOMEM;
    }
    if (call_out)
        *call_out = a;
    async_call_start(a);
    return 0;
}
