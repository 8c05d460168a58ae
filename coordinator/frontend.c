/* The client endpoint: a CURVE ROUTER (ZAP domain "clients", keys from allow/operators/ and
 * allow/clients/) taking Request, BatchRequest, Cancel and OperatorCommand from libedgefleet and
 * edgefleetctl, checking each at the edge before it reaches the scheduler, and sending the
 * answers back by routing id. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Each item of a batch becomes one request; this bounds what one message can enqueue. */
#define FRONTEND_BATCH_MAX 1024u
/* Agents a batch's planned split is logged for. */
#define FRONTEND_SPLIT_LOG_MAX 16

int frontend_send(coord *c, const uint8_t *client, size_t client_len, envelope *env)
{
    int rc = tsock_send_env(c->clients, client, client_len, env);
    if (rc && rc != EF_ENOTCONN)
        log_warn("reply (%s) to a client failed: %s", codec_body_name(env), ef_strerror(rc));
    return rc;
}

void frontend_send_error(coord *c, const uint8_t *client, size_t client_len,
                         const ProtobufCBinaryData *request_id, uint32_t batch_index, int code,
                         uint32_t retry_after_ms, uint32_t tokens_sent, const char *message)
{
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    if (request_id)
        e.request_id = *request_id;
    e.code = code;
    e.message = (char *)(message ? message : ef_strerror(code));
    e.retry_after_ms = retry_after_ms;
    e.batch_index = batch_index;
    e.tokens_sent = tokens_sent;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    env.error = &e;
    frontend_send(c, client, client_len, &env);
}

/* What the scheduler cannot check: a request must say what to run. Returns 0 or a message. */
static const char *request_problem(const Edgefleet__Request *r)
{
    if (!r->model || !*r->model)
        return "request without a model";
    if (strlen(r->model) >= REGISTRY_MODEL_NAME_MAX)
        return "model name too long";
    if ((!r->prompt || !*r->prompt) && r->n_messages == 0)
        return "request without a prompt or messages";
    if (r->session_id && strlen(r->session_id) >= SCHED_SESSION_MAX)
        return "session id too long";
    return NULL;
}

static void on_request(coord *c, const Edgefleet__Request *r, const uint8_t *peer, size_t len)
{
    const char *problem = request_problem(r);
    if (problem) {
        frontend_send_error(c, peer, len, &r->request_id, 0, EF_EINVAL, 0, 0, problem);
        return;
    }
    dispatch_submit(c, r, 0, peer, len);
}

/* Log how the scheduler would share the batch out, so an operator can see the split. */
static void log_split(coord *c, const char *model, uint32_t n)
{
    agent_id_t agents[FRONTEND_SPLIT_LOG_MAX];
    uint32_t counts[FRONTEND_SPLIT_LOG_MAX];
    size_t n_agents = 0;
    if (scheduler_plan_split(c->scheduler, model, n, clock_mono_ms(), agents, counts,
                             FRONTEND_SPLIT_LOG_MAX, &n_agents) != 0)
        return;
    char line[512];
    size_t used = 0;
    line[0] = '\0';
    for (size_t i = 0; i < n_agents && used < sizeof line; i++) {
        const registry_agent *a = registry_get(c->registry, agents[i]);
        int w = snprintf(line + used, sizeof line - used, "%s%s=%u", i ? ", " : "",
                         a ? a->name : "?", counts[i]);
        if (w > 0)
            used += (size_t)w;
    }
    log_info("batch of %u for %s: planned split %s", n, model, line);
}

/* Refuse a whole batch: nothing of it was queued. The Error carries the batch's id (PROTOCOL.md),
 * so the client ends every item of it; an id that is not 16 bytes is not echoed, and the empty
 * id then ends the client's call in progress. */
static void refuse_batch(coord *c, const Edgefleet__BatchRequest *b, const uint8_t *peer,
                         size_t len, uint32_t batch_index, const char *why)
{
    frontend_send_error(c, peer, len, b->batch_id.len == CODEC_REQUEST_ID_LEN ? &b->batch_id : NULL,
                        batch_index, EF_EINVAL, 0, 0, why);
}

