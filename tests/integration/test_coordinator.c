/* The coordinator daemon on loopback with scripted agents (tests/integration/support): keys and
 * allowlists, registration and liveness, fleet busy, deadlines, drain, rebalancing, sharding and
 * telemetry, all through real CURVE sockets and libedgefleet. The real agent with the real model
 * is exercised in test_fleet.c. */
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "scripted_agent.h"
#include "test_support.h"
#include "transport.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define HB_MS 200 /* short heartbeats keep liveness tests quick */
#define MODEL "stories"

typedef struct {
    fleet_fixture f;
    scripted_agent *agents[4];
    ef_client_t *client;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || fx_setup(&w->f) != 0)
        return -1;
    if (fx_add_key(&w->f, "op", "operators", NULL) || fx_add_key(&w->f, "cli", "clients", NULL) ||
        fx_add_key(&w->f, "stranger", NULL, NULL))
        return -1;
    const char *agents[] = {"a1", "a2", "a3"};
    for (size_t i = 0; i < 3; i++)
        if (fx_add_key(&w->f, agents[i], "agents", NULL))
            return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    for (size_t i = 0; i < 4; i++)
        sa_stop(&w->agents[i]);
    ef_client_destroy(&w->client);
    fx_teardown(&w->f);
    free(w);
    return 0;
}

static scripted_agent *agent(world *w, size_t slot, const char *name, const char *key,
                             uint32_t slots, uint32_t tokens, uint32_t token_ms)
{
    char key_file[512];
    fx_key_path(&w->f, key, "key", key_file, sizeof key_file);
    sa_params p = {.name = name,
                   .key_file = key_file,
                   .server_public = w->f.coord_keys.public_z85,
                   .endpoint = w->f.agents_ep,
                   .model = MODEL,
                   .slots = slots,
                   .heartbeat_ms = HB_MS,
                   .tokens = tokens,
                   .token_ms = token_ms};
    w->agents[slot] = sa_start(&p);
    assert_non_null(w->agents[slot]);
    return w->agents[slot];
}

static int gather(const char *text, size_t len, void *user)
{
    (void)text;
    (*(size_t *)user) += len;
    return 0;
}

static void test_unknown_client_key_gets_nothing(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    agent(w, 0, "a1", "a1", 1, 3, 1);
    assert_int_equal(sa_wait_registered(w->agents[0], 3000), 1);
    w->client = fx_client(&w->f, "stranger", 2000);
    assert_non_null(w->client);
    size_t got = 0;
    ef_result res;
    int rc = ef_client_generate(w->client, MODEL, "hello", NULL, gather, &got, &res);
    assert_true(rc == EF_EDENIED || rc == EF_ENOTCONN);
    assert_int_equal(got, 0);
    assert_int_equal(sa_requests(w->agents[0]), 0);
    assert_true(ts_file_wait_for(w->f.log, "key not in allowlist", 2000));
}

static void test_plaintext_peer_gets_nothing_and_is_logged(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    void *ctx = zmq_ctx_new();
    void *plain = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(plain, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(plain, w->f.clients_ep), 0);
    assert_int_equal(zmq_send(plain, "hello in clear", 14, ZMQ_DONTWAIT), 14);
    /* libzmq refuses it before ZAP is asked; the operator still learns someone knocked. */
    assert_true(ts_file_wait_for(w->f.log, "a connection failed the CURVE handshake", 3000));
    char buf[64];
    assert_int_equal(zmq_recv(plain, buf, sizeof buf, ZMQ_DONTWAIT), -1);
    zmq_close(plain);
    zmq_ctx_term(ctx);
}

static void test_unknown_agent_key_cannot_register(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    agent(w, 0, "intruder", "stranger", 1, 3, 1);
    assert_int_equal(sa_wait_registered(w->agents[0], 1500), 0);
    assert_int_equal(fx_wait_agents(&w->f, "op", 0, 0), 0);
    assert_true(ts_file_wait_for(w->f.log, "refused connection on domain \"agents\"", 2000));
}

/* The fleet names an agent after its key: another name is refused, and a second board with a
 * copy of a live agent's key is refused with both hosts in the line, while the first serves on. */
