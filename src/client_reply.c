/* libedgefleet's reply core: what every call, blocking (client_call.c, client_batch.c) or
 * asynchronous (client_async_call.c), does with the coordinator's replies. Each attempt of a
 * request has a fresh 16-byte id; replies are matched by id, so a stale reply from an earlier,
 * cancelled call or attempt is ignored. Each request's chunks must be contiguous (TokenChunk.seq);
 * a gap or an overlap ends it with EF_EPROTO and cancels it on the fleet. An Error about a whole
 * BatchRequest of this call, or one with no id at all, ends the call. Touches no socket itself:
 * it sends through client_send. Runs on the thread that drives the call. */
#include "client_call.h"
#include "clock.h"
#include "grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The item whose attempt on the wire has this id, or NULL (stale, or not ours). */
call_item *call_find_item(call *k, ProtobufCBinaryData id)
{
    if (id.len != CODEC_REQUEST_ID_LEN)
        return NULL;
    size_t index = 0;
    for (int b = 0; b < 4; b++)
        index = (index << 8) | id.data[CODEC_REQUEST_ID_LEN - 4 + b];
    if (index >= k->n)
        return NULL;
    call_item *it = &k->items[index];
    return it->sent && memcmp(it->id, id.data, id.len) == 0 ? it : NULL;
}

static int append_text(call_item *it, const char *text, size_t len)
{
    if (it->len + len + 1 > it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 256;
        while (cap < it->len + len + 1)
            cap *= 2;
        char *t = realloc(it->text, cap);
        if (!t)
            return EF_ENOMEM;
        it->text = t;
        it->cap = cap;
    }
    memcpy(it->text + it->len, text, len);
    it->len += len;
    it->text[it->len] = '\0';
    return 0;
}

static void set_agent(ef_result *r, const char *name)
{
    if (name && *name)
        snprintf(r->agent, sizeof r->agent, "%s", name);
}

static void send_cancel(ef_client_t *c, const uint8_t id[CODEC_REQUEST_ID_LEN])
{
    Edgefleet__Cancel cn = EDGEFLEET__CANCEL__INIT;
    cn.request_id.data = (uint8_t *)id;
    cn.request_id.len = CODEC_REQUEST_ID_LEN;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_CANCEL;
    env.cancel = &cn;
    client_send(c, &env);
}

/* An item has ended: count it and, in a batch, hand it to the caller. */
static void finish_item(call *k, call_item *it)
{
    it->done = 1;
    k->n_done++;
    if (it->result.status != 0)
        k->n_failed++;
    it->result.elapsed_ms = (double)(clock_mono_ms() - k->start_ms);
    if (k->hooks.on_end)
        k->hooks.on_end(k, it);
    if (k->on_item && k->on_item((size_t)(it - k->items), it->text ? it->text : "", it->len,
                                 &it->result, k->user) != 0)
        k->stop = 1;
}

void call_item_fail(call *k, call_item *it, int code, const char *message)
{
    if (it->done)
        return;
    it->result.status = code;
    snprintf(it->result.message, sizeof it->result.message, "%s", message ? message : "");
    finish_item(k, it);
}

static void on_chunk(call *k, const Edgefleet__TokenChunk *tc)
{
    call_item *it = call_find_item(k, tc->request_id);
    if (!it || it->done)
        return;
    if (tc->seq != it->next_seq) {
        /* Tokens were lost or repeated on the way: the text is not what the model wrote. */
        char why[sizeof it->result.message];
        snprintf(why, sizeof why, "reply stream %s: expected chunk seq %u, got %u (cancelled)",
                 tc->seq > it->next_seq ? "has a gap" : "overlaps", it->next_seq, tc->seq);
        send_cancel(k->c, it->id);
        call_item_fail(k, it, EF_EPROTO, why);
        return;
    }
    it->next_seq += (uint32_t)tc->n_token_ids;
    if (k->keep_tokens && tc->n_token_ids &&
        grow_array((void **)&it->tokens, &it->tokens_cap, it->n_tokens + tc->n_token_ids,
                   sizeof *it->tokens) == 0) {
        memcpy(it->tokens + it->n_tokens, tc->token_ids, tc->n_token_ids * sizeof *it->tokens);
        it->n_tokens += tc->n_token_ids;
    }
    size_t len = strlen(tc->text);
    it->result.tokens_received += tc->n_token_ids ? (uint32_t)tc->n_token_ids : (len ? 1u : 0u);
    set_agent(&it->result, tc->agent_name);
    if (k->on_token && len && k->on_token(tc->text, len, k->user) != 0)
        k->stop = 1;
    if (k->on_item && append_text(it, tc->text, len) != 0)
        k->stop = 1;
}

