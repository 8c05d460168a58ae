/* The gateway's core (gateway.h): the listener and its routes, the completion handlers that
 * turn a JSON body into a fleet request, and the table of streams that replies find by routing
 * id. A stream's memory is freed only when h2o frees its request (the anchor's dispose), so
 * nothing h2o may still call back into is gone early. Loop thread. */
#include "gateway_internal.h"

#include "clock.h"
#include "log.h"

#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- the stream table ---------------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

gw_stream *gw_find(gateway *g, const uint8_t *id, size_t len)
{
    if (!g || len != GW_ID_LEN)
        return NULL;
    uint32_t slot = get_u32(id), gen = get_u32(id + 4);
    if (slot >= g->n_slots || !g->slots[slot] || g->gens[slot] != gen)
        return NULL;
    return g->slots[slot];
}

static int take_slot(gateway *g, gw_stream *st)
{
    for (uint32_t i = 0; i < g->n_slots; i++) {
        if (g->slots[i])
            continue;
        g->slots[i] = st;
        st->slot = i;
        st->gen = ++g->gens[i];
        g->n_active++;
        return 0;
    }
    return EF_EBUSY;
}

void gw_detach(gw_stream *st)
{
    gateway *g = st->g;
    if (st->slot == UINT32_MAX)
        return;
    g->slots[st->slot] = NULL;
    g->n_active--;
    st->slot = UINT32_MAX;
}

static coord_client client_of(gw_stream *st, uint8_t id[GW_ID_LEN])
{
    put_u32(id, st->slot);
    put_u32(id + 4, st->gen);
    return (coord_client){id, GW_ID_LEN, st->user_id, CLIENT_VIA_HTTP};
}

void gw_abandon(gw_stream *st)
{
    if (st->slot != UINT32_MAX) {
        uint8_t id[GW_ID_LEN];
        coord_client cl = client_of(st, id);
        bool ended = st->ended;
        gw_detach(st); /* first: nothing the fleet says now reaches this stream */
        if (!ended)
            request_client_gone(st->g->c, st->request_id, &cl);
    }
    if (!st->req || st->final_sent)
        return;
    if (!st->started) { /* nobody reads it: the write makes h2o find the closed connection */
        st->final_sent = true;
        http_reply(st->req, 499, "text/plain", "", 0, NULL);
        return;
    }
    st->ended = true;
    st->pending_len = 0;
    gw_out_flush(st);
}

static void stream_free(gw_stream *st)
{
    free(st->text);
    free(st->pending);
    free(st->writing);
    free(st);
}

/* h2o frees the request: the response is out, or the connection is gone. */
static void on_req_dispose(void *p)
{
    gw_stream *st = *(gw_stream **)p;
    if (!st)
        return;
    st->req = NULL;
    gw_abandon(st);
    stream_free(st);
}

/* h2o gives up on a streamed response (the client hung up): no h2o_send any more. */
static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    gw_stream *st = H2O_STRUCT_FROM_MEMBER(gw_stream, generator, gen);
    st->final_sent = true;
    gw_abandon(st);
}

/* ---- an HTTP/1 client that hung up ---------------------------------------------------------- */

/* h2o reads an HTTP/1 connection only between requests, so a client that closes while its
 * answer is queued, or between two tokens, is not seen until the next write fails. A poll for
 * POLLRDHUP on the open streams' sockets sees it within GW_WATCH_MS, and the slot is freed
 * then. (HTTP/2 reads all the time: h2o sees a reset or a close itself.) */
static void on_watch(uv_timer_t *t)
{
    gateway *g = t->data;
    for (uint32_t i = 0; i < g->n_slots; i++) {
        gw_stream *st = g->slots[i];
        if (!st || !st->req || st->req->version >= 0x200 || st->ended)
            continue;
        int fd = http_fd(st->req);
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};
        if (fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            gw_abandon(st);
    }
}

/* ---- the completion handlers --------------------------------------------------------------- */