static void test_an_agent_is_its_key_and_a_copy_of_a_live_key_is_refused(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    agent(w, 0, "board", "a1", 1, 3, 1); /* asks for a name its key does not have */
    assert_int_equal(sa_wait_registered(w->agents[0], 3000), -1);
    sa_stop(&w->agents[0]);
    assert_true(ts_file_wait_for(w->f.log, "is not the name of its key (agents/a1)", 1000));
    agent(w, 0, "a1", "a1", 1, 3, 1);
    assert_int_equal(sa_wait_registered(w->agents[0], 3000), 1);
    agent(w, 1, NULL, "a1", 1, 3, 1); /* the same key, another process: a cloned board */
    assert_int_equal(sa_wait_registered(w->agents[1], 3000), -1);
    assert_true(ts_file_wait_for(w->f.log, "key agents/a1 is in use by a live agent", 1000));
    assert_int_equal(fx_wait_agents(&w->f, "op", 1, 2000), 1);
    w->client = fx_client(&w->f, "cli", 10000);
    ef_result r;
    assert_int_equal(ef_client_generate(w->client, MODEL, "hi", NULL, NULL, NULL, &r), 0);
    assert_string_equal(r.agent, "a1");
    assert_int_equal(sa_requests(w->agents[1]), 0);
}

/* Items of a batch, as they come back; `release` is freed by the first failed item. */
typedef struct {
    int status[16];
    uint32_t retry_after[16];
    double elapsed[16];
    char agent[16][64];
    int calls[16];
    size_t order[16];
    size_t n_calls;
    scripted_agent *release;
} batch_log;

static int on_item(size_t index, const char *text, size_t len, const ef_result *r, void *user)
{
    batch_log *b = user;
    (void)text;
    (void)len;
    if (index < 16) {
        b->status[index] = r->status;
        b->retry_after[index] = r->retry_after_ms;
        b->elapsed[index] = r->elapsed_ms;
        snprintf(b->agent[index], sizeof b->agent[index], "%s", r->agent);
        b->calls[index]++;
    }
    if (b->n_calls < 16)
        b->order[b->n_calls] = index;
    b->n_calls++;
    if (r->status != 0 && b->release)
        sa_release(b->release);
    return 0;
}

static void test_deadline_passing_in_queue_fails_and_is_never_sent(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    scripted_agent *a = agent(w, 0, "a1", "a1", 1, 0, 1);
    assert_int_equal(sa_wait_registered(a, 3000), 1);
    w->client = fx_client(&w->f, "cli", 10000);
    ef_gen_params soon = ef_gen_default_params();
    soon.deadline_ms = 300;
    ef_batch_item items[2] = {{"runs", NULL}, {"waits", &soon}};
    batch_log b = {.release = a};
    ef_batch_result br;
    assert_int_equal(ef_client_batch(w->client, MODEL, items, 2, on_item, &b, &br), EF_EPARTIAL);
    assert_int_equal(br.n_failed, 1);
    assert_int_equal(br.n_ok, 1);
    assert_int_equal(b.status[1], EF_EDEADLINE);
    assert_true(b.elapsed[1] >= 250.0 && b.elapsed[1] < 2000.0);
    assert_int_equal(b.status[0], 0);
    assert_int_equal(sa_requests(a), 1); /* the expired one never reached the agent */
}

/* Agent a1 with one slot, registered; it falls silent (no more heartbeats, no replies) four
 * tokens into its first request. */
static void start_agent_that_falls_silent(world *w)
{
    char key_file[512];
    fx_key_path(&w->f, "a1", "key", key_file, sizeof key_file);
    sa_params p = {.name = "a1",
                   .key_file = key_file,
                   .server_public = w->f.coord_keys.public_z85,
                   .endpoint = w->f.agents_ep,
                   .model = MODEL,
                   .slots = 1,
                   .heartbeat_ms = HB_MS,
                   .tokens = 100,
                   .token_ms = 5,
                   .die_after = 4};
    w->agents[0] = sa_start(&p);
    assert_int_equal(sa_wait_registered(w->agents[0], 3000), 1);
}

static void test_silent_agent_is_dropped_and_its_client_gets_agent_lost(void **state)
{
    world *w = *state;
    /* Without resumes: a lost agent's requests fail at once (test_failover resumes). */
    w->f.extra[0] = "--max-resumes";
    w->f.extra[1] = "0";
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    start_agent_that_falls_silent(w);
    w->client = fx_client(&w->f, "cli", 10000);
    size_t got = 0;
    ef_result res;
    int rc = ef_client_generate(w->client, MODEL, "hi", NULL, gather, &got, &res);
    assert_int_equal(rc, EF_EAGENTLOST);
    assert_int_equal(res.tokens_received, 4);
    assert_true(got > 0);
    /* Dropped within the liveness window (3 x 200 ms) plus one sweep tick and slack. */
    assert_true(res.elapsed_ms < 3 * HB_MS + 400);
    assert_true(ts_file_wait_for(w->f.log, "agent a1 dead", 1000));
    assert_int_equal(fx_wait_agents(&w->f, "op", 0, 1000), 0);
}

/* One blocking generate on its own thread and client, so a test can act while it waits. */
typedef struct {
    pthread_t thread;
    ef_client_t *client;
    const char *prompt;
    int rc;
    ef_result res;
} async_call;