/* Each item enters the scheduler on its own, which places it on the least loaded capacity:
 * the batch spreads across agents in proportion to their slots and speed, and each item's
 * replies come back tagged with its batch_index as it completes. */
static void on_batch(coord *c, const Edgefleet__BatchRequest *b, const uint8_t *peer, size_t len)
{
    if (b->n_items == 0 || b->n_items > FRONTEND_BATCH_MAX) {
        refuse_batch(c, b, peer, len, 0, "a batch holds 1 to 1024 items");
        return;
    }
    for (size_t i = 0; i < b->n_items; i++) {
        const char *problem = request_problem(b->items[i]);
        if (problem || strcmp(b->items[i]->model, b->items[0]->model) != 0) {
            char why[160];
            snprintf(why, sizeof why, "batch item %zu: %s", i,
                     problem ? problem : "a batch is for one model");
            refuse_batch(c, b, peer, len, (uint32_t)i, why);
            return;
        }
    }
    log_split(c, b->items[0]->model, (uint32_t)b->n_items);
    for (size_t i = 0; i < b->n_items; i++)
        dispatch_submit(c, b->items[i], (uint32_t)i, peer, len);
}

static void on_client_message(tsock *s, zmq_msg_t *frames, size_t n, void *user)
{
    coord *c = user;
    if (n != 2 || zmq_msg_size(&frames[0]) == 0 || zmq_msg_size(&frames[0]) > COORD_PEER_MAX)
        return; /* not [routing id, envelope]: not one of ours */
    const uint8_t *peer = zmq_msg_data(&frames[0]);
    size_t peer_len = zmq_msg_size(&frames[0]);
    envelope *env = NULL;
    int rc = codec_decode(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), 0, &env);
    if (rc) {
        /* Nothing in it can be named: the empty id ends the client's call in progress. */
        char why[128];
        snprintf(why, sizeof why, "the coordinator could not decode a message: %s",
                 ef_strerror(rc));
        log_warn("client message refused: %s", ef_strerror(rc));
        frontend_send_error(c, peer, peer_len, NULL, 0, rc, 0, 0, why);
        return;
    }
    const char *user_id = zmq_msg_gets(&frames[1], "User-Id");
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_REQUEST:
        on_request(c, env->request, peer, peer_len);
        break;
    case EDGEFLEET__ENVELOPE__BODY_BATCH:
        on_batch(c, env->batch, peer, peer_len);
        break;
    case EDGEFLEET__ENVELOPE__BODY_CANCEL:
        dispatch_cancel(c, env->cancel->request_id.data, peer, peer_len);
        break;
    case EDGEFLEET__ENVELOPE__BODY_COMMAND:
        ops_handle(c, env->command, user_id ? user_id : "", peer, peer_len);
        break;
    default:
        log_warn("client %s sent a %s: not a client message", user_id ? user_id : "?",
                 codec_body_name(env));
        frontend_send_error(c, peer, peer_len, NULL, 0, EF_EPROTO, 0, 0,
                            "not a message a client may send");
        break;
    }
    codec_free(&env);
}

int frontend_open(coord *c, ef_errmsg *em)
{
    char dir[1024];
    /* Operators first: a key in both lists is taken for an operator's. */
    const char *subdirs[] = {"operators", "clients"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/%s", c->cfg.allow_dir, subdirs[i]);
        if (transport_allow_dir(c->transport, "clients", dir) != 0 ||
            transport_allow_dir(c->transport, "telemetry", dir) != 0)
            return errmsg_set(em, EF_ENOMEM, "out of memory registering %s", dir);
    }
    tsock_params p = {.type = ZMQ_ROUTER,
                      .endpoint = c->cfg.clients_endpoint,
                      .bind = 1,
                      .keys = &c->keys,
                      .zap_domain = "clients",
                      .on_recv = on_client_message,
                      .user = c};
    c->clients = tsock_new(c->transport, &p, em);
    return c->clients ? 0 : EF_EZMQ;
}
