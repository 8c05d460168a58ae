/* Checking a Request from the network and copying what the engine keeps of it. Runs on the
 * caller's thread (the agent's loop) inside engine_submit, before the request is queued: an
 * absurd request is refused here, with a message saying which field, and costs nothing more. */
#include "engine_internal.h"

#include "clock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Beyond these a sampling parameter is a mistake, not a choice. */
#define MAX_TEMPERATURE    100.0f
#define MAX_REPEAT_PENALTY 100.0f
/* More resumed tokens than this cannot fit any context we serve. */
#define MAX_RESUME_TOKENS 65536u

static int check_sampling(const Edgefleet__SamplingParams *s, ef_errmsg *em)
{
    if (!s)
        return 0;
    if (!isfinite(s->temperature) || s->temperature < 0.0f || s->temperature > MAX_TEMPERATURE)
        return errmsg_set(em, EF_EINVAL, "temperature %g outside [0, %g]", (double)s->temperature,
                          (double)MAX_TEMPERATURE);
    if (s->top_k < 0)
        return errmsg_set(em, EF_EINVAL, "top_k %d is negative", s->top_k);
    if (!isfinite(s->top_p) || s->top_p < 0.0f || s->top_p > 1.0f)
        return errmsg_set(em, EF_EINVAL, "top_p %g outside [0, 1]", (double)s->top_p);
    if (!isfinite(s->min_p) || s->min_p < 0.0f || s->min_p > 1.0f)
        return errmsg_set(em, EF_EINVAL, "min_p %g outside [0, 1]", (double)s->min_p);
    if (!isfinite(s->repeat_penalty) || s->repeat_penalty < 0.0f ||
        s->repeat_penalty > MAX_REPEAT_PENALTY)
        return errmsg_set(em, EF_EINVAL, "repeat_penalty %g outside [0, %g]",
                          (double)s->repeat_penalty, (double)MAX_REPEAT_PENALTY);
    return 0;
}

static int check_text(const Edgefleet__Request *req, ef_errmsg *em)
{
    size_t bytes = req->prompt ? strlen(req->prompt) : 0;
    if (req->n_messages > ENGINE_MAX_MESSAGES)
        return errmsg_set(em, EF_EINVAL, "%zu chat messages (at most %d)", req->n_messages,
                          ENGINE_MAX_MESSAGES);
    for (size_t i = 0; i < req->n_messages; i++) {
        const Edgefleet__ChatMessage *m = req->messages[i];
        if (!m->role || !*m->role || !m->content)
            return errmsg_set(em, EF_EINVAL, "chat message %zu has no role", i);
        bytes += strlen(m->content) + strlen(m->role);
    }
    if (bytes > ENGINE_MAX_PROMPT_BYTES)
        return errmsg_set(em, EF_ETOOBIG, "prompt of %zu bytes (at most %u)", bytes,
                          ENGINE_MAX_PROMPT_BYTES);
    if (req->n_messages == 0 && (!req->prompt || !*req->prompt))
        return errmsg_set(em, EF_EINVAL, "empty prompt and no chat messages");
    if (req->n_messages > 0 && req->prompt && *req->prompt)
        return errmsg_set(em, EF_EINVAL, "both a raw prompt and chat messages");
    return 0;
}

/* Resumed token ids come from a peer and go into the batch as they are: an id outside the
 * vocabulary makes llama_decode refuse the whole batch, every other request's tokens with it.
 * Checked here, on the caller's thread, because the vocabulary size is known from load on (the
 * model's desc is read-only after engine_new): the request is refused before it takes a credit
 * or reaches the inference thread, and the answer is synchronous. */
static int check_resume(const Edgefleet__Request *req, uint32_t n_vocab, ef_errmsg *em)
{
    if (req->n_resume_tokens > MAX_RESUME_TOKENS)
        return errmsg_set(em, EF_EINVAL, "%zu resume tokens (at most %u)", req->n_resume_tokens,
                          MAX_RESUME_TOKENS);
    for (size_t i = 0; i < req->n_resume_tokens; i++) {
        int32_t t = req->resume_tokens[i];
        if (t < 0 || (uint32_t)t >= n_vocab)
            return errmsg_set(em, EF_EINVAL,
                              "resume token %zu is %d; the model's vocabulary has %u tokens", i, t,
                              n_vocab);
    }
    return 0;
}

