/* A request's life on the inference thread: render and tokenize its prompt, pick a slot (the
 * one holding its session's KV cache, else the longest cached prefix, else the least recently
 * used), step the backends, turn sampled tokens into streamed text (stop strings, max_tokens,
 * end of generation, full context) and finish with Done or Error. Inference thread only. */
#include "engine_internal.h"

#include "clock.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Weight of the newest step in the tokens/s averages that heartbeats report. */
#define TPS_EWMA_ALPHA 0.2
/* Bytes of prompt text a log line shows when the request allows logging it. */
#define LOG_PROMPT_MAX 200

static double ms_between(uint64_t from_ns, uint64_t to_ns)
{
    return from_ns && to_ns > from_ns ? (double)(to_ns - from_ns) / 1e6 : 0.0;
}

/* Free r's slot (if it has one) and its credit, queue its last event ev (may be NULL), then
 * free r itself. */
static void retire(engine *e, ereq *r, engine_event *ev)
{
    if (r->slot >= 0) {
        emodel *m = &e->models[r->model];
        m->ops->seq_stop(m->b, r->slot);
        m->slot_req[r->slot] = NULL;
        m->slot_used_ns[r->slot] = clock_mono_ns();
        e->n_running--;
    }
    engine_release(e, r, ev);
    engine_request_free(&r);
}

static void fail(engine *e, ereq *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(engine *e, ereq *r, int code, const char *fmt, ...)
{
    char hex[33];
    engine_event *ev = engine_event_new(r, ENGINE_EV_ERROR);
    if (ev) {
        ev->code = code;
        ev->tokens_sent = r->n_sent;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ev->message, sizeof ev->message, fmt, ap);
        va_end(ap);
        log_warn("request %s failed: %s: %s",
                 codec_id_hex((ProtobufCBinaryData){CODEC_REQUEST_ID_LEN, r->id}, hex),
                 ef_err_name(code), ev->message);
    }
    /* The slot is free when the reply is visible: whoever reads it may reuse the credit. */
    retire(e, r, ev);
}

static const char *finish_name(int finish)
{
    switch (finish) {
    case EDGEFLEET__FINISH_REASON__FINISH_STOP:
        return "stop";
    case EDGEFLEET__FINISH_REASON__FINISH_LENGTH:
        return "length";
    case EDGEFLEET__FINISH_REASON__FINISH_CANCELLED:
        return "cancelled";
    default:
        return "context";
    }
}

static void finish(engine *e, ereq *r, int reason)
{
    textout_release *rel = &e->rel;
    textout_release_clear(rel);
    if (textout_take(&r->out, 1, rel) >= 0 &&
        engine_push_chunk(e, r, rel->text ? rel->text : "", rel->len, rel->tokens, rel->n) == 0)
        r->n_sent += (uint32_t)rel->n;
    uint64_t now = clock_mono_ns();
    engine_event *ev = engine_event_new(r, ENGINE_EV_DONE);
    if (ev) {
        ev->finish = reason;
        ev->prompt_tokens = r->n_prompt;
        ev->prompt_evaluated = r->n_eval_done;
        ev->completion_tokens = r->n_sent;
        ev->queue_ms = ms_between(r->t_arrive_ns, r->t_start_ns);
        ev->prompt_ms = ms_between(r->t_start_ns, r->t_prompt_ns ? r->t_prompt_ns : now);
        ev->generation_ms = ms_between(r->t_prompt_ns, now);
        ev->first_token_ms = ms_between(r->t_arrive_ns, r->t_first_ns);
        ev->seed = r->seed;
        char hex[33];
        log_info("request %s done: %s, %u prompt tokens (%u evaluated), %u tokens, %.0f ms",
                 codec_id_hex((ProtobufCBinaryData){CODEC_REQUEST_ID_LEN, r->id}, hex),
                 finish_name(reason), r->n_prompt, r->n_eval_done, r->n_sent,
                 ms_between(r->t_arrive_ns, now));
    }
    retire(e, r, ev);
}

/* Prompt text -> tokens (plus any resumed tokens), checked against the slot context. */
static int prepare(engine *e, ereq *r, int32_t **tokens, size_t *n, char *why, size_t why_len)
{
    emodel *m = &e->models[r->model];
    char *rendered = NULL;
    const char *text = r->prompt;
    size_t len = r->prompt_len;
    if (r->n_msgs) {
        if (m->ops->render_chat(m->b, r->msgs, r->n_msgs, &rendered) != 0) {
            snprintf(why, why_len, "model \"%s\" has no usable chat template", m->name);
            return EF_EINVAL;
        }
        text = rendered;
        len = strlen(rendered);
    }
    int rc = m->ops->tokenize(m->b, text, len, tokens, n);
    free(rendered);
    if (rc != 0) {
        snprintf(why, why_len, "the prompt could not be tokenized");
        return rc;
    }
    if (r->n_resume) {
        /* Each id was checked against the vocabulary in engine_submit (engine_request.c). */
        int32_t *all = realloc(*tokens, (*n + r->n_resume) * sizeof *all);
        if (!all)
            return EF_ENOMEM;
        memcpy(all + *n, r->resume, r->n_resume * sizeof *all);
        *tokens = all;
        *n += r->n_resume;
    }
    if (*n == 0) {
        snprintf(why, why_len, "the prompt has no tokens");
        return EF_ETOKENIZE;
    }
    if (*n >= m->desc.n_ctx) {
        snprintf(why, why_len, "prompt of %zu tokens; the context holds %u per slot", *n,
                 m->desc.n_ctx);
        return EF_ECONTEXT;
    }
    return 0;
}

