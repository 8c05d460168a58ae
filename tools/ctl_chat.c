/* edgefleetctl chat --model M: an interactive conversation. Each line is a user turn; the whole
 * conversation goes with it (the agent renders it with the model's chat template) under one
 * session id, so the board that served the last turn is preferred and reuses its KV cache. On a
 * terminal lines are edited with libedit (history kept in ~/.edgefleet_chat_history); a stdin
 * that is not a terminal is read line by line, so a script can pipe a conversation in. Empty
 * line or /quit ends it; Ctrl-C stops the answer being streamed. */
#include "ctl.h"
#include "ctl_connect.h"

#include <histedit.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAT_TURNS_MAX 256

static ef_client_t *volatile g_client;
static void on_sigint(int sig)
{
    (void)sig;
    if (g_client)
        ef_client_cancel(g_client);
}

typedef struct {
    char *text;
    size_t len, cap;
} answer;

static int on_token(const char *t, size_t len, void *user)
{
    answer *a = user;
    fwrite(t, 1, len, stdout);
    fflush(stdout);
    if (a->len + len + 1 > a->cap) {
        size_t cap = (a->len + len + 1) * 2;
        char *n = realloc(a->text, cap);
        if (!n)
            return 1;
        a->text = n;
        a->cap = cap;
    }
    memcpy(a->text + a->len, t, len);
    a->len += len;
    a->text[a->len] = '\0';
    return 0;
}

static const char *prompt_fn(EditLine *e)
{
    (void)e;
    return "you> ";
}

static int chat_usage(FILE *out)
{
    fprintf(out, "usage: edgefleetctl chat --model M [--system TEXT] [--max-tokens N] [options]\n"
                 "  one line per turn; an empty line or /quit ends the chat\n"
                 "  --system TEXT   a system message first\n"
                 "  --max-tokens N  tokens per answer at most (default 256)\n" CTL_CONNECT_USAGE);
    return CTL_BAD_ARG;
}

/* Read one line: libedit on a terminal, plain fgets otherwise. NULL at the end. */
static char *read_line(EditLine *el, History *hist, char *buf, size_t cap)
{
    if (el) {
        int n = 0;
        const char *l = el_gets(el, &n);
        if (!l || n <= 0)
            return NULL;
        snprintf(buf, cap, "%s", l);
        buf[strcspn(buf, "\r\n")] = '\0';
        HistEvent ev;
        if (*buf)
            history(hist, &ev, H_ENTER, buf);
        return buf;
    }
    if (!fgets(buf, (int)cap, stdin))
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static int turn(ef_client_t *c, const char *model, ef_chat_message *msgs, size_t *n,
                const ef_gen_params *gp)
{
    answer a = {0};
    ef_result res;
    int rc = ef_client_chat(c, model, msgs, *n, gp, on_token, &a, &res);
    if (rc != 0) {
        free(a.text);
        return ctl_report_failure("chat", c, rc);
    }
    printf("\n");
    fprintf(stderr, "[%s: %u tokens, %u of %u prompt tokens evaluated]\n", res.agent,
            res.completion_tokens, res.prompt_evaluated, res.prompt_tokens);
    msgs[*n].role = "assistant";
    msgs[*n].content = a.text ? a.text : strdup("");
    (*n)++;
    return CTL_OK;
}

int ctl_chat(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'},
                                         {"model", required_argument, 0, 'm'},
                                         {"system", required_argument, 0, 's'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         CTL_CONNECT_LONGOPTS,
                                         {0, 0, 0, 0}};
    ctl_connect_opts co;
    ctl_connect_defaults(&co);
    const char *model = NULL, *system_msg = NULL;
    ef_gen_params gp = ef_gen_default_params();
    gp.max_tokens = 256;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = ctl_connect_option(&co, ch, optarg, "chat");
        if (taken < 0)
            return CTL_BAD_ARG;
        if (taken)
            continue;
        char *end;
        if (ch == 'h') {
            chat_usage(stdout);
            return CTL_OK;
        } else if (ch == 'm') {
            model = optarg;
        } else if (ch == 's') {
            system_msg = optarg;
        } else if (ch == 'n') {
            unsigned long v = strtoul(optarg, &end, 10);
            if (end == optarg || *end || v == 0 || v > 100000)
                return chat_usage(stderr);
            gp.max_tokens = (uint32_t)v;
        } else {
            return chat_usage(stderr);
        }
    }
    if (!model || !*model || optind != argc) {
        fprintf(stderr, "edgefleetctl chat: need --model\n");
        return chat_usage(stderr);
    }
    ef_client_t *c = NULL;
    int code = ctl_connect(&co, "chat", &c);
    if (code != CTL_OK)
        return code;
    /* One session for the whole chat: the coordinator keeps it on the board holding its cache. */
    unsigned char sid[8];
    char session[24];
    randombytes_buf(sid, sizeof sid);
    snprintf(session, sizeof session, "chat-%02x%02x%02x%02x%02x%02x%02x%02x", sid[0], sid[1],
             sid[2], sid[3], sid[4], sid[5], sid[6], sid[7]);
    gp.session_id = session;
    EditLine *el = NULL;
    History *hist = NULL;
    char hist_path[1024] = "";
    if (isatty(STDIN_FILENO)) {
        el = el_init("edgefleetctl", stdin, stdout, stderr);
        hist = history_init();
        HistEvent ev;
        history(hist, &ev, H_SETSIZE, 1000);
        const char *home = getenv("HOME");
        if (home) {
            snprintf(hist_path, sizeof hist_path, "%s/.edgefleet_chat_history", home);
            history(hist, &ev, H_LOAD, hist_path);
        }
        el_set(el, EL_PROMPT, prompt_fn);
        el_set(el, EL_EDITOR, "emacs");
        el_set(el, EL_HIST, history, hist);
        fprintf(stderr, "chat with %s (session %s); empty line or /quit ends\n", model, session);
    }
    ef_chat_message msgs[CHAT_TURNS_MAX];
    size_t n = 0;
    if (system_msg)
        msgs[n++] = (ef_chat_message){"system", strdup(system_msg)};
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigaction(SIGINT, &sa, &old);
    char line[8192];
    while (code == CTL_OK && n + 2 <= CHAT_TURNS_MAX && read_line(el, hist, line, sizeof line)) {
        if (!*line || strcmp(line, "/quit") == 0)
            break;
        msgs[n++] = (ef_chat_message){"user", strdup(line)};
        g_client = c;
        if (!el)
            printf("assistant> ");
        code = turn(c, model, msgs, &n, &gp);
        g_client = NULL;
    }
    sigaction(SIGINT, &old, NULL);
    if (el) {
        HistEvent ev;
        if (*hist_path)
            history(hist, &ev, H_SAVE, hist_path);
        history_end(hist);
        el_end(el);
    }
    for (size_t i = 0; i < n; i++)
        free((char *)msgs[i].content);
    ef_client_destroy(&c);
    return code;
}
