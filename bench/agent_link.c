/* Implementation of agent_link.h: the coordinator's half of PROTOCOL.md's agent link, reduced
 * to what a benchmark needs (one agent, greedy requests, no credits beyond the caller's own
 * pacing). Runs on the link's libuv loop, which only the wait functions turn. */
#include "agent_link.h"
#include "bench_util.h"

#include "clock.h"
#include "codec.h"
#include "keys.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How often the bench heartbeats the agent: the protocol's default interval, and the tick at
 * which wait functions look at their deadline. */
#define LINK_HEARTBEAT_MS 1000
#define LINK_LIVENESS     3
#define LINK_MAX_PENDING  64 /* in-flight requests; the bench sends at most a handful */

struct agent_link {
    uv_loop_t loop;
    uv_timer_t heartbeat;
    transport *transport;
    tsock *router;
    char endpoint[128];
    char agent_id[256]; /* the agent's routing id (its name) */
    size_t agent_id_len;
    char model[256];
    int registered;
    link_request *pending[LINK_MAX_PENDING];
    uint64_t next_id;
};

static void send_env(agent_link *l, envelope *env)
{
    if (l->agent_id_len)
        tsock_send_env(l->router, l->agent_id, l->agent_id_len, env);
}

static void on_register(agent_link *l, const Edgefleet__Register *reg, const zmq_msg_t *id)
{
    l->agent_id_len = zmq_msg_size(id) < sizeof l->agent_id ? zmq_msg_size(id) : 0;
    memcpy(l->agent_id, zmq_msg_data((zmq_msg_t *)id), l->agent_id_len);
    if (reg->n_models > 0 && reg->models[0]->name)
        snprintf(l->model, sizeof l->model, "%s", reg->models[0]->name);
    Edgefleet__Registered ok = EDGEFLEET__REGISTERED__INIT;
    ok.accepted = 1;
    ok.coordinator_name = "bench";
    ok.heartbeat_interval_ms = LINK_HEARTBEAT_MS;
    ok.liveness = LINK_LIVENESS;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED;
    env.agent_registered = &ok;
    send_env(l, &env);
    l->registered = 1;
}

static link_request *find_pending(agent_link *l, ProtobufCBinaryData id, int remove)
{
    for (size_t i = 0; i < LINK_MAX_PENDING; i++) {
        link_request *r = l->pending[i];
        if (r && id.len == sizeof r->id && memcmp(id.data, r->id, sizeof r->id) == 0) {
            if (remove)
                l->pending[i] = NULL;
            return r;
        }
    }
    return NULL;
}

static void on_chunk(agent_link *l, const Edgefleet__TokenChunk *c, uint64_t now)
{
    link_request *r = find_pending(l, c->request_id, 0);
    if (!r)
        return;
    if (!r->t_first_ns)
        r->t_first_ns = now;
    for (size_t i = 0; i < c->n_token_ids && r->n_tokens < r->max_tokens; i++)
        r->token_ns[r->n_tokens++] = now;
}

static void on_done(agent_link *l, const Edgefleet__Done *d, uint64_t now)
{
    link_request *r = find_pending(l, d->request_id, 1);
    if (!r)
        return;
    r->t_done_ns = now;
    r->done = 1;
    if (d->usage) {
        r->prompt_tokens = d->usage->prompt_tokens;
        r->prompt_evaluated = d->usage->prompt_evaluated;
        r->completion_tokens = d->usage->completion_tokens;
    }
    if (d->timings) {
        r->prompt_ms = d->timings->prompt_ms;
        r->generation_ms = d->timings->generation_ms;
    }
}

static void on_error(agent_link *l, const Edgefleet__Error *e, uint64_t now)
{
    link_request *r = find_pending(l, e->request_id, 1);
    if (!r) {
        fprintf(stderr, "bench: agent error %d: %s\n", e->code, e->message ? e->message : "");
        return;
    }
    r->t_done_ns = now;
    r->done = 1;
    r->error = e->code ? e->code : EF_EINTERNAL;
    fprintf(stderr, "bench: request failed: %d %s\n", e->code, e->message ? e->message : "");
}

static void on_recv(tsock *s, zmq_msg_t *frames, size_t n_frames, void *user)
{
    agent_link *l = user;
    uint64_t now = clock_mono_ns(); /* before decoding: the arrival time is what we measure */
    if (n_frames != 2)
        return;
    envelope *env = NULL;
    if (codec_decode(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), 0, &env) != 0)
        return;
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER:
        on_register(l, env->agent_register, &frames[0]);
        break;
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        on_chunk(l, env->token_chunk, now);
        break;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        on_done(l, env->done, now);
        break;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        on_error(l, env->error, now);
        break;
    default: /* heartbeats: any message counts as life, and our timer answers anyway */
        break;
    }
    codec_free(&env);
}

static void on_heartbeat(uv_timer_t *t)
{
    agent_link *l = t->data;
    if (!l->registered)
        return;
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.sent_unix_ms = clock_unix_ms();
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(l, &env);
}

/* Fresh key pairs for both ends, and the agent's public key alone in the allowlist. */
static int make_keys(const char *dir, keys_pair *coord, char *allow, size_t cap, ef_errmsg *em)
{
    keys_pair agent;
    int rc = keys_generate(dir, "coordinator", coord, em);
    if (rc != 0)
        return rc;
    if ((size_t)snprintf(allow, cap, "%s/allow", dir) >= cap)
        return errmsg_set(em, EF_EINVAL, "%s: path too long", dir);
    if (mkdir(allow, 0700) != 0)
        return errmsg_set(em, EF_EIO, "%s: cannot create", allow);
    return bench_key_with_allow(dir, "agent", allow, &agent, em);
}

