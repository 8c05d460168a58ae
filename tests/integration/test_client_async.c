/* libedgefleet's asynchronous calls on one libuv loop against a real coordinator and a real
 * edgefleet-agent serving the real model (stories260K): 100 calls at once all complete with
 * every token generated received and a finish reason; a cancel mid-stream ends the call as
 * cancelled and the agent stops it; destroying the client with calls pending gives each its
 * on_done; a call for an unknown model gets its error through on_done; a coordinator killed and
 * restarted mid-call costs the calls nothing (sent again with their tokens); a batch of 200 on a
 * small queue is paced and every item completes once. Every callback is
 * checked to run on the loop's thread, never from inside the function that started or cancelled
 * a call, and exactly once per call. A watchdog turns a hang into a failure. */
#include "clock.h"
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "test_support.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#define HB_MS    300
#define LIVENESS 3
/* The 100 concurrent calls: the coordinator must queue them all from one key. */
#define N_CALLS    100
#define QUEUE      "128"
#define WATCHDOG_S 120
/* A call's bound (request_timeout_ms): a lost call fails instead of hanging. */
#define CALL_TIMEOUT_MS 60000u
/* How long the loop may run for one step of a test before it counts as hung. */
#define STEP_MS 60000

typedef struct world world;

/* What came back for one call. */
typedef struct {
    world *w;
    ef_call_t *call;
    int dones; /* on_done calls: must end at 1 */
    int status;
    ef_result result;
    size_t pieces, bytes;
    int cancel_at;  /* > 0: ef_call_cancel from the token callback at this piece */
    int after_done; /* on_token calls after on_done or after a cancel: must stay 0 */
    int cancelled;
    int restart_at; /* > 0: SIGKILL the coordinator at this piece and start it again */
} outcome;

struct world {
    fleet_fixture f;
    pid_t agent;
    char agent_log[512];
    char model[64];
    uv_loop_t loop;
    uv_timer_t tick; /* wakes uv_run(UV_RUN_ONCE) now and then, so waits can check a clock */
    ef_client_t *client;
    pthread_t loop_thread;
    int in_api;       /* inside a start, cancel: no callback may run */
    int wrong_thread; /* callbacks that ran off the loop thread */
    int reentered;    /* callbacks from inside a start or cancel */
    size_t n_done;
    outcome calls[N_CALLS];
};

static pid_t *volatile g_coord_pid, *volatile g_agent_pid;

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_client_async: watchdog: the test hung\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* exiting anyway */
    }
    if (g_coord_pid && *g_coord_pid > 0)
        kill(*g_coord_pid, SIGKILL);
    if (g_agent_pid && *g_agent_pid > 0)
        kill(*g_agent_pid, SIGKILL);
    _exit(EXIT_FAILURE);
}

