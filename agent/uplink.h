/* The agent's link to the coordinator (Paranoid Pirate, agent side): a CURVE DEALER dialling
 * out (routing id = agent name), Register on every (re)connect, Heartbeat with load every
 * interval, requests into the engine, the engine's events out as TokenChunk/Done/Error. When the
 * coordinator is silent for liveness x interval the socket is replaced, with exponential
 * backoff and jitter between attempts, and replies made meanwhile wait in the outbox.
 * Loop thread only. */
#ifndef EF_AGENT_UPLINK_H
#define EF_AGENT_UPLINK_H

#include "engine.h"
#include "transport.h"

#include <uv.h>

typedef struct uplink uplink;

typedef struct {
    uv_loop_t *loop;
    transport *transport;
    engine *engine;
    const char *endpoint;      /* coordinator's agent endpoint */
    const char *name;          /* name to ask for; NULL = none (the fleet names an agent after
                                  its key, and a name the key does not have is refused) */
    const char *server_public; /* coordinator's Z85 public key */
    const keys_pair *keys;     /* this agent's keys (copied) */
    uint32_t heartbeat_ms;     /* 0 = 1000 */
    uint32_t liveness;         /* missed intervals before the coordinator is dead; 0 = 3 */
} uplink_params;

/* Start dialling. NULL with em on failure. Strings are copied. */
uplink *uplink_new(const uplink_params *p, ef_errmsg *em);
/* Close the socket and timers; memory goes in the timers' close callbacks, so run the loop
 * once more afterwards. NULL-safe; sets *u_p = NULL. */
void uplink_destroy(uplink **u_p);
/* Send what the engine produced (call when its notify fired). */
void uplink_deliver(uplink *u);
/* Graceful stop (SIGTERM): take no new work (the heartbeat says draining at once), wait until
 * every accepted request has ended and its replies are sent, at most timeout_ms, then send a
 * last Heartbeat{leaving} so the coordinator fails what still runs here at once instead of
 * after its liveness window, and call done(user) on the loop. Calling it again while stopping
 * stops at once. */
void uplink_stop(uplink *u, uint32_t timeout_ms, void (*done)(void *user), void *user);

/* Call fn(ev, user) for every engine event before it is sent (telemetry counts them). */
void uplink_observe(uplink *u, void (*fn)(const engine_event *ev, void *user), void *user);
/* Send a TelemetrySample while registered, with the echo of the coordinator's last heartbeat
 * and our drain flag filled in. Returns 0, EF_ENOTCONN while not registered (the sample is
 * dropped: telemetry is never queued for later), or the send's EF_E*. */
int uplink_send_telemetry(uplink *u, Edgefleet__TelemetrySample *t);

#endif
