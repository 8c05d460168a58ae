/* libedgefleet's link to the coordinator: the socket monitor's events turned into the link's
 * state and, when it fails, into a reason (what libzmq 4.3 reports on the connecting side:
 * nothing listening gives only CONNECT_DELAYED/CONNECT_RETRIED; a wrong server key gives
 * CONNECTED then HANDSHAKE_FAILED_NO_DETAIL with the peer's hang-up (EPIPE/ECONNRESET); a key the
 * coordinator's ZAP handler refuses gives HANDSHAKE_FAILED_AUTH with status 400, after which
 * libzmq does not reconnect), and the blocking send and receive every call uses. Runs on the
 * caller's thread. */
#include "client_internal.h"
#include "client_async.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* A monitor event's first frame: 16-bit event, 32-bit value. */
#define MONITOR_HEADER_LEN 6
/* A handshake that fails sooner than this after the TCP connection was made was ended by the
 * peer (a CURVE server hangs up at once on a HELLO it cannot open); one that fails later ran into
 * the handshake interval (5 s, transport.c) of a peer that kept silent. The errno libzmq reports
 * with HANDSHAKE_FAILED_NO_DETAIL can be stale, so time decides. */
#define CLIENT_HANDSHAKE_HANGUP_MS 1000u

void client_link_event(ef_client_t *c, uint16_t event, uint32_t value)
{
    switch (event) {
    case ZMQ_EVENT_CONNECT_DELAYED:
        c->tcp_tried = 1;
        break;
    case ZMQ_EVENT_CONNECTED: /* a new TCP connection: its handshake decides anew */
        c->tcp_tried = c->tcp_up = 1;
        c->tcp_up_ms = clock_mono_ms();
        c->link_error = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        c->connected = 1;
        c->tcp_up = 0;
        c->link_error = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        c->link_error = EF_EDENIED;
        c->link_value = value;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        c->link_error = EF_EPROTO;
        c->link_value = value;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        /* A quick hang-up is what a CURVE server does with a HELLO it cannot open (wrong server
         * key) or a client it will not name; a late failure is a silent peer, no verdict on the
         * keys. */
        if (clock_mono_ms() - c->tcp_up_ms < CLIENT_HANDSHAKE_HANGUP_MS) {
            c->link_error = EF_ECRYPTO;
            c->link_value = value;
        }
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (c->tcp_up && !c->link_error)
            c->closed_in_handshake = 1;
        c->tcp_up = 0;
        c->connected = 0;
        break;
    default:
        break;
    }
}

/* Read one monitor event (two frames: event+value, then the endpoint) if one is waiting.
 * Returns 1 when one was read. */
static int read_monitor(ef_client_t *c)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 0;
    }
    uint16_t event = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&m) >= MONITOR_HEADER_LEN) {
        memcpy(&event, zmq_msg_data(&m), sizeof event);
        memcpy(&value, (uint8_t *)zmq_msg_data(&m) + sizeof event, sizeof value);
    }
    while (zmq_msg_more(&m)) /* the endpoint frame: we know it */
        zmq_msg_recv(&m, c->monitor, 0);
    zmq_msg_close(&m);
    client_link_event(c, event, value);
    return 1;
}

int client_link_failure(ef_client_t *c)
{
    switch (c->link_error) {
    case EF_EDENIED:
        return client_fail(c, EF_EDENIED,
                           "the coordinator at %s refused this client's key (not in its "
                           "allowlist; ZAP status %u)",
                           c->endpoint, c->link_value);
    case EF_EPROTO:
        return client_fail(c, EF_EPROTO,
                           "CURVE handshake with %s failed: ZMTP protocol error 0x%x (is it an "
                           "edgefleet coordinator's client endpoint?)",
                           c->endpoint, c->link_value);
    default:
        return client_fail(c, EF_ECRYPTO,
                           "CURVE handshake with %s failed: wrong server key, or this key is not "
                           "allowed (the peer hung up)",
                           c->endpoint);
    }
}

int client_link_timed_out(ef_client_t *c)
{
    uint32_t ms = c->connect_timeout_ms;
    if (c->closed_in_handshake)
        return client_fail(c, EF_EPROTO,
                           "%s accepted the TCP connection but closed it during the handshake "
                           "(not a ZeroMQ CURVE endpoint, or a wrong server key?)",
                           c->endpoint);
    if (c->tcp_up)
        return client_fail(c, EF_ENOTCONN,
                           "%s accepted the TCP connection but no CURVE handshake finished in "
                           "%u ms (is it an edgefleet coordinator's client endpoint?)",
                           c->endpoint, ms);
    if (!c->tcp_tried)
        return client_fail(c, EF_ENOTCONN,
                           "nothing answers at %s: no TCP connection could be started in %u ms "
                           "(does the host name resolve?)",
                           c->endpoint, ms);
    return client_fail(c, EF_ENOTCONN,
                       "nothing answers at %s: no TCP connection in %u ms (is the coordinator "
                       "running, and is the address right?)",
                       c->endpoint, ms);
}

int client_wait_connected(ef_client_t *c)
{
    uint64_t end = clock_mono_ms() + c->connect_timeout_ms;
    c->closed_in_handshake = 0;
    for (;;) {
        while (read_monitor(c)) /* the last event decides: a later success wins */
            ;
        if (c->connected)
            return 0;
        if (c->link_error)
            return client_link_failure(c);
        uint64_t now = clock_mono_ms();
        if (now >= end)
            return client_link_timed_out(c);
        zmq_pollitem_t it = {.socket = c->monitor, .events = ZMQ_POLLIN};
        long wait = (long)(end - now);
        zmq_poll(&it, 1, wait < CLIENT_POLL_SLICE_MS ? wait : CLIENT_POLL_SLICE_MS);
    }
}

int client_send(ef_client_t *c, envelope *env)
{
    if (c->loop)
        return client_async_send(c, env);
    uint8_t *buf;
    size_t len;
    int rc = codec_encode(env, 0, &buf, &len);
    if (rc)
        return client_fail(c, rc, "could not encode the %s: %s", codec_body_name(env),
                           ef_strerror(rc));
    rc = zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0 ? EF_ENOTCONN : 0;
    free(buf);
    return rc ? client_fail(c, rc, "could not send to the coordinator at %s: %s", c->endpoint,
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

int client_recv_queued(ef_client_t *c, envelope **out)
{
    *out = NULL;
    for (;;) {
        zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 0) <= 0 || !(it.revents & ZMQ_POLLIN))
            return 1;
        if (recv_one(c, out) == 0)
            return 0;
    }
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
        if ((items[1].revents & ZMQ_POLLIN) && read_monitor(c)) {
            if (c->link_error)
                return client_link_failure(c);
            if (!c->connected)
                return client_fail(c, EF_ENOTCONN, "lost the connection to the coordinator at %s",
                                   c->endpoint);
        }
        if ((items[0].revents & ZMQ_POLLIN) && recv_one(c, out) == 0)
            return 0;
    }
}