static void *async_run(void *arg)
{
    async_call *a = arg;
    a->rc = ef_client_generate(a->client, MODEL, a->prompt, NULL, NULL, NULL, &a->res);
    return NULL;
}

static void async_start(world *w, async_call *a, const char *prompt)
{
    memset(a, 0, sizeof *a);
    a->client = fx_client(&w->f, "cli", 10000);
    assert_non_null(a->client);
    a->prompt = prompt;
    assert_int_equal(pthread_create(&a->thread, NULL, async_run, a), 0);
}

static void async_join(async_call *a)
{
    pthread_join(a->thread, NULL);
    ef_client_destroy(&a->client);
}

static int wait_requests(scripted_agent *a, int n, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && sa_requests(a) < n; waited += 10)
        ts_sleep_ms(10);
    return sa_requests(a);
}

/* A generate that finds the model's queue full is refused at once with a retry time. (A batch
 * is paced by the library instead: tests/integration/test_client.c.) */
static void test_full_queue_gives_fleet_busy_at_once(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 1), 0);
    scripted_agent *a = agent(w, 0, "a1", "a1", 1, 0, 1); /* holds what it gets */
    assert_int_equal(sa_wait_registered(a, 3000), 1);
    async_call runs, waits;
    async_start(w, &runs, "runs");
    assert_int_equal(wait_requests(a, 1, 3000), 1);
    async_start(w, &waits, "waits"); /* takes the queue's one place */
    assert_true(ts_file_wait_for(w->f.log, "queued (1 waiting)", 3000));
    w->client = fx_client(&w->f, "cli", 10000);
    ef_result res;
    assert_int_equal(ef_client_generate(w->client, MODEL, "refused", NULL, NULL, NULL, &res),
                     EF_EBUSY);
    assert_true(res.retry_after_ms > 0);
    assert_true(res.elapsed_ms < 1000.0);
    sa_release(a);
    async_join(&runs);
    async_join(&waits);
    assert_int_equal(runs.rc, 0);
    assert_int_equal(waits.rc, 0);
    assert_int_equal(sa_requests(a), 2); /* the refused one never reached the agent */
}

static void test_queued_work_fails_when_no_agent_serves_its_model_any_more(void **state)
{
    world *w = *state;
    w->f.orphan_grace_ms = 400;
    /* Without resumes: a lost agent's requests fail at once (test_failover resumes). */
    w->f.extra[0] = "--max-resumes";
    w->f.extra[1] = "0";
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    start_agent_that_falls_silent(w);
    async_call first;
    async_start(w, &first, "runs");
    assert_int_equal(wait_requests(w->agents[0], 1, 3000), 1);
    /* The only board falls silent: the running request is lost, and the queued one, with no
     * deadline, fails once the grace has passed with no agent for its model, not never. */
    w->client = fx_client(&w->f, "cli", 10000);
    ef_result res;
    int rc = ef_client_generate(w->client, MODEL, "waits", NULL, NULL, NULL, &res);
    assert_int_equal(rc, EF_EUNKNOWNMODEL);
    assert_true(res.elapsed_ms >= 400);
    assert_true(res.elapsed_ms < 3 * HB_MS + 400 + 1000);
    async_join(&first);
    assert_int_equal(first.rc, EF_EAGENTLOST);
    assert_true(ts_file_wait_for(w->f.log, "no agent has served model", 1000));
    assert_int_equal(sa_requests(w->agents[0]), 1); /* the queued one never went anywhere */
}

static void test_new_agent_takes_queued_work_at_once(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    scripted_agent *a1 = agent(w, 0, "a1", "a1", 1, 0, 1); /* holds its request */
    assert_int_equal(sa_wait_registered(a1, 3000), 1);
    async_call first, second;
    async_start(w, &first, "first");
    assert_int_equal(wait_requests(a1, 1, 3000), 1);
    async_start(w, &second, "second"); /* no free slot: it waits in the queue */
    ts_sleep_ms(300);
    assert_int_equal(sa_requests(a1), 1);
    scripted_agent *a2 = agent(w, 1, "a2", "a2", 1, 3, 1);
    assert_int_equal(sa_wait_registered(a2, 3000), 1);
    async_join(&second); /* served by the newcomer while a1 still holds the first */
    assert_int_equal(second.rc, 0);
    assert_string_equal(second.res.agent, "a2");
    assert_int_equal(sa_served(a1), 0);
    sa_release(a1);
    async_join(&first);
    assert_int_equal(first.rc, 0);
    assert_string_equal(first.res.agent, "a1");
}