static gw_stream *stream_new(gateway *g, h2o_req_t *req, openai_endpoint ep,
                             const openai_request *r, const char *user_id)
{
    gw_stream *st = calloc(1, sizeof *st);
    gw_stream **anchor =
        st ? h2o_mem_alloc_shared(&req->pool, sizeof *anchor, on_req_dispose) : NULL;
    if (!anchor) {
        free(st);
        return NULL;
    }
    *anchor = st;
    st->anchor = anchor;
    st->g = g;
    st->req = req;
    st->slot = UINT32_MAX;
    st->ep = ep;
    st->stream = r->stream;
    st->include_usage = r->include_usage;
    st->generator = (h2o_generator_t){gw_out_proceed, on_stop};
    memcpy(st->request_id, r->request->request_id.data, CODEC_REQUEST_ID_LEN);
    snprintf(st->user_id, sizeof st->user_id, "%s", user_id);
    snprintf(st->model, sizeof st->model, "%s", r->request->model);
    openai_response_id(ep, r->request->request_id, st->id);
    st->created = (int64_t)(clock_unix_ms() / 1000);
    if (take_slot(g, st) != 0) { /* checked before: cannot happen */
        *anchor = NULL;
        free(st);
        return NULL;
    }
    return st;
}

/* `user` names a conversation within one API key's clients: two keys that both say
 * "user": "alice" are two sessions, not one, so the session id is hashed with the key's name.
 * The result keeps the codec's fixed-length form. */
static void scope_session(Edgefleet__Request *r, const char *user_id)
{
    if (!r->session_id || !*r->session_id)
        return;
    unsigned char h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)user_id, strlen(user_id) + 1);
    crypto_generichash_update(&st, (const unsigned char *)r->session_id, strlen(r->session_id));
    crypto_generichash_final(&st, h, sizeof h);
    char *id = malloc(3 + 2 * sizeof h);
    if (!id)
        return; /* the unscoped id still works, only shared across keys */
    memcpy(id, "u-", 2);
    sodium_bin2hex(id + 2, 2 * sizeof h + 1, h, sizeof h);
    free(r->session_id);
    r->session_id = id;
}

/* A refusal before anything entered the fleet, logged at most once a second per key. */
static void refuse(gateway *g, h2o_req_t *req, const char *user_id, const openai_error *e,
                   uint32_t retry_after_s)
{
    uint32_t held = 0;
    if (ratelimit_check(g->c->log_limit, user_id, clock_mono_ms(), &held))
        log_warn("http client %s: %d: %s%s", user_id, e->status, e->message,
                 held ? " (and more since the last such line)" : "");
    gw_reply_error(req, e, retry_after_s, NULL);
}

static int on_completion(gateway *g, h2o_req_t *req, openai_endpoint ep, const char *path)
{
    if (!http_path_is(req, path))
        return gw_on_other(g, req);
    char user_id[REGISTRY_KEY_MAX];
    if (gw_auth(g, req, user_id) != 0)
        return 0;
    openai_error e;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        openai_error_set(&e, 405, "invalid_request_error", NULL, "method_not_allowed",
                         "%s takes POST", path);
        gw_reply_error(req, &e, 0, "POST");
        return 0;
    }
    if (g->n_active >= g->n_slots) {
        openai_error_set(&e, 429, "rate_limit_error", NULL, "too_many_streams",
                         "the gateway has %u requests open (--http-max-streams); try again",
                         g->n_slots);
        refuse(g, req, user_id, &e, 1);
        return 0;
    }
    openai_request r = {0};
    if (openai_request_parse(ep, req->entity.base, req->entity.len, &r, &e) != 0) {
        refuse(g, req, user_id, &e, 0);
        return 0;
    }
    char why[160];
    int rc = frontend_check(r.request, why, sizeof why);
    if (rc) {
        openai_error_from_fleet(rc, why, &e);
        refuse(g, req, user_id, &e, 0);
        openai_request_clear(&r);
        return 0;
    }
    if (gw_boards_serving(g->c, NULL, NULL) == 0) { /* as /health says: nobody to run it */
        openai_error_set(&e, 503, "service_unavailable", NULL, "no_board",
                         "no board is serving: none registered, or every one is draining");
        refuse(g, req, user_id, &e, 1);
        openai_request_clear(&r);
        return 0;
    }
    scope_session(r.request, user_id);
    gw_stream *st = stream_new(g, req, ep, &r, user_id);
    if (!st) {
        openai_error_from_fleet(EF_ENOMEM, "coordinator out of memory", &e);
        gw_reply_error(req, &e, 0, NULL);
        openai_request_clear(&r);
        return 0;
    }
    uint8_t id[GW_ID_LEN];
    coord_client cl = client_of(st, id);
    /* The answer may come before this returns (a refusal): st is not touched after it. */
    request_submit(g->c, r.request, 0, &cl);
    openai_request_clear(&r);
    return 0;
}

static int on_chat(void *user, h2o_req_t *req)
{
    return on_completion(user, req, OPENAI_CHAT, "/v1/chat/completions");
}

