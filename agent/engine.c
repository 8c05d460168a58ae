/* The engine's shell: loading models, the inference thread's main loop, and the two queues that
 * are its only contact with other threads (requests and cancels in, events out, both under one
 * mutex). What happens to a request on the inference thread is in engine_run.c. */
#include "engine_internal.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Wake the loop if something must go now, the interval has passed, or the engine is about to
 * sleep (nothing may wait unseen in the out queue while no step is coming). */
static void maybe_notify(engine *e)
{
    if (!e->events_pushed || !e->notify)
        return;
    uint64_t now = clock_mono_ns();
    if (e->events_urgent || e->n_running == 0 ||
        now - e->last_notify_ns >= ENGINE_NOTIFY_INTERVAL_NS) {
        e->notify(e->notify_user);
        e->last_notify_ns = now;
        e->events_pushed = 0;
        e->events_urgent = 0;
    }
}

/* Take the incoming queues (under mu, held by the caller) and run one turn with them. */
static void turn_locked(engine *e)
{
    ereq *incoming = e->in_head;
    ecancel *cancels = e->cancels;
    e->in_head = e->in_tail = NULL;
    e->n_in = 0;
    e->cancels = NULL;
    pthread_mutex_unlock(&e->mu);

    /* Start before cancelling, so a request cancelled right after it was sent still ends
     * with its Done{CANCELLED}. */
    engine_run_start(e, incoming);
    engine_run_cancels(e, cancels);
    engine_run_steps(e);
    maybe_notify(e);
}

static void *engine_thread(void *arg)
{
    engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stopping && !e->in_head && !e->cancels && e->n_running == 0)
            pthread_cond_wait(&e->wake, &e->mu);
        if (e->stopping) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        turn_locked(e);
    }
    engine_run_drop_all(e);
    return NULL;
}

int engine_pump(engine *e)
{
    if (e->thread_started)
        return 0; /* the thread steps it; two steppers would race on the backends */
    pthread_mutex_lock(&e->mu);
    turn_locked(e);
    pthread_mutex_lock(&e->mu);
    int busy = e->live != NULL;
    pthread_mutex_unlock(&e->mu);
    return busy;
}

static int load_models(engine *e, const engine_params *p, ef_errmsg *em)
{
    e->models = calloc(p->n_models, sizeof *e->models);
    if (!e->models)
        return errmsg_set(em, EF_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_models; i++) {
        emodel *m = &e->models[i];
        const backend_params *bp = &p->models[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(e->models[j].name, bp->name) == 0)
                return errmsg_set(em, EF_EDUPLICATE, "two models named \"%s\"", bp->name);
        m->name = strdup(bp->name);
        if (!m->name)
            return errmsg_set(em, EF_ENOMEM, "out of memory");
        e->n_models++;
        m->ops = backend_ops_for(bp->kind);
        int rc = m->ops->load(bp, &m->b, em);
        if (rc != 0)
            return rc;
        m->ops->describe(m->b, &m->desc);
    }
    return 0;
}

engine *engine_new(const engine_params *p, int *err, ef_errmsg *em)
{
    *err = 0;
    if (!p->n_models) {
        *err = errmsg_set(em, EF_EINVAL, "no model to serve");
        return NULL;
    }
    engine *e = calloc(1, sizeof *e);
    if (!e) {
        *err = errmsg_set(em, EF_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_cond_init(&e->ev_ready, NULL);
    e->notify = p->notify;
    e->notify_user = p->notify_user;
    int rc = load_models(e, p, em);
    if (rc == 0 && p->manual)
        return e;
    if (rc == 0 && pthread_create(&e->thread, NULL, engine_thread, e) != 0)
        rc = errmsg_set(em, EF_EINTERNAL, "cannot start the inference thread: %s", strerror(errno));
    if (rc != 0) {
        *err = rc;
        engine_destroy(&e);
        return NULL;
    }
    e->thread_started = 1;
    return e;
}

void engine_destroy(engine **e_p)
{
    if (!e_p || !*e_p)
        return;
    engine *e = *e_p;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stopping = 1;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    } else {
        engine_run_drop_all(e); /* a manual engine's running requests (the thread does this) */
    }
    while (e->in_head) {
        ereq *r = e->in_head;
        e->in_head = r->next;
        engine_request_free(&r);
    }
    while (e->cancels) {
        ecancel *c = e->cancels;
        e->cancels = c->next;
        free(c);
    }
    for (engine_event *ev = engine_take_events(e); ev;) {
        engine_event *next = ev->next;
        engine_event_free(&ev);
        ev = next;
    }
    for (size_t i = 0; i < e->n_models; i++) {
        emodel *m = &e->models[i];
        if (m->b)
            m->ops->destroy(&m->b);
        for (int s = 0; s < BACKEND_MAX_SLOTS; s++)
            free(m->slot_session[s]);
        free(m->name);
    }
    free(e->models);
    textout_release_free(&e->rel);
    pthread_cond_destroy(&e->ev_ready);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->mu);
    free(e);
    *e_p = NULL;
}

