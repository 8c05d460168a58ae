/* The way from the coordinator to a client (see request.h). A ROUTER refuses a message when the
 * client's queue is full (it is not reading, or reads slowly): rather than drop that token
 * chunk and leave a gap the client cannot see, the request keeps what is not sent yet, in
 * order — the waiting chunks merged into one, then its final Done or Error — and a timer offers
 * it again every DELIVERY_RETRY_MS. A backlog that grows past DELIVERY_BACKLOG_MAX or takes
 * nothing for --client-stall-ms costs that request alone: it is cancelled on its agent and
 * ends with EF_ESTALLED. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"
#include "grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often a backlog is offered again: a ROUTER gives no per-peer "writable" event. */
#define DELIVERY_RETRY_MS 50

typedef struct flight_backlog {
    int has_chunk; /* the chunks not sent yet, merged into one */
    uint32_t seq, batch_index;
    char agent[REGISTRY_NAME_MAX];
    char *text;
    size_t text_len, text_cap;
    int32_t *tokens;
    size_t n_tokens, tokens_cap;
    uint8_t *final; /* the request's last message, packed: it has ended */
    size_t final_len;
    uint64_t progress_ms; /* when the client last took something (or the backlog began) */
} flight_backlog;

int delivery_send(coord *c, client_via via, const uint8_t *client, size_t client_len, envelope *env)
{
    int rc = via == CLIENT_VIA_HTTP ? gateway_deliver(c->gateway, client, client_len, env)
                                    : tsock_send_env(c->clients, client, client_len, env);
    if (rc && rc != EF_ENOTCONN && rc != EF_EBUSY)
        log_warn("reply (%s) to a client failed: %s", codec_body_name(env), ef_strerror(rc));
    return rc;
}

void delivery_refuse(coord *c, const coord_client *client, const ProtobufCBinaryData *request_id,
                     uint32_t batch_index, int code, uint32_t retry_after_ms, const char *message)
{
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    if (request_id)
        e.request_id = *request_id;
    e.code = code;
    e.message = (char *)(message ? message : ef_strerror(code));
    e.retry_after_ms = retry_after_ms;
    e.batch_index = batch_index;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    env.error = &e;
    delivery_send(c, client->via, client->routing_id, client->routing_id_len, &env);
}

static void on_delivery_timer(uv_timer_t *t);

/* A ZeroMQ client's routing id names a connection, not a key: the stream goes out only while
 * that id is held by the key that asked (peers.h). Found by reading: a client that chose the
 * routing id of one that had just left got the rest of its answer. */
static int client_here(const coord *c, const flight *f)
{
    return f->via != CLIENT_VIA_ZMQ ||
           peers_holds(c->peers, PEERS_CLIENTS, f->client, f->client_len, f->client_key);
}

/* ---- the backlog --------------------------------------------------------------------------- */

static size_t backlog_bytes(const flight_backlog *b)
{
    return b->text_len + b->n_tokens * sizeof *b->tokens + b->final_len;
}

static flight_backlog *backlog_of(coord *c, flight *f)
{
    if (f->backlog)
        return f->backlog;
    f->backlog = calloc(1, sizeof *f->backlog);
    if (!f->backlog)
        return NULL;
    f->backlog->progress_ms = clock_mono_ms();
    f->bl_prev = NULL;
    f->bl_next = c->backlog;
    if (c->backlog)
        c->backlog->bl_prev = f;
    c->backlog = f;
    if (!uv_is_active((uv_handle_t *)&c->delivery_timer))
        uv_timer_start(&c->delivery_timer, on_delivery_timer, DELIVERY_RETRY_MS, DELIVERY_RETRY_MS);
    return f->backlog;
}

static void backlog_drop_chunk(flight_backlog *b)
{
    b->has_chunk = 0;
    b->text_len = b->n_tokens = 0;
}

