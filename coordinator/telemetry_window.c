/* Rolling telemetry windows (telemetry_window.h): a ring of packed samples per agent. */
#include "telemetry_window.h"

#include "errors.h"

#include <stdlib.h>
#include <string.h>

#define NAME_CAP 65

typedef struct {
    uint64_t at_ms;
    size_t len;
    uint8_t *bytes;
} twin_sample;

typedef struct {
    char name[NAME_CAP];
    twin_sample *ring;  /* max_samples entries */
    size_t head, count; /* oldest at head */
    Edgefleet__TelemetrySample *latest;
} twin_agent;

struct twin {
    twin_params p;
    twin_agent *agents;
    size_t n_agents;
};

twin *twin_new(const twin_params *p)
{
    twin *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (p)
        w->p = *p;
    if (!w->p.window_ms)
        w->p.window_ms = 600000;
    if (!w->p.max_samples)
        w->p.max_samples = 600;
    if (!w->p.max_agents)
        w->p.max_agents = 4096;
    w->agents = calloc(w->p.max_agents, sizeof *w->agents);
    if (!w->agents) {
        free(w);
        return NULL;
    }
    return w;
}

static void agent_free(twin_agent *a, uint32_t cap)
{
    if (a->ring)
        for (uint32_t i = 0; i < cap; i++)
            free(a->ring[i].bytes);
    free(a->ring);
    if (a->latest)
        edgefleet__telemetry_sample__free_unpacked(a->latest, NULL);
    memset(a, 0, sizeof *a);
}

void twin_destroy(twin **w_p)
{
    if (!w_p || !*w_p)
        return;
    twin *w = *w_p;
    for (size_t i = 0; i < w->n_agents; i++)
        agent_free(&w->agents[i], w->p.max_samples);
    free(w->agents);
    free(w);
    *w_p = NULL;
}

static void drop_oldest(twin *w, twin_agent *a)
{
    twin_sample *s = &a->ring[a->head];
    free(s->bytes);
    memset(s, 0, sizeof *s);
    a->head = (a->head + 1) % w->p.max_samples;
    a->count--;
}

/* Remove agent i, moving the last one into its place. */
static void remove_at(twin *w, size_t i)
{
    agent_free(&w->agents[i], w->p.max_samples);
    if (i != w->n_agents - 1) {
        w->agents[i] = w->agents[w->n_agents - 1];
        memset(&w->agents[w->n_agents - 1], 0, sizeof w->agents[0]);
    }
    w->n_agents--;
}

static void prune_agent(twin *w, twin_agent *a, uint64_t now_ms)
{
    while (a->count && now_ms - a->ring[a->head].at_ms > w->p.window_ms)
        drop_oldest(w, a);
}

void twin_prune(twin *w, uint64_t now_ms)
{
    for (size_t i = 0; i < w->n_agents;) {
        twin_agent *a = &w->agents[i];
        prune_agent(w, a, now_ms);
        if (a->count == 0)
            remove_at(w, i); /* look at i again: the last one moved there */
        else
            i++;
    }
}

static twin_agent *find(const twin *w, const char *name)
{
    for (size_t i = 0; i < w->n_agents; i++)
        if (strcmp(w->agents[i].name, name) == 0)
            return &w->agents[i];
    return NULL;
}

static twin_agent *find_or_add(twin *w, const char *name, int *err)
{
    twin_agent *a = find(w, name);
    if (a)
        return a;
    if (w->n_agents == w->p.max_agents) {
        *err = EF_EBUSY;
        return NULL;
    }
    a = &w->agents[w->n_agents];
    a->ring = calloc(w->p.max_samples, sizeof *a->ring);
    if (!a->ring) {
        *err = EF_ENOMEM;
        return NULL;
    }
    memcpy(a->name, name, strlen(name) + 1);
    w->n_agents++;
    return a;
}

int twin_add(twin *w, const char *name, const uint8_t *packed, size_t len, uint64_t now_ms)
{
    if (!name || !*name || strlen(name) >= NAME_CAP || !packed || len == 0 || len > TWIN_SAMPLE_MAX)
        return EF_EINVAL;
    Edgefleet__TelemetrySample *dec = edgefleet__telemetry_sample__unpack(NULL, len, packed);
    if (!dec)
        return EF_EINVAL;
    uint8_t *copy = malloc(len);
    if (!copy) {
        edgefleet__telemetry_sample__free_unpacked(dec, NULL);
        return EF_ENOMEM;
    }
    memcpy(copy, packed, len);
    int err = 0;
    twin_agent *a = find_or_add(w, name, &err);
    if (!a) {
        free(copy);
        edgefleet__telemetry_sample__free_unpacked(dec, NULL);
        return err;
    }
    prune_agent(w, a, now_ms);
    if (a->count == w->p.max_samples)
        drop_oldest(w, a);
    twin_sample *s = &a->ring[(a->head + a->count) % w->p.max_samples];
    *s = (twin_sample){now_ms, len, copy};
    a->count++;
    if (a->latest)
        edgefleet__telemetry_sample__free_unpacked(a->latest, NULL);
    a->latest = dec;
    return 0;
}

const Edgefleet__TelemetrySample *twin_latest(const twin *w, const char *name)
{
    const twin_agent *a = name ? find(w, name) : NULL;
    return a ? a->latest : NULL;
}

void twin_forget(twin *w, const char *name)
{
    for (size_t i = 0; i < w->n_agents; i++)
        if (strcmp(w->agents[i].name, name) == 0) {
            remove_at(w, i);
            return;
        }
}

size_t twin_agents(const twin *w) { return w->n_agents; }

const char *twin_agent_name(const twin *w, size_t i)
{
    return i < w->n_agents ? w->agents[i].name : NULL;
}

size_t twin_each(const twin *w, size_t i, size_t last,
                 int (*fn)(const uint8_t *packed, size_t len, uint64_t arrived_ms, void *user),
                 void *user)
{
    if (i >= w->n_agents)
        return 0;
    const twin_agent *a = &w->agents[i];
    size_t seen = 0;
    for (size_t k = last && last < a->count ? a->count - last : 0; k < a->count; k++) {
        const twin_sample *s = &a->ring[(a->head + k) % w->p.max_samples];
        seen++;
        if (fn(s->bytes, s->len, s->at_ms, user))
            break;
    }
    return seen;
}
