/* The coordinator's routing logic: which agent gets each request, and what waits. Candidates are
 * live, non-draining agents serving the model with a free slot (credit); among them the one with
 * the lowest (inflight + 1) / (total_slots * gen_tps) wins, so work follows capacity, ties to the
 * lower agent id (deterministic, no RNG). Sessions stick to their agent while it is healthy, has
 * a credit and is not overloaded. Pure logic: no sockets, "now_ms" is an argument (the same clock
 * as the registry's and as deadlines). Not thread-safe: the coordinator's loop thread owns it.
 *
 * Fairness between clients. Every request belongs to a client (sched_submit.client: the ZAP
 * User-Id of the key it came from; NULL or "" is one shared anonymous client).
 *  - Cap: a client holds at most max_per_client requests queued or running, over all models;
 *    the next is refused with EF_EBUSY, sched_busy.reason SCHED_BUSY_CLIENT, and a retry hint.
 *  - Turns: what no slot can take waits in a bounded per-model queue. Inside it each client's
 *    requests keep their order (earliest deadline first, then admission), and the clients take
 *    turns: each pick serves the first request of the client whose turn it is, and the turn
 *    passes on. A client that starts waiting joins at the back of the round, so a request from a
 *    quiet client has at most one request of each other waiting client dispatched ahead of it.
 *    A requeued request keeps its place in its client's order, and its client, if it had nothing
 *    else waiting, gets the next turn (its turn was spent on a dispatch that failed). Deadlines
 *    still expire queued requests whoever's turn it is. Each pick costs O(log n + log agents)
 *    (registry_pick: per-model heaps in the registry).
 *  - Sizing: one flooding client fills at most max_per_client of a model's queue, so with
 *    max_per_client well below max_queued_per_model (defaults 512 and 4096: eight keys flooding
 *    at once before the queue is full) a flood from one key never makes another key busy; and
 *    keep max_requests >= max_queued_per_model x the models in use.
 * Hashes of client-chosen bytes (request ids, session ids, client ids) are SipHash under a key
 * drawn at scheduler_new, so no peer can aim its entries at one bucket.
 *
 * Daemon duty cycle:
 *   client Request      -> scheduler_submit with .client = the connection's User-Id (dispatches
 *                          at once when it can, else queues; EF_EBUSY: answer Error with
 *                          retry_after_ms and say why from .busy, e.g. "client X has N requests
 *                          queued or running (at most M)")
 *   Register/Heartbeat/undrain/Done/Error -> registry_* then scheduler_dispatch (send each
 *                          decision)
 *   Done/Error from agent -> scheduler_complete (frees the credit; the record comes back)
 *   agent answered EF_EBUSY / send failed -> scheduler_requeue, then scheduler_dispatch
 *   client Cancel       -> scheduler_cancel
 *   timer at scheduler_next_deadline_ms -> scheduler_expire (reply Error{EF_EDEADLINE})
 *   liveness sweep tick -> scheduler_orphaned (reply Error{EF_EUNKNOWNMODEL})
 *   registry_sweep / replaced on register / registry_remove -> scheduler_agent_gone
 *   status              -> scheduler_queued / scheduler_client_count / scheduler_clients
 * Functions that return a count of records written to an out array with a cap remove what they
 * write; when they return cap, call again. */
#ifndef EF_COORD_SCHEDULER_H
#define EF_COORD_SCHEDULER_H

#include "registry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_REQUEST_ID_LEN 16  /* client-chosen id (Request.request_id) */
#define SCHED_SESSION_MAX    128 /* session id incl. NUL; longer ones are refused (EF_EINVAL) */
#define SCHED_HASH_KEY_LEN   16  /* SipHash key (libsodium crypto_shorthash_KEYBYTES) */
/* Client id (ZAP User-Id, as an agent's key id) incl. NUL; longer ones are refused (EF_EINVAL). */
#define SCHED_CLIENT_MAX REGISTRY_KEY_MAX

/* Defaults of scheduler_default_params, for the daemon's flags: a client may hold an eighth of
 * a model's queue, so eight keys must flood at once before anyone else is refused. */
#define SCHED_DEFAULT_MAX_QUEUED_PER_MODEL 4096
#define SCHED_DEFAULT_MAX_PER_CLIENT       512

typedef struct scheduler scheduler_t;

