/* ZeroMQ sockets with CURVE always on, bound to a libuv loop. There is no plaintext mode: every
 * socket made here is a CURVE server (bind) or a CURVE client (connect). Bound sockets name a
 * ZAP domain; the transport's ZAP handler (RFC 27) admits a client only if its public key is in
 * the allowlist directory registered for that domain. Sockets join the loop through ZMQ_FD and
 * uv_poll, and drain while ZMQ_EVENTS says readable (the fd is edge-triggered, and a send can
 * consume the edge, so readiness is also re-checked once per loop iteration).
 * Everything here runs on the loop's thread only. */
#ifndef EF_TRANSPORT_H
#define EF_TRANSPORT_H

#include "codec.h"
#include "errors.h"
#include "keys.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>
#include <zmq.h>

typedef struct transport transport; /* zmq context + ZAP handler, owned by one loop */
typedef struct tsock tsock;         /* one ZeroMQ socket on that loop */

/* Called for each complete multipart message (at most 8 frames; longer ones are dropped with a
 * warning). For ROUTER the first frame is the peer's routing id; zmq_msg_gets(&frames[i],
 * "User-Id") gives the peer's "<allowlist dir basename>/<key name>" on a bound socket. The frames
 * are valid only during the call; the callback may destroy s or send on any socket. */
typedef void (*tsock_recv_fn)(tsock *s, zmq_msg_t *frames, size_t n_frames, void *user);

/* A connection event from the socket's ZeroMQ monitor: event is a ZMQ_EVENT_* (CONNECTED,
 * CONNECT_RETRIED, HANDSHAKE_SUCCEEDED, HANDSHAKE_FAILED_*, DISCONNECTED, ACCEPTED), value its
 * number (an fd, a protocol error, a ZAP status). tsock_event_text says it in words. */
typedef void (*tsock_event_fn)(tsock *s, uint16_t event, uint32_t value, void *user);

typedef struct {
    int type;                  /* ZMQ_ROUTER, ZMQ_DEALER, ZMQ_PUB or ZMQ_SUB */
    const char *endpoint;      /* "tcp://127.0.0.1:7700" */
    int bind;                  /* 1 = bind as CURVE server, 0 = connect as CURVE client */
    const keys_pair *keys;     /* this side's key pair (copied) */
    const char *server_public; /* connect: the server's Z85 public key */
    const char *zap_domain;    /* bind: allowlist domain given to transport_allow_dir */
    const char *routing_id;    /* DEALER: identity the ROUTER sees (NULL = random) */
    size_t max_msg_size;       /* largest frame sent or accepted; 0 = CODEC_MAX_FRAME_DEFAULT.
                                  Larger ones are refused (send) or dropped (receive) with a
                                  rate-limited log line; the link stays up */
    int sndhwm;                /* 0 = default (see transport.c) */
    int rcvhwm;                /* 0 = default */
    int no_zmtp_heartbeat;     /* 1 = this socket sends no ZMTP PINGs (peers' PINGs are still
                                  answered): for a ROUTER of thousands of links whose own
                                  heartbeats say who is alive. libzmq 4.3 cancels a PING's
                                  timeout timer by a linear scan of every timer of the I/O
                                  thread, at the next message: O(links) per message */
    tsock_recv_fn on_recv;     /* may be NULL for PUB */
    tsock_event_fn on_event;   /* connection events; NULL = none (bound sockets still log
                                  refused handshakes) */
    void *user;
} tsock_params;

/* New transport on loop. NULL on failure. */
transport *transport_new(uv_loop_t *loop);
/* Closes every socket still open, stops the ZAP handler, terminates the context (waiting up to
 * each socket's linger, 500 ms, for queued output). Every tsock of t is invalid afterwards: do
 * not tsock_destroy them. Handle memory is freed in uv close callbacks, so run the loop once more
 * (e.g. uv_run(loop, UV_RUN_NOWAIT)) before uv_loop_close. NULL-safe; sets *t_p = NULL. */
void transport_destroy(transport **t_p);

/* Admit peers whose public keys are .pub files in dir on sockets bound with zap_domain. May be
 * called several times per domain (e.g. allow/clients and allow/operators for "clients"). The
 * directory is read at every new connection: removing a file refuses that key's next connection
 * with no restart; live connections are the caller's to check (zap_snapshot_new over
 * transport_allowlists) and cut (tsock_conn_cut). A dir that does not exist yet is accepted
 * with a warning. Returns 0, EF_EINVAL, EF_ENOMEM. Each admitted connection's messages carry
 * its User-Id and, as metadata ZAP_PROPERTY_KEY, its Z85 public key (tsock_peer_of). */
