/* The registry's per-model index: for each model name, the agents that declare it and two
 * binary heaps of those that can take a request now (not draining, a free slot, not parked as
 * silent), ordered by load so the scheduler's pick costs O(log agents) instead of a walk over
 * the fleet. Heap keys:
 *   measured (gen_tps > 0):   (inflight + 1) / (total_slots * gen_tps)   = the load score;
 *   unmeasured (gen_tps = 0): (inflight + 1) / total_slots, the score once divided by the one
 *                             fallback speed they all share (the fleet median or a default),
 *                             so a change of that speed reorders nothing.
 * Ties go to the lower agent id. Liveness is time-driven, so it is not in the keys: the pick
 * parks a silent agent it finds on top (out of every heap) until it is heard from again.
 * Positions are the registry's agent array positions; the registry tells the index when an
 * agent moves. Memory for an agent's entries is reserved before it is added, so adding and
 * updating never fail. Pure logic, loop thread only; only registry.c includes this. */
#ifndef EF_COORD_REGISTRY_MODELS_H
#define EF_COORD_REGISTRY_MODELS_H

#include "registry.h"
#include "registry_index.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define RM_NONE UINT32_MAX

enum { RM_MEASURED = 0, RM_UNMEASURED = 1 };

typedef struct {
    double key;
    agent_id_t id;
    uint32_t pos; /* agent array position */
    uint32_t mi;  /* model index on that agent */
} rm_entry;

typedef struct {
    rm_entry *v;
    uint32_t len, cap;
} rm_heap;

typedef struct {
    uint32_t pos, mi;
} rm_member;

typedef struct {
    char name[REGISTRY_MODEL_NAME_MAX]; /* "" while the entry is free */
    uint32_t hash;
    rm_member *members; /* every agent declaring the model, in no order */
    uint32_t n_members, cap;
    rm_heap heap[2]; /* RM_MEASURED, RM_UNMEASURED; each has room for every member */
    /* A summary of the members' file hashes, so a Register need not compare with every board:
     * sha_same members have `sha`, sha_other have another known hash (unknown ones neither). */
    uint8_t sha[REGISTRY_SHA256_LEN];
    uint32_t sha_same, sha_other;
    uint32_t next_free;
} rm_model;

/* Per agent array position, beside the registry's agents. */
typedef struct {
    uint32_t model[REGISTRY_MODELS_MAX];     /* entry in the model table */
    uint32_t member_at[REGISTRY_MODELS_MAX]; /* position in that entry's members */
    uint32_t heap_at[REGISTRY_MODELS_MAX];   /* position in heap[heap_of]; RM_NONE = in none */
    uint8_t heap_of[REGISTRY_MODELS_MAX];
    bool parked; /* found silent by a pick: in no heap until heard from again */
} rm_agent;

typedef struct {
    rm_model *models; /* [0, n) ever used; free ones chained from free_head */
    size_t cap;
    uint32_t n, free_head;
    registry_index by_name;
} rm_table;

/* An empty table (zeroed memory is not one: the free list needs its end mark). */
void rm_table_init(rm_table *t);
void rm_table_free(rm_table *t);
/* A sha256 of all zeros means "not given". */
static inline bool rm_sha_known(const uint8_t *sha)
{
    static const uint8_t zero[REGISTRY_SHA256_LEN];
    return memcmp(sha, zero, REGISTRY_SHA256_LEN) != 0;
}
/* The entry for model (hash = its keyed hash), RM_NONE when no agent declares it. */
uint32_t rm_find(const rm_table *t, const char *model, uint32_t hash);
/* Makes sure adding agent a (not yet added) cannot fail: an entry for each of its models, each
 * with room for one more member, written to entries[i] for a->models[i]. hashes[i] is the keyed
 * hash of a->models[i].name. 0 or -1 (out of memory; entries this call created are gone again).
 */
int rm_reserve(rm_table *t, const registry_agent *a, const uint32_t *hashes, uint32_t *entries);
/* Files the agent at pos under each of its models, in the entries rm_reserve gave. */
void rm_add(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos,
            const uint32_t *entries);
/* Takes the agent at pos out of every entry. An entry left without members is freed, unless
 * keep_empty: then the caller calls rm_drop_if_empty for each of them once it has added what
 * it reserved (a replacement may need the very entry its predecessor leaves). */
void rm_remove(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos,
               bool keep_empty);
void rm_drop_if_empty(rm_table *t, uint32_t m);
/* An agent moved to position `to` (agents[to] and ra[to] are already its). */
void rm_move(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t to);
/* Re-files the agent at pos in the heaps after its load, speed, slots, drain or parking changed;
 * rm_update_one for one of its models only (a credit taken or returned). */
void rm_update(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos);
void rm_update_one(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos,
                   uint32_t mi);
/* Takes the agent at pos out of every heap until rm_unpark. */
void rm_park(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos);
void rm_unpark(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos);
/* The top of one heap of entry m, NULL when empty. */
const rm_entry *rm_top(const rm_table *t, uint32_t m, int which);

#endif
