/* The coordinator daemon's shared state and the seams between its files: main.c wires a `coord`,
 * agents_link.c runs the agent endpoint, frontend.c the client endpoint, request*.c and
 * delivery.c carry each request from admission to its end (request.h), telemetry.c publishes
 * samples and ops.c answers operator commands. Everything runs on the one loop thread that owns
 * the sockets; nothing here is thread-safe. */
#ifndef EF_COORD_H
#define EF_COORD_H

#include "codec.h"
#include "gateway.h"
#include "keys.h"
#include "metrics.h"
#include "peers.h"
#include "ratelimit.h"
#include "registry.h"
#include "request.h"
#include "scheduler.h"
#include "transport.h"

#include <stdint.h>
#include <uv.h>

/* Default endpoints (PROTOCOL.md). */
#define COORD_AGENTS_ENDPOINT    "tcp://*:7701"
#define COORD_CLIENTS_ENDPOINT   "tcp://*:7702"
#define COORD_TELEMETRY_ENDPOINT "tcp://*:7703"

/* Handshakes admitted per second by default: unlimited. On the 2-core bench box a bound never
 * helped (1,000 and 3,000 boards: within the noise; 10,000: one run with 1000/s did worse), since
 * a handshake's CURVE work is done before its ZAP request and one kept waiting past the 5 s
 * handshake timeout is wasted and redials. bench/README.md "Fleet scale" has the figures. */
#define COORD_ZAP_RATE_DEFAULT 0

typedef struct {
    const char *agents_endpoint;
    const char *clients_endpoint;
    const char *telemetry_endpoint;
    const char *key_path;     /* the coordinator's secret .key file */
    const char *allow_dir;    /* holds agents/, clients/, operators/ of .pub files */
    uint32_t heartbeat_ms;    /* interval of heartbeats both ways */
    uint32_t liveness;        /* silent intervals before an agent is dead */
    uint32_t queue;           /* queued requests per model */
    uint32_t client_max;      /* queued + running requests per client key, all models */
    uint32_t orphan_grace_ms; /* queued requests of a model no agent serves fail after this */
    uint32_t client_stall_ms; /* a client that takes none of its stream this long loses it */
    uint32_t max_resumes;     /* times one request's stream may move to another agent; 0 = never */
    uint32_t telemetry_window_s; /* seconds of samples kept per device; 0 = 600 */
    uint32_t zap_rate; /* CURVE handshakes admitted per second (burst: one second's worth); 0 =
                          unlimited. See COORD_ZAP_RATE_DEFAULT */
    /* the HTTP gateway (gateway.h): off unless http_listen is set */
    const char *http_listen;   /* --http HOST:PORT */
    const char *http_tls_cert; /* --http-tls-cert PEM */
    const char *http_tls_key;  /* --http-tls-key PEM */
    int http_insecure;         /* --http-insecure: plain HTTP off loopback */
    const char *http_api_keys; /* --http-api-keys FILE: bearer keys; NULL = none asked */
    uint32_t http_max_body;    /* --http-max-body bytes */
    uint32_t http_max_streams; /* --http-max-streams: requests open on the gateway at once */
} coord_config;

typedef struct coord_telemetry coord_telemetry; /* telemetry.c */

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
    uv_timer_t peers_timer;     /* peers.c: a reported close, checked a moment later */
    uint64_t next_heartbeat_ms; /* monotonic time of our next heartbeat to the agents */
    uv_timer_t deadline_timer;  /* request.c: queued requests whose deadline passes */
    uv_timer_t delivery_timer;  /* delivery.c: offers backlogs again while there are any */
    flight *backlog;            /* delivery.c: flights with output the client has not taken */
    flight *flights;            /* request.c: every flight, for what concerns a whole client */
    peers *peers;               /* live connections and their keys (revocation) */
    uint64_t next_sweep_ms;     /* agents_link: next revocation sweep */
    uint64_t sweep_held_ms;     /* agents_link: since when the liveness sweep waits for a
                                   backlog of agent messages to be read (0 = it does not) */
    uint64_t startup_until_ms;  /* until then a model no agent declared yet is queued, not
                                   refused: after a restart the boards are still dialling in */
    ratelimit *log_limit;       /* log lines a peer can trigger, per key */
    gateway *gateway;           /* the HTTP gateway, NULL when off */
    metrics *metrics;           /* request counters for /metrics (NULL: none kept) */
    coord_telemetry *tel;       /* telemetry.c: windows and counters, NULL before telemetry_open */
} coord;

