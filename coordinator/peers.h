/* The live connections on the coordinator's two ROUTERs, by routing id: which key each one holds
 * (the ZAP User-Id and the Z85 key its messages carry) and which TCP connection it is. Removing
 * a key's .pub refuses its next connection (ZAP reads the allowlist each time); this module makes
 * it cut the live ones too: every PEERS_SWEEP_MS the allowlists are read once, and a connection
 * whose key is gone is cut under libzmq, its agent dropped or its requests cancelled, within
 * PEERS_SWEEP_MS plus a loop turn. Loop thread only. */
#ifndef EF_COORD_PEERS_H
#define EF_COORD_PEERS_H

#include "transport.h"

#include <stddef.h>
#include <stdint.h>

typedef struct coord coord;

/* After libzmq reports a closed connection, its fd is checked every PEERS_CLOSE_CHECK_MS, at most
 * PEERS_CLOSE_CHECKS times, until it no longer carries the connection. */
#define PEERS_CLOSE_CHECK_MS 10u
#define PEERS_CLOSE_CHECKS   20
/* How often live connections are checked against the allowlists. */
#define PEERS_SWEEP_MS 1000u
/* The allowlists are read again only when a directory changed, or after this long (a key
 * edited in place leaves its directory's mtime alone). */
#define PEERS_FULL_SWEEP_MS 30000u
/* Connections remembered; beyond it the least recently heard from is forgotten (it is known
 * again at its next message). */
#define PEERS_MAX 16384u

typedef enum { PEERS_AGENTS = 0, PEERS_CLIENTS = 1 } peers_link;

typedef struct peers peers;

peers *peers_new(void);
void peers_destroy(peers **p_p);

/* Note a message that arrived on link from routing id (frame 0) with payload (frame 1).
 * Returns 0 to handle it, EF_EDENIED when the connection's key was revoked (drop it). */
int peers_seen(coord *c, peers_link link, zmq_msg_t *routing, zmq_msg_t *payload);
/* Both ROUTERs' tsock event callback: a closed connection is forgotten, and an agent whose
 * connection closed (a killed process's kernel closes it at once) leaves the fleet then, not
 * after its liveness window. */
void peers_on_event(tsock *s, uint16_t event, uint32_t value, void *user);
/* The coord's peers_timer callback (PEERS_CLOSE_CHECK_MS after a close was reported). */
void peers_on_timer(uv_timer_t *t);
/* Cut, under libzmq, every agent connection silent for longer than silent_ms on which no agent
 * is registered (the agents ROUTER sends no ZMTP PINGs, so a half-open link would otherwise stay
 * until TCP gives up). Walks from the least recently heard: O(cut), not O(connections). */
void peers_cut_silent(coord *c, uint64_t now_ms, uint64_t silent_ms);
/* Check every live connection's key against the allowlists now; cut the revoked ones. */
void peers_sweep(coord *c);
/* 1 when the connection on routing id `id` of `link` is one we know, not revoked, not closed,
 * and holds user_id's key; else 0. A routing id names a connection, never a key: after a
 * client leaves, another key may connect with the same id (a DEALER may choose its own), and
 * the first one's answer must not go to it. NULL peers: 1. */
int peers_holds(const peers *p, peers_link link, const uint8_t *id, size_t len,
                const char *user_id);
/* Cut the live connection of routing id on link (operator evict). 0, or EF_ENOENT when none is
 * known or it is gone already, EF_EIO. */
int peers_cut(coord *c, peers_link link, const uint8_t *routing_id, size_t len);
/* Connections known, for tests and status. */
size_t peers_count(const peers *p);

#endif
