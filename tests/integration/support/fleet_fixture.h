/* A coordinator process on loopback for integration tests: a temp dir with its key pair and
 * the agents/, clients/, operators/ allowlists, free ports, start/stop/restart, and clients made
 * from keys in that dir. fx_teardown kills what was started and removes the dir. */
#ifndef EF_TEST_FLEET_FIXTURE_H
#define EF_TEST_FLEET_FIXTURE_H

#include "edgefleet.h"
#include "keys.h"

#include <sys/types.h>

typedef struct {
    char dir[256];   /* temp dir */
    char keys[320];  /* dir/keys: every NAME.key and NAME.pub */
    char allow[320]; /* dir/allow */
    char log[320];   /* the coordinator's log (appended across restarts) */
    char agents_ep[64], clients_ep[64], telemetry_ep[64];
    keys_pair coord_keys;
    pid_t coord_pid;
    int orphan_grace_ms;  /* > 0: passed as --orphan-grace-ms; 0: the coordinator's default */
    const char *extra[8]; /* more coordinator options, NULL-terminated (e.g. "--client-max", "4") */
} fleet_fixture;

/* Temp dir, coordinator key, allowlist dirs, three free ports. 0 or -1. */
int fx_setup(fleet_fixture *f);
/* Kill the coordinator if running, remove the dir. */
void fx_teardown(fleet_fixture *f);

/* Make keys/NAME.{key,pub}; copy the .pub into allow/SUB/ unless sub is NULL. 0 or -1. */
int fx_add_key(fleet_fixture *f, const char *name, const char *sub, keys_pair *out);
/* keys/NAME.key path into out. */
void fx_key_path(const fleet_fixture *f, const char *name, const char *ext, char *out, size_t cap);

/* Start edgefleet-coordinator with --heartbeat-ms hb_ms --liveness liveness --queue queue,
 * wait until it listens. 0 or -1. */
int fx_start_coordinator(fleet_fixture *f, int hb_ms, int liveness, int queue);
/* SIGTERM it and wait. Returns its exit status. */
int fx_stop_coordinator(fleet_fixture *f);

/* A client with keys/NAME.key (NULL on failure); request timeout in ms (0 = none). */
ef_client_t *fx_client(const fleet_fixture *f, const char *name, uint32_t request_timeout_ms);

/* Poll the fleet status (with operator key `op`) until `n` agents are registered, up to
 * timeout_ms. Returns the number seen last (or -1 on error). */
int fx_wait_agents(const fleet_fixture *f, const char *op, size_t n, int timeout_ms);

/* The number in the name of the first agent with a busy slot now (the fleet status with
 * operator key `op`; names scanned with fmt, e.g. "board%d"), or -1. */
int fx_busy_agent(const fleet_fixture *f, const char *op, const char *fmt);

#endif
