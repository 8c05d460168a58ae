/* Opening a libedgefleet client says why it cannot: a missing, garbage or group-readable key
 * file, a bad endpoint string, nothing listening, a wrong server key, a key the coordinator does
 * not allow, each with its own code and words; and `edgefleetctl status` prints that cause, exits
 * with a code that tells them apart, and lets --timeout-ms bound the connect wait. Real
 * coordinator process, real CURVE sockets. */
#include "clock.h"
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "test_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#define HB_MS 200
#define QUEUE 8
/* Long enough for a handshake on a loaded box; the failures below come sooner or by it. */
#define CONNECT_MS 3000u
/* The library's connect timeout when none is given (client_internal.h). */
#define DEFAULT_CONNECT_MS 5000.0
/* What edgefleetctl exits with (tools/ctl.h). */
#define CTL_BAD_ARG     2
#define CTL_UNREACHABLE 3
#define CTL_REFUSED     4

typedef struct {
    fleet_fixture f;
    char missing[400], garbage[400], readable[400], stranger_pub[400];
    char nothing_ep[64]; /* a free port nobody listens on */
} world;

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || fx_setup(&w->f) != 0)
        return -1;
    keys_pair cli;
    if (fx_add_key(&w->f, "op", "operators", NULL) || fx_add_key(&w->f, "cli", "clients", &cli) ||
        fx_add_key(&w->f, "stranger", NULL, NULL))
        return -1;
    snprintf(w->missing, sizeof w->missing, "%s/nope.key", w->f.keys);
    snprintf(w->garbage, sizeof w->garbage, "%s/garbage.key", w->f.keys);
    snprintf(w->readable, sizeof w->readable, "%s/readable.key", w->f.keys);
    fx_key_path(&w->f, "stranger", "pub", w->stranger_pub, sizeof w->stranger_pub);
    write_file(w->garbage, "this is not a key\n", 0600);
    char line[KEYS_Z85_LEN + 2];
    snprintf(line, sizeof line, "%s\n", cli.secret_z85);
    write_file(w->readable, line, 0644);
    snprintf(w->nothing_ep, sizeof w->nothing_ep, "tcp://127.0.0.1:%d", ts_free_port());
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    fx_teardown(&w->f);
    free(w);
    return 0;
}

/* ef_client_open with key file `key` (NULL: keys/cli.key), server key file `server_pub` (NULL:
 * the coordinator's) at endpoint ep (NULL: the coordinator's). Returns its code; why filled. */
static int try_open(world *w, const char *ep, const char *server_pub, const char *key,
                    uint32_t connect_ms, char *why, size_t cap)
{
    char cli_key[512], coord_pub[512];
    fx_key_path(&w->f, "cli", "key", cli_key, sizeof cli_key);
    fx_key_path(&w->f, "coordinator", "pub", coord_pub, sizeof coord_pub);
    ef_client_params p = ef_client_default_params();
    p.endpoint = ep ? ep : w->f.clients_ep;
    p.server_key_file = server_pub ? server_pub : coord_pub;
    p.key_file = key ? key : cli_key;
    p.connect_timeout_ms = connect_ms;
    ef_client_t *c = (ef_client_t *)&p; /* must come back NULL on failure */
    int rc = ef_client_open(&p, &c, why, cap);
    if (rc == 0)
        assert_non_null(c);
    else
        assert_null(c);
    ef_client_destroy(&c);
    return rc;
}

static void assert_says(const char *why, const char *words)
{
    if (!strstr(why, words))
        fail_msg("reason \"%s\" does not say \"%s\"", why, words);
}

static void test_open_says_which_key_file_is_missing_garbage_or_readable_by_others(void **state)
{
    world *w = *state;
    char why[512];
    assert_int_equal(try_open(w, NULL, NULL, w->missing, CONNECT_MS, why, sizeof why), EF_ENOENT);
    assert_says(why, "nope.key");
    assert_says(why, "No such file");
    assert_int_equal(try_open(w, NULL, NULL, w->garbage, CONNECT_MS, why, sizeof why), EF_EKEY);
    assert_says(why, "garbage.key");
    assert_says(why, "not a key file");
    assert_int_equal(try_open(w, NULL, NULL, w->readable, CONNECT_MS, why, sizeof why),
                     EF_EKEYPERM);
    assert_says(why, "readable.key");
    assert_says(why, "chmod 600");
    char missing_pub[600];
    snprintf(missing_pub, sizeof missing_pub, "%.*s.pub", (int)(strlen(w->missing) - 4),
             w->missing);
    assert_int_equal(try_open(w, NULL, missing_pub, NULL, CONNECT_MS, why, sizeof why), EF_ENOENT);
    assert_says(why, "server key");
    /* A secret key given as the server's: said so (keys.c's rule), not a handshake failure. */
    assert_int_equal(try_open(w, NULL, w->readable, NULL, CONNECT_MS, why, sizeof why), EF_EKEY);
    assert_says(why, "needs the coordinator's public key");
}

static void test_open_refuses_a_bad_endpoint_string(void **state)
{
    world *w = *state;
    char why[512];
    assert_int_equal(try_open(w, "127.0.0.1:7702", NULL, NULL, CONNECT_MS, why, sizeof why),
                     EF_EINVAL);
    assert_says(why, "bad endpoint \"127.0.0.1:7702\"");
}

