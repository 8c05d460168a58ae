/* The agent's side of the conversation: Registered, Heartbeat, Request, Cancel and Drain from
 * the coordinator; TokenChunk, Done and Error back from the engine's events. Every frame is
 * decoded by the codec first; a bad request gets an Error and nothing else changes.
 * Loop thread only. */
#include "uplink_internal.h"

#include "clock.h"
#include "log.h"

#include <string.h>

static void reply_error(uplink *u, const Edgefleet__Request *req, int code, const char *message)
{
    ProtobufCBinaryData id = req->request_id;
    Edgefleet__Error er = EDGEFLEET__ERROR__INIT;
    er.request_id = id;
    er.code = code;
    er.message = (char *)message;
    er.batch_index = req->batch_index;
    er.attempt = req->attempt;
    if (code == EF_EBUSY || code == EF_EDRAINING)
        er.retry_after_ms = u->hb_ms; /* a slot frees at the latest by the next heartbeat */
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    env.error = &er;
    uint8_t key[16] = {0};
    if (id.len)
        memcpy(key, id.data, id.len < 16 ? id.len : 16);
    uplink_reply(u, &env, key, 0);
}

static void on_request(uplink *u, const Edgefleet__Request *req)
{
    char hex[33];
    codec_id_hex(req->request_id, hex);
    if (u->draining) {
        reply_error(u, req, EF_EDRAINING, "agent is draining");
        return;
    }
    ef_errmsg em = {{0}};
    int rc = engine_submit(u->engine, req, &em);
    if (rc == EF_EDUPLICATE) {
        log_info("request %s: a retry of a request already running; ignored", hex);
    } else if (rc != 0) {
        log_warn("request %s refused: %s: %s", hex, ef_err_name(rc), em.msg);
        reply_error(u, req, rc, em.msg);
    }
}

static void on_registered(uplink *u, const Edgefleet__Registered *r)
{
    if (!r->accepted) {
        log_error("coordinator refused registration: %s", r->reason ? r->reason : "");
        u->want_reconnect = "registration refused";
        return;
    }
    if (r->agent_name && *r->agent_name)
        snprintf(u->name, sizeof u->name, "%s", r->agent_name);
    if (r->heartbeat_interval_ms)
        u->coord_hb_ms = r->heartbeat_interval_ms;
    if (r->liveness)
        u->liveness = r->liveness;
    u->state = UPLINK_READY;
    backoff_connected(&u->backoff, clock_mono_ms());
    log_info("registered as \"%s\" with coordinator %s (heartbeat %u ms, liveness %u); %zu "
             "replies to deliver",
             u->name,
             r->coordinator_name && *r->coordinator_name ? r->coordinator_name : u->endpoint,
             u->coord_hb_ms, u->liveness, outbox_unsent(u->outbox));
    uplink_flush(u);
}

static void dispatch(uplink *u, const envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED:
        on_registered(u, env->agent_registered);
        break;
    case EDGEFLEET__ENVELOPE__BODY_HEARTBEAT:
        /* Life; and its timestamp, echoed in telemetry, gives the coordinator its RTT. */
        u->echo_unix_ms = env->heartbeat->sent_unix_ms;
        u->echo_at_ms = clock_mono_ms();
        break;
    case EDGEFLEET__ENVELOPE__BODY_REQUEST:
        on_request(u, env->request);
        break;
    case EDGEFLEET__ENVELOPE__BODY_CANCEL:
        if (env->cancel->request_id.len == CODEC_REQUEST_ID_LEN)
            engine_cancel(u->engine, env->cancel->request_id.data);
        break;
    case EDGEFLEET__ENVELOPE__BODY_DRAIN:
        if (u->stop_done && !env->drain->enable) {
            log_info("undrain refused: this agent is stopping");
            break;
        }
        u->draining = env->drain->enable;
        log_info("drain %s", u->draining ? "on: finishing running requests, taking no new ones"
                                         : "off: taking requests again");
        break;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        /* An error about no request: the coordinator does not know us (it restarted). */
        if (env->error->request_id.len == 0 && u->state == UPLINK_READY) {
            log_warn("coordinator says: %s; registering again",
                     env->error->message ? env->error->message : "");
            uplink_rewind(u, u->prev_seen_ms);
            uplink_register(u);
        }
        break;
    default:
        log_debug("ignored a %s from the coordinator", codec_body_name(env));
    }
}

