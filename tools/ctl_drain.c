/* edgefleetctl drain AGENT / undrain AGENT: stop (or resume) giving an agent new work; what it
 * runs finishes. Needs an operator key. */
#include "ctl.h"
#include "ctl_connect.h"

#include <string.h>

static int drain_usage(FILE *out, const char *cmd)
{
    fprintf(out, "usage: edgefleetctl %s AGENT [options]\n" CTL_CONNECT_USAGE, cmd);
    return CTL_BAD_ARG;
}

static int run(int argc, char **argv, int enable)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'}, CTL_CONNECT_LONGOPTS, {0, 0, 0, 0}};
    const char *cmd = enable ? "drain" : "undrain";
    ctl_connect_opts co;
    ctl_connect_defaults(&co);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = ctl_connect_option(&co, ch, optarg, cmd);
        if (taken < 0)
            return CTL_BAD_ARG;
        if (taken)
            continue;
        if (ch == 'h') {
            drain_usage(stdout, cmd);
            return CTL_OK;
        }
        return drain_usage(stderr, cmd);
    }
    if (optind != argc - 1)
        return drain_usage(stderr, cmd);
    const char *agent = argv[optind];
    ef_client_t *client = ctl_connect(&co, cmd);
    if (!client)
        return CTL_BAD_ARG;
    int rc = ef_client_drain(client, agent, enable);
    if (rc == 0)
        printf("agent %s %s\n", agent,
               enable ? "draining: no new work, running requests finish"
                      : "undrained: takes new work");
    else
        ctl_report_failure(cmd, client, rc);
    ef_client_destroy(&client);
    return rc ? CTL_FAILED : CTL_OK;
}

int ctl_drain(int argc, char **argv) { return run(argc, argv, 1); }
int ctl_undrain(int argc, char **argv) { return run(argc, argv, 0); }
