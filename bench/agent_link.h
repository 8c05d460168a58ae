/* The bench's side of one agent link: a CURVE ROUTER on loopback that behaves as the
 * coordinator would (PROTOCOL.md): it admits the agent's key, answers Register, heartbeats,
 * sends Request envelopes and timestamps every TokenChunk and the Done as they arrive.
 * Everything runs on the link's own libuv loop, driven from the caller's thread by the wait
 * functions; nothing runs between calls. */
#ifndef EF_BENCH_AGENT_LINK_H
#define EF_BENCH_AGENT_LINK_H

#include "errors.h"

#include <stddef.h>
#include <stdint.h>

typedef struct agent_link agent_link;

/* One request as the bench saw it. Times are CLOCK_MONOTONIC ns taken on arrival. */
typedef struct {
    uint8_t id[16];
    uint64_t t_send_ns, t_first_ns, t_done_ns;
    uint64_t *token_ns; /* arrival time of token i (its chunk's arrival), max_tokens entries */
    uint32_t max_tokens, n_tokens;
    int done;  /* 1 when Done or Error arrived */
    int error; /* 0, or the EF_E* code of an Error */
    uint32_t prompt_tokens, prompt_evaluated, completion_tokens;
    double prompt_ms, generation_ms; /* Done.timings */
} link_request;

/* Bind a ROUTER on tcp://127.0.0.1:<free port> with fresh keys in key_dir (which must exist and
 * be empty): key_dir/coordinator.{key,pub} for the ROUTER, key_dir/agent.{key,pub} for the
 * agent, and key_dir/allow/agent.pub as the allowlist. NULL on failure, with em saying why. */
agent_link *agent_link_new(const char *key_dir, ef_errmsg *em);
void agent_link_destroy(agent_link **l_p);

/* "tcp://127.0.0.1:PORT", valid until destroy. */
const char *agent_link_endpoint(const agent_link *l);

/* Run the loop until an agent registers (0) or timeout_ms passes (EF_ETIMEDOUT). */
int agent_link_wait_register(agent_link *l, int timeout_ms);
/* The first model the agent registered; valid until destroy. */
const char *agent_link_model(const agent_link *l);

/* Send one greedy Request for prompt (raw text) to the registered agent; r is filled as replies
 * arrive and must stay valid until it is done. Returns 0, EF_ENOMEM, or a send error. */
int agent_link_submit(agent_link *l, link_request *r, const char *prompt, uint32_t max_tokens);

/* Run the loop until every request in rs[0..n) is done (0) or timeout_ms passes. */
int agent_link_wait_done(agent_link *l, link_request **rs, size_t n, int timeout_ms);

/* Turn the loop once without blocking: heartbeats keep flowing while the bench does something
 * else (a baseline run), so the agent never takes us for dead. */
void agent_link_pump(agent_link *l);

void link_request_free(link_request *r);

#endif