static int bind_router(agent_link *l, const keys_pair *kp, ef_errmsg *em)
{
    tsock_params p = {.type = ZMQ_ROUTER,
                      .endpoint = "tcp://127.0.0.1:*", /* any free port: runs never collide */
                      .bind = 1,
                      .keys = kp,
                      .zap_domain = "agents",
                      .on_recv = on_recv,
                      .user = l};
    l->router = tsock_new(l->transport, &p, em);
    if (!l->router)
        return EF_EZMQ;
    size_t len = sizeof l->endpoint;
    if (zmq_getsockopt(tsock_zmq(l->router), ZMQ_LAST_ENDPOINT, l->endpoint, &len) != 0)
        return errmsg_set(em, EF_EZMQ, "ZMQ_LAST_ENDPOINT: %s", zmq_strerror(zmq_errno()));
    return 0;
}

agent_link *agent_link_new(const char *key_dir, ef_errmsg *em)
{
    agent_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    uv_loop_init(&l->loop);
    uv_timer_init(&l->loop, &l->heartbeat);
    l->heartbeat.data = l;
    keys_pair kp;
    char allow[4200];
    int rc = make_keys(key_dir, &kp, allow, sizeof allow, em);
    if (rc == 0) {
        l->transport = transport_new(&l->loop);
        rc = l->transport ? transport_allow_dir(l->transport, "agents", allow)
                          : errmsg_set(em, EF_EZMQ, "transport_new failed");
    }
    if (rc == 0)
        rc = bind_router(l, &kp, em);
    if (rc != 0) {
        agent_link_destroy(&l);
        return NULL;
    }
    uv_timer_start(&l->heartbeat, on_heartbeat, LINK_HEARTBEAT_MS, LINK_HEARTBEAT_MS);
    return l;
}

void agent_link_destroy(agent_link **l_p)
{
    agent_link *l = *l_p;
    if (!l)
        return;
    tsock_destroy(&l->router);
    transport_destroy(&l->transport);
    uv_close((uv_handle_t *)&l->heartbeat, NULL);
    uv_run(&l->loop, UV_RUN_DEFAULT); /* lets every close callback run */
    uv_loop_close(&l->loop);
    free(l);
    *l_p = NULL;
}

const char *agent_link_endpoint(const agent_link *l) { return l->endpoint; }
const char *agent_link_model(const agent_link *l) { return l->model; }

/* Turn the loop until done(l, arg) or the deadline; the heartbeat timer bounds each turn. */
static int run_until(agent_link *l, int (*done)(agent_link *, void *), void *arg, int timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
    while (!done(l, arg)) {
        if (clock_mono_ms() > deadline)
            return EF_ETIMEDOUT;
        uv_run(&l->loop, UV_RUN_ONCE);
    }
    return 0;
}

static int is_registered(agent_link *l, void *arg) { return l->registered && l->model[0]; }

int agent_link_wait_register(agent_link *l, int timeout_ms)
{
    return run_until(l, is_registered, NULL, timeout_ms);
}

int agent_link_submit(agent_link *l, link_request *r, const char *prompt, uint32_t max_tokens)
{
    memset(r, 0, sizeof *r);
    r->max_tokens = max_tokens;
    r->token_ns = calloc(max_tokens ? max_tokens : 1, sizeof *r->token_ns);
    size_t slot = 0;
    while (slot < LINK_MAX_PENDING && l->pending[slot])
        slot++;
    if (!r->token_ns || slot == LINK_MAX_PENDING)
        return EF_ENOMEM;
    uint64_t n = ++l->next_id, t = clock_unix_ms();
    memcpy(r->id, &t, 8); /* unique across runs and within one */
    memcpy(r->id + 8, &n, 8);
    Edgefleet__SamplingParams sp = EDGEFLEET__SAMPLING_PARAMS__INIT;
    sp.temperature = 0.0f; /* greedy, as llama-bench's timing has no sampling choice to make */
    sp.seed = 1;
    Edgefleet__Request req = EDGEFLEET__REQUEST__INIT;
    req.request_id = (ProtobufCBinaryData){sizeof r->id, r->id};
    req.model = l->model;
    req.prompt = (char *)prompt;
    req.sampling = &sp;
    req.max_tokens = max_tokens;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &req;
    l->pending[slot] = r;
    r->t_send_ns = clock_mono_ns();
    int rc = tsock_send_env(l->router, l->agent_id, l->agent_id_len, &env);
    if (rc != 0)
        l->pending[slot] = NULL;
    return rc;
}

typedef struct {
    link_request **rs;
    size_t n;
} wait_set;

static int all_done(agent_link *l, void *arg)
{
    const wait_set *w = arg;
    for (size_t i = 0; i < w->n; i++)
        if (!w->rs[i]->done)
            return 0;
    return 1;
}

int agent_link_wait_done(agent_link *l, link_request **rs, size_t n, int timeout_ms)
{
    wait_set w = {rs, n};
    int rc = run_until(l, all_done, &w, timeout_ms);
    for (size_t i = 0; rc != 0 && i < LINK_MAX_PENDING; i++)
        for (size_t j = 0; j < n; j++)
            if (l->pending[i] == rs[j])
                l->pending[i] = NULL; /* the caller may free them now: late replies are dropped */
    return rc;
}

void agent_link_pump(agent_link *l) { uv_run(&l->loop, UV_RUN_NOWAIT); }

void link_request_free(link_request *r)
{
    free(r->token_ns);
    r->token_ns = NULL;
}
