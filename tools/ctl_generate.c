/* edgefleetctl generate --model M [--max-tokens N] [--temperature T] [--seed S] "prompt":
 * streams the answer to stdout as tokens arrive, then one line on stderr saying which agent
 * served it, how many tokens and how fast. Ctrl-C cancels the request on the fleet. */
#include "ctl.h"
#include "ctl_args.h"
#include "ctl_connect.h"
#include "ctl_json.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The client a SIGINT cancels. Set once before the call, read by the handler: the one static
 * here, because a signal handler has no other way to reach it. */
static ef_client_t *volatile g_generating;

static void on_sigint(int sig)
{
    (void)sig;
    if (g_generating)
        ef_client_cancel(g_generating); /* one atomic store: async-signal-safe */
}

static int generate_usage(FILE *out)
{
    fprintf(out, "usage: edgefleetctl generate --model M [--max-tokens N] [--temperature T] "
                 "[--seed S] [options] \"prompt\"\n" CTL_CONNECT_USAGE);
    return CTL_BAD_ARG;
}

/* With --json the text is kept for the one document printed at the end. */
typedef struct {
    char *text;
    size_t len;
} gen_text;

static int on_token(const char *text, size_t len, void *user)
{
    gen_text *g = user;
    if (!g) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return 0;
    }
    char *n = realloc(g->text, g->len + len + 1);
    if (!n)
        return 1;
    memcpy(n + g->len, text, len);
    g->len += len;
    n[g->len] = '\0';
    g->text = n;
    return 0;
}

static void print_json(const ef_result *res, const gen_text *g, int rc)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return;
    cJSON_AddStringToObject(j, "text", g->text ? g->text : "");
    cJSON_AddNumberToObject(j, "status", rc);
    cJSON_AddStringToObject(j, "error", rc ? ef_err_name(rc) : "");
    cJSON_AddStringToObject(j, "agent", res->agent);
    cJSON_AddNumberToObject(j, "prompt_tokens", res->prompt_tokens);
    cJSON_AddNumberToObject(j, "completion_tokens", res->completion_tokens);
    cJSON_AddNumberToObject(j, "first_token_ms", res->first_token_ms);
    cJSON_AddNumberToObject(j, "elapsed_ms", res->elapsed_ms);
    cJSON_AddNumberToObject(j, "seed", (double)res->seed);
    ctl_json_print(j, 0);
}

/* Parse a number of the given kind; 0 on success, -1 (message printed) otherwise. */
static int parse_num(const char *opt, const char *arg, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    /* !(in range) rather than (out of range): "nan" compares false both ways and was taken,
     * then converted to uint32_t, which is undefined (fuzz_args: --max-tokens nan). */
    if (errno || end == arg || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "edgefleetctl generate: --%s: \"%s\" is out of range or not a number\n",
                opt, arg);
        return -1;
    }
    *out = v;
    return 0;
}

int ctl_generate_parse(int argc, char **argv, ctl_connect_opts *co, const char **model,
                       ef_gen_params *gp)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"temperature", required_argument, 0, 't'},
                                         {"seed", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         CTL_CONNECT_LONGOPTS,
                                         {0, 0, 0, 0}};
    int ch;
    double v = 0;
    optind = 0; /* glibc: a full reset (options may follow the prompt) */
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = ctl_connect_option(co, ch, optarg, "generate");
        if (taken < 0)
            return CTL_BAD_ARG;
        if (taken)
            continue;
        switch (ch) {
        case 'm':
            *model = optarg;
            break;
        case 'n':
            if (parse_num("max-tokens", optarg, 0, 1e6, &v) != 0)
                return CTL_BAD_ARG;
            gp->max_tokens = (uint32_t)v;
            break;
        case 't':
            if (parse_num("temperature", optarg, 0, 100, &v) != 0)
                return CTL_BAD_ARG;
            gp->temperature = (float)v;
            break;
        case 's': {
            char *end;
            errno = 0;
            gp->seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "edgefleetctl generate: --seed: \"%s\" is not a number\n", optarg);
                return CTL_BAD_ARG;
            }
            break;
        }
        case 'h':
            generate_usage(stdout);
            return -1;
        default:
            return generate_usage(stderr);
        }
    }
    /* *model is a pointer to the text: test the text (fuzz_args: "generate PROMPT" with no
     * --model, or --model "", passed with model "" because only the pointer was tested). */
    if (!*model || !**model || optind != argc - 1) {
        fprintf(stderr, "edgefleetctl generate: need --model and one prompt argument\n");
        return generate_usage(stderr);
    }
    return CTL_OK;
}

int ctl_generate(int argc, char **argv)
{
    ctl_connect_opts co;
    ctl_connect_defaults(&co);
    const char *model = "";
    ef_gen_params gp = ef_gen_default_params();
    int rc = ctl_generate_parse(argc, argv, &co, &model, &gp);
    if (rc)
        return rc < 0 ? CTL_OK : rc;
    const char *prompt = argv[argc - 1];
    ef_client_t *client = NULL;
    int code = ctl_connect(&co, "generate", &client);
    if (code != CTL_OK)
        return code;
    g_generating = client;
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigaction(SIGINT, &sa, &old);
    ef_result res;
    gen_text g = {0};
    rc = ef_client_generate(client, model, prompt, &gp, on_token, co.json ? &g : NULL, &res);
    sigaction(SIGINT, &old, NULL);
    g_generating = NULL;
    if (co.json) {
        print_json(&res, &g, rc);
        free(g.text);
        ef_client_destroy(&client);
        return rc == 0 ? CTL_OK : rc == EF_EDENIED ? CTL_REFUSED : CTL_FAILED;
    }
    if (res.tokens_received) {
        /* End the streamed text before the summary on stderr, which is unbuffered. */
        printf("\n");
        fflush(stdout);
    }
    if (rc == 0) {
        double secs = res.elapsed_ms / 1000.0;
        fprintf(stderr, "agent %s: %u tokens in %.2f s (%.1f tokens/s), seed %llu\n", res.agent,
                res.completion_tokens, secs, secs > 0 ? res.completion_tokens / secs : 0.0,
                (unsigned long long)res.seed);
    } else if (rc == EF_EBUSY) {
        fprintf(stderr, "edgefleetctl generate: fleet busy; retry after %u ms\n",
                res.retry_after_ms);
        code = CTL_FAILED;
    } else {
        code = ctl_report_failure("generate", client, rc);
    }
    ef_client_destroy(&client);
    return code;
}