typedef struct {
    uint32_t max_queued_per_model; /* queue bound per model; 0 = 4096. Beyond: EF_EBUSY */
    uint32_t max_per_client;       /* requests one client may have queued or in flight, all
                                      models; 0 = no cap; default 512. Beyond: EF_EBUSY */
    uint32_t max_models;           /* distinct model queues; 0 = 64 */
    uint32_t max_requests;         /* queued + in flight, all models; 0 = 65536 */
    uint32_t max_sessions;         /* session->agent entries (LRU beyond); 0 = 4096 */
    uint32_t session_ttl_ms;       /* a session unused this long forgets its agent; 0 = 600000 */
    double default_gen_tps;        /* per-slot speed assumed when no agent measured one; 0 = 10 */
    double session_overload;       /* a session leaves its agent when that agent's load score
                                      exceeds this many times the best candidate's; 0 = 2.0 */
    uint32_t default_tokens;       /* tokens assumed for max_tokens 0, for estimates; 0 = 256 */
    bool queue_unknown_models;     /* false: submit fails with EF_EUNKNOWNMODEL when no agent in
                                      the registry declares the model; true: it waits for one */
    uint32_t orphan_grace_ms;      /* queued requests of a model that no live, non-draining agent
                                      has served for this long are failed (scheduler_orphaned);
                                      0 = 30000: long enough for a board to restart and load */
    const uint8_t *hash_key;       /* SCHED_HASH_KEY_LEN bytes keying every hash (copied at
                                      scheduler_new); NULL = random (randombytes_buf). Tests only:
                                      a known key lets a peer aim entries at one bucket */
} scheduler_params;

typedef enum {
    SCHED_QUEUED = 1,  /* waiting for a credit */
    SCHED_INFLIGHT = 2 /* sent to `agent`, not yet ended */
} sched_state;

/* The scheduler's record of one request. Everything needed to resume it elsewhere later lives
 * here or in payload: the daemon owns payload (e.g. the decoded Request: prompt, sampling params,
 * seed) and frees it when the record comes back from complete/expire/cancel/agent_gone/flush;
 * the scheduler never touches it. */
typedef struct {
    uint64_t ticket; /* scheduler handle: unique for the scheduler's life, never 0 */
    uint8_t request_id[SCHED_REQUEST_ID_LEN];
    char model[REGISTRY_MODEL_NAME_MAX];
    char session_id[SCHED_SESSION_MAX]; /* "" = none */
    char client[SCHED_CLIENT_MAX];      /* who sent it (sched_submit.client); "" = anonymous */
    uint64_t deadline_ms;               /* 0 = none; same clock as now_ms */
    uint32_t max_tokens;                /* 0 = unknown (estimates use default_tokens) */
    uint64_t seed;                      /* sampling seed (0 = agent picks; daemon may update) */
    uint64_t submitted_ms;
    uint64_t dispatched_ms; /* last dispatch; 0 while never dispatched */
    agent_id_t agent;       /* AGENT_ID_NONE while queued */
    sched_state state;
    uint32_t attempts;        /* dispatches so far (requeue + dispatch counts again) */
    uint32_t tokens_streamed; /* tokens relayed to the client so far; the daemon updates it */
    void *payload;            /* daemon-owned, see above */
} sched_request;

/* Which limit refused a submission with EF_EBUSY. */
typedef enum {
    SCHED_BUSY_NONE = 0, /* not refused as busy */
    SCHED_BUSY_CLIENT,   /* the client holds max_per_client requests queued or in flight */
    SCHED_BUSY_QUEUE,    /* the model's queue holds max_queued_per_model requests */
    SCHED_BUSY_TABLE,    /* the scheduler holds max_requests requests */
    SCHED_BUSY_MODELS    /* max_models distinct model queues exist; this model has none */
} sched_busy_reason;

/* Why scheduler_submit answered EF_EBUSY, for the client's error message. */
typedef struct {
    sched_busy_reason reason;
    uint32_t count; /* what that limit counts now (e.g. the client's queued + in flight) */
    uint32_t limit; /* the limit */
} sched_busy;

/* What scheduler_submit takes. Strings and request_id are copied. */
typedef struct {
    const uint8_t *request_id; /* SCHED_REQUEST_ID_LEN bytes; must not be in the scheduler */
    const char *model;         /* non-empty, < REGISTRY_MODEL_NAME_MAX */
    const char *session_id;    /* NULL or "" = none */
    uint64_t deadline_ms;      /* 0 = none; same clock as now_ms */
    uint32_t max_tokens;       /* 0 = unknown */
    uint64_t seed;
    void *payload;      /* ownership stays with the daemon; handed back with the record */
    const char *client; /* the sender's identity, < SCHED_CLIENT_MAX: the ZAP User-Id, e.g.
                           "clients/alice"; NULL or "" = the one shared anonymous client */
    sched_busy *busy;   /* NULL, or written by every scheduler_submit of this struct: why
                           EF_EBUSY, else reason SCHED_BUSY_NONE */
} sched_submit;

