/* Requests from admission to their end (see request.h): admit a client's request or refuse it
 * at once ("fleet busy"), place queued requests on free credits and send them, fail those whose
 * deadline passes in the queue (never sent) or whose model no agent serves any more, cancel on
 * the owner's word, and end every request through request_end. Agents' replies are in
 * request_agent.c. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Decisions taken per scheduler_dispatch call; more are fetched while it fills them all. */
#define REQUEST_BATCH 32
/* Agents whose link broke during one placement round (their sends fail with EF_ENOTCONN). */
#define REQUEST_BROKEN_MAX 8

static void arm_deadline_timer(coord *c);

/* A wall-clock deadline from the wire on our monotonic clock (the scheduler's). 0 = none. */
static uint64_t mono_deadline(uint64_t deadline_unix_ms, uint64_t now_mono)
{
    if (deadline_unix_ms == 0)
        return 0;
    uint64_t now_unix = clock_unix_ms();
    if (deadline_unix_ms <= now_unix)
        return now_mono ? now_mono : 1; /* already passed: the scheduler refuses it */
    return now_mono + (deadline_unix_ms - now_unix);
}

static void log_request(const flight *f, const char *what, const char *detail)
{
    char hex[33];
    const Edgefleet__Request *r = f->request;
    codec_id_hex(r->request_id, hex);
    log_info("request %s (%s, model %s, batch index %u) %s%s%s", hex, f->client_key, r->model,
             r->batch_index, what, detail ? " " : "", detail ? detail : "");
}

/* ---- the end ------------------------------------------------------------------------------- */

void request_end(coord *c, flight **f_p, const request_outcome *how)
{
    flight *f = *f_p;
    char hex[33], took[48];
    codec_id_hex(f->request->request_id, hex);
    snprintf(took, sizeof took, "%llu ms", (unsigned long long)(clock_mono_ms() - f->received_ms));
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    Edgefleet__Done done = EDGEFLEET__DONE__INIT;
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    char *agents[FLIGHT_RESUMES_MAX + 1];
    if (how->done) {
        done = *how->done; /* shallow: borrowed fields, packed only */
        done.agent_name = (char *)(how->agent ? how->agent : "");
        done.batch_index = f->request->batch_index;
        done.attempt = f->attempt;
        done.resumes = f->resumes;
        for (uint32_t i = 0; i < f->n_agents; i++)
            agents[i] = f->agents[i];
        done.agents = agents;
        done.n_agents = f->n_agents;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
        env.done = &done;
        log_info("request %s (%s) done on agent %s: finish %d, %zu tokens in %s", hex,
                 f->client_key, done.agent_name, (int)done.finish, f->n_tokens, took);
    } else {
        e.request_id = f->request->request_id;
        e.code = how->code;
        e.message = (char *)(how->message ? how->message : ef_strerror(how->code));
        e.retry_after_ms = how->retry_after_ms;
        e.batch_index = f->request->batch_index;
        e.tokens_sent = (uint32_t)f->n_tokens; /* what we relayed, not what an agent claims */
        env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
        env.error = &e;
        if (how->code == EF_ECANCELED || how->code == EF_EBUSY)
            log_info("request %s ended: %s: %s (after %s)", hex, ef_err_name(how->code), e.message,
                     took);
        else
            log_warn("request %s failed: %s: %s (after %s, %zu tokens sent)", hex,
                     ef_err_name(how->code), e.message, took, f->n_tokens);
    }
    metrics_outcome outcome = METRICS_FAILED;
    if (how->done)
        outcome = how->done->finish == EDGEFLEET__FINISH_REASON__FINISH_CANCELLED
                      ? METRICS_CANCELLED
                      : METRICS_DONE;
    else if (how->code == EF_EBUSY)
        outcome = METRICS_BUSY;
    else if (how->code == EF_ECANCELED)
        outcome = METRICS_CANCELLED;
    metrics_request_end(c->metrics, f->request->model, outcome,
                        (double)(clock_mono_ms() - f->received_ms) / 1000.0, f->n_tokens);
    delivery_end(c, f_p, &env);
}

/* A cancel the client asked for, for a request that never reached an agent. */
static void end_cancelled(coord *c, flight **f_p)
{
    Edgefleet__Done done = EDGEFLEET__DONE__INIT;
    done.request_id = (*f_p)->request->request_id;
    done.finish = EDGEFLEET__FINISH_REASON__FINISH_CANCELLED;
    request_end(c, f_p, &(request_outcome){.done = &done});
}

