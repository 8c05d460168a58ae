/* Implementation of scripted_agent.h: one thread, one DEALER, a poll loop every few ms. */
#include "scripted_agent.h"
#include "clock.h"
#include "codec.h"
#include "transport.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define SA_MAX_ACTIVE 64
#define SA_TEXT_MAX   4096 /* bytes of text one scripted token may carry */

typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN];
    uint32_t sent;
    uint32_t max_tokens; /* the request's; 0 = no limit of its own */
    uint64_t next_ms;
} sa_request;

struct scripted_agent {
    sa_params p;
    char name[64], model[64], server[KEYS_Z85_LEN + 1], endpoint[64];
    uint8_t boot_id[16];
    keys_pair keys;
    pthread_t thread;
    atomic_int stop, registered, requests, served, drain, released, silent;
    void *ctx, *sock;
    sa_request active[SA_MAX_ACTIVE];
    size_t n_active;
};

/* 0 when the frame was queued; -1 when not (silent, or our queue to the coordinator is full:
 * a real agent would keep it in its outbox, so a chunk that does not go is sent again later). */
static int send_env(scripted_agent *sa, envelope *env)
{
    uint8_t *buf;
    size_t len;
    if (atomic_load(&sa->silent) || codec_encode(env, 0, &buf, &len) != 0)
        return -1;
    int rc = zmq_send(sa->sock, buf, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
    free(buf);
    return rc;
}

static void send_register(scripted_agent *sa)
{
    Edgefleet__ModelInfo mi = EDGEFLEET__MODEL_INFO__INIT;
    Edgefleet__ModelInfo *mis[1] = {&mi};
    mi.name = sa->model;
    mi.n_slots = sa->p.slots;
    Edgefleet__Register r = EDGEFLEET__REGISTER__INIT;
    r.agent_name = sa->name;
    r.boot_id.data = sa->boot_id;
    r.boot_id.len = sizeof sa->boot_id;
    r.hostname = "scripted";
    r.models = mis;
    r.n_models = 1;
    r.agent_version = "test";
    r.heartbeat_interval_ms = sa->p.heartbeat_ms;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER;
    env.agent_register = &r;
    send_env(sa, &env);
}

static void send_heartbeat(scripted_agent *sa)
{
    Edgefleet__ModelLoad ml = EDGEFLEET__MODEL_LOAD__INIT;
    Edgefleet__ModelLoad *mls[1] = {&ml};
    ml.model = sa->model;
    ml.busy_slots = (uint32_t)sa->n_active;
    ml.total_slots = sa->p.slots;
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.models = mls;
    hb.n_models = 1;
    hb.gen_tps = 0; /* not measured: the scheduler weighs agents by slots alone */
    hb.draining = atomic_load(&sa->drain) == 1;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(sa, &env);
    /* And a telemetry sample with each heartbeat (a real agent has its own interval). */
    Edgefleet__ModelTelemetry mt = EDGEFLEET__MODEL_TELEMETRY__INIT;
    Edgefleet__ModelTelemetry *mts[1] = {&mt};
    mt.model = sa->model;
    mt.busy_slots = ml.busy_slots;
    mt.total_slots = ml.total_slots;
    Edgefleet__TelemetrySample ts = EDGEFLEET__TELEMETRY_SAMPLE__INIT;
    ts.agent_name = "not-its-name"; /* the coordinator names the sample after the key */
    ts.unix_ms = clock_unix_ms();
    ts.interval_ms = sa->p.heartbeat_ms;
    ts.busy_slots = ml.busy_slots;
    ts.total_slots = ml.total_slots;
    ts.models = mts;
    ts.n_models = 1;
    envelope tenv = EDGEFLEET__ENVELOPE__INIT;
    tenv.body_case = EDGEFLEET__ENVELOPE__BODY_TELEMETRY;
    tenv.telemetry = &ts;
    send_env(sa, &tenv);
}

static void send_done(scripted_agent *sa, const uint8_t *id, int finish, uint32_t tokens)
{
    Edgefleet__Done d = EDGEFLEET__DONE__INIT;
    Edgefleet__Usage u = EDGEFLEET__USAGE__INIT;
    u.completion_tokens = tokens;
    d.request_id.data = (uint8_t *)id;
    d.request_id.len = CODEC_REQUEST_ID_LEN;
    d.finish = finish;
    d.usage = &u;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    env.done = &d;
    send_env(sa, &env);
}

static int send_chunk(scripted_agent *sa, sa_request *r)
{
    char text[SA_TEXT_MAX + 1];
    int32_t tok = (int32_t)r->sent + 1;
    int n = snprintf(text, sizeof text, " t%u", r->sent);
    uint32_t want = sa->p.text_bytes < SA_TEXT_MAX ? sa->p.text_bytes : SA_TEXT_MAX;
    while (n >= 0 && (uint32_t)n < want) /* a wordy token: bytes fill a link faster */
        text[n++] = 'x';
    text[n > 0 ? n : 0] = '\0';
    Edgefleet__TokenChunk tc = EDGEFLEET__TOKEN_CHUNK__INIT;
    tc.request_id.data = r->id;
    tc.request_id.len = CODEC_REQUEST_ID_LEN;
    tc.seq = r->sent;
    tc.text = text;
    tc.token_ids = &tok;
    tc.n_token_ids = 1;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
    env.token_chunk = &tc;
    if (send_env(sa, &env) != 0)
        return -1;
    r->sent++;
    return 0;
}

static void remove_active(scripted_agent *sa, size_t i)
{
    sa->active[i] = sa->active[--sa->n_active];
}

static void send_error(scripted_agent *sa, ProtobufCBinaryData id, int code, const char *message)
{
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    e.request_id = id;
    e.code = code;
    e.message = (char *)message;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    env.error = &e;
    send_env(sa, &env);
}

static void on_request(scripted_agent *sa, const Edgefleet__Request *rq)
{
    atomic_fetch_add(&sa->requests, 1);
    if (sa->n_active >= sa->p.slots || sa->n_active >= SA_MAX_ACTIVE) {
        send_error(sa, rq->request_id, EF_EBUSY, "no free slot");
        return;
    }
    if (sa->p.max_tokens && rq->max_tokens > sa->p.max_tokens) {
        send_error(sa, rq->request_id, EF_ECONTEXT, "max_tokens does not fit the context");
        return;
    }
    sa_request *r = &sa->active[sa->n_active++];
    memcpy(r->id, rq->request_id.data, CODEC_REQUEST_ID_LEN);
    r->sent = 0;
    r->max_tokens = rq->max_tokens;
    r->next_ms = clock_mono_ms() + sa->p.token_ms;
}

static void on_message(scripted_agent *sa, const envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED:
        atomic_store(&sa->registered, env->agent_registered->accepted ? 1 : -1);
        break;
    case EDGEFLEET__ENVELOPE__BODY_REQUEST:
        on_request(sa, env->request);
        break;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        /* A coordinator that does not know us (it restarted) asks us to register again. */
        if (env->error->request_id.len == 0 && env->error->code == EF_ENOTCONN)
            send_register(sa);
        break;
    case EDGEFLEET__ENVELOPE__BODY_DRAIN:
        atomic_store(&sa->drain, env->drain->enable ? 1 : 0);
        break;
    case EDGEFLEET__ENVELOPE__BODY_CANCEL:
        for (size_t i = 0; i < sa->n_active; i++)
            if (memcmp(sa->active[i].id, env->cancel->request_id.data, CODEC_REQUEST_ID_LEN) == 0) {
                send_done(sa, sa->active[i].id, EDGEFLEET__FINISH_REASON__FINISH_CANCELLED,
                          sa->active[i].sent);
                remove_active(sa, i);
                break;
            }
        break;
    default:
        break;
    }
}

