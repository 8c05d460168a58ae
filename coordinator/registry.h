/* The coordinator's agent table: who is registered under which key and ZeroMQ routing id, which
 * models each agent serves with how many slots, what its last heartbeat said, and who has gone
 * silent. Pure logic: no sockets, no clock reads ("now_ms" is an argument, any monotonic ms
 * clock, the same one for every call). Not thread-safe: the coordinator's loop thread owns it.
 * The scheduler (scheduler.h) reads it and keeps the per agent+model in-flight counts in it. */
#ifndef EF_COORD_REGISTRY_H
#define EF_COORD_REGISTRY_H

#include "errors.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes include the terminating NUL. Longer strings from the wire are refused (EF_EINVAL), never
 * truncated, so two agents can't collide on a shared prefix. */
#define REGISTRY_NAME_MAX       65   /* agent name: a key name, [A-Za-z0-9._-]{1,64} */
#define REGISTRY_KEY_MAX        128  /* ZAP User-Id, e.g. "agents/board-7" */
#define REGISTRY_HOST_MAX       128  /* hostname */
#define REGISTRY_MODEL_NAME_MAX 128  /* model name requests use */
#define REGISTRY_MODELS_MAX     16   /* models one agent may serve */
#define REGISTRY_ROUTING_ID_MAX 255  /* ZeroMQ's own limit for a routing id */
#define REGISTRY_BOOT_ID_LEN    16   /* Register.boot_id: one agent process */
#define REGISTRY_SHA256_LEN     32   /* ModelInfo.sha256 */
#define REGISTRY_SLOTS_MAX      1024 /* slots one model may declare: beyond, a board is lying */

/* Identifies one registration. Assigned by the registry, never reused during its life, never 0:
 * an id kept by a request whose agent re-registered or died simply finds nothing. */
typedef uint32_t agent_id_t;
#define AGENT_ID_NONE ((agent_id_t)0)

typedef struct registry registry_t;

typedef struct {
    uint32_t max_agents;            /* table size; 0 = 1024. Register fails with EF_EBUSY beyond */
    uint32_t heartbeat_interval_ms; /* assumed for agents that declare none; 0 = 1000 */
    uint32_t liveness; /* silent intervals before an agent is dead; 0 = 3 (PROTOCOL.md) */
} registry_params;

/* One model as declared in Register. */
typedef struct {
    const char *name;      /* non-empty, < REGISTRY_MODEL_NAME_MAX */
    uint32_t n_slots;      /* parallel sequences; 0 is allowed (the model takes no work) */
    const uint8_t *sha256; /* REGISTRY_SHA256_LEN bytes of the model file, or NULL = unknown */
} registry_model_decl;

/* A Register message, already decoded. Strings are copied; the caller keeps ownership. */
typedef struct {
    const char *name;       /* agent name, non-empty (the daemon uses the key's name) */
    const char *key_id;     /* ZAP User-Id of the connection: who the agent is */
    const uint8_t *boot_id; /* REGISTRY_BOOT_ID_LEN bytes, or NULL: which process of that key */
    const char *hostname;   /* NULL = "" */
    const uint8_t *routing_id;
    size_t routing_id_len; /* 1..REGISTRY_ROUTING_ID_MAX */
    const registry_model_decl *models;
    size_t n_models;                /* 0..REGISTRY_MODELS_MAX */
    uint32_t heartbeat_interval_ms; /* the agent's own interval; 0 = registry default */
    bool simulated;                 /* simulated backend: never a real board */
} registry_registration;

/* One ModelLoad from a heartbeat. */
typedef struct {
    const char *model;
    uint32_t busy_slots;
    uint32_t total_slots;
} registry_model_load;

/* A Heartbeat message from an agent, already decoded. */
typedef struct {
    const registry_model_load *models; /* models not declared at register are ignored */
    size_t n_models;
    double gen_tps;    /* tokens/s ONE request sees on this agent (per slot); 0 = not measured */
    double prompt_tps; /* the agent's prompt tokens/s, all slots (shown in status only); 0 = not
                          measured */
    bool draining;     /* the agent says it is draining */
} registry_load;

/* Read-only view of one model on an agent. */
typedef struct {
    char name[REGISTRY_MODEL_NAME_MAX];
    uint32_t n_slots;     /* declared at register */
    uint32_t total_slots; /* from the last heartbeat; n_slots until the first one */
    uint32_t busy_slots;  /* from the last heartbeat, as the agent saw it then */
    uint32_t inflight;    /* requests the coordinator dispatched here that have not ended */
    uint8_t sha256[REGISTRY_SHA256_LEN]; /* of its file; all zero = unknown */
} registry_model;

