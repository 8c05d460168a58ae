/* What agents say about requests (see request.h): each TokenChunk is checked against what the
 * request already streamed (a replay after the agent reconnected is dropped; a gap or overlap
 * is a broken stream that ends the request) and relayed; the one Done or Error ends the request
 * and returns the agent's credit; a lost agent's requests fail with what they already got.
 * Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GONE_BATCH 32

/* The in-flight request a reply from `agent` is about, or NULL when it is stale: ended, sent
 * to an earlier registration of the agent, or about another attempt (an agent declared lost
 * that comes back with output of a stream that has moved on: fencing). */
static sched_request *inflight_on(coord *c, agent_id_t agent, ProtobufCBinaryData id,
                                  uint32_t attempt, const char *what)
{
    sched_request *sr = scheduler_find(c->scheduler, id.data);
    if (sr && sr->state == SCHED_INFLIGHT && sr->agent == agent &&
        ((flight *)sr->payload)->attempt == attempt)
        return sr;
    char hex[33];
    log_debug("stale %s for request %s ignored", what, codec_id_hex(id, hex));
    return NULL;
}

/* Where a chunk stands against what the request has relayed: 1 next in line, 0 a replay of
 * what it already has (dropped quietly: the agent re-sends after a reconnect), -1 broken. */
static int chunk_fits(const flight *f, const Edgefleet__TokenChunk *tc, char *why, size_t cap)
{
    uint64_t have = f->n_tokens, seq = tc->seq, n = tc->n_token_ids;
    if (seq == have) {
        uint32_t max = f->request->max_tokens;
        if (max && have + n > max) {
            snprintf(why, cap, "stream runs past max_tokens %u (tokens %llu..%llu)", max,
                     (unsigned long long)seq, (unsigned long long)(seq + n - 1));
            return -1;
        }
        return 1;
    }
    if (seq + n <= have && n > 0)
        return 0;
    snprintf(why, cap, "stream %s: chunk at token %llu (%llu tokens), %llu relayed so far",
             seq > have ? "skipped tokens" : "repeats tokens", (unsigned long long)seq,
             (unsigned long long)n, (unsigned long long)have);
    return -1;
}

void request_on_chunk(coord *c, const registry_agent *a, const Edgefleet__TokenChunk *tc)
{
    sched_request *sr = inflight_on(c, a->id, tc->request_id, tc->attempt, "token chunk");
    if (!sr)
        return;
    flight *f = sr->payload;
    if (f->state != FLIGHT_RUNNING)
        return; /* being cancelled or aborted: its Done is what we wait for */
    char why[160];
    int fits = chunk_fits(f, tc, why, sizeof why);
    if (fits == 0)
        return;
    if (fits < 0) {
        char msg[240];
        snprintf(msg, sizeof msg, "agent %.64s: %.160s", a->name, why);
        request_abort(c, f, EF_EPROTO, msg);
        return;
    }
    if (flight_add_tokens(f, tc->token_ids, tc->n_token_ids) != 0) {
        request_abort(c, f, EF_ENOMEM, "coordinator out of memory");
        return;
    }
    sr->tokens_streamed = (uint32_t)f->n_tokens;
    Edgefleet__TokenChunk out = *tc; /* shallow: borrowed fields, packed only */
    out.agent_name = (char *)a->name;
    out.batch_index = f->request->batch_index;
    int rc = delivery_chunk(c, f, &out);
    if (rc == 0 && !f->first_token_ms && tc->n_token_ids) {
        f->first_token_ms = clock_mono_ms();
        metrics_first_token(c->metrics, f->request->model,
                            (double)(f->first_token_ms - f->received_ms) / 1000.0);
    }
    if (rc == EF_ENOTCONN) {
        char hex[33];
        log_info("request %s: client gone; cancelling it on agent %s",
                 codec_id_hex(tc->request_id, hex), a->name);
        f->state = FLIGHT_CLIENT_GONE;
        agents_link_cancel(c, a->id, tc->request_id);
    } else if (rc == EF_ESTALLED) {
        char msg[160];
        snprintf(msg, sizeof msg, "the client did not read its stream (over %u KiB waiting)",
                 DELIVERY_BACKLOG_MAX / 1024);
        request_abort(c, f, EF_ESTALLED, msg);
    }
}

/* The request ended on its agent: the credit goes back, and the client hears why, in the words
 * its own state calls for (a cancel it asked for, an abort we decided, or the agent's reply). */
static void end_on_agent(coord *c, const registry_agent *a, sched_request *sr, bool served,
                         const request_outcome *reply)
{
    flight *f = sr->payload;
    scheduler_complete(c->scheduler, sr->ticket, served, NULL);
    if (f->state == FLIGHT_ABORTING) {
        request_end(
            c, &f,
            &(request_outcome){.code = f->end_code, .message = f->end_message, .agent = a->name});
    } else {
        request_end(c, &f, reply);
    }
    request_pump(c);
}

void request_on_done(coord *c, const registry_agent *a, const Edgefleet__Done *d)
{
    sched_request *sr = inflight_on(c, a->id, d->request_id, d->attempt, "done");
    if (!sr)
        return;
    end_on_agent(c, a, sr, true, &(request_outcome){.done = d, .agent = a->name});
}

