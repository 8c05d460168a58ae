/* edgefleetctl status: print the fleet as the coordinator sees it: each agent with its models,
 * slots busy/total, tokens/s, draining, when it was last heard from, and each model's queue.
 * Needs an operator key. */
#include "ctl.h"
#include "ctl_args.h"
#include "ctl_connect.h"

#include <string.h>

static int status_usage(FILE *out, const char *cmd)
{
    fprintf(out, "usage: edgefleetctl %s [options]\n" CTL_CONNECT_USAGE, cmd);
    return CTL_BAD_ARG;
}

static void print_agents(const ef_fleet_status *st)
{
    printf("%-20s %-16s %-24s %9s %8s %-9s %7s %7s\n", "AGENT", "HOST", "MODEL", "SLOTS", "TOK/S",
           "STATE", "SEEN", "SERVED");
    for (size_t i = 0; i < st->n_agents; i++) {
        const ef_agent_status *a = &st->agents[i];
        const char *state = a->draining ? "draining" : a->simulated ? "simulated" : "ready";
        for (size_t m = 0; m < (a->n_models ? a->n_models : 1); m++) {
            char slots[32] = "-";
            const char *model = "-";
            if (a->n_models) {
                snprintf(slots, sizeof slots, "%u/%u", a->models[m].busy_slots,
                         a->models[m].total_slots);
                model = a->models[m].model;
            }
            printf("%-20s %-16s %-24s %9s %8.1f %-9s %6.1fs %7llu\n", m ? "" : a->name,
                   m ? "" : a->hostname, model, slots, a->gen_tps, state,
                   a->last_seen_ms_ago / 1000.0, (unsigned long long)a->served);
        }
    }
    if (st->n_agents == 0)
        printf("(no agents registered)\n");
}

static void print_queues(const ef_fleet_status *st)
{
    printf("\n%-24s %8s %8s\n", "QUEUE (MODEL)", "WAITING", "CAPACITY");
    for (size_t i = 0; i < st->n_queues; i++)
        printf("%-24s %8u %8u\n", st->queues[i].model, st->queues[i].queued,
               st->queues[i].capacity);
    if (st->n_queues == 0)
        printf("(no queues yet)\n");
}

int ctl_status_parse(int argc, char **argv, ctl_connect_opts *co)
{
    return ctl_connect_parse(argc, argv, "+h", 0, "status", co, status_usage);
}

int ctl_status(int argc, char **argv)
{
    ctl_connect_opts co;
    int rc = ctl_status_parse(argc, argv, &co);
    if (rc >= 0)
        return rc;
    ef_client_t *client = NULL;
    int code = ctl_connect(&co, "status", &client);
    if (code != CTL_OK)
        return code;
    ef_fleet_status *st = NULL;
    rc = ef_client_status(client, &st);
    if (rc == 0) {
        print_agents(st);
        print_queues(st);
    } else {
        code = ctl_report_failure("status", client, rc);
    }
    ef_fleet_status_free(&st);
    ef_client_destroy(&client);
    return code;
}
