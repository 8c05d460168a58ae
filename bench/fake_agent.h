/* A minimal fake agent for the coordinator and gateway benches: a CURVE DEALER that registers
 * one model with n_slots slots (simulated = true), heartbeats, and answers every Request at once
 * with n_tokens one-token TokenChunks (at most the request's max_tokens) and a Done, so what is
 * measured around it is the coordinator and the links, not inference. Runs its own libuv loop on
 * the calling thread (the bench forks a process per fake agent) until SIGTERM or SIGINT. */
#ifndef EF_BENCH_FAKE_AGENT_H
#define EF_BENCH_FAKE_AGENT_H

#include <stdint.h>

typedef struct {
    const char *endpoint;   /* the coordinator's (or the bench's) agent ROUTER */
    const char *server_pub; /* its .pub file */
    const char *key;        /* this agent's .key file */
    const char *name;       /* routing id and agent name */
    const char *model;      /* model name it serves */
    uint32_t n_slots;
    uint32_t n_tokens; /* tokens per answer; 0 = 1 */
} fake_agent_params;

/* Returns 0 when stopped by a signal, or EF_E* when it could not start. */
int fake_agent_run(const fake_agent_params *p);

#endif