/* Advance the streams whose next token is due. */
static void stream(scripted_agent *sa, uint64_t now)
{
    uint32_t tokens = sa->p.tokens ? sa->p.tokens : atomic_load(&sa->released) ? 3u : 0u;
    for (size_t i = 0; i < sa->n_active;) {
        sa_request *r = &sa->active[i];
        if (tokens == 0 || now < r->next_ms) {
            i++;
            continue;
        }
        if (r->sent < tokens && (!r->max_tokens || r->sent < r->max_tokens)) {
            for (uint32_t b = 0; b < (sa->p.burst ? sa->p.burst : 1) && r->sent < tokens &&
                                 (!r->max_tokens || r->sent < r->max_tokens);
                 b++)
                if (send_chunk(sa, r) != 0)
                    break;
            r->next_ms = now + sa->p.token_ms;
            if (sa->p.die_after && r->sent >= sa->p.die_after)
                atomic_store(&sa->silent, 1);
            i++;
            continue;
        }
        /* Counted before it goes: a test that sees the Done must also see the count. */
        atomic_fetch_add(&sa->served, 1);
        send_done(sa, r->id, EDGEFLEET__FINISH_REASON__FINISH_LENGTH, r->sent);
        remove_active(sa, i);
    }
}

static void *run(void *arg)
{
    scripted_agent *sa = arg;
    send_register(sa);
    uint64_t next_hb = clock_mono_ms() + sa->p.heartbeat_ms;
    while (!atomic_load(&sa->stop)) {
        zmq_pollitem_t it = {.socket = sa->sock, .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, 5);
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (zmq_msg_recv(&m, sa->sock, ZMQ_DONTWAIT) >= 0) {
            envelope *env = NULL;
            if (!atomic_load(&sa->silent) &&
                codec_decode(zmq_msg_data(&m), zmq_msg_size(&m), 0, &env) == 0)
                on_message(sa, env);
            codec_free(&env);
        }
        zmq_msg_close(&m);
        uint64_t now = clock_mono_ms();
        stream(sa, now);
        if (now >= next_hb) {
            next_hb = now + sa->p.heartbeat_ms;
            if (atomic_load(&sa->registered) == 1)
                send_heartbeat(sa);
        }
    }
    return NULL;
}

