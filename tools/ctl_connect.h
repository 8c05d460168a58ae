/* What every edgefleetctl command that talks to a coordinator shares: the --coordinator,
 * --server-key, --key, --telemetry, --timeout-ms and --json options (defaults from
 * $EDGEFLEET_COORDINATOR, $EDGEFLEET_SERVER_KEY, $EDGEFLEET_KEY, $EDGEFLEET_TELEMETRY, else
 * ~/.config/edgefleet/ctl.ini's [ctl] coordinator, server_key, key, telemetry) and the
 * libedgefleet client made from them. Flags win over the environment, which wins over the file. */
#ifndef EF_CTL_CONNECT_H
#define EF_CTL_CONNECT_H

#include "ctl.h"
#include "edgefleet.h"

#include <getopt.h>
#include <stdio.h>

/* getopt_long codes of the common options; commands use codes below 256 for their own. */
enum {
    CTL_OPT_COORDINATOR = 256,
    CTL_OPT_SERVER_KEY,
    CTL_OPT_KEY,
    CTL_OPT_TIMEOUT,
    CTL_OPT_TELEMETRY,
    CTL_OPT_JSON
};

#define CTL_CONNECT_LONGOPTS                                      \
    {"coordinator", required_argument, 0, CTL_OPT_COORDINATOR},   \
        {"server-key", required_argument, 0, CTL_OPT_SERVER_KEY}, \
        {"key", required_argument, 0, CTL_OPT_KEY},               \
        {"telemetry", required_argument, 0, CTL_OPT_TELEMETRY},   \
        {"json", no_argument, 0, CTL_OPT_JSON},                   \
    {                                                             \
        "timeout-ms", required_argument, 0, CTL_OPT_TIMEOUT       \
    }

#define CTL_CONNECT_USAGE                                                                     \
    "  --coordinator ENDPOINT   client endpoint (default $EDGEFLEET_COORDINATOR, else\n"      \
    "                           tcp://127.0.0.1:7702)\n"                                      \
    "  --server-key FILE        the coordinator's .pub (default $EDGEFLEET_SERVER_KEY)\n"     \
    "  --key FILE               this client's .key (default $EDGEFLEET_KEY)\n"                \
    "  --telemetry ENDPOINT     telemetry endpoint (default $EDGEFLEET_TELEMETRY, else the\n" \
    "                           coordinator's port + 1)\n"                                    \
    "  --json                   print JSON (one document; JSON lines for streams)\n"          \
    "  defaults also from ~/.config/edgefleet/ctl.ini: [ctl] coordinator, server_key, key,\n" \
    "  telemetry\n"                                                                           \
    "  --timeout-ms N           give up after N ms, waiting for the connection and for the\n" \
    "                           answer (default: connect 5000; answer none for generate,\n"   \
    "                           10000 else)\n" CTL_EXIT_USAGE

typedef struct {
    const char *coordinator;
    const char *server_key;
    const char *key;
    const char *telemetry; /* NULL = the coordinator's port + 1 */
    unsigned timeout_ms;
    int json;
} ctl_connect_opts;

/* Defaults from the environment. */
void ctl_connect_defaults(ctl_connect_opts *o);

/* Take a common option (ch is its getopt code). Returns 1 when taken, 0 when ch is not one,
 * -1 on a bad value (message printed). */
int ctl_connect_option(ctl_connect_opts *o, int ch, const char *arg, const char *cmd);

/* Parse argv for a command whose only options are -h/--help and the common ones, and which
 * takes exactly n_args arguments (left at argv[optind..] on return). co starts from
 * ctl_connect_defaults. optstring is getopt's: "h", or "+h" to stop at the first argument.
 * usage(out, cmd) prints the command's usage. Returns -1 to go on, else the exit code: CTL_OK
 * after help on stdout, CTL_BAD_ARG after a message on stderr. */
int ctl_connect_parse(int argc, char **argv, const char *optstring, int n_args, const char *cmd,
                      ctl_connect_opts *co, int (*usage)(FILE *out, const char *cmd));

/* Make the client and connect (ef_client_open; --timeout-ms bounds the wait). Returns CTL_OK
 * with *out set, or the exit code (CTL_BAD_ARG, CTL_UNREACHABLE, CTL_REFUSED, CTL_FAILED)
 * after printing "edgefleetctl CMD: <the cause>" on stderr; *out is NULL then. */
int ctl_connect(const ctl_connect_opts *o, const char *cmd, ef_client_t **out);

/* Print "edgefleetctl CMD: <why> (EF_E...)" for a failed call. Returns its exit code. */
int ctl_report_failure(const char *cmd, ef_client_t *client, int rc);

#endif