/* A routing decision: send the request `ticket` (payload) to `agent` now. The request is already
 * counted in flight there. If the send fails, call scheduler_requeue or scheduler_complete. */
typedef struct {
    uint64_t ticket;
    agent_id_t agent;
    void *payload;
} sched_dispatch;

/* Defaults as documented per field. */
scheduler_params scheduler_default_params(void);

/* New scheduler routing over registry, which is borrowed and must outlive it. p NULL = defaults.
 * Returns NULL on allocation failure. */
scheduler_t *scheduler_new(registry_t *registry, const scheduler_params *p);

/* Frees the scheduler (not payloads: take them back first with scheduler_flush) and sets
 * *self_p = NULL. NULL or *self_p NULL is a no-op. */
void scheduler_destroy(scheduler_t **self_p);

/* Admits a client request. Returns 0 and fills *out: out->agent != AGENT_ID_NONE means it was
 * dispatched at once (send it), AGENT_ID_NONE means it is queued; out->ticket is set either way.
 * It is dispatched at once only when nothing of its model already waits.
 * Errors (nothing kept, payload still the caller's): EF_EBUSY the client is at its cap, or the
 * model's queue (or the request table, or the model table) is full: *req->busy says which,
 * *retry_after_ms (may be NULL) says when to try again (> 0: at the client cap, the time the
 * model's fleet needs for the client's own queued and running tokens; else the time it needs
 * for the model's queue); EF_EINVAL bad field (client too long included); EF_EDUPLICATE the
 * request_id is already in the scheduler; EF_EDEADLINE deadline already passed;
 * EF_EUNKNOWNMODEL no agent declares the model (unless queue_unknown_models). The checks run in
 * that order: EF_EINVAL, EF_EDEADLINE, EF_EDUPLICATE, EF_EUNKNOWNMODEL, then the EF_EBUSY limits
 * (client cap first). */
int scheduler_submit(scheduler_t *self, const sched_submit *req, uint64_t now_ms,
                     sched_dispatch *out, uint32_t *retry_after_ms);

/* Moves queued requests (per model the clients take turns, each client's earliest deadline
 * first; expired ones are skipped, left for scheduler_expire) onto free credits. Writes up to cap
 * decisions; returns how many. Call after every register, heartbeat, undrain and completion, and
 * again while it returns cap. */
size_t scheduler_dispatch(scheduler_t *self, uint64_t now_ms, sched_dispatch *out, size_t cap);

/* Removes queued requests whose deadline is <= now_ms (never dispatched) and copies them to
 * out; returns how many (again while == cap). The daemon answers Error{EF_EDEADLINE} and frees
 * the payloads. In-flight requests are not touched. */
size_t scheduler_expire(scheduler_t *self, uint64_t now_ms, sched_request *out, size_t cap);

/* Removes the queued requests of every model that no live, non-draining agent has served since
 * orphan_grace_ms ago, and copies them to out; returns how many (again while == cap). Without
 * this a request with no deadline would wait forever for a model whose boards are all gone.
 * The grace starts at the first call that finds the model without a candidate, so call it
 * periodically (the liveness sweep's tick). The daemon answers Error{EF_EUNKNOWNMODEL}. */
size_t scheduler_orphaned(scheduler_t *self, uint64_t now_ms, sched_request *out, size_t cap);

/* Earliest deadline among queued requests, 0 when none: when to call scheduler_expire next. */
uint64_t scheduler_next_deadline_ms(const scheduler_t *self);

/* The in-flight request ended on its agent (Done or Error): returns its credit, removes it and
 * copies the record to *out (may be NULL). served = it produced a result (Done), counted in the
 * agent's served. Returns 0, EF_ENOENT unknown ticket, EF_EINVAL the request is queued. */
int scheduler_complete(scheduler_t *self, uint64_t ticket, bool served, sched_request *out);

/* Puts an in-flight request back in its queue (the agent answered EF_EBUSY, the send failed, or
 * a later issue resumes it elsewhere): returns its credit; keeps deadline, payload,
 * tokens_streamed and its claim (ahead of what its client sent later; its client gets the next
 * turn when it had nothing else waiting); ignores the queue bound and the client cap (it was
 * admitted already and still counts for its client). Its session forgets the agent. Returns 0,
 * EF_ENOENT, EF_EINVAL (already queued), EF_ENOMEM (still in flight). Call scheduler_dispatch
 * after. */
int scheduler_requeue(scheduler_t *self, uint64_t ticket, uint64_t now_ms);