/* Take the flight out of the backlog list and free its backlog (the flight stays). */
static void backlog_free(coord *c, flight *f)
{
    flight_backlog *b = f->backlog;
    if (!b)
        return;
    if (f->bl_prev)
        f->bl_prev->bl_next = f->bl_next;
    else
        c->backlog = f->bl_next;
    if (f->bl_next)
        f->bl_next->bl_prev = f->bl_prev;
    f->bl_prev = f->bl_next = NULL;
    free(b->text);
    free(b->tokens);
    free(b->final);
    free(b);
    f->backlog = NULL;
}

/* Append a chunk to the merged one. 0, or EF_ESTALLED past the bound, EF_ENOMEM. */
static int backlog_add_chunk(flight_backlog *b, const Edgefleet__TokenChunk *tc)
{
    size_t len = tc->text ? strlen(tc->text) : 0;
    if (backlog_bytes(b) + len + tc->n_token_ids * sizeof *b->tokens > DELIVERY_BACKLOG_MAX)
        return EF_ESTALLED;
    if (grow_array((void **)&b->text, &b->text_cap, b->text_len + len + 1, 1) != 0 ||
        grow_array((void **)&b->tokens, &b->tokens_cap, b->n_tokens + tc->n_token_ids + 1,
                   sizeof *b->tokens) != 0)
        return EF_ENOMEM;
    if (!b->has_chunk) {
        b->has_chunk = 1;
        b->seq = tc->seq;
        b->batch_index = tc->batch_index;
        snprintf(b->agent, sizeof b->agent, "%s", tc->agent_name ? tc->agent_name : "");
    }
    memcpy(b->text + b->text_len, tc->text ? tc->text : "", len);
    b->text_len += len;
    b->text[b->text_len] = '\0';
    /* A text-only chunk has no token array at all (NULL): memcpy from NULL is undefined even
     * for 0 bytes (found by tests/fuzz/fuzz_coordinator.c). */
    if (tc->n_token_ids)
        memcpy(b->tokens + b->n_tokens, tc->token_ids, tc->n_token_ids * sizeof *b->tokens);
    b->n_tokens += tc->n_token_ids;
    return 0;
}

/* Offer the backlog to the client, oldest first. 0 all sent, EF_EBUSY not yet, EF_ENOTCONN. */
static int backlog_flush(coord *c, flight *f)
{
    flight_backlog *b = f->backlog;
    if (!client_here(c, f))
        return EF_ENOTCONN;
    if (b->has_chunk) {
        Edgefleet__TokenChunk tc = EDGEFLEET__TOKEN_CHUNK__INIT;
        tc.request_id = f->request->request_id;
        tc.seq = b->seq;
        tc.text = b->text ? b->text : "";
        tc.token_ids = b->tokens;
        tc.n_token_ids = b->n_tokens;
        tc.batch_index = b->batch_index;
        tc.agent_name = b->agent;
        envelope env = EDGEFLEET__ENVELOPE__INIT;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
        env.token_chunk = &tc;
        int rc = delivery_send(c, f->via, f->client, f->client_len, &env);
        if (rc == EF_EBUSY || rc == EF_ENOTCONN)
            return rc;
        backlog_drop_chunk(b); /* sent (or unsendable for good: logged) */
        b->progress_ms = clock_mono_ms();
    }
    if (b->final) {
        int rc = f->via == CLIENT_VIA_HTTP
                     ? gateway_deliver_packed(c->gateway, f->client, f->client_len, b->final,
                                              b->final_len)
                     : tsock_send(c->clients, f->client, f->client_len, b->final, b->final_len);
        if (rc == EF_EBUSY || rc == EF_ENOTCONN)
            return rc;
    }
    return 0;
}

/* ---- the API ------------------------------------------------------------------------------- */

int delivery_chunk(coord *c, flight *f, const Edgefleet__TokenChunk *tc)
{
    if (!client_here(c, f))
        return EF_ENOTCONN;
    if (!f->backlog) {
        envelope env = EDGEFLEET__ENVELOPE__INIT;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
        env.token_chunk = (Edgefleet__TokenChunk *)tc;
        int rc = delivery_send(c, f->via, f->client, f->client_len, &env);
        if (rc != EF_EBUSY)
            return rc == EF_ENOTCONN ? rc : 0;
    }
    /* Only the timer offers a backlog again: re-encoding it for every chunk that arrives would
     * let one slow reader cost us its whole backlog per token. */
    flight_backlog *b = backlog_of(c, f);
    if (b && backlog_add_chunk(b, tc) == 0)
        return 0;
    if (b) /* past the bound: what waits is dropped, the caller ends the request */
        backlog_drop_chunk(b);
    return EF_ESTALLED;
}

