/* The coordinator's agent table (see registry.h): a dense, growable array of agents, bounded by
 * max_agents, with hash indexes by id, routing id, key and name (registry_index.h) so a message
 * from one of 10,000 boards costs the same as from one of ten, and a per-model index
 * (registry_models.h) so a pick or a Register does not walk the fleet either. Run by the
 * coordinator's loop thread only. */
#include "registry.h"

#include "registry_index.h"
#include "registry_models.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* An agent may declare its own heartbeat interval, but never one that would keep a dead board
 * "live" for minutes, nor one so short that scheduling jitter kills it. */
#define INTERVAL_MIN_MS 50u
#define INTERVAL_MAX_MS 60000u

/* The hashes of one agent's keys, kept beside it so moving or removing it needs no rehash. */
typedef struct {
    uint32_t id, routing_id, key_id, name;
} agent_hashes;

struct registry {
    registry_params params;
    registry_agent *agents; /* [0, n) in use; grows by doubling up to max_agents */
    agent_hashes *hashes;   /* [0, n), beside agents */
    rm_agent *rm;           /* [0, n), beside agents: their places in the model index */
    rm_table models;
    size_t n;
    size_t cap;
    registry_index by_id, by_routing_id, by_key, by_name;
    uint8_t hash_key[REGISTRY_INDEX_KEY_LEN]; /* SipHash key for peer-chosen strings */
    agent_id_t next_id;
    double median_tps; /* cached registry_median_gen_tps */
    bool median_dirty;
    bool median_timed;  /* median_ms is set */
    uint64_t median_ms; /* when registry_median_gen_tps_at last recomputed it */
};

registry_params registry_default_params(void)
{
    registry_params p = {.max_agents = 16384, .heartbeat_interval_ms = 1000, .liveness = 3};
    return p;
}

registry_t *registry_new(const registry_params *p)
{
    registry_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    registry_params d = registry_default_params();
    self->params = p ? *p : d;
    if (self->params.max_agents == 0)
        self->params.max_agents = d.max_agents;
    if (self->params.heartbeat_interval_ms == 0)
        self->params.heartbeat_interval_ms = d.heartbeat_interval_ms;
    if (self->params.liveness == 0)
        self->params.liveness = d.liveness;
    self->next_id = 1;
    self->median_dirty = true;
    rm_table_init(&self->models);
    if (sodium_init() < 0) {
        free(self);
        return NULL;
    }
    randombytes_buf(self->hash_key, sizeof self->hash_key);
    return self;
}

void registry_destroy(registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_t *self = *self_p;
    free(self->agents);
    free(self->hashes);
    free(self->rm);
    rm_table_free(&self->models);
    registry_index_free(&self->by_id);
    registry_index_free(&self->by_routing_id);
    registry_index_free(&self->by_key);
    registry_index_free(&self->by_name);
    free(self);
    *self_p = NULL;
}

static uint32_t hash_str(const registry_t *self, const char *text)
{
    return registry_index_hash_bytes(self->hash_key, text, strlen(text));
}

static uint32_t hash_routing_id(const registry_t *self, const uint8_t *id, size_t len)
{
    return registry_index_hash_bytes(self->hash_key, id, len);
}

/* Position of the agent with id, or -1. */
static long pos_of_id(const registry_t *self, agent_id_t id)
{
    const registry_index *x = &self->by_id;
    uint32_t h = registry_index_hash_id(id);
    for (size_t b = registry_index_first(x, h); x->mask && x->slots[b].pos1; b = (b + 1) & x->mask)
        if (x->slots[b].hash == h && self->agents[x->slots[b].pos1 - 1].id == id)
            return (long)x->slots[b].pos1 - 1;
    return -1;
}

/* Position of the agent whose key_id (by_key) or name (by_name) is text, or -1. */
static long pos_of_str(const registry_t *self, const registry_index *x, const char *text)
{
    if (!text)
        return -1;
    uint32_t h = hash_str(self, text);
    int by_key = x == &self->by_key;
    for (size_t b = registry_index_first(x, h); x->mask && x->slots[b].pos1;
         b = (b + 1) & x->mask) {
        const registry_agent *a = &self->agents[x->slots[b].pos1 - 1];
        if (x->slots[b].hash == h && strcmp(by_key ? a->key_id : a->name, text) == 0)
            return (long)x->slots[b].pos1 - 1;
    }
    return -1;
}