/* Client cancel. A queued request is removed and copied to *out (returns 0, out->state ==
 * SCHED_QUEUED). An in-flight one is NOT removed: out gets a copy with state SCHED_INFLIGHT; the
 * daemon sends Cancel to out->agent and calls scheduler_complete on its Done. EF_ENOENT when
 * unknown. out may be NULL. */
int scheduler_cancel(scheduler_t *self, uint64_t ticket, sched_request *out);

/* The agent died, was replaced or removed (its registry entry is already gone): removes the
 * requests in flight on it and copies them to out; returns how many (again while == cap). The
 * daemon fails them (Error{EF_EAGENTLOST}) or resubmits them. Sessions on it forget it. */
size_t scheduler_agent_gone(scheduler_t *self, agent_id_t agent, sched_request *out, size_t cap);

/* Writes the tickets of up to cap requests in flight on agent (in no particular order) and
 * returns how many; changes nothing. With scheduler_requeue this moves a lost agent's requests
 * back into their queues (to resume them elsewhere) before scheduler_agent_gone ends the rest. */
size_t scheduler_inflight_on(const scheduler_t *self, agent_id_t agent, uint64_t *tickets,
                             size_t cap);

/* Removes every request, queued and in flight, for shutdown; returns how many were written (again
 * while == cap). In-flight ones give their credits back. */
size_t scheduler_flush(scheduler_t *self, sched_request *out, size_t cap);

/* Lookups. The pointer is valid until the next call that adds or removes a request. The daemon
 * may change tokens_streamed, seed and payload through it, nothing else. NULL when unknown. */
sched_request *scheduler_get(scheduler_t *self, uint64_t ticket);
sched_request *scheduler_find(scheduler_t *self, const uint8_t *request_id);

/* Plans how a batch of n prompts for model splits across agents, in proportion to capacity
 * (free slots x speed; total slots x speed when nothing is free), largest remainder so counts
 * sum to n. Writes up to cap (agent, count) pairs, agents with count 0 left out; *n_agents_out is
 * how many. Changes nothing: the items still enter through scheduler_submit. When cap is smaller
 * than the number of candidates, only the cap largest capacities share the batch. Returns 0,
 * EF_EUNKNOWNMODEL no live non-draining agent serves the model, EF_EINVAL bad argument. */
int scheduler_plan_split(scheduler_t *self, const char *model, uint32_t n, uint64_t now_ms,
                         agent_id_t *agents_out, uint32_t *counts_out, size_t cap,
                         size_t *n_agents_out);

/* Change params.queue_unknown_models (the daemon queues unknown models while its fleet is
 * still reconnecting after a start, then refuses them). */
void scheduler_set_queue_unknown_models(scheduler_t *self, bool queue);

/* Suggested retry delay for a client refused with EF_EBUSY: the time the fleet needs to work
 * off the model's queue (queued tokens over the sum of total_slots x speed of the candidates).
 * Always in [100, 600000] ms. */
uint32_t scheduler_retry_after_ms(scheduler_t *self, const char *model, uint64_t now_ms);

/* Counts, for status and telemetry. */
uint32_t scheduler_queued(const scheduler_t *self, const char *model); /* 0 for unknown model */
uint32_t scheduler_inflight(const scheduler_t *self);                  /* all models */
uint32_t scheduler_queue_capacity(const scheduler_t *self);            /* per model bound */
/* What the client cap counts for client (NULL or "" = anonymous): its requests queued, in
 * flight, or expired and not yet taken by scheduler_expire, over all models. 0 when unknown. */
uint32_t scheduler_client_count(const scheduler_t *self, const char *client);
uint32_t scheduler_client_cap(const scheduler_t *self); /* max_per_client; 0 = no cap */
size_t scheduler_clients(const scheduler_t *self);      /* clients with any request */

/* Queue iteration for FleetStatus.queues: i in [0, scheduler_queue_count). Returns the model name
 * (valid for the scheduler's life) and writes its queued count; NULL when i is out of range. */
size_t scheduler_queue_count(const scheduler_t *self);
const char *scheduler_queue_at(const scheduler_t *self, size_t i, uint32_t *queued);

/* The agent a session is bound to (AGENT_ID_NONE when none or expired). For tests and status. */
agent_id_t scheduler_session_agent(const scheduler_t *self, const char *session_id,
                                   uint64_t now_ms);

/* Recounts everything the scheduler keeps incrementally (client counts and tokens, queue
 * lengths and token sums, flows and their rings, the in-flight and expired lists, the hashes)
 * from the records, brute force, O(everything). 0 when the books agree, else EF_EINTERNAL. For
 * tests and debugging; never on the daemon's hot path. */
int scheduler_check(const scheduler_t *self);

#endif