static void on_done(call *k, const Edgefleet__Done *d)
{
    call_item *it = call_find_item(k, d->request_id);
    if (!it || it->done)
        return;
    ef_result *r = &it->result;
    r->finish = (ef_finish)d->finish;
    if (d->usage) {
        r->prompt_tokens = d->usage->prompt_tokens;
        r->prompt_evaluated = d->usage->prompt_evaluated;
        r->completion_tokens = d->usage->completion_tokens;
    }
    if (d->timings) {
        r->queue_ms = d->timings->queue_ms;
        r->first_token_ms = d->timings->first_token_ms;
    }
    r->seed = d->seed;
    set_agent(r, d->agent_name);
    r->resumes += d->resumes; /* plus our own re-sends, counted when made */
    size_t used = strlen(r->agents);
    for (size_t i = 0; i < d->n_agents && used < sizeof r->agents; i++) {
        int w = snprintf(r->agents + used, sizeof r->agents - used, "%s%s", used ? "," : "",
                         d->agents[i]);
        if (w > 0)
            used += (size_t)w;
    }
    if (d->finish == EDGEFLEET__FINISH_REASON__FINISH_CANCELLED)
        r->status = EF_ECANCELED;
    finish_item(k, it);
}

/* Tell the coordinator to stop every item that is on the wire and has not ended. Best effort. */
void call_cancel_open(call *k)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->items[i].sent && !k->items[i].done)
            send_cancel(k->c, k->items[i].id);
}

static int is_our_batch(const call *k, ProtobufCBinaryData id)
{
    return k->n_batches > 0 && id.len == CODEC_REQUEST_ID_LEN &&
           memcmp(id.data, k->batch_tag, CALL_TAG_LEN) == 0;
}

int call_owns_id(call *k, ProtobufCBinaryData id)
{
    return call_find_item(k, id) != NULL || is_our_batch(k, id);
}

void call_id_put_slot(uint8_t id[CODEC_REQUEST_ID_LEN], uint32_t slot)
{
    for (int b = 0; b < 4; b++)
        id[CALL_SLOT_AT + 3 - b] = (uint8_t)(slot >> (8 * b));
}

/* The coordinator refused one of our BatchRequests as a whole, or a frame of ours it could not
 * name (empty id): end every open item with its code and message, and the call. */
static int call_refused(call *k, const Edgefleet__Error *e)
{
    int code = client_wire_error(e->code);
    const char *msg = e->message && *e->message ? e->message : ef_strerror(code);
    call_cancel_open(k); /* items of other BatchRequests may still run */
    for (size_t i = 0; i < k->n; i++)
        call_item_fail(k, &k->items[i], code, msg);
    return client_fail(k->c, code, "the coordinator refused the %s: %s",
                       k->on_item ? "batch" : "request", msg);
}

/* An Error: about one item, about a whole BatchRequest or frame of ours (ends the call: returns
 * its code), or stale (ignored). */
static int on_error(call *k, const Edgefleet__Error *e)
{
    call_item *it = call_find_item(k, e->request_id);
    if (!it)
        return e->request_id.len == 0 || is_our_batch(k, e->request_id) ? call_refused(k, e) : 0;
    if (it->done)
        return 0;
    ef_result *r = &it->result;
    int code = client_wire_error(e->code);
    r->retry_after_ms = e->retry_after_ms;
    /* Busy before this attempt streamed anything (after a coordinator restart an item may hold
     * tokens of an earlier attempt): held for a resend, not failed. */
    if (code == EF_EBUSY && it->n_tokens == it->attempt_tokens &&
        e->tokens_sent <= it->attempt_tokens && k->hooks.on_busy) {
        it->sent = 0; /* this attempt is over; a resend gets a fresh id */
        if (k->hooks.on_busy(k, it, e->retry_after_ms))
            return 0;
    }
    r->status = code;
    if (e->tokens_sent > r->tokens_received)
        r->tokens_received = e->tokens_sent;
    snprintf(r->message, sizeof r->message, "%s", e->message ? e->message : "");
    finish_item(k, it);
    return 0;
}

int call_on_reply(call *k, const envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        on_chunk(k, env->token_chunk);
        return 0;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        on_done(k, env->done);
        return 0;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        return on_error(k, env->error);
    default:
        return 0; /* a stale operator reply, or nothing a call waits for */
    }
}

/* The batch's way: every item on the wire and not ended is held for the pump, which sends it
 * again (fresh id) with the tokens it received. */
static int resend_open_items(call *k)
{
    for (size_t i = 0; i < k->n; i++) {
        call_item *it = &k->items[i];
        if (!it->sent || it->done)
            continue;
        it->sent = 0;
        it->result.resumes++;
        if (!k->hooks.on_busy || !k->hooks.on_busy(k, it, 0))
            call_item_fail(k, it, EF_ENOTCONN, "the coordinator link broke mid-call");
    }
    return 0;
}

int call_send_again(call *k)
{
    if (!k->resend) {
        k->resends++;
        return resend_open_items(k);
    }
    call_item *it = &k->items[0];
    k->resend->received_tokens = it->tokens;
    k->resend->n_received_tokens = it->n_tokens;
    envelope req = EDGEFLEET__ENVELOPE__INIT;
    req.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    req.request = k->resend;
    int rc = client_send(k->c, &req);
    if (rc == 0) {
        k->resends++;
        it->result.resumes++;
        it->attempts++;
    }
    return rc;
}
