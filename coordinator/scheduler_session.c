/* Session affinity map (see scheduler_session.h): a fixed array of entries, chained hash buckets
 * (keyed SipHash) for lookup and a doubly linked list in use order for LRU eviction, all by index
 * (no per-entry allocation). */
#include "scheduler_session.h"

#include "scheduler_internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char session_id[SCHED_SESSION_MAX]; /* "" = free entry */
    agent_id_t agent;
    uint64_t used_ms;
    int32_t hnext;        /* bucket chain, or free list when unused */
    int32_t newer, older; /* use order */
} session_entry;

struct session_map {
    session_entry *entries;
    uint32_t cap;
    uint32_t ttl_ms;
    int32_t *buckets; /* nbuckets, a power of two */
    uint32_t nbuckets;
    int32_t free_head;
    int32_t newest, oldest;
    uint8_t key[SCHED_HASH_KEY_LEN];
};

/* Session ids are client-chosen: unkeyed, a client could choose thousands that share a bucket
 * and make every lookup (each dispatch of a session request) walk them all. */
static int32_t *bucket_of(const session_map *self, const char *sid)
{
    return &self->buckets[sched_hash(self->key, sid, strlen(sid)) & (self->nbuckets - 1)];
}

session_map *session_map_new(uint32_t cap, uint32_t ttl_ms, const uint8_t *key)
{
    session_map *self = calloc(1, sizeof(*self));
    if (!self || cap == 0)
        goto fail;
    memcpy(self->key, key, SCHED_HASH_KEY_LEN);
    self->cap = cap;
    self->ttl_ms = ttl_ms;
    self->nbuckets = 16;
    while (self->nbuckets < cap)
        self->nbuckets *= 2;
    self->entries = calloc(cap, sizeof(*self->entries));
    self->buckets = malloc(self->nbuckets * sizeof(*self->buckets));
    if (!self->entries || !self->buckets)
        goto fail;
    for (uint32_t i = 0; i < self->nbuckets; i++)
        self->buckets[i] = NIL;
    for (uint32_t i = 0; i < cap; i++)
        self->entries[i].hnext = i + 1 < cap ? (int32_t)(i + 1) : NIL;
    self->free_head = 0;
    self->newest = self->oldest = NIL;
    return self;
fail:
    session_map_destroy(&self);
    return NULL;
}

void session_map_destroy(session_map **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->entries);
    free((*self_p)->buckets);
    sodium_memzero((*self_p)->key, sizeof((*self_p)->key));
    free(*self_p);
    *self_p = NULL;
}

static int32_t lookup(const session_map *self, const char *sid)
{
    int32_t i = *bucket_of(self, sid);
    while (i != NIL && strcmp(self->entries[i].session_id, sid) != 0)
        i = self->entries[i].hnext;
    return i;
}

static void lru_unlink(session_map *self, int32_t i)
{
    session_entry *e = &self->entries[i];
    if (e->newer != NIL)
        self->entries[e->newer].older = e->older;
    else
        self->newest = e->older;
    if (e->older != NIL)
        self->entries[e->older].newer = e->newer;
    else
        self->oldest = e->newer;
}

static void lru_push_newest(session_map *self, int32_t i)
{
    session_entry *e = &self->entries[i];
    e->newer = NIL;
    e->older = self->newest;
    if (self->newest != NIL)
        self->entries[self->newest].newer = i;
    self->newest = i;
    if (self->oldest == NIL)
        self->oldest = i;
}

static void remove_entry(session_map *self, int32_t i)
{
    session_entry *e = &self->entries[i];
    int32_t *link = bucket_of(self, e->session_id);
    while (*link != i)
        link = &self->entries[*link].hnext;
    *link = e->hnext;
    lru_unlink(self, i);
    e->session_id[0] = '\0';
    e->hnext = self->free_head;
    self->free_head = i;
}

agent_id_t session_map_get(const session_map *self, const char *session_id, uint64_t now_ms)
{
    if (!session_id || !*session_id)
        return AGENT_ID_NONE;
    int32_t i = lookup(self, session_id);
    if (i == NIL)
        return AGENT_ID_NONE;
    const session_entry *e = &self->entries[i];
    if (now_ms > e->used_ms && now_ms - e->used_ms >= self->ttl_ms)
        return AGENT_ID_NONE;
    return e->agent;
}

void session_map_put(session_map *self, const char *session_id, agent_id_t agent, uint64_t now_ms)
{
    if (!session_id || !*session_id || strlen(session_id) >= SCHED_SESSION_MAX)
        return;
    int32_t i = lookup(self, session_id);
    if (i != NIL) {
        lru_unlink(self, i);
    } else {
        if (self->free_head == NIL)
            remove_entry(self, self->oldest);
        i = self->free_head;
        session_entry *e = &self->entries[i];
        self->free_head = e->hnext;
        strcpy(e->session_id, session_id);
        int32_t *bucket = bucket_of(self, session_id);
        e->hnext = *bucket;
        *bucket = i;
    }
    self->entries[i].agent = agent;
    self->entries[i].used_ms = now_ms;
    lru_push_newest(self, i);
}

void session_map_forget(session_map *self, const char *session_id)
{
    if (!session_id || !*session_id)
        return;
    int32_t i = lookup(self, session_id);
    if (i != NIL)
        remove_entry(self, i);
}

void session_map_forget_agent(session_map *self, agent_id_t agent)
{
    for (int32_t i = self->oldest; i != NIL;) {
        int32_t newer = self->entries[i].newer;
        if (self->entries[i].agent == agent)
            remove_entry(self, i);
        i = newer;
    }
}

uint32_t session_map_longest_chain(const session_map *self)
{
    uint32_t longest = 0;
    for (uint32_t b = 0; b < self->nbuckets; b++) {
        uint32_t n = 0;
        for (int32_t i = self->buckets[b]; i != NIL; i = self->entries[i].hnext)
            n++;
        longest = n > longest ? n : longest;
    }
    return longest;
}
