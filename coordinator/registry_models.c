/* Implementation of registry_models.h. */
#include "registry_models.h"

#include "grow.h"

#include <stdlib.h>
#include <string.h>

void rm_table_init(rm_table *t)
{
    memset(t, 0, sizeof *t);
    t->free_head = RM_NONE;
}

void rm_table_free(rm_table *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        free(t->models[i].members);
        free(t->models[i].heap[0].v);
        free(t->models[i].heap[1].v);
    }
    free(t->models);
    registry_index_free(&t->by_name);
    memset(t, 0, sizeof *t);
}

uint32_t rm_find(const rm_table *t, const char *model, uint32_t hash)
{
    const registry_index *x = &t->by_name;
    for (size_t b = registry_index_first(x, hash); x->mask && x->slots[b].pos1;
         b = (b + 1) & x->mask)
        if (x->slots[b].hash == hash && strcmp(t->models[x->slots[b].pos1 - 1].name, model) == 0)
            return x->slots[b].pos1 - 1;
    return RM_NONE;
}

/* ---- heaps ------------------------------------------------------------------------------- */

static bool less(const rm_entry *a, const rm_entry *b)
{
    return a->key < b->key || (a->key == b->key && a->id < b->id);
}

static void heap_set(rm_heap *h, rm_agent *ra, uint32_t i, rm_entry e, int which)
{
    h->v[i] = e;
    ra[e.pos].heap_at[e.mi] = i;
    ra[e.pos].heap_of[e.mi] = (uint8_t)which;
}

static void sift_up(rm_heap *h, rm_agent *ra, uint32_t i, int which)
{
    rm_entry e = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!less(&e, &h->v[parent]))
            break;
        heap_set(h, ra, i, h->v[parent], which);
        i = parent;
    }
    heap_set(h, ra, i, e, which);
}

static void sift_down(rm_heap *h, rm_agent *ra, uint32_t i, int which)
{
    rm_entry e = h->v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && less(&h->v[c + 1], &h->v[c]))
            c++;
        if (!less(&h->v[c], &e))
            break;
        heap_set(h, ra, i, h->v[c], which);
        i = c;
    }
    heap_set(h, ra, i, e, which);
}

static void heap_remove(rm_heap *h, rm_agent *ra, uint32_t i, int which)
{
    rm_entry gone = h->v[i];
    ra[gone.pos].heap_at[gone.mi] = RM_NONE;
    if (--h->len == i)
        return;
    h->v[i] = h->v[h->len];
    if (i > 0 && less(&h->v[i], &h->v[(i - 1) / 2]))
        sift_up(h, ra, i, which);
    else
        sift_down(h, ra, i, which);
}

const rm_entry *rm_top(const rm_table *t, uint32_t m, int which)
{
    const rm_heap *h = &t->models[m].heap[which];
    return h->len ? &h->v[0] : NULL;
}

/* ---- entries ----------------------------------------------------------------------------- */

static void free_entry(rm_table *t, uint32_t m)
{
    rm_model *e = &t->models[m];
    registry_index_erase(&t->by_name, e->hash, m);
    free(e->members);
    free(e->heap[0].v);
    free(e->heap[1].v);
    memset(e, 0, sizeof *e);
    e->next_free = t->free_head;
    t->free_head = m;
}

static uint32_t new_entry(rm_table *t, const char *name, uint32_t hash)
{
    if (registry_index_reserve(&t->by_name, (size_t)t->n + 1) != 0)
        return RM_NONE;
    uint32_t m = t->free_head;
    if (m != RM_NONE) {
        t->free_head = t->models[m].next_free;
    } else {
        if (grow_array((void **)&t->models, &t->cap, (size_t)t->n + 1, sizeof *t->models) != 0)
            return RM_NONE;
        m = t->n++;
    }
    rm_model *e = &t->models[m];
    memset(e, 0, sizeof *e);
    e->next_free = RM_NONE;
    strcpy(e->name, name); /* registry names are checked to fit */
    e->hash = hash;
    registry_index_insert(&t->by_name, hash, m);
    return m;
}

/* Room for one more member in entry m: members and both heaps (a member is in at most one).
 * Not grow_array: its first 64 places would make each entry ~3.5 KiB, and a board may declare
 * 16 names no other board has (an allowed peer is still untrusted); 4 keep that at ~220 bytes. */
static int grow_entry(rm_model *e)
{
    if (e->n_members < e->cap)
        return 0;
    uint32_t cap = e->cap ? 2 * e->cap : 4;
    rm_member *members = realloc(e->members, cap * sizeof *members);
    if (!members)
        return -1;
    e->members = members;
    for (int w = 0; w < 2; w++) {
        rm_entry *v = realloc(e->heap[w].v, cap * sizeof *v);
        if (!v)
            return -1; /* what grew stays grown; cap is what all three hold */
        e->heap[w].v = v;
    }
    e->cap = cap;
    return 0;
}

int rm_reserve(rm_table *t, const registry_agent *a, const uint32_t *hashes, uint32_t *entries)
{
    uint32_t made[REGISTRY_MODELS_MAX];
    size_t n_made = 0;
    for (size_t i = 0; i < a->n_models; i++) {
        uint32_t m = rm_find(t, a->models[i].name, hashes[i]);
        if (m == RM_NONE) {
            m = new_entry(t, a->models[i].name, hashes[i]);
            if (m != RM_NONE)
                made[n_made++] = m;
        }
        if (m == RM_NONE || grow_entry(&t->models[m]) != 0) {
            while (n_made > 0)
                free_entry(t, made[--n_made]);
            return -1;
        }
        entries[i] = m;
    }
    return 0;
}

