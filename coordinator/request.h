/* A request's whole life in the coordinator, in one module: admitted from a client
 * (request_submit), queued or placed on an agent (request_pump), streaming (request_on_chunk),
 * and ended exactly once through request_end, whatever ends it: Done, an agent's Error, a
 * cancel, a deadline, an orphaned model, a lost agent, a stalled client, shutdown. Endpoint
 * files (frontend.c, agents_link.c, ops.c) decode messages and call in here; they never decide
 * a request's fate. What a request owns (its Request copy, its client, the tokens streamed so
 * far) is its `flight`, the scheduler's payload. Replies to clients go through delivery.c,
 * which buffers a bounded backlog instead of dropping. Loop thread only.
 *   request.c        admission, placement, cancel, deadlines, orphans, shutdown, request_end
 *   request_agent.c  what agents send about requests, and lost agents
 *   delivery.c       the way to the client: send, or keep in order until the client reads
 *   flight.c         the per-request record */
#ifndef EF_COORD_REQUEST_H
#define EF_COORD_REQUEST_H

#include "codec.h"
#include "registry.h"

#include <stddef.h>
#include <stdint.h>

typedef struct coord coord;

/* Fixed frame sizes from a ROUTER: routing ids are at most 255 bytes (libzmq's limit). */
#define COORD_PEER_MAX 255
/* Resumes one request may have at most (--max-resumes is capped to this). */
#define FLIGHT_RESUMES_MAX 15
/* Tokens a client may say it already has when it re-sends a call (Request.received_tokens). */
#define FLIGHT_RECEIVED_MAX 65536u

/* The way a client reached us, and so the way back: the clients ROUTER (libedgefleet), or the
 * HTTP gateway (gateway.c), which names its streams with routing ids of its own. */
typedef enum { CLIENT_VIA_ZMQ = 0, CLIENT_VIA_HTTP = 1 } client_via;

/* Who sent a message on the clients endpoint: the routing id is only the way back (libzmq's
 * or the peer's choice, never an identity); the ZAP User-Id ("clients/alice") is who it is. An
 * HTTP client's user_id is "http/" and its API key's name. */
typedef struct {
    const uint8_t *routing_id;
    size_t routing_id_len;
    const char *user_id;
    client_via via;
} coord_client;

/* Why a flight is being wound down while its agent finishes (a cancel is on its way there). */
typedef enum {
    FLIGHT_RUNNING = 0,
    FLIGHT_CANCELLING, /* the client asked: it gets Done{CANCELLED} */
    FLIGHT_ABORTING,   /* we gave up (stalled client, bad stream): it gets end_code */
    FLIGHT_CLIENT_GONE /* nobody to answer: the end is dropped */
} flight_state;

/* What one request holds while the coordinator has it. */
typedef struct flight {
    Edgefleet__Request *request;    /* owned copy: prompt or messages, sampling (pinned seed)... */
    uint8_t client[COORD_PEER_MAX]; /* the client's routing id on the clients ROUTER */
    size_t client_len;
    client_via via;                    /* ... or on the HTTP gateway */
    char client_key[REGISTRY_KEY_MAX]; /* its ZAP User-Id: the request's owner */
    int32_t *tokens; /* token ids relayed to the client so far (for a later resume) */
    size_t n_tokens, cap_tokens;
    uint64_t received_ms;    /* monotonic arrival time, for log lines */
    uint64_t first_token_ms; /* when the first token went to the client; 0 = none yet */
    uint32_t attempt;        /* the Request.attempt in force: replies of any other are stale */
    uint32_t resumes;        /* times the stream moved to another agent (Done.resumes) */
    size_t attempt_tokens;   /* tokens relayed when this attempt started */
    uint64_t seed0;          /* the seed of attempt 0: each resume's seed derives from it */
    uint32_t n_agents;       /* agents that served a part of it, in order (Done.agents) */
    char agents[FLIGHT_RESUMES_MAX + 1][REGISTRY_NAME_MAX];
    flight_state state;
    int end_code;          /* FLIGHT_ABORTING: the error the client gets */
    char end_message[160]; /* and its text */
    /* delivery.c's: what the client has not taken yet, oldest first */
    struct flight_backlog *backlog;
    struct flight *bl_prev, *bl_next;   /* in coord's list of flights with a backlog */
    struct flight **list, *prev, *next; /* in coord's list of every flight */
} flight;

/* ---- flight.c ------------------------------------------------------------------------------ */

/* Copy `request` (packed and unpacked, so it owns everything) for a client, pin a seed of our
 * own when the client left it to chance, and put it at the head of *list. NULL on ENOMEM or a
 * bad client. */
flight *flight_new(const Edgefleet__Request *request, const coord_client *client, uint64_t now_ms,
                   flight **list);
/* Takes the flight off its list and frees it (its backlog must be gone: delivery.c).
 * NULL-safe; sets *f_p = NULL. */
void flight_destroy(flight **f_p);
/* Record relayed token ids. Returns 0 or EF_ENOMEM. */
int flight_add_tokens(flight *f, const int32_t *ids, size_t n);
/* Make the request a resume: attempt + 1, the tokens relayed so far as resume_tokens, and the
 * seed of that attempt (see flight_resume_seed). Returns 0 or EF_ENOMEM (nothing changed). */