static void test_open_says_nothing_answers_within_its_connect_timeout(void **state)
{
    world *w = *state;
    char why[512];
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(try_open(w, w->nothing_ep, NULL, NULL, 300, why, sizeof why), EF_ENOTCONN);
    assert_true((double)(clock_mono_ms() - t0) < DEFAULT_CONNECT_MS / 2);
    assert_says(why, "nothing answers at");
    assert_says(why, w->nothing_ep);
}

static void test_open_tells_a_wrong_server_key_from_a_key_not_allowed(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, QUEUE), 0);
    char why[512], stranger_key[512];
    assert_int_equal(try_open(w, NULL, w->stranger_pub, NULL, CONNECT_MS, why, sizeof why),
                     EF_ECRYPTO);
    assert_says(why, "CURVE handshake with");
    assert_says(why, "wrong server key, or this key is not allowed");
    fx_key_path(&w->f, "stranger", "key", stranger_key, sizeof stranger_key);
    assert_int_equal(try_open(w, NULL, NULL, stranger_key, CONNECT_MS, why, sizeof why),
                     EF_EDENIED);
    assert_says(why, "refused this client's key (not in its allowlist");
    assert_int_equal(try_open(w, NULL, NULL, NULL, CONNECT_MS, why, sizeof why), 0);
    assert_string_equal(why, "");
}

/* Run `edgefleetctl status` with these files and endpoint (NULL: the good ones) and --timeout-ms;
 * its stderr goes to out_log. Returns its exit code (-1 if it did not exit in 20 s). */
static int run_status(world *w, const char *ep, const char *server_pub, const char *key,
                      const char *timeout_ms, const char *out_log)
{
    char bin[512], op_key[512], coord_pub[512];
    assert_int_equal(ts_bin_path("tools/edgefleetctl", bin, sizeof bin), 0);
    fx_key_path(&w->f, "op", "key", op_key, sizeof op_key);
    fx_key_path(&w->f, "coordinator", "pub", coord_pub, sizeof coord_pub);
    char *argv[] = {bin,
                    "status",
                    "--coordinator",
                    (char *)(ep ? ep : w->f.clients_ep),
                    "--server-key",
                    (char *)(server_pub ? server_pub : coord_pub),
                    "--key",
                    (char *)(key ? key : op_key),
                    "--timeout-ms",
                    (char *)timeout_ms,
                    NULL};
    pid_t pid = ts_spawn(argv, out_log);
    assert_true(pid > 0);
    int st = ts_wait_exit(pid, 20000);
    if (st == -1) {
        ts_kill_wait(pid, 9, 1000);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct {
    const char *what;
    const char *ep, *server_pub, *key; /* NULL: the good one */
    int exit_code;
    const char *words;
} misconfig;

static void test_ctl_status_prints_the_cause_of_each_misconfiguration(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, QUEUE), 0);
    char stranger_key[512];
    fx_key_path(&w->f, "stranger", "key", stranger_key, sizeof stranger_key);
    const misconfig cases[] = {
        {"missing key", NULL, NULL, w->missing, CTL_BAD_ARG, "No such file"},
        {"garbage key", NULL, NULL, w->garbage, CTL_BAD_ARG, "not a key file"},
        {"0644 key", NULL, NULL, w->readable, CTL_BAD_ARG, "chmod 600"},
        {"bad endpoint", "127.0.0.1:7702", NULL, NULL, CTL_BAD_ARG, "bad endpoint"},
        {"nothing listening", w->nothing_ep, NULL, NULL, CTL_UNREACHABLE, "nothing answers at"},
        {"wrong server key", NULL, w->stranger_pub, NULL, CTL_REFUSED, "wrong server key"},
        {"key not allowed", NULL, NULL, stranger_key, CTL_REFUSED, "not in its allowlist"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const misconfig *m = &cases[i];
        char out_log[512], text[4096] = "";
        snprintf(out_log, sizeof out_log, "%s/ctl-%zu.log", w->f.dir, i);
        int code = run_status(w, m->ep, m->server_pub, m->key, "3000", out_log);
        FILE *fp = fopen(out_log, "r");
        assert_non_null(fp);
        size_t n = fread(text, 1, sizeof text - 1, fp);
        text[n] = '\0';
        fclose(fp);
        if (code != m->exit_code || !strstr(text, m->words))
            fail_msg("%s: exit %d (want %d), said: %s", m->what, code, m->exit_code, text);
    }
}

static void test_ctl_timeout_bounds_the_connect_wait(void **state)
{
    world *w = *state;
    char out_log[512];
    snprintf(out_log, sizeof out_log, "%s/ctl-timeout.log", w->f.dir);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(run_status(w, w->nothing_ep, NULL, NULL, "300", out_log), CTL_UNREACHABLE);
    double took = (double)(clock_mono_ms() - t0);
    assert_true(took < DEFAULT_CONNECT_MS / 2);
    assert_true(ts_file_wait_for(out_log, "in 300 ms", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_open_says_which_key_file_is_missing_garbage_or_readable_by_others, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_a_bad_endpoint_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_says_nothing_answers_within_its_connect_timeout,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_tells_a_wrong_server_key_from_a_key_not_allowed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctl_status_prints_the_cause_of_each_misconfiguration,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctl_timeout_bounds_the_connect_wait, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
