/* Turns the scheduler's decisions into messages: admits client requests (or refuses them at once
 * with "fleet busy"), sends each placed request to its agent, keeps the deadline timer on the
 * earliest queued deadline so a request whose deadline passes in the queue fails and is never
 * sent, and handles client cancels. Replies from agents are relayed by relay.c. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Decisions taken per scheduler_dispatch call; more are fetched while it fills them all. */
#define DISPATCH_BATCH 32
/* Agents whose link broke during one dispatch round (their sends fail with EF_ENOTCONN). */
#define DISPATCH_BROKEN_MAX 8

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

static void log_request(const flight *f, const char *what, const char *agent)
{
    char hex[33];
    const Edgefleet__Request *r = f->request;
    codec_id_hex(r->request_id, hex);
    log_info("request %s (model %s, batch index %u) %s%s%s", hex, r->model, r->batch_index, what,
             agent ? " " : "", agent ? agent : "");
    if (r->log_prompt && r->prompt && *r->prompt) /* the client allowed it */
        log_info("request %s prompt: %s", hex, r->prompt);
}

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
    if (rc == 0) {
        char what[64];
        snprintf(what, sizeof what, "after %llu ms queued -> agent",
                 (unsigned long long)(now - f->received_ms));
        log_request(f, what, a ? a->name : "?");
        return 0;
    }
    if (rc == EF_ENOTCONN) {
        scheduler_requeue(c->scheduler, d->ticket, now);
        return rc;
    }
    log_warn("request to agent %s failed: %s", a ? a->name : "?", ef_strerror(rc));
    scheduler_complete(c->scheduler, d->ticket, false, NULL);
    flight_fail(c, &f, EF_EBUSY, scheduler_retry_after_ms(c->scheduler, f->request->model, now),
                f->tokens_sent, "agent link congested");
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
    dispatch_agent_gone(c, id, name, "link gone");
}

void dispatch_run(coord *c)
{
    sched_dispatch d[DISPATCH_BATCH];
    for (;;) {
        agent_id_t broken[DISPATCH_BROKEN_MAX];
        size_t n_broken = 0;
        uint64_t now = clock_mono_ms();
        size_t n = scheduler_dispatch(c->scheduler, now, d, DISPATCH_BATCH);
        for (size_t i = 0; i < n; i++) {
            if (send_placed(c, &d[i], now) != EF_ENOTCONN)
                continue;
            size_t j = 0;
            while (j < n_broken && broken[j] != d[i].agent)
                j++;
            if (j == n_broken && n_broken < DISPATCH_BROKEN_MAX)
                broken[n_broken++] = d[i].agent;
        }
        for (size_t j = 0; j < n_broken; j++)
            drop_unreachable(c, broken[j]);
        if (n < DISPATCH_BATCH && n_broken == 0)
            break;
    }
    arm_deadline_timer(c);
}

/* A retry of a request already admitted (same id) is the same request: answer the sender. */
static int is_retry(coord *c, const Edgefleet__Request *r, const uint8_t *client, size_t len)
{
    sched_request *sr = scheduler_find(c->scheduler, r->request_id.data);
    if (!sr)
        return 0;
    flight *f = sr->payload;
    memcpy(f->client, client, len);
    f->client_len = len;
    char hex[33];
    log_info("request %s: retried by its client; replies go to the new connection",
             codec_id_hex(r->request_id, hex));
    return 1;
}

void dispatch_submit(coord *c, const Edgefleet__Request *r, uint32_t batch_index,
                     const uint8_t *client, size_t client_len)
{
    if (is_retry(c, r, client, client_len))
        return;
    uint64_t now = clock_mono_ms();
    flight *f = flight_new(r, client, client_len, now);
    if (!f) {
        frontend_send_error(c, client, client_len, &r->request_id, batch_index, EF_ENOMEM, 0, 0,
                            "coordinator out of memory");
        return;
    }
    f->request->batch_index = batch_index;
    sched_submit s = {.request_id = r->request_id.data,
                      .model = r->model,
                      .session_id = r->session_id,
                      .deadline_ms = mono_deadline(r->deadline_unix_ms, now),
                      .max_tokens = r->max_tokens,
                      .seed = f->request->sampling->seed,
                      .payload = f};
    sched_dispatch d = {0};
    uint32_t retry_after = 0;
    int rc = scheduler_submit(c->scheduler, &s, now, &d, &retry_after);
    if (rc) {
        char msg[160];
        if (rc == EF_EBUSY)
            snprintf(msg, sizeof msg, "fleet busy: the queue for %s is full", r->model);
        else if (rc == EF_EUNKNOWNMODEL)
            snprintf(msg, sizeof msg, "no agent serves model %s", r->model);
        else
            snprintf(msg, sizeof msg, "%s (model %s)", ef_strerror(rc), r->model);
        log_request(f, "refused:", msg);
        flight_fail(c, &f, rc, retry_after, 0, msg);
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
        dispatch_run(c);
    }
}

