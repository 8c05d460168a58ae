/* Private to the transport's files: transport.c (sockets, polling, sending, ZAP handler) and
 * transport_monitor.c (each socket's ZeroMQ monitor: refused handshakes, connection events).
 * Loop thread only. */
#ifndef EF_TRANSPORT_INTERNAL_H
#define EF_TRANSPORT_INTERNAL_H

#include "ratelimit.h"
#include "token_bucket.h"
#include "transport.h"
#include "zap.h"

#include <stdint.h>

struct transport {
    uv_loop_t *loop;
    void *ctx;
    tsock *zap;     /* the ZAP handler's REP socket */
    tsock *sockets; /* every open tsock (the ZAP handler and monitors included), newest first */
    zap_allow *allow;
    ratelimit *rl; /* log lines a peer can trigger: refusals, oversized frames */
};

struct tsock {
    transport *t;
    void *zsock;
    int type;
    int bound;
    size_t max_frames;
    size_t max_msg_size; /* what we send and accept; libzmq is given TRANSPORT_FRAME_SLACK more */
    tsock_recv_fn on_recv;
    tsock_event_fn on_event;
    void *user;
    uv_poll_t poll;       /* ZMQ_FD readable: something happened, check ZMQ_EVENTS */
    uv_prepare_t prepare; /* re-check ZMQ_EVENTS before the loop blocks: a send can eat the edge */
    uv_idle_t idle;       /* running only while a drain batch left messages behind */
    /* Receive pacing (the ZAP handler, transport_set_zap_rate): with paced set, a message is
     * read only with a token from pace; the rest wait unread in libzmq, and pace_timer drains
     * again when the next token is due. */
    int paced;
    token_bucket pace;
    uv_timer_t pace_timer;
    int handles_open; /* close callbacks still to come; memory freed at 0 */
    int closing;
    tsock *prev, *next;
    char endpoint[128]; /* for log lines */
    /* A PAIR socket receiving this socket's monitor events (monitor), and for the PAIR itself
     * the socket it watches (owner). */
    tsock *monitor, *owner;
};

/* Put an already configured zmq socket on t's loop. On failure the socket is left to the
 * caller. */
tsock *transport_attach(transport *t, void *zsock, const char *endpoint, size_t max_frames,
                        ef_errmsg *em);
/* Stop polling and close; memory goes in the uv close callbacks. Idempotent. */
void transport_close_sock(tsock *s);
/* Don't let a helper socket (ZAP handler, monitor) keep uv_run from returning. */
void transport_unref(tsock *s);

/* Watch s with a ZeroMQ monitor: refused handshakes on bound sockets are logged (rate-limited),
 * and every event goes to s->on_event when set. Failure only costs the log lines/events. */
void transport_monitor_start(transport *t, tsock *s);

#endif
