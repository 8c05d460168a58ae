/* Implementation of ctl_connect.h: the common options and the client they make. */
#include "ctl_connect.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a coordinator runs when nothing says otherwise: this machine's default port. */
#define CTL_DEFAULT_COORDINATOR "tcp://127.0.0.1:7702"

/* ~/.config/edgefleet/ctl.ini, read once per process; its strings live to the end. */
static struct {
    int read;
    char *coordinator, *server_key, *key, *telemetry;
} g_ini;

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    (void)user;
    if (strcmp(section, "ctl") != 0)
        return 1;
    char **slot = strcmp(name, "coordinator") == 0  ? &g_ini.coordinator
                  : strcmp(name, "server_key") == 0 ? &g_ini.server_key
                  : strcmp(name, "key") == 0        ? &g_ini.key
                  : strcmp(name, "telemetry") == 0  ? &g_ini.telemetry
                                                    : NULL;
    if (!slot) {
        fprintf(stderr, "edgefleetctl: ctl.ini: unknown key \"%s\" ignored\n", name);
        return 1;
    }
    free(*slot);
    *slot = strdup(value);
    return 1;
}

static void read_ini(void)
{
    if (g_ini.read)
        return;
    g_ini.read = 1;
    const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
    char path[1024];
    if (xdg && *xdg)
        snprintf(path, sizeof path, "%s/edgefleet/ctl.ini", xdg);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.config/edgefleet/ctl.ini", home);
    else
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    int line = ini_parse_file(f, on_ini, NULL);
    fclose(f);
    if (line > 0)
        fprintf(stderr, "edgefleetctl: %s:%d: cannot parse this line\n", path, line);
}

static const char *pick(const char *env, const char *ini, const char *fallback)
{
    const char *v = getenv(env);
    return v && *v ? v : ini && *ini ? ini : fallback;
}

void ctl_connect_defaults(ctl_connect_opts *o)
{
    read_ini();
    o->coordinator = pick("EDGEFLEET_COORDINATOR", g_ini.coordinator, CTL_DEFAULT_COORDINATOR);
    o->server_key = pick("EDGEFLEET_SERVER_KEY", g_ini.server_key, NULL);
    o->key = pick("EDGEFLEET_KEY", g_ini.key, NULL);
    o->telemetry = pick("EDGEFLEET_TELEMETRY", g_ini.telemetry, NULL);
    o->timeout_ms = 0;
    o->json = 0;
}

int ctl_connect_option(ctl_connect_opts *o, int ch, const char *arg, const char *cmd)
{
    char *end;
    switch (ch) {
    case CTL_OPT_COORDINATOR:
        o->coordinator = arg;
        return 1;
    case CTL_OPT_SERVER_KEY:
        o->server_key = arg;
        return 1;
    case CTL_OPT_KEY:
        o->key = arg;
        return 1;
    case CTL_OPT_TELEMETRY:
        o->telemetry = arg;
        return 1;
    case CTL_OPT_JSON:
        o->json = 1;
        return 1;
    case CTL_OPT_TIMEOUT:
        errno = 0;
        unsigned long v = strtoul(arg, &end, 10);
        if (errno || end == arg || *end || v > 86400000ul) {
            fprintf(stderr, "edgefleetctl %s: --timeout-ms: \"%s\" is not a number of ms\n", cmd,
                    arg);
            return -1;
        }
        o->timeout_ms = (unsigned)v;
        return 1;
    default:
        return 0;
    }
}

int ctl_connect_parse(int argc, char **argv, const char *optstring, int n_args, const char *cmd,
                      ctl_connect_opts *co, int (*usage)(FILE *out, const char *cmd))
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'}, CTL_CONNECT_LONGOPTS, {0, 0, 0, 0}};
    ctl_connect_defaults(co);
    int ch;
    optind = 0; /* glibc: a full reset, so a second parse in one process starts afresh */
    while ((ch = getopt_long(argc, argv, optstring, opts, NULL)) != -1) {
        int taken = ctl_connect_option(co, ch, optarg, cmd);
        if (taken < 0)
            return CTL_BAD_ARG;
        if (taken)
            continue;
        if (ch == 'h') {
            usage(stdout, cmd);
            return CTL_OK;
        }
        return usage(stderr, cmd);
    }
    if (optind != argc - n_args)
        return usage(stderr, cmd);
    return -1;
}

/* The exit code for a failure to connect: what the user has to fix. */
static int connect_exit_code(int rc)
{
    switch (rc) {
    case EF_ENOTCONN:
    case EF_EPROTO:
        return CTL_UNREACHABLE;
    case EF_EDENIED:
    case EF_ECRYPTO:
        return CTL_REFUSED;
    case EF_ENOMEM:
    case EF_EZMQ:
        return CTL_FAILED;
    default: /* EF_EINVAL, EF_ENOENT, EF_EIO, EF_EKEY, EF_EKEYPERM: our arguments or files */
        return CTL_BAD_ARG;
    }
}

int ctl_connect(const ctl_connect_opts *o, const char *cmd, ef_client_t **out)
{
    *out = NULL;
    if (!o->server_key || !o->key) {
        fprintf(stderr,
                "edgefleetctl %s: need --server-key and --key (or $EDGEFLEET_SERVER_KEY and "
                "$EDGEFLEET_KEY)\n",
                cmd);
        return CTL_BAD_ARG;
    }
    ef_client_params p = ef_client_default_params();
    p.endpoint = o->coordinator;
    p.server_key_file = o->server_key;
    p.key_file = o->key;
    p.connect_timeout_ms = o->timeout_ms;
    p.request_timeout_ms = o->timeout_ms;
    char why[512];
    int rc = ef_client_open(&p, out, why, sizeof why);
    if (rc == 0)
        return CTL_OK;
    fprintf(stderr, "edgefleetctl %s: %s (%s)\n", cmd, why, ef_err_name(rc));
    return connect_exit_code(rc);
}

int ctl_report_failure(const char *cmd, ef_client_t *client, int rc)
{
    const char *why = ef_client_last_error(client);
    fprintf(stderr, "edgefleetctl %s: %s (%s)\n", cmd, *why ? why : ef_strerror(rc),
            ef_err_name(rc));
    if (rc == EF_ENOTCONN)
        return CTL_UNREACHABLE;
    return rc == EF_EDENIED || rc == EF_ECRYPTO ? CTL_REFUSED : CTL_FAILED;
}
