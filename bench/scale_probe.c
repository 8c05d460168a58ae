/* Implementation of scale_probe.h. */
#include "scale_probe.h"

#include "clock.h"
#include "codec.h"
#include "coord_client.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define PROBE_MAX_SAMPLES 100000

double scale_status_ms(const char *endpoint, const keys_pair *keys, const char *server_pub,
                       uint32_t *agents)
{
    *agents = 0;
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    double ms = -1;
    int timeout = 10000;
    if (!s || transport_setup_client_socket(s, keys, server_pub, 0) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
        zmq_connect(s, endpoint) != 0)
        goto out;
    uint8_t id[16] = {'s', 't', 'a', 't', 'u', 's'};
    Edgefleet__OperatorCommand cmd = EDGEFLEET__OPERATOR_COMMAND__INIT;
    cmd.command_id = (ProtobufCBinaryData){sizeof id, id};
    cmd.kind = EDGEFLEET__COMMAND_KIND__COMMAND_STATUS;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_COMMAND;
    env.command = &cmd;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_encode(&env, 0, &buf, &len) != 0)
        goto out;
    uint64_t t0 = clock_mono_ns();
    int sent = zmq_send(s, buf, len, 0) == (int)len;
    free(buf);
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (sent && zmq_msg_recv(&m, s, 0) >= 0) {
        envelope *in = NULL;
        if (codec_decode(zmq_msg_data(&m), zmq_msg_size(&m), 0, &in) == 0 &&
            in->body_case == EDGEFLEET__ENVELOPE__BODY_REPLY) {
            ms = (double)(clock_mono_ns() - t0) / 1e6;
            if (in->reply->status)
                *agents = (uint32_t)in->reply->status->n_agents;
            codec_free(&in);
            break;
        }
        codec_free(&in);
    }
    zmq_msg_close(&m);
out:
    if (s) {
        int zero = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(s);
    }
    if (ctx)
        zmq_ctx_term(ctx);
    return ms;
}

static int is_end(const envelope *env)
{
    return env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE ||
           env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR;
}

double scale_route_rate(const char *endpoint, const keys_pair *keys, const char *server_pub,
                        const char *model, int window, double seconds)
{
    coord_client *c = coord_client_new(endpoint, keys, server_pub);
    if (!c)
        return -1;
    uint64_t seq = 0, done = 0, t0 = clock_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    int inflight = 0;
    while (clock_mono_ns() < end) {
        while (inflight < window && coord_client_send(c, model, ++seq) == 0)
            inflight++;
        envelope *env;
        uint64_t got;
        if (coord_client_recv(c, 2000, &env, &got) != 0)
            break;
        if (is_end(env)) {
            inflight--;
            done += env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE;
        }
        codec_free(&env);
    }
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    envelope *env;
    uint64_t got;
    while (inflight > 0 && coord_client_recv(c, 2000, &env, &got) == 0) {
        inflight -= is_end(env);
        codec_free(&env);
    }
    coord_client_destroy(&c);
    return (double)done / secs;
}

struct scale_probe {
    coord_client *c;
    const char *model;
    uint64_t seq, sent_ns;
    int inflight;
    uint32_t failed, n;
    double *ms;
    scale_probe_failure why[SCALE_PROBE_REASONS]; /* [0]: no answer in time; then by code */
    size_t n_why;
};

/* Counts one failure under code (0 = timed out), keeping the first message seen for it. */
static void note_failure(scale_probe *p, int32_t code, const char *message)
{
    size_t i = 0;
    while (i < p->n_why && p->why[i].code != code)
        i++;
    if (i == p->n_why) {
        if (p->n_why == SCALE_PROBE_REASONS)
            return;
        p->why[p->n_why++] = (scale_probe_failure){code, 0, ""};
        snprintf(p->why[i].message, sizeof p->why[i].message, "%s", message ? message : "");
    }
    p->why[i].count++;
}

scale_probe *scale_probe_new(const char *endpoint, const keys_pair *keys, const char *server_pub,
                             const char *model)
{
    scale_probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->c = coord_client_new(endpoint, keys, server_pub);
    p->ms = calloc(PROBE_MAX_SAMPLES, sizeof *p->ms);
    p->model = model;
    p->seq = 1u << 20;
    if (!p->c || !p->ms)
        scale_probe_destroy(&p);
    return p;
}

void scale_probe_step(scale_probe *p, int wait_ms)
{
    if (!p)
        return;
    if (!p->inflight) {
        if (coord_client_send(p->c, p->model, ++p->seq) != 0)
            return;
        p->inflight = 1;
        p->sent_ns = clock_mono_ns();
    }
    envelope *env;
    uint64_t got;
    if (coord_client_recv(p->c, wait_ms, &env, &got) == 0) {
        if (got == p->seq && is_end(env)) {
            p->inflight = 0;
            if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE && p->n < PROBE_MAX_SAMPLES) {
                p->ms[p->n++] = (double)(clock_mono_ns() - p->sent_ns) / 1e6;
            } else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR) {
                p->failed++;
                note_failure(p, env->error->code, env->error->message);
            }
        }
        codec_free(&env);
    }
    if (p->inflight && clock_mono_ns() - p->sent_ns > (uint64_t)SCALE_PROBE_TIMEOUT_MS * 1000000) {
        p->inflight = 0; /* its late reply is ignored: another seq is in flight by then */
        p->failed++;
        note_failure(p, 0, "no Done or Error in time");
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void scale_probe_stats(scale_probe *p, uint32_t *probes, uint32_t *failed, double *p50_ms,
                       double *p99_ms, double *max_ms)
{
    *probes = p ? p->n + p->failed : 0;
    *failed = p ? p->failed : 0;
    *p50_ms = *p99_ms = *max_ms = 0;
    if (!p || p->n == 0)
        return;
    qsort(p->ms, p->n, sizeof *p->ms, cmp_double);
    *p50_ms = p->ms[(size_t)(0.50 * (p->n - 1))];
    *p99_ms = p->ms[(size_t)(0.99 * (p->n - 1))];
    *max_ms = p->ms[p->n - 1];
}

size_t scale_probe_failures(const scale_probe *p, const scale_probe_failure **out)
{
    *out = p ? p->why : NULL;
    return p ? p->n_why : 0;
}

void scale_probe_destroy(scale_probe **p_p)
{
    if (!p_p || !*p_p)
        return;
    coord_client_destroy(&(*p_p)->c);
    free((*p_p)->ms);
    free(*p_p);
    *p_p = NULL;
}
