/* edgefleet-coordinator: the fleet coordinator: registers agents and routes requests.
 * Thin main: parse options, wire the loop, run. (Serving arrives with its own issue.) */
#include "log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: edgefleet-coordinator [--log-level LEVEL] [--help]\n"
                 "  the fleet coordinator: registers agents and routes requests\n"
                 "  --log-level debug|info|warn|error   (default info)\n"
                 "exit codes: 0 stopped by signal, 1 runtime failure, 2 bad arguments or config\n");
}

static void on_signal(uv_signal_t *h, int signum)
{
    log_info("signal %d: stopping", signum);
    uv_stop(h->loop);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'}, {"log-level", required_argument, 0, 'l'}, {0, 0, 0, 0}};
    log_set_component("coordinator");
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        log_level lvl;
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'l':
            if (log_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "edgefleet-coordinator: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            log_set_level(lvl);
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_signal_t sigint, sigterm;
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    log_info("started");
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
