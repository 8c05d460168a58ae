/* COMMAND_MODELS, what the fleet serves (for client keys too: a client picks a model from it),
 * and COMMAND_EVICT, an operator dropping an agent's registration and cutting its link. Loop
 * thread. */
#include "coord.h"
#include "log.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#define OPS_MODELS_MAX 1024 /* distinct model names listed */

void ops_models(coord *c, Edgefleet__OperatorReply *r, const coord_client *client)
{
    Edgefleet__ModelSummary *m = calloc(OPS_MODELS_MAX, sizeof *m);
    Edgefleet__ModelSummary **mp = calloc(OPS_MODELS_MAX, sizeof *mp);
    size_t n = 0;
    if (!m || !mp) {
        r->code = EF_ENOMEM;
        r->message = "coordinator out of memory";
        n = OPS_MODELS_MAX + 1;
    }
    for (size_t i = 0; n <= OPS_MODELS_MAX && i < registry_count(c->registry); i++) {
        const registry_agent *a = registry_at(c->registry, i);
        for (size_t k = 0; k < a->n_models; k++) {
            const registry_model *rm = &a->models[k];
            size_t j = 0;
            while (j < n && strcmp(m[j].name, rm->name) != 0)
                j++;
            if (j == n) {
                if (n == OPS_MODELS_MAX)
                    continue;
                edgefleet__model_summary__init(&m[n]);
                m[n].name = (char *)rm->name;
                m[n].sha256 = (ProtobufCBinaryData){REGISTRY_SHA256_LEN, (uint8_t *)rm->sha256};
                m[n].queued = scheduler_queued(c->scheduler, rm->name);
                mp[n] = &m[n];
                n++;
            }
            m[j].agents++;
            m[j].total_slots += rm->total_slots;
            m[j].busy_slots += rm->inflight > rm->busy_slots ? rm->inflight : rm->busy_slots;
        }
    }
    if (r->code == 0) {
        r->models = mp;
        r->n_models = n;
    }
    ops_send_reply(c, client, r);
    free(m);
    free(mp);
}

void ops_evict(coord *c, Edgefleet__OperatorReply *r, const char *agent, const char *user_id)
{
    agent_id_t id = registry_find_name(c->registry, agent);
    const registry_agent *a = registry_get(c->registry, id);
    if (!a) {
        r->code = EF_ENOENT;
        r->message = "no such agent";
        return;
    }
    char name[REGISTRY_NAME_MAX];
    uint8_t rid[REGISTRY_ROUTING_ID_MAX];
    size_t rid_len = a->routing_id_len;
    memcpy(name, a->name, sizeof name);
    memcpy(rid, a->routing_id, rid_len);
    registry_remove(c->registry, id);
    request_agent_gone(c, id, name, "an operator evicted it");
    telemetry_forget(c, name);
    int cut = peers_cut(c, PEERS_AGENTS, rid, rid_len);
    log_warn("agent %s evicted by %s: link %s", name, user_id,
             cut == 0 ? "cut" : "not cut (already gone)");
    r->message = "evicted: its registration is dropped and its link cut (it may register again "
                 "while its key is allowed)";
}