int transport_allow_dir(transport *t, const char *zap_domain, const char *dir);
/* Admit at most per_s CURVE handshakes a second (after a quiet spell, burst at once; 0 = per_s):
 * the ZAP handler reads a request only with a token, and the others wait unread in libzmq, their
 * handshakes paused, instead of being refused. libzmq drops a handshake not done within
 * TSOCK_HANDSHAKE_IVL_MS (5 s, both ends): a peer kept waiting longer redials, so per_s times
 * that should exceed the connections arriving at once. per_s 0 = unlimited (the default).
 * Returns 0 or EF_EINVAL. */
int transport_set_zap_rate(transport *t, uint32_t per_s, uint32_t burst);

/* The allowlists given to transport_allow_dir (valid for the transport's life). */
typedef struct zap_allow zap_allow;
const zap_allow *transport_allowlists(const transport *t);

/* Open, configure (CURVE, limits, linger, HWM, reconnect), bind or connect, and start polling.
 * NULL on failure with em saying why (bad endpoint, address in use, bad key). */
tsock *tsock_new(transport *t, const tsock_params *p, ef_errmsg *em);
/* Stop polling and close the socket (linger applies); memory is freed in the uv close
 * callback. NULL-safe; sets *s_p = NULL. */
void tsock_destroy(tsock **s_p);

/* Send one message without blocking: [peer_id] + payload. peer_id is the routing id for ROUTER
 * (required) and the topic frame for PUB (optional: NULL sends the payload alone); ignored for
 * DEALER. Returns 0; EF_EBUSY when the peer's queue is at its high-water mark (or a DEALER has
 * nowhere to queue); EF_ENOTCONN when a ROUTER has no such peer; EF_ETOOBIG when len exceeds the
 * socket's max_msg_size; EF_EINVAL; EF_EZMQ otherwise. */
int tsock_send(tsock *s, const void *peer_id, size_t peer_len, const void *buf, size_t len);

/* Encode env with the codec and tsock_send it. Same returns, plus codec errors. */
int tsock_send_env(tsock *s, const void *peer_id, size_t peer_len, envelope *env);
/* 1 while messages may be waiting on s that the loop has not delivered yet (the last drain
 * stopped at its batch limit, or a send found the socket readable): a caller judging peers by
 * their silence should wait, since their messages may be sitting unread. */
int tsock_backlogged(const tsock *s);

/* SUB: subscribe to a topic prefix ("" = all). */
int tsock_subscribe(tsock *s, const char *prefix);

/* The raw libzmq socket, for tests and socket monitors. Do not close it. NULL once destroyed. */
void *tsock_zmq(tsock *s);
/* The socket's frame limit (tsock_params.max_msg_size, defaulted). */
size_t tsock_max_msg_size(const tsock *s);

/* A monitor event in words ("nothing answers (TCP connect failed, retrying)"). Returns buf. */
const char *tsock_event_text(uint16_t event, uint32_t value, char *buf, size_t cap);

/* Who sent a message on a bound socket, from any of its frames: the ZAP User-Id
 * ("clients/alice", "" when none), the Z85 public key ("" when none), and the fd of its TCP
 * connection (-1 when unknown). The strings are valid while the frame is. */
typedef struct {
    const char *user_id;
    const char *key;
    int fd;
} tsock_peer;
void tsock_peer_of(zmq_msg_t *frame, tsock_peer *out);

/* One TCP connection as seen at a moment: its fd and both ends' addresses, so that it can be
 * recognised (and only it) later even though fds are reused. */
typedef struct {
    int fd;
    struct sockaddr_storage local, remote;
    socklen_t local_len, remote_len;
} tsock_conn;
/* Record what fd carries now. 0, or EF_ENOENT (not a connected socket). */
int tsock_conn_capture(int fd, tsock_conn *out);
/* 1 while c->fd still carries the recorded connection. */
int tsock_conn_same(const tsock_conn *c);
/* End the recorded connection (libzmq then drops the peer as a lost one): 0, EF_ENOENT when it
 * is gone already (or its fd now carries another connection, which is left alone), EF_EIO. */
int tsock_conn_cut(const tsock_conn *c);

/* Apply edgefleet's CURVE client options and limits to a plain libzmq socket (libedgefleet's
 * blocking client uses this so its sockets match the daemons'). Returns 0 or EF_EZMQ/EF_EKEY. */
int transport_setup_client_socket(void *zsock, const keys_pair *keys, const char *server_public,
                                  size_t max_msg_size);

#endif