static registry_agent *find_mut(const registry_t *self, agent_id_t id)
{
    long i = pos_of_id(self, id);
    return i < 0 ? NULL : &self->agents[i];
}

/* Re-files a in the model index after a change to its slots, speed, drain or credits; heard: a
 * message came from it, so a pick that parked it as silent was wrong by now. */
static void refile(registry_t *self, const registry_agent *a, bool heard)
{
    uint32_t pos = (uint32_t)(a - self->agents);
    if (heard)
        self->rm[pos].parked = false;
    rm_update(&self->models, self->agents, self->rm, pos);
}

const registry_agent *registry_get(const registry_t *self, agent_id_t id)
{
    return id == AGENT_ID_NONE ? NULL : find_mut(self, id);
}

agent_id_t registry_find_key(const registry_t *self, const char *key_id)
{
    long i = pos_of_str(self, &self->by_key, key_id);
    return i < 0 ? AGENT_ID_NONE : self->agents[i].id;
}

agent_id_t registry_find_name(const registry_t *self, const char *name)
{
    long i = pos_of_str(self, &self->by_name, name);
    return i < 0 ? AGENT_ID_NONE : self->agents[i].id;
}

const registry_agent *registry_get_routing_id(const registry_t *self, const uint8_t *routing_id,
                                              size_t len)
{
    if (!routing_id || len == 0 || len > REGISTRY_ROUTING_ID_MAX)
        return NULL;
    const registry_index *x = &self->by_routing_id;
    uint32_t h = hash_routing_id(self, routing_id, len);
    for (size_t b = registry_index_first(x, h); x->mask && x->slots[b].pos1;
         b = (b + 1) & x->mask) {
        const registry_agent *a = &self->agents[x->slots[b].pos1 - 1];
        if (x->slots[b].hash == h && a->routing_id_len == len &&
            memcmp(a->routing_id, routing_id, len) == 0)
            return a;
    }
    return NULL;
}

agent_id_t registry_find_routing_id(const registry_t *self, const uint8_t *routing_id, size_t len)
{
    const registry_agent *a = registry_get_routing_id(self, routing_id, len);
    return a ? a->id : AGENT_ID_NONE;
}

size_t registry_count(const registry_t *self) { return self->n; }

const registry_agent *registry_at(const registry_t *self, size_t i)
{
    return i < self->n ? &self->agents[i] : NULL;
}

uint64_t registry_liveness_window_ms(const registry_t *self, const registry_agent *agent)
{
    return (uint64_t)self->params.liveness * agent->heartbeat_interval_ms;
}

bool registry_agent_live(const registry_t *self, const registry_agent *agent, uint64_t now_ms)
{
    /* A clock that reads earlier than the last message (a caller mixing clocks) is "just seen"
     * rather than an unsigned wrap that would look like an eternity of silence. */
    if (now_ms <= agent->last_seen_ms)
        return true;
    return now_ms - agent->last_seen_ms < registry_liveness_window_ms(self, agent);
}

bool registry_agent_draining(const registry_agent *agent)
{
    return agent->drain_ordered || agent->drain_reported;
}

int registry_model_index(const registry_agent *agent, const char *model)
{
    for (size_t i = 0; model && i < agent->n_models; i++)
        if (strcmp(agent->models[i].name, model) == 0)
            return (int)i;
    return -1;
}

uint32_t registry_free_slots(const registry_agent *agent, size_t mi)
{
    if (mi >= agent->n_models)
        return 0;
    const registry_model *m = &agent->models[mi];
    return m->total_slots > m->inflight ? m->total_slots - m->inflight : 0;
}

/* Copies src into dst (cap bytes with NUL); oversize or (unless may_be_empty) empty is EINVAL:
 * truncating a name could merge two agents. */
static int copy_field(char *dst, size_t cap, const char *src, bool may_be_empty, const char *what,
                      ef_errmsg *reason)
{
    if (!src)
        src = "";
    size_t len = strlen(src);
    if (len == 0 && !may_be_empty)
        return errmsg_set(reason, EF_EINVAL, "register: empty %s", what);
    if (len >= cap)
        return errmsg_set(reason, EF_EINVAL, "register: %s longer than %zu bytes", what, cap - 1);
    memcpy(dst, src, len + 1);
    return 0;
}

