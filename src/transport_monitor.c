/* Each socket's ZeroMQ monitor: a PAIR socket on the transport's loop receiving the events of
 * one tsock. On bound sockets, handshakes that fail before the ZAP handler is ever asked (a
 * plaintext peer, a garbled or wrongly keyed CURVE handshake) are logged, rate-limited, since
 * otherwise an operator would never see a misconfigured board knocking. Every event also goes
 * to the owner's on_event callback, which is how a dialling agent learns why its handshake
 * fails, and how the coordinator learns that a connection closed. Loop thread only. */
#include "transport_internal.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

/* Events a monitor listens to. Bound sockets: who came and went, and refusals. Connecting
 * sockets: how far each attempt got. */
#define MONITOR_BOUND_EVENTS                                                       \
    (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |  \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
#define MONITOR_CONNECT_EVENTS                                                     \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_CONNECT_DELAYED | \
     ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |                      \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |  \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

static const char *protocol_problem(uint32_t value)
{
    switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "the peer does not speak CURVE (plaintext or another mechanism)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "the CURVE handshake did not decrypt (a wrong server key?)";
    case ZMQ_PROTOCOL_ERROR_ZAP_BAD_REQUEST_ID:
    case ZMQ_PROTOCOL_ERROR_ZAP_BAD_VERSION:
    case ZMQ_PROTOCOL_ERROR_ZAP_INVALID_STATUS_CODE:
    case ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA:
    case ZMQ_PROTOCOL_ERROR_ZAP_MALFORMED_REPLY:
    case ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED:
        return "the authentication step failed";
    default: /* ZMTP_MALFORMED_COMMAND_* are 0x10000011..0x10000017 */
        return (value & ~0xfu) == 0x10000010u ? "malformed handshake" : "handshake protocol error";
    }
}

const char *tsock_event_text(uint16_t event, uint32_t value, char *buf, size_t cap)
{
    switch (event) {
    case ZMQ_EVENT_CONNECTED:
        snprintf(buf, cap, "TCP connection made");
        break;
    case ZMQ_EVENT_CONNECT_DELAYED:
    case ZMQ_EVENT_CONNECT_RETRIED:
        snprintf(buf, cap, "nothing answers (TCP connect failed, retrying)");
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        snprintf(buf, cap, "CURVE handshake done");
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        snprintf(buf, cap, "key refused (ZAP status %u: not in the allowlist)", value);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        snprintf(buf, cap, "%s", protocol_problem(value));
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        /* The far side hung up mid-handshake. On a bound socket: a NULL-mechanism client that
         * saw our CURVE greeting, or a probe. On a connecting socket: the server could not
         * decrypt our hello (wrong server key) or refused our key. libzmq does not say which. */
        snprintf(buf, cap, "the connection closed mid-handshake (%s)", zmq_strerror((int)value));
        break;
    case ZMQ_EVENT_DISCONNECTED:
        snprintf(buf, cap, "connection closed");
        break;
    case ZMQ_EVENT_ACCEPTED:
        snprintf(buf, cap, "connection accepted");
        break;
    default:
        snprintf(buf, cap, "event 0x%x (%u)", event, value);
        break;
    }
    return buf;
}

static void log_refusal(tsock *s, uint16_t event, uint32_t value)
{
    uint32_t held = 0;
    if (!ratelimit_check(s->t->rl, s->endpoint, uv_now(s->t->loop), &held))
        return;
    char why[160];
    tsock_event_text(event, value, why, sizeof why);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        strncat(why, ": a peer not speaking CURVE, or a probe", sizeof why - strlen(why) - 1);
    if (held)
        log_warn("%s: a connection failed the CURVE handshake: %s (and %u more since the last "
                 "such line)",
                 s->endpoint, why, held);
    else
        log_warn("%s: a connection failed the CURVE handshake: %s", s->endpoint, why);
}

static void on_monitor_event(tsock *m, zmq_msg_t *f, size_t n, void *user)
{
    (void)user;
    tsock *s = m->owner;
    if (!s || n < 1 || zmq_msg_size(&f[0]) < 6)
        return;
    uint16_t event;
    uint32_t value;
    memcpy(&event, zmq_msg_data(&f[0]), sizeof event);
    memcpy(&value, (const uint8_t *)zmq_msg_data(&f[0]) + 2, sizeof value);
    /* Refused keys are logged by the ZAP handler, with the key; these are the earlier refusals. */
    if (s->bound && (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                     event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
        log_refusal(s, event, value);
    if (s->on_event)
        s->on_event(s, event, value, s->user);
}

void transport_monitor_start(transport *t, tsock *s)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://ef-monitor-%p", (void *)s);
    if (zmq_socket_monitor(s->zsock, ep,
                           s->bound ? MONITOR_BOUND_EVENTS : MONITOR_CONNECT_EVENTS) != 0)
        return;
    void *pair = zmq_socket(t->ctx, ZMQ_PAIR);
    ef_errmsg em = {{0}};
    int zero = 0;
    if (!pair || zmq_setsockopt(pair, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(pair, ep) != 0 || !(s->monitor = transport_attach(t, pair, ep, 2, &em))) {
        log_warn("%s: no monitor for connection events: %s", s->endpoint,
                 em.msg[0] ? em.msg : zmq_strerror(zmq_errno()));
        if (pair)
            zmq_close(pair);
        zmq_socket_monitor(s->zsock, NULL, 0);
        return;
    }
    s->monitor->owner = s;
    s->monitor->on_recv = on_monitor_event;
    transport_unref(s->monitor);
}
