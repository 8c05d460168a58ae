/* The registry's lookup tables: open-addressing hash tables (linear probing, backward-shift
 * deletion, load <= 1/2) from a key's 32-bit hash to a position in the registry's agent array.
 * The table stores positions and hashes only; the registry compares the agent at a position
 * with the key it looks for, so one type serves ids, routing ids, keys and names. Keys chosen
 * by peers are hashed with SipHash and a secret key (registry_index_hash_bytes), so nobody can
 * aim for one chain. Pure logic, loop thread only. */
#ifndef EF_COORD_REGISTRY_INDEX_H
#define EF_COORD_REGISTRY_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t pos1; /* position + 1; 0 = empty */
    uint32_t hash;
} registry_index_slot;

typedef struct {
    registry_index_slot *slots;
    size_t mask; /* slots - 1 (a power of two), 0 when none are allocated */
    size_t n;
} registry_index;

#define REGISTRY_INDEX_KEY_LEN 16 /* SipHash-2-4 key */

/* Keyed hash of bytes (routing ids, key ids, names). */
uint32_t registry_index_hash_bytes(const uint8_t key[REGISTRY_INDEX_KEY_LEN], const void *bytes,
                                   size_t len);
/* Hash of one of our own agent ids (not chosen by a peer). */
uint32_t registry_index_hash_id(uint32_t id);

void registry_index_free(registry_index *x);
/* Room for n entries at load <= 1/2. Returns 0 or -1 (out of memory: the table is unchanged). */
int registry_index_reserve(registry_index *x, size_t n);
/* Adds (hash, pos); the caller reserved room first. */
void registry_index_insert(registry_index *x, uint32_t hash, uint32_t pos);
/* Removes the entry for pos (filed under hash). */
void registry_index_erase(registry_index *x, uint32_t hash, uint32_t pos);
/* The entry for pos `from` (under hash) now means pos `to` (the array moved an agent). */
void registry_index_move(registry_index *x, uint32_t hash, uint32_t from, uint32_t to);

/* Lookup: for (size_t b = registry_index_first(x, h); x->mask && x->slots[b].pos1;
 *              b = (b + 1) & x->mask) if (x->slots[b].hash == h && matches(x->slots[b].pos1 - 1))
 * ... */
static inline size_t registry_index_first(const registry_index *x, uint32_t hash)
{
    return (size_t)hash & x->mask;
}

#endif
