/* Implementation of fake_coordinator.h: one thread polling one ROUTER every few ms. */
#include "fake_coordinator.h"
#include "test_support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Largest routing id a ROUTER hands out (libzmq's limit). */
#define FC_PEER_MAX 255

struct fake_coordinator {
    void *ctx, *sock;
    pthread_t thread;
    atomic_int stop, cancels;
    pthread_mutex_t mu; /* guards last_cancel */
    uint8_t last_cancel[CODEC_REQUEST_ID_LEN];
    uint8_t peer[FC_PEER_MAX];
    size_t peer_len;
    fc_script script;
    void *user;
    char endpoint[64];
};

void fc_send(fake_coordinator *fc, envelope *env)
{
    uint8_t *buf;
    size_t len;
    if (codec_encode(env, 0, &buf, &len) != 0)
        return;
    zmq_send(fc->sock, fc->peer, fc->peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(fc->sock, buf, len, ZMQ_DONTWAIT);
    free(buf);
}

static void handle(fake_coordinator *fc, zmq_msg_t *body)
{
    envelope *env = NULL;
    if (codec_decode(zmq_msg_data(body), zmq_msg_size(body), 0, &env) != 0)
        return;
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY_CANCEL) {
        pthread_mutex_lock(&fc->mu);
        memcpy(fc->last_cancel, env->cancel->request_id.data, CODEC_REQUEST_ID_LEN);
        pthread_mutex_unlock(&fc->mu);
        atomic_fetch_add(&fc->cancels, 1);
    }
    fc->script(fc, env, fc->user);
    codec_free(&env);
}

static void *run(void *arg)
{
    fake_coordinator *fc = arg;
    while (!atomic_load(&fc->stop)) {
        zmq_pollitem_t it = {.socket = fc->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 5) <= 0)
            continue;
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, fc->sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&id) &&
            zmq_msg_recv(&body, fc->sock, 0) >= 0 && !zmq_msg_more(&body) &&
            zmq_msg_size(&id) <= FC_PEER_MAX) {
            fc->peer_len = zmq_msg_size(&id);
            memcpy(fc->peer, zmq_msg_data(&id), fc->peer_len);
            handle(fc, &body);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    return NULL;
}

fake_coordinator *fc_start(const keys_pair *server_keys, fc_script script, void *user)
{
    fake_coordinator *fc = calloc(1, sizeof *fc);
    int port = ts_free_port();
    if (!fc || port <= 0) {
        free(fc);
        return NULL;
    }
    fc->script = script;
    fc->user = user;
    pthread_mutex_init(&fc->mu, NULL);
    snprintf(fc->endpoint, sizeof fc->endpoint, "tcp://127.0.0.1:%d", port);
    fc->ctx = zmq_ctx_new();
    fc->sock = zmq_socket(fc->ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    if (zmq_setsockopt(fc->sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(fc->sock, ZMQ_CURVE_SECRETKEY, server_keys->secret_z85, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(fc->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(fc->sock, fc->endpoint) != 0 || pthread_create(&fc->thread, NULL, run, fc) != 0) {
        zmq_close(fc->sock);
        zmq_ctx_term(fc->ctx);
        pthread_mutex_destroy(&fc->mu);
        free(fc);
        return NULL;
    }
    return fc;
}

void fc_stop(fake_coordinator **fc_p)
{
    if (!fc_p || !*fc_p)
        return;
    fake_coordinator *fc = *fc_p;
    atomic_store(&fc->stop, 1);
    pthread_join(fc->thread, NULL);
    zmq_close(fc->sock);
    zmq_ctx_term(fc->ctx);
    pthread_mutex_destroy(&fc->mu);
    free(fc);
    *fc_p = NULL;
}

const char *fc_endpoint(const fake_coordinator *fc) { return fc->endpoint; }

int fc_cancels(fake_coordinator *fc, uint8_t *id)
{
    if (id) {
        pthread_mutex_lock(&fc->mu);
        memcpy(id, fc->last_cancel, CODEC_REQUEST_ID_LEN);
        pthread_mutex_unlock(&fc->mu);
    }
    return atomic_load(&fc->cancels);
}
