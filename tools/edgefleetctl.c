/* edgefleetctl: the operator's CLI. One sub-command per fleet task, each in its own
 * tools/ctl_<name>.c (declared in ctl.h); this file only dispatches. */
#include "ctl.h"
#include "edgefleet.h"

#include <stdio.h>
#include <string.h>

/* Add a command: one line here, its declaration in ctl.h, its ctl_<name>.c in tools/. */
static const ctl_command commands[] = {
    {"keygen", "keygen NAME [--dir DIR]", "make NAME.key (0600) and NAME.pub in DIR (default .)",
     ctl_keygen},
    {"provision", "provision BOARD... [--out DIR]",
     "per-board bundle (key, coordinator.pub, agent.ini); admit the board", ctl_provision},
    {"generate", "generate --model M [...] PROMPT", "stream an answer from the fleet",
     ctl_generate},
    {"chat", "chat --model M", "talk with a model, turn by turn (one session)", ctl_chat},
    {"status", "status", "the fleet's slots, tokens/s and queues (operator key)", ctl_status},
    {"agents", "agents", "one row per board: state, slots, tokens/s, TTFT, queue, temperature",
     ctl_agents},
    {"models", "models", "the models the fleet serves (any key)", ctl_models},
    {"top", "top [--sort KEY]", "live view, one row per board and the fleet total", ctl_top},
    {"telemetry", "telemetry [--agent A]", "the telemetry stream as JSON lines", ctl_telemetry},
    {"drain", "drain AGENT", "give AGENT no new work; it finishes what it has", ctl_drain},
    {"undrain", "undrain AGENT", "let AGENT take new work again", ctl_undrain},
    {"evict", "evict AGENT", "drop AGENT's registration and cut its link", ctl_evict},
    {"keys", "keys list|add|revoke", "the coordinator's allowlists (on its host)", ctl_keys},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out,
            "usage: edgefleetctl COMMAND [ARGS] (COMMAND --help for its options)\n"
            "commands:\n"
            "  %-30s %s\n",
            "help, --version", "this text; the version");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-30s %s\n", commands[i].synopsis, commands[i].summary);
    fputs(CTL_EXIT_USAGE, out);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("edgefleetctl %s\n", ef_version());
        return CTL_OK;
    }
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_BAD_ARG : CTL_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "edgefleetctl: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return CTL_BAD_ARG;
}
