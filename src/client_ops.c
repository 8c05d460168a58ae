/* libedgefleet's operator commands: fleet status, drain and undrain. One OperatorCommand out,
 * one OperatorReply (matched by command id) back. The coordinator answers them only for keys in
 * its operators allowlist. Runs on the caller's thread; see include/edgefleet.h. */
#include "client_internal.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Operator replies are immediate; this bounds a command when the params set no timeout. */
#define OPS_TIMEOUT_DEFAULT_MS 10000u

/* Send one command and wait for its reply. 0 with *out (free with codec_free) or EF_E*. */
static int command_run(ef_client_t *c, Edgefleet__CommandKind kind, const char *agent,
                       envelope **out)
{
    *out = NULL;
    int rc = client_call_begin(c);
    if (rc)
        return rc;
    uint8_t id[CODEC_REQUEST_ID_LEN];
    client_random_id(id);
    Edgefleet__OperatorCommand cmd = EDGEFLEET__OPERATOR_COMMAND__INIT;
    cmd.command_id.data = id;
    cmd.command_id.len = sizeof id;
    cmd.kind = kind;
    cmd.agent_name = (char *)(agent ? agent : "");
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_COMMAND;
    env.command = &cmd;
    if ((rc = client_send(c, &env)) != 0)
        return rc;
    uint32_t timeout = c->request_timeout_ms ? c->request_timeout_ms : OPS_TIMEOUT_DEFAULT_MS;
    uint64_t end = clock_mono_ms() + timeout;
    for (;;) {
        uint64_t now = clock_mono_ms();
        envelope *reply = NULL;
        rc = client_recv(c, now < end ? (uint32_t)(end - now) : 0, &reply);
        if (rc == EF_ETIMEDOUT)
            return client_fail(c, rc, "no reply from the coordinator in %u ms", timeout);
        if (rc)
            return rc;
        const Edgefleet__OperatorReply *r = reply->reply;
        if (reply->body_case == EDGEFLEET__ENVELOPE__BODY_REPLY && r->command_id.len == sizeof id &&
            memcmp(r->command_id.data, id, sizeof id) == 0) {
            *out = reply;
            if (r->code >= 0)
                return 0;
            rc = client_wire_error(r->code);
            return client_fail(c, rc, "%s",
                               r->message && *r->message ? r->message : ef_strerror(rc));
        }
        if (reply->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR &&
            reply->error->request_id.len == 0) {
            /* The coordinator could not read a frame of ours: this command will get no reply. */
            rc = client_wire_error(reply->error->code);
            client_fail(c, rc, "the coordinator refused the command: %s",
                        *reply->error->message ? reply->error->message : ef_strerror(rc));
            codec_free(&reply);
            return rc;
        }
        codec_free(&reply); /* a stale reply to an earlier call */
    }
}

static void copy_name(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int copy_agent(ef_agent_status *a, const Edgefleet__AgentStatus *s)
{
    copy_name(a->name, sizeof a->name, s->agent_name);
    copy_name(a->hostname, sizeof a->hostname, s->hostname);
    a->gen_tps = s->gen_tps;
    a->prompt_tps = s->prompt_tps;
    a->draining = s->draining;
    a->simulated = s->simulated;
    a->last_seen_ms_ago = s->last_seen_ms_ago;
    a->served = s->served;
    if (s->n_models == 0)
        return 0;
    a->models = calloc(s->n_models, sizeof *a->models);
    if (!a->models)
        return EF_ENOMEM;
    a->n_models = s->n_models;
    for (size_t i = 0; i < s->n_models; i++) {
        copy_name(a->models[i].model, sizeof a->models[i].model, s->models[i]->model);
        a->models[i].busy_slots = s->models[i]->busy_slots;
        a->models[i].total_slots = s->models[i]->total_slots;
    }
    return 0;
}

static int copy_status(const Edgefleet__FleetStatus *fs, ef_fleet_status *st)
{
    if (!fs)
        return 0;
    if (fs->n_agents && !(st->agents = calloc(fs->n_agents, sizeof *st->agents)))
        return EF_ENOMEM;
    st->n_agents = fs->n_agents;
    for (size_t i = 0; i < fs->n_agents; i++)
        if (copy_agent(&st->agents[i], fs->agents[i]) != 0)
            return EF_ENOMEM;
    if (fs->n_queues && !(st->queues = calloc(fs->n_queues, sizeof *st->queues)))
        return EF_ENOMEM;
    st->n_queues = fs->n_queues;
    for (size_t i = 0; i < fs->n_queues; i++) {
        copy_name(st->queues[i].model, sizeof st->queues[i].model, fs->queues[i]->model);
        st->queues[i].queued = fs->queues[i]->queued;
        st->queues[i].capacity = fs->queues[i]->capacity;
    }
    return 0;
}

EF_API int ef_client_status(ef_client_t *client, ef_fleet_status **out)
{
    if (!out)
        return EF_EINVAL;
    *out = NULL;
    if (!client)
        return EF_EINVAL;
    envelope *reply = NULL;
    int rc = command_run(client, EDGEFLEET__COMMAND_KIND__COMMAND_STATUS, NULL, &reply);
    if (rc) {
        codec_free(&reply);
        return rc;
    }
    ef_fleet_status *st = calloc(1, sizeof *st);
    if (!st || copy_status(reply->reply->status, st) != 0) {
        ef_fleet_status_free(&st);
        codec_free(&reply);
        return client_fail(client, EF_ENOMEM, "out of memory copying the fleet status");
    }
    codec_free(&reply);
    *out = st;
    return 0;
}

EF_API void ef_fleet_status_free(ef_fleet_status **status_p)
{
    if (!status_p || !*status_p)
        return;
    ef_fleet_status *st = *status_p;
    for (size_t i = 0; i < st->n_agents; i++)
        free(st->agents[i].models);
    free(st->agents);
    free(st->queues);
    free(st);
    *status_p = NULL;
}

EF_API int ef_client_drain(ef_client_t *client, const char *agent, int enable)
{
    if (!client || !agent || !*agent)
        return EF_EINVAL;
    envelope *reply = NULL;
    int rc = command_run(client,
                         enable ? EDGEFLEET__COMMAND_KIND__COMMAND_DRAIN
                                : EDGEFLEET__COMMAND_KIND__COMMAND_UNDRAIN,
                         agent, &reply);
    codec_free(&reply);
    return rc;
}
