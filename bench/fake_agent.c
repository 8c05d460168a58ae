/* Implementation of fake_agent.h: PROTOCOL.md's agent side, minus inference. */
#include "fake_agent.h"

#include "clock.h"
#include "codec.h"
#include "keys.h"
#include "transport.h"

#include <sodium.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define FAKE_HEARTBEAT_MS 1000 /* the protocol's default interval */
#define FAKE_SNDHWM       (1 << 20)

typedef struct {
    const fake_agent_params *p;
    tsock *dealer;
    uv_timer_t heartbeat;
    uv_signal_t sigterm, sigint;
    uint8_t boot_id[16];
} fake_agent;

static void send_env(fake_agent *f, envelope *env) { tsock_send_env(f->dealer, NULL, 0, env); }

static void send_register(fake_agent *f)
{
    Edgefleet__ModelInfo mi = EDGEFLEET__MODEL_INFO__INIT;
    mi.name = (char *)f->p->model;
    mi.architecture = "fake";
    mi.quantization = "none";
    mi.n_slots = f->p->n_slots;
    mi.n_ctx = 2048;
    Edgefleet__ModelInfo *models[1] = {&mi};
    Edgefleet__Register reg = EDGEFLEET__REGISTER__INIT;
    reg.agent_name = (char *)f->p->name;
    reg.boot_id.data = f->boot_id;
    reg.boot_id.len = sizeof f->boot_id;
    reg.hostname = "bench";
    reg.n_models = 1;
    reg.models = models;
    reg.agent_version = "bench-fake";
    reg.heartbeat_interval_ms = FAKE_HEARTBEAT_MS;
    reg.simulated = 1;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER;
    env.agent_register = &reg;
    send_env(f, &env);
}

/* n_tokens one-token chunks (contiguous seq) and Done, at once: an "instant" agent. */
static void answer(fake_agent *f, const Edgefleet__Request *req)
{
    uint32_t n = f->p->n_tokens ? f->p->n_tokens : 1;
    if (req->max_tokens && req->max_tokens < n)
        n = req->max_tokens;
    int32_t token = 1;
    Edgefleet__TokenChunk ch = EDGEFLEET__TOKEN_CHUNK__INIT;
    ch.request_id = req->request_id;
    ch.text = "x";
    ch.n_token_ids = 1;
    ch.token_ids = &token;
    ch.batch_index = req->batch_index;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
    env.token_chunk = &ch;
    for (uint32_t i = 0; i < n; i++) {
        ch.seq = i;
        send_env(f, &env);
    }
    Edgefleet__Usage usage = EDGEFLEET__USAGE__INIT;
    usage.prompt_tokens = usage.prompt_evaluated = 1;
    usage.completion_tokens = n;
    Edgefleet__Timings timings = EDGEFLEET__TIMINGS__INIT;
    Edgefleet__Done done = EDGEFLEET__DONE__INIT;
    done.request_id = req->request_id;
    done.finish = EDGEFLEET__FINISH_REASON__FINISH_LENGTH;
    done.usage = &usage;
    done.timings = &timings;
    done.batch_index = req->batch_index;
    done.seed = 1;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    env.done = &done;
    send_env(f, &env);
}

static void on_recv(tsock *s, zmq_msg_t *frames, size_t n_frames, void *user)
{
    fake_agent *f = user;
    envelope *env = NULL;
    if (n_frames != 1 ||
        codec_decode(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), 0, &env) != 0)
        return;
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY_REQUEST)
        answer(f, env->request);
    codec_free(&env);
}

static void on_heartbeat(uv_timer_t *t)
{
    fake_agent *f = t->data;
    Edgefleet__ModelLoad load = EDGEFLEET__MODEL_LOAD__INIT;
    load.model = (char *)f->p->model;
    load.total_slots = f->p->n_slots; /* busy 0: every request is over before the next beat */
    Edgefleet__ModelLoad *loads[1] = {&load};
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.sent_unix_ms = clock_unix_ms();
    hb.n_models = 1;
    hb.models = loads;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(f, &env);
}

static void on_signal(uv_signal_t *h, int signum) { uv_stop(h->loop); }

int fake_agent_run(const fake_agent_params *p)
{
    ef_errmsg em = {""};
    keys_pair kp;
    char server[KEYS_Z85_LEN + 1];
    int rc = keys_load_pair(p->key, &kp, &em);
    if (rc == 0)
        rc = keys_load_public(p->server_pub, server, &em);
    if (rc != 0) {
        fprintf(stderr, "fake agent: %s\n", em.msg);
        return rc;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_agent f = {.p = p};
    randombytes_buf(f.boot_id, sizeof f.boot_id);
    transport *t = transport_new(&loop);
    tsock_params sp = {.type = ZMQ_DEALER,
                       .endpoint = p->endpoint,
                       .keys = &kp,
                       .server_public = server,
                       .on_recv = on_recv,
                       .user = &f,
                       /* Answers go out in bursts (64 requests x 33 frames) and a send that
                        * finds the queue full is dropped (DONTWAIT): room for all of them. */
                       .sndhwm = FAKE_SNDHWM};
    f.dealer = t ? tsock_new(t, &sp, &em) : NULL;
    if (!f.dealer) {
        fprintf(stderr, "fake agent: %s\n", em.msg);
        transport_destroy(&t);
        return EF_EZMQ;
    }
    send_register(&f); /* queued until the CURVE handshake completes */
    uv_timer_init(&loop, &f.heartbeat);
    f.heartbeat.data = &f;
    uv_timer_start(&f.heartbeat, on_heartbeat, FAKE_HEARTBEAT_MS, FAKE_HEARTBEAT_MS);
    uv_signal_init(&loop, &f.sigterm);
    uv_signal_init(&loop, &f.sigint);
    uv_signal_start(&f.sigterm, on_signal, SIGTERM);
    uv_signal_start(&f.sigint, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    tsock_destroy(&f.dealer);
    transport_destroy(&t);
    uv_close((uv_handle_t *)&f.heartbeat, NULL);
    uv_close((uv_handle_t *)&f.sigterm, NULL);
    uv_close((uv_handle_t *)&f.sigint, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