void dispatch_cancel(coord *c, const uint8_t *request_id, const uint8_t *client, size_t client_len)
{
    sched_request *sr = scheduler_find(c->scheduler, request_id);
    if (!sr)
        return; /* already ended: its Done or Error is on the way or delivered */
    flight *f = sr->payload;
    char hex[33];
    codec_id_hex(f->request->request_id, hex);
    if (f->client_len != client_len || memcmp(f->client, client, client_len) != 0) {
        log_warn("request %s: cancel from another connection ignored", hex);
        return;
    }
    sched_request out;
    if (scheduler_cancel(c->scheduler, sr->ticket, &out) != 0)
        return;
    if (out.state == SCHED_INFLIGHT) { /* the agent ends it with Done{CANCELLED} */
        agents_link_cancel(c, out.agent, f->request->request_id);
        log_info("request %s: cancelled by its client; told its agent", hex);
        return;
    }
    Edgefleet__Done done = EDGEFLEET__DONE__INIT;
    done.request_id = f->request->request_id;
    done.finish = EDGEFLEET__FINISH_REASON__FINISH_CANCELLED;
    done.batch_index = f->request->batch_index;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    env.done = &done;
    frontend_send(c, f->client, f->client_len, &env);
    log_info("request %s: cancelled by its client while queued", hex);
    flight_destroy(&f);
    arm_deadline_timer(c);
}

/* Queued requests whose deadline passed: fail them; they were never sent. */
static void expire_queued(coord *c)
{
    sched_request out[DISPATCH_BATCH];
    size_t n;
    do {
        n = scheduler_expire(c->scheduler, clock_mono_ms(), out, DISPATCH_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            char msg[96];
            snprintf(msg, sizeof msg, "deadline passed after %llu ms in the queue",
                     (unsigned long long)(clock_mono_ms() - f->received_ms));
            log_request(f, "failed:", msg);
            flight_fail(c, &f, EF_EDEADLINE, 0, 0, msg);
        }
    } while (n == DISPATCH_BATCH);
}

void dispatch_fail_orphans(coord *c)
{
    sched_request out[DISPATCH_BATCH];
    size_t n, total = 0;
    do {
        total += n = scheduler_orphaned(c->scheduler, clock_mono_ms(), out, DISPATCH_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            char msg[160];
            snprintf(msg, sizeof msg, "no agent has served model \"%s\" for %u ms",
                     f->request->model, c->cfg.orphan_grace_ms);
            log_request(f, "failed:", msg);
            flight_fail(c, &f, EF_EUNKNOWNMODEL, 0, 0, msg);
        }
    } while (n == DISPATCH_BATCH);
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

int dispatch_init(coord *c)
{
    c->deadline_timer.data = c;
    return uv_timer_init(c->loop, &c->deadline_timer) == 0 ? 0 : EF_EINTERNAL;
}

void dispatch_close(coord *c)
{
    uv_timer_stop(&c->deadline_timer);
    uv_close((uv_handle_t *)&c->deadline_timer, NULL);
}

void dispatch_flush(coord *c)
{
    sched_request out[DISPATCH_BATCH];
    size_t n;
    do {
        n = scheduler_flush(c->scheduler, out, DISPATCH_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            if (out[i].state == SCHED_INFLIGHT)
                agents_link_cancel(c, out[i].agent, f->request->request_id);
            flight_fail(c, &f, EF_ENOTCONN, 0, f->tokens_sent, "coordinator stopping");
        }
    } while (n == DISPATCH_BATCH);
}
