/* libedgefleet internals shared by client.c (connection, operator commands), client_call.c
 * (generate, chat, batch) and client_async*.c (the same calls on a libuv loop). Everything runs
 * on the thread that called into the public API (an async client: the loop's thread); only
 * `cancel` is touched from other threads, hence its atomic type. */
#ifndef EF_CLIENT_INTERNAL_H
#define EF_CLIENT_INTERNAL_H

#include "codec.h"
#include "edgefleet.h"
#include "keys.h"

#include <stdatomic.h>
#include <stdint.h>

/* How often a waiting call wakes up to look at the cancel flag: short enough that
 * ef_client_cancel feels immediate, long enough to cost nothing. */
#define CLIENT_POLL_SLICE_MS 50

/* Connect timeout when the params say 0. */
#define CLIENT_CONNECT_TIMEOUT_DEFAULT_MS 5000u

/* Room for the endpoint string, kept for messages ("nothing answers at tcp://..."). */
#define CLIENT_ENDPOINT_MAX 256

struct client_loop; /* client_async.c: an async client's loop, transport, socket and timer */

/* An async client's calls (client_async_call.c). */
typedef struct {
    struct ef_call *pending;            /* not ended, newest first (doubly linked) */
    struct ef_call *ended, *ended_tail; /* ended, their on_done not called yet, oldest first */
    size_t n_pending;                   /* calls whose on_done has not been called */
    /* A call's slot is in bytes 8..11 of its request id, so a reply finds its call at once. */
    struct ef_call **slots; /* by slot: the call on the wire there, or NULL */
    size_t n_slots, slots_cap;
    uint32_t *free_slots; /* slots of ended calls, to reuse */
    size_t n_free, free_cap;
    int depth;      /* > 0 while the library is handing something over */
    int destroying; /* ef_client_destroy was called */
} client_calls;

struct ef_client {
    void *zctx;    /* own context: clients on different threads share nothing */
    void *sock;    /* DEALER to the coordinator's client endpoint */
    void *monitor; /* PAIR receiving the DEALER's connect/handshake/disconnect events */
    int connected; /* a CURVE handshake succeeded and no disconnect since */
    /* What the monitor said about the link while it is not connected (client.c): */
    int tcp_tried;           /* a TCP connect was started (the host name resolved) */
    int tcp_up;              /* a TCP connection is open, its handshake not finished */
    int closed_in_handshake; /* a peer hung up mid-handshake without saying why */
    uint64_t tcp_up_ms;      /* when that TCP connection was made (monotonic) */
    int link_error;          /* 0, or the EF_E* a failed handshake means */
    uint32_t link_value;     /* that event's value: the ZAP status, errno or protocol error */
    uint32_t connect_timeout_ms;
    uint32_t request_timeout_ms;
    atomic_int cancel; /* set by ef_client_cancel from any thread */
    char endpoint[CLIENT_ENDPOINT_MAX];
    char last_error[256];
    struct client_loop *loop; /* NULL: a blocking client (zctx, sock and monitor are its link) */
    client_calls calls;       /* async clients only */
};

/* Set the client's last error text and return code. */
int client_fail(ef_client_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A monitor event of the client's DEALER (ZMQ_EVENT_*, its value) into the link's state
 * (connected, link_error, what the TCP side did). client_link.c; the async client feeds it
 * the events its tsock reports. */
void client_link_event(ef_client_t *c, uint16_t event, uint32_t value);
/* The failed handshake's reason (link_error) into the last error; returns its code. */
int client_link_failure(ef_client_t *c);
/* Why no handshake finished within connect_timeout_ms, into the last error; returns its code. */
int client_link_timed_out(ef_client_t *c);

/* Wait (up to connect_timeout_ms) until the handshake has succeeded. Returns 0, or with the
 * reason in the last error: EF_ENOTCONN (nothing answers, or no handshake in time), EF_EDENIED
 * (the coordinator refused our key), EF_ECRYPTO (handshake failed: wrong server key or key not
 * allowed), EF_EPROTO (the peer is not a CURVE ZeroMQ endpoint). */
int client_wait_connected(ef_client_t *c);

/* Common start of every call and command: clear the cancel flag and the last error, then wait
 * for the link as client_wait_connected does. */
int client_call_begin(ef_client_t *c);

/* An error code from the wire (Error.code, OperatorReply.code): trusted only inside our
 * table's range (-1..-1000), EF_EPROTO otherwise. */
int client_wire_error(int32_t code);

/* Encode and send env (an async client: on its tsock, without blocking). 0 or EF_ENOTCONN /
 * EF_EBUSY / codec errors, with the reason in the last error. */
int client_send(ef_client_t *c, envelope *env);

/* Wait until a frame arrives (returns 0 and sets *out; free with codec_free), `wait_ms` pass
 * (EF_ETIMEDOUT), the link drops (EF_ENOTCONN) or a handshake fails (as client_wait_connected).
 * Frames that fail to decode are skipped. Returns EF_ECANCELED when the cancel flag is set. */
int client_recv(ef_client_t *c, uint32_t wait_ms, envelope **out);
/* A frame already queued on the socket, whatever the link's state (0 and *out), or 1 when none
 * is: what arrived before a link broke is read before the call is sent again. */
int client_recv_queued(ef_client_t *c, envelope **out);

/* 16 random bytes from libsodium. */
void client_random_id(uint8_t id[CODEC_REQUEST_ID_LEN]);

/* ef_client_open and ef_client_new: make the client and, when wait is nonzero, wait for the
 * handshake. 0 with *out, or an EF_E* code with the reason in why (may be NULL). */
int client_open(const ef_client_params *params, int wait, ef_client_t **out, char *why,
                size_t why_cap);

#endif