static void on_tick(uv_timer_t *t) { (void)t; }

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    char model_path[512];
    if (!w || ts_model_path("stories260K.gguf", model_path, sizeof model_path) != 0) {
        fprintf(stderr, "test_client_async: the model stories260K.gguf is missing\n");
        free(w);
        return -1;
    }
    if (fx_setup(&w->f) != 0 || fx_add_key(&w->f, "op", "operators", NULL) ||
        fx_add_key(&w->f, "cli", "clients", NULL) || fx_add_key(&w->f, "board0", "agents", NULL))
        return -1;
    w->f.orphan_grace_ms = 300; /* an unknown model fails soon, not after 30 s */
    w->f.extra[0] = "--client-max";
    w->f.extra[1] = QUEUE;
    if (fx_start_coordinator(&w->f, HB_MS, LIVENESS, atoi(QUEUE)) != 0)
        return -1;
    g_coord_pid = &w->f.coord_pid;
    g_agent_pid = &w->agent;
    struct sigaction sa = {.sa_handler = on_watchdog};
    sigaction(SIGALRM, &sa, NULL);
    alarm(WATCHDOG_S);
    uv_loop_init(&w->loop);
    uv_timer_init(&w->loop, &w->tick);
    uv_timer_start(&w->tick, on_tick, 50, 50);
    w->loop_thread = pthread_self();
    *state = w;
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    world *w = *state;
    alarm(0);
    ef_client_destroy(&w->client);
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&w->loop) != 0) { /* a test failed with handles open: close them */
        uv_walk(&w->loop, close_walk, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    if (w->agent > 0)
        ts_kill_wait(w->agent, SIGTERM, 3000);
    fx_teardown(&w->f);
    g_coord_pid = g_agent_pid = NULL;
    free(w);
    return 0;
}

/* The real agent with `slots` slots (and a context of ctx tokens, NULL: the default),
 * registered, and the model's name learnt. */
static void start_agent_ctx(world *w, int slots, const char *ctx)
{
    char bin[512], key[512], server[512], model_path[512], sl[16], hb[16];
    assert_int_equal(ts_bin_path("agent/edgefleet-agent", bin, sizeof bin), 0);
    assert_int_equal(ts_model_path("stories260K.gguf", model_path, sizeof model_path), 0);
    fx_key_path(&w->f, "board0", "key", key, sizeof key);
    fx_key_path(&w->f, "coordinator", "pub", server, sizeof server);
    snprintf(w->agent_log, sizeof w->agent_log, "%s/agent-board0.log", w->f.dir);
    snprintf(sl, sizeof sl, "%d", slots);
    snprintf(hb, sizeof hb, "%d", HB_MS);
    char *argv[] = {bin,
                    "--coordinator",
                    w->f.agents_ep,
                    "--server-key",
                    server,
                    "--key",
                    key,
                    "--model",
                    model_path,
                    "--slots",
                    sl,
                    "--threads",
                    "1",
                    "--heartbeat-ms",
                    hb,
                    NULL,
                    NULL,
                    NULL};
    if (ctx) {
        argv[15] = "--ctx";
        argv[16] = (char *)ctx;
    }
    w->agent = ts_spawn(argv, w->agent_log);
    assert_true(w->agent > 0);
    assert_int_equal(fx_wait_agents(&w->f, "op", 1, 20000), 1);
    ef_client_t *op = fx_client(&w->f, "op", 5000);
    ef_fleet_status *st = NULL;
    assert_int_equal(ef_client_status(op, &st), 0);
    assert_true(st->n_agents == 1 && st->agents[0].n_models > 0);
    snprintf(w->model, sizeof w->model, "%s", st->agents[0].models[0].model);
    ef_fleet_status_free(&st);
    ef_client_destroy(&op);
}

static void start_agent(world *w, int slots) { start_agent_ctx(w, slots, NULL); }

static void open_async(world *w)
{
    char key[512], why[512];
    fx_key_path(&w->f, "cli", "key", key, sizeof key);
    ef_client_params p = ef_client_default_params();
    p.endpoint = w->f.clients_ep;
    p.server_public_key = w->f.coord_keys.public_z85;
    p.key_file = key;
    p.request_timeout_ms = CALL_TIMEOUT_MS;
    int rc = ef_client_open_async(&p, &w->loop, &w->client, why, sizeof why);
    if (rc)
        fprintf(stderr, "ef_client_open_async: %s\n", why);
    assert_int_equal(rc, 0);
}

static void check_thread(world *w)
{
    if (!pthread_equal(pthread_self(), w->loop_thread))
        w->wrong_thread++;
    if (w->in_api)
        w->reentered++;
}

static int on_token(ef_call_t *call, const char *text, size_t len, void *user)
{
    outcome *o = user;
    check_thread(o->w);
    if (o->dones || o->cancelled || call != o->call)
        o->after_done++;
    o->pieces++;
    o->bytes += len;
    (void)text;
    if (o->cancel_at && (int)o->pieces == o->cancel_at) {
        o->w->in_api = 1;
        assert_int_equal(ef_call_cancel(call), 0);
        o->w->in_api = 0;
        o->cancelled = 1;
    }
    if (o->restart_at && (int)o->pieces == o->restart_at) {
        /* The loop is blocked here meanwhile: the client sees the break and the return as
         * events once this callback has returned. */
        world *w = o->w;
        kill(w->f.coord_pid, SIGKILL);
        assert_true(ts_wait_exit(w->f.coord_pid, 10000) >= 0);
        w->f.coord_pid = 0;
        assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, atoi(QUEUE)), 0);
    }
    return 0;
}

static void on_done(ef_call_t *call, int status, const ef_result *r, void *user)
{
    outcome *o = user;
    check_thread(o->w);
    if (call != o->call)
        o->after_done++;
    o->dones++;
    o->status = status;
    o->result = *r;
    o->w->n_done++;
}