static int fill_models(registry_agent *a, const registry_registration *reg, ef_errmsg *reason)
{
    if (reg->n_models > REGISTRY_MODELS_MAX)
        return errmsg_set(reason, EF_EINVAL, "register: %zu models, at most %d", reg->n_models,
                          REGISTRY_MODELS_MAX);
    if (reg->n_models > 0 && !reg->models)
        return errmsg_set(reason, EF_EINVAL, "register: models missing");
    for (size_t i = 0; i < reg->n_models; i++) {
        registry_model *m = &a->models[i];
        int rc =
            copy_field(m->name, sizeof(m->name), reg->models[i].name, false, "model name", reason);
        if (rc != 0)
            return rc;
        if (registry_model_index(a, m->name) >= 0)
            return errmsg_set(reason, EF_EINVAL, "register: model \"%s\" listed twice", m->name);
        if (reg->models[i].n_slots > REGISTRY_SLOTS_MAX)
            return errmsg_set(reason, EF_EINVAL,
                              "register: model \"%s\" with %u slots (at most %d)", m->name,
                              reg->models[i].n_slots, REGISTRY_SLOTS_MAX);
        m->n_slots = m->total_slots = reg->models[i].n_slots;
        if (reg->models[i].sha256)
            memcpy(m->sha256, reg->models[i].sha256, REGISTRY_SHA256_LEN);
        a->n_models = i + 1; /* so the duplicate check above sees the models before it */
    }
    return 0;
}

/* Builds the entry in *a from a Register, validating every field. */
static int fill_agent(registry_t *self, registry_agent *a, const registry_registration *reg,
                      uint64_t now_ms, ef_errmsg *reason)
{
    memset(a, 0, sizeof(*a));
    int rc = copy_field(a->name, sizeof(a->name), reg->name, false, "agent name", reason);
    if (rc == 0)
        rc = copy_field(a->key_id, sizeof(a->key_id), reg->key_id, false, "key id", reason);
    if (rc == 0)
        rc = copy_field(a->hostname, sizeof(a->hostname), reg->hostname, true, "hostname", reason);
    if (rc != 0)
        return rc;
    if (!reg->routing_id || reg->routing_id_len == 0 ||
        reg->routing_id_len > REGISTRY_ROUTING_ID_MAX)
        return errmsg_set(reason, EF_EINVAL, "register: routing id of %zu bytes",
                          reg->routing_id_len);
    memcpy(a->routing_id, reg->routing_id, reg->routing_id_len);
    a->routing_id_len = reg->routing_id_len;
    rc = fill_models(a, reg, reason);
    if (rc != 0)
        return rc;
    uint32_t iv = reg->heartbeat_interval_ms ? reg->heartbeat_interval_ms
                                             : self->params.heartbeat_interval_ms;
    a->heartbeat_interval_ms = iv < INTERVAL_MIN_MS   ? INTERVAL_MIN_MS
                               : iv > INTERVAL_MAX_MS ? INTERVAL_MAX_MS
                                                      : iv;
    a->simulated = reg->simulated;
    if (reg->boot_id)
        memcpy(a->boot_id, reg->boot_id, REGISTRY_BOOT_ID_LEN);
    a->registered_ms = a->last_seen_ms = now_ms;
    return 0;
}

/* Files the agent at i (its hashes already in self->hashes[i]) in every index. */
static void index_at(registry_t *self, size_t i)
{
    const agent_hashes *h = &self->hashes[i];
    registry_index_insert(&self->by_id, h->id, (uint32_t)i);
    registry_index_insert(&self->by_routing_id, h->routing_id, (uint32_t)i);
    registry_index_insert(&self->by_key, h->key_id, (uint32_t)i);
    registry_index_insert(&self->by_name, h->name, (uint32_t)i);
}

