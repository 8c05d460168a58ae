/* Key files and config mistakes on the real binaries (real model, real coordinator on loopback):
 * a FIFO key, the wrong half of a key pair, a bad endpoint, agent INI mistakes and an unknown
 * chat_template exit 2 at once saying where; a FIFO .pub in an allowlist does not freeze the
 * coordinator; threads = 0 with a built-in chat_template joins the fleet. Every process started
 * here is killed in teardown, also when an assertion failed. */
#include "backend.h"
#include "fleet_fixture.h"
#include "test_support.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* "At once" on a loaded 2-core box: every exit tested here comes before any model is loaded,
 * while the old code blocked on the FIFO forever. */
#define EXIT_WAIT_MS 5000
/* An allowed operator's status call, handshake included, with a FIFO in the allowlist. */
#define ANSWER_MS 2500
/* An agent loading the small model and registering. */
#define JOIN_MS  20000
#define HB_MS    200
#define MAX_ARGS 24

typedef struct {
    fleet_fixture f;
    char model[1024], agent_bin[1024], coord_bin[1024], ctl_bin[1024];
    char ini[400]; /* f.dir/agent.ini */
    char coord_pub[400], coord_key[400], board_key[400], board_pub[400];
    char fifo_key[400], fifo_pub[400];
    pid_t agent_pid;
    int runs;
} fixture;