static void test_drained_agent_gets_no_new_work_and_finishes_its_own(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    scripted_agent *a1 = agent(w, 0, "a1", "a1", 2, 0, 1);
    assert_int_equal(sa_wait_registered(a1, 3000), 1);
    async_call held;
    async_start(w, &held, "held");
    assert_int_equal(wait_requests(a1, 1, 3000), 1);
    ef_client_t *op = fx_client(&w->f, "op", 5000);
    assert_int_equal(ef_client_drain(op, "a1", 1), 0);
    assert_int_equal(ef_client_drain(op, "nobody", 1), EF_ENOENT);
    for (int i = 0; i < 100 && sa_drain_state(a1) != 1; i++)
        ts_sleep_ms(10);
    assert_int_equal(sa_drain_state(a1), 1); /* forwarded to the agent as Drain */
    scripted_agent *a2 = agent(w, 1, "a2", "a2", 1, 2, 1);
    assert_int_equal(sa_wait_registered(a2, 3000), 1);
    w->client = fx_client(&w->f, "cli", 10000);
    for (int i = 0; i < 3; i++) {
        ef_result res;
        assert_int_equal(ef_client_generate(w->client, MODEL, "x", NULL, NULL, NULL, &res), 0);
        assert_string_equal(res.agent, "a2");
    }
    assert_int_equal(sa_requests(a1), 1);
    ef_fleet_status *st = NULL;
    assert_int_equal(ef_client_status(op, &st), 0);
    int drained_seen = 0;
    for (size_t i = 0; i < st->n_agents; i++)
        if (strcmp(st->agents[i].name, "a1") == 0)
            drained_seen = st->agents[i].draining;
    ef_fleet_status_free(&st);
    assert_true(drained_seen);
    sa_release(a1); /* what it had still finishes */
    async_join(&held);
    assert_int_equal(held.rc, 0);
    assert_string_equal(held.res.agent, "a1");
    assert_int_equal(ef_client_drain(op, "a1", 0), 0);
    ef_client_destroy(&op);
}

static void test_operator_commands_need_an_operator_key(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    w->client = fx_client(&w->f, "cli", 5000);
    ef_fleet_status *st = NULL;
    assert_int_equal(ef_client_status(w->client, &st), EF_EDENIED);
    assert_null(st);
    assert_int_equal(ef_client_drain(w->client, "a1", 1), EF_EDENIED);
}

static void test_batch_is_sharded_by_capacity_and_every_item_comes_back_once(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    scripted_agent *big = agent(w, 0, "", "a1", 3, 5, 20);     /* named a1, after its key */
    scripted_agent *small = agent(w, 1, NULL, "a2", 1, 5, 20); /* a2 */
    assert_int_equal(sa_wait_registered(big, 3000), 1);
    assert_int_equal(sa_wait_registered(small, 3000), 1);
    w->client = fx_client(&w->f, "cli", 20000);
    ef_batch_item items[12];
    for (int i = 0; i < 12; i++)
        items[i] = (ef_batch_item){"item", NULL};
    batch_log b = {0};
    assert_int_equal(ef_client_batch(w->client, MODEL, items, 12, on_item, &b, NULL), 0);
    assert_int_equal(b.n_calls, 12);
    int on_big = 0, on_small = 0;
    for (int i = 0; i < 12; i++) {
        assert_int_equal(b.calls[i], 1);
        assert_int_equal(b.status[i], 0);
        on_big += strcmp(b.agent[i], "a1") == 0;
        on_small += strcmp(b.agent[i], "a2") == 0;
    }
    assert_int_equal(on_big + on_small, 12);
    assert_true(on_small >= 1);
    assert_true(on_big >= 2 * on_small); /* 3 slots to 1: about 9 to 3 */
    assert_true(ts_file_wait_for(w->f.log, "planned split", 1000));
}

static void test_coordinator_restart_agents_are_back_within_two_heartbeats(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    agent(w, 0, "a1", "a1", 1, 2, 1);
    agent(w, 1, "a2", "a2", 1, 2, 1);
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 3000), 2);
    assert_int_equal(fx_stop_coordinator(&w->f), 0); /* clean exit on SIGTERM */
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 8), 0);
    /* Agents keep heartbeating into the new coordinator, which asks them to register. */
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 2 * HB_MS + 100), 2);
    w->client = fx_client(&w->f, "cli", 5000);
    ef_result res;
    assert_int_equal(ef_client_generate(w->client, MODEL, "again", NULL, NULL, NULL, &res), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_client_key_gets_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_peer_gets_nothing_and_is_logged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_agent_key_cannot_register, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_agent_is_its_key_and_a_copy_of_a_live_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_gives_fleet_busy_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_passing_in_queue_fails_and_is_never_sent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_agent_is_dropped_and_its_client_gets_agent_lost,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_queued_work_fails_when_no_agent_serves_its_model_any_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_agent_takes_queued_work_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drained_agent_gets_no_new_work_and_finishes_its_own,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_commands_need_an_operator_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_batch_is_sharded_by_capacity_and_every_item_comes_back_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_coordinator_restart_agents_are_back_within_two_heartbeats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
