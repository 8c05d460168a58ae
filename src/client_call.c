/* libedgefleet's request paths: generate, chat and batch. Each call sends one Request (or one
 * BatchRequest) with fresh 16-byte ids, then reads replies until every item has its Done or
 * Error, matching replies by request id so a stale reply from an earlier, cancelled call is
 * ignored. Runs on the caller's thread; see include/edgefleet.h for the contracts. */
#include "client_internal.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One request of a call and what has come back for it. */
typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN];
    int done;
    ef_result result;
    char *text; /* batch only: the item's whole output so far (NUL-terminated) */
    size_t len, cap;
} call_item;

typedef struct {
    ef_client_t *c;
    call_item *items;
    size_t n, n_done;
    ef_token_fn on_token; /* single requests: stream */
    ef_item_fn on_item;   /* batches: one callback per finished item */
    void *user;
    uint64_t start_ms;
    int stop; /* a callback asked to cancel */
} call;

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

/* Fill r from the caller's parameters. Strings are borrowed (protobuf-c wants char *, and
 * packing only reads them). */
static void request_fill(Edgefleet__Request *r, Edgefleet__SamplingParams *sp, const char *model,
                         const ef_gen_params *p, uint8_t *id, uint64_t now_unix)
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
    r->request_id.data = id;
    r->request_id.len = CODEC_REQUEST_ID_LEN;
    r->model = (char *)model;
    r->max_tokens = p->max_tokens;
    r->stop = (char **)p->stop;
    r->n_stop = p->stop ? p->n_stop : 0;
    r->session_id = (char *)(p->session_id ? p->session_id : "");
    r->deadline_unix_ms = p->deadline_ms ? now_unix + p->deadline_ms : 0;
    r->log_prompt = p->log_prompt != 0;
}