static int setup(void **state)
{
    fixture *w = calloc(1, sizeof *w);
    *state = w;
    if (!w || fx_setup(&w->f) != 0 ||
        ts_model_path("stories260K.gguf", w->model, sizeof w->model) != 0 ||
        ts_bin_path("agent/edgefleet-agent", w->agent_bin, sizeof w->agent_bin) != 0 ||
        ts_bin_path("coordinator/edgefleet-coordinator", w->coord_bin, sizeof w->coord_bin) != 0 ||
        ts_bin_path("tools/edgefleetctl", w->ctl_bin, sizeof w->ctl_bin) != 0 ||
        fx_add_key(&w->f, "board-a", "agents", NULL) != 0 ||
        fx_add_key(&w->f, "op", "operators", NULL) != 0 ||
        fx_add_key(&w->f, "stranger", NULL, NULL) != 0)
        return -1;
    snprintf(w->ini, sizeof w->ini, "%s/agent.ini", w->f.dir);
    fx_key_path(&w->f, "coordinator", "pub", w->coord_pub, sizeof w->coord_pub);
    fx_key_path(&w->f, "coordinator", "key", w->coord_key, sizeof w->coord_key);
    fx_key_path(&w->f, "board-a", "key", w->board_key, sizeof w->board_key);
    fx_key_path(&w->f, "board-a", "pub", w->board_pub, sizeof w->board_pub);
    fx_key_path(&w->f, "fifo", "key", w->fifo_key, sizeof w->fifo_key);
    fx_key_path(&w->f, "fifo", "pub", w->fifo_pub, sizeof w->fifo_pub);
    if (mkfifo(w->fifo_key, 0600) != 0 || mkfifo(w->fifo_pub, 0644) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fixture *w = *state;
    if (!w)
        return 0;
    ts_kill_wait(w->agent_pid, SIGTERM, 5000);
    fx_teardown(&w->f);
    free(w);
    return 0;
}

static void read_log(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(buf, 1, cap - 1, fp) : 0;
    buf[n] = '\0';
    if (fp)
        fclose(fp);
}

/* Run bin with args (NULL-terminated) until it exits by itself, output into a fresh log.
 * Returns its exit code, or -1 when it had to be killed after EXIT_WAIT_MS (or died of a
 * signal). */
static int run_to_exit(fixture *w, const char *bin, char *const args[], char *log, size_t cap)
{
    char *argv[MAX_ARGS + 2] = {(char *)bin};
    for (size_t i = 0; i < MAX_ARGS && args[i]; i++)
        argv[i + 1] = args[i];
    snprintf(log, cap, "%s/run-%d.log", w->f.dir, ++w->runs);
    pid_t pid = ts_spawn(argv, log);
    int st = ts_wait_exit(pid, EXIT_WAIT_MS);
    if (st == -1) {
        ts_kill_wait(pid, SIGKILL, 2000);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* bin with args exits 2 within EXIT_WAIT_MS and its output contains both needles. */
static void expect_exit_2(fixture *w, const char *bin, char *const args[], const char *needle,
                          const char *also)
{
    char log[600], text[4096];
    int code = run_to_exit(w, bin, args, log, sizeof log);
    read_log(log, text, sizeof text);
    if (code != 2 || !strstr(text, needle) || (also && !strstr(text, also)))
        fail_msg("exit %d (-1 = still running after %d ms), output:\n%s\nwanted exit 2 with "
                 "\"%s\"%s%s",
                 code, EXIT_WAIT_MS, text, needle, also ? " and " : "", also ? also : "");
}

static void write_ini(const fixture *w, const char *text)
{
    FILE *fp = fopen(w->ini, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

static void test_a_fifo_as_key_or_server_key_makes_the_agent_exit_2_at_once(void **state)
{
    fixture *w = *state;
    char *fifo_key[] = {"--coordinator", w->f.agents_ep, "--server-key", w->coord_pub, "--key",
                        w->fifo_key,     "--model",      w->model,       NULL};
    expect_exit_2(w, w->agent_bin, fifo_key, w->fifo_key, "is a FIFO, not a regular file");
    char *fifo_pub[] = {"--coordinator", w->f.agents_ep, "--server-key", w->fifo_pub, "--key",
                        w->board_key,    "--model",      w->model,       NULL};
    expect_exit_2(w, w->agent_bin, fifo_pub, w->fifo_pub, "is a FIFO, not a regular file");
    char *dev[] = {"--coordinator", w->f.agents_ep, "--server-key", "/dev/zero", "--key",
                   w->board_key,    "--model",      w->model,       NULL};
    expect_exit_2(w, w->agent_bin, dev, "/dev/zero: is a character device", NULL);
}

static void test_a_fifo_as_key_makes_the_coordinator_exit_2_at_once(void **state)
{
    fixture *w = *state;
    char *args[] = {"--key",
                    w->fifo_key,
                    "--allow-dir",
                    w->f.allow,
                    "--agents-endpoint",
                    w->f.agents_ep,
                    "--clients-endpoint",
                    w->f.clients_ep,
                    "--telemetry-endpoint",
                    w->f.telemetry_ep,
                    NULL};
    expect_exit_2(w, w->coord_bin, args, w->fifo_key, "is a FIFO, not a regular file");
}

static void test_the_wrong_half_of_a_key_pair_exits_2_naming_the_right_file(void **state)
{
    fixture *w = *state;
    char want[900];
    char *secret_as_server[] = {"--coordinator", w->f.agents_ep, "--server-key",
                                w->coord_key,    "--key",        w->board_key,
                                "--model",       w->model,       NULL};
    snprintf(want, sizeof want, "--server-key needs the coordinator's public key %s", w->coord_pub);
    expect_exit_2(w, w->agent_bin, secret_as_server, "this is a secret key file", want);

    char *public_as_key[] = {"--coordinator", w->f.agents_ep, "--server-key", w->coord_pub, "--key",
                             w->board_pub,    "--model",      w->model,       NULL};
    snprintf(want, sizeof want, "this is a public key file; --key needs the secret key %s",
             w->board_key);
    expect_exit_2(w, w->agent_bin, public_as_key, want, NULL);

    char op_key[400];
    fx_key_path(&w->f, "op", "key", op_key, sizeof op_key);
    char *ctl[] = {"status",     "--coordinator", w->f.clients_ep, "--server-key",
                   w->coord_key, "--key",         op_key,          NULL};
    snprintf(want, sizeof want, "--server-key needs the coordinator's public key %s", w->coord_pub);
    expect_exit_2(w, w->ctl_bin, ctl, "this is a secret key file", want);

    char *coord_public[] = {"--key",    w->coord_pub,        "--allow-dir",
                            w->f.allow, "--agents-endpoint", w->f.agents_ep,
                            NULL};
    snprintf(want, sizeof want, "this is a public key file; --key needs the secret key %s",
             w->coord_key);
    expect_exit_2(w, w->coord_bin, coord_public, want, NULL);
}

static void test_an_endpoint_that_is_not_tcp_host_port_exits_2_naming_the_flag(void **state)
{
    fixture *w = *state;
    char *agent[] = {"--coordinator", "127.0.0.1:7701", "--server-key", w->coord_pub, "--key",
                     w->board_key,    "--model",        w->model,       NULL};
    expect_exit_2(w, w->agent_bin, agent,
                  "--coordinator: \"127.0.0.1:7701\" does not start with tcp://", NULL);
    char *coord[] = {
        "--key",        w->coord_key,         "--allow-dir",     w->f.allow, "--agents-endpoint",
        w->f.agents_ep, "--clients-endpoint", "tcp://127.0.0.1", NULL};
    expect_exit_2(w, w->coord_bin, coord, "--clients-endpoint: \"tcp://127.0.0.1\" has no port",
                  NULL);
}

static void test_agent_config_mistakes_exit_2_with_file_line(void **state)
{
    fixture *w = *state;
    static const struct {
        const char *text;
        int line;
        const char *what;
    } cases[] = {
        {"[agent]\nname =\n", 2, "empty value for \"name\""},
        {"[agent]\nname = a\ncoordinator = coordinator.plant.lan:7701\n", 3,
         "bad value for \"coordinator\""},
        {"[agent]\nname = a\nheartbeat_ms = 500\nname = b\n", 4,
         "duplicate key \"name\" in [agent] (first at line 2)"},
        {"[agent]\nname = a\n\n[agent]\nkey = /k\n", 4,
         "duplicate section [agent] (first at line 1)"},
    };
    char *args[] = {"--config", w->ini, NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_ini(w, cases[i].text);
        char where[600];
        snprintf(where, sizeof where, "%s:%d: ", w->ini, cases[i].line);
        expect_exit_2(w, w->agent_bin, args, where, cases[i].what);
    }
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.ini", w->f.dir);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    char *fifo_config[] = {"--config", fifo, NULL};
    expect_exit_2(w, w->agent_bin, fifo_config, fifo, "is a FIFO, not a regular file");
}

static void test_an_unknown_chat_template_exits_2_with_file_line(void **state)
{
    fixture *w = *state;
    char text[2048];
    snprintf(text, sizeof text, "[model stories]\npath = %s\nctx = 256\nchat_template = chatm1\n",
             w->model);
    write_ini(w, text);
    char *args[] = {"--config",     w->ini,         "--coordinator",
                    w->f.agents_ep, "--server-key", w->coord_pub,
                    "--key",        w->board_key,   NULL};
    char want[600];
    snprintf(want, sizeof want, "%s:4: unknown chat_template \"chatm1\" in [model stories]",
             w->ini);
    /* The message lists the names that would have worked. */
    expect_exit_2(w, w->agent_bin, args, want, "chatml");
}

static void test_the_template_check_takes_builtin_names_and_template_texts(void **state)
{
    (void)state;
    char known[2048];
    assert_int_equal(backend_llama_check_template("chatml", known, sizeof known), 0);
    assert_int_equal(backend_llama_check_template("llama3", known, sizeof known), 0);
    assert_int_equal(
        backend_llama_check_template("{% for m in messages %}<|im_start|>{{ m.role }}\n"
                                     "{{ m.content }}<|im_end|>\n{% endfor %}",
                                     known, sizeof known),
        0);
    assert_int_equal(backend_llama_check_template("chatm1", known, sizeof known), EF_ECONFIG);
    assert_non_null(strstr(known, "chatml"));
    assert_non_null(strstr(known, "llama3"));
    assert_int_equal(backend_llama_check_template("", known, sizeof known), EF_ECONFIG);
    /* A short buffer gets what fits, terminated. */
    char tiny[8];
    assert_int_equal(backend_llama_check_template("nope", tiny, sizeof tiny), EF_ECONFIG);
    assert_true(strlen(tiny) < sizeof tiny);
}

static void test_threads_0_and_a_builtin_template_start_an_agent_that_joins(void **state)
{
    fixture *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    char text[4096];
    snprintf(text, sizeof text,
             "[agent]\nname = board-a\ncoordinator = %s\nserver_key = %s\nkey = %s\n"
             "heartbeat_ms = %d\n\n[model stories]\npath = %s\nctx = 256\nthreads = 0\n"
             "chat_template = chatml\n",
             w->f.agents_ep, w->coord_pub, w->board_key, HB_MS, w->model);
    write_ini(w, text);
    char log[600];
    snprintf(log, sizeof log, "%s/agent.log", w->f.dir);
    char *argv[] = {w->agent_bin, "--config", w->ini, NULL};
    w->agent_pid = ts_spawn(argv, log);
    assert_true(w->agent_pid > 0);
    int seen = fx_wait_agents(&w->f, "op", 1, JOIN_MS);
    if (seen != 1) {
        char out[4096];
        read_log(log, out, sizeof out);
        fail_msg("%d agents registered; agent output:\n%s", seen, out);
    }
}

static void test_a_fifo_in_the_client_allowlist_does_not_freeze_the_coordinator(void **state)
{
    fixture *w = *state;
    /* A FIFO (skipped by its directory entry type) and a symlink to it (opened, then refused
     * by fstat): before, the ZAP handler's open() of either blocked the coordinator's loop. */
    char jam[600], link[600];
    snprintf(jam, sizeof jam, "%s/clients/jammer.pub", w->f.allow);
    snprintf(link, sizeof link, "%s/clients/jammer-link.pub", w->f.allow);
    assert_int_equal(mkfifo(jam, 0644), 0);
    assert_int_equal(symlink(jam, link), 0);
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);

    /* A stranger's handshake makes the coordinator read every .pub of clients/ and
     * operators/; it must be refused (not left waiting) ... */
    ef_client_t *stranger = fx_client(&w->f, "stranger", 2000);
    assert_non_null(stranger);
    ef_fleet_status *st = NULL;
    int rc = ef_client_status(stranger, &st);
    ef_client_destroy(&stranger);
    assert_int_equal(rc, EF_EDENIED);

    /* ... and an allowed operator is still answered at once. */
    ef_client_t *op = fx_client(&w->f, "op", ANSWER_MS);
    assert_non_null(op);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = ef_client_status(op, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ef_client_destroy(&op);
    long took = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_int_equal(rc, 0);
    ef_fleet_status_free(&st);
    if (took > ANSWER_MS)
        fail_msg("status took %ld ms", took);
    assert_int_equal(kill(w->f.coord_pid, 0), 0);
    int exit_status = fx_stop_coordinator(&w->f);
    assert_true(WIFEXITED(exit_status));
    assert_int_equal(WEXITSTATUS(exit_status), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_fifo_as_key_or_server_key_makes_the_agent_exit_2_at_once),
        T(test_a_fifo_as_key_makes_the_coordinator_exit_2_at_once),
        T(test_the_wrong_half_of_a_key_pair_exits_2_naming_the_right_file),
        T(test_an_endpoint_that_is_not_tcp_host_port_exits_2_naming_the_flag),
        T(test_agent_config_mistakes_exit_2_with_file_line),
        T(test_an_unknown_chat_template_exits_2_with_file_line),
        T(test_the_template_check_takes_builtin_names_and_template_texts),
        T(test_threads_0_and_a_builtin_template_start_an_agent_that_joins),
        T(test_a_fifo_in_the_client_allowlist_does_not_freeze_the_coordinator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
