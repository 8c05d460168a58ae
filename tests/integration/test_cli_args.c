/* The real binaries' argument parsing, for what fuzz_args found and what its moving out of
 * main() must keep: bad arguments exit 2 with a message naming them, --help exits 0, and
 * edgefleetctl generate refuses a missing or empty --model and NaN numbers before connecting
 * (the keys given exist nowhere: a parse that passed would fail later with another message).
 * edgefleetctl provision writes a bundle (key 0600), admits the board and overwrites nothing. */
#include "test_support.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[256];
static int runs;

/* Run bin (under $EDGEFLEET_BIN_DIR) with args; returns its exit code (-1 if killed) and leaves
 * its output in log. */
static int run(const char *bin, char *const args[], char *log, size_t cap)
{
    char path[512];
    assert_int_equal(ts_bin_path(bin, path, sizeof path), 0);
    char *argv[24] = {path};
    for (size_t i = 0; i < 22 && args[i]; i++)
        argv[i + 1] = args[i];
    snprintf(log, cap, "%s/run-%d.log", dir, ++runs);
    pid_t pid = ts_spawn(argv, log);
    assert_true(pid > 0);
    int st = ts_wait_exit(pid, 10000);
    if (st == -1) {
        ts_kill_wait(pid, SIGKILL, 2000);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect(int code, const char *bin, char *const args[], const char *needle)
{
    char log[512];
    assert_int_equal(run(bin, args, log, sizeof log), code);
    if (needle && !ts_file_wait_for(log, needle, 0))
        fail_msg("%s: output lacks \"%s\"", bin, needle);
}

#define ARGS(...) ((char *const[]){__VA_ARGS__, NULL})
#define CTL       "tools/edgefleetctl"
#define KEYS      "--key", "/nonexistent/c.key", "--server-key", "/nonexistent/s.pub"

static void test_generate_without_a_model_is_a_usage_error(void **state)
{
    (void)state;
    const char *need = "need --model and one prompt argument";
    expect(2, CTL, ARGS("generate", KEYS, "hello"), need);
    expect(2, CTL, ARGS("generate", "--model", "", KEYS, "hello"), need);
    expect(2, CTL, ARGS("generate", "--model", "m", KEYS), need);
}

static void test_generate_refuses_nan_numbers(void **state)
{
    (void)state;
    expect(2, CTL, ARGS("generate", "--model", "m", "--max-tokens", "nan", KEYS, "p"),
           "--max-tokens: \"nan\" is out of range");
    expect(2, CTL, ARGS("generate", "--model", "m", "--temperature", "NaN", KEYS, "p"),
           "--temperature: \"NaN\" is out of range");
}

static void test_the_moved_parsers_keep_their_codes_and_messages(void **state)
{
    (void)state;
    expect(0, "coordinator/edgefleet-coordinator", ARGS("--help"), "usage: edgefleet-coordinator");
    expect(2, "coordinator/edgefleet-coordinator", ARGS("--queue", "0"),
           "--queue: \"0\" is not a number in [1, 1000000]");
    expect(2, "coordinator/edgefleet-coordinator", ARGS("extra"), "unexpected argument \"extra\"");
    expect(0, "agent/edgefleet-agent", ARGS("--help"), "usage: edgefleet-agent");
    expect(2, "agent/edgefleet-agent", ARGS("--slots", "0"), "--slots: \"0\" is not a number");
    expect(0, "agent/edgefleet-agent", ARGS("--version"), "edgefleet-agent 0.");
    expect(0, "coordinator/edgefleet-coordinator", ARGS("--version"), "edgefleet-coordinator 0.");
    expect(0, CTL, ARGS("--version"), "edgefleetctl 0.");
    expect(2, "agent/edgefleet-agent", ARGS("--verbose"), "usage: edgefleet-agent");
    expect(2, CTL, ARGS("keygen"), "usage: edgefleetctl keygen");
    expect(0, CTL, ARGS("keygen", "--help"), "usage: edgefleetctl keygen");
    expect(2, CTL, ARGS("status", "extra"), "usage: edgefleetctl status");
    expect(2, CTL, ARGS("drain"), "usage: edgefleetctl drain AGENT");
    expect(2, CTL, ARGS("undrain", "a", "b"), "usage: edgefleetctl undrain AGENT");
}

/* provision: the bundle's files and modes, the board admitted, and nothing overwritten. */
static void test_provision_makes_a_bundle_and_never_overwrites(void **state)
{
    (void)state;
    char etc[320], keys[340], agents[340], out[320], path[400];
    snprintf(etc, sizeof etc, "%s/etc", dir);
    snprintf(keys, sizeof keys, "%s/keys", etc);
    snprintf(agents, sizeof agents, "%s/allow", etc);
    assert_int_equal(mkdir(etc, 0700) | mkdir(keys, 0700) | mkdir(agents, 0700), 0);
    strcat(agents, "/agents");
    assert_int_equal(mkdir(agents, 0700), 0);
    snprintf(out, sizeof out, "%s/bundles", dir);
    expect(2, CTL, ARGS("provision", "b1", "--etc", etc, "--out", out), "coordinator.pub");
    expect(0, CTL, ARGS("keygen", "coordinator", "--dir", keys), NULL);
    expect(0, CTL,
           ARGS("provision", "b1", "--etc", etc, "--out", out, "--coordinator",
                "tcp://10.0.0.1:7701", "--model", "/m/stories.gguf"),
           "provisioned b1");
    struct stat st;
    snprintf(path, sizeof path, "%s/b1/b1.key", out);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/b1/agent.ini", out);
    assert_true(ts_file_wait_for(path, "coordinator = tcp://10.0.0.1:7701", 0));
    assert_true(ts_file_wait_for(path, "[model stories]", 0));
    assert_true(ts_file_wait_for(path, "path = /m/stories.gguf", 0));
    snprintf(path, sizeof path, "%s/b1/coordinator.pub", out);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/b1.pub", agents);
    assert_int_equal(stat(path, &st), 0);
    expect(1, CTL, ARGS("provision", "b1", "--etc", etc, "--out", out), "already admitted");
    assert_int_equal(unlink(path), 0); /* revoked, but its bundle is still there */
    expect(1, CTL, ARGS("provision", "b1", "--etc", etc, "--out", out), "File exists");
    expect(2, CTL, ARGS("provision", "../b2", "--etc", etc, "--out", out), "bad board name");
    expect(2, CTL, ARGS("provision", "--etc", etc), "usage: edgefleetctl provision");
}

static int setup(void **state)
{
    (void)state;
    return ts_tempdir(dir, sizeof dir);
}

static int teardown(void **state)
{
    (void)state;
    ts_rmtree(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_without_a_model_is_a_usage_error),
        cmocka_unit_test(test_generate_refuses_nan_numbers),
        cmocka_unit_test(test_the_moved_parsers_keep_their_codes_and_messages),
        cmocka_unit_test(test_provision_makes_a_bundle_and_never_overwrites),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
