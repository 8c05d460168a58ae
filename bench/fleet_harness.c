/* Implementation of fleet_harness.h: an array of DEALERs behind one epoll set (each socket's
 * ZMQ_FD: a wake costs what is ready, not a scan of every socket). Heartbeats are one
 * encoded buffer shared by every agent (they all serve the same model with the same load) and
 * each agent's Register is encoded once, so the harness spends its time in libzmq, not in
 * protobuf. Heartbeat phases are spread over the interval, as real boards started at different
 * times are. */
#include "fleet_harness.h"

#include "clock.h"
#include "codec.h"
#include "transport.h"

#include <sodium.h>
#include <zmq.h>

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    void *sock;
    uint8_t *reg; /* this agent's Register, encoded */
    size_t reg_len;
    uint64_t next_hb_ms;
    int registered; /* accepted since the last reset */
} hagent;

typedef struct {
    const harness_params *p;
    void *zctx;
    hagent *agents;
    int epfd;    /* every socket's ZMQ_FD (data: its index) and the control pipe (n) */
    uint8_t *hb; /* the shared heartbeat */
    size_t hb_len;
    int silenced;
    uint64_t next_beat_ms;
    harness_report rep, sent;
    uint64_t last_report_ms;
} harness;

static int encode_register(harness *h, hagent *a)
{
    uint8_t boot_id[16];
    randombytes_buf(boot_id, sizeof boot_id);
    Edgefleet__ModelInfo mi = EDGEFLEET__MODEL_INFO__INIT;
    mi.name = (char *)h->p->model;
    mi.architecture = "harness";
    mi.quantization = "none";
    mi.n_slots = h->p->n_slots;
    mi.n_ctx = 2048;
    Edgefleet__ModelInfo *models[1] = {&mi};
    Edgefleet__Register reg = EDGEFLEET__REGISTER__INIT;
    reg.boot_id = (ProtobufCBinaryData){sizeof boot_id, boot_id};
    reg.hostname = "harness";
    reg.n_models = 1;
    reg.models = models;
    reg.agent_version = "bench-harness";
    reg.heartbeat_interval_ms = h->p->heartbeat_ms;
    reg.simulated = 1;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER;
    env.agent_register = &reg;
    return codec_encode(&env, 0, &a->reg, &a->reg_len);
}

static int encode_heartbeat(harness *h)
{
    Edgefleet__ModelLoad load = EDGEFLEET__MODEL_LOAD__INIT;
    load.model = (char *)h->p->model;
    load.total_slots = h->p->n_slots; /* busy 0: every request is over before the next beat */
    Edgefleet__ModelLoad *loads[1] = {&load};
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.n_models = 1;
    hb.models = loads;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    return codec_encode(&env, 0, &h->hb, &h->hb_len);
}

/* A full send queue (the coordinator is away) loses this message only: the next beat covers
 * a heartbeat, and a Register is sent again when the coordinator asks. */
static void send_buf(hagent *a, const uint8_t *buf, size_t len)
{
    zmq_send(a->sock, buf, len, ZMQ_DONTWAIT);
}

static void send_env(hagent *a, envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_encode(env, 0, &buf, &len) == 0)
        send_buf(a, buf, len);
    free(buf);
}

/* One token and Done, at once: an "instant" agent (as bench/fake_agent.c). */
static void answer(hagent *a, const Edgefleet__Request *req)
{
    int32_t token = 1;
    Edgefleet__TokenChunk ch = EDGEFLEET__TOKEN_CHUNK__INIT;
    ch.request_id = req->request_id;
    ch.text = "x";
    ch.n_token_ids = 1;
    ch.token_ids = &token;
    ch.batch_index = req->batch_index;
    ch.attempt = req->attempt;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
    env.token_chunk = &ch;
    send_env(a, &env);
    Edgefleet__Usage usage = EDGEFLEET__USAGE__INIT;
    usage.prompt_tokens = usage.prompt_evaluated = 1;
    usage.completion_tokens = 1;
    Edgefleet__Timings timings = EDGEFLEET__TIMINGS__INIT;
    Edgefleet__Done done = EDGEFLEET__DONE__INIT;
    done.request_id = req->request_id;
    done.finish = EDGEFLEET__FINISH_REASON__FINISH_LENGTH;
    done.usage = &usage;
    done.timings = &timings;
    done.batch_index = req->batch_index;
    done.attempt = req->attempt;
    done.seed = 1;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    env.done = &done;
    send_env(a, &env);
}

