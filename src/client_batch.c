/* libedgefleet's ef_client_batch: the batch's items go out in BatchRequests of at most
 * CLIENT_BATCH_MAX items and one frame, paced by client_pace.c within what the fleet takes at
 * once; items the fleet refuses as busy are held and sent again with fresh ids after their
 * retry_after_ms, and items whose deadline passes while held end here with EF_EDEADLINE. The
 * replies are read by call_wait (client_call.c), or for ef_client_batch_async by the loop
 * (client_async_call.c), which runs the same pump. Runs on the thread that drives the call. */
#include "client_call.h"
#include "client_pace.h"
#include "clock.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The coordinator's limit on the items of one BatchRequest (PROTOCOL.md). */
#define CLIENT_BATCH_MAX 1024u
/* Room left in a frame for the envelope and BatchRequest around the items, and per item for its
 * field tag and length. */
#define CLIENT_BATCH_FRAME_SLACK 1024u
#define CLIENT_BATCH_ITEM_SLACK  8u
/* A busy refusal with no retry_after_ms (or a tiny one) still waits this long: a busy fleet is
 * not hammered. */
#define CLIENT_BUSY_RETRY_MIN_MS 50u

struct batch {
    const char *model;
    const ef_batch_item *items;
    pace pace;
    uint64_t next_expiry_ms; /* earliest deadline of a waiting item (monotonic); UINT64_MAX */
    size_t n_retried;
    /* The BatchRequest being filled: its items' wire form, borrowed from the caller's. */
    Edgefleet__Request reqs[CLIENT_BATCH_MAX];
    Edgefleet__Request *ptrs[CLIENT_BATCH_MAX];
    Edgefleet__SamplingParams sps[CLIENT_BATCH_MAX];
    size_t n_wire, wire_bytes;
};

static ef_gen_params item_params(const batch *b, size_t i)
{
    return b->items[i].params ? *b->items[i].params : ef_gen_default_params();
}

/* Monotonic deadline of item i; 0 = none. */
static uint64_t item_deadline(const call *k, const batch *b, size_t i)
{
    const ef_gen_params *p = b->items[i].params;
    return p && p->deadline_ms ? k->start_ms + p->deadline_ms : 0;
}

static int wire_flush(call *k, batch *b)
{
    if (b->n_wire == 0)
        return 0;
    uint8_t id[CODEC_REQUEST_ID_LEN];
    memcpy(id, k->batch_tag, CALL_TAG_LEN);
    for (int i = 0; i < 4; i++)
        id[CODEC_REQUEST_ID_LEN - 1 - i] = (uint8_t)(k->n_batches >> (8 * i));
    k->n_batches++;
    Edgefleet__BatchRequest br = EDGEFLEET__BATCH_REQUEST__INIT;
    br.batch_id.data = id;
    br.batch_id.len = sizeof id;
    br.items = b->ptrs;
    br.n_items = b->n_wire;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_BATCH;
    env.batch = &br;
    b->n_wire = b->wire_bytes = 0;
    return client_send(k->c, &env);
}

/* Put item i (due, with room in the window) into the BatchRequest being filled, flushing it
 * first when i would not fit. 0, or a send error. */
static int wire_add(call *k, batch *b, size_t i)
{
    call_item *it = &k->items[i];
    ef_gen_params p = item_params(b, i);
    call_item_new_id(it, i);
    if (k->slotted)
        call_id_put_slot(it->id, k->slot);
    Edgefleet__Request r;
    Edgefleet__SamplingParams sp;
    call_request_fill(&r, &sp, b->model, &p, it);
    r.prompt = (char *)b->items[i].prompt;
    /* Sent again after the coordinator restarted: it goes on after what it has. */
    r.received_tokens = it->tokens;
    r.n_received_tokens = it->n_tokens;
    size_t size = edgefleet__request__get_packed_size(&r) + CLIENT_BATCH_ITEM_SLACK;
    const size_t budget = CODEC_MAX_FRAME_DEFAULT - CLIENT_BATCH_FRAME_SLACK;
    if (size > budget) {
        char why[sizeof it->result.message];
        snprintf(why, sizeof why, "item %zu is %zu bytes, more than one message may carry", i,
                 size);
        call_item_fail(k, it, EF_ETOOBIG, why);
        return 0;
    }
    int rc = 0;
    if (b->n_wire == CLIENT_BATCH_MAX || b->wire_bytes + size > budget)
        rc = wire_flush(k, b);
    size_t w = b->n_wire++;
    b->sps[w] = sp;
    b->reqs[w] = r;
    b->reqs[w].sampling = &b->sps[w];
    b->reqs[w].batch_index = (uint32_t)w;
    b->ptrs[w] = &b->reqs[w];
    b->wire_bytes += size;
    pace_sent(&b->pace, i);
    it->sent = 1;
    it->next_seq = (uint32_t)it->n_tokens;
    it->attempt_tokens = it->n_tokens;
    it->result.retry_after_ms = 0; /* set again if this attempt is refused too */
    if (it->attempts++ > 0)
        b->n_retried++;
    return rc;
}

/* Waiting items whose deadline passed end here: the fleet never had room for them in time. */
static void expire_waiting(call *k, batch *b, uint64_t now)
{
    if (now < b->next_expiry_ms)
        return;
    b->next_expiry_ms = UINT64_MAX;
    for (size_t i = 0; i < k->n; i++) {
        call_item *it = &k->items[i];
        uint64_t dl = item_deadline(k, b, i);
        if (it->done || it->sent || dl == 0)
            continue;
        if (dl <= now)
            call_item_fail(k, it, EF_EDEADLINE,
                           "deadline passed while the fleet was busy (held by the library)");
        else if (dl < b->next_expiry_ms)
            b->next_expiry_ms = dl;
    }
}

