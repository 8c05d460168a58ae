/* edgefleetctl top and telemetry: the fleet's telemetry stream. telemetry prints each sample as
 * one JSON line (for recording and piping); top keeps one row per device refreshed in place,
 * the fleet's total at the bottom and a sparkline of each device's last minutes of tokens/s,
 * starting from the coordinator's history so the screen is never blank. Operator keys (or a key
 * in allow/telemetry/ for the stream alone). */
#include "clock.h"
#include "ctl.h"
#include "ctl_json.h"
#include "ctl_link.h"
#include "ctl_top.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static void on_stop(int sig) { (void)sig, g_stop = 1; }

static int top_usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "top") == 0)
        fprintf(out, "usage: edgefleetctl top [--sort tps|name|ttft|queue|temp] [--count N] "
                     "[options]\n"
                     "  --sort KEY     order of the rows (default tps, highest first)\n"
                     "  --count N      stop after N screens (default: until Ctrl-C)\n"
                     "  --json         each screen as one JSON line instead\n");
    else
        fprintf(out, "usage: edgefleetctl telemetry [--agent NAME] [--count N] [options]\n"
                     "  prints each sample as one JSON line\n"
                     "  --agent NAME   that device only (default: every device and the fleet)\n"
                     "  --count N      stop after N samples (default: until Ctrl-C)\n");
    fprintf(out, CTL_CONNECT_USAGE);
    return CTL_BAD_ARG;
}

int ctl_top_parse(int argc, char **argv, ctl_top_opts *o)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'},
                                         {"sort", required_argument, 0, 's'},
                                         {"agent", required_argument, 0, 'a'},
                                         {"count", required_argument, 0, 'n'},
                                         CTL_CONNECT_LONGOPTS,
                                         {0, 0, 0, 0}};
    const char *cmd = argv[0];
    memset(o, 0, sizeof *o);
    ctl_connect_defaults(&o->co);
    o->sort = "tps";
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = ctl_connect_option(&o->co, ch, optarg, cmd);
        if (taken < 0)
            return CTL_BAD_ARG;
        if (taken)
            continue;
        char *end;
        switch (ch) {
        case 'h':
            top_usage(stdout, cmd);
            return CTL_OK;
        case 's':
            if (strcmp(optarg, "tps") && strcmp(optarg, "name") && strcmp(optarg, "ttft") &&
                strcmp(optarg, "queue") && strcmp(optarg, "temp")) {
                fprintf(stderr, "edgefleetctl %s: --sort: unknown key \"%s\"\n", cmd, optarg);
                return CTL_BAD_ARG;
            }
            o->sort = optarg;
            break;
        case 'a':
            o->agent = optarg;
            break;
        case 'n':
            o->count = strtoul(optarg, &end, 10);
            if (end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "edgefleetctl %s: --count: \"%s\" is not a number\n", cmd, optarg);
                return CTL_BAD_ARG;
            }
            break;
        default:
            return top_usage(stderr, cmd);
        }
    }
    if (optind != argc)
        return top_usage(stderr, cmd);
    return -1;
}

int ctl_telemetry(int argc, char **argv)
{
    ctl_top_opts o;
    int rc = ctl_top_parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    char topic[128];
    snprintf(topic, sizeof topic, "telemetry.%s", o.agent ? o.agent : "");
    ctl_link *l = NULL;
    if ((rc = ctl_link_open(&o.co, "telemetry", 1, topic, &l)) != CTL_OK)
        return rc;
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    signal(SIGPIPE, SIG_IGN);
    unsigned long n = 0;
    while (!g_stop && (!o.count || n < o.count)) {
        envelope *env = ctl_link_sample(l, 500);
        if (!env)
            continue;
        /* --agent a1 subscribes to the prefix "telemetry.a1": a10 would match too. */
        if (!o.agent || strcmp(env->telemetry->agent_name, o.agent) == 0) {
            if (ctl_json_print(ctl_json_sample(env->telemetry), 0) != 0)
                g_stop = 1; /* stdout went away */
            n++;
        }
        codec_free(&env);
    }
    ctl_link_close(&l);
    return CTL_OK;
}

/* The screen starts from the coordinator's window: each device's last TOP_SPARK samples. */
static int load_history(ctl_top_opts *o, top_screen *s)
{
    ctl_link *l = NULL;
    envelope *r = NULL;
    int rc = ctl_link_open(&o->co, "top", 0, NULL, &l);
    if (rc == CTL_OK)
        rc = ctl_link_command(l, EDGEFLEET__COMMAND_KIND__COMMAND_TELEMETRY_HISTORY, "", TOP_SPARK,
                              &r);
    ctl_link_close(&l);
    if (rc == CTL_OK && (rc = ctl_reply_failure("top", r->reply)) == CTL_OK) {
        uint64_t now = clock_mono_ms();
        for (size_t i = 0; i < r->reply->n_samples; i++) {
            const Edgefleet__TelemetrySample *x = r->reply->samples[i];
            uint64_t age = x->received_unix_ms && clock_unix_ms() > x->received_unix_ms
                               ? clock_unix_ms() - x->received_unix_ms
                               : 0;
            top_screen_add(s, x, now > age ? now - age : 0);
        }
    }
    codec_free(&r);
    return rc;
}

int ctl_top(int argc, char **argv)
{
    ctl_top_opts o;
    int rc = ctl_top_parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    top_screen *s = calloc(1, sizeof *s);
    if (!s)
        return CTL_FAILED;
    ctl_link *l = NULL;
    if ((rc = load_history(&o, s)) != CTL_OK ||
        (rc = ctl_link_open(&o.co, "top", 1, "telemetry.", &l)) != CTL_OK) {
        top_screen_free(s);
        free(s);
        return rc;
    }
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    int ansi = isatty(STDOUT_FILENO) && !o.co.json;
    unsigned long screens = 0;
    uint64_t next_draw = clock_mono_ms();
    while (!g_stop && (!o.count || screens < o.count)) {
        uint64_t now = clock_mono_ms();
        if (now >= next_draw) {
            if (o.co.json)
                ctl_json_print(top_screen_json(s), 0);
            else
                top_screen_draw(s, stdout, o.sort, ansi, now);
            screens++;
            next_draw = now + 1000;
            continue;
        }
        envelope *env = ctl_link_sample(l, (int)(next_draw - now));
        if (env)
            top_screen_add(s, env->telemetry, clock_mono_ms());
        codec_free(&env);
    }
    ctl_link_close(&l);
    top_screen_free(s);
    free(s);
    return CTL_OK;
}