static void remove_at(registry_t *self, size_t i, bool keep_empty)
{
    rm_remove(&self->models, self->agents, self->rm, (uint32_t)i, keep_empty);
    size_t last = self->n - 1;
    const agent_hashes *h = &self->hashes[i], *m = &self->hashes[last];
    registry_index_erase(&self->by_id, h->id, (uint32_t)i);
    registry_index_erase(&self->by_routing_id, h->routing_id, (uint32_t)i);
    registry_index_erase(&self->by_key, h->key_id, (uint32_t)i);
    registry_index_erase(&self->by_name, h->name, (uint32_t)i);
    if (i != last) {
        registry_index_move(&self->by_id, m->id, (uint32_t)last, (uint32_t)i);
        registry_index_move(&self->by_routing_id, m->routing_id, (uint32_t)last, (uint32_t)i);
        registry_index_move(&self->by_key, m->key_id, (uint32_t)last, (uint32_t)i);
        registry_index_move(&self->by_name, m->name, (uint32_t)last, (uint32_t)i);
        self->agents[i] = self->agents[last];
        self->hashes[i] = self->hashes[last];
        self->rm[i] = self->rm[last];
        rm_move(&self->models, self->agents, self->rm, (uint32_t)i);
    }
    self->n--;
    self->median_dirty = true;
}

static int ensure_room(registry_t *self)
{
    if (self->n < self->cap)
        return 0;
    if (self->cap >= self->params.max_agents)
        return EF_EBUSY;
    size_t cap = self->cap ? self->cap * 2 : 16;
    if (cap > self->params.max_agents)
        cap = self->params.max_agents;
    if (registry_index_reserve(&self->by_id, cap) != 0 ||
        registry_index_reserve(&self->by_routing_id, cap) != 0 ||
        registry_index_reserve(&self->by_key, cap) != 0 ||
        registry_index_reserve(&self->by_name, cap) != 0)
        return EF_ENOMEM;
    agent_hashes *hashes = realloc(self->hashes, cap * sizeof(*hashes));
    if (!hashes)
        return EF_ENOMEM;
    self->hashes = hashes;
    rm_agent *rm = realloc(self->rm, cap * sizeof(*rm));
    if (!rm)
        return EF_ENOMEM;
    self->rm = rm;
    registry_agent *grown = realloc(self->agents, cap * sizeof(*grown));
    if (!grown)
        return EF_ENOMEM;
    self->agents = grown;
    self->cap = cap;
    return 0;
}

/* Decides what an existing agent of the same key or name means for a new Register: refuse (it
 * is live and not the same process) or replace it. Writes the index to replace, or -1 when there
 * is none. Keys and names are each unique in the table, so at most one entry can be in the way
 * per rule; when two are (one per rule), the second refuses. */
static int boot_id_zero(const uint8_t *id)
{
    static const uint8_t zero[REGISTRY_BOOT_ID_LEN];
    return memcmp(id, zero, REGISTRY_BOOT_ID_LEN) == 0;
}

static int check_clash(registry_t *self, const registry_agent *fresh, uint64_t now_ms,
                       long *replace_at, int *rebind, ef_errmsg *reason)
{
    *replace_at = -1;
    *rebind = 0;
    /* Keys and names are unique in the table: at most these two entries are in the way, looked
     * at in table order. */
    long at[2] = {pos_of_str(self, &self->by_key, fresh->key_id),
                  pos_of_str(self, &self->by_name, fresh->name)};
    if (at[1] == at[0])
        at[1] = -1;
    if (at[0] < 0 || (at[1] >= 0 && at[1] < at[0])) {
        long t = at[0];
        at[0] = at[1];
        at[1] = t;
    }
    for (int k = 0; k < 2; k++) {
        if (at[k] < 0)
            continue;
        size_t i = (size_t)at[k];
        const registry_agent *old = &self->agents[i];
        int same_key = strcmp(old->key_id, fresh->key_id) == 0;
        int live = registry_agent_live(self, old, now_ms);
        int same_boot = memcmp(old->boot_id, fresh->boot_id, REGISTRY_BOOT_ID_LEN) == 0;
        if (same_key && same_boot && !boot_id_zero(fresh->boot_id)) {
            *replace_at = (long)i;
            *rebind = 1;
            return 0;
        }
        if (same_key && live && !same_boot)
            return errmsg_set(reason, EF_EDUPLICATE,
                              "key %s is in use by a live agent (host %s): a second board with "
                              "a copy of that key (host %s) is refused; give each board its own "
                              "key",
                              fresh->key_id, old->hostname, fresh->hostname);
        if (!same_key && live)
            return errmsg_set(reason, EF_EDUPLICATE,
                              "agent name \"%s\" is in use by a live agent with another key "
                              "(%s; this one is %s)",
                              fresh->name, old->key_id, fresh->key_id);
        if (*replace_at >= 0)
            return errmsg_set(reason, EF_EDUPLICATE,
                              "agent \"%s\" (key %s) clashes with two registered agents",
                              fresh->name, fresh->key_id);
        *replace_at = (long)i;
    }
    return 0;
}