static ef_gen_params greedy(uint32_t max_tokens)
{
    ef_gen_params p = ef_gen_default_params();
    p.temperature = 0;
    p.max_tokens = max_tokens;
    return p;
}

/* Start call i generating from prompt; 0 or the code ef_client_generate_async returned. */
static int start_call(world *w, size_t i, const char *model, const char *prompt, uint32_t max)
{
    outcome *o = &w->calls[i];
    memset(o, 0, sizeof *o);
    o->w = w;
    ef_call_params cb = ef_call_default_params();
    cb.on_token = on_token;
    cb.on_done = on_done;
    cb.user = o;
    ef_gen_params p = greedy(max);
    w->in_api = 1;
    int rc = ef_client_generate_async(w->client, model, prompt, &p, &cb, &o->call);
    w->in_api = 0;
    return rc;
}

/* Run the loop until n calls are done (or STEP_MS passes: then the test fails). */
static void run_until_done(world *w, size_t n)
{
    uint64_t end = clock_mono_ms() + STEP_MS;
    while (w->n_done < n && clock_mono_ms() < end)
        uv_run(&w->loop, UV_RUN_ONCE);
    assert_int_equal(w->n_done, n);
}

static void test_a_hundred_concurrent_calls_on_one_loop_all_complete(void **state)
{
    world *w = *state;
    start_agent(w, 4);
    open_async(w);
    char prompts[N_CALLS][48];
    for (size_t i = 0; i < N_CALLS; i++) {
        snprintf(prompts[i], sizeof prompts[i], "Once upon a time, %zu little birds", i);
        assert_int_equal(start_call(w, i, w->model, prompts[i], 24), 0);
    }
    assert_int_equal(ef_client_pending(w->client), N_CALLS);
    run_until_done(w, N_CALLS);
    for (size_t i = 0; i < N_CALLS; i++) {
        const outcome *o = &w->calls[i];
        if (o->status != 0)
            fprintf(stderr, "call %zu: %s (%s)\n", i, ef_err_name(o->status), o->result.message);
        assert_int_equal(o->dones, 1);
        assert_int_equal(o->status, 0);
        assert_true(o->result.finish == EF_FINISH_STOP || o->result.finish == EF_FINISH_LENGTH);
        /* Contiguous chunks (a gap fails the call with EF_EPROTO), and every one received. */
        assert_true(o->result.completion_tokens > 0);
        assert_int_equal(o->result.tokens_received, o->result.completion_tokens);
        assert_true(o->pieces > 0 && o->bytes > 0);
        assert_int_equal(o->after_done, 0);
        assert_string_equal(o->result.agent, "board0");
    }
    assert_int_equal(ef_client_pending(w->client), 0);
    assert_int_equal(w->wrong_thread, 0);
    assert_int_equal(w->reentered, 0);
}

/* Busy slots on the only agent now, from the fleet status. */
static uint32_t busy_slots(world *w)
{
    ef_client_t *op = fx_client(&w->f, "op", 5000);
    ef_fleet_status *st = NULL;
    assert_int_equal(ef_client_status(op, &st), 0);
    uint32_t busy = st->n_agents == 1 && st->agents[0].n_models ? st->agents[0].models[0].busy_slots
                                                                : UINT32_MAX;
    ef_fleet_status_free(&st);
    ef_client_destroy(&op);
    return busy;
}

static void test_a_cancel_mid_stream_ends_the_call_cancelled_and_frees_the_slot(void **state)
{
    world *w = *state;
    start_agent(w, 1);
    open_async(w);
    assert_int_equal(start_call(w, 0, w->model, "Once upon a time", 400), 0);
    w->calls[0].cancel_at = 1; /* cancelled from inside its first token callback */
    run_until_done(w, 1);
    const outcome *o = &w->calls[0];
    assert_int_equal(o->dones, 1);
    assert_int_equal(o->status, EF_ECANCELED);
    assert_int_equal(o->result.status, EF_ECANCELED);
    assert_int_equal(o->pieces, 1);
    assert_int_equal(o->after_done, 0);
    assert_int_equal(w->reentered, 0);
    /* The agent stopped it: the one slot is free, and the next call runs on it. */
    assert_int_equal(ts_file_wait_for(w->agent_log, "done: cancelled", 10000), 1);
    assert_int_equal(busy_slots(w), 0);
    assert_int_equal(start_call(w, 1, w->model, "The little dog", 16), 0);
    run_until_done(w, 2);
    assert_int_equal(w->calls[1].status, 0);
    assert_int_equal(w->wrong_thread, 0);
}