void request_on_error(coord *c, const registry_agent *a, const Edgefleet__Error *e)
{
    if (e->request_id.len == 0) {
        log_warn("agent %s: error %s: %s", a->name, ef_err_name(e->code),
                 e->message ? e->message : "");
        return;
    }
    sched_request *sr = inflight_on(c, a->id, e->request_id, e->attempt, "error");
    if (!sr)
        return;
    flight *f = sr->payload;
    char hex[33];
    codec_id_hex(e->request_id, hex);
    int fresh = f->n_tokens == f->attempt_tokens && f->state == FLIGHT_RUNNING;
    if (fresh && (e->code == EF_EBUSY || e->code == EF_EDRAINING)) {
        /* Our credit count and the agent's slots disagreed, or it crossed the agent's draining
         * heartbeat: back in the queue. A busy agent is left to its next heartbeat (pumping now
         * could bounce the request straight back to it); a draining one the registry already
         * skips. */
        log_info("request %s: agent %s %s; back in the queue", hex, a->name,
                 e->code == EF_EBUSY ? "had no free slot" : "is draining");
        scheduler_requeue(c->scheduler, sr->ticket, clock_mono_ms());
        if (e->code == EF_EDRAINING && registry_agent_draining(a))
            request_pump(c);
        return;
    }
    int code = e->code < 0 && e->code >= -1000 ? e->code : EF_EINTERNAL;
    end_on_agent(c, a, sr, false,
                 &(request_outcome){.code = code,
                                    .retry_after_ms = e->retry_after_ms,
                                    .message = e->message,
                                    .agent = a->name});
}

/* May the stream go on elsewhere? Only a request still wanted, with resumes left, whose
 * output is not complete already. */
static int resumable(const coord *c, const flight *f)
{
    uint32_t max = f->request->max_tokens;
    return f->state == FLIGHT_RUNNING && f->resumes < c->cfg.max_resumes &&
           (max == 0 || f->n_tokens < max) && f->n_tokens < FLIGHT_RECEIVED_MAX;
}

/* Put the lost agent's resumable requests back in their queues, as resumes: their prompt plus
 * the tokens relayed so far is what the next agent evaluates, and the client's stream goes on
 * where it stopped. Returns how many. */
static size_t resume_all(coord *c, agent_id_t agent, const char *name, const char *why)
{
    uint32_t n_max = scheduler_inflight(c->scheduler);
    uint64_t *tickets = n_max ? malloc(n_max * sizeof *tickets) : NULL;
    size_t n = tickets ? scheduler_inflight_on(c->scheduler, agent, tickets, n_max) : 0;
    size_t resumed = 0;
    uint64_t now = clock_mono_ms();
    for (size_t i = 0; i < n; i++) {
        sched_request *sr = scheduler_get(c->scheduler, tickets[i]);
        flight *f = sr ? sr->payload : NULL;
        if (!f || !resumable(c, f) || flight_resume(f) != 0)
            continue; /* scheduler_agent_gone ends it */
        if (scheduler_requeue(c->scheduler, tickets[i], now) != 0)
            continue;
        metrics_resume(c->metrics, f->request->model);
        char hex[33];
        log_warn("request %s: agent %s lost (%s) after %zu tokens; resuming it elsewhere "
                 "(resume %u of at most %u)",
                 codec_id_hex(f->request->request_id, hex), name, why, f->n_tokens, f->resumes,
                 c->cfg.max_resumes);
        resumed++;
    }
    free(tickets);
    return resumed;
}

/* The line a request that cannot be resumed ends with: which agents tried, and why not. */
static void lost_message(const coord *c, const flight *f, const char *name, const char *why,
                         char *msg, size_t cap)
{
    char tried[256] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < f->n_agents && used < sizeof tried; i++) {
        int w = snprintf(tried + used, sizeof tried - used, "%s%s", i ? ", " : "", f->agents[i]);
        if (w > 0)
            used += (size_t)w;
    }
    if (f->resumes >= c->cfg.max_resumes && c->cfg.max_resumes > 0)
        snprintf(msg, cap,
                 "agent %s lost mid-request (%s) after %zu tokens; resumed %u times already "
                 "(agents %s): giving up",
                 name, why, f->n_tokens, f->resumes, tried);
    else
        snprintf(msg, cap, "agent %s lost mid-request (%s) after %zu tokens (agents %s)", name, why,
                 f->n_tokens, tried);
}

void request_agent_gone(coord *c, agent_id_t agent, const char *name, const char *why)
{
    size_t resumed = resume_all(c, agent, name, why);
    sched_request out[GONE_BATCH];
    size_t n;
    do {
        n = scheduler_agent_gone(c->scheduler, agent, out, GONE_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            char msg[512];
            if (f->state == FLIGHT_ABORTING) {
                request_end(c, &f,
                            &(request_outcome){.code = f->end_code, .message = f->end_message});
                continue;
            }
            if (f->state == FLIGHT_CANCELLING) { /* what the client asked for, agent or not */
                Edgefleet__Done done = EDGEFLEET__DONE__INIT;
                done.request_id = f->request->request_id;
                done.finish = EDGEFLEET__FINISH_REASON__FINISH_CANCELLED;
                request_end(c, &f, &(request_outcome){.done = &done, .agent = name});
                continue;
            }
            lost_message(c, f, name, why, msg, sizeof msg);
            request_end(c, &f, &(request_outcome){.code = EF_EAGENTLOST, .message = msg});
        }
    } while (n == GONE_BATCH);
    if (resumed)
        request_pump(c);
}
