/* libedgefleet: the client's connection (a blocking CURVE DEALER plus a socket monitor that
 * tells a refused key from a slow network), its error text, and the operator commands. The
 * request paths live in client_call.c. Runs on the caller's thread; see include/edgefleet.h. */
#include "client_internal.h"
#include "clock.h"
#include "transport.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int client_fail(ef_client_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    return code;
}

void client_random_id(uint8_t id[CODEC_REQUEST_ID_LEN])
{
    randombytes_buf(id, CODEC_REQUEST_ID_LEN);
}

EF_API ef_client_params ef_client_default_params(void)
{
    ef_client_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* Resolve the key material the params name, inline keys first, then files. */
static int load_keys(const ef_client_params *p, keys_pair *kp, char server[KEYS_Z85_LEN + 1])
{
    ef_errmsg em;
    memset(kp, 0, sizeof *kp);
    if (p->server_public_key && strlen(p->server_public_key) == KEYS_Z85_LEN)
        memcpy(server, p->server_public_key, KEYS_Z85_LEN + 1);
    else if (!p->server_public_key && p->server_key_file)
        return keys_load_public(p->server_key_file, server, &em) ? EF_EKEY : 0;
    else
        return EF_EINVAL;
    return 0;
}

static int load_own_keys(const ef_client_params *p, keys_pair *kp)
{
    ef_errmsg em;
    if (p->secret_key) {
        if (strlen(p->secret_key) != KEYS_Z85_LEN)
            return EF_EINVAL;
        memcpy(kp->secret_z85, p->secret_key, KEYS_Z85_LEN + 1);
        if (p->public_key && strlen(p->public_key) == KEYS_Z85_LEN)
            memcpy(kp->public_z85, p->public_key, KEYS_Z85_LEN + 1);
        else if (zmq_curve_public(kp->public_z85, kp->secret_z85) != 0)
            return EF_EKEY;
        return 0;
    }
    if (!p->key_file)
        return EF_EINVAL;
    return keys_load_pair(p->key_file, kp, &em) ? EF_EKEY : 0;
}

/* Watch the DEALER's handshakes so a call can say "refused" instead of waiting forever. */
static int start_monitor(ef_client_t *c)
{
    char addr[64];
    snprintf(addr, sizeof addr, "inproc://ef-client-monitor-%p", (void *)c);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                 ZMQ_EVENT_DISCONNECTED;
    if (zmq_socket_monitor(c->sock, addr, events) != 0)
        return EF_EZMQ;
    c->monitor = zmq_socket(c->zctx, ZMQ_PAIR);
    if (!c->monitor || zmq_connect(c->monitor, addr) != 0)
        return EF_EZMQ;
    return 0;
}

EF_API ef_client_t *ef_client_new(const ef_client_params *params)
{
    keys_pair kp;
    char server[KEYS_Z85_LEN + 1];
    if (!params || !params->endpoint || sodium_init() < 0)
        return NULL;
    if (load_keys(params, &kp, server) != 0 || load_own_keys(params, &kp) != 0)
        return NULL;
    ef_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->cancel, 0);
    c->connect_timeout_ms =
        params->connect_timeout_ms ? params->connect_timeout_ms : CLIENT_CONNECT_TIMEOUT_DEFAULT_MS;
    c->request_timeout_ms = params->request_timeout_ms;
    c->zctx = zmq_ctx_new();
    if (c->zctx)
        c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    int linger = 200; /* ms: long enough to flush a Cancel on destroy, short enough not to hang */
    if (!c->sock ||
        transport_setup_client_socket(c->sock, &kp, server, CODEC_MAX_FRAME_DEFAULT) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 || start_monitor(c) != 0 ||
        zmq_connect(c->sock, params->endpoint) != 0) {
        sodium_memzero(&kp, sizeof kp);
        ef_client_destroy(&c);
        return NULL;
    }
    sodium_memzero(&kp, sizeof kp);
    return c;
}

EF_API void ef_client_destroy(ef_client_t **client_p)
{
    if (!client_p || !*client_p)
        return;
    ef_client_t *c = *client_p;
    if (c->sock)
        zmq_socket_monitor(c->sock, NULL, 0);
    if (c->monitor)
        zmq_close(c->monitor);
    if (c->sock)
        zmq_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    free(c);
    *client_p = NULL;
}

EF_API const char *ef_client_last_error(const ef_client_t *client)
{
    return client ? client->last_error : "no client";
}

