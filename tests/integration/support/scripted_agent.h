/* A scripted agent for coordinator-only tests: a thread speaking the agent side of PROTOCOL.md
 * over a real CURVE DEALER (Register, heartbeats with ModelLoad, TokenChunk/Done, Cancel,
 * Drain), with behaviour the test chooses: answer each request with N tokens, hold requests
 * until released, or fall silent mid-stream like a killed board. No model runs: it tests the
 * coordinator's routing, not inference (the real agent is tested with the real model). */
#ifndef EF_TEST_SCRIPTED_AGENT_H
#define EF_TEST_SCRIPTED_AGENT_H

#include "keys.h"

#include <stdint.h>

typedef struct scripted_agent scripted_agent;

typedef struct {
    const char *name;     /* name to ask for ("" or NULL: none; the fleet names it after its
                             key, and refuses any other name) */
    const char *key_file; /* its .key */
    const char *server_public;
    const char *endpoint; /* coordinator agents endpoint */
    const char *model;
    uint32_t slots;
    uint32_t heartbeat_ms;
    uint32_t tokens;     /* tokens per answer; 0 = hold every request until released */
    uint32_t token_ms;   /* delay between tokens */
    uint32_t burst;      /* chunks sent each time one is due (a fast board); 0 = 1 */
    uint32_t text_bytes; /* each token's text padded to this many bytes (at most 4096) */
    uint32_t die_after;  /* > 0: after sending this many tokens of a request, fall silent */
    uint32_t max_tokens; /* > 0: a request asking for more is answered Error{EF_ECONTEXT}, as a
                            real agent answers one that does not fit its context */
} sa_params;

scripted_agent *sa_start(const sa_params *p);
void sa_stop(scripted_agent **sa_p);

/* 1 accepted, -1 refused, 0 no answer yet; waits up to timeout_ms for a change from 0. */
int sa_wait_registered(scripted_agent *sa, int timeout_ms);
/* Requests received so far. */
int sa_requests(scripted_agent *sa);
/* Requests answered with Done. */
int sa_served(scripted_agent *sa);
/* Last Drain received: -1 none, 0 undrain, 1 drain. */
int sa_drain_state(scripted_agent *sa);
/* Answer the held requests (tokens = 3) from now on. */
void sa_release(scripted_agent *sa);
/* Stop sending anything (heartbeats included), as a killed process would. */
void sa_silence(scripted_agent *sa);

#endif
