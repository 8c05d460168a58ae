/* edgefleet-agent's command line (agent/agent_options.h), moved out of main.c so it can be
 * tested and fuzzed without starting the daemon. */
#include "agent_options.h"
#include "config.h"
#include "edgefleet.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: edgefleet-agent --coordinator ENDPOINT --server-key FILE --key FILE\n"
            "                       (--model PATH ... | --config FILE) [options]\n"
            "  the edge daemon: serves GGUF models to an edgefleet coordinator\n"
            "  --coordinator ENDPOINT  coordinator's agent endpoint, e.g. tcp://10.0.0.1:7701\n"
            "  --server-key FILE       the coordinator's public key (NAME.pub)\n"
            "  --key FILE              this agent's secret key (NAME.key, mode 0600)\n"
            "  --name NAME             the name to ask for; the fleet names agents after their\n"
            "                          key's allowlist file (allow/agents/NAME.pub) and refuses\n"
            "                          any other (default: ask for none)\n"
            "  --config FILE           INI file: [agent] and [model NAME] sections\n"
            "  --model PATH            serve a GGUF file, named after its file stem (repeatable)\n"
            "  --slots N               parallel requests per model (default 1)\n"
            "  --ctx N                 context tokens per slot (default min(2048, model's))\n"
            "  --threads N             inference threads (default, or 0: all online CPUs)\n"
            "  --heartbeat-ms N        heartbeat interval (default 1000)\n"
            "  --drain-timeout-ms N    on SIGTERM/SIGINT, time running requests get to finish\n"
            "                          before the agent stops anyway (default 30000; a second\n"
            "                          signal stops at once)\n"
            "  --simulated             serve --model names with the simulated backend (no\n"
            "                          file is read; for fleet tests; reported as simulated)\n"
            "  --sim-tps N             simulated tokens/s per slot (default 20)\n"
            "  --log-level debug|info|warn|error|off   (default info)\n"
            "  --help, --version\n"
            "exit codes: 0 stopped by signal, 1 runtime failure, 2 bad arguments, config, keys "
            "or model\n");
}

static int parse_number(const char *opt, const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (end == v || *end || *v == '-' || n < lo || n > hi) {
        fprintf(stderr, "edgefleet-agent: %s: \"%s\" is not a number in %u..%u\n", opt, v, lo, hi);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

int agent_options_parse(int argc, char **argv, agent_options *o)
{
    enum {
        O_COORD = 256,
        O_SKEY,
        O_KEY,
        O_NAME,
        O_CONFIG,
        O_MODEL,
        O_SLOTS,
        O_CTX,
        O_THREADS,
        O_HB,
        O_DRAIN,
        O_LOG,
        O_SIM,
        O_SIMTPS
    };
    static const struct option opts[] = {{"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {"coordinator", required_argument, 0, O_COORD},
                                         {"server-key", required_argument, 0, O_SKEY},
                                         {"key", required_argument, 0, O_KEY},
                                         {"name", required_argument, 0, O_NAME},
                                         {"config", required_argument, 0, O_CONFIG},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"slots", required_argument, 0, O_SLOTS},
                                         {"ctx", required_argument, 0, O_CTX},
                                         {"threads", required_argument, 0, O_THREADS},
                                         {"heartbeat-ms", required_argument, 0, O_HB},
                                         {"drain-timeout-ms", required_argument, 0, O_DRAIN},
                                         {"log-level", required_argument, 0, O_LOG},
                                         {"simulated", no_argument, 0, O_SIM},
                                         {"sim-tps", required_argument, 0, O_SIMTPS},
                                         {0, 0, 0, 0}};
    int c;
    uint32_t tps = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        log_level lvl;
        int rc = 0;
        switch (c) {
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("%s %d.%d.%d\n", "edgefleet-agent", EF_VERSION_MAJOR, EF_VERSION_MINOR,
                   EF_VERSION_PATCH);
            return 1;
        case O_COORD: {
            ef_errmsg em = {{0}};
            if (config_check_endpoint(optarg, &em) != 0) {
                fprintf(stderr, "edgefleet-agent: --coordinator: %s\n", em.msg);
                return -1;
            }
            o->coordinator = optarg;
            break;
        }
        case O_SKEY:
            o->server_key = optarg;
            break;
        case O_KEY:
            o->key = optarg;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        case O_CONFIG:
            o->config = optarg;
            break;
        case O_MODEL:
            if (o->n_models == AGENT_MAX_MODELS) {
                fprintf(stderr, "edgefleet-agent: more than %d --model\n", AGENT_MAX_MODELS);
                return -1;
            }
            o->models[o->n_models++] = optarg;
            break;
        case O_SLOTS:
            rc = parse_number("--slots", optarg, 1, BACKEND_MAX_SLOTS, &o->slots);
            break;
        case O_CTX:
            rc = parse_number("--ctx", optarg, 16, 1u << 20, &o->ctx);
            break;
        case O_THREADS:
            rc = parse_number("--threads", optarg, 0, 256, &o->threads); /* 0 = all CPUs */
            break;
        case O_HB:
            rc = parse_number("--heartbeat-ms", optarg, 10, 600000, &o->heartbeat_ms);
            break;
        case O_DRAIN:
            rc = parse_number("--drain-timeout-ms", optarg, 0, 86400000, &o->drain_timeout_ms);
            o->has_drain_timeout = 1;
            break;
        case O_SIM:
            o->simulated = 1;
            break;
        case O_SIMTPS:
            rc = parse_number("--sim-tps", optarg, 1, 1000000, &tps);
            break;
        case O_LOG:
            if (log_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "edgefleet-agent: unknown log level \"%s\"\n", optarg);
                return -1;
            }
            log_set_level(lvl);
            break;
        default:
            usage(stderr);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    o->sim_tps = tps;
    if (optind < argc) {
        fprintf(stderr, "edgefleet-agent: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}
