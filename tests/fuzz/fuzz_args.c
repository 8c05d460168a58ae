/* libFuzzer target for the argument parsing of edgefleet-coordinator, edgefleet-agent and every
 * edgefleetctl command (the parse functions main() calls, which never exit). The first byte
 * picks the parser, the rest split on NUL into argv (each argument its own allocation, so a
 * read past one is caught). getopt is reset before each input. Invariants: the return code is
 * one the caller maps to an exit code, and a parse that says "go on" left values in range. Their
 * messages go nowhere: -close_fd_mask=3 is added to the fuzzer's flags (libFuzzer keeps its own
 * output and the sanitizers' reports). */
#include "agent_options.h"
#include "coord_options.h"
#include "ctl_args.h"
#include "fuzz_check.h"
#include "log.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char *args[64];
    static char mask[] = "-close_fd_mask=3";
    int n = *argc < 62 ? *argc : 62;
    for (int i = 0; i < n; i++)
        args[i] = (*argv)[i];
    args[n] = mask;
    args[n + 1] = NULL;
    *argc = n + 1;
    *argv = args;
    return 0;
}

#define MAX_ARGS 40

/* glibc reinitialises getopt (and forgets a half-read "-abc" of a freed argv) when optind is
 * 0; one call on an empty argv does that, leaving optind 1 as a fresh process has it. */
static void reset_getopt(void)
{
    static char prog[] = "fuzz", *none[] = {prog, NULL};
    optind = 0;
    CHECK(getopt(1, none, "") == -1);
}

static void parse_coordinator(int argc, char **argv)
{
    coord_config c = {.heartbeat_ms = 1000,
                      .liveness = 3,
                      .queue = 256,
                      .client_max = 64,
                      .orphan_grace_ms = 30000,
                      .client_stall_ms = 10000,
                      .max_resumes = 3};
    int rc = coord_options_parse(argc, argv, &c);
    CHECK(rc == 0 || rc == 1 || rc == 2);
    if (rc == 0) {
        CHECK(c.heartbeat_ms >= 10 && c.heartbeat_ms <= 3600000);
        CHECK(c.liveness >= 1 && c.queue >= 1 && c.client_max >= 1 && c.orphan_grace_ms >= 1);
        CHECK(c.client_stall_ms >= 100 && c.max_resumes <= 15);
        CHECK(optind == argc);
    }
}

static void parse_agent(int argc, char **argv)
{
    agent_options o = {0};
    int rc = agent_options_parse(argc, argv, &o);
    CHECK(rc == 0 || rc == 1 || rc == -1);
    CHECK(o.n_models <= AGENT_MAX_MODELS);
    if (rc == 0) {
        CHECK(o.slots <= BACKEND_MAX_SLOTS && (o.ctx == 0 || o.ctx >= 16));
        CHECK(o.threads <= 256 && o.drain_timeout_ms <= 86400000);
        CHECK(o.sim_tps == 0 || (o.sim_tps >= 1 && o.sim_tps <= 1000000));
        for (size_t i = 0; i < o.n_models; i++)
            CHECK(o.models[i] != NULL);
    }
}

static void parse_ctl(int which, int argc, char **argv)
{
    ctl_connect_opts co;
    ctl_connect_defaults(&co);
    int rc;
    switch (which) {
    case 0: {
        const char *name = NULL, *dir = NULL;
        rc = ctl_keygen_parse(argc, argv, &name, &dir);
        CHECK(rc == -1 || rc == CTL_OK || rc == CTL_BAD_ARG);
        if (rc == -1)
            CHECK(name && name[0] != '-' && dir && *dir);
        return;
    }
    case 1: {
        const char *model = "";
        ef_gen_params gp = ef_gen_default_params();
        rc = ctl_generate_parse(argc, argv, &co, &model, &gp);
        CHECK(rc == -1 || rc == CTL_OK || rc == CTL_BAD_ARG);
        if (rc == CTL_OK) {
            CHECK(model && *model && optind == argc - 1 && argv[argc - 1] != NULL);
            CHECK(gp.max_tokens <= 1000000);
            CHECK(!isnan(gp.temperature) && gp.temperature >= 0 && gp.temperature <= 100);
        }
        break;
    }
    case 2:
        rc = ctl_status_parse(argc, argv, &co);
        CHECK(rc == -1 || rc == CTL_OK || rc == CTL_BAD_ARG);
        if (rc == -1)
            CHECK(optind == argc);
        break;
    default:
        rc = ctl_drain_parse(argc, argv, which == 3, &co);
        CHECK(rc == -1 || rc == CTL_OK || rc == CTL_BAD_ARG);
        if (rc == -1)
            CHECK(optind == argc - 1 && argv[optind] != NULL);
        break;
    }
    if (rc == -1 || rc == CTL_OK)
        CHECK(co.coordinator != NULL && co.timeout_ms <= 86400000u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"edgefleet-coordinator",
                                        "edgefleet-agent",
                                        "keygen",
                                        "generate",
                                        "status",
                                        "drain",
                                        "undrain"};
    if (size < 1)
        return 0;
    int which = data[0] % 7;
    data++;
    size--;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = strdup(names[which]);
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < MAX_ARGS + 1; i++) {
        if (i == size || data[i] == '\0') {
            if (i == size && i == start && argc > 1)
                break; /* a trailing NUL ends the last argument, it adds no empty one */
            char *a = malloc(i - start + 1);
            CHECK(a != NULL);
            memcpy(a, data + start, i - start);
            a[i - start] = '\0';
            argv[argc++] = a;
            start = i + 1;
        }
    }
    argv[argc] = NULL;
    log_set_level(LOG_OFF);
    reset_getopt();
    if (which == 0)
        parse_coordinator(argc, argv);
    else if (which == 1)
        parse_agent(argc, argv);
    else
        parse_ctl(which - 2, argc, argv);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return 0;
}
