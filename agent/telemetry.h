/* The agent's telemetry: every interval (agent.ini telemetry_ms, separate from the heartbeat)
 * one TelemetrySample to the coordinator with what the interval's replies carried (sampler.h),
 * the engine's load per model, and the board's memory, CPU, temperature and the agent's uptime.
 * Loop thread only. */
#ifndef EF_AGENT_TELEMETRY_H
#define EF_AGENT_TELEMETRY_H

#include "engine.h"
#include "uplink.h"

#include <uv.h>

#define AGENT_TELEMETRY_DEFAULT_MS 5000

typedef struct agent_telemetry agent_telemetry;

/* Start sampling on loop: counts the uplink's engine events (uplink_observe) and sends a sample
 * every interval_ms (0 = AGENT_TELEMETRY_DEFAULT_MS). NULL on allocation failure. */
agent_telemetry *agent_telemetry_new(uv_loop_t *loop, engine *e, uplink *u, uint32_t interval_ms,
                                     int simulated);
/* Stop the timer; memory goes in its close callback, so run the loop once more afterwards.
 * NULL-safe; sets *t_p = NULL. Call before the uplink is destroyed. */
void agent_telemetry_destroy(agent_telemetry **t_p);

#endif
