/* libedgefleet's request paths: generate and chat, and the reply loop every call (batches too,
 * see client_batch.c) runs on. Each attempt of a request has a fresh 16-byte id; replies are
 * matched by id, so a stale reply from an earlier, cancelled call or attempt is ignored. Each
 * request's chunks must be contiguous (TokenChunk.seq); a gap or an overlap ends it with
 * EF_EPROTO and cancels it on the fleet. An Error about a whole BatchRequest of this call, or one
 * with no id at all, ends the call. Runs on the caller's thread; see include/edgefleet.h. */
#include "client_call.h"
#include "grow.h"
#include "clock.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

EF_API ef_gen_params ef_gen_default_params(void)
{
    ef_gen_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 128;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    return p;
}

void call_item_new_id(call_item *it, size_t index)
{
    randombytes_buf(it->id, CODEC_REQUEST_ID_LEN);
    for (int b = 0; b < 4; b++) /* big-endian index in the last 4 bytes */
        it->id[CODEC_REQUEST_ID_LEN - 1 - b] = (uint8_t)(index >> (8 * b));
}

void call_request_fill(Edgefleet__Request *r, Edgefleet__SamplingParams *sp, const char *model,
                       const ef_gen_params *p, const call_item *it)
{
    edgefleet__request__init(r);
    edgefleet__sampling_params__init(sp);
    sp->temperature = p->temperature;
    sp->top_k = p->top_k;
    sp->top_p = p->top_p;
    sp->min_p = p->min_p;
    sp->repeat_penalty = p->repeat_penalty;
    sp->seed = p->seed;
    r->sampling = sp;
    r->request_id.data = (uint8_t *)it->id;
    r->request_id.len = CODEC_REQUEST_ID_LEN;
    r->model = (char *)model;
    r->max_tokens = p->max_tokens;
    r->stop = (char **)p->stop;
    r->n_stop = p->stop ? p->n_stop : 0;
    r->session_id = (char *)(p->session_id ? p->session_id : "");
    r->deadline_unix_ms = it->deadline_unix_ms;
    r->log_prompt = p->log_prompt != 0;
}

/* The item whose attempt on the wire has this id, or NULL (stale, or not ours). */
static call_item *find_item(call *k, ProtobufCBinaryData id)
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
    call_item *it = find_item(k, tc->request_id);
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
    call_item *it = find_item(k, d->request_id);
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
static void cancel_open_items(call *k)
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

/* The coordinator refused one of our BatchRequests as a whole, or a frame of ours it could not
 * name (empty id): end every open item with its code and message, and the call. */
static int call_refused(call *k, const Edgefleet__Error *e)
{
    int code = client_wire_error(e->code);
    const char *msg = e->message && *e->message ? e->message : ef_strerror(code);
    cancel_open_items(k); /* items of other BatchRequests may still run */
    for (size_t i = 0; i < k->n; i++)
        call_item_fail(k, &k->items[i], code, msg);
    return client_fail(k->c, code, "the coordinator refused the %s: %s",
                       k->on_item ? "batch" : "request", msg);
}

/* An Error: about one item, about a whole BatchRequest or frame of ours (ends the call: returns
 * its code), or stale (ignored). */