/* Rank of a free slot for r, higher is better: its own session's cache first; then slots
 * holding no session, by cached prefix, then least recently used; slots that hold another
 * session's cache last, so a chat's next turn still finds its cache. */
static int better_slot(const emodel *m, int i, size_t prefix_i, int best, size_t prefix_best)
{
    int hold_i = m->slot_session[i] != NULL, hold_b = m->slot_session[best] != NULL;
    if (hold_i != hold_b)
        return hold_i < hold_b;
    if (!hold_i && prefix_i != prefix_best)
        return prefix_i > prefix_best;
    return m->slot_used_ns[i] < m->slot_used_ns[best];
}

static int pick_slot(emodel *m, const ereq *r, const int32_t *tokens, size_t n)
{
    int best = -1;
    size_t best_prefix = 0;
    for (uint32_t i = 0; i < m->desc.n_slots; i++) {
        if (m->slot_req[i])
            continue;
        if (r->session && m->slot_session[i] && strcmp(m->slot_session[i], r->session) == 0)
            return (int)i;
        size_t prefix = m->ops->cached_prefix(m->b, (int)i, tokens, n);
        if (best < 0 || better_slot(m, (int)i, prefix, best, best_prefix)) {
            best = (int)i;
            best_prefix = prefix;
        }
    }
    return best;
}

/* n_eval of the n_prompt + n_resume tokens the sequence started with were evaluated now. */
static void log_start(const emodel *m, const ereq *r, uint32_t n_eval)
{
    uint32_t n_all = r->n_prompt + (uint32_t)r->n_resume;
    char hex[33];
    codec_id_hex((ProtobufCBinaryData){CODEC_REQUEST_ID_LEN, (uint8_t *)r->id}, hex);
    log_info("request %s model \"%s\" slot %d: %u prompt tokens, %zu resumed (%u cached), max %u "
             "tokens%s%s",
             hex, m->name, r->slot, r->n_prompt, r->n_resume, n_all > n_eval ? n_all - n_eval : 0,
             r->max_tokens, r->session ? ", session " : "", r->session ? r->session : "");
    if (r->log_prompt)
        log_info("request %s prompt: %.*s", hex, LOG_PROMPT_MAX,
                 r->prompt ? r->prompt : (r->n_msgs ? r->msgs[r->n_msgs - 1].content : ""));
}

static void start_one(engine *e, ereq *r)
{
    emodel *m = &e->models[r->model];
    int32_t *tokens = NULL;
    size_t n = 0;
    char why[200] = "";
    int rc = prepare(e, r, &tokens, &n, why, sizeof why);
    int slot = rc == 0 ? pick_slot(m, r, tokens, n) : -1;
    uint32_t n_eval = 0;
    if (rc == 0 && slot < 0) {
        rc = EF_EBUSY; /* cannot happen while credits hold; refuse rather than assert */
        snprintf(why, sizeof why, "no free slot");
    }
    if (rc == 0 && (rc = m->ops->seq_start(m->b, slot, tokens, n, &r->sampling, &n_eval)) != 0)
        snprintf(why, sizeof why, "the sequence could not start");
    free(tokens);
    if (rc != 0) {
        fail(e, r, rc, "%s", why);
        return;
    }
    r->slot = slot;
    m->slot_req[slot] = r;
    free(m->slot_session[slot]);
    m->slot_session[slot] = r->session ? strdup(r->session) : NULL;
    e->n_running++;
    textout_init(&r->out, (const char *const *)r->stop, r->n_stop);
    r->n_prompt = (uint32_t)(n - r->n_resume); /* the resumed tokens are counted as generated */
    r->n_sent = r->n_gen = (uint32_t)r->n_resume;
    r->t_start_ns = clock_mono_ns();
    log_start(m, r, n_eval);
    if (r->n_gen >= r->max_tokens)
        finish(e, r, EDGEFLEET__FINISH_REASON__FINISH_LENGTH);
}

void engine_run_start(engine *e, ereq *list)
{
    while (list) {
        ereq *r = list;
        list = r->next;
        r->next = NULL;
        start_one(e, r);
    }
}

static ereq *find_running(engine *e, const uint8_t *id)
{
    for (size_t i = 0; i < e->n_models; i++)
        for (uint32_t s = 0; s < e->models[i].desc.n_slots; s++) {
            ereq *r = e->models[i].slot_req[s];
            if (r && memcmp(r->id, id, CODEC_REQUEST_ID_LEN) == 0)
                return r;
        }
    return NULL;
}