/* Read-only view of one agent. Pointers to it stay valid until the next call that adds or
 * removes an agent (registry_register, registry_sweep, registry_remove, registry_destroy). */
typedef struct {
    agent_id_t id;
    char name[REGISTRY_NAME_MAX];
    char key_id[REGISTRY_KEY_MAX];
    char hostname[REGISTRY_HOST_MAX];
    uint8_t boot_id[REGISTRY_BOOT_ID_LEN]; /* all zero when none was given */
    uint8_t routing_id[REGISTRY_ROUTING_ID_MAX];
    size_t routing_id_len;
    bool simulated;
    bool drain_reported;            /* last heartbeat said draining */
    bool drain_ordered;             /* the coordinator ordered a drain (registry_set_drain) */
    uint32_t heartbeat_interval_ms; /* effective interval used for liveness */
    uint64_t registered_ms;
    uint64_t last_seen_ms; /* any message counts as life */
    uint64_t heartbeat_ms; /* last heartbeat applied (registry_heartbeat) */
    double gen_tps;        /* per-slot tokens/s from the last heartbeat; 0 = not measured */
    double prompt_tps;
    uint64_t served; /* requests that ended here (registry_credit_return with served) */
    size_t n_models;
    registry_model models[REGISTRY_MODELS_MAX];
} registry_agent;

/* Defaults as documented per field. */
registry_params registry_default_params(void);

/* New empty registry; p NULL = defaults. Returns NULL on allocation failure. */
registry_t *registry_new(const registry_params *p);

/* Frees the registry and sets *self_p = NULL. NULL or *self_p NULL is a no-op. */
void registry_destroy(registry_t **self_p);

/* Adds an agent from its Register. Returns 0 and *id_out (new id). An entry is an agent's key
 * (key_id) and name. An existing entry of the same key is replaced when it is the same process
 * (same boot id: it reconnected) or no longer live; an existing entry of the same name and
 * another key is replaced when it is no longer live. The same process (same non-zero boot id)
 * on a new link keeps its entry: *id_out is its old id, with the new routing id, and what runs
 * on it goes on (it re-sends what it streamed meanwhile). The replaced entry is removed and its id
 * written to *replaced_out (else AGENT_ID_NONE) - the caller must then call
 * scheduler_agent_gone(replaced) to fail (or move) the requests the old entry had.
 * A model name means one file across the fleet, so a stream can resume on any agent serving
 * it: a Register whose model has another sha256 than a live agent's model of that name is
 * refused with EF_EMODEL (unknown hashes are not compared).
 * Errors (no change made): EF_EINVAL bad or oversize field (reason says which);
 * EF_EDUPLICATE a live agent holds that key under another boot id (a second board with a copy
 * of the key) or that name under another key (reason names both and is the line to put in
 * Registered.reason); EF_EBUSY the table is full. reason may be NULL. */
int registry_register(registry_t *self, const registry_registration *reg, uint64_t now_ms,
                      agent_id_t *id_out, agent_id_t *replaced_out, ef_errmsg *reason);

/* Applies a Heartbeat: slots per model (never more than were declared at register: a board
 * cannot talk itself into more work than it said it could take), speeds, drain flag; counts as
 * life.
 * Returns 0, EF_ENOENT unknown id (the agent should re-register), EF_EINVAL bad argument.
 * The caller should call scheduler_dispatch afterwards: slots may have appeared. */
int registry_heartbeat(registry_t *self, agent_id_t id, const registry_load *load, uint64_t now_ms);

/* Any other message from the agent: counts as life. Returns 0 or EF_ENOENT. */
int registry_touch(registry_t *self, agent_id_t id, uint64_t now_ms);

/* Operator drain (enable) or undrain. Takes effect for the scheduler at once, without waiting
 * for the agent's heartbeat to echo it. Returns 0 or EF_ENOENT. After an undrain, call
 * scheduler_dispatch. */
int registry_set_drain(registry_t *self, agent_id_t id, bool enable);

/* Removes up to cap agents silent for liveness intervals or more (now - last_seen >=
 * liveness * interval), writing their ids to dead_out. Returns how many were removed; when it
 * returns cap, call again. For each id the caller calls scheduler_agent_gone. */
size_t registry_sweep(registry_t *self, uint64_t now_ms, agent_id_t *dead_out, size_t cap);

/* Removes one agent (e.g. the daemon dropped its link). Returns 0 or EF_ENOENT. The caller then
 * calls scheduler_agent_gone(id). */
