/* fuzz_agent's stand-in for the transport (src/transport.c is not linked): tsock_new makes a
 * token socket, and every frame the agent sends is decoded and checked here instead of going to
 * ZeroMQ: it must decode, fit the link's limit, be a message an agent sends, and keep each
 * request's stream whole (no gap in TokenChunk.seq). */
#ifndef EF_FUZZ_AGENT_LINK_STUB_H
#define EF_FUZZ_AGENT_LINK_STUB_H

#include <stddef.h>
#include <stdint.h>

/* Forget what was sent (call at the start of every input). */
void agent_stub_reset(void);
/* The coordinator sent a Request (16-byte id) resuming after n_resume tokens: its stream may
 * start there. */
void agent_stub_request(const uint8_t *id, uint32_t attempt, size_t n_resume);
/* Sockets made and not destroyed: 0 or 1 (one uplink). */
int agent_stub_open_sockets(void);
/* Frames sent since the reset, and of those Registers. */
size_t agent_stub_frames(void);
size_t agent_stub_registers(void);
/* Requests that got a Done or an Error since the reset. */
size_t agent_stub_ended(void);

#endif
