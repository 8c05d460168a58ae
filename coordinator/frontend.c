/* The client endpoint: a CURVE ROUTER (ZAP domain "clients", keys from allow/operators/ and
 * allow/clients/) taking Request, BatchRequest, Cancel and OperatorCommand from libedgefleet and
 * edgefleetctl. This is the front door: every request is checked here against the limits that
 * apply downstream (prompt size, stop strings, messages) and stripped of nothing — a request
 * carrying fields only the coordinator may set is refused — before it reaches request.c.
 * Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Each item of a batch becomes one request; this bounds what one message can enqueue. */
#define FRONTEND_BATCH_MAX 1024u
/* Agents a batch's planned split is logged for. */
#define FRONTEND_SPLIT_LOG_MAX 16

/* What the scheduler and the agents would refuse later, refused now with the reason (coord.h). */
int frontend_check(const Edgefleet__Request *r, char *why, size_t cap)
{
    if (!r->model || !*r->model)
        return snprintf(why, cap, "request without a model"), EF_EINVAL;
    if (strlen(r->model) >= REGISTRY_MODEL_NAME_MAX)
        return snprintf(why, cap, "model name too long"), EF_EINVAL;
    if ((!r->prompt || !*r->prompt) && r->n_messages == 0)
        return snprintf(why, cap, "request without a prompt or messages"), EF_EINVAL;
    if (r->session_id && strlen(r->session_id) >= SCHED_SESSION_MAX)
        return snprintf(why, cap, "session id too long"), EF_EINVAL;
    if (r->n_resume_tokens > 0 || r->attempt != 0) /* ours to set: fencing and resumes */
        return snprintf(why, cap, "resume_tokens and attempt are set by the coordinator only"),
               EF_EINVAL;
    if (r->n_received_tokens > FLIGHT_RECEIVED_MAX ||
        (r->max_tokens && r->n_received_tokens >= r->max_tokens))
        return snprintf(why, cap, "%zu received tokens (at most %u, and fewer than max_tokens)",
                        r->n_received_tokens, FLIGHT_RECEIVED_MAX),
               EF_EINVAL;
    if (r->n_messages > CODEC_MAX_MESSAGES)
        return snprintf(why, cap, "%zu chat messages (at most %u)", r->n_messages,
                        CODEC_MAX_MESSAGES),
               EF_EINVAL;
    if (r->n_stop > CODEC_MAX_STOP)
        return snprintf(why, cap, "%zu stop strings (at most %u)", r->n_stop, CODEC_MAX_STOP),
               EF_EINVAL;
    for (size_t i = 0; i < r->n_stop; i++) {
        size_t len = strlen(r->stop[i]);
        if (len == 0 || len > CODEC_MAX_STOP_LEN)
            return snprintf(why, cap, "stop string %zu is %zu bytes (1 to %u)", i, len,
                            CODEC_MAX_STOP_LEN),
                   EF_EINVAL;
    }
    size_t bytes = r->prompt ? strlen(r->prompt) : 0;
    for (size_t i = 0; i < r->n_messages; i++)
        bytes += (r->messages[i]->role ? strlen(r->messages[i]->role) : 0) +
                 (r->messages[i]->content ? strlen(r->messages[i]->content) : 0);
    if (bytes > CODEC_MAX_PROMPT_BYTES)
        return snprintf(why, cap, "prompt of %zu bytes (at most %u)", bytes,
                        CODEC_MAX_PROMPT_BYTES),
               EF_ETOOBIG;
    return 0;
}

/* A refusal at the front door: the client hears why; the log says it once a second at most per
 * client key, as a flood of bad requests must not flood the log. */
static void refuse(coord *c, const coord_client *cl, const ProtobufCBinaryData *id,
                   uint32_t batch_index, int code, const char *why)
{
    uint32_t held = 0;
    if (ratelimit_check(c->log_limit, cl->user_id, clock_mono_ms(), &held))
        log_warn("client %s: request refused: %s%s", cl->user_id, why,
                 held ? " (and more since the last such line)" : "");
    delivery_refuse(c, cl, id, batch_index, code, 0, why);
}