void delivery_end(coord *c, flight **f_p, envelope *env)
{
    flight *f = *f_p;
    *f_p = NULL;
    int rc = EF_ENOTCONN;
    if (f->state != FLIGHT_CLIENT_GONE && !client_here(c, f))
        f->state = FLIGHT_CLIENT_GONE;
    if (f->state != FLIGHT_CLIENT_GONE && !f->backlog)
        rc = delivery_send(c, f->via, f->client, f->client_len, env);
    if (f->state != FLIGHT_CLIENT_GONE && (f->backlog || rc == EF_EBUSY)) {
        flight_backlog *b = backlog_of(c, f);
        size_t len = 0;
        if (b && codec_encode(env, tsock_max_msg_size(c->clients), &b->final, &len) == 0) {
            b->final_len = len;
            b->progress_ms = clock_mono_ms(); /* the end gets its own window to go out */
            if (backlog_flush(c, f) == EF_EBUSY)
                return; /* the timer finishes the job; the flight is the backlog's now */
        }
    }
    backlog_free(c, f);
    flight_destroy(&f);
}

static void on_delivery_timer(uv_timer_t *t)
{
    coord *c = t->data;
    uint64_t now = clock_mono_ms();
    for (flight *f = c->backlog, *next; f; f = next) {
        next = f->bl_next;
        int rc = backlog_flush(c, f);
        int ended = f->backlog->final != NULL;
        if (rc == EF_EBUSY && now - f->backlog->progress_ms < c->cfg.client_stall_ms)
            continue;
        if (rc == 0 || ended) {
            if (rc != 0) {
                char hex[33];
                log_warn("request %s: its client %s did not take its last %zu bytes in %u ms; "
                         "dropped",
                         codec_id_hex(f->request->request_id, hex), f->client_key,
                         backlog_bytes(f->backlog), c->cfg.client_stall_ms);
            }
            backlog_free(c, f);
            if (ended)
                flight_destroy(&f);
            continue;
        }
        /* Still running: the client is gone or stalled. The request ends on its agent's word. */
        backlog_drop_chunk(f->backlog);
        f->backlog->progress_ms = now;
        char msg[96];
        snprintf(msg, sizeof msg, "the client did not read its stream for %u ms",
                 c->cfg.client_stall_ms);
        /* A flight that is queued (a resume waiting for an agent) ends inside request_abort
         * and may be freed there: only one on an agent may be touched afterwards (found by
         * tests/fuzz/fuzz_coordinator.c: a use after free). */
        sched_request *sr = scheduler_find(c->scheduler, f->request->request_id.data);
        int on_agent = sr && sr->payload == f && sr->state == SCHED_INFLIGHT;
        request_abort(c, f, rc == EF_ENOTCONN ? EF_ENOTCONN : EF_ESTALLED,
                      rc == EF_ENOTCONN ? "client gone" : msg);
        if (on_agent && rc == EF_ENOTCONN)
            f->state = FLIGHT_CLIENT_GONE;
    }
    if (!c->backlog)
        uv_timer_stop(t);
}

int delivery_init(coord *c)
{
    c->backlog = NULL;
    c->delivery_timer.data = c;
    return uv_timer_init(c->loop, &c->delivery_timer) == 0 ? 0 : EF_EINTERNAL;
}

void delivery_close(coord *c)
{
    while (c->backlog) {
        flight *f = c->backlog;
        int ended = f->backlog->final != NULL;
        backlog_free(c, f);
        if (ended) /* a running one is the scheduler's to free */
            flight_destroy(&f);
    }
    uv_timer_stop(&c->delivery_timer);
    uv_close((uv_handle_t *)&c->delivery_timer, NULL);
}