static const ereq *find_live(const engine *e, const uint8_t *id)
{
    for (const ereq *r = e->live; r; r = r->live_next)
        if (memcmp(r->id, id, CODEC_REQUEST_ID_LEN) == 0)
            return r;
    return NULL;
}

int engine_submit(engine *e, const Edgefleet__Request *req, ef_errmsg *em)
{
    size_t model;
    int rc = engine_request_check(e, req, &model, em);
    if (rc != 0)
        return rc;
    ereq *r = engine_request_copy(req, model);
    if (!r)
        return errmsg_set(em, EF_ENOMEM, "out of memory");
    emodel *m = &e->models[model];
    pthread_mutex_lock(&e->mu);
    const ereq *old = find_live(e, r->id);
    int stale = old && old->attempt != r->attempt;
    if (old && !stale)
        rc = errmsg_set(em, EF_EDUPLICATE, "request already in flight");
    else if (stale)
        rc = errmsg_set(em, EF_EBUSY, "attempt %u of this request is still stopping here",
                        old->attempt);
    else if (m->reserved >= m->desc.n_slots)
        rc = errmsg_set(em, EF_EBUSY, "model \"%s\": all %u slots busy", m->name, m->desc.n_slots);
    if (rc == 0) {
        m->reserved++;
        r->live_next = e->live;
        e->live = r;
        if (e->in_tail)
            e->in_tail->next = r;
        else
            e->in_head = r;
        e->in_tail = r;
        e->n_in++;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->mu);
    if (stale) /* the coordinator gave that attempt up: stop it, then the new one fits */
        engine_cancel(e, r->id);
    if (rc != 0)
        engine_request_free(&r);
    return rc;
}

void engine_cancel(engine *e, const uint8_t id[CODEC_REQUEST_ID_LEN])
{
    ecancel *c = calloc(1, sizeof *c);
    if (!c)
        return; /* the request then runs to its end: a lost cancel costs only time */
    memcpy(c->id, id, CODEC_REQUEST_ID_LEN);
    pthread_mutex_lock(&e->mu);
    c->next = e->cancels;
    e->cancels = c;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
}

engine_event *engine_event_new(const ereq *r, engine_event_kind kind)
{
    engine_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->kind = kind;
    memcpy(ev->request_id, r->id, CODEC_REQUEST_ID_LEN);
    ev->attempt = r->attempt;
    ev->batch_index = r->batch_index;
    ev->deadline_unix_ms = r->deadline_unix_ms;
    return ev;
}

static void push_locked(engine *e, engine_event *ev)
{
    ev->next = NULL;
    if (e->ev_tail)
        e->ev_tail->next = ev;
    else
        e->ev_head = ev;
    e->ev_tail = ev;
    pthread_cond_broadcast(&e->ev_ready);
}

void engine_release(engine *e, ereq *r, engine_event *ev)
{
    pthread_mutex_lock(&e->mu);
    e->models[r->model].reserved--;
    for (ereq **pp = &e->live; *pp; pp = &(*pp)->live_next) {
        if (*pp == r) {
            *pp = r->live_next;
            break;
        }
    }
    if (ev)
        push_locked(e, ev);
    pthread_mutex_unlock(&e->mu);
    if (ev) {
        e->events_pushed = 1;
        e->events_urgent = 1; /* Done and Error end a request: the client waits for them */
    }
}