static void on_message(harness *h, hagent *a, const envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED:
        if (env->agent_registered->accepted && !a->registered) {
            a->registered = 1;
            h->rep.registered++;
        } else if (!env->agent_registered->accepted) {
            h->rep.refused++;
        }
        break;
    case EDGEFLEET__ENVELOPE__BODY_REQUEST:
        if (!h->silenced) {
            answer(a, env->request);
            h->rep.answered++;
        }
        break;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        /* An error about no request: the coordinator does not know this link (it restarted,
         * or dropped us as silent): register again, as agent/uplink_recv.c does. */
        if (env->error->request_id.len == 0 && !h->silenced) {
            if (a->registered)
                h->rep.registered--;
            a->registered = 0;
            send_buf(a, a->reg, a->reg_len);
        }
        break;
    default:
        break; /* Heartbeat, Cancel, Drain: life is all they say here */
    }
}

/* ZMQ_FD signals a change, not a level: read while ZMQ_EVENTS says POLLIN. Also called after
 * sending on a socket, which may consume the signal of a message already waiting. */
static void drain_socket(harness *h, hagent *a)
{
    for (;;) {
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(a->sock, ZMQ_EVENTS, &events, &len) != 0 || !(events & ZMQ_POLLIN))
            return;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, a->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        envelope *env = NULL;
        if (codec_decode(zmq_msg_data(&m), zmq_msg_size(&m), 0, &env) == 0)
            on_message(h, a, env);
        codec_free(&env);
        zmq_msg_close(&m);
    }
}

/* Returns 1 to quit. */
static int on_control(harness *h)
{
    char cmd[16];
    ssize_t n = read(h->p->control_fd, cmd, sizeof cmd);
    if (n <= 0)
        return 1;
    for (ssize_t i = 0; i < n; i++) {
        if (cmd[i] == HARNESS_CMD_QUIT)
            return 1;
        if (cmd[i] == HARNESS_CMD_RESET) {
            for (size_t k = 0; k < h->p->n; k++)
                h->agents[k].registered = 0;
            h->rep.registered = h->rep.refused = 0;
            h->rep.epoch++;
            h->last_report_ms = 0; /* say so at once */
        }
        if (cmd[i] == HARNESS_CMD_SILENCE)
            h->silenced = 1;
        if (cmd[i] == HARNESS_CMD_RESUME)
            h->silenced = 0;
    }
    return 0;
}

static void report(harness *h, uint64_t now)
{
    int changed = memcmp(&h->rep, &h->sent, sizeof h->rep) != 0;
    if (!changed || now - h->last_report_ms < HARNESS_REPORT_MS)
        return;
    if (write(h->p->report_fd, &h->rep, sizeof h->rep) == (ssize_t)sizeof h->rep)
        h->sent = h->rep;
    h->last_report_ms = now;
}

/* Heartbeats due now (checked every HARNESS_BEAT_MS: a scan of every agent per wake would
 * make the harness, not the coordinator, the bottleneck at 10,000). Returns ms until the next
 * check. */
