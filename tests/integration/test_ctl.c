/* edgefleetctl and the telemetry against a live fleet of two real agents (the real model):
 * after a run of known size the samples' token counts add up to the tokens generated, each
 * sample's tokens/s is its tokens over its own interval, and an idle board reports 0; every
 * --json output parses back (cJSON); top renders under a pseudo-terminal (tmux capture-pane)
 * with one row per board and the fleet's; chat answers through a pseudo-terminal and from a
 * pipe; options after the prompt are taken; a client key is refused operator views and the
 * telemetry stream (exit 4); nothing at the endpoint is exit 3; a revoked key is refused. */
#include "codec.h"
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "test_support.h"
#include "transport.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define HB_MS  200
#define TEL_MS 400
#define MODEL  "stories260K"

typedef struct {
    fleet_fixture f;
    char model_path[512];
    char ctl[512];
    char tmux_sock[400];
    pid_t agents[2];
} world;

static world *W;

/* Run a shell command line; its stdout (at most cap bytes) in out; returns the exit code. */
static int sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0;
    if (out) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
    } else {
        char junk[4096];
        while (fread(junk, 1, sizeof junk, p) > 0) {
        }
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void start_agent(world *w, int i, const char *key)
{
    char ini[512], text[2048], bin[512], log[512], keyp[512], server[512];
    snprintf(ini, sizeof ini, "%s/agent-%s.ini", w->f.dir, key);
    fx_key_path(&w->f, key, "key", keyp, sizeof keyp);
    fx_key_path(&w->f, "coordinator", "pub", server, sizeof server);
    snprintf(text, sizeof text,
             "[agent]\ncoordinator = %s\nserver_key = %s\nkey = %s\nheartbeat_ms = %d\n"
             "telemetry_ms = %d\n[model " MODEL "]\npath = %s\nctx = 1024\nslots = 2\n"
             "threads = 1\nchat_template = chatml\n",
             w->f.agents_ep, server, keyp, HB_MS, TEL_MS, w->model_path);
    FILE *f = fopen(ini, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    ts_bin_path("agent/edgefleet-agent", bin, sizeof bin);
    snprintf(log, sizeof log, "%s/agent-%s.log", w->f.dir, key);
    char *argv[] = {bin, "--config", ini, NULL};
    w->agents[i] = ts_spawn(argv, log);
    assert_true(w->agents[i] > 0);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || ts_model_path(MODEL ".gguf", w->model_path, sizeof w->model_path) != 0 ||
        fx_setup(&w->f) != 0 || fx_add_key(&w->f, "op", "operators", NULL) ||
        fx_add_key(&w->f, "cli", "clients", NULL) || fx_add_key(&w->f, "b0", "agents", NULL) ||
        fx_add_key(&w->f, "b1", "agents", NULL) || fx_start_coordinator(&w->f, HB_MS, 3, 64))
        return -1;
    ts_bin_path("tools/edgefleetctl", w->ctl, sizeof w->ctl);
    snprintf(w->tmux_sock, sizeof w->tmux_sock, "%s/tmux.sock", w->f.dir);
    W = w;
    *state = w;
    start_agent(w, 0, "b0");
    start_agent(w, 1, "b1");
    if (fx_wait_agents(&w->f, "op", 2, 30000) != 2)
        return -1;
    char path[512];
    setenv("EDGEFLEET_COORDINATOR", w->f.clients_ep, 1);
    setenv("EDGEFLEET_TELEMETRY", w->f.telemetry_ep, 1);
    fx_key_path(&w->f, "coordinator", "pub", path, sizeof path);
    setenv("EDGEFLEET_SERVER_KEY", path, 1);
    fx_key_path(&w->f, "op", "key", path, sizeof path);
    setenv("EDGEFLEET_KEY", path, 1);
    setenv("EDGEFLEET_ALLOW_DIR", w->f.allow, 1);
    setenv("HOME", w->f.dir, 1); /* no ctl.ini, chat history in the temp dir */
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    if (!w)
        return 0;
    sh(NULL, 0, "tmux -S %s kill-server 2>/dev/null", w->tmux_sock);
    for (int i = 0; i < 2; i++)
        ts_kill_wait(w->agents[i], SIGKILL, 2000);
    fx_teardown(&w->f);
    free(w);
    return 0;
}

/* ---- token accounting ---------------------------------------------------------------------- */

typedef struct {
    uint64_t gen_tokens;
    int samples, finished, idle_after;
} tally;

static void test_samples_count_the_tokens_generated(void **state)
{
    world *w = *state;
    /* Every sample of both boards from before the run until each shows an idle interval after
     * the run's Done: their tokens add up to what the run generated. */
    char *out = malloc(1 << 20);
    assert_non_null(out);
    ef_client_t *c = fx_client(&w->f, "cli", 30000);
    assert_non_null(c);
    ef_gen_params gp = ef_gen_default_params();
    gp.max_tokens = 48;
    gp.temperature = 0;
    ef_result res;
    /* Subscribed first: the stream runs in the background for 40 samples (~8 s at 400 ms x 2). */
    char file[512];
    snprintf(file, sizeof file, "%s/telemetry.jsonl", w->f.dir);
    assert_int_equal(sh(NULL, 0, "%s telemetry --count 30 > %s 2>&1 & sleep 1", w->ctl, file), 0);
    assert_int_equal(ef_client_generate(c, MODEL, "Once upon a time", &gp, NULL, NULL, &res), 0);
    assert_true(res.completion_tokens > 0);
    ef_client_destroy(&c);
    /* Wait for the stream to end (30 samples; the fleet topic included). */
    for (int i = 0; i < 100 && sh(NULL, 0, "test $(wc -l < %s) -ge 30", file) != 0; i++)
        ts_sleep_ms(100);
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    tally t[2] = {{0}};
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line); /* JSON lines: each parses alone */
        assert_non_null(j);
        const char *agent = cJSON_GetObjectItem(j, "agent")->valuestring;
        double tps = cJSON_GetObjectItem(j, "gen_tps")->valuedouble;
        double tokens = cJSON_GetObjectItem(j, "gen_tokens")->valuedouble;
        double ms = cJSON_GetObjectItem(j, "interval_ms")->valuedouble;
        int fin = (int)cJSON_GetObjectItem(j, "finished")->valuedouble;
        /* tokens/s is the interval's own: tokens over its length (stated tolerance: 1e-6,
         * floating point only). */
        if (ms > 0)
            assert_true(tps * ms / 1000.0 > tokens - 1e-6 && tps * ms / 1000.0 < tokens + 1e-6);
        int b = strcmp(agent, "b0") == 0 ? 0 : strcmp(agent, "b1") == 0 ? 1 : -1;
        if (b >= 0) {
            t[b].gen_tokens += (uint64_t)tokens;
            t[b].samples++;
            if (t[b].finished && fin == 0 && tokens == 0) {
                assert_true(tps == 0.0); /* an idle board reports 0, not its last value */
                t[b].idle_after++;
            }
            t[b].finished += fin;
        }
        cJSON_Delete(j);
    }
    fclose(f);
    int served = strcmp(res.agent, "b0") == 0 ? 0 : 1;
    assert_int_equal(t[served].finished, 1);
    assert_int_equal(t[served].gen_tokens, res.completion_tokens);
    assert_true(t[served].idle_after >= 1);
    assert_int_equal(t[1 - served].gen_tokens, 0);
    assert_true(t[1 - served].samples >= 2);
    free(out);
}

