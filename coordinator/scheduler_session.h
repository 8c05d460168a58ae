/* Session affinity memory of the scheduler: session id -> the agent that served it last, so the
 * next turn finds its KV cache there. Bounded: the least recently used entry makes room, and an
 * entry unused for ttl_ms counts as absent. Private to scheduler.c; loop thread only. */
#ifndef EF_COORD_SCHEDULER_SESSION_H
#define EF_COORD_SCHEDULER_SESSION_H

#include "scheduler.h"

#include <stdint.h>

typedef struct session_map session_map;

/* cap entries (> 0), forgotten after ttl_ms unused; buckets hashed with SipHash under key
 * (SCHED_HASH_KEY_LEN bytes, copied). NULL on allocation failure. */
session_map *session_map_new(uint32_t cap, uint32_t ttl_ms, const uint8_t *key);
void session_map_destroy(session_map **self_p);

/* The agent bound to session_id, AGENT_ID_NONE when none or expired. Does not refresh it. */
agent_id_t session_map_get(const session_map *self, const char *session_id, uint64_t now_ms);

/* Binds session_id (non-empty, < SCHED_SESSION_MAX) to agent and marks it used now, evicting
 * the least recently used entry when full. */
void session_map_put(session_map *self, const char *session_id, agent_id_t agent, uint64_t now_ms);

/* Forgets one session, or every session bound to agent. */
void session_map_forget(session_map *self, const char *session_id);
void session_map_forget_agent(session_map *self, agent_id_t agent);

/* The longest hash chain: what one lookup may have to walk. For tests of the keyed hash. */
uint32_t session_map_longest_chain(const session_map *self);

#endif