/* ---- frontend.c: the client endpoint ----------------------------------------------------- */

int frontend_open(coord *c, ef_errmsg *em);
/* The front door's check of one request, from libedgefleet or the HTTP gateway: it must say
 * what to run, stay within what one request may carry, and leave the coordinator's own fields
 * alone. Returns 0, or an EF_E* code with why filled. */
int frontend_check(const Edgefleet__Request *r, char *why, size_t cap);
/* One decoded message from a client (the socket callback's body; fuzz targets call it). */
void frontend_handle(coord *c, const envelope *env, const coord_client *client);

/* ---- agents_link.c: the agent endpoint --------------------------------------------------- */

int agents_link_open(coord *c, ef_errmsg *em);
/* One decoded message from an agent link (the socket callback's body; fuzz targets call it). */
void agents_link_handle(coord *c, const envelope *env, const char *user_id, const uint8_t *peer,
                        size_t len);
void agents_link_close(coord *c);
/* libzmq gives a routing id to one live connection at a time, so an agent of a key other than
 * user_id registered on `peer` has lost its link, whether or not its close was seen yet. Left in
 * place it would be found first for this id, and its requests, heartbeats and cancels would go
 * to the new peer (found by tests/fuzz/fuzz_coordinator.c): it leaves the fleet now and its
 * requests move on. */
void agents_link_drop_other_key(coord *c, const uint8_t *peer, size_t len, const char *user_id);
/* Send env to an agent by its registry id. Returns 0 or EF_E*. */
int agents_link_send(coord *c, agent_id_t agent, envelope *env);
/* Tell an agent to stop working on a request (it ends it with Done{CANCELLED}). */
void agents_link_cancel(coord *c, agent_id_t agent, ProtobufCBinaryData request_id);

/* ---- telemetry.c ------------------------------------------------------------------------- */

int telemetry_open(coord *c, ef_errmsg *em);
/* Free the windows (after the transport is gone). NULL-safe. */
void telemetry_close(coord *c);
/* A TelemetrySample from agent a (decoded, untrusted): the coordinator fills its own fields in s
 * (name, RTT, routed, resumed, queues), keeps it in the agent's window and republishes it. */
void telemetry_on_sample(coord *c, const registry_agent *a, Edgefleet__TelemetrySample *s);
/* A request was sent to agent (resumed: its stream moved there from another agent). */
void telemetry_count_routed(coord *c, const char *agent, int resumed);
/* The latest sample of a registered agent, as republished (with the coordinator's fields);
 * NULL when it sent none yet. Valid until the next sample of that agent arrives or it is
 * evicted: read it on the loop thread and do not keep it. */
const Edgefleet__TelemetrySample *telemetry_latest(coord *c, agent_id_t id);
/* Walk the window of one agent by name (NULL = every agent with a window, one after the other),
 * oldest first, each agent's last `last` samples (0 = all): fn gets each packed TelemetrySample and
 * the mono ms it arrived; a non-zero return stops that agent's walk. Returns how many samples fn
 * saw (for one agent). */
typedef int (*telemetry_sample_fn)(const uint8_t *packed, size_t len, uint64_t arrived_ms,
                                   void *user);
size_t telemetry_window_each(coord *c, const char *agent, size_t last, telemetry_sample_fn fn,
                             void *user);
/* Drop an agent's window (evicted). */
void telemetry_forget(coord *c, const char *agent);

/* ---- ops.c: operator commands ------------------------------------------------------------ */

/* Answer an OperatorCommand from `client`. */
void ops_handle(coord *c, const Edgefleet__OperatorCommand *cmd, const coord_client *client);

#endif