static int batch_pump(call *k, uint64_t now, uint64_t *wake_ms)
{
    batch *b = k->hooks.state;
    expire_waiting(k, b, now);
    size_t i;
    int rc = 0;
    while (rc == 0 && (i = pace_next(&b->pace, now)) != PACE_NONE)
        rc = wire_add(k, b, i); /* an item that cannot go at all ends, and pace_next moves on */
    if (rc == 0)
        rc = wire_flush(k, b);
    uint64_t wake = pace_wake_ms(&b->pace);
    *wake_ms = wake < b->next_expiry_ms ? wake : b->next_expiry_ms;
    return rc;
}

static int batch_on_busy(call *k, call_item *it, uint32_t retry_after_ms)
{
    batch *b = k->hooks.state;
    size_t i = (size_t)(it - k->items);
    uint64_t now = clock_mono_ms();
    uint32_t wait =
        retry_after_ms > CLIENT_BUSY_RETRY_MIN_MS ? retry_after_ms : CLIENT_BUSY_RETRY_MIN_MS;
    pace_busy(&b->pace, i, now + wait);
    uint64_t dl = item_deadline(k, b, i);
    if (dl && dl < b->next_expiry_ms)
        b->next_expiry_ms = dl;
    return 1;
}

static void batch_on_end(call *k, call_item *it)
{
    batch *b = k->hooks.state;
    pace_end(&b->pace, (size_t)(it - k->items));
}

int batch_outcome(call *k)
{
    if (k->n_failed == 0)
        return 0;
    size_t first = 0;
    while (first < k->n && k->items[first].result.status == 0)
        first++;
    const ef_result *r = &k->items[first].result;
    return client_fail(k->c, EF_EPARTIAL, "%zu of %zu items failed; first, item %zu: %s",
                       k->n_failed, k->n, first,
                       r->message[0] ? r->message : ef_strerror(r->status));
}

int batch_new(call *k, const char *model, const ef_batch_item *items, batch **out)
{
    *out = NULL;
    batch *b = calloc(1, sizeof *b);
    if (!b || pace_init(&b->pace, k->n, CLIENT_BATCH_MAX) != 0) {
        free(b);
        return EF_ENOMEM;
    }
    b->model = model;
    b->items = items;
    b->next_expiry_ms = UINT64_MAX;
    uint64_t now_unix = clock_unix_ms();
    for (size_t i = 0; i < k->n; i++) {
        ef_gen_params p = item_params(b, i);
        k->items[i].deadline_unix_ms = p.deadline_ms ? now_unix + p.deadline_ms : 0;
        uint64_t dl = item_deadline(k, b, i);
        if (dl && dl < b->next_expiry_ms)
            b->next_expiry_ms = dl;
    }
    randombytes_buf(k->batch_tag, sizeof k->batch_tag);
    if (k->slotted)
        call_id_put_slot(k->batch_tag, k->slot);
    k->hooks = (call_hooks){
        .on_busy = batch_on_busy, .on_end = batch_on_end, .pump = batch_pump, .state = b};
    *out = b;
    return 0;
}

size_t batch_retried(const batch *b) { return b ? b->n_retried : 0; }

void batch_free(batch **b_p)
{
    if (!b_p || !*b_p)
        return;
    pace_free(&(*b_p)->pace);
    free(*b_p);
    *b_p = NULL;
}

int batch_check(ef_client_t *client, const char *model, const ef_batch_item *items, size_t n_items)
{
    if (!client || !model || !*model || !items || n_items == 0 || n_items > UINT32_MAX)
        return EF_EINVAL;
    for (size_t i = 0; i < n_items; i++)
        if (!items[i].prompt)
            return EF_EINVAL;
    return 0;
}

EF_API int ef_client_batch(ef_client_t *client, const char *model, const ef_batch_item *items,
                           size_t n_items, ef_item_fn on_item, void *user, ef_batch_result *out)
{
    uint64_t start = clock_mono_ms();
    if (out)
        *out = (ef_batch_result){.n_items = n_items};
    int rc = on_item ? batch_check(client, model, items, n_items) : EF_EINVAL;
    if (rc == 0)
        rc = client_call_begin(client);
    if (rc)
        return rc;
    call k = {.c = client,
              .n = n_items,
              .on_item = on_item,
              .user = user,
              .start_ms = start,
              .keep_tokens = 1};
    k.items = calloc(n_items, sizeof *k.items);
    batch *b = NULL;
    if (!k.items || batch_new(&k, model, items, &b) != 0) {
        free(k.items);
        return client_fail(client, EF_ENOMEM, "out of memory for a batch of %zu items", n_items);
    }
    rc = call_wait(&k);
    if (rc == 0)
        rc = batch_outcome(&k);
    if (out) {
        out->n_failed = k.n_failed;
        out->n_ok = k.n_done - k.n_failed;
        out->n_retried = b->n_retried;
        out->elapsed_ms = (double)(clock_mono_ms() - start);
    }
    for (size_t i = 0; i < n_items; i++) {
        free(k.items[i].text);
        free(k.items[i].tokens);
    }
    free(k.items);
    batch_free(&b);
    return rc;
}