static void end_error(coord *c, flight **f_p, int code, uint32_t retry_after, const char *msg)
{
    request_end(c, f_p,
                &(request_outcome){.code = code, .retry_after_ms = retry_after, .message = msg});
}

void request_abort(coord *c, flight *f, int code, const char *message)
{
    sched_request *sr = scheduler_find(c->scheduler, f->request->request_id.data);
    if (!sr || sr->payload != f)
        return;
    if (sr->state == SCHED_INFLIGHT) { /* the agent's Done{CANCELLED} ends it */
        if (f->state == FLIGHT_RUNNING) {
            f->state = FLIGHT_ABORTING;
            f->end_code = code;
            snprintf(f->end_message, sizeof f->end_message, "%s", message);
            agents_link_cancel(c, sr->agent, f->request->request_id);
        }
        return;
    }
    sched_request out;
    if (scheduler_cancel(c->scheduler, sr->ticket, &out) == 0)
        end_error(c, &f, code, 0, message);
}

/* ---- placement ----------------------------------------------------------------------------- */

/* Send a placed request to its agent. Returns 0, or EF_ENOTCONN when the agent's link is gone
 * (the request is back in its queue). Other failures end the request with an error. */
static int send_placed(coord *c, const sched_dispatch *d, uint64_t now)
{
    flight *f = d->payload;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = f->request;
    int rc = agents_link_send(c, d->agent, &env);
    const registry_agent *a = registry_get(c->registry, d->agent);
    char what[96];
    if (rc == 0) {
        flight_served_by(f, a ? a->name : "?");
        if (a)
            telemetry_count_routed(c, a->name, f->n_tokens > 0);
        if (f->n_tokens)
            snprintf(what, sizeof what, "resumed (resume %u, after %zu tokens) -> agent",
                     f->resumes, f->n_tokens);
        else
            snprintf(what, sizeof what, "after %llu ms queued -> agent",
                     (unsigned long long)(now - f->received_ms));
        log_request(f, what, a ? a->name : "?");
        if (f->request->log_prompt && f->request->prompt && *f->request->prompt)
            log_info("request prompt (the client allowed logging it): %s", f->request->prompt);
        return 0;
    }
    if (rc == EF_ENOTCONN) {
        scheduler_requeue(c->scheduler, d->ticket, now);
        return rc;
    }
    scheduler_complete(c->scheduler, d->ticket, false, NULL);
    if (rc == EF_ETOOBIG) /* the transport logged it; this request alone pays */
        end_error(c, &f, EF_ETOOBIG, 0, "request too large for the agent link");
    else
        end_error(c, &f, EF_EBUSY, scheduler_retry_after_ms(c->scheduler, f->request->model, now),
                  "agent link congested");
    return rc;
}

/* An agent we can no longer reach: drop it now rather than wait for the liveness sweep. */
static void drop_unreachable(coord *c, agent_id_t id)
{
    const registry_agent *a = registry_get(c->registry, id);
    if (!a)
        return;
    char name[REGISTRY_NAME_MAX];
    snprintf(name, sizeof name, "%s", a->name);
    log_warn("agent %s: link gone (send failed); removing it", name);
    registry_remove(c->registry, id);
    request_agent_gone(c, id, name, "link gone");
}

void request_pump(coord *c)
{
    sched_dispatch d[REQUEST_BATCH];
    for (;;) {
        agent_id_t broken[REQUEST_BROKEN_MAX];
        size_t n_broken = 0;
        uint64_t now = clock_mono_ms();
        size_t n = scheduler_dispatch(c->scheduler, now, d, REQUEST_BATCH);
        for (size_t i = 0; i < n; i++) {
            if (send_placed(c, &d[i], now) != EF_ENOTCONN)
                continue;
            size_t j = 0;
            while (j < n_broken && broken[j] != d[i].agent)
                j++;
            if (j == n_broken && n_broken < REQUEST_BROKEN_MAX)
                broken[n_broken++] = d[i].agent;
        }
        for (size_t j = 0; j < n_broken; j++)
            drop_unreachable(c, broken[j]);
        if (n < REQUEST_BATCH && n_broken == 0)
            break;
    }
    arm_deadline_timer(c);
}

/* ---- admission ----------------------------------------------------------------------------- */

/* A request id already admitted: the same request again from its owner (a client that
 * reconnected), whose replies now go to the new connection; from any other key it is refused,
 * so nobody can take over another client's stream. Returns 1 when handled. */
