/* Private to uplink.c (link states, Register, Heartbeat, reconnects) and uplink_recv.c (what
 * the coordinator sends, and the engine's events going out). Loop thread only. */
#ifndef EF_AGENT_UPLINK_INTERNAL_H
#define EF_AGENT_UPLINK_INTERNAL_H

#include "backoff.h"
#include "outbox.h"
#include "uplink.h"

typedef enum { UPLINK_DOWN = 0, UPLINK_REGISTERING, UPLINK_READY } uplink_state;

struct uplink {
    uv_loop_t *loop;
    transport *transport;
    engine *engine;
    char *endpoint, *server_public;
    char *asked_name;    /* NULL = let the coordinator name us */
    char name[80];       /* as the fleet knows us (Registered), for log lines */
    uint8_t boot_id[16]; /* this process, across reconnects: the coordinator keeps our requests */
    uint64_t handshake_logged_ms; /* last "handshake failed" line: once per window at most */
    keys_pair keys;
    uint32_t hb_ms;       /* ours */
    uint32_t coord_hb_ms; /* the coordinator's, from Registered */
    uint32_t liveness;
    tsock *sock; /* NULL while down */
    uplink_state state;
    uint64_t last_seen_ms;      /* mono ms of the last message from the coordinator */
    uint64_t prev_seen_ms;      /* the one before it: when a message says the coordinator forgot us,
                                   frames sent since shortly before this may be lost */
    const char *want_reconnect; /* set in a socket callback; acted on by the next tick */
    int draining;
    uint64_t stop_deadline_ms;     /* while stopping: when to stop whatever still runs */
    void (*stop_done)(void *user); /* set while stopping; called once, then NULL */
    void *stop_user;
    backoff backoff;
    outbox *outbox;
    uv_timer_t tick;       /* heartbeat + liveness, every hb_ms */
    uv_timer_t retry;      /* one-shot: next connection attempt */
    int closed;            /* timers closed so far */
    uint64_t echo_unix_ms; /* the coordinator's last Heartbeat.sent_unix_ms */
    uint64_t echo_at_ms;   /* mono ms when it came */
    void (*observe)(const engine_event *ev, void *user); /* uplink_observe */
    void *observe_user;
};

uint64_t uplink_window_ms(const uplink *u);
void uplink_register(uplink *u);
void uplink_reconnect(uplink *u, const char *why);
/* Take frames sent since shortly before seen_ms as unsent again. */
void uplink_rewind(uplink *u, uint64_t seen_ms);
void uplink_flush(uplink *u);
/* Encode and queue a reply about request id (sent at once when the link is up). */
int uplink_reply(uplink *u, envelope *env, const uint8_t id[16], uint64_t deadline);
/* One decoded message from the coordinator (uplink_on_recv decodes; fuzz_agent calls this
 * directly with a stubbed transport). */
void uplink_handle(uplink *u, const envelope *env);
/* The tick timer's work (heartbeat, liveness, reconnect requests, outbox pruning) and the
 * retry timer's (dial and Register), callable without waiting for the timers. */
void uplink_tick(uplink *u);
void uplink_connect(uplink *u);
void uplink_on_recv(tsock *s, zmq_msg_t *frames, size_t n_frames, void *user);
void uplink_on_event(tsock *s, uint16_t event, uint32_t value, void *user);
/* While stopping: finish the stop when everything is answered or the timeout passed. */
void uplink_check_stop(uplink *u);

#endif
