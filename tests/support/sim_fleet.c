/* Simulated fleet over registry + scheduler (see sim_fleet.h): a min-heap of completion events on
 * a fake ms clock, heartbeats every simulated second, dispatch after every event. */
#include "sim_fleet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_HEARTBEAT_MS 1000u
#define SIM_BATCH        256 /* dispatch decisions taken per scheduler_dispatch call */

typedef struct {
    uint64_t at_ms;
    uint64_t ticket;
    uint32_t agent; /* index */
    uint32_t tokens;
} sim_event;

struct sim_fleet {
    registry_t *reg;
    scheduler_t *sched;
    sim_agent_spec *spec;
    agent_id_t *ids;
    uint64_t *requests, *tokens, *last_ms;
    uint32_t *busy; /* simulated slots in use, to check credits are honoured */
    size_t n;
    sim_event *events; /* min-heap by at_ms */
    size_t n_events, cap_events;
    uint64_t now_ms, next_heartbeat_ms, submitted, completed, next_rid;
};

static void heartbeat_all(sim_fleet *f)
{
    for (size_t i = 0; i < f->n; i++) {
        registry_model_load ml = {
            .model = SIM_MODEL, .busy_slots = f->busy[i], .total_slots = f->spec[i].slots};
        registry_load hb = {.models = &ml,
                            .n_models = 1,
                            .gen_tps = f->spec[i].report_speed ? f->spec[i].speed : 0};
        registry_heartbeat(f->reg, f->ids[i], &hb, f->now_ms);
    }
    f->next_heartbeat_ms = f->now_ms + SIM_HEARTBEAT_MS;
}

static int register_all(sim_fleet *f)
{
    for (size_t i = 0; i < f->n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "simulated-%zu", i);
        registry_model_decl m = {.name = SIM_MODEL, .n_slots = f->spec[i].slots};
        registry_registration r = {.name = name,
                                   .key_id = name,
                                   .routing_id = (const uint8_t *)name,
                                   .routing_id_len = strlen(name),
                                   .models = &m,
                                   .n_models = 1,
                                   .simulated = true};
        agent_id_t gone;
        if (registry_register(f->reg, &r, f->now_ms, &f->ids[i], &gone, NULL) != 0)
            return -1;
    }
    heartbeat_all(f);
    return 0;
}

sim_fleet *sim_fleet_new(const sim_agent_spec *agents, size_t n, const scheduler_params *sp)
{
    sim_fleet *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    scheduler_params p = sp ? *sp : scheduler_default_params();
    if (!sp) { /* one anonymous client submits everything: neither bound may refuse it */
        p.max_queued_per_model = p.max_requests;
        p.max_per_client = 0;
    }
    registry_params rp = registry_default_params();
    rp.max_agents = (uint32_t)n;
    f->n = n;
    f->reg = registry_new(&rp);
    f->sched = f->reg ? scheduler_new(f->reg, &p) : NULL;
    f->spec = calloc(n, sizeof(*f->spec));
    f->ids = calloc(n, sizeof(*f->ids));
    f->requests = calloc(n, sizeof(uint64_t));
    f->tokens = calloc(n, sizeof(uint64_t));
    f->last_ms = calloc(n, sizeof(uint64_t));
    f->busy = calloc(n, sizeof(uint32_t));
    if (!f->sched || !f->spec || !f->ids || !f->requests || !f->tokens || !f->last_ms || !f->busy) {
        sim_fleet_destroy(&f);
        return NULL;
    }
    memcpy(f->spec, agents, n * sizeof(*agents));
    if (register_all(f) != 0)
        sim_fleet_destroy(&f);
    return f;
}

void sim_fleet_destroy(sim_fleet **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_fleet *f = *self_p;
    sched_request out[64];
    while (f->sched && scheduler_flush(f->sched, out, 64) == 64) {
    }
    scheduler_destroy(&f->sched);
    registry_destroy(&f->reg);
    free(f->spec);
    free(f->ids);
    free(f->requests);
    free(f->tokens);
    free(f->last_ms);
    free(f->busy);
    free(f->events);
    free(f);
    *self_p = NULL;
}