static void on_request(coord *c, const Edgefleet__Request *r, const coord_client *cl)
{
    char why[160];
    int rc = frontend_check(r, why, sizeof why);
    if (rc) {
        refuse(c, cl, &r->request_id, 0, rc, why);
        return;
    }
    request_submit(c, r, 0, cl);
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

/* A batch's id as a refusal carries it: one that is not 16 bytes is not echoed, and the empty id
 * then ends the client's call in progress. */
static const ProtobufCBinaryData *batch_id_of(const Edgefleet__BatchRequest *b)
{
    return b->batch_id.len == CODEC_REQUEST_ID_LEN ? &b->batch_id : NULL;
}

/* Each item enters the scheduler on its own, which places it on the least loaded capacity:
 * the batch spreads across agents in proportion to their slots and speed, and each item's
 * replies come back tagged with its batch_index as it completes. A batch refused as a whole
 * gets one Error carrying the batch's id, which ends the whole call in the client. */
static void on_batch(coord *c, const Edgefleet__BatchRequest *b, const coord_client *cl)
{
    char why[224];
    if (b->n_items == 0 || b->n_items > FRONTEND_BATCH_MAX) {
        snprintf(why, sizeof why, "a batch holds 1 to %u items, not %zu", FRONTEND_BATCH_MAX,
                 b->n_items);
        refuse(c, cl, batch_id_of(b), 0, EF_EINVAL, why);
        return;
    }
    for (size_t i = 0; i < b->n_items; i++) {
        char item[160];
        int rc = frontend_check(b->items[i], item, sizeof item);
        if (rc == 0 && strcmp(b->items[i]->model, b->items[0]->model) != 0)
            rc = EF_EINVAL, snprintf(item, sizeof item, "a batch is for one model");
        if (rc) {
            snprintf(why, sizeof why, "batch item %zu: %s", i, item);
            refuse(c, cl, batch_id_of(b), 0, rc, why);
            return;
        }
    }
    log_split(c, b->items[0]->model, (uint32_t)b->n_items);
    for (size_t i = 0; i < b->n_items; i++)
        request_submit(c, b->items[i], (uint32_t)i, cl);
}

static void on_client_message(tsock *s, zmq_msg_t *frames, size_t n, void *user)
{
    coord *c = user;
    if (n != 2 || zmq_msg_size(&frames[0]) == 0 || zmq_msg_size(&frames[0]) > COORD_PEER_MAX)
        return; /* not [routing id, envelope]: not one of ours */
    const char *uid = zmq_msg_gets(&frames[1], "User-Id");
    coord_client cl = {zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), uid ? uid : "",
                       CLIENT_VIA_ZMQ};
    if (peers_seen(c, PEERS_CLIENTS, &frames[0], &frames[1]) != 0)
        return; /* a revoked key: it gets nothing more */
    envelope *env = NULL;
    int rc = codec_decode(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), 0, &env);
    if (rc) { /* no id can be named: an Error with none ends the client's call in progress */
        char why[96];
        snprintf(why, sizeof why, "message refused: %s", ef_strerror(rc));
        refuse(c, &cl, NULL, 0, rc, why);
        return;
    }
    frontend_handle(c, env, &cl);
    codec_free(&env);
}

void frontend_handle(coord *c, const envelope *env, const coord_client *cl)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_REQUEST:
        on_request(c, env->request, cl);
        break;
    case EDGEFLEET__ENVELOPE__BODY_BATCH:
        on_batch(c, env->batch, cl);
        break;
    case EDGEFLEET__ENVELOPE__BODY_CANCEL:
        request_cancel(c, env->cancel->request_id.data, cl);
        break;
    case EDGEFLEET__ENVELOPE__BODY_COMMAND:
        ops_handle(c, env->command, cl);
        break;
    default: {
        char why[96];
        snprintf(why, sizeof why, "a %s is not a message a client may send", codec_body_name(env));
        refuse(c, cl, NULL, 0, EF_EPROTO, why);
        break;
    }
    }
}

int frontend_open(coord *c, ef_errmsg *em)
{
    char dir[1024];
    /* Operators first: a key in both lists is taken for an operator's. */
    const char *subdirs[] = {"operators", "clients"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/%s", c->cfg.allow_dir, subdirs[i]);
        if (transport_allow_dir(c->transport, "clients", dir) != 0)
            return errmsg_set(em, EF_ENOMEM, "out of memory registering %s", dir);
    }
    tsock_params p = {.type = ZMQ_ROUTER,
                      .endpoint = c->cfg.clients_endpoint,
                      .bind = 1,
                      .keys = &c->keys,
                      .zap_domain = "clients",
                      .on_recv = on_client_message,
                      .on_event = peers_on_event,
                      .user = c};
    c->clients = tsock_new(c->transport, &p, em);
    return c->clients ? 0 : EF_EZMQ;
}
