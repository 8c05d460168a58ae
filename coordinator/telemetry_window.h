/* The coordinator's rolling window of telemetry samples per device, pure logic: each agent's
 * samples as packed TelemetrySample bytes with their arrival time, the oldest dropped once older
 * than the window or beyond the per-agent count, and the latest decoded for readers (status,
 * /metrics). Memory is bounded by max_agents x max_samples x TWIN_SAMPLE_MAX. Keyed by agent
 * name, so a board's history outlives a reconnect. Times are an argument (monotonic ms); no
 * clock is read. Not thread-safe: the loop thread owns it. */
#ifndef EF_COORD_TELEMETRY_WINDOW_H
#define EF_COORD_TELEMETRY_WINDOW_H

#include "edgefleet.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define TWIN_SAMPLE_MAX 4096 /* packed bytes per sample: a bigger one is refused */

typedef struct twin twin;

typedef struct {
    uint32_t window_ms;   /* samples older than this are dropped; 0 = 600000 (10 minutes) */
    uint32_t max_samples; /* per agent; 0 = 600 */
    uint32_t max_agents;  /* agents with a window; 0 = 4096: beyond, a new one is refused */
} twin_params;

/* NULL on allocation failure; p NULL = defaults. */
twin *twin_new(const twin_params *p);
/* NULL-safe; sets *w_p = NULL. */
void twin_destroy(twin **w_p);
/* Keep one packed sample of agent `name` that arrived at now_ms (copied), dropping that agent's
 * samples that fell out of the window. Returns 0, EF_EINVAL (empty name, empty or oversize sample,
 * bytes that do not decode as a TelemetrySample), EF_EBUSY (max_agents windows exist), or
 * EF_ENOMEM. */
int twin_add(twin *w, const char *name, const uint8_t *packed, size_t len, uint64_t now_ms);
/* Drop every sample older than the window, and the windows left empty (agents gone that long).
 * Costs a look at every agent: call it once in a while, not per sample. */
void twin_prune(twin *w, uint64_t now_ms);
/* The latest sample of `name`, decoded (valid until the next twin_add or twin_forget for that
 * name); NULL when none. */
const Edgefleet__TelemetrySample *twin_latest(const twin *w, const char *name);
/* Drop an agent's window (evicted). */
void twin_forget(twin *w, const char *name);
/* Agents with a window: i in [0, twin_agents); their names. */
size_t twin_agents(const twin *w);
const char *twin_agent_name(const twin *w, size_t i);
/* The window of agent i, oldest first, its last `last` samples only (0 = all): calls
 * fn(packed, len, arrived_ms, user) per sample until fn returns non-zero. Returns how many
 * samples fn saw. */
size_t twin_each(const twin *w, size_t i, size_t last,
                 int (*fn)(const uint8_t *packed, size_t len, uint64_t arrived_ms, void *user),
                 void *user);

#endif