bool engine_idle(engine *e)
{
    bool idle = true;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_models; i++)
        idle &= e->models[i].reserved == 0;
    idle &= e->ev_head == NULL;
    pthread_mutex_unlock(&e->mu);
    return idle;
}

static int append(engine_event *ev, const char *text, size_t len, const int32_t *tokens, size_t n)
{
    if (textout_grow((void **)&ev->text, &ev->text_cap, ev->text_len + len + 1, 1) != 0)
        return EF_ENOMEM;
    memcpy(ev->text + ev->text_len, text, len);
    ev->text_len += len;
    ev->text[ev->text_len] = '\0';
    if (n) {
        if (textout_grow((void **)&ev->tokens, &ev->tokens_cap, ev->n_tokens + n, sizeof *tokens) !=
            0)
            return EF_ENOMEM;
        memcpy(ev->tokens + ev->n_tokens, tokens, n * sizeof *tokens);
        ev->n_tokens += n;
    }
    return 0;
}

int engine_push_chunk(engine *e, ereq *r, const char *text, size_t len, const int32_t *tokens,
                      size_t n)
{
    if (len == 0 && n == 0)
        return 0;
    engine_event *ev = NULL;
    int rc;
    if (!r->pending_chunk)
        e->events_urgent = 1; /* r's first chunk */
    pthread_mutex_lock(&e->mu);
    if (r->pending_chunk && r->pending_gen == e->ev_gen) {
        /* Coalesce: the loop has not taken r's last chunk yet, so this one rides along. */
        rc = append(r->pending_chunk, text, len, tokens, n);
    } else {
        /* A new event only here: while the loop has not taken r's last chunk (most tokens of a
         * fast model), tokens append to it, and its buffers (like the textout's and e->rel)
         * grow by doubling, so a token allocates nothing of its own. */
        ev = engine_event_new(r, ENGINE_EV_CHUNK);
        rc = ev ? append(ev, text, len, tokens, n) : EF_ENOMEM;
        if (rc == 0) {
            ev->seq = r->n_sent;
            push_locked(e, ev);
            r->pending_chunk = ev;
            r->pending_gen = e->ev_gen;
            ev = NULL;
            e->events_pushed = 1;
        }
    }
    pthread_mutex_unlock(&e->mu);
    engine_event_free(&ev);
    return rc;
}

engine_event *engine_take_events(engine *e)
{
    pthread_mutex_lock(&e->mu);
    engine_event *head = e->ev_head;
    e->ev_head = e->ev_tail = NULL;
    e->ev_gen++;
    pthread_mutex_unlock(&e->mu);
    return head;
}

engine_event *engine_wait_event(engine *e, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->mu);
    while (!e->ev_head)
        if (pthread_cond_timedwait(&e->ev_ready, &e->mu, &until) == ETIMEDOUT)
            break;
    engine_event *ev = e->ev_head;
    if (ev) {
        e->ev_head = ev->next;
        if (!e->ev_head)
            e->ev_tail = NULL;
        ev->next = NULL;
        e->ev_gen++; /* a taken chunk may no longer grow */
    }
    pthread_mutex_unlock(&e->mu);
    return ev;
}

void engine_event_free(engine_event **ev_p)
{
    if (!ev_p || !*ev_p)
        return;
    free((*ev_p)->text);
    free((*ev_p)->tokens);
    free(*ev_p);
    *ev_p = NULL;
}

size_t engine_n_models(const engine *e) { return e->n_models; }
const char *engine_model_name(const engine *e, size_t i) { return e->models[i].name; }
void engine_model_desc(const engine *e, size_t i, backend_desc *out) { *out = e->models[i].desc; }

void engine_get_stats(engine *e, engine_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_models && i < 16; i++) {
        snprintf(out->models[i].name, sizeof out->models[i].name, "%s", e->models[i].name);
        out->models[i].busy_slots = e->models[i].reserved;
        out->models[i].total_slots = e->models[i].desc.n_slots;
        out->n_models++;
    }
    out->queued = e->n_in;
    out->prompt_tps = e->prompt_tps;
    out->gen_tps = e->gen_tps;
    out->slot_gen_tps = e->slot_gen_tps;
    pthread_mutex_unlock(&e->mu);
}