/* Each of fresh's models must be the same file as a live agent's model of that name. */
static int check_models_match(const registry_t *self, const registry_agent *fresh,
                              const uint32_t *model_hashes, uint64_t now_ms, ef_errmsg *reason)
{
    for (size_t m = 0; m < fresh->n_models; m++) {
        const registry_model *fm = &fresh->models[m];
        if (!rm_sha_known(fm->sha256))
            continue;
        uint32_t e = rm_find(&self->models, fm->name, model_hashes[m]);
        if (e == RM_NONE)
            continue;
        const rm_model *entry = &self->models.models[e];
        /* Every board with a known hash has this one: nothing to compare, however many. */
        if (entry->sha_other == 0 &&
            (entry->sha_same == 0 || memcmp(entry->sha, fm->sha256, REGISTRY_SHA256_LEN) == 0))
            continue;
        for (uint32_t k = 0; k < entry->n_members; k++) {
            const registry_agent *a = &self->agents[entry->members[k].pos];
            int mi = (int)entry->members[k].mi;
            if (strcmp(a->key_id, fresh->key_id) == 0 || !rm_sha_known(a->models[mi].sha256) ||
                !registry_agent_live(self, a, now_ms) ||
                memcmp(a->models[mi].sha256, fm->sha256, REGISTRY_SHA256_LEN) == 0)
                continue;
            return errmsg_set(reason, EF_EMODEL,
                              "model \"%s\" is another file here than on agent %s (sha256 "
                              "%02x%02x%02x%02x... there, %02x%02x%02x%02x... here): one name, "
                              "one file across the fleet; rename one of them",
                              fm->name, a->name, a->models[mi].sha256[0], a->models[mi].sha256[1],
                              a->models[mi].sha256[2], a->models[mi].sha256[3], fm->sha256[0],
                              fm->sha256[1], fm->sha256[2], fm->sha256[3]);
        }
    }
    return 0;
}

int registry_register(registry_t *self, const registry_registration *reg, uint64_t now_ms,
                      agent_id_t *id_out, agent_id_t *replaced_out, ef_errmsg *reason)
{
    if (!self || !reg || !id_out || !replaced_out)
        return errmsg_set(reason, EF_EINVAL, "register: missing argument");
    *id_out = *replaced_out = AGENT_ID_NONE;
    registry_agent fresh;
    int rc = fill_agent(self, &fresh, reg, now_ms, reason);
    if (rc != 0)
        return rc;
    uint32_t model_hashes[REGISTRY_MODELS_MAX];
    for (size_t k = 0; k < fresh.n_models; k++)
        model_hashes[k] = hash_str(self, fresh.models[k].name);
    if ((rc = check_models_match(self, &fresh, model_hashes, now_ms, reason)) != 0)
        return rc;
    long old = -1;
    int rebind = 0;
    rc = check_clash(self, &fresh, now_ms, &old, &rebind, reason);
    if (rc != 0)
        return rc;
    if (rebind) { /* the same process on a new link: same entry, its requests go on */
        registry_agent *a = &self->agents[old];
        agent_hashes *h = &self->hashes[old];
        registry_index_erase(&self->by_routing_id, h->routing_id, (uint32_t)old);
        memcpy(a->routing_id, fresh.routing_id, fresh.routing_id_len);
        a->routing_id_len = fresh.routing_id_len;
        h->routing_id = hash_routing_id(self, a->routing_id, a->routing_id_len);
        registry_index_insert(&self->by_routing_id, h->routing_id, (uint32_t)old);
        memcpy(a->hostname, fresh.hostname, sizeof a->hostname);
        if (now_ms > a->last_seen_ms)
            a->last_seen_ms = now_ms;
        refile(self, a, true);
        *id_out = a->id;
        return 0;
    }
    if (old < 0 && (rc = ensure_room(self)) != 0)
        return errmsg_set(reason, rc,
                          rc == EF_EBUSY ? "register: agent table full (%u agents)"
                                         : "register: out of memory (%u agents at most)",
                          self->params.max_agents);
    uint32_t model_entries[REGISTRY_MODELS_MAX];
    if (rm_reserve(&self->models, &fresh, model_hashes, model_entries) != 0)
        return errmsg_set(reason, EF_ENOMEM, "register: out of memory");
    uint32_t old_models[REGISTRY_MODELS_MAX];
    size_t n_old = 0;
    if (old >= 0) {
        *replaced_out = self->agents[old].id;
        n_old = self->agents[old].n_models;
        memcpy(old_models, self->rm[old].model, n_old * sizeof old_models[0]);
        remove_at(self, (size_t)old, true); /* fresh may need the entries it leaves empty */
    }
    fresh.id = self->next_id++;
    if (self->next_id == AGENT_ID_NONE) /* 4 billion registrations: skip the sentinel */
        self->next_id = 1;
    size_t i = self->n++;
    self->agents[i] = fresh;
    self->hashes[i] = (agent_hashes){registry_index_hash_id(fresh.id),
                                     hash_routing_id(self, fresh.routing_id, fresh.routing_id_len),
                                     hash_str(self, fresh.key_id), hash_str(self, fresh.name)};
    index_at(self, i);
    rm_add(&self->models, self->agents, self->rm, (uint32_t)i, model_entries);
    for (size_t k = 0; k < n_old; k++)
        rm_drop_if_empty(&self->models, old_models[k]);
    self->median_dirty = true;
    *id_out = fresh.id;
    return 0;
}