static int is_known(coord *c, const Edgefleet__Request *r, uint32_t batch_index,
                    const coord_client *client)
{
    sched_request *sr = scheduler_find(c->scheduler, r->request_id.data);
    if (!sr)
        return 0;
    flight *f = sr->payload;
    char hex[33];
    codec_id_hex(r->request_id, hex);
    if (strcmp(f->client_key, client->user_id) != 0) {
        log_warn("request %s: id reused by %s while it runs for %s; refused", hex, client->user_id,
                 f->client_key);
        delivery_refuse(c, client, &r->request_id, batch_index, EF_EDUPLICATE, 0,
                        "request id in use by another client");
        return 1;
    }
    memcpy(f->client, client->routing_id, client->routing_id_len);
    f->client_len = client->routing_id_len;
    f->via = client->via;
    log_info("request %s: retried by its client; replies go to the new connection", hex);
    return 1;
}

static void refuse(coord *c, flight **f_p, int rc, uint32_t retry_after, const sched_busy *busy)
{
    const char *model = (*f_p)->request->model;
    char msg[224];
    if (rc == EF_EBUSY && busy->reason == SCHED_BUSY_CLIENT)
        snprintf(msg, sizeof msg,
                 "fleet busy for this client: %s has %u requests queued or running (at most %u)",
                 (*f_p)->client_key, busy->count, busy->limit);
    else if (rc == EF_EBUSY)
        snprintf(msg, sizeof msg, "fleet busy: the queue for %s is full", model);
    else if (rc == EF_EUNKNOWNMODEL)
        snprintf(msg, sizeof msg, "no agent serves model %s", model);
    else
        snprintf(msg, sizeof msg, "%s (model %s)", ef_strerror(rc), model);
    end_error(c, f_p, rc, retry_after, msg);
}

void request_submit(coord *c, const Edgefleet__Request *r, uint32_t batch_index,
                    const coord_client *client)
{
    if (is_known(c, r, batch_index, client))
        return;
    uint64_t now = clock_mono_ms();
    flight *f = flight_new(r, client, now, &c->flights);
    if (!f) {
        delivery_refuse(c, client, &r->request_id, batch_index, EF_ENOMEM, 0,
                        "coordinator out of memory");
        return;
    }
    f->request->batch_index = batch_index;
    sched_busy busy = {0};
    sched_submit s = {.request_id = r->request_id.data,
                      .model = r->model,
                      .session_id = r->session_id,
                      .deadline_ms = mono_deadline(r->deadline_unix_ms, now),
                      .max_tokens = r->max_tokens,
                      .seed = f->request->sampling->seed,
                      .client = f->client_key,
                      .busy = &busy,
                      .payload = f};
    sched_dispatch d = {0};
    uint32_t retry_after = 0;
    int rc = scheduler_submit(c->scheduler, &s, now, &d, &retry_after);
    if (rc) {
        refuse(c, &f, rc, retry_after, &busy);
        return;
    }
    if (d.agent == AGENT_ID_NONE) {
        char what[64];
        snprintf(what, sizeof what, "queued (%u waiting)",
                 scheduler_queued(c->scheduler, r->model));
        log_request(f, what, NULL);
        arm_deadline_timer(c);
        return;
    }
    if (send_placed(c, &d, now) == EF_ENOTCONN) {
        drop_unreachable(c, d.agent);
        request_pump(c);
    }
}

void request_cancel(coord *c, const uint8_t *request_id, const coord_client *client)
{
    sched_request *sr = scheduler_find(c->scheduler, request_id);
    if (!sr)
        return; /* already ended: its Done or Error is on the way or delivered */
    flight *f = sr->payload;
    char hex[33];
    codec_id_hex(f->request->request_id, hex);
    if (strcmp(f->client_key, client->user_id) != 0) {
        log_warn("request %s: cancel from %s ignored (the request is %s's)", hex, client->user_id,
                 f->client_key);
        return;
    }
    sched_request out;
    if (scheduler_cancel(c->scheduler, sr->ticket, &out) != 0)
        return;
    if (out.state == SCHED_INFLIGHT) { /* the agent ends it with Done{CANCELLED} */
        if (f->state == FLIGHT_RUNNING)
            f->state = FLIGHT_CANCELLING;
        agents_link_cancel(c, out.agent, f->request->request_id);
        log_info("request %s: cancelled by its client; told its agent", hex);
        return;
    }
    end_cancelled(c, &f);
    arm_deadline_timer(c);
}

/* Nobody is left to answer: stop the request without a word to its client. Returns 1 if it was
 * still running or queued (and is now stopping or ended), 0 if it had ended already. `code`
 * is what it ends with when it was only queued (nobody hears it). */
