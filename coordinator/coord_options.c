/* edgefleet-coordinator's command line (coordinator/coord_options.h), moved out of main.c so it can
 * be tested and fuzzed without starting the daemon. */
#include "coord_options.h"
#include "edgefleet.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: edgefleet-coordinator --key FILE --allow-dir DIR [options]\n"
            "  the fleet coordinator: registers agents and routes requests\n"
            "  --key FILE                 the coordinator's secret key (NAME.key, mode 0600)\n"
            "  --allow-dir DIR            holds agents/, clients/, operators/ of .pub files\n"
            "  --agents-endpoint EP       (default " COORD_AGENTS_ENDPOINT ")\n"
            "  --clients-endpoint EP      (default " COORD_CLIENTS_ENDPOINT ")\n"
            "  --telemetry-endpoint EP    (default " COORD_TELEMETRY_ENDPOINT ")\n"
            "                             endpoints are tcp://HOST:PORT; HOST * binds them all\n"
            "  --heartbeat-ms N           heartbeat interval both ways (default 1000)\n"
            "  --liveness N               silent intervals before an agent is dead (default 3)\n"
            "  --queue N                  queued requests per model (default 256)\n"
            "  --client-max N             queued + running requests per client key, over all\n"
            "                             models (default 64): one client cannot fill the\n"
            "                             queues, and clients take turns in each model's queue\n"
            "  --orphan-grace-ms N        fail queued requests of a model that no agent has\n"
            "                             served for N ms (default 30000)\n"
            "  --client-stall-ms N        a client that reads none of its stream for N ms loses\n"
            "                             the request (default 10000)\n"
            "  --max-resumes N            times a request whose agent is lost continues on\n"
            "                             another agent before it fails (default 3, 0..15;\n"
            "                             0 = fail at once)\n"
            "  --telemetry-window-s N     seconds of telemetry samples kept per device for\n"
            "                             operators' history (default 600)\n"
            "  --zap-rate N               CURVE handshakes admitted per second, up to N at\n"
            "                             once after a quiet second; more wait their turn\n"
            "                             (0 = unlimited; default %u)\n"
            "  --http HOST:PORT           serve the OpenAI HTTP API there (off by default);\n"
            "                             HOST is numeric (127.0.0.1, [::1], 0.0.0.0)\n"
            "  --http-tls-cert FILE       PEM certificate chain: HTTPS (with --http-tls-key)\n"
            "  --http-tls-key FILE        PEM private key\n"
            "  --http-insecure            plain HTTP on an address other than loopback\n"
            "  --http-api-keys FILE       require a bearer key: lines of NAME KEY, re-read\n"
            "                             when the file changes (a removed line is refused)\n"
            "  --http-max-body N          request body bytes at most (default 8388608)\n"
            "  --http-max-streams N       HTTP requests open at once (default 256)\n"
            "  --log-level debug|info|warn|error   (default info)\n"
            "  --help, --version\n"
            "exit codes: 0 stopped by signal, 1 runtime failure, 2 bad arguments or config\n",
            COORD_ZAP_RATE_DEFAULT);
}

/* A whole decimal number in [min, max], or -1. */
static long parse_count(const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    return v;
}

static const struct option long_options[] = {{"help", no_argument, 0, 'h'},
                                             {"version", no_argument, 0, 'V'},
                                             {"log-level", required_argument, 0, 'l'},
                                             {"agents-endpoint", required_argument, 0, 'a'},
                                             {"clients-endpoint", required_argument, 0, 'c'},
                                             {"telemetry-endpoint", required_argument, 0, 't'},
                                             {"key", required_argument, 0, 'k'},
                                             {"allow-dir", required_argument, 0, 'd'},
                                             {"heartbeat-ms", required_argument, 0, 'H'},
                                             {"liveness", required_argument, 0, 'L'},
                                             {"queue", required_argument, 0, 'q'},
                                             {"orphan-grace-ms", required_argument, 0, 'o'},
                                             {"client-stall-ms", required_argument, 0, 's'},
                                             {"client-max", required_argument, 0, 'm'},
                                             {"max-resumes", required_argument, 0, 'r'},
                                             {"telemetry-window-s", required_argument, 0, 'w'},
                                             {"zap-rate", required_argument, 0, 'Z'},
                                             {"http", required_argument, 0, 'W'},
                                             {"http-tls-cert", required_argument, 0, 'C'},
                                             {"http-tls-key", required_argument, 0, 'K'},
                                             {"http-insecure", no_argument, 0, 'I'},
                                             {"http-api-keys", required_argument, 0, 'A'},
                                             {"http-max-body", required_argument, 0, 'B'},
                                             {"http-max-streams", required_argument, 0, 'S'},
                                             {0, 0, 0, 0}};

