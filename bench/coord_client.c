/* Implementation of coord_client.h on a plain libzmq DEALER. */
#include "coord_client.h"

#include "clock.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct coord_client {
    void *zctx, *sock;
    uint64_t tag; /* the first half of every request id: unique per client */
};

coord_client *coord_client_new(const char *endpoint, const keys_pair *keys, const char *server_pub)
{
    coord_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->tag = clock_mono_ns();
    c->zctx = zmq_ctx_new();
    c->sock = c->zctx ? zmq_socket(c->zctx, ZMQ_DEALER) : NULL;
    if (!c->sock || transport_setup_client_socket(c->sock, keys, server_pub, 0) != 0 ||
        zmq_connect(c->sock, endpoint) != 0) {
        coord_client_destroy(&c);
        return NULL;
    }
    return c;
}

void coord_client_destroy(coord_client **c_p)
{
    coord_client *c = *c_p;
    if (!c)
        return;
    if (c->sock) {
        int linger = 0;
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(c->sock);
    }
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    free(c);
    *c_p = NULL;
}

int coord_client_send(coord_client *c, const char *model, uint64_t seq)
{
    uint8_t id[CODEC_REQUEST_ID_LEN];
    memcpy(id, &c->tag, 8);
    memcpy(id + 8, &seq, 8);
    Edgefleet__SamplingParams sp = EDGEFLEET__SAMPLING_PARAMS__INIT;
    sp.seed = 1;
    Edgefleet__Request req = EDGEFLEET__REQUEST__INIT;
    req.request_id = (ProtobufCBinaryData){sizeof id, id};
    req.model = (char *)model;
    req.prompt = "hi";
    req.sampling = &sp;
    req.max_tokens = 1;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &req;
    uint8_t *buf;
    size_t len;
    int rc = codec_encode(&env, 0, &buf, &len);
    if (rc != 0)
        return rc;
    rc = zmq_send(c->sock, buf, len, 0) == (int)len ? 0 : EF_EZMQ;
    free(buf);
    return rc;
}

/* The id of the request a reply is about, whatever its kind. */
static ProtobufCBinaryData reply_id(const envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        return env->token_chunk->request_id;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        return env->done->request_id;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        return env->error->request_id;
    default:
        return (ProtobufCBinaryData){0, NULL};
    }
}

int coord_client_recv(coord_client *c, int timeout_ms, envelope **out, uint64_t *seq)
{
    *out = NULL;
    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
        zmq_msg_close(&msg);
        return EF_ETIMEDOUT;
    }
    int rc = codec_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), 0, out);
    zmq_msg_close(&msg);
    if (rc != 0)
        return rc;
    ProtobufCBinaryData id = reply_id(*out);
    *seq = UINT64_MAX;
    if (id.len == CODEC_REQUEST_ID_LEN)
        memcpy(seq, id.data + 8, 8);
    return 0;
}