void engine_run_cancels(engine *e, ecancel *list)
{
    while (list) {
        ecancel *c = list;
        list = c->next;
        ereq *r = find_running(e, c->id);
        if (r)
            finish(e, r, EDGEFLEET__FINISH_REASON__FINISH_CANCELLED);
        free(c);
    }
}

/* One sampled token (or prompt progress) for request r. */
static void handle_item(engine *e, emodel *m, ereq *r, const backend_step_item *it)
{
    uint64_t now = clock_mono_ns();
    r->n_eval_done += it->n_prompt;
    if (it->context_full) {
        finish(e, r, EDGEFLEET__FINISH_REASON__FINISH_CONTEXT);
        return;
    }
    if (it->token < 0)
        return;
    if (!r->t_prompt_ns)
        r->t_prompt_ns = now;
    if (it->eog) {
        finish(e, r, EDGEFLEET__FINISH_REASON__FINISH_STOP);
        return;
    }
    if (!r->t_first_ns)
        r->t_first_ns = now;
    r->n_gen++;
    char piece[256];
    int len = m->ops->piece(m->b, it->token, piece, sizeof piece);
    if (len < 0 || textout_push(&r->out, it->token, piece, (size_t)len) != 0) {
        fail(e, r, EF_EINTERNAL, "token %d could not be rendered", it->token);
        return;
    }
    textout_release *rel = &e->rel;
    textout_release_clear(rel);
    int stopped = textout_take(&r->out, 0, rel);
    if (stopped >= 0) {
        /* A chunk that cannot be queued would leave a gap in the stream: fail instead. */
        if (engine_push_chunk(e, r, rel->text ? rel->text : "", rel->len, rel->tokens, rel->n))
            stopped = EF_ENOMEM;
        else
            r->n_sent += (uint32_t)rel->n;
    }
    if (stopped < 0)
        fail(e, r, EF_ENOMEM, "out of memory");
    else if (stopped == 1)
        finish(e, r, EDGEFLEET__FINISH_REASON__FINISH_STOP);
    else if (r->n_gen >= r->max_tokens)
        finish(e, r, EDGEFLEET__FINISH_REASON__FINISH_LENGTH);
}

static void update_rates(engine *e, uint32_t prompt, uint32_t gen, uint64_t ns)
{
    if (ns == 0)
        return;
    double s = (double)ns / 1e9;
    pthread_mutex_lock(&e->mu);
    if (prompt)
        e->prompt_tps += TPS_EWMA_ALPHA * ((double)prompt / s - e->prompt_tps);
    if (gen) {
        e->gen_tps += TPS_EWMA_ALPHA * ((double)gen / s - e->gen_tps);
        /* Each generating sequence got one token from this step, whatever else shared it. */
        e->slot_gen_tps += TPS_EWMA_ALPHA * (1.0 / s - e->slot_gen_tps);
    }
    pthread_mutex_unlock(&e->mu);
}

static void step_model(engine *e, emodel *m)
{
    backend_step_item items[BACKEND_MAX_SLOTS];
    size_t n = 0;
    uint64_t t0 = clock_mono_ns();
    m->ops->step(m->b, items, BACKEND_MAX_SLOTS, &n);
    uint64_t dt = clock_mono_ns() - t0;
    uint32_t prompt = 0, gen = 0;
    for (size_t i = 0; i < n; i++) {
        ereq *r = m->slot_req[items[i].slot];
        prompt += items[i].n_prompt;
        gen += items[i].token >= 0;
        if (!r)
            continue;
        /* A decode failure is this request's alone: the backend stopped its slot only. */
        if (items[i].error)
            fail(e, r, EF_EINTERNAL,
                 "model \"%s\" could not decode this request's tokens (backend code %d)", m->name,
                 items[i].error);
        else
            handle_item(e, m, r, &items[i]);
    }
    update_rates(e, prompt, gen, dt);
}

void engine_run_steps(engine *e)
{
    uint64_t now_unix = clock_unix_ms();
    for (size_t i = 0; i < e->n_models; i++) {
        emodel *m = &e->models[i];
        int running = 0;
        for (uint32_t s = 0; s < m->desc.n_slots; s++) {
            ereq *r = m->slot_req[s];
            if (r && r->deadline_unix_ms && now_unix > r->deadline_unix_ms)
                fail(e, r, EF_EDEADLINE, "deadline passed after %u tokens", r->n_sent);
            else if (r)
                running = 1;
        }
        if (running)
            step_model(e, m);
    }
}

void engine_run_drop_all(engine *e)
{
    for (size_t i = 0; i < e->n_models; i++)
        for (uint32_t s = 0; s < e->models[i].desc.n_slots; s++)
            if (e->models[i].slot_req[s])
                retire(e, e->models[i].slot_req[s], NULL);
}
