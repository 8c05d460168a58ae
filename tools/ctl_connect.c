/* Implementation of ctl_connect.h: the common options and the client they make. */
#include "ctl_connect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Where a coordinator runs when nothing says otherwise: this machine's default port. */
#define CTL_DEFAULT_COORDINATOR "tcp://127.0.0.1:7702"

void ctl_connect_defaults(ctl_connect_opts *o)
{
    const char *v = getenv("EDGEFLEET_COORDINATOR");
    o->coordinator = v && *v ? v : CTL_DEFAULT_COORDINATOR;
    v = getenv("EDGEFLEET_SERVER_KEY");
    o->server_key = v && *v ? v : NULL;
    v = getenv("EDGEFLEET_KEY");
    o->key = v && *v ? v : NULL;
    o->timeout_ms = 0;
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
    optind = 1;
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