int engine_request_check(const engine *e, const Edgefleet__Request *req, size_t *model,
                         ef_errmsg *em)
{
    if (req->request_id.len != CODEC_REQUEST_ID_LEN)
        return errmsg_set(em, EF_EINVAL, "request id of %zu bytes (must be %u)",
                          req->request_id.len, CODEC_REQUEST_ID_LEN);
    *model = e->n_models;
    for (size_t i = 0; req->model && i < e->n_models; i++)
        if (strcmp(e->models[i].name, req->model) == 0)
            *model = i;
    if (*model == e->n_models)
        return errmsg_set(em, EF_EUNKNOWNMODEL, "unknown model \"%.64s\"",
                          req->model ? req->model : "");
    if (req->max_tokens < 1)
        return errmsg_set(em, EF_EINVAL, "max_tokens must be at least 1");
    if (req->n_stop > ENGINE_MAX_STOP)
        return errmsg_set(em, EF_EINVAL, "%zu stop strings (at most %d)", req->n_stop,
                          ENGINE_MAX_STOP);
    for (size_t i = 0; i < req->n_stop; i++) {
        size_t len = strlen(req->stop[i]);
        if (len == 0 || len > ENGINE_MAX_STOP_LEN)
            return errmsg_set(em, EF_EINVAL, "stop string %zu is %zu bytes (1 to %d)", i, len,
                              ENGINE_MAX_STOP_LEN);
    }
    if (req->session_id && strlen(req->session_id) > ENGINE_MAX_SESSION_LEN)
        return errmsg_set(em, EF_EINVAL, "session id longer than %d bytes", ENGINE_MAX_SESSION_LEN);
    int rc = check_resume(req, e->models[*model].desc.n_vocab, em);
    if (rc == 0)
        rc = check_text(req, em);
    return rc != 0 ? rc : check_sampling(req->sampling, em);
}

static uint64_t pick_seed(uint64_t asked)
{
    if (asked)
        return asked;
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = clock_mono_ns();
    /* Keep it in 32 bits: that is what the sampler takes, and the report must reproduce it. */
    s &= 0x7fffffffu;
    return s ? s : 1;
}

static void copy_sampling(ereq *r, const Edgefleet__SamplingParams *s)
{
    if (s) {
        r->sampling.temperature = s->temperature;
        r->sampling.top_k = s->top_k;
        r->sampling.top_p = s->top_p;
        r->sampling.min_p = s->min_p;
        r->sampling.repeat_penalty = s->repeat_penalty;
        r->sampling.repeat_last_n = s->repeat_last_n;
    }
    r->seed = pick_seed(s ? s->seed : 0);
    /* llama.cpp reads 0xFFFFFFFF as "random": fold the 64-bit seed away from it. */
    uint32_t folded = (uint32_t)(r->seed ^ (r->seed >> 32));
    r->sampling.seed = folded == 0xFFFFFFFFu ? 0xFFFFFFFEu : folded;
}

static int copy_text(ereq *r, const Edgefleet__Request *req)
{
    if (req->n_messages == 0) {
        r->prompt_len = strlen(req->prompt);
        r->prompt = strdup(req->prompt);
        return r->prompt ? 0 : EF_ENOMEM;
    }
    r->msgs = calloc(req->n_messages, sizeof *r->msgs);
    if (!r->msgs)
        return EF_ENOMEM;
    r->n_msgs = req->n_messages;
    for (size_t i = 0; i < req->n_messages; i++) {
        r->msgs[i].role = strdup(req->messages[i]->role);
        r->msgs[i].content = strdup(req->messages[i]->content);
        if (!r->msgs[i].role || !r->msgs[i].content)
            return EF_ENOMEM;
    }
    return 0;
}

ereq *engine_request_copy(const Edgefleet__Request *req, size_t model)
{
    ereq *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    memcpy(r->id, req->request_id.data, CODEC_REQUEST_ID_LEN);
    r->attempt = req->attempt;
    r->batch_index = req->batch_index;
    r->deadline_unix_ms = req->deadline_unix_ms;
    r->model = model;
    r->max_tokens = req->max_tokens;
    r->log_prompt = req->log_prompt;
    r->slot = -1;
    r->t_arrive_ns = clock_mono_ns();
    copy_sampling(r, req->sampling);
    int rc = copy_text(r, req);
    if (rc == 0 && req->session_id && *req->session_id && !(r->session = strdup(req->session_id)))
        rc = EF_ENOMEM;
    if (rc == 0 && req->n_stop && !(r->stop = calloc(req->n_stop, sizeof *r->stop)))
        rc = EF_ENOMEM;
    for (size_t i = 0; rc == 0 && i < req->n_stop; i++, r->n_stop++)
        if (!(r->stop[i] = strdup(req->stop[i])))
            rc = EF_ENOMEM;
    if (rc == 0 && req->n_resume_tokens) {
        r->resume = malloc(req->n_resume_tokens * sizeof *r->resume);
        if (!r->resume)
            rc = EF_ENOMEM;
        else
            memcpy(r->resume, req->resume_tokens, req->n_resume_tokens * sizeof *r->resume);
        r->n_resume = req->n_resume_tokens;
    }
    if (rc != 0)
        engine_request_free(&r);
    return r;
}

void engine_request_free(ereq **r_p)
{
    if (!r_p || !*r_p)
        return;
    ereq *r = *r_p;
    free(r->prompt);
    for (size_t i = 0; i < r->n_msgs; i++) {
        free((char *)r->msgs[i].role);
        free((char *)r->msgs[i].content);
    }
    free(r->msgs);
    for (size_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->session);
    free(r->resume);
    textout_free(&r->out);
    free(r);
    *r_p = NULL;
}