static call_item *find_item(call *k, ProtobufCBinaryData id, uint32_t batch_index)
{
    if (id.len != CODEC_REQUEST_ID_LEN)
        return NULL;
    if (batch_index < k->n && memcmp(k->items[batch_index].id, id.data, id.len) == 0)
        return &k->items[batch_index];
    for (size_t i = 0; i < k->n; i++) /* replies to single requests carry batch_index 0 */
        if (memcmp(k->items[i].id, id.data, id.len) == 0)
            return &k->items[i];
    return NULL;
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

static void on_chunk(call *k, const Edgefleet__TokenChunk *tc)
{
    call_item *it = find_item(k, tc->request_id, tc->batch_index);
    if (!it || it->done)
        return;
    size_t len = strlen(tc->text);
    it->result.tokens_received += tc->n_token_ids ? (uint32_t)tc->n_token_ids : (len ? 1u : 0u);
    set_agent(&it->result, tc->agent_name);
    if (k->on_token && len && k->on_token(tc->text, len, k->user) != 0)
        k->stop = 1;
    if (k->on_item && append_text(it, tc->text, len) != 0)
        k->stop = 1;
}

/* An item has ended: count it and, in a batch, hand it to the caller. */
static void finish_item(call *k, call_item *it)
{
    it->done = 1;
    k->n_done++;
    it->result.elapsed_ms = (double)(clock_mono_ms() - k->start_ms);
    if (k->on_item && k->on_item((size_t)(it - k->items), it->text ? it->text : "", it->len,
                                 &it->result, k->user) != 0)
        k->stop = 1;
}

static void on_done(call *k, const Edgefleet__Done *d)
{
    call_item *it = find_item(k, d->request_id, d->batch_index);
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
    if (d->finish == EDGEFLEET__FINISH_REASON__FINISH_CANCELLED)
        r->status = EF_ECANCELED;
    finish_item(k, it);
}

static void on_error(call *k, const Edgefleet__Error *e)
{
    call_item *it = find_item(k, e->request_id, e->batch_index);
    if (!it || it->done)
        return;
    ef_result *r = &it->result;
    r->status = client_wire_error(e->code);
    r->retry_after_ms = e->retry_after_ms;
    if (e->tokens_sent > r->tokens_received)
        r->tokens_received = e->tokens_sent;
    snprintf(r->message, sizeof r->message, "%s", e->message ? e->message : "");
    finish_item(k, it);
}

/* Tell the coordinator to stop every item that has not ended. Best effort. */
static void cancel_open_items(call *k)
{
    for (size_t i = 0; i < k->n; i++) {
        if (k->items[i].done)
            continue;
        Edgefleet__Cancel cn = EDGEFLEET__CANCEL__INIT;
        cn.request_id.data = k->items[i].id;
        cn.request_id.len = CODEC_REQUEST_ID_LEN;
        envelope env = EDGEFLEET__ENVELOPE__INIT;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_CANCEL;
        env.cancel = &cn;
        client_send(k->c, &env);
    }
}

/* Read replies until every item has ended, the caller cancels, or the call's time is up. */
static int call_wait(call *k)
{
    ef_client_t *c = k->c;
    uint64_t end = c->request_timeout_ms ? k->start_ms + c->request_timeout_ms : UINT64_MAX;
    while (k->n_done < k->n) {
        if (k->stop)
            atomic_store(&c->cancel, 1);
        uint64_t now = clock_mono_ms();
        uint64_t left = end > now ? end - now : 0;
        uint32_t wait = left > 1000u ? 1000u : (uint32_t)left;
        envelope *env = NULL;
        int rc = client_recv(c, wait, &env);
        if (rc == EF_ETIMEDOUT && clock_mono_ms() < end)
            continue;
        if (rc == EF_ECANCELED || rc == EF_ETIMEDOUT) {
            cancel_open_items(k);
            return client_fail(c, rc, rc == EF_ECANCELED ? "cancelled" : "no answer within %u ms",
                               c->request_timeout_ms);
        }
        if (rc)
            return rc;
        if (env->body_case == EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK)
            on_chunk(k, env->token_chunk);
        else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE)
            on_done(k, env->done);
        else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR)
            on_error(k, env->error);
        codec_free(&env);
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
    client_random_id(it.id);
    Edgefleet__Request r;
    Edgefleet__SamplingParams sp;
    request_fill(&r, &sp, model, &dp, it.id, clock_unix_ms());
    if (prompt)
        r.prompt = (char *)prompt;
    r.messages = messages;
    r.n_messages = n_messages;
    call k = {.c = c, .items = &it, .n = 1, .on_token = on_token, .user = user};
    k.start_ms = clock_mono_ms();
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &r;
    rc = client_send(c, &env);
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

/* The batch's wire form; its strings are borrowed from the caller's items. */
typedef struct {
    Edgefleet__Request *reqs;
    Edgefleet__Request **ptrs;
    Edgefleet__SamplingParams *sps;
    ef_gen_params *params;
} batch_wire;

static void batch_wire_free(batch_wire *w)
{
    free(w->reqs);
    free(w->ptrs);
    free(w->sps);
    free(w->params);
}

static int batch_send(call *k, const char *model, const ef_batch_item *items)
{
    batch_wire w = {calloc(k->n, sizeof *w.reqs), calloc(k->n, sizeof *w.ptrs),
                    calloc(k->n, sizeof *w.sps), calloc(k->n, sizeof *w.params)};
    if (!w.reqs || !w.ptrs || !w.sps || !w.params) {
        batch_wire_free(&w);
        return EF_ENOMEM;
    }
    uint64_t now = clock_unix_ms();
    for (size_t i = 0; i < k->n; i++) {
        w.params[i] = items[i].params ? *items[i].params : ef_gen_default_params();
        client_random_id(k->items[i].id);
        request_fill(&w.reqs[i], &w.sps[i], model, &w.params[i], k->items[i].id, now);
        w.reqs[i].prompt = (char *)items[i].prompt;
        w.reqs[i].batch_index = (uint32_t)i;
        w.ptrs[i] = &w.reqs[i];
    }
    uint8_t batch_id[CODEC_REQUEST_ID_LEN];
    client_random_id(batch_id);
    Edgefleet__BatchRequest b = EDGEFLEET__BATCH_REQUEST__INIT;
    b.batch_id.data = batch_id;
    b.batch_id.len = sizeof batch_id;
    b.items = w.ptrs;
    b.n_items = k->n;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_BATCH;
    env.batch = &b;
    int rc = client_send(k->c, &env);
    batch_wire_free(&w);
    return rc;
}

EF_API int ef_client_batch(ef_client_t *client, const char *model, const ef_batch_item *items,
                           size_t n_items, ef_item_fn on_item, void *user)
{
    if (!client || !model || !*model || !items || n_items == 0 || !on_item)
        return EF_EINVAL;
    for (size_t i = 0; i < n_items; i++)
        if (!items[i].prompt)
            return EF_EINVAL;
    int rc = client_call_begin(client);
    if (rc)
        return rc;
    call k = {.c = client, .n = n_items, .on_item = on_item, .user = user};
    k.items = calloc(n_items, sizeof *k.items);
    if (!k.items)
        return EF_ENOMEM;
    k.start_ms = clock_mono_ms();
    rc = batch_send(&k, model, items);
    if (rc == 0)
        rc = call_wait(&k);
    for (size_t i = 0; i < n_items; i++)
        free(k.items[i].text);
    free(k.items);
    return rc;
}
