/* A transport for fuzz targets: the API of src/transport.h (and the zap_snapshot part of
 * src/zap.h, and src/clock.h) with no ZeroMQ sockets, no files and a clock the target moves.
 * Every frame "sent" is checked against the socket's size limit, decoded (a frame the daemon
 * sends that does not decode is a bug: CHECK), shown to the target's hook and freed. Whether a
 * peer takes a frame (0), is full (EF_EBUSY) or gone (EF_ENOTCONN) is the target's answer.
 * Link it instead of src/transport*.c, src/zap.c and src/clock.c. Single-threaded. */
#ifndef EF_STUB_TRANSPORT_H
#define EF_STUB_TRANSPORT_H

#include "fuzz_check.h"
#include "transport.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    /* May the frame go to peer on s? 0, EF_EBUSY or EF_ENOTCONN. NULL = always 0. */
    int (*accept)(const tsock *s, const uint8_t *peer, size_t peer_len, void *user);
    /* A frame that went out (accepted), decoded. */
    void (*sent)(const tsock *s, const uint8_t *peer, size_t peer_len, const envelope *env,
                 void *user);
    /* 1 while the connection with this fd is up (tsock_conn_same); NULL = never. */
    int (*conn_up)(int fd, void *user);
    /* tsock_conn_cut: the target closes the connection (and reports it). */
    void (*conn_cut)(int fd, void *user);
    /* zap_snapshot_has: is this key still in its allowlist under user_id? NULL = yes. */
    int (*allowed)(const char *key_z85, const char *user_id, void *user);
    void *user;
} stub_hooks;

void stub_set_hooks(const stub_hooks *h);
/* Who tsock_peer_of says sent the frame being handled. Strings must outlive the call. */
void stub_set_sender(const char *user_id, const char *key, int fd);
/* The ZeroMQ socket type of a stub socket (ZMQ_ROUTER, ZMQ_PUB), and its zap domain. */
int stub_sock_type(const tsock *s);
const char *stub_sock_domain(const tsock *s);
/* Sockets still open (for leak checks). */
int stub_sockets_open(void);

/* The clock (clock.h) starts at a fixed point; only this moves it. */
void stub_clock_reset(void);
void stub_clock_advance(uint64_t ms);

#endif