void rm_add(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos,
            const uint32_t *entries)
{
    const registry_agent *a = &agents[pos];
    rm_agent *r = &ra[pos];
    memset(r, 0, sizeof *r);
    for (uint32_t mi = 0; mi < a->n_models; mi++) {
        const registry_model *am = &a->models[mi];
        uint32_t m = entries[mi]; /* rm_reserve made it, with room */
        rm_model *e = &t->models[m];
        r->model[mi] = m;
        r->member_at[mi] = e->n_members;
        r->heap_at[mi] = RM_NONE;
        e->members[e->n_members++] = (rm_member){pos, mi};
        if (!rm_sha_known(am->sha256))
            continue;
        if (e->sha_same == 0 && e->sha_other == 0)
            memcpy(e->sha, am->sha256, REGISTRY_SHA256_LEN);
        if (memcmp(e->sha, am->sha256, REGISTRY_SHA256_LEN) == 0)
            e->sha_same++;
        else
            e->sha_other++;
    }
    rm_update(t, agents, ra, pos);
}

void rm_drop_if_empty(rm_table *t, uint32_t m)
{
    if (m < t->n && t->models[m].name[0] && t->models[m].n_members == 0)
        free_entry(t, m);
}

void rm_remove(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos,
               bool keep_empty)
{
    const registry_agent *a = &agents[pos];
    rm_agent *r = &ra[pos];
    rm_park(t, agents, ra, pos);
    for (uint32_t mi = 0; mi < a->n_models; mi++) {
        rm_model *e = &t->models[r->model[mi]];
        uint32_t at = r->member_at[mi], last = --e->n_members;
        if (at != last) {
            rm_member moved = e->members[last];
            e->members[at] = moved;
            ra[moved.pos].member_at[moved.mi] = at;
        }
        const uint8_t *sha = a->models[mi].sha256;
        if (rm_sha_known(sha)) {
            if (memcmp(e->sha, sha, REGISTRY_SHA256_LEN) == 0)
                e->sha_same--;
            else
                e->sha_other--;
        }
        if (!keep_empty)
            rm_drop_if_empty(t, r->model[mi]);
    }
}

void rm_move(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t to)
{
    const registry_agent *a = &agents[to];
    const rm_agent *r = &ra[to];
    for (uint32_t mi = 0; mi < a->n_models; mi++) {
        rm_model *e = &t->models[r->model[mi]];
        e->members[r->member_at[mi]].pos = to;
        if (r->heap_at[mi] != RM_NONE)
            e->heap[r->heap_of[mi]].v[r->heap_at[mi]].pos = to;
    }
}

/* Whether (a, mi) can take a request now, and its heap and key if so. */
static bool eligible(const registry_agent *a, const rm_agent *r, uint32_t mi, int *which,
                     double *key)
{
    const registry_model *m = &a->models[mi];
    if (r->parked || a->drain_ordered || a->drain_reported || m->total_slots <= m->inflight)
        return false;
    double load = (double)m->inflight + 1;
    if (a->gen_tps > 0) {
        *which = RM_MEASURED;
        *key = load / (m->total_slots * a->gen_tps);
    } else {
        *which = RM_UNMEASURED;
        *key = load / m->total_slots;
    }
    return true;
}

void rm_update_one(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos,
                   uint32_t mi)
{
    const registry_agent *a = &agents[pos];
    rm_agent *r = &ra[pos];
    rm_model *e = &t->models[r->model[mi]];
    int which = 0;
    double key = 0;
    bool want = eligible(a, r, mi, &which, &key);
    uint32_t at = r->heap_at[mi];
    if (at != RM_NONE && (!want || r->heap_of[mi] != which)) {
        heap_remove(&e->heap[r->heap_of[mi]], ra, at, r->heap_of[mi]);
        at = RM_NONE;
    }
    if (!want)
        return;
    rm_heap *h = &e->heap[which];
    if (at == RM_NONE) {
        at = h->len++; /* room: every heap holds as many as there are members */
        h->v[at] = (rm_entry){key, a->id, pos, mi};
        sift_up(h, ra, at, which);
    } else if (h->v[at].key != key) {
        bool up = key < h->v[at].key;
        h->v[at].key = key;
        if (up)
            sift_up(h, ra, at, which);
        else
            sift_down(h, ra, at, which);
    }
}

void rm_update(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos)
{
    for (uint32_t mi = 0; mi < agents[pos].n_models; mi++)
        rm_update_one(t, agents, ra, pos, mi);
}

void rm_park(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos)
{
    const registry_agent *a = &agents[pos];
    rm_agent *r = &ra[pos];
    r->parked = true;
    for (uint32_t mi = 0; mi < a->n_models; mi++)
        if (r->heap_at[mi] != RM_NONE)
            heap_remove(&t->models[r->model[mi]].heap[r->heap_of[mi]], ra, r->heap_at[mi],
                        r->heap_of[mi]);
}

void rm_unpark(rm_table *t, const registry_agent *agents, rm_agent *ra, uint32_t pos)
{
    if (!ra[pos].parked)
        return;
    ra[pos].parked = false;
    rm_update(t, agents, ra, pos);
}