static void heap_push(sim_fleet *f, sim_event e)
{
    if (f->n_events == f->cap_events) {
        f->cap_events = f->cap_events ? f->cap_events * 2 : 1024;
        f->events = realloc(f->events, f->cap_events * sizeof(*f->events));
    }
    size_t i = f->n_events++;
    while (i > 0 && f->events[(i - 1) / 2].at_ms > e.at_ms) {
        f->events[i] = f->events[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    f->events[i] = e;
}

static sim_event heap_pop(sim_fleet *f)
{
    sim_event top = f->events[0], last = f->events[--f->n_events];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= f->n_events)
            break;
        if (c + 1 < f->n_events && f->events[c + 1].at_ms < f->events[c].at_ms)
            c++;
        if (f->events[c].at_ms >= last.at_ms)
            break;
        f->events[i] = f->events[c];
        i = c;
    }
    if (f->n_events > 0)
        f->events[i] = last;
    return top;
}

/* The simulated agent starts the request now; it ends after tokens / speed seconds. */
static int start(sim_fleet *f, const sched_dispatch *d)
{
    size_t i = d->agent - f->ids[0]; /* ids are consecutive in registration order */
    if (i >= f->n || f->ids[i] != d->agent || f->busy[i] >= f->spec[i].slots)
        return -1;
    uint32_t tokens = (uint32_t)(uintptr_t)d->payload;
    uint64_t dur = (uint64_t)ceil(1000.0 * tokens / f->spec[i].speed);
    f->busy[i]++;
    heap_push(f, (sim_event){.at_ms = f->now_ms + dur,
                             .ticket = d->ticket,
                             .agent = (uint32_t)i,
                             .tokens = tokens});
    return 0;
}

int sim_fleet_submit(sim_fleet *f, uint32_t tokens)
{
    uint8_t rid[SCHED_REQUEST_ID_LEN] = {0};
    f->next_rid++;
    memcpy(rid, &f->next_rid, sizeof(f->next_rid));
    sched_submit s = {.request_id = rid,
                      .model = SIM_MODEL,
                      .max_tokens = tokens,
                      .payload = (void *)(uintptr_t)tokens};
    sched_dispatch d;
    int rc = scheduler_submit(f->sched, &s, f->now_ms, &d, NULL);
    if (rc != 0)
        return rc;
    f->submitted++;
    return d.agent != AGENT_ID_NONE ? start(f, &d) : 0;
}

static int dispatch_all(sim_fleet *f)
{
    sched_dispatch out[SIM_BATCH];
    size_t n;
    do {
        n = scheduler_dispatch(f->sched, f->now_ms, out, SIM_BATCH);
        for (size_t k = 0; k < n; k++)
            if (start(f, &out[k]) != 0)
                return -1;
    } while (n == SIM_BATCH);
    return 0;
}

int sim_fleet_run(sim_fleet *f)
{
    if (dispatch_all(f) != 0)
        return -1;
    while (f->n_events > 0) {
        uint64_t next = f->events[0].at_ms;
        if (next >= f->next_heartbeat_ms) {
            f->now_ms = f->next_heartbeat_ms;
            heartbeat_all(f);
            continue;
        }
        f->now_ms = next;
        while (f->n_events > 0 && f->events[0].at_ms <= f->now_ms) {
            sim_event e = heap_pop(f);
            if (scheduler_complete(f->sched, e.ticket, true, NULL) != 0)
                return -1;
            f->busy[e.agent]--;
            f->requests[e.agent]++;
            f->tokens[e.agent] += e.tokens;
            f->last_ms[e.agent] = f->now_ms;
            f->completed++;
        }
        if (dispatch_all(f) != 0)
            return -1;
    }
    return f->completed == f->submitted && scheduler_inflight(f->sched) == 0 &&
                   scheduler_queued(f->sched, SIM_MODEL) == 0
               ? 0
               : -1;
}

uint64_t sim_fleet_now_ms(const sim_fleet *f) { return f->now_ms; }
uint64_t sim_fleet_completed(const sim_fleet *f) { return f->completed; }
uint64_t sim_fleet_agent_requests(const sim_fleet *f, size_t i) { return f->requests[i]; }
uint64_t sim_fleet_agent_tokens(const sim_fleet *f, size_t i) { return f->tokens[i]; }
uint64_t sim_fleet_last_completion_ms(const sim_fleet *f, size_t i) { return f->last_ms[i]; }
