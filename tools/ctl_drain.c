/* edgefleetctl drain AGENT / undrain AGENT: stop (or resume) giving an agent new work; what it
 * runs finishes. Needs an operator key. */
#include "ctl.h"
#include "ctl_args.h"
#include "ctl_connect.h"
#include "ctl_json.h"

#include <string.h>

static int drain_usage(FILE *out, const char *cmd)
{
    fprintf(out, "usage: edgefleetctl %s AGENT [options]\n" CTL_CONNECT_USAGE, cmd);
    return CTL_BAD_ARG;
}

int ctl_drain_parse(int argc, char **argv, int enable, ctl_connect_opts *co)
{
    return ctl_connect_parse(argc, argv, "h", 1, enable ? "drain" : "undrain", co, drain_usage);
}

static int run(int argc, char **argv, int enable)
{
    const char *cmd = enable ? "drain" : "undrain";
    ctl_connect_opts co;
    int rc = ctl_drain_parse(argc, argv, enable, &co);
    if (rc >= 0)
        return rc;
    const char *agent = argv[optind];
    ef_client_t *client = NULL;
    int code = ctl_connect(&co, cmd, &client);
    if (code != CTL_OK)
        return code;
    rc = ef_client_drain(client, agent, enable);
    if (rc == 0 && co.json) {
        cJSON *j = cJSON_CreateObject();
        if (j) {
            cJSON_AddStringToObject(j, "agent", agent);
            cJSON_AddStringToObject(j, "result", enable ? "draining" : "undrained");
        }
        code = ctl_json_print(j, 0) == 0 ? CTL_OK : CTL_FAILED;
    } else if (rc == 0)
        printf("agent %s %s\n", agent,
               enable ? "draining: no new work, running requests finish"
                      : "undrained: takes new work");
    else
        code = ctl_report_failure(cmd, client, rc);
    ef_client_destroy(&client);
    return code;
}

int ctl_drain(int argc, char **argv) { return run(argc, argv, 1); }
int ctl_undrain(int argc, char **argv) { return run(argc, argv, 0); }
