/* The agent's configuration: an INI file (parsed with libinih) and/or --model flags. Errors say
 * file:line and the key ("agent.ini:12: unknown key \"thread\""). Strings are owned by the
 * config. Example:
 *   [agent]        name, coordinator, server_key, key, heartbeat_ms, telemetry_ms,
 *                  drain_timeout_ms, log_level
 *   [model NAME]   path, ctx, slots, threads (0 = all CPUs), batch, chat_template,
 *                  backend (llama|simulated), tokens_per_s (simulated),
 *                  deterministic (true|false: greedy output independent of load) */
#ifndef EF_AGENT_CONFIG_H
#define EF_AGENT_CONFIG_H

#include "backend.h"
#include "errors.h"
#include "log.h"

#define AGENT_MAX_MODELS 16
/* Time running requests get on SIGTERM: under systemd's default 90 s stop timeout, and long
 * enough for a few hundred tokens on a small board. */
#define AGENT_DRAIN_TIMEOUT_MS 30000u

/* Where a model's settings came from, for checks made after loading (main.c validates each
 * chat_template against llama.cpp, which this pure parser does not link). */
typedef struct {
    int section_line;       /* line of its [model NAME]; 0 = from --model */
    int chat_template_line; /* line of its chat_template; 0 = none set in a file */
    int threads_set;        /* the file set threads (0 = all CPUs), so --threads leaves it */
} agent_model_origin;

typedef struct {
    char *name;                /* name to ask for; NULL = none (named after the key) */
    char *coordinator;         /* agent endpoint of the coordinator, "tcp://host:7701" */
    char *server_key;          /* coordinator's .pub file */
    char *key;                 /* this agent's .key file */
    uint32_t heartbeat_ms;     /* 0 = 1000 */
    uint32_t telemetry_ms;     /* telemetry sample interval; 0 = AGENT_TELEMETRY_DEFAULT_MS */
    uint32_t drain_timeout_ms; /* on SIGTERM: time running requests get to finish; the caller
                                  starts it at AGENT_DRAIN_TIMEOUT_MS */
    int has_log_level;
    log_level level;
    backend_params models[AGENT_MAX_MODELS];      /* numbers 0 = not set (defaults apply later) */
    agent_model_origin origins[AGENT_MAX_MODELS]; /* origins[i] is about models[i] */
    size_t n_models;
} agent_config;

/* Read path into c (adding to what is there). Only a regular file is read (a FIFO or device is
 * refused at once, never waited on). Empty values, a coordinator that is not tcp://HOST:PORT,
 * a key given twice in a section and a second [agent] are errors. Returns 0, or EF_ECONFIG /
 * EF_ENOENT with em saying file:line and what is wrong. */
int agent_config_load(agent_config *c, const char *path, ef_errmsg *em);

/* Add a model served from path; its name is the file name without directory and extension.
 * Returns 0 or EF_ECONFIG (too many models, duplicate name). */
int agent_config_add_model(agent_config *c, const char *path, backend_kind kind, ef_errmsg *em);

/* Fill numbers no one set: every model without its own ctx/slots/threads takes these (0 =
 * leave the backend's default; for threads, all online CPUs). A "threads = 0" in the file is
 * its own setting and stays. */
void agent_config_defaults(agent_config *c, uint32_t ctx, uint32_t slots, uint32_t threads);

void agent_config_free(agent_config *c);

#endif