int registry_heartbeat(registry_t *self, agent_id_t id, const registry_load *load, uint64_t now_ms)
{
    if (!self || !load || (load->n_models > 0 && !load->models))
        return EF_EINVAL;
    registry_agent *a = find_mut(self, id);
    if (!a)
        return EF_ENOENT;
    for (size_t i = 0; i < load->n_models; i++) {
        int mi = registry_model_index(a, load->models[i].model);
        if (mi < 0)
            continue; /* a model it did not declare: it must re-register to add one */
        uint32_t total = load->models[i].total_slots;
        a->models[mi].total_slots = total < a->models[mi].n_slots ? total : a->models[mi].n_slots;
        a->models[mi].busy_slots = load->models[i].busy_slots;
    }
    /* Negative or NaN speeds from a confused agent are "not measured", never a weight. */
    double g = load->gen_tps > 0 ? load->gen_tps : 0;
    if (g != a->gen_tps)
        self->median_dirty = true;
    a->gen_tps = g;
    a->prompt_tps = load->prompt_tps > 0 ? load->prompt_tps : 0;
    a->drain_reported = load->draining;
    a->heartbeat_ms = now_ms;
    if (now_ms > a->last_seen_ms)
        a->last_seen_ms = now_ms;
    refile(self, a, true);
    return 0;
}

int registry_touch(registry_t *self, agent_id_t id, uint64_t now_ms)
{
    registry_agent *a = find_mut(self, id);
    if (!a)
        return EF_ENOENT;
    if (now_ms > a->last_seen_ms)
        a->last_seen_ms = now_ms;
    uint32_t pos = (uint32_t)(a - self->agents);
    if (self->rm[pos].parked)
        rm_unpark(&self->models, self->agents, self->rm, pos);
    return 0;
}

int registry_set_drain(registry_t *self, agent_id_t id, bool enable)
{
    registry_agent *a = find_mut(self, id);
    if (!a)
        return EF_ENOENT;
    a->drain_ordered = enable;
    if (!enable)
        a->drain_reported = false; /* don't wait a heartbeat for the agent to echo the undrain */
    refile(self, a, false);
    return 0;
}

size_t registry_sweep(registry_t *self, uint64_t now_ms, agent_id_t *dead_out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n && n < cap;) {
        if (registry_agent_live(self, &self->agents[i], now_ms)) {
            i++;
            continue;
        }
        dead_out[n++] = self->agents[i].id;
        remove_at(self, i, false); /* the last agent moved into i: look at i again */
    }
    return n;
}

