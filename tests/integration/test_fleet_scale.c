/* A few hundred boards on one coordinator, as bench_fleet_scale runs them (bench/fleet_harness.c:
 * CURVE DEALERs with their own keys in one process, the real agent protocol): all register and
 * are listed by status, all are routable, silenced they are evicted after their liveness window,
 * heard again they register again, and after a SIGKILL and restart of the coordinator every one
 * comes back. No timing thresholds: every wait is bounded generously and only counts. */
#include "coord_client.h"
#include "fleet_fixture.h"
#include "fleet_harness.h"
#include "test_support.h"

#include <zmq.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define N_AGENTS 300
#define HB_MS    200 /* the harness's and the coordinator's: a 600 ms liveness window */
#define MODEL    "scale-model"
#define WAIT_MS  30000

typedef struct {
    fleet_fixture f;
    keys_pair keys[N_AGENTS];
    pid_t harness;
    int report_fd, control_fd;
    harness_report last;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || fx_setup(&w->f) != 0 || fx_add_key(&w->f, "op", "operators", NULL) != 0 ||
        fx_add_key(&w->f, "cli", "clients", NULL) != 0)
        return -1;
    for (int i = 0; i < N_AGENTS; i++) {
        char path[512];
        if (zmq_curve_keypair(w->keys[i].public_z85, w->keys[i].secret_z85) != 0)
            return -1;
        snprintf(path, sizeof path, "%s/agents/h-%d.pub", w->f.allow, i);
        FILE *fp = fopen(path, "w");
        if (!fp)
            return -1;
        fprintf(fp, "%s\n", w->keys[i].public_z85);
        fclose(fp);
    }
    w->harness = -1;
    *state = w;
    return 0;
}

static void command(world *w, char cmd) { assert_int_equal(write(w->control_fd, &cmd, 1), 1); }

static int teardown(void **state)
{
    world *w = *state;
    if (w->harness > 0) {
        command(w, HARNESS_CMD_QUIT);
        if (ts_wait_exit(w->harness, 5000) < 0)
            ts_kill_wait(w->harness, SIGKILL, 1000);
        close(w->report_fd);
        close(w->control_fd);
    }
    fx_teardown(&w->f);
    free(w);
    return 0;
}

static void start_harness(world *w)
{
    int rep[2], ctl[2];
    assert_int_equal(pipe(rep), 0);
    assert_int_equal(pipe(ctl), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(rep[0]);
        close(ctl[1]);
        harness_params hp = {.endpoint = w->f.agents_ep,
                             .server_public = w->f.coord_keys.public_z85,
                             .keys = w->keys,
                             .n = N_AGENTS,
                             .model = MODEL,
                             .n_slots = 2,
                             .heartbeat_ms = HB_MS,
                             .report_fd = rep[1],
                             .control_fd = ctl[0]};
        _exit(harness_run(&hp) == 0 ? 0 : 1);
    }
    close(rep[1]);
    close(ctl[0]);
    w->harness = pid;
    w->report_fd = rep[0];
    w->control_fd = ctl[1];
}

/* Registrations the harness counted (since its last reset), after waiting up to timeout_ms for
 * `want`. */
static uint32_t wait_registered(world *w, uint32_t want, uint32_t epoch, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        for (;;) {
            struct timeval tv = {0, 20 * 1000};
            fd_set fds;
            FD_ZERO(&fds);
            FD_SET(w->report_fd, &fds);
            harness_report r;
            if (select(w->report_fd + 1, &fds, NULL, NULL, &tv) <= 0 ||
                read(w->report_fd, &r, sizeof r) != (ssize_t)sizeof r)
                break;
            if (r.epoch == epoch)
                w->last = r;
        }
        if (w->last.epoch == epoch && w->last.registered == want)
            break;
    }
    return w->last.epoch == epoch ? w->last.registered : 0;
}

/* Requests routed through the coordinator, 32 in flight (under --client-max), until `want`
 * Dones came back or nothing came for 10 s. Returns the Dones. */
static int route(world *w, int want)
{
    char key[512];
    keys_pair kp;
    fx_key_path(&w->f, "cli", "key", key, sizeof key);
    assert_int_equal(keys_load_pair(key, &kp, NULL), 0);
    coord_client *c = coord_client_new(w->f.clients_ep, &kp, w->f.coord_keys.public_z85);
    assert_non_null(c);
    int done = 0, sent = 0, inflight = 0;
    while (done < want) {
        while (inflight < 32 && sent < want && coord_client_send(c, MODEL, (uint64_t)++sent) == 0)
            inflight++;
        envelope *env;
        uint64_t seq;
        if (coord_client_recv(c, 10000, &env, &seq) != 0)
            break;
        if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE ||
            env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR)
            inflight--;
        done += env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE;
        codec_free(&env);
    }
    coord_client_destroy(&c);
    return done;
}

static void test_hundreds_of_boards_register_are_evicted_when_silent_and_come_back(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 4096), 0);
    start_harness(w);
    uint32_t epoch = 0;
    assert_int_equal(wait_registered(w, N_AGENTS, epoch, WAIT_MS), N_AGENTS);
    assert_int_equal(fx_wait_agents(&w->f, "op", N_AGENTS, WAIT_MS), N_AGENTS);
    assert_int_equal(route(w, 2 * N_AGENTS), 2 * N_AGENTS);

    /* Silence: every board is dropped once its window passes, and its link is cut. */
    command(w, HARNESS_CMD_SILENCE);
    assert_int_equal(fx_wait_agents(&w->f, "op", 0, WAIT_MS), 0);
    assert_true(ts_file_wait_for(w->f.log, "dead: silent", 1000));

    /* Heard again: the coordinator does not know them and asks; they register again. */
    command(w, HARNESS_CMD_RESET);
    epoch++;
    command(w, HARNESS_CMD_RESUME);
    assert_int_equal(wait_registered(w, N_AGENTS, epoch, WAIT_MS), N_AGENTS);
    assert_int_equal(fx_wait_agents(&w->f, "op", N_AGENTS, WAIT_MS), N_AGENTS);

    /* The coordinator dies and restarts on the same ports: the reconnect storm. */
    ts_kill_wait(w->f.coord_pid, SIGKILL, 1000);
    w->f.coord_pid = 0;
    command(w, HARNESS_CMD_RESET);
    epoch++;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 4096), 0);
    assert_int_equal(wait_registered(w, N_AGENTS, epoch, WAIT_MS), N_AGENTS);
    assert_int_equal(fx_wait_agents(&w->f, "op", N_AGENTS, WAIT_MS), N_AGENTS);
    assert_int_equal(route(w, N_AGENTS), N_AGENTS);
    assert_int_equal(w->last.refused, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_hundreds_of_boards_register_are_evicted_when_silent_and_come_back, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