int registry_remove(registry_t *self, agent_id_t id);

/* Lookups. Return NULL / AGENT_ID_NONE when not found. */
const registry_agent *registry_get(const registry_t *self, agent_id_t id);
const registry_agent *registry_get_routing_id(const registry_t *self, const uint8_t *routing_id,
                                              size_t len);
agent_id_t registry_find_routing_id(const registry_t *self, const uint8_t *routing_id, size_t len);
agent_id_t registry_find_name(const registry_t *self, const char *name);
agent_id_t registry_find_key(const registry_t *self, const char *key_id);

/* Iteration for status reports: i in [0, registry_count). Order is unspecified, except that
 * removing the agent at i moves the last one into i (and leaves the others where they are), so a
 * loop that removes as it goes looks at i again. */
size_t registry_count(const registry_t *self);
const registry_agent *registry_at(const registry_t *self, size_t i);

/* True when the agent has been heard from within liveness intervals. A dead agent stays in the
 * table until registry_sweep, but gets no work meanwhile. */
bool registry_agent_live(const registry_t *self, const registry_agent *agent, uint64_t now_ms);

/* True when the agent must get no new work (ordered or reported drain). */
bool registry_agent_draining(const registry_agent *agent);

/* Index of model in agent->models, or -1. */
int registry_model_index(const registry_agent *agent, const char *model);

/* Credits of agent for model index mi: total_slots - inflight, 0 when none. */
uint32_t registry_free_slots(const registry_agent *agent, size_t mi);

/* Per-slot load of (agent, model index mi) with one more request, in capacity units: the
 * agent whose share of work is furthest below its share of capacity has the lowest.
 * (inflight + 1) / (total_slots * gen_tps), with ((inflight + 1) / total_slots) / fallback_tps
 * for an agent that has not measured its speed (gen_tps 0), so registry_pick's order and this
 * agree to the bit. */
double registry_load_score(const registry_agent *agent, size_t mi, double fallback_tps);

typedef struct {
    agent_id_t agent; /* AGENT_ID_NONE when nothing can take the model now */
    int mi;           /* model index on it */
    double score;     /* its registry_load_score */
} registry_pick_result;

/* The best agent for one more request of model: among live, non-draining agents serving it
 * with a free slot, the lowest registry_load_score (ties to the lower id). Returns true and
 * fills *out, or false (out->agent = AGENT_ID_NONE). O(log agents): a per-model heap kept up
 * to date by every call below that changes slots, speed, drain or credits. An agent found
 * silent is parked out of the heaps until its next message, so it costs one look, once. */
bool registry_pick(registry_t *self, const char *model, uint64_t now_ms, double fallback_tps,
                   registry_pick_result *out);

/* True when some agent in the table (live or not) declares model. O(1). */
bool registry_model_declared(const registry_t *self, const char *model);

/* The agents declaring one model, without walking the table: begin, then next until NULL.
 * next writes the model's index on the agent to *mi. Valid until the registry changes. */
typedef struct {
    const registry_t *registry;
    uint32_t model, k;
} registry_model_iter;
void registry_model_iter_begin(const registry_t *self, const char *model, registry_model_iter *it);
const registry_agent *registry_model_iter_next(registry_model_iter *it, int *mi);

/* Median of the measured gen_tps (> 0) over the table; 0 when no agent has measured one. Cached,
 * recomputed after heartbeats change speeds. */
double registry_median_gen_tps(registry_t *self);

/* The same, recomputed at most once per REGISTRY_MEDIAN_REFRESH_MS of now_ms while speeds keep
 * changing: with thousands of boards each reporting a new speed every heartbeat, an exact
 * median would be a sort of the fleet on every pick; a median a second old weighs a board that
 * has not measured its speed just as well. */
#define REGISTRY_MEDIAN_REFRESH_MS 1000u
double registry_median_gen_tps_at(registry_t *self, uint64_t now_ms);

/* Liveness window (ms) in use for an agent: liveness * its heartbeat interval. */
uint64_t registry_liveness_window_ms(const registry_t *self, const registry_agent *agent);

/* ---- credits: called by the scheduler only, never by the daemon ------------------------- */

/* One more request in flight on (id, model index mi). Returns 0, EF_ENOENT, EF_EINVAL. */
int registry_credit_take(registry_t *self, agent_id_t id, size_t mi);

/* One request ended on (id, mi); served counts it as completed work. Returns 0 or EF_ENOENT
 * (the agent is gone: nothing to return). */
int registry_credit_return(registry_t *self, agent_id_t id, size_t mi, bool served);

#endif