/* The numeric options: name, bounds, and where each goes. */
typedef struct {
    int ch;
    const char *name;
    long min, max;
    size_t offset; /* of its uint32_t in coord_config */
} count_option;

static const count_option count_options[] = {
    {'H', "heartbeat-ms", 10, 3600000, offsetof(coord_config, heartbeat_ms)},
    {'L', "liveness", 1, 1000000, offsetof(coord_config, liveness)},
    {'q', "queue", 1, 1000000, offsetof(coord_config, queue)},
    {'o', "orphan-grace-ms", 1, 86400000, offsetof(coord_config, orphan_grace_ms)},
    {'s', "client-stall-ms", 100, 3600000, offsetof(coord_config, client_stall_ms)},
    {'m', "client-max", 1, 1000000, offsetof(coord_config, client_max)},
    {'r', "max-resumes", 0, FLIGHT_RESUMES_MAX, offsetof(coord_config, max_resumes)},
    {'w', "telemetry-window-s", 10, 86400, offsetof(coord_config, telemetry_window_s)},
    {'Z', "zap-rate", 0, 1000000, offsetof(coord_config, zap_rate)},
    {'B', "http-max-body", 1024, 1L << 30, offsetof(coord_config, http_max_body)},
    {'S', "http-max-streams", 1, 65536, offsetof(coord_config, http_max_streams)},
};

int coord_options_parse(int argc, char **argv, coord_config *cfg)
{
    int ch;
    long v;
    log_level lvl;
    while ((ch = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (ch) {
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("%s %d.%d.%d\n", "edgefleet-coordinator", EF_VERSION_MAJOR, EF_VERSION_MINOR,
                   EF_VERSION_PATCH);
            return 1;
        case 'l':
            if (log_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "edgefleet-coordinator: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            log_set_level(lvl);
            break;
        case 'a':
            cfg->agents_endpoint = optarg;
            break;
        case 'c':
            cfg->clients_endpoint = optarg;
            break;
        case 't':
            cfg->telemetry_endpoint = optarg;
            break;
        case 'k':
            cfg->key_path = optarg;
            break;
        case 'd':
            cfg->allow_dir = optarg;
            break;
        case 'W':
            cfg->http_listen = optarg;
            break;
        case 'C':
            cfg->http_tls_cert = optarg;
            break;
        case 'K':
            cfg->http_tls_key = optarg;
            break;
        case 'I':
            cfg->http_insecure = 1;
            break;
        case 'A':
            cfg->http_api_keys = optarg;
            break;
        case 'H':
        case 'L':
        case 'q':
        case 'o':
        case 's':
        case 'm':
        case 'r':
        case 'w':
        case 'Z':
        case 'B':
        case 'S': {
            const count_option *o = count_options;
            while (o->ch != ch)
                o++;
            v = parse_count(optarg, o->min, o->max);
            if (v < 0) {
                fprintf(stderr,
                        "edgefleet-coordinator: --%s: \"%s\" is not a number in [%ld, %ld]\n",
                        o->name, optarg, o->min, o->max);
                return 2;
            }
            *(uint32_t *)((char *)cfg + o->offset) = (uint32_t)v;
            break;
        }
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgefleet-coordinator: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!cfg->http_listen &&
        (cfg->http_tls_cert || cfg->http_tls_key || cfg->http_insecure || cfg->http_api_keys)) {
        fprintf(stderr, "edgefleet-coordinator: the --http-* options need --http HOST:PORT\n");
        return 2;
    }
    return 0;
}
