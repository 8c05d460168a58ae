/* libedgefleet: the client's connection (a blocking CURVE DEALER plus a socket monitor whose
 * events tell "nothing answers" from "handshake failed" from "key refused"), making a client with
 * a reason when it cannot be made, and the client's error text. The request paths live in
 * client_call.c and client_batch.c, the operator commands in client_ops.c. Runs on the caller's
 * thread; see include/edgefleet.h. */
#include "client_async.h"
#include "client_internal.h"
#include "clock.h"
#include "transport.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* ms the DEALER lingers on destroy: long enough to flush a Cancel, short enough not to hang. */
#define CLIENT_LINGER_MS 200

EF_API ef_client_params ef_client_default_params(void)
{
    ef_client_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* The coordinator's public key: inline first, else its file. */
static int load_server_key(const ef_client_params *p, char server[KEYS_Z85_LEN + 1], ef_errmsg *em)
{
    if (p->server_public_key) {
        if (!keys_z85_valid(p->server_public_key))
            return errmsg_set(em, EF_EKEY, "server_public_key is not a %d-character Z85 public key",
                              KEYS_Z85_LEN);
        memcpy(server, p->server_public_key, KEYS_Z85_LEN + 1);
        return 0;
    }
    if (!p->server_key_file)
        return errmsg_set(em, EF_EINVAL, "no server key: set server_public_key or server_key_file");
    ef_errmsg kem;
    int rc = keys_load_public(p->server_key_file, server, &kem);
    return rc ? errmsg_set(em, rc, "server key %s", kem.msg) : 0;
}

/* This client's key pair: inline secret first, else its file. */
static int load_own_keys(const ef_client_params *p, keys_pair *kp, ef_errmsg *em)
{
    if (p->secret_key) {
        if (!keys_z85_valid(p->secret_key))
            return errmsg_set(em, EF_EKEY, "secret_key is not a %d-character Z85 secret key",
                              KEYS_Z85_LEN);
        memcpy(kp->secret_z85, p->secret_key, KEYS_Z85_LEN + 1);
        if (p->public_key && !keys_z85_valid(p->public_key))
            return errmsg_set(em, EF_EKEY, "public_key is not a %d-character Z85 public key",
                              KEYS_Z85_LEN);
        if (p->public_key)
            memcpy(kp->public_z85, p->public_key, KEYS_Z85_LEN + 1);
        else if (zmq_curve_public(kp->public_z85, kp->secret_z85) != 0)
            return errmsg_set(em, EF_ECRYPTO, "cannot derive the public key from secret_key");
        return 0;
    }
    if (!p->key_file)
        return errmsg_set(em, EF_EINVAL, "no client key: set secret_key or key_file");
    ef_errmsg kem;
    int rc = keys_load_pair(p->key_file, kp, &kem);
    return rc ? errmsg_set(em, rc, "client key %s", kem.msg) : 0;
}

/* Every event that tells the link's state, from the first TCP attempt to a handshake's end. */
#define CLIENT_MONITOR_EVENTS                                                      \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_DELAYED | ZMQ_EVENT_CONNECT_RETRIED | \
     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |             \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |  \
     ZMQ_EVENT_DISCONNECTED)

static int start_monitor(ef_client_t *c)
{
    char addr[64];
    snprintf(addr, sizeof addr, "inproc://ef-client-monitor-%p", (void *)c);
    if (zmq_socket_monitor(c->sock, addr, CLIENT_MONITOR_EVENTS) != 0)
        return EF_EZMQ;
    c->monitor = zmq_socket(c->zctx, ZMQ_PAIR);
    if (!c->monitor || zmq_connect(c->monitor, addr) != 0)
        return EF_EZMQ;
    return 0;
}

/* The DEALER with its keys, monitor and connect. 0 or an EF_E* code with em saying why. */
static int client_socket(ef_client_t *c, const keys_pair *kp, const char *server, ef_errmsg *em)
{
    int linger = CLIENT_LINGER_MS;
    c->zctx = zmq_ctx_new();
    if (c->zctx)
        c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!c->sock)
        return errmsg_set(em, EF_EZMQ, "cannot make a ZeroMQ socket: %s",
                          zmq_strerror(zmq_errno()));
    int rc = transport_setup_client_socket(c->sock, kp, server, CODEC_MAX_FRAME_DEFAULT);
    if (rc)
        return errmsg_set(em, rc, "cannot set up CURVE on the socket: %s", ef_strerror(rc));
    if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 || start_monitor(c) != 0)
        return errmsg_set(em, EF_EZMQ, "cannot watch the socket: %s", zmq_strerror(zmq_errno()));
    if (zmq_connect(c->sock, c->endpoint) != 0)
        return errmsg_set(em, EF_EINVAL, "bad endpoint \"%s\": %s (expected tcp://HOST:PORT)",
                          c->endpoint, zmq_strerror(zmq_errno()));
    return 0;
}