/* ---- --json and exit codes ----------------------------------------------------------------- */

static void parses(const char *cmd)
{
    char out[65536];
    int rc = sh(out, sizeof out, "%s %s", W->ctl, cmd);
    if (rc != 0)
        fail_msg("edgefleetctl %s: exit %d", cmd, rc);
    cJSON *j = cJSON_Parse(out);
    if (!j)
        fail_msg("edgefleetctl %s: not one JSON document: %s", cmd, out);
    cJSON_Delete(j);
}

static void test_json_outputs_parse_back(void **state)
{
    world *w = *state;
    parses("status --json");
    parses("agents --json");
    parses("models --json");
    parses("top --json --count 1");
    parses("keys list --json");
    parses("telemetry --count 1 --json");
    parses("generate --model " MODEL " --max-tokens 4 --json 'Once'");
    parses("drain b0 --json");
    parses("undrain b0 --json");
    char out[65536];
    assert_int_equal(sh(out, sizeof out, "%s agents --json", w->ctl), 0);
    cJSON *j = cJSON_Parse(out);
    assert_int_equal(cJSON_GetArraySize(j), 2); /* one entry per board */
    cJSON_Delete(j);
    /* Options anywhere: after the prompt too. */
    assert_int_equal(sh(out, sizeof out,
                        "%s generate 'Once upon' --model " MODEL " --max-tokens 8 2>/dev/null",
                        w->ctl),
                     0);
    assert_true(strlen(out) > 0);
    assert_int_equal(sh(NULL, 0, "%s --version | grep -q edgefleetctl", w->ctl), 0);
    assert_int_equal(sh(NULL, 0, "%s agents --help | grep -q usage", w->ctl), 0);
}

static void test_refusals_and_exit_codes(void **state)
{
    world *w = *state;
    char cli[512], out[4096];
    fx_key_path(&w->f, "cli", "key", cli, sizeof cli);
    /* A client key: models yes; operator views and the telemetry stream no (exit 4). */
    assert_int_equal(sh(NULL, 0, "%s models --key %s", w->ctl, cli), 0);
    assert_int_equal(sh(NULL, 0, "%s agents --key %s 2>/dev/null", w->ctl, cli), 4);
    assert_int_equal(
        sh(out, sizeof out, "%s telemetry --count 1 --timeout-ms 3000 --key %s 2>&1", w->ctl, cli),
        4);
    assert_non_null(strstr(out, "refused"));
    /* Nothing at the endpoint: exit 3 with a clear message. */
    int port = ts_free_port();
    assert_int_equal(sh(out, sizeof out,
                        "%s status --coordinator tcp://127.0.0.1:%d --timeout-ms 1000 2>&1", w->ctl,
                        port),
                     3);
    assert_non_null(strstr(out, "nothing answers"));
    assert_int_equal(sh(NULL, 0, "%s nosuchcommand 2>/dev/null", w->ctl), 2);
    /* Revoked: the file goes, the next connection is refused. */
    assert_int_equal(sh(NULL, 0, "%s keys revoke clients cli >/dev/null", w->ctl), 0);
    assert_int_equal(sh(NULL, 0, "%s models --timeout-ms 3000 --key %s 2>/dev/null", w->ctl, cli),
                     4);
    char pub[512];
    fx_key_path(&w->f, "cli", "pub", pub, sizeof pub);
    assert_int_equal(sh(NULL, 0, "%s keys add clients cli %s >/dev/null", w->ctl, pub), 0);
    assert_int_equal(sh(NULL, 0, "%s models --key %s >/dev/null", w->ctl, cli), 0);
}