static void test_destroy_with_calls_pending_gives_each_its_completion(void **state)
{
    world *w = *state;
    start_agent(w, 2);
    open_async(w);
    const size_t n = 6;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(start_call(w, i, w->model, "Once upon a time", 400), 0);
    /* Run until the first text arrives: two calls run on the agent, four are queued. */
    uint64_t end = clock_mono_ms() + STEP_MS;
    while (w->calls[0].pieces + w->calls[1].pieces + w->calls[2].pieces == 0 &&
           clock_mono_ms() < end)
        uv_run(&w->loop, UV_RUN_ONCE);
    size_t done_before = w->n_done;
    assert_true(done_before < n);
    ef_client_destroy(&w->client); /* every on_done comes before it returns */
    assert_null(w->client);
    assert_int_equal(w->n_done, n);
    size_t cancelled = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(w->calls[i].dones, 1);
        cancelled += w->calls[i].status == EF_ECANCELED;
    }
    assert_int_equal(cancelled, n - done_before);
    /* The client's memory and handles go with the loop's next turn: nothing of it is left. */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    uv_loop_init(&w->loop); /* for teardown */
    uv_timer_init(&w->loop, &w->tick);
    assert_int_equal(w->wrong_thread, 0);
}

static void test_a_call_for_an_unknown_model_gets_its_error_through_on_done(void **state)
{
    world *w = *state;
    start_agent(w, 1);
    open_async(w);
    /* A function that returns an error never calls back. */
    assert_int_equal(start_call(w, 0, w->model, NULL, 8), EF_EINVAL);
    assert_int_equal(ef_client_generate(w->client, w->model, "x", NULL, NULL, NULL, NULL),
                     EF_EINVAL); /* blocking calls are refused on an async client */
    assert_int_equal(start_call(w, 1, "no-such-model", "Once upon a time", 8), 0);
    run_until_done(w, 1);
    assert_int_equal(w->calls[0].dones, 0);
    const outcome *o = &w->calls[1];
    assert_int_equal(o->dones, 1);
    assert_int_equal(o->status, EF_EUNKNOWNMODEL);
    assert_true(o->result.message[0] != '\0');
    assert_int_equal(o->pieces, 0);
    assert_int_equal(w->wrong_thread, 0);
    assert_int_equal(w->reentered, 0);
}

static void test_a_coordinator_restarted_mid_call_costs_the_calls_nothing(void **state)
{
    world *w = *state;
    start_agent_ctx(w, 1, "1024");
    open_async(w);
    /* Call 0 runs on the one slot, call 1 waits in the coordinator's queue: the restart loses
     * both there, and the library sends each again, call 0 with the tokens it has. */
    assert_int_equal(start_call(w, 0, w->model, "Once upon a time", 900), 0);
    assert_int_equal(start_call(w, 1, w->model, "The little dog", 32), 0);
    w->calls[0].restart_at = 5;
    run_until_done(w, 2);
    for (size_t i = 0; i < 2; i++) {
        const outcome *o = &w->calls[i];
        if (o->status != 0)
            fprintf(stderr, "call %zu: %s (%s)\n", i, ef_err_name(o->status), o->result.message);
        assert_int_equal(o->status, 0);
        assert_int_equal(o->result.tokens_received, o->result.completion_tokens);
        assert_int_equal(o->after_done, 0);
    }
    assert_true(w->calls[0].result.resumes >= 1);
    if (w->calls[0].result.finish == EF_FINISH_LENGTH)
        assert_int_equal(w->calls[0].result.completion_tokens, 900);
    assert_int_equal(w->wrong_thread, 0);
}

