/* edgefleetctl sub-commands. Each lives in its own tools/ctl_<name>.c and is listed once in the
 * table in edgefleetctl.c. A command gets argv after its own name (argv[0] is the command name)
 * and returns the process exit code (CTL_*). It prints its own errors to stderr. */
#ifndef EF_CTL_H
#define EF_CTL_H

#include <stdio.h>

/* Exit codes, told apart so a script knows what to fix (printed by --help, CTL_EXIT_USAGE). */
#define CTL_OK          0
#define CTL_FAILED      1 /* the request or command failed */
#define CTL_BAD_ARG     2 /* bad arguments, key file or endpoint string */
#define CTL_UNREACHABLE 3 /* no coordinator answers at the endpoint (or the link dropped) */
#define CTL_REFUSED                                                       \
    4 /* the coordinator refused us: handshake failed (wrong server key), \
         key not in its allowlist, or not an operator key */

#define CTL_EXIT_USAGE                                                                      \
    "exit codes: 0 ok; 1 the request failed; 2 bad arguments, key file or endpoint;\n"      \
    "  3 nothing answers at the coordinator endpoint; 4 the coordinator refused this key\n" \
    "  (CURVE handshake failed: wrong server key or key not allowed; or not an operator key)\n"

typedef struct {
    const char *name;
    const char *synopsis; /* "keygen NAME [--dir DIR]" for the usage text */
    const char *summary;  /* one line */
    int (*run)(int argc, char **argv);
} ctl_command;

/* keygen NAME [--dir DIR]: write DIR/NAME.key (0600) and DIR/NAME.pub. tools/ctl_keygen.c */
int ctl_keygen(int argc, char **argv);

/* provision BOARD... [--out DIR] [--etc DIR] [--coordinator EP] [--model PATH]: a bundle per
 * board and its key admitted. tools/ctl_provision.c */
int ctl_provision(int argc, char **argv);

/* generate --model M [...] "prompt": stream an answer from the fleet. tools/ctl_generate.c */
int ctl_generate(int argc, char **argv);
/* status, agents, models, evict AGENT: the fleet as the coordinator sees it (operator key;
 * models for client keys too). tools/ctl_fleet.c */
int ctl_status(int argc, char **argv);
int ctl_agents(int argc, char **argv);
int ctl_models(int argc, char **argv);
int ctl_evict(int argc, char **argv);
/* top, telemetry: the telemetry stream, live per device or as JSON lines. tools/ctl_top.c */
int ctl_top(int argc, char **argv);
int ctl_telemetry(int argc, char **argv);
/* keys list|add|revoke: the coordinator's allowlist files. tools/ctl_keys.c */
int ctl_keys(int argc, char **argv);
/* chat --model M: an interactive conversation (libedit). tools/ctl_chat.c */
int ctl_chat(int argc, char **argv);
/* drain AGENT / undrain AGENT (operator key). tools/ctl_drain.c */
int ctl_drain(int argc, char **argv);
int ctl_undrain(int argc, char **argv);

#endif
