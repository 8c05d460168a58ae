/* The client side of bench_fleet_scale: an operator's status round trip, routed requests/s with
 * a window in flight, and a probe that sends one request after another during a reconnect
 * storm and keeps each one's latency. All on bench/coord_client.c's bare CURVE DEALER (or one
 * like it for the operator command). One thread; blocking calls with timeouts. */
#ifndef EF_BENCH_SCALE_PROBE_H
#define EF_BENCH_SCALE_PROBE_H

#include "keys.h"

#include <stddef.h>
#include <stdint.h>

/* ms for an OperatorCommand{STATUS} to come back, with *agents the agents it lists; -1 when no
 * reply came within 10 s. */
double scale_status_ms(const char *endpoint, const keys_pair *keys, const char *server_pub,
                       uint32_t *agents);

/* Requests/s routed to `model` with `window` in flight for `seconds` (Dones / elapsed). */
double scale_route_rate(const char *endpoint, const keys_pair *keys, const char *server_pub,
                        const char *model, int window, double seconds);

typedef struct scale_probe scale_probe;

scale_probe *scale_probe_new(const char *endpoint, const keys_pair *keys, const char *server_pub,
                             const char *model);
/* Waits up to wait_ms for the request in flight (sending one when none is); a request is
 * failed when it gets an Error or no Done within SCALE_PROBE_TIMEOUT_MS. */
void scale_probe_step(scale_probe *p, int wait_ms);
/* Requests completed or failed so far, and the latency percentiles of the completed ones. */
void scale_probe_stats(scale_probe *p, uint32_t *probes, uint32_t *failed, double *p50_ms,
                       double *p99_ms, double *max_ms);
/* Why requests failed: code 0 = no Done or Error within SCALE_PROBE_TIMEOUT_MS, else the
 * Error's EF_E* code, with the first message seen for it. Valid until the probe is destroyed. */
typedef struct {
    int32_t code;
    uint32_t count;
    char message[96];
} scale_probe_failure;
#define SCALE_PROBE_REASONS 8
size_t scale_probe_failures(const scale_probe *p, const scale_probe_failure **out);
void scale_probe_destroy(scale_probe **p_p);

#define SCALE_PROBE_TIMEOUT_MS 5000

#endif
