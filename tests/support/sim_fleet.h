/* A simulated fleet for the scheduler's tests and benchmarks: simulated agents (per-slot speed,
 * slot count) registered in a real registry, routed by a real scheduler, driven by a fake clock.
 * Every dispatched request completes after tokens / speed simulated seconds; every simulated
 * second each agent heartbeats. No threads, no sockets, fully deterministic. */
#ifndef EF_TEST_SIM_FLEET_H
#define EF_TEST_SIM_FLEET_H

#include "scheduler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MODEL "simulated-model"

typedef struct {
    double speed;      /* tokens/s one request sees on this simulated agent (per slot) */
    uint32_t slots;    /* parallel requests */
    bool report_speed; /* heartbeats carry gen_tps = speed; false = never measured */
} sim_agent_spec;

typedef struct sim_fleet sim_fleet;

/* A fleet of n simulated agents ("simulated-<i>"), registered at simulated time 0, routed by a
 * scheduler with params sp (NULL = defaults, with the queue bound raised to max_requests and no
 * per-client cap).
 * Returns NULL on failure. */
sim_fleet *sim_fleet_new(const sim_agent_spec *agents, size_t n, const scheduler_params *sp);
void sim_fleet_destroy(sim_fleet **self_p);

/* Submits one request of `tokens` generation tokens at the current simulated time. Returns 0 or
 * the scheduler's error. */
int sim_fleet_submit(sim_fleet *self, uint32_t tokens);

/* Runs the simulated clock until nothing is queued or in flight. Returns 0, or -1 when the
 * books disagree (a request lost or dispatched to a full agent). */
int sim_fleet_run(sim_fleet *self);

uint64_t sim_fleet_now_ms(const sim_fleet *self);    /* simulated ms since start */
uint64_t sim_fleet_completed(const sim_fleet *self); /* requests completed, all agents */
uint64_t sim_fleet_agent_requests(const sim_fleet *self, size_t i);     /* completed on agent i */
uint64_t sim_fleet_agent_tokens(const sim_fleet *self, size_t i);       /* tokens generated on i */
uint64_t sim_fleet_last_completion_ms(const sim_fleet *self, size_t i); /* 0 = none */

#endif