/* ---- pseudo-terminals ---------------------------------------------------------------------- */

/* tmux's screen of session s waits until it holds needle (polls up to timeout_ms). */
static int screen_has(const char *s, const char *needle, char *screen, size_t cap, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        sh(screen, cap, "tmux -S %s capture-pane -p -t %s", W->tmux_sock, s);
        if (strstr(screen, needle))
            return 1;
        ts_sleep_ms(200);
    }
    return 0;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, prefix, len) == 0 && p[len] == ' ';
    return n;
}

static void test_top_renders_one_row_per_board(void **state)
{
    world *w = *state;
    assert_int_equal(sh(NULL, 0,
                        "tmux -S %s new-session -d -s top -x 160 -y 30 "
                        "'%s top --sort name; sleep 30'",
                        w->tmux_sock, w->ctl),
                     0);
    char screen[16384];
    assert_true(screen_has("top", "FLEET", screen, sizeof screen, 10000));
    assert_int_equal(count_lines_starting(screen, "b0"), 1);
    assert_int_equal(count_lines_starting(screen, "b1"), 1);
    assert_int_equal(count_lines_starting(screen, "FLEET"), 1);
    assert_non_null(strstr(screen, "edgefleet top - 2 device(s)"));
    /* It refreshes in place: the screen is redrawn, not scrolled (one header). */
    assert_true(screen_has("top", "sorted by name", screen, sizeof screen, 3000));
    assert_int_equal(count_lines_starting(screen, "DEVICE"), 1);
    sh(NULL, 0, "tmux -S %s send-keys -t top C-c", w->tmux_sock);
}

static void test_chat_answers_through_a_pseudo_terminal(void **state)
{
    world *w = *state;
    assert_int_equal(sh(NULL, 0,
                        "tmux -S %s new-session -d -s chat -x 160 -y 30 "
                        "'%s chat --model " MODEL " --max-tokens 16; echo chat-exit=$?; sleep 30'",
                        w->tmux_sock, w->ctl),
                     0);
    char screen[16384];
    assert_true(screen_has("chat", "you>", screen, sizeof screen, 10000));
    sh(NULL, 0, "tmux -S %s send-keys -t chat 'Once upon a time' Enter", w->tmux_sock);
    assert_true(screen_has("chat", "tokens,", screen, sizeof screen, 20000)); /* the summary */
    sh(NULL, 0, "tmux -S %s send-keys -t chat 'and then' Enter", w->tmux_sock);
    /* The second turn's prompt was partly the session's cache: fewer evaluated than sent. */
    for (int i = 0; i < 100; i++) {
        sh(screen, sizeof screen, "tmux -S %s capture-pane -p -t chat", w->tmux_sock);
        const char *first = strstr(screen, "tokens,");
        if (first && strstr(first + 1, "tokens,"))
            break;
        ts_sleep_ms(200);
    }
    sh(NULL, 0, "tmux -S %s send-keys -t chat Enter", w->tmux_sock);
    assert_true(screen_has("chat", "chat-exit=0", screen, sizeof screen, 10000));
    /* Not a terminal: lines read plainly from the pipe. */
    char out[8192];
    assert_int_equal(sh(out, sizeof out,
                        "printf 'Once upon a time\\n' | %s chat --model " MODEL
                        " --max-tokens 8 2>/dev/null",
                        w->ctl),
                     0);
    assert_non_null(strstr(out, "assistant> "));
}

static void test_evict_drops_a_board(void **state)
{
    world *w = *state;
    char out[4096];
    assert_int_equal(sh(out, sizeof out, "%s evict b1 --json", w->ctl), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    cJSON_Delete(j);
    assert_true(ts_file_wait_for(w->f.log, "agent b1 evicted by operators/op: link cut", 3000));
    assert_int_equal(sh(NULL, 0, "%s evict nobody 2>/dev/null", w->ctl), 1);
    /* Its key is still allowed: it registers again. */
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 15000), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_count_the_tokens_generated),
        cmocka_unit_test(test_json_outputs_parse_back),
        cmocka_unit_test(test_refusals_and_exit_codes),
        cmocka_unit_test(test_top_renders_one_row_per_board),
        cmocka_unit_test(test_chat_answers_through_a_pseudo_terminal),
        cmocka_unit_test(test_evict_drops_a_board),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
