/* A light fleet for scale runs: many harness agents in one process, each a CURVE DEALER with its
 * own key on one libzmq context, speaking the real agent protocol (PROTOCOL.md: Register with a
 * boot id, Heartbeat every interval with its ModelLoad, Register again when the coordinator says
 * it does not know the link, every Request answered at once with one TokenChunk and a Done).
 * No inference and no libuv: one zmq_poll loop over every socket, so a box measures the
 * coordinator and not the harness. Runs in the calling (forked) process until told to quit;
 * it reports counts on one pipe and takes commands on another. Single-threaded. */
#ifndef EF_BENCH_FLEET_HARNESS_H
#define EF_BENCH_FLEET_HARNESS_H

#include "keys.h"

#include <stddef.h>
#include <stdint.h>

/* Commands, one byte each on control_fd. */
#define HARNESS_CMD_RESET   'R' /* the coordinator restarted: count registrations from zero */
#define HARNESS_CMD_SILENCE 'S' /* stop heartbeating and answering (the link stays up) */
#define HARNESS_CMD_RESUME  'H' /* heartbeat again (the coordinator then asks for Register) */
#define HARNESS_CMD_QUIT    'Q'

typedef struct {
    const char *endpoint;      /* the coordinator's agent ROUTER */
    const char *server_public; /* its Z85 public key */
    const keys_pair *keys;     /* [n]: one key per harness agent */
    size_t n;
    const char *model;     /* the one model every harness agent serves */
    uint32_t n_slots;      /* slots declared per agent */
    uint32_t heartbeat_ms; /* 0 = 1000 (the protocol's default) */
    int zmtp_ping;         /* 1 = ZMTP PINGs every 2 s as agents before the scale work sent */
    int report_fd;         /* harness_report records are written here as counts change */
    int control_fd;        /* HARNESS_CMD_* bytes are read from here */
} harness_params;

/* What a harness process says to its parent, at most every HARNESS_REPORT_MS and at each change. */
typedef struct {
    uint32_t registered; /* agents whose Register was accepted since the last reset */
    uint32_t refused;    /* Registered{accepted = false} replies since the last reset */
    uint64_t answered;   /* requests answered, all time */
    uint32_t epoch;      /* resets taken so far: a report from before the last reset is stale */
} harness_report;

#define HARNESS_REPORT_MS 50

/* Runs the harness until HARNESS_CMD_QUIT or its control pipe closes. Returns 0, or EF_E* when
 * it could not start (sockets, file descriptors). */
int harness_run(const harness_params *p);

#endif
