/* libedgefleet's blocking calls: generate and chat, and the loop every blocking call (batches
 * too, see client_batch.c) waits in, reading the coordinator's replies into the reply core
 * (client_reply.c). A single request's set-up (call_single) is shared with the asynchronous
 * calls (client_async_call.c). Runs on the caller's thread; see include/edgefleet.h. */
#include "client_call.h"
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
        call_on_reply(k, env);
        codec_free(&env);
    }
}

/* The coordinator link broke mid-call (its restart): wait for the link to come back within
 * the call's time (or the connect timeout when the call has none), then send what is open
 * again with the tokens already received, so every stream goes on where it stopped. 0 when
 * re-sent, else the code that ends the call. */
static int call_resend(call *k, uint64_t end)
{
    ef_client_t *c = k->c;
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
    return call_send_again(k);
}

int call_wait(call *k)
{
    ef_client_t *c = k->c;
    uint64_t end = c->request_timeout_ms ? k->start_ms + c->request_timeout_ms : UINT64_MAX;
    while (k->n_done < k->n) {
        uint64_t now = clock_mono_ms(), wake = UINT64_MAX;
        int rc = k->hooks.pump ? k->hooks.pump(k, now, &wake) : 0;
        if (rc) {
            call_cancel_open(k);
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
            call_cancel_open(k);
            return client_fail(c, rc, rc == EF_ECANCELED ? "cancelled" : "no answer within %u ms",
                               c->request_timeout_ms);
        }
        if (rc == EF_ENOTCONN && call_resend(k, end) == 0)
            continue;
        if (rc)
            return rc;
        rc = call_on_reply(k, env);
        codec_free(&env);
        if (rc)
            return rc;
    }
    return 0;
}

int call_check_args(ef_client_t *c, const char *model, const ef_gen_params *p, ef_result *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !model || !*model || (p && p->stop && p->n_stop && !p->stop[0]))
        return EF_EINVAL;
    return 0;
}

void call_single_init(call_single *s, ef_client_t *c, const char *model, const ef_gen_params *p,
                      const char *prompt, Edgefleet__ChatMessage **messages, size_t n_messages)
{
    memset(s, 0, sizeof *s);
    call_item_new_id(&s->it, 0);
    s->it.deadline_unix_ms = p->deadline_ms ? clock_unix_ms() + p->deadline_ms : 0;
    call_request_fill(&s->r, &s->sp, model, p, &s->it);
    if (prompt)
        s->r.prompt = (char *)prompt;
    s->r.messages = messages;
    s->r.n_messages = n_messages;
    s->k = (call){.c = c, .items = &s->it, .n = 1, .resend = &s->r, .keep_tokens = 1};
    s->k.start_ms = clock_mono_ms();
}

int call_single_send(call_single *s)
{
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &s->r;
    int rc = client_send(s->k.c, &env);
    s->it.sent = rc == 0;
    s->it.attempts = 1;
    return rc;
}

int call_single_outcome(call_single *s, int rc)
{
    ef_result *r = &s->it.result;
    if (rc == 0 && r->status != 0)
        rc = r->status;
    r->elapsed_ms = (double)(clock_mono_ms() - s->k.start_ms);
    if (rc && r->status == 0)
        r->status = rc;
    if (rc && !r->message[0])
        snprintf(r->message, sizeof r->message, "%.*s", (int)sizeof r->message - 1,
                 s->k.c->last_error[0] ? s->k.c->last_error : ef_strerror(rc));
    return rc;
}

/* One blocking generate or chat: start the call, send one Request carrying prompt (when not
 * NULL) or messages, and wait for its end. Fills *out when it is not NULL. */
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
    call_single s;
    call_single_init(&s, c, model, &dp, prompt, messages, n_messages);
    s.k.on_token = on_token;
    s.k.user = user;
    rc = call_single_send(&s);
    if (rc == 0)
        rc = call_wait(&s.k);
    if (rc == 0 && s.it.result.status != 0)
        client_fail(c, s.it.result.status, "%s",
                    s.it.result.message[0] ? s.it.result.message : ef_strerror(s.it.result.status));
    rc = call_single_outcome(&s, rc);
    if (out)
        *out = s.it.result;
    free(s.it.tokens);
    return rc;
}

EF_API int ef_client_generate(ef_client_t *client, const char *model, const char *prompt,
                              const ef_gen_params *params, ef_token_fn on_token, void *user,
                              ef_result *out)
{
    int rc = call_check_args(client, model, params, out);
    if (rc || !prompt)
        return rc ? rc : EF_EINVAL;
    return single_request(client, model, params, prompt, NULL, 0, on_token, user, out);
}

EF_API int ef_client_chat(ef_client_t *client, const char *model, const ef_chat_message *messages,
                          size_t n_messages, const ef_gen_params *params, ef_token_fn on_token,
                          void *user, ef_result *out)
{
    int rc = call_check_args(client, model, params, out);
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