static int forget(coord *c, flight *f, int code, const char *why)
{
    f->state = FLIGHT_CLIENT_GONE; /* nothing more goes to its client */
    sched_request *sr = scheduler_find(c->scheduler, f->request->request_id.data);
    if (!sr || sr->payload != f)
        return 0; /* ended: what it still had to deliver is dropped with the link */
    if (sr->state == SCHED_INFLIGHT) { /* the agent's Done ends it, unanswered */
        agents_link_cancel(c, sr->agent, f->request->request_id);
        return 1;
    }
    sched_request out;
    if (scheduler_cancel(c->scheduler, sr->ticket, &out) == 0)
        end_error(c, &f, code, 0, why);
    return 1;
}

void request_client_revoked(coord *c, const char *user_id)
{
    size_t n = 0;
    for (flight *f = c->flights, *next; f; f = next) {
        next = f->next;
        if (strcmp(f->client_key, user_id) == 0)
            n += (size_t)forget(c, f, EF_EDENIED, "key revoked");
    }
    if (n)
        log_info("key %s revoked: %zu of its requests stopped", user_id, n);
}

void request_client_gone(coord *c, const uint8_t *request_id, const coord_client *client)
{
    sched_request *sr = scheduler_find(c->scheduler, request_id);
    if (!sr)
        return;
    flight *f = sr->payload;
    if (strcmp(f->client_key, client->user_id) != 0 || f->state == FLIGHT_CLIENT_GONE)
        return;
    char hex[33];
    codec_id_hex(f->request->request_id, hex);
    int on_agent = sr->state == SCHED_INFLIGHT;
    forget(c, f, EF_ENOTCONN, "client gone");
    log_info("request %s (%s): client gone; %s", hex, client->user_id,
             on_agent ? "cancelling it on its agent" : "dropped from the queue");
    arm_deadline_timer(c);
}

/* ---- timers and shutdown ------------------------------------------------------------------- */

/* Queued requests whose deadline passed: fail them; they were never sent. */
static void expire_queued(coord *c)
{
    sched_request out[REQUEST_BATCH];
    size_t n;
    do {
        n = scheduler_expire(c->scheduler, clock_mono_ms(), out, REQUEST_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            char msg[96];
            snprintf(msg, sizeof msg, "deadline passed after %llu ms in the queue",
                     (unsigned long long)(clock_mono_ms() - f->received_ms));
            end_error(c, &f, EF_EDEADLINE, 0, msg);
        }
    } while (n == REQUEST_BATCH);
}

void request_fail_orphans(coord *c)
{
    sched_request out[REQUEST_BATCH];
    size_t n, total = 0;
    do {
        total += n = scheduler_orphaned(c->scheduler, clock_mono_ms(), out, REQUEST_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            char msg[160];
            snprintf(msg, sizeof msg, "no agent has served model \"%s\" for %u ms",
                     f->request->model, c->cfg.orphan_grace_ms);
            end_error(c, &f, EF_EUNKNOWNMODEL, 0, msg);
        }
    } while (n == REQUEST_BATCH);
    if (total > 0) /* the earliest deadline may have gone with them */
        arm_deadline_timer(c);
}

static void on_deadline_timer(uv_timer_t *t)
{
    coord *c = t->data;
    expire_queued(c);
    arm_deadline_timer(c);
}

static void arm_deadline_timer(coord *c)
{
    uint64_t next = scheduler_next_deadline_ms(c->scheduler);
    if (next == 0) {
        uv_timer_stop(&c->deadline_timer);
        return;
    }
    uint64_t now = clock_mono_ms();
    uv_timer_start(&c->deadline_timer, on_deadline_timer, next > now ? next - now : 0, 0);
}

int request_init(coord *c)
{
    c->deadline_timer.data = c;
    if (uv_timer_init(c->loop, &c->deadline_timer) != 0)
        return EF_EINTERNAL;
    return delivery_init(c);
}

void request_close(coord *c)
{
    uv_timer_stop(&c->deadline_timer);
    uv_close((uv_handle_t *)&c->deadline_timer, NULL);
    delivery_close(c);
}

void request_flush(coord *c)
{
    sched_request out[REQUEST_BATCH];
    size_t n;
    do {
        n = scheduler_flush(c->scheduler, out, REQUEST_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            if (out[i].state == SCHED_INFLIGHT)
                agents_link_cancel(c, out[i].agent, f->request->request_id);
            end_error(c, &f, EF_ENOTCONN, 0, "coordinator stopping");
        }
    } while (n == REQUEST_BATCH);
}