scripted_agent *sa_start(const sa_params *p)
{
    scripted_agent *sa = calloc(1, sizeof *sa);
    ef_errmsg em;
    if (!sa)
        return NULL;
    sa->p = *p;
    atomic_store(&sa->drain, -1);
    snprintf(sa->name, sizeof sa->name, "%s", p->name ? p->name : "");
    randombytes_buf(sa->boot_id, sizeof sa->boot_id);
    snprintf(sa->model, sizeof sa->model, "%s", p->model);
    snprintf(sa->server, sizeof sa->server, "%s", p->server_public);
    snprintf(sa->endpoint, sizeof sa->endpoint, "%s", p->endpoint);
    sa->ctx = zmq_ctx_new();
    sa->sock = zmq_socket(sa->ctx, ZMQ_DEALER);
    int linger = 0;
    if (keys_load_pair(p->key_file, &sa->keys, &em) != 0 ||
        transport_setup_client_socket(sa->sock, &sa->keys, sa->server, 0) != 0 ||
        zmq_setsockopt(sa->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(sa->sock, sa->endpoint) != 0 ||
        pthread_create(&sa->thread, NULL, run, sa) != 0) {
        zmq_close(sa->sock);
        zmq_ctx_term(sa->ctx);
        free(sa);
        return NULL;
    }
    return sa;
}

void sa_stop(scripted_agent **sa_p)
{
    if (!sa_p || !*sa_p)
        return;
    scripted_agent *sa = *sa_p;
    atomic_store(&sa->stop, 1);
    pthread_join(sa->thread, NULL);
    zmq_close(sa->sock);
    zmq_ctx_term(sa->ctx);
    free(sa);
    *sa_p = NULL;
}

int sa_wait_registered(scripted_agent *sa, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && atomic_load(&sa->registered) == 0; waited += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&sa->registered);
}

int sa_requests(scripted_agent *sa) { return atomic_load(&sa->requests); }
int sa_served(scripted_agent *sa) { return atomic_load(&sa->served); }
int sa_drain_state(scripted_agent *sa) { return atomic_load(&sa->drain); }
void sa_release(scripted_agent *sa) { atomic_store(&sa->released, 1); }
void sa_silence(scripted_agent *sa) { atomic_store(&sa->silent, 1); }