static int on_error(call *k, const Edgefleet__Error *e)
{
    call_item *it = find_item(k, e->request_id);
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

static int on_reply(call *k, const envelope *env)
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

/* How long to block for a reply: until the call's end or the pump's next wake, at most a second
 * (then the loop looks again), at least 1 ms so a due wake never spins. */
static uint32_t wait_slice(uint64_t now, uint64_t end, uint64_t wake)
{
    uint64_t until = end < wake ? end : wake;
    if (until <= now)
        return 1;
    return until - now > 1000u ? 1000u : (uint32_t)(until - now);
}

/* Read what the old link delivered before it broke: it comes before anything sent again. */
static void read_queued(call *k)
{
    envelope *env = NULL;
    while (k->n_done < k->n && client_recv_queued(k->c, &env) == 0) {
        on_reply(k, env);
        codec_free(&env);
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

/* The coordinator link broke mid-call (its restart): wait for the link to come back within
 * the call's time (or the connect timeout when the call has none), then send what is open
 * again with the tokens already received, so every stream goes on where it stopped. 0 when
 * re-sent, else the code that ends the call. */
static int call_resend(call *k, uint64_t end)
{
    ef_client_t *c = k->c;
    call_item *it = &k->items[0];
    if (!k->keep_tokens || k->resends >= CALL_RESENDS_MAX || k->stop)
        return EF_ENOTCONN;
    read_queued(k);
    if (k->n_done == k->n)
        return 0;
    uint64_t now = clock_mono_ms();
    uint32_t saved = c->connect_timeout_ms;
    if (end != UINT64_MAX)
        c->connect_timeout_ms = end > now ? (uint32_t)(end - now) : 1;
    int rc = client_wait_connected(c);
    c->connect_timeout_ms = saved;
    if (rc != 0)
        return client_fail(c, EF_ENOTCONN,
                           "lost the connection to the coordinator mid-call; "
                           "it did not come back in time");
    read_queued(k);
    if (k->n_done == k->n)
        return 0;
    if (!k->resend) {
        k->resends++;
        return resend_open_items(k);
    }
    k->resend->received_tokens = it->tokens;
    k->resend->n_received_tokens = it->n_tokens;
    envelope req = EDGEFLEET__ENVELOPE__INIT;
    req.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    req.request = k->resend;
    rc = client_send(c, &req);
    if (rc == 0) {
        k->resends++;
        it->result.resumes++;
        it->attempts++;
    }
    return rc;
}

int call_wait(call *k)
{
    ef_client_t *c = k->c;
    uint64_t end = c->request_timeout_ms ? k->start_ms + c->request_timeout_ms : UINT64_MAX;
    while (k->n_done < k->n) {
        uint64_t now = clock_mono_ms(), wake = UINT64_MAX;
        int rc = k->hooks.pump ? k->hooks.pump(k, now, &wake) : 0;
        if (rc) {
            cancel_open_items(k);
            return rc;
        }
        if (k->n_done == k->n)
            break;
        if (k->stop)
            atomic_store(&c->cancel, 1);
        envelope *env = NULL;
        rc = client_recv(c, wait_slice(now, end, wake), &env);
        if (rc == EF_ETIMEDOUT && clock_mono_ms() < end)
            continue;
        if (rc == EF_ECANCELED || rc == EF_ETIMEDOUT) {
            cancel_open_items(k);
            return client_fail(c, rc, rc == EF_ECANCELED ? "cancelled" : "no answer within %u ms",
                               c->request_timeout_ms);
        }
        if (rc == EF_ENOTCONN && call_resend(k, end) == 0)
            continue;
        if (rc)
            return rc;
        rc = on_reply(k, env);
        codec_free(&env);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_common(ef_client_t *c, const char *model, const ef_gen_params *p, ef_result *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !model || !*model || (p && p->stop && p->n_stop && !p->stop[0]))
        return EF_EINVAL;
    return 0;
}

/* One generate or chat: start the call, send one Request carrying prompt (when not NULL) or
 * messages, and wait for its end. Fills *out when it is not NULL. */
static int single_request(ef_client_t *c, const char *model, const ef_gen_params *params,
                          const char *prompt, Edgefleet__ChatMessage **messages, size_t n_messages,
                          ef_token_fn on_token, void *user, ef_result *out)
{
    int rc = client_call_begin(c);
    if (rc != 0) {
        if (out)
            out->status = rc;
        return rc;
    }
    ef_gen_params dp = params ? *params : ef_gen_default_params();
    call_item it = {0};
    call_item_new_id(&it, 0);
    it.deadline_unix_ms = dp.deadline_ms ? clock_unix_ms() + dp.deadline_ms : 0;
    Edgefleet__Request r;
    Edgefleet__SamplingParams sp;
    call_request_fill(&r, &sp, model, &dp, &it);
    if (prompt)
        r.prompt = (char *)prompt;
    r.messages = messages;
    r.n_messages = n_messages;
    call k = {.c = c,
              .items = &it,
              .n = 1,
              .on_token = on_token,
              .user = user,
              .resend = &r,
              .keep_tokens = 1};
    k.start_ms = clock_mono_ms();
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &r;
    rc = client_send(c, &env);
    it.sent = rc == 0;
    it.attempts = 1;
    if (rc == 0)
        rc = call_wait(&k);
    if (rc == 0 && it.result.status != 0) {
        rc = it.result.status;
        client_fail(c, rc, "%s", it.result.message[0] ? it.result.message : ef_strerror(rc));
    }
    it.result.elapsed_ms = (double)(clock_mono_ms() - k.start_ms);
    if (rc && it.result.status == 0)
        it.result.status = rc;
    if (out)
        *out = it.result;
    free(it.tokens);
    return rc;
}

EF_API int ef_client_generate(ef_client_t *client, const char *model, const char *prompt,
                              const ef_gen_params *params, ef_token_fn on_token, void *user,
                              ef_result *out)
{
    int rc = check_common(client, model, params, out);
    if (rc || !prompt)
        return rc ? rc : EF_EINVAL;
    return single_request(client, model, params, prompt, NULL, 0, on_token, user, out);
}

EF_API int ef_client_chat(ef_client_t *client, const char *model, const ef_chat_message *messages,
                          size_t n_messages, const ef_gen_params *params, ef_token_fn on_token,
                          void *user, ef_result *out)
{
    int rc = check_common(client, model, params, out);
    if (rc || !messages || n_messages == 0)
        return rc ? rc : EF_EINVAL;
    Edgefleet__ChatMessage *msgs = calloc(n_messages, sizeof *msgs);
    Edgefleet__ChatMessage **ptrs = calloc(n_messages, sizeof *ptrs);
    if (!msgs || !ptrs) {
        free(msgs);
        free(ptrs);
        return EF_ENOMEM;
    }
    for (size_t i = 0; i < n_messages; i++) {
        edgefleet__chat_message__init(&msgs[i]);
        msgs[i].role = (char *)(messages[i].role ? messages[i].role : "user");
        msgs[i].content = (char *)(messages[i].content ? messages[i].content : "");
        ptrs[i] = &msgs[i];
    }
    rc = single_request(client, model, params, NULL, ptrs, n_messages, on_token, user, out);
    free(ptrs);
    free(msgs);
    return rc;
}