EF_API int ef_client_cancel(ef_client_t *client)
{
    if (!client)
        return EF_EINVAL;
    atomic_store(&client->cancel, 1);
    return 0;
}

/* Read one monitor event (two frames: 6-byte event+value, then the endpoint) and update the
 * connection state from it. */
static void read_monitor(ef_client_t *c)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return;
    }
    uint16_t event = 0;
    if (zmq_msg_size(&m) >= 6)
        memcpy(&event, zmq_msg_data(&m), sizeof event);
    while (zmq_msg_more(&m)) /* the endpoint frame: not needed */
        zmq_msg_recv(&m, c->monitor, 0);
    zmq_msg_close(&m);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        c->connected = 1;
        c->denied = 0;
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        c->denied = 1;
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
        c->connected = 0;
    }
}

int client_wait_connected(ef_client_t *c)
{
    uint64_t end = clock_mono_ms() + c->connect_timeout_ms;
    for (;;) {
        while (zmq_poll(&(zmq_pollitem_t){.socket = c->monitor, .events = ZMQ_POLLIN}, 1, 0) > 0)
            read_monitor(c);
        if (c->connected)
            return 0;
        if (c->denied)
            return client_fail(c, EF_EDENIED, "the coordinator refused this client's key");
        uint64_t now = clock_mono_ms();
        if (now >= end)
            return client_fail(c, EF_ENOTCONN, "no CURVE handshake with the coordinator in %u ms",
                               c->connect_timeout_ms);
        zmq_pollitem_t it = {.socket = c->monitor, .events = ZMQ_POLLIN};
        long wait = (long)(end - now);
        zmq_poll(&it, 1, wait < CLIENT_POLL_SLICE_MS ? wait : CLIENT_POLL_SLICE_MS);
    }
}

int client_call_begin(ef_client_t *c)
{
    atomic_store(&c->cancel, 0);
    c->last_error[0] = '\0';
    return client_wait_connected(c);
}

int client_wire_error(int32_t code) { return code < 0 && code >= -1000 ? code : EF_EPROTO; }

int client_send(ef_client_t *c, envelope *env)
{
    uint8_t *buf;
    size_t len;
    int rc = codec_encode(env, 0, &buf, &len);
    if (rc)
        return client_fail(c, rc, "could not encode the %s: %s", codec_body_name(env),
                           ef_strerror(rc));
    rc = zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0 ? EF_ENOTCONN : 0;
    free(buf);
    return rc ? client_fail(c, rc, "could not send to the coordinator: %s",
                            zmq_strerror(zmq_errno()))
              : 0;
}

/* Receive and decode one frame that is already waiting. 0 with *out, or 1 when it was not a
 * frame we can read (skipped). */
static int recv_one(ef_client_t *c, envelope **out)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 1;
    }
    int more = zmq_msg_more(&m);
    int rc = more ? EF_EPROTO
                  : codec_decode(zmq_msg_data(&m), zmq_msg_size(&m), CODEC_MAX_FRAME_DEFAULT, out);
    while (more) { /* a multipart frame is not ours: drain it */
        zmq_msg_recv(&m, c->sock, 0);
        more = zmq_msg_more(&m);
    }
    zmq_msg_close(&m);
    return rc ? 1 : 0;
}

int client_recv(ef_client_t *c, uint32_t wait_ms, envelope **out)
{
    *out = NULL;
    uint64_t end = clock_mono_ms() + wait_ms;
    for (;;) {
        if (atomic_load(&c->cancel))
            return EF_ECANCELED;
        zmq_pollitem_t items[2] = {{.socket = c->sock, .events = ZMQ_POLLIN},
                                   {.socket = c->monitor, .events = ZMQ_POLLIN}};
        uint64_t now = clock_mono_ms();
        if (now >= end)
            return EF_ETIMEDOUT;
        long wait = (long)(end - now);
        if (zmq_poll(items, 2, wait < CLIENT_POLL_SLICE_MS ? wait : CLIENT_POLL_SLICE_MS) < 0)
            continue; /* EINTR: look at the cancel flag again */
        if (items[1].revents & ZMQ_POLLIN) {
            read_monitor(c);
            if (c->denied)
                return client_fail(c, EF_EDENIED, "the coordinator refused this client's key");
            if (!c->connected)
                return client_fail(c, EF_ENOTCONN, "lost the connection to the coordinator");
        }
        if ((items[0].revents & ZMQ_POLLIN) && recv_one(c, out) == 0)
            return 0;
    }
}
