/* fuzz_client_reply's input: a header byte (FC_MODE_* in its low 2 bits, the batch size and
 * callback behaviour above), then actions, each one byte FC_OP_* (modulo FC_N_OPS) and its
 * operand. Shared with seeds_edge.c. */
#ifndef EF_FUZZ_CLIENT_REPLY_H
#define EF_FUZZ_CLIENT_REPLY_H

enum { FC_MODE_GENERATE = 0, FC_MODE_CHAT, FC_MODE_BATCH, FC_MODE_OPERATOR, FC_MODE_ASYNC };

enum {
    FC_OP_FRAME = 0, /* u8 fixup, u16 LE length, bytes: one frame from the coordinator. Unless
                        fixup has bit 7, a 16-byte id in it (request, batch or command id) is
                        replaced by the id the library sent (fixup & 0x7f) sends ago, 0 = last */
    FC_OP_TIMEOUT,   /* the wait passes with nothing received */
    FC_OP_DROP,      /* the link drops; u8: even = it comes back when waited for, odd = not */
    FC_OP_CANCEL,    /* ef_client_cancel from another thread */
    FC_OP_CLOCK,     /* u8 n: n*10 ms pass */
    FC_N_OPS
};

/* Header: batch items = ((h >> 2) & 3) + 1; a callback returns nonzero (stop) at its call
 * number (h >> 4) when that is nonzero. FC_MODE_OPERATOR with bit 7 set is FC_MODE_ASYNC:
 * ((h >> 2) & 3) + 1 async calls at once on one client (after the header a flags byte: call 0
 * is a batch of (flags & 3) items when that is nonzero, else a generate; with flags bit 2 the
 * token callback that would stop its call destroys the client instead; the others alternate
 * chat and generate), with ops driving the
 * loop's events instead of a blocking receive; then FC_OP_DROP's operand is even = the link
 * comes back at once, odd = it stays down (until a later even drop), FC_OP_CANCEL's operand
 * picks the call ef_call_cancel is called on, and bit 6 destroys the client at the end of the
 * input instead of letting the calls time out; a token callback returns nonzero at its call
 * number ((h >> 4) & 3) when that is nonzero. */
#define FC_ASYNC_BIT                    0x80
#define FC_ASYNC_DESTROY                0x40
#define FC_HEADER(mode, items, stop_at) ((mode) | (((items)-1) << 2) | ((stop_at) << 4))

#endif
