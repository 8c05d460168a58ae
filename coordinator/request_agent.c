/* What agents say about requests (see request.h): each TokenChunk is checked against what the
 * request already streamed (a replay after the agent reconnected is dropped; a gap or overlap
 * is a broken stream that ends the request) and relayed; the one Done or Error ends the request
 * and returns the agent's credit; a lost agent's requests fail with what they already got.
 * Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

#define GONE_BATCH 32

/* The in-flight request a reply from `agent` is about, or NULL when it is stale (ended, or sent
 * to an earlier registration of the agent). */
static sched_request *inflight_on(coord *c, agent_id_t agent, ProtobufCBinaryData id,
                                  const char *what)
{
    sched_request *sr = scheduler_find(c->scheduler, id.data);
    if (sr && sr->state == SCHED_INFLIGHT && sr->agent == agent)
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
    sched_request *sr = inflight_on(c, a->id, tc->request_id, "token chunk");
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
    sched_request *sr = inflight_on(c, a->id, d->request_id, "done");
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
    sched_request *sr = inflight_on(c, a->id, e->request_id, "error");
    if (!sr)
        return;
    flight *f = sr->payload;
    char hex[33];
    codec_id_hex(e->request_id, hex);
    int fresh = f->n_tokens == 0 && f->state == FLIGHT_RUNNING;
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

void request_agent_gone(coord *c, agent_id_t agent, const char *name, const char *why)
{
    sched_request out[GONE_BATCH];
    size_t n;
    do {
        n = scheduler_agent_gone(c->scheduler, agent, out, GONE_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            char msg[160];
            if (f->state == FLIGHT_ABORTING) {
                request_end(c, &f,
                            &(request_outcome){.code = f->end_code, .message = f->end_message});
                continue;
            }
            snprintf(msg, sizeof msg, "agent %s lost mid-request (%s) after %zu tokens", name, why,
                     f->n_tokens);
            request_end(c, &f, &(request_outcome){.code = EF_EAGENTLOST, .message = msg});
        }
    } while (n == GONE_BATCH);
}
