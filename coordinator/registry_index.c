/* Implementation of registry_index.h. */
#include "registry_index.h"

#include <sodium.h>

#include <stdlib.h>
#include <string.h>

_Static_assert(REGISTRY_INDEX_KEY_LEN == crypto_shorthash_KEYBYTES, "SipHash key length");

uint32_t registry_index_hash_bytes(const uint8_t key[REGISTRY_INDEX_KEY_LEN], const void *bytes,
                                   size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, bytes, len, key);
    uint32_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

uint32_t registry_index_hash_id(uint32_t id)
{
    uint32_t h = id * 0x9e3779b1u; /* Fibonacci hashing: consecutive ids spread */
    return h ^ (h >> 16);
}

void registry_index_free(registry_index *x)
{
    free(x->slots);
    memset(x, 0, sizeof *x);
}

static size_t find_pos(const registry_index *x, uint32_t hash, uint32_t pos)
{
    size_t b = registry_index_first(x, hash);
    while (x->slots[b].pos1 != pos + 1)
        b = (b + 1) & x->mask;
    return b;
}

int registry_index_reserve(registry_index *x, size_t n)
{
    size_t want = 16;
    while (want < 2 * n)
        want *= 2;
    if (x->mask + 1 >= want && x->slots)
        return 0;
    registry_index_slot *slots = calloc(want, sizeof *slots);
    if (!slots)
        return -1;
    registry_index old = *x;
    x->slots = slots;
    x->mask = want - 1;
    x->n = 0;
    for (size_t i = 0; old.slots && i <= old.mask; i++)
        if (old.slots[i].pos1)
            registry_index_insert(x, old.slots[i].hash, old.slots[i].pos1 - 1);
    free(old.slots);
    return 0;
}

void registry_index_insert(registry_index *x, uint32_t hash, uint32_t pos)
{
    size_t b = registry_index_first(x, hash);
    while (x->slots[b].pos1)
        b = (b + 1) & x->mask;
    x->slots[b] = (registry_index_slot){pos + 1, hash};
    x->n++;
}

void registry_index_erase(registry_index *x, uint32_t hash, uint32_t pos)
{
    size_t hole = find_pos(x, hash, pos);
    x->slots[hole].pos1 = 0;
    x->n--;
    /* Backward shift: an entry after the hole whose home is not between the hole and it moves
     * into the hole, so every probe sequence stays unbroken without tombstones. */
    for (size_t b = (hole + 1) & x->mask; x->slots[b].pos1; b = (b + 1) & x->mask) {
        size_t home = registry_index_first(x, x->slots[b].hash);
        size_t dist_b = (b - home) & x->mask, dist_hole = (hole - home) & x->mask;
        if (dist_hole < dist_b) {
            x->slots[hole] = x->slots[b];
            x->slots[b].pos1 = 0;
            hole = b;
        }
    }
}

void registry_index_move(registry_index *x, uint32_t hash, uint32_t from, uint32_t to)
{
    x->slots[find_pos(x, hash, from)].pos1 = to + 1;
}
