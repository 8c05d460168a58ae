/* Operator commands on the client endpoint: STATUS (the fleet as the registry and scheduler see
 * it), DRAIN and UNDRAIN (forwarded to the agent as Drain), EVICT and TELEMETRY_HISTORY
 * (ops_models.c, ops_history.c). Only connections whose ZAP User-Id is "operators/<name>" may
 * use them; the refusal is logged. MODELS is answered for client keys too. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

void ops_send_reply(coord *c, const coord_client *client, Edgefleet__OperatorReply *r)
{
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REPLY;
    env.reply = r;
    delivery_send(c, client->via, client->routing_id, client->routing_id_len, &env);
}

/* The status message's parts, allocated together and freed after the reply is packed. */
typedef struct {
    Edgefleet__AgentStatus *agents;
    Edgefleet__AgentStatus **agent_ptrs;
    Edgefleet__ModelLoad *loads;
    Edgefleet__ModelLoad **load_ptrs;
    Edgefleet__QueueStatus *queues;
    Edgefleet__QueueStatus **queue_ptrs;
} status_parts;

static void status_parts_free(status_parts *p)
{
    free(p->agents);
    free(p->agent_ptrs);
    free(p->loads);
    free(p->load_ptrs);
    free(p->queues);
    free(p->queue_ptrs);
}

static void fill_agent(Edgefleet__AgentStatus *s, const registry_agent *a, Edgefleet__ModelLoad *l,
                       Edgefleet__ModelLoad **lp, uint64_t now)
{
    edgefleet__agent_status__init(s);
    s->agent_name = (char *)a->name;
    s->hostname = (char *)a->hostname;
    for (size_t m = 0; m < a->n_models; m++) {
        edgefleet__model_load__init(&l[m]);
        l[m].model = (char *)a->models[m].name;
        /* Our own count is fresher than the last heartbeat's. */
        uint32_t busy = a->models[m].inflight > a->models[m].busy_slots ? a->models[m].inflight
                                                                        : a->models[m].busy_slots;
        l[m].busy_slots = busy;
        l[m].total_slots = a->models[m].total_slots;
        lp[m] = &l[m];
    }
    s->models = lp;
    s->n_models = a->n_models;
    s->gen_tps = a->gen_tps;
    s->prompt_tps = a->prompt_tps;
    s->draining = registry_agent_draining(a);
    s->last_seen_ms_ago = now > a->last_seen_ms ? now - a->last_seen_ms : 0;
    s->served = a->served;
    s->simulated = a->simulated;
}

static int build_status(coord *c, Edgefleet__FleetStatus *fs, status_parts *p)
{
    size_t na = registry_count(c->registry), nq = scheduler_queue_count(c->scheduler);
    size_t nl = na * REGISTRY_MODELS_MAX;
    p->agents = calloc(na ? na : 1, sizeof *p->agents);
    p->agent_ptrs = calloc(na ? na : 1, sizeof *p->agent_ptrs);
    p->loads = calloc(nl ? nl : 1, sizeof *p->loads);
    p->load_ptrs = calloc(nl ? nl : 1, sizeof *p->load_ptrs);
    p->queues = calloc(nq ? nq : 1, sizeof *p->queues);
    p->queue_ptrs = calloc(nq ? nq : 1, sizeof *p->queue_ptrs);
    if (!p->agents || !p->agent_ptrs || !p->loads || !p->load_ptrs || !p->queues || !p->queue_ptrs)
        return EF_ENOMEM;
    uint64_t now = clock_mono_ms();
    for (size_t i = 0; i < na; i++) {
        fill_agent(&p->agents[i], registry_at(c->registry, i), &p->loads[i * REGISTRY_MODELS_MAX],
                   &p->load_ptrs[i * REGISTRY_MODELS_MAX], now);
        p->agent_ptrs[i] = &p->agents[i];
    }
    for (size_t i = 0; i < nq; i++) {
        edgefleet__queue_status__init(&p->queues[i]);
        p->queues[i].model = (char *)scheduler_queue_at(c->scheduler, i, &p->queues[i].queued);
        p->queues[i].capacity = scheduler_queue_capacity(c->scheduler);
        p->queue_ptrs[i] = &p->queues[i];
    }
    fs->agents = p->agent_ptrs;
    fs->n_agents = na;
    fs->queues = p->queue_ptrs;
    fs->n_queues = nq;
    return 0;
}

static void status(coord *c, Edgefleet__OperatorReply *r, const coord_client *client)
{
    Edgefleet__FleetStatus fs = EDGEFLEET__FLEET_STATUS__INIT;
    status_parts parts = {0};
    r->code = build_status(c, &fs, &parts);
    if (r->code == 0)
        r->status = &fs;
    else
        r->message = "coordinator out of memory";
    ops_send_reply(c, client, r);
    status_parts_free(&parts);
}

static void drain(coord *c, Edgefleet__OperatorReply *r, const char *agent, int enable,
                  const char *user_id)
{
    agent_id_t id = registry_find_name(c->registry, agent);
    if (id == AGENT_ID_NONE || registry_set_drain(c->registry, id, enable) != 0) {
        r->code = EF_ENOENT;
        r->message = "no such agent";
        return;
    }
    Edgefleet__Drain d = EDGEFLEET__DRAIN__INIT;
    d.enable = enable != 0;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DRAIN;
    env.drain = &d;
    int rc = agents_link_send(c, id, &env);
    log_info("agent %s %s by %s%s", agent, enable ? "draining" : "undrained", user_id,
             rc ? " (the agent was not told: link down)" : "");
    r->message = enable ? "draining: no new work; running requests finish" : "undrained";
    if (!enable)
        request_pump(c); /* it may take queued work again */
}

void ops_handle(coord *c, const Edgefleet__OperatorCommand *cmd, const coord_client *client)
{
    const char *user_id = client->user_id;
    Edgefleet__OperatorReply r = EDGEFLEET__OPERATOR_REPLY__INIT;
    r.command_id = cmd->command_id;
    if (cmd->kind == EDGEFLEET__COMMAND_KIND__COMMAND_MODELS) {
        ops_models(c, &r, client);
        return;
    }
    if (strncmp(user_id, "operators/", 10) != 0) {
        uint32_t held = 0;
        if (ratelimit_check(c->log_limit, user_id, clock_mono_ms(), &held))
            log_warn("operator command %d from %s refused: not an operator key", (int)cmd->kind,
                     user_id);
        r.code = EF_EDENIED;
        r.message = "operator commands need a key in the operators allowlist";
        ops_send_reply(c, client, &r);
        return;
    }
    switch (cmd->kind) {
    case EDGEFLEET__COMMAND_KIND__COMMAND_STATUS:
        status(c, &r, client);
        return;
    case EDGEFLEET__COMMAND_KIND__COMMAND_DRAIN:
    case EDGEFLEET__COMMAND_KIND__COMMAND_UNDRAIN:
        drain(c, &r, cmd->agent_name ? cmd->agent_name : "",
              cmd->kind == EDGEFLEET__COMMAND_KIND__COMMAND_DRAIN, user_id);
        break;
    case EDGEFLEET__COMMAND_KIND__COMMAND_EVICT:
        ops_evict(c, &r, cmd->agent_name ? cmd->agent_name : "", user_id);
        break;
    case EDGEFLEET__COMMAND_KIND__COMMAND_TELEMETRY_HISTORY:
        ops_history(c, &r, cmd->agent_name, cmd->last, client);
        return;
    default:
        r.code = EF_EINVAL;
        r.message = "unknown operator command";
        break;
    }
    ops_send_reply(c, client, &r);
}