#define HARNESS_BEAT_MS 20
static int beat(harness *h, uint64_t now)
{
    uint32_t iv = h->p->heartbeat_ms;
    if (now < h->next_beat_ms)
        return (int)(h->next_beat_ms - now);
    h->next_beat_ms = now + HARNESS_BEAT_MS;
    for (size_t i = 0; i < h->p->n; i++) {
        hagent *a = &h->agents[i];
        if (a->next_hb_ms > now)
            continue;
        if (!h->silenced) {
            send_buf(a, h->hb, h->hb_len);
            drain_socket(h, a);
        }
        a->next_hb_ms += iv;
        if (a->next_hb_ms <= now)
            a->next_hb_ms = now + iv;
    }
    return HARNESS_BEAT_MS;
}

static int open_agents(harness *h)
{
    const harness_params *p = h->p;
    h->zctx = zmq_ctx_new();
    if (!h->zctx || zmq_ctx_set(h->zctx, ZMQ_MAX_SOCKETS, (int)p->n + 64) != 0)
        return EF_EZMQ;
    uint64_t now = clock_mono_ms();
    if ((h->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return EF_EIO;
    for (size_t i = 0; i < p->n; i++) {
        hagent *a = &h->agents[i];
        a->sock = zmq_socket(h->zctx, ZMQ_DEALER);
        if (!a->sock) {
            fprintf(stderr, "harness: socket %zu: %s\n", i, zmq_strerror(errno));
            return EF_EZMQ;
        }
        int zero = 0, ping = p->zmtp_ping ? 2000 : 0; /* as the agent's uplink */
        if (transport_setup_client_socket(a->sock, &p->keys[i], p->server_public, 0) != 0 ||
            zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
            zmq_setsockopt(a->sock, ZMQ_HEARTBEAT_IVL, &ping, sizeof ping) != 0 ||
            zmq_connect(a->sock, p->endpoint) != 0 || encode_register(h, a) != 0)
            return EF_EZMQ;
        send_buf(a, a->reg, a->reg_len); /* queued until the handshake completes */
        a->next_hb_ms = now + (uint64_t)p->heartbeat_ms * i / p->n;
        int fd = -1;
        size_t fd_len = sizeof fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (zmq_getsockopt(a->sock, ZMQ_FD, &fd, &fd_len) != 0 ||
            epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            return EF_EZMQ;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)p->n};
    return epoll_ctl(h->epfd, EPOLL_CTL_ADD, p->control_fd, &ev) == 0 ? 0 : EF_EIO;
}

static void close_agents(harness *h)
{
    for (size_t i = 0; i < h->p->n; i++) {
        if (h->agents[i].sock)
            zmq_close(h->agents[i].sock);
        free(h->agents[i].reg);
    }
    if (h->zctx)
        zmq_ctx_term(h->zctx);
    free(h->agents);
    if (h->epfd >= 0)
        close(h->epfd);
    free(h->hb);
}

int harness_run(const harness_params *p)
{
    harness_params q = *p;
    if (!q.heartbeat_ms)
        q.heartbeat_ms = 1000;
    harness h = {.p = &q, .epfd = -1};
    h.agents = calloc(q.n ? q.n : 1, sizeof *h.agents);
    int rc = h.agents ? encode_heartbeat(&h) : EF_ENOMEM;
    if (rc == 0)
        rc = open_agents(&h);
    struct epoll_event ev[256];
    uint64_t next_sweep = 0;
    while (rc == 0) {
        uint64_t now = clock_mono_ms();
        int wait = beat(&h, now);
        report(&h, now);
        if (now >= next_sweep) { /* a signal lost to the ZMQ_FD edge is found within 1 s */
            next_sweep = now + 1000;
            for (size_t i = 0; i < q.n; i++)
                drain_socket(&h, &h.agents[i]);
        }
        int n = epoll_wait(h.epfd, ev, 256, wait);
        if (n < 0 && errno != EINTR)
            break;
        int quit = 0;
        for (int k = 0; k < n; k++) {
            uint32_t i = ev[k].data.u32;
            if (i < q.n)
                drain_socket(&h, &h.agents[i]);
            else
                quit |= on_control(&h);
        }
        if (quit)
            break;
    }
    close_agents(&h);
    return rc;
}
