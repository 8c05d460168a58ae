/* fuzz_agent's input: a sequence of actions, each one byte FA_OP_* (taken modulo FA_N_OPS)
 * and its operand. Shared with seeds_edge.c, which writes valid sequences. */
#ifndef EF_FUZZ_AGENT_H
#define EF_FUZZ_AGENT_H

enum {
    FA_OP_FRAME = 0, /* u16 little-endian length, then that many bytes: one frame from the
                        coordinator, through codec_decode into the uplink (lost while the
                        link is down) */
    FA_OP_RUN,       /* u8 n: n%32+1 engine turns, 1 ms of clock each, replies sent after each */
    FA_OP_TICK,      /* u8 n: advance the clock n*20 ms, then the uplink's tick (heartbeat,
                        liveness, reconnect requests, outbox pruning) */
    FA_OP_RECONNECT, /* the link drops (if up) and is dialled again at once (Register again) */
    FA_OP_STOP,      /* SIGTERM: graceful stop (drain, then leave); the input ends when done */
    FA_N_OPS
};

/* The models the fuzzed agent serves (simulated backend). */
#define FA_MODEL_A "sim-a" /* 4 slots */
#define FA_MODEL_B "sim-b" /* 1 slot */

#endif