int flight_resume(flight *f);
/* The sampling seed of attempt k >= 1 after n relayed tokens: the first 8 bytes (little
 * endian) of SHA-256(seed0 as 8 bytes LE || k as 4 bytes LE || n as 4 bytes LE), 1 if zero.
 * Documented in PROTOCOL.md so that a resumed sampled stream can be reproduced. */
uint64_t flight_resume_seed(uint64_t seed0, uint32_t k, uint32_t n);
/* Note that agent `name` serves the current attempt (Done.agents). */
void flight_served_by(flight *f, const char *name);

/* ---- request.c ----------------------------------------------------------------------------- */

int request_init(coord *c);
void request_close(coord *c);
/* A client's Request (batch items come one by one with their position; single requests pass
 * 0), already checked at the front door. Answers the client itself on refusal. */
void request_submit(coord *c, const Edgefleet__Request *request, uint32_t batch_index,
                    const coord_client *client);
/* Send everything the scheduler can place now; re-arm the deadline timer. Call after anything
 * that may free a credit or add an agent. */
void request_pump(coord *c);
/* A client's Cancel: only the request's owner (same key) may cancel it. */
void request_cancel(coord *c, const uint8_t *request_id, const coord_client *client);
/* A client key was revoked: its requests stop (cancelled on their agents), unanswered. */
void request_client_revoked(coord *c, const char *user_id);
/* The client of one request left (an HTTP client closed its connection): the request stops
 * (cancelled on its agent, the slot free within a step), unanswered. Only its owner's key
 * counts; an ended request is left alone. */
void request_client_gone(coord *c, const uint8_t *request_id, const coord_client *client);
/* Fail the queued requests of models that no agent has served for the grace period. */
void request_fail_orphans(coord *c);
/* Give every request back to its client as failed, for shutdown. */
void request_flush(coord *c);

/* How a request ends. done != NULL: relay it (finish, usage...); else an Error with code. */
typedef struct {
    const Edgefleet__Done *done;
    const char *agent; /* who served it, for the client and the log; NULL = none */
    int code;
    uint32_t retry_after_ms;
    const char *message;
} request_outcome;

/* The one end of every request: the flight is already out of the scheduler. Sends the final
 * message after whatever the client has not read yet (delivery.c owns the flight from here),
 * and logs one line. *f_p is NULL afterwards. */
void request_end(coord *c, flight **f_p, const request_outcome *how);
/* Stop a request that is running on an agent without waiting for it: tell the agent to cancel,
 * and answer the client with code/message once the agent confirms (or is lost). For a
 * request not in flight (queued) it ends at once. */
void request_abort(coord *c, flight *f, int code, const char *message);

/* ---- request_agent.c ----------------------------------------------------------------------- */

/* Replies from agent `a` (its registry entry) about a request. Each checks that the request is
 * in flight on that very registration; replays of what was already relayed are dropped; a
 * stream that skips or repeats tokens ends the request with EF_EPROTO. `a` is read only
 * before anything that may remove agents. */
void request_on_chunk(coord *c, const registry_agent *a, const Edgefleet__TokenChunk *tc);
void request_on_done(coord *c, const registry_agent *a, const Edgefleet__Done *d);
void request_on_error(coord *c, const registry_agent *a, const Edgefleet__Error *e);
/* An agent's registration ended (dead, replaced, left, revoked): its requests fail to their
 * clients with EF_EAGENTLOST and the tokens they already got. */
void request_agent_gone(coord *c, agent_id_t agent, const char *agent_name, const char *why);

/* ---- delivery.c ---------------------------------------------------------------------------- */

/* A client whose stream waits longer than --client-stall-ms (default DELIVERY_STALL_MS) without
 * taking anything, or whose waiting output passes DELIVERY_BACKLOG_MAX bytes, loses the request
 * (EF_ESTALLED): a reader that stopped must not hold an agent's slot forever. */
#define DELIVERY_STALL_MS    10000u
#define DELIVERY_BACKLOG_MAX (1u << 20)

int delivery_init(coord *c);
void delivery_close(coord *c);
/* Relay a chunk (agent_name and batch_index already set). Returns 0 (sent or kept in order),
 * EF_ENOTCONN (the client is gone: nothing kept), or EF_ESTALLED (the backlog is over its
 * bound: nothing kept; the caller aborts the request). */
int delivery_chunk(coord *c, flight *f, const Edgefleet__TokenChunk *tc);
/* Send env (Done or Error) as the request's last message and take the flight: it is freed once
 * everything is out, the client is gone, or it stalls. *f_p is NULL afterwards. */
void delivery_end(coord *c, flight **f_p, envelope *env);
/* Send an envelope to a client the way it came (`via`). Returns 0, EF_EBUSY (its queue is full:
 * nothing sent), EF_ENOTCONN (gone), or another EF_E* (logged). */
int delivery_send(coord *c, client_via via, const uint8_t *client, size_t client_len,
                  envelope *env);
/* An Error about one request that the coordinator never admitted (or about a whole batch). */
void delivery_refuse(coord *c, const coord_client *client, const ProtobufCBinaryData *request_id,
                     uint32_t batch_index, int code, uint32_t retry_after_ms, const char *message);

#endif
