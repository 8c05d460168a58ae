/* The coordinator daemon's shared state and the seams between its files: main.c wires a `coord`,
 * agents_link.c runs the agent endpoint, frontend.c the client endpoint, dispatch.c turns the
 * scheduler's decisions into messages, relay.c carries agents' replies back to clients,
 * flight.c keeps each request's payload, telemetry.c
 * publishes samples and ops.c answers operator commands. Everything runs on the one loop thread
 * that owns the sockets; nothing here is thread-safe. */
#ifndef EF_COORD_H
#define EF_COORD_H

#include "codec.h"
#include "keys.h"
#include "registry.h"
#include "scheduler.h"
#include "transport.h"

#include <stdint.h>
#include <uv.h>

/* Default endpoints (PROTOCOL.md). */
#define COORD_AGENTS_ENDPOINT    "tcp://*:7701"
#define COORD_CLIENTS_ENDPOINT   "tcp://*:7702"
#define COORD_TELEMETRY_ENDPOINT "tcp://*:7703"

typedef struct {
    const char *agents_endpoint;
    const char *clients_endpoint;
    const char *telemetry_endpoint;
    const char *key_path;     /* the coordinator's secret .key file */
    const char *allow_dir;    /* holds agents/, clients/, operators/ of .pub files */
    uint32_t heartbeat_ms;    /* interval of heartbeats both ways */
    uint32_t liveness;        /* silent intervals before an agent is dead */
    uint32_t queue;           /* queued requests per model */
    uint32_t orphan_grace_ms; /* queued requests of a model no agent serves fail after this */
} coord_config;

typedef struct coord {
    coord_config cfg;
    char name[64];  /* Registered.coordinator_name: our hostname */
    keys_pair keys; /* our CURVE key pair, loaded from cfg.key_path */
    uv_loop_t *loop;
    transport *transport;
    tsock *agents;    /* ROUTER, ZAP domain "agents" */
    tsock *clients;   /* ROUTER, ZAP domain "clients" */
    tsock *telemetry; /* PUB, ZAP domain "telemetry" */
    registry_t *registry;
    scheduler_t *scheduler;
    uv_timer_t heartbeat_timer; /* agents_link: heartbeat out + liveness sweep */
    uint64_t next_heartbeat_ms; /* monotonic time of our next heartbeat to the agents */
    uv_timer_t deadline_timer;  /* dispatch: queued requests whose deadline passes */
} coord;

/* Fixed frame sizes from a ROUTER: routing ids are at most 255 bytes (libzmq's limit). */
#define COORD_PEER_MAX 255

/* ---- flight.c: what the coordinator keeps per request (the scheduler's payload) ---------- */

typedef struct {
    Edgefleet__Request *request;    /* owned copy: prompt or messages, sampling (seed), stop... */
    uint8_t client[COORD_PEER_MAX]; /* the client's routing id on the clients ROUTER */
    size_t client_len;
    int32_t *tokens; /* token ids streamed to the client so far (for a later resume) */
    size_t n_tokens, cap_tokens;
    uint32_t tokens_sent; /* tokens relayed to the client (counts chunks without ids too) */
    uint64_t received_ms; /* monotonic arrival time, for the queue-time log line */
} flight;

/* Copy `request` (packed and unpacked, so it owns everything) for a client. NULL on ENOMEM. */
flight *flight_new(const Edgefleet__Request *request, const uint8_t *client, size_t client_len,
                   uint64_t now_ms);
void flight_destroy(flight **f_p);
/* Record a relayed chunk's tokens. Returns 0 or EF_ENOMEM (the count still advances). */
int flight_add_tokens(flight *f, const int32_t *ids, size_t n, size_t text_len);
/* Fail the request to its client (an Error with its id and batch index), then destroy it. The
 * caller has already taken it out of the scheduler. */
void flight_fail(coord *c, flight **f_p, int code, uint32_t retry_after_ms, uint32_t tokens_sent,
                 const char *message);

/* ---- dispatch.c (scheduler decisions -> messages) and relay.c (agent replies -> clients) ---- */

int dispatch_init(coord *c);
void dispatch_close(coord *c);
/* A request from a client (batch items come one by one, with their position; single requests
 * pass 0). Replies itself on refusal. */
void dispatch_submit(coord *c, const Edgefleet__Request *request, uint32_t batch_index,
                     const uint8_t *client, size_t client_len);
/* Send everything the scheduler can place now; re-arm the deadline timer. */
void dispatch_run(coord *c);
/* A client's Cancel. */
void dispatch_cancel(coord *c, const uint8_t *request_id, const uint8_t *client, size_t client_len);
/* An agent's registration ended (dead, replaced): fail its requests to their clients. */
void dispatch_agent_gone(coord *c, agent_id_t agent, const char *agent_name, const char *why);
/* Replies from agent `a` (its registry entry, looked up once per message) about a request. They
 * read `a` only before anything that may remove agents (dispatch_run). */
void dispatch_agent_chunk(coord *c, const registry_agent *a, const Edgefleet__TokenChunk *tc);
void dispatch_agent_done(coord *c, const registry_agent *a, const Edgefleet__Done *d);
void dispatch_agent_error(coord *c, const registry_agent *a, const Edgefleet__Error *e);
/* Fail the queued requests of models that no agent has served for the grace period. */
void dispatch_fail_orphans(coord *c);
/* Give every request back to its client as failed, for shutdown. */
void dispatch_flush(coord *c);

/* ---- frontend.c: the client endpoint ----------------------------------------------------- */

int frontend_open(coord *c, ef_errmsg *em);
/* Send an Error about one request to a client. */
void frontend_send_error(coord *c, const uint8_t *client, size_t client_len,
                         const ProtobufCBinaryData *request_id, uint32_t batch_index, int code,
                         uint32_t retry_after_ms, uint32_t tokens_sent, const char *message);
/* Send any envelope to a client. Returns tsock_send's code. */
int frontend_send(coord *c, const uint8_t *client, size_t client_len, envelope *env);

/* ---- agents_link.c: the agent endpoint --------------------------------------------------- */

int agents_link_open(coord *c, ef_errmsg *em);
void agents_link_close(coord *c);
/* Send env to an agent by its registry id. Returns 0 or EF_E*. */
int agents_link_send(coord *c, agent_id_t agent, envelope *env);
/* Tell an agent to stop working on a request (it ends it with Done{CANCELLED}). */
void agents_link_cancel(coord *c, agent_id_t agent, ProtobufCBinaryData request_id);

/* ---- telemetry.c ------------------------------------------------------------------------- */

int telemetry_open(coord *c, ef_errmsg *em);
/* One TelemetrySample for an agent that just heartbeat. */
void telemetry_publish(coord *c, const registry_agent *a, const Edgefleet__Heartbeat *hb);

/* ---- ops.c: operator commands ------------------------------------------------------------ */

/* Answer an OperatorCommand from `client`, whose ZAP User-Id is user_id. */
void ops_handle(coord *c, const Edgefleet__OperatorCommand *cmd, const char *user_id,
                const uint8_t *client, size_t client_len);

#endif