static int on_text(void *user, h2o_req_t *req)
{
    return on_completion(user, req, OPENAI_COMPLETIONS, "/v1/completions");
}

/* ---- open and close ------------------------------------------------------------------------ */

int gateway_open(coord *c, ef_errmsg *em)
{
    if (!c->cfg.http_listen)
        return 0;
    gateway *g = calloc(1, sizeof *g);
    if (!g)
        return errmsg_set(em, EF_ENOMEM, "http: out of memory");
    g->c = c;
    c->gateway = g;
    g->n_slots = c->cfg.http_max_streams ? c->cfg.http_max_streams : GATEWAY_STREAMS_DEFAULT;
    g->slots = calloc(g->n_slots, sizeof *g->slots);
    g->gens = calloc(g->n_slots, sizeof *g->gens);
    if (!g->slots || !g->gens)
        return errmsg_set(em, EF_ENOMEM, "http: out of memory");
    if (c->cfg.http_api_keys && !(g->keys = http_keys_new(c->cfg.http_api_keys, em)))
        return EF_ECONFIG;
    const http_route routes[] = {
        {"/v1/chat/completions", on_chat, g}, {"/v1/completions", on_text, g},
        {"/v1/models", gw_on_models, g},      {"/health", gw_on_health, g},
        {"/metrics", gw_on_metrics, g},       {"/", gw_on_other, g}};
    http_params p = {.listen = c->cfg.http_listen,
                     .tls_cert = c->cfg.http_tls_cert,
                     .tls_key = c->cfg.http_tls_key,
                     .insecure = c->cfg.http_insecure,
                     .max_body = c->cfg.http_max_body,
                     .routes = routes,
                     .n_routes = sizeof routes / sizeof routes[0]};
    g->http = http_server_new(c->loop, &p, em);
    if (!g->http)
        return EF_ECONFIG;
    uv_timer_init(c->loop, &g->watch);
    g->watch.data = g;
    uv_timer_start(&g->watch, on_watch, GW_WATCH_MS, GW_WATCH_MS);
    g->watching = true;
    log_info("http: OpenAI API on %s (%s), %s, at most %u open requests", c->cfg.http_listen,
             c->cfg.http_tls_cert ? "TLS" : "plain HTTP",
             g->keys ? "API keys required" : "no API key asked", g->n_slots);
    return 0;
}

void gateway_shutdown(coord *c)
{
    gateway *g = c->gateway;
    if (!g)
        return;
    http_server_shutdown(g->http);
    if (g->watching) {
        uv_timer_stop(&g->watch);
        uv_close((uv_handle_t *)&g->watch, NULL);
        g->watching = false;
    }
}

uint32_t gateway_conns(const coord *c)
{
    return c->gateway ? http_server_conns(c->gateway->http) : 0;
}

int gateway_close(coord *c)
{
    gateway *g = c->gateway;
    if (!g)
        return 0;
    gateway_shutdown(c);
    /* Streams whose connection is still open keep their memory for h2o's dispose; they are
     * only taken out of the table, as nothing of the fleet is left to answer them. */
    for (uint32_t i = 0; g->slots && i < g->n_slots; i++)
        if (g->slots[i])
            gw_detach(g->slots[i]);
    int left = http_server_destroy(&g->http);
    http_keys_destroy(&g->keys);
    free(g->slots);
    free(g->gens);
    free(g);
    c->gateway = NULL;
    return left;
}

/* ---- replies from the fleet ---------------------------------------------------------------- */

int gateway_deliver(gateway *g, const uint8_t *id, size_t id_len, const envelope *env)
{
    gw_stream *st = gw_find(g, id, id_len);
    if (!st || !st->req || st->ended)
        return EF_ENOTCONN;
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        return gw_out_chunk(st, env->token_chunk);
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        gw_out_done(st, env->done);
        return 0;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        gw_out_error(st, env->error->code, env->error->message, env->error->retry_after_ms);
        return 0;
    default: /* operator replies never come this way */
        return 0;
    }
}

int gateway_deliver_packed(gateway *g, const uint8_t *id, size_t id_len, const uint8_t *buf,
                           size_t len)
{
    envelope *env = NULL;
    if (codec_decode(buf, len, 0, &env) != 0)
        return EF_ENOTCONN; /* we packed it: cannot happen */
    int rc = gateway_deliver(g, id, id_len, env);
    codec_free(&env);
    return rc;
}
