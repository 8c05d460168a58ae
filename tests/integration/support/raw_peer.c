/* Implementation of raw_peer.h on plain libzmq with the daemons' CURVE options. */
#include "raw_peer.h"

#include "transport.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct raw_peer {
    void *ctx, *sock;
};

static raw_peer *open_peer(const fleet_fixture *f, const char *endpoint, const char *key_name,
                           int rcvhwm, const char *routing_id);

raw_peer *rp_open(const fleet_fixture *f, const char *endpoint, const char *key_name, int rcvhwm)
{
    return open_peer(f, endpoint, key_name, rcvhwm, NULL);
}

raw_peer *rp_open_id(const fleet_fixture *f, const char *endpoint, const char *key_name,
                     const char *routing_id)
{
    return open_peer(f, endpoint, key_name, 0, routing_id);
}

static raw_peer *open_peer(const fleet_fixture *f, const char *endpoint, const char *key_name,
                           int rcvhwm, const char *routing_id)
{
    char path[512];
    fx_key_path(f, key_name, "key", path, sizeof path);
    keys_pair kp;
    ef_errmsg em;
    if (keys_load_pair(path, &kp, &em) != 0)
        return NULL;
    raw_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ctx = zmq_ctx_new();
    p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
    int zero = 0;
    /* Room for frames over the daemons' limit: the test decides what is sent. */
    if (transport_setup_client_socket(p->sock, &kp, f->coord_keys.public_z85,
                                      2 * CODEC_MAX_FRAME_DEFAULT) != 0 ||
        zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        (routing_id &&
         zmq_setsockopt(p->sock, ZMQ_ROUTING_ID, routing_id, strlen(routing_id)) != 0) ||
        (rcvhwm > 0 && (zmq_setsockopt(p->sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) != 0 ||
                        zmq_setsockopt(p->sock, ZMQ_RCVBUF, &(int){4096}, sizeof(int)) != 0)) ||
        zmq_connect(p->sock, endpoint) != 0) {
        rp_close(&p);
        return NULL;
    }
    return p;
}

void rp_close(raw_peer **p_p)
{
    if (!p_p || !*p_p)
        return;
    raw_peer *p = *p_p;
    if (p->sock)
        zmq_close(p->sock);
    if (p->ctx)
        zmq_ctx_term(p->ctx);
    free(p);
    *p_p = NULL;
}

int rp_send_bytes(raw_peer *p, const void *buf, size_t len)
{
    return zmq_send(p->sock, buf, len, 0) == (int)len ? 0 : -1;
}

int rp_send(raw_peer *p, envelope *env)
{
    uint8_t *buf;
    size_t len;
    if (codec_encode(env, 2 * CODEC_MAX_FRAME_DEFAULT, &buf, &len) != 0)
        return -1;
    int rc = rp_send_bytes(p, buf, len);
    free(buf);
    return rc;
}

envelope *rp_recv(raw_peer *p, int timeout_ms)
{
    zmq_pollitem_t it = {.socket = p->sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    envelope *env = NULL;
    if (zmq_msg_recv(&m, p->sock, 0) >= 0)
        codec_decode(zmq_msg_data(&m), zmq_msg_size(&m), 0, &env);
    zmq_msg_close(&m);
    return env;
}

void *rp_zmq(raw_peer *p) { return p->sock; }

void rp_request(Edgefleet__Request *r, Edgefleet__SamplingParams *sp, const uint8_t *id,
                const char *model, const char *prompt, uint32_t max_tokens)
{
    edgefleet__request__init(r);
    edgefleet__sampling_params__init(sp);
    r->request_id.data = (uint8_t *)id;
    r->request_id.len = CODEC_REQUEST_ID_LEN;
    r->model = (char *)model;
    r->prompt = (char *)prompt;
    r->max_tokens = max_tokens;
    r->sampling = sp;
}
