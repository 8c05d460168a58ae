/* The input format of fuzz_coordinator, shared with seeds_coord.c which writes seeds in it.
 * Byte 0 picks the coordinator's limits (fuzz_coordinator.c, config_of). Then a sequence of
 * steps, each an op byte: its low 3 bits the action, the rest the peer (FC_PEER_OF):
 *   FC_MSG      u16 length (little endian), then that many bytes: one envelope from the peer
 *   FC_CLOCK    1 byte b: the clock moves b*10 ms (b < 128) or (b-128) s, due timers run
 *   FC_CLOSE    the peer's connection closes (libzmq's DISCONNECTED event); its next message
 *               comes on a new connection
 *   FC_BUSY     the peer's queue toggles full (sends to it get EF_EBUSY)
 *   FC_REBIND   1 byte: the peer takes routing id FC_RIDS[b % FC_N_RIDS] on its next
 *               connection (refused while another live connection holds it)
 *   FC_REVOKE   the peer's key leaves its allowlist; a revocation sweep runs
 * Peers: agents a, b, c (keys agents/a..c), clients c1, c2, operator op, and a client key
 * that dials the agent endpoint (FC_STRAY). */
#ifndef EF_FUZZ_COORD_FORMAT_H
#define EF_FUZZ_COORD_FORMAT_H

enum { FC_MSG = 0, FC_CLOCK = 1, FC_CLOSE = 2, FC_BUSY = 3, FC_REBIND = 4, FC_REVOKE = 5 };
enum { FC_A = 0, FC_B, FC_C, FC_C1, FC_C2, FC_OP, FC_STRAY, FC_N_PEERS };

#define FC_OP(action, peer) ((unsigned char)((action) | ((peer) << 3)))
#define FC_ACTION_OF(op)    ((op)&7)
#define FC_PEER_OF(op)      (((op) >> 3) % FC_N_PEERS)

#define FC_N_RIDS 7
static const char *const FC_RIDS[FC_N_RIDS] = {"ra", "rb", "rc", "c1", "c2", "op", "rx"};
/* Each peer's first routing id (index into FC_RIDS). */
static const int FC_RID0[FC_N_PEERS] = {0, 1, 2, 3, 4, 5, 6};

#endif
