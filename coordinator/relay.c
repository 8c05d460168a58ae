/* Relays an agent's replies to the client that asked: each TokenChunk as it comes (tagged with
 * the agent's name and the item's batch index), then the one Done or Error, which also returns
 * the agent's credit so queued work moves on. Fails a lost agent's requests to their clients
 * with EF_EAGENTLOST and the tokens they already got, instead of letting them hang. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

#define RELAY_GONE_BATCH 32

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

void dispatch_agent_chunk(coord *c, const registry_agent *a, const Edgefleet__TokenChunk *tc)
{
    sched_request *sr = inflight_on(c, a->id, tc->request_id, "token chunk");
    if (!sr)
        return;
    flight *f = sr->payload;
    flight_add_tokens(f, tc->token_ids, tc->n_token_ids, tc->text ? strlen(tc->text) : 0);
    sr->tokens_streamed = f->tokens_sent;
    Edgefleet__TokenChunk out = *tc; /* shallow: borrowed fields, packed only */
    out.agent_name = (char *)a->name;
    out.batch_index = f->request->batch_index;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
    env.token_chunk = &out;
    int rc = frontend_send(c, f->client, f->client_len, &env);
    if (rc == EF_ENOTCONN) {
        char hex[33];
        log_info("request %s: client gone; cancelling it on agent %s",
                 codec_id_hex(tc->request_id, hex), out.agent_name);
        agents_link_cancel(c, a->id, tc->request_id); /* the client went away */
    }
}

void dispatch_agent_done(coord *c, const registry_agent *a, const Edgefleet__Done *d)
{
    sched_request *sr = inflight_on(c, a->id, d->request_id, "done");
    if (!sr)
        return;
    flight *f = sr->payload;
    Edgefleet__Done out = *d;
    out.agent_name = (char *)a->name;
    out.batch_index = f->request->batch_index;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    env.done = &out;
    frontend_send(c, f->client, f->client_len, &env);
    char hex[33];
    log_info("request %s done on agent %s: finish %d, %u tokens in %llu ms",
             codec_id_hex(d->request_id, hex), out.agent_name, (int)d->finish,
             d->usage ? d->usage->completion_tokens : f->tokens_sent,
             (unsigned long long)(clock_mono_ms() - f->received_ms));
    scheduler_complete(c->scheduler, sr->ticket, true, NULL);
    flight_destroy(&f);
    dispatch_run(c);
}

void dispatch_agent_error(coord *c, const registry_agent *a, const Edgefleet__Error *e)
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
    if (e->code == EF_EBUSY && f->tokens_sent == 0) {
        /* Our credit count and the agent's slots disagreed: wait for its next heartbeat. */
        log_info("request %s: agent %s had no free slot; back in the queue", hex, a->name);
        scheduler_requeue(c->scheduler, sr->ticket, clock_mono_ms());
        return; /* not dispatch_run: that could bounce it straight back to the same agent */
    }
    if (e->code == EF_EDRAINING && f->tokens_sent == 0) {
        /* It crossed the agent's draining heartbeat (a stopping agent says so before it refuses
         * anything, on the same socket), so the registry normally sends it elsewhere at once;
         * if the registry has not heard of the drain, it waits for the next event instead of
         * bouncing between us and the agent. */
        log_info("request %s: agent %s is draining; back in the queue", hex, a->name);
        scheduler_requeue(c->scheduler, sr->ticket, clock_mono_ms());
        if (registry_agent_draining(a))
            dispatch_run(c);
        return;
    }
    int code = e->code < 0 && e->code >= -1000 ? e->code : EF_EINTERNAL;
    uint32_t sent = e->tokens_sent > f->tokens_sent ? e->tokens_sent : f->tokens_sent;
    log_warn("request %s failed on agent %s: %s: %s", hex, a->name, ef_err_name(code),
             e->message ? e->message : "");
    scheduler_complete(c->scheduler, sr->ticket, false, NULL);
    flight_fail(c, &f, code, e->retry_after_ms, sent, e->message);
    dispatch_run(c);
}

void dispatch_agent_gone(coord *c, agent_id_t agent, const char *name, const char *why)
{
    sched_request out[RELAY_GONE_BATCH];
    size_t n;
    do {
        n = scheduler_agent_gone(c->scheduler, agent, out, RELAY_GONE_BATCH);
        for (size_t i = 0; i < n; i++) {
            flight *f = out[i].payload;
            char hex[33], msg[160];
            codec_id_hex(f->request->request_id, hex);
            snprintf(msg, sizeof msg, "agent %s lost mid-request (%s) after %u tokens", name, why,
                     f->tokens_sent);
            log_warn("request %s failed: %s", hex, msg);
            flight_fail(c, &f, EF_EAGENTLOST, 0, f->tokens_sent, msg);
        }
    } while (n == RELAY_GONE_BATCH);
}