void uplink_handle(uplink *u, const envelope *env)
{
    u->prev_seen_ms = u->last_seen_ms;
    u->last_seen_ms = clock_mono_ms();
    dispatch(u, env);
}

void uplink_on_recv(tsock *s, zmq_msg_t *frames, size_t n_frames, void *user)
{
    (void)s;
    uplink *u = user;
    zmq_msg_t *payload = &frames[n_frames - 1];
    envelope *env = NULL;
    int rc = codec_decode(zmq_msg_data(payload), zmq_msg_size(payload), 0, &env);
    if (rc != 0) {
        log_warn("dropped a bad frame from the coordinator (%zu bytes): %s", zmq_msg_size(payload),
                 ef_err_name(rc));
        return;
    }
    uplink_handle(u, env);
    codec_free(&env);
}

static void send_event(uplink *u, const engine_event *ev)
{
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    ProtobufCBinaryData id = {CODEC_REQUEST_ID_LEN, (uint8_t *)ev->request_id};
    Edgefleet__TokenChunk tc = EDGEFLEET__TOKEN_CHUNK__INIT;
    Edgefleet__Done d = EDGEFLEET__DONE__INIT;
    Edgefleet__Usage us = EDGEFLEET__USAGE__INIT;
    Edgefleet__Timings tm = EDGEFLEET__TIMINGS__INIT;
    Edgefleet__Error er = EDGEFLEET__ERROR__INIT;
    if (ev->kind == ENGINE_EV_CHUNK) {
        tc.request_id = id;
        tc.seq = ev->seq;
        tc.text = ev->text ? ev->text : "";
        tc.n_token_ids = ev->n_tokens;
        tc.token_ids = ev->tokens;
        tc.batch_index = ev->batch_index;
        tc.attempt = ev->attempt;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
        env.token_chunk = &tc;
    } else if (ev->kind == ENGINE_EV_DONE) {
        us.prompt_tokens = ev->prompt_tokens;
        us.prompt_evaluated = ev->prompt_evaluated;
        us.completion_tokens = ev->completion_tokens;
        tm.queue_ms = ev->queue_ms;
        tm.prompt_ms = ev->prompt_ms;
        tm.generation_ms = ev->generation_ms;
        tm.first_token_ms = ev->first_token_ms;
        d.request_id = id;
        d.finish = (Edgefleet__FinishReason)ev->finish;
        d.usage = &us;
        d.timings = &tm;
        d.batch_index = ev->batch_index;
        d.attempt = ev->attempt;
        d.seed = ev->seed;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
        env.done = &d;
    } else {
        er.request_id = id;
        er.code = ev->code;
        er.message = (char *)ev->message;
        er.batch_index = ev->batch_index;
        er.tokens_sent = ev->tokens_sent;
        er.attempt = ev->attempt;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
        env.error = &er;
    }
    uplink_reply(u, &env, ev->request_id, ev->deadline_unix_ms);
}

void uplink_deliver(uplink *u)
{
    engine_event *ev = engine_take_events(u->engine);
    while (ev) {
        engine_event *next = ev->next;
        if (u->observe)
            u->observe(ev, u->observe_user);
        send_event(u, ev);
        engine_event_free(&ev);
        ev = next;
    }
    uplink_check_stop(u);
}

/* What the link's monitor reports. A handshake that keeps failing would otherwise only show as
 * "coordinator silent": say what failed and what to check, at most once per liveness window. */
void uplink_on_event(tsock *s, uint16_t event, uint32_t value, void *user)
{
    (void)s;
    uplink *u = user;
    const char *check = NULL;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        check = "the coordinator refused this agent's key: is its .pub in the coordinator's "
                "allow/agents/?";
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
             event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        check = "check --server-key (the coordinator's .pub) and that this agent's .pub is in "
                "the coordinator's allow/agents/";
    else if (event == ZMQ_EVENT_CONNECT_RETRIED)
        check = "is the coordinator running and reachable at that address?";
    if (!check)
        return;
    uint64_t now = clock_mono_ms();
    if (u->handshake_logged_ms && now - u->handshake_logged_ms < uplink_window_ms(u))
        return;
    u->handshake_logged_ms = now;
    char what[160];
    log_warn("link to %s: %s; %s", u->endpoint, tsock_event_text(event, value, what, sizeof what),
             check);
}