/* Make the client; loop NULL: a blocking one, else an async one on that libuv loop. */
static int open_checked(const ef_client_params *params, void *loop, ef_client_t **out,
                        ef_errmsg *em)
{
    if (!out)
        return errmsg_set(em, EF_EINVAL, "no place for the client (out is NULL)");
    *out = NULL;
    if (!params || !params->endpoint || !*params->endpoint)
        return errmsg_set(em, EF_EINVAL, "no endpoint: set endpoint to tcp://HOST:PORT");
    if (strlen(params->endpoint) >= CLIENT_ENDPOINT_MAX)
        return errmsg_set(em, EF_EINVAL, "endpoint longer than %d bytes", CLIENT_ENDPOINT_MAX - 1);
    if (sodium_init() < 0)
        return errmsg_set(em, EF_ECRYPTO, "libsodium could not be initialised");
    keys_pair kp;
    char server[KEYS_Z85_LEN + 1];
    memset(&kp, 0, sizeof kp);
    int rc = load_server_key(params, server, em);
    if (rc == 0)
        rc = load_own_keys(params, &kp, em);
    ef_client_t *c = rc ? NULL : calloc(1, sizeof *c);
    if (rc == 0 && !c)
        rc = errmsg_set(em, EF_ENOMEM, "out of memory for a client");
    if (c) {
        atomic_init(&c->cancel, 0);
        c->connect_timeout_ms = params->connect_timeout_ms ? params->connect_timeout_ms
                                                           : CLIENT_CONNECT_TIMEOUT_DEFAULT_MS;
        c->request_timeout_ms = params->request_timeout_ms;
        snprintf(c->endpoint, sizeof c->endpoint, "%s", params->endpoint);
        rc = loop ? client_async_socket(c, loop, &kp, server, em)
                  : client_socket(c, &kp, server, em);
    }
    sodium_memzero(&kp, sizeof kp);
    if (rc)
        ef_client_destroy(&c);
    *out = c;
    return rc;
}

int client_open(const ef_client_params *params, int wait, ef_client_t **out, char *why,
                size_t why_cap)
{
    ef_errmsg em = {{0}};
    int rc = open_checked(params, NULL, out, &em);
    if (rc == 0 && wait && (rc = client_wait_connected(*out)) != 0) {
        snprintf(em.msg, sizeof em.msg, "%s", (*out)->last_error);
        ef_client_destroy(out);
    }
    if (why && why_cap)
        snprintf(why, why_cap, "%s", rc ? em.msg : "");
    return rc;
}

EF_API int ef_client_open(const ef_client_params *params, ef_client_t **out, char *why,
                          size_t why_cap)
{
    return client_open(params, 1, out, why, why_cap);
}

EF_API int ef_client_open_async(const ef_client_params *params, struct uv_loop_s *loop,
                                ef_client_t **out, char *why, size_t why_cap)
{
    ef_errmsg em = {{0}};
    int rc = loop ? open_checked(params, loop, out, &em)
                  : errmsg_set(&em, EF_EINVAL, "no loop: pass the uv_loop_t the client runs on");
    if (!loop && out)
        *out = NULL;
    if (why && why_cap)
        snprintf(why, why_cap, "%s", rc ? em.msg : "");
    return rc;
}

EF_API ef_client_t *ef_client_new(const ef_client_params *params)
{
    ef_client_t *c = NULL;
    return client_open(params, 0, &c, NULL, 0) == 0 ? c : NULL;
}

EF_API void ef_client_destroy(ef_client_t **client_p)
{
    if (!client_p || !*client_p)
        return;
    ef_client_t *c = *client_p;
    *client_p = NULL;
    if (c->loop) { /* its calls end first; the loop frees the memory (client_async.c) */
        async_calls_destroy(c);
        return;
    }
    if (c->sock)
        zmq_socket_monitor(c->sock, NULL, 0);
    if (c->monitor)
        zmq_close(c->monitor);
    if (c->sock)
        zmq_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    free(c);
}

EF_API const char *ef_client_last_error(const ef_client_t *client)
{
    return client ? client->last_error : "no client";
}

EF_API int ef_client_cancel(ef_client_t *client)
{
    if (!client || client->loop) /* an async client's calls are cancelled one by one */
        return EF_EINVAL;
    atomic_store(&client->cancel, 1);
    return 0;
}
