/* edgefleet-agent's command line, parsed without starting anything so tests and fuzz_args can
 * call it. agent/agent_options.c */
#ifndef EF_AGENT_OPTIONS_H
#define EF_AGENT_OPTIONS_H

#include "agent_config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *config, *name, *coordinator, *server_key, *key;
    const char *models[AGENT_MAX_MODELS];
    size_t n_models;
    uint32_t slots, ctx, threads, heartbeat_ms, drain_timeout_ms;
    int has_drain_timeout;
    int simulated;
    double sim_tps;
} agent_options;

/* Fill o (zeroed by the caller) from argv with getopt_long (a caller parsing twice resets getopt
 * first); the strings point into argv. Prints usage on stdout for --help and a message on
 * stderr otherwise. Returns 0 to go on, 1 after --help, -1 on a bad argument (exit code 2).
 * Never exits. --log-level takes effect at once (log_set_level). */
int agent_options_parse(int argc, char **argv, agent_options *o);

#endif