static void
test_open_async_refuses_bad_arguments_and_a_dead_endpoint_fails_calls_by_on_done(void **state)
{
    world *w = *state;
    char key[512], why[512], dead[64];
    fx_key_path(&w->f, "cli", "key", key, sizeof key);
    ef_client_params p = ef_client_default_params();
    p.server_public_key = w->f.coord_keys.public_z85;
    p.key_file = key;
    p.connect_timeout_ms = 300;
    ef_client_t *c = (ef_client_t *)&p; /* must be reset to NULL on failure */
    p.endpoint = w->f.clients_ep;
    assert_int_equal(ef_client_open_async(&p, NULL, &c, why, sizeof why), EF_EINVAL);
    assert_null(c);
    p.endpoint = "udp://nowhere";
    assert_int_equal(ef_client_open_async(&p, &w->loop, &c, why, sizeof why), EF_EINVAL);
    assert_null(c);
    assert_non_null(strstr(why, "udp://nowhere"));
    /* Nothing listens there: the call waits for the handshake, then fails through on_done. */
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", ts_free_port());
    p.endpoint = dead;
    assert_int_equal(ef_client_open_async(&p, &w->loop, &w->client, why, sizeof why), 0);
    assert_int_equal(start_call(w, 0, "any-model", "Once upon a time", 8), 0);
    run_until_done(w, 1);
    assert_int_equal(w->calls[0].status, EF_ENOTCONN);
    assert_non_null(strstr(w->calls[0].result.message, "nothing answers"));
    assert_int_equal(w->reentered, 0);
    /* Every handle the failed opens and this client made goes with the loop's next turns. */
    ef_client_destroy(&w->client);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    uv_loop_init(&w->loop); /* for teardown */
    uv_timer_init(&w->loop, &w->tick);
}

/* What an async batch handed back. */
typedef struct {
    world *w;
    int items[200], bad, dones, status;
    ef_batch_result result;
} batch_tally;

static int on_batch_item(ef_call_t *call, size_t index, const char *text, size_t len,
                         const ef_result *r, void *user)
{
    batch_tally *t = user;
    (void)call;
    check_thread(t->w);
    if (index >= 200 || t->items[index]++ != 0 || strlen(text) != len || r->status != 0 ||
        r->tokens_received != r->completion_tokens || r->completion_tokens == 0)
        t->bad++;
    return 0;
}

static void on_batch_done(ef_call_t *call, int status, const ef_batch_result *r, void *user)
{
    batch_tally *t = user;
    (void)call;
    check_thread(t->w);
    t->dones++;
    t->status = status;
    t->result = *r;
    t->w->n_done++;
}

static void test_a_batch_on_the_loop_is_paced_and_every_item_completes_once(void **state)
{
    world *w = *state;
    /* A queue of 4: most of the first BatchRequest is refused as busy and sent again as the
     * fleet frees up, as in ef_client_batch. */
    assert_int_equal(fx_stop_coordinator(&w->f), 0);
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 4), 0);
    start_agent(w, 2);
    open_async(w);
    ef_batch_item items[200];
    ef_gen_params p = greedy(8);
    for (size_t i = 0; i < 200; i++)
        items[i] = (ef_batch_item){.prompt = "Once upon a time", .params = &p};
    batch_tally t = {.w = w};
    ef_batch_params cb = ef_batch_default_params();
    cb.on_item = on_batch_item;
    cb.on_done = on_batch_done;
    cb.user = &t;
    w->in_api = 1;
    int rc = ef_client_batch_async(w->client, w->model, items, 200, &cb, NULL);
    w->in_api = 0;
    assert_int_equal(rc, 0);
    /* A single call on the same loop meanwhile. */
    assert_int_equal(start_call(w, 0, w->model, "The little dog", 8), 0);
    run_until_done(w, 2);
    assert_int_equal(t.dones, 1);
    assert_int_equal(t.status, 0);
    assert_int_equal(t.bad, 0);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(t.items[i], 1);
    assert_int_equal(t.result.n_items, 200);
    assert_int_equal(t.result.n_ok, 200);
    assert_true(t.result.n_retried > 0); /* it was paced, not all taken at once */
    assert_true(w->calls[0].status == 0 || w->calls[0].status == EF_EBUSY);
    assert_int_equal(w->wrong_thread, 0);
    assert_int_equal(w->reentered, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_hundred_concurrent_calls_on_one_loop_all_complete,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_cancel_mid_stream_ends_the_call_cancelled_and_frees_the_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_calls_pending_gives_each_its_completion,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_call_for_an_unknown_model_gets_its_error_through_on_done, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_coordinator_restarted_mid_call_costs_the_calls_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_batch_on_the_loop_is_paced_and_every_item_completes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_open_async_refuses_bad_arguments_and_a_dead_endpoint_fails_calls_by_on_done, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