int registry_remove(registry_t *self, agent_id_t id)
{
    long i = pos_of_id(self, id);
    if (i < 0)
        return EF_ENOENT;
    remove_at(self, (size_t)i, false);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double registry_median_gen_tps(registry_t *self)
{
    if (!self->median_dirty)
        return self->median_tps;
    double *v = malloc((self->n ? self->n : 1) * sizeof(*v));
    if (!v)
        return self->median_tps; /* stale beats none; retried next call */
    size_t k = 0;
    for (size_t i = 0; i < self->n; i++)
        if (self->agents[i].gen_tps > 0)
            v[k++] = self->agents[i].gen_tps;
    qsort(v, k, sizeof(*v), cmp_double);
    self->median_tps = k == 0 ? 0 : (k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2);
    free(v);
    self->median_dirty = false;
    return self->median_tps;
}

double registry_median_gen_tps_at(registry_t *self, uint64_t now_ms)
{
    if (self->median_dirty && (!self->median_timed || now_ms < self->median_ms ||
                               now_ms - self->median_ms >= REGISTRY_MEDIAN_REFRESH_MS)) {
        self->median_timed = true;
        self->median_ms = now_ms;
        return registry_median_gen_tps(self);
    }
    if (!self->median_timed) { /* fresh from registry_median_gen_tps: its age starts now */
        self->median_timed = true;
        self->median_ms = now_ms;
    }
    return self->median_tps;
}

int registry_credit_take(registry_t *self, agent_id_t id, size_t mi)
{
    registry_agent *a = find_mut(self, id);
    if (!a)
        return EF_ENOENT;
    if (mi >= a->n_models)
        return EF_EINVAL;
    a->models[mi].inflight++;
    rm_update_one(&self->models, self->agents, self->rm, (uint32_t)(a - self->agents),
                  (uint32_t)mi);
    return 0;
}

int registry_credit_return(registry_t *self, agent_id_t id, size_t mi, bool served)
{
    registry_agent *a = find_mut(self, id);
    if (!a)
        return EF_ENOENT;
    if (mi >= a->n_models)
        return EF_EINVAL;
    if (a->models[mi].inflight > 0)
        a->models[mi].inflight--;
    if (served)
        a->served++;
    rm_update_one(&self->models, self->agents, self->rm, (uint32_t)(a - self->agents),
                  (uint32_t)mi);
    return 0;
}

double registry_load_score(const registry_agent *agent, size_t mi, double fallback_tps)
{
    const registry_model *m = &agent->models[mi];
    double load = (double)m->inflight + 1, slots = m->total_slots ? m->total_slots : 1;
    /* The same expressions as the model index's heap keys (registry_models.c), so the two
     * orders agree exactly. */
    if (agent->gen_tps > 0)
        return load / (slots * agent->gen_tps);
    return load / slots / fallback_tps;
}

bool registry_pick(registry_t *self, const char *model, uint64_t now_ms, double fallback_tps,
                   registry_pick_result *out)
{
    *out = (registry_pick_result){.agent = AGENT_ID_NONE, .mi = -1};
    if (!model)
        return false;
    uint32_t m = rm_find(&self->models, model, hash_str(self, model));
    if (m == RM_NONE)
        return false;
    for (int which = RM_MEASURED; which <= RM_UNMEASURED; which++) {
        const rm_entry *e;
        while ((e = rm_top(&self->models, m, which)) != NULL) {
            const registry_agent *a = &self->agents[e->pos];
            if (registry_agent_live(self, a, now_ms))
                break;
            rm_park(&self->models, self->agents, self->rm, e->pos); /* until heard again */
        }
        if (!e)
            continue;
        double score = which == RM_MEASURED ? e->key : e->key / fallback_tps;
        if (out->agent == AGENT_ID_NONE || score < out->score ||
            (score == out->score && e->id < out->agent))
            *out = (registry_pick_result){.agent = e->id, .mi = (int)e->mi, .score = score};
    }
    return out->agent != AGENT_ID_NONE;
}

bool registry_model_declared(const registry_t *self, const char *model)
{
    return model && rm_find(&self->models, model, hash_str(self, model)) != RM_NONE;
}

void registry_model_iter_begin(const registry_t *self, const char *model, registry_model_iter *it)
{
    it->registry = self;
    it->k = 0;
    it->model = model ? rm_find(&self->models, model, hash_str(self, model)) : RM_NONE;
}

const registry_agent *registry_model_iter_next(registry_model_iter *it, int *mi)
{
    if (it->model == RM_NONE)
        return NULL;
    const rm_model *e = &it->registry->models.models[it->model];
    if (it->k >= e->n_members)
        return NULL;
    const rm_member *member = &e->members[it->k++];
    if (mi)
        *mi = (int)member->mi;
    return &it->registry->agents[member->pos];
}
