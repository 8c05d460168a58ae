/* libedgefleet against a real coordinator process with scripted CURVE agents, and against a fake
 * coordinator that misbehaves on purpose: every refused call ends with an error (a batch refused
 * whole, an Error with no id), batches are paced within the fleet's capacity and split at the
 * coordinator's item limit, a result counts failed items, and a gap in a reply stream is caught.
 * A watchdog turns a hang into a failure. Opening a client and the CLI: test_client_open.c. */
#include "clock.h"
#include "edgefleet.h"
#include "fake_coordinator.h"
#include "fleet_fixture.h"
#include "scripted_agent.h"
#include "test_support.h"
#include "transport.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define HB_MS 200
#define MODEL "stories"
/* A refused call must end within this, not hang (the calls here have no request timeout). */
#define REFUSAL_BOUND_MS 1000.0
/* A test still running after this has hung: the watchdog fails it (ctest's own timeout is 300 s
 * for the whole file). */
#define WATCHDOG_S 60
/* The coordinator's default queue per model (coordinator/main.c). */
#define DEFAULT_QUEUE 64
/* The coordinator's item limit per BatchRequest, and one more. */
#define BATCH_LIMIT 1024
#define OVER_LIMIT  (BATCH_LIMIT + 1)

typedef struct {
    fleet_fixture f;
    scripted_agent *agents[2];
    fake_coordinator *fake;
    ef_client_t *client;
} world;

/* The coordinator the watchdog kills before it fails the test, so nothing outlives us. */
static pid_t *volatile g_coord_pid;

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_client: watchdog: the test hung\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to do: we are exiting */
    }
    if (g_coord_pid && *g_coord_pid > 0)
        kill(*g_coord_pid, SIGKILL);
    _exit(EXIT_FAILURE);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || fx_setup(&w->f) != 0)
        return -1;
    if (fx_add_key(&w->f, "op", "operators", NULL) || fx_add_key(&w->f, "cli", "clients", NULL) ||
        fx_add_key(&w->f, "a1", "agents", NULL) || fx_add_key(&w->f, "a2", "agents", NULL))
        return -1;
    g_coord_pid = &w->f.coord_pid;
    struct sigaction sa = {.sa_handler = on_watchdog};
    sigaction(SIGALRM, &sa, NULL);
    alarm(WATCHDOG_S);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    alarm(0);
    for (size_t i = 0; i < 2; i++)
        sa_stop(&w->agents[i]);
    fc_stop(&w->fake);
    ef_client_destroy(&w->client);
    fx_teardown(&w->f);
    g_coord_pid = NULL;
    free(w);
    return 0;
}

/* Scripted agent `name` (its key has the same name) on the coordinator. */
static scripted_agent *agent(world *w, size_t slot, const char *name, uint32_t slots,
                             uint32_t tokens, uint32_t max_tokens)
{
    char key_file[512];
    fx_key_path(&w->f, name, "key", key_file, sizeof key_file);
    sa_params p = {.name = name,
                   .key_file = key_file,
                   .server_public = w->f.coord_keys.public_z85,
                   .endpoint = w->f.agents_ep,
                   .model = MODEL,
                   .slots = slots,
                   .heartbeat_ms = HB_MS,
                   .tokens = tokens,
                   .token_ms = 1,
                   .max_tokens = max_tokens};
    w->agents[slot] = sa_start(&p);
    assert_non_null(w->agents[slot]);
    assert_int_equal(sa_wait_registered(w->agents[slot], 5000), 1);
    return w->agents[slot];
}

/* A connected client with key `name` at endpoint (NULL: the coordinator's); no request timeout
 * unless given. */
static ef_client_t *open_client(world *w, const char *endpoint, const char *name,
                                uint32_t request_timeout_ms)
{
    char key[512], why[512];
    fx_key_path(&w->f, name, "key", key, sizeof key);
    ef_client_params p = ef_client_default_params();
    p.endpoint = endpoint ? endpoint : w->f.clients_ep;
    p.server_public_key = w->f.coord_keys.public_z85;
    p.key_file = key;
    p.connect_timeout_ms = 5000;
    p.request_timeout_ms = request_timeout_ms;
    ef_client_t *c = NULL;
    int rc = ef_client_open(&p, &c, why, sizeof why);
    if (rc)
        fprintf(stderr, "ef_client_open: %s\n", why);
    assert_int_equal(rc, 0);
    return c;
}

/* What came back for each item of a batch. */
typedef struct {
    int calls[OVER_LIMIT];
    int status[OVER_LIMIT];
    size_t n_calls;
} tally;

static int count_item(size_t index, const char *text, size_t len, const ef_result *r, void *user)
{
    tally *t = user;
    (void)text;
    (void)len;
    if (index < OVER_LIMIT) {
        t->calls[index]++;
        t->status[index] = r->status;
    }
    t->n_calls++;
    return 0;
}

static ef_gen_params short_answer(uint32_t max_tokens)
{
    ef_gen_params p = ef_gen_default_params();
    p.max_tokens = max_tokens;
    return p;
}

static void test_a_batch_the_coordinator_refuses_whole_ends_at_once_with_its_error(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, DEFAULT_QUEUE), 0);
    scripted_agent *a = agent(w, 0, "a1", 2, 2, 0);
    w->client = open_client(w, NULL, "cli", 0);
    /* Item 1 has no prompt: the coordinator refuses the whole BatchRequest, queueing nothing. */
    ef_batch_item items[3] = {{"one", NULL}, {"", NULL}, {"three", NULL}};
    tally *t = calloc(1, sizeof *t);
    ef_batch_result br;
    uint64_t t0 = clock_mono_ms();
    int rc = ef_client_batch(w->client, MODEL, items, 3, count_item, t, &br);
    double took = (double)(clock_mono_ms() - t0);
    assert_int_equal(rc, EF_EINVAL);
    assert_true(took < REFUSAL_BOUND_MS);
    assert_non_null(strstr(ef_client_last_error(w->client), "batch item 1"));
    assert_int_equal(t->n_calls, 3); /* every item was told */
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(t->calls[i], 1);
        assert_int_equal(t->status[i], EF_EINVAL);
    }
    assert_int_equal(br.n_failed, 3);
    assert_int_equal(sa_requests(a), 0);
    free(t);
}

/* A BatchRequest of 1025 items, encoded and sent by hand over a CURVE DEALER. */
static void send_oversized_batch(world *w, void *dealer, uint8_t batch_id[CODEC_REQUEST_ID_LEN])
{
    Edgefleet__Request *reqs = calloc(OVER_LIMIT, sizeof *reqs);
    Edgefleet__Request **ptrs = calloc(OVER_LIMIT, sizeof *ptrs);
    uint8_t(*ids)[CODEC_REQUEST_ID_LEN] = calloc(OVER_LIMIT, CODEC_REQUEST_ID_LEN);
    assert_true(reqs && ptrs && ids);
    for (size_t i = 0; i < OVER_LIMIT; i++) {
        edgefleet__request__init(&reqs[i]);
        memset(ids[i], (int)(i & 0xff), CODEC_REQUEST_ID_LEN);
        ids[i][0] = (uint8_t)(i >> 8);
        reqs[i].request_id = (ProtobufCBinaryData){CODEC_REQUEST_ID_LEN, ids[i]};
        reqs[i].model = MODEL;
        reqs[i].prompt = "p";
        ptrs[i] = &reqs[i];
    }
    for (size_t i = 0; i < CODEC_REQUEST_ID_LEN; i++)
        batch_id[i] = (uint8_t)(0xb0 + i);
    Edgefleet__BatchRequest b = EDGEFLEET__BATCH_REQUEST__INIT;
    b.batch_id = (ProtobufCBinaryData){CODEC_REQUEST_ID_LEN, batch_id};
    b.items = ptrs;
    b.n_items = OVER_LIMIT;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_BATCH;
    env.batch = &b;
    uint8_t *buf;
    size_t len;
    assert_int_equal(codec_encode(&env, 0, &buf, &len), 0);
    assert_int_equal(zmq_send(dealer, buf, len, 0), (int)len);
    free(buf);
    free(ids);
    free(ptrs);
    free(reqs);
    (void)w;
}

static void test_a_refused_batch_of_1025_items_is_answered_with_the_batch_id(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, DEFAULT_QUEUE), 0);
    char key[512];
    keys_pair kp;
    ef_errmsg em;
    fx_key_path(&w->f, "cli", "key", key, sizeof key);
    assert_int_equal(keys_load_pair(key, &kp, &em), 0);
    void *ctx = zmq_ctx_new();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, wait_ms = 5000;
    assert_int_equal(transport_setup_client_socket(dealer, &kp, w->f.coord_keys.public_z85, 0), 0);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
    assert_int_equal(zmq_connect(dealer, w->f.clients_ep), 0);
    uint8_t batch_id[CODEC_REQUEST_ID_LEN];
    send_oversized_batch(w, dealer, batch_id);
    uint8_t buf[4096];
    int n = zmq_recv(dealer, buf, sizeof buf, 0);
    assert_true(n > 0);
    envelope *env = NULL;
    assert_int_equal(codec_decode(buf, (size_t)n, 0, &env), 0);
    assert_int_equal(env->body_case, EDGEFLEET__ENVELOPE__BODY_ERROR);
    assert_int_equal(env->error->code, EF_EINVAL);
    assert_int_equal(env->error->request_id.len, CODEC_REQUEST_ID_LEN);
    assert_memory_equal(env->error->request_id.data, batch_id, CODEC_REQUEST_ID_LEN);
    assert_non_null(strstr(env->error->message, "1024"));
    codec_free(&env);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
}

static void test_a_batch_of_1025_items_is_split_and_every_item_completes(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 2 * BATCH_LIMIT), 0);
    scripted_agent *a1 = agent(w, 0, "a1", 4, 1, 0);
    scripted_agent *a2 = agent(w, 1, "a2", 4, 1, 0);
    w->client = open_client(w, NULL, "cli", 0);
    ef_gen_params p = short_answer(1);
    ef_batch_item *items = calloc(OVER_LIMIT, sizeof *items);
    tally *t = calloc(1, sizeof *t);
    for (size_t i = 0; i < OVER_LIMIT; i++)
        items[i] = (ef_batch_item){"item", &p};
    ef_batch_result br;
    assert_int_equal(ef_client_batch(w->client, MODEL, items, OVER_LIMIT, count_item, t, &br), 0);
    assert_int_equal(br.n_ok, OVER_LIMIT);
    for (size_t i = 0; i < OVER_LIMIT; i++)
        assert_int_equal(t->calls[i], 1);
    assert_int_equal(sa_served(a1) + sa_served(a2), OVER_LIMIT);
    assert_true(ts_file_wait_for(w->f.log, "batch of 1024 for", 1000));
    free(t);
    free(items);
}

/* Fake coordinator script: every request or batch gets an Error with no id, as a coordinator
 * answers a frame it could not decode. */
static void answer_unnamed_error(fake_coordinator *fc, const envelope *env, void *user)
{
    (void)user;
    if (env->body_case != EDGEFLEET__ENVELOPE__BODY_REQUEST &&
        env->body_case != EDGEFLEET__ENVELOPE__BODY_BATCH)
        return;
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    e.code = EF_EVERSION;
    e.message = "could not decode a message: protocol version mismatch";
    envelope out = EDGEFLEET__ENVELOPE__INIT;
    out.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    out.error = &e;
    fc_send(fc, &out);
}

static void test_an_error_with_no_request_id_ends_the_call_in_progress(void **state)
{
    world *w = *state;
    w->fake = fc_start(&w->f.coord_keys, answer_unnamed_error, NULL);
    assert_non_null(w->fake);
    w->client = open_client(w, fc_endpoint(w->fake), "cli", 0);
    ef_result res;
    int rc = ef_client_generate(w->client, MODEL, "hello", NULL, NULL, NULL, &res);
    assert_int_equal(rc, EF_EVERSION);
    assert_true(res.elapsed_ms < REFUSAL_BOUND_MS);
    assert_non_null(strstr(ef_client_last_error(w->client), "protocol version mismatch"));
    ef_batch_item items[2] = {{"one", NULL}, {"two", NULL}};
    tally *t = calloc(1, sizeof *t);
    ef_batch_result br;
    assert_int_equal(ef_client_batch(w->client, MODEL, items, 2, count_item, t, &br), EF_EVERSION);
    assert_true(br.elapsed_ms < REFUSAL_BOUND_MS);
    assert_int_equal(t->n_calls, 2);
    assert_int_equal(t->status[0], EF_EVERSION);
    assert_int_equal(t->status[1], EF_EVERSION);
    free(t);
}

static void test_two_hundred_prompts_on_two_agents_are_paced_and_all_answered_once(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, DEFAULT_QUEUE), 0);
    scripted_agent *a1 = agent(w, 0, "a1", 4, 2, 0);
    scripted_agent *a2 = agent(w, 1, "a2", 4, 2, 0);
    w->client = open_client(w, NULL, "cli", 0);
    enum { N = 200 };
    ef_gen_params p = short_answer(2);
    ef_batch_item items[N];
    for (size_t i = 0; i < N; i++)
        items[i] = (ef_batch_item){"item", &p};
    tally *t = calloc(1, sizeof *t);
    ef_batch_result br;
    assert_int_equal(ef_client_batch(w->client, MODEL, items, N, count_item, t, &br), 0);
    fprintf(stderr, "200 prompts: %zu resends, %.0f ms\n", br.n_retried, br.elapsed_ms);
    assert_int_equal(t->n_calls, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(t->calls[i], 1);
        assert_int_equal(t->status[i], 0);
    }
    assert_int_equal(br.n_ok, N);
    assert_int_equal(br.n_failed, 0);
    assert_true(br.n_retried > 0); /* 200 > 64 queued + 8 running: some were refused busy */
    assert_int_equal(sa_served(a1) + sa_served(a2), N); /* and none ran twice */
    free(t);
}

static void test_a_batch_with_failed_items_returns_partial_with_their_count(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, DEFAULT_QUEUE), 0);
    agent(w, 0, "a1", 2, 2, 8); /* refuses requests for more than 8 tokens (EF_ECONTEXT) */
    w->client = open_client(w, NULL, "cli", 0);
    ef_gen_params fits = short_answer(2), too_long = short_answer(50);
    ef_batch_item items[10];
    for (size_t i = 0; i < 10; i++)
        items[i] = (ef_batch_item){"item", i == 2 || i == 5 || i == 7 ? &too_long : &fits};
    tally *t = calloc(1, sizeof *t);
    ef_batch_result br;
    assert_int_equal(ef_client_batch(w->client, MODEL, items, 10, count_item, t, &br), EF_EPARTIAL);
    assert_int_equal(br.n_items, 10);
    assert_int_equal(br.n_failed, 3);
    assert_int_equal(br.n_ok, 7);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(t->status[i], i == 2 || i == 5 || i == 7 ? EF_ECONTEXT : 0);
    assert_non_null(strstr(ef_client_last_error(w->client), "3 of 10 items failed"));
    free(t);
}

/* Fake coordinator script: a Request is answered with chunks seq 0 (two tokens) then `next_seq`,
 * then Done. The request's id is kept for the test. */
typedef struct {
    uint32_t next_seq;
    uint8_t id[CODEC_REQUEST_ID_LEN];
    atomic_int have_id;
} gap_script;

static void send_chunk(fake_coordinator *fc, ProtobufCBinaryData id, uint32_t seq, const char *text,
                       int32_t *tokens, size_t n)
{
    Edgefleet__TokenChunk tc = EDGEFLEET__TOKEN_CHUNK__INIT;
    tc.request_id = id;
    tc.seq = seq;
    tc.text = (char *)text;
    tc.token_ids = tokens;
    tc.n_token_ids = n;
    tc.agent_name = "fake";
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
    env.token_chunk = &tc;
    fc_send(fc, &env);
}

static void answer_with_a_gap(fake_coordinator *fc, const envelope *env, void *user)
{
    gap_script *g = user;
    if (env->body_case != EDGEFLEET__ENVELOPE__BODY_REQUEST)
        return;
    ProtobufCBinaryData id = env->request->request_id;
    memcpy(g->id, id.data, CODEC_REQUEST_ID_LEN);
    atomic_store(&g->have_id, 1);
    int32_t first[2] = {11, 12}, second[1] = {13};
    send_chunk(fc, id, 0, "ab", first, 2);
    send_chunk(fc, id, g->next_seq, "c", second, 1);
    Edgefleet__Done d = EDGEFLEET__DONE__INIT;
    d.request_id = id;
    d.finish = EDGEFLEET__FINISH_REASON__FINISH_LENGTH;
    envelope out = EDGEFLEET__ENVELOPE__INIT;
    out.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    out.done = &d;
    fc_send(fc, &out);
}

static int gather(const char *text, size_t len, void *user)
{
    strncat(user, text, len);
    return 0;
}

static int wait_cancels(fake_coordinator *fc, int n, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && fc_cancels(fc, NULL) < n; waited += 10)
        ts_sleep_ms(10);
    return fc_cancels(fc, NULL);
}

static void test_a_gap_in_the_chunk_sequence_fails_the_call_and_cancels_it(void **state)
{
    world *w = *state;
    gap_script g = {.next_seq = 5};
    w->fake = fc_start(&w->f.coord_keys, answer_with_a_gap, &g);
    assert_non_null(w->fake);
    w->client = open_client(w, fc_endpoint(w->fake), "cli", 0);
    char text[64] = "";
    ef_result res;
    assert_int_equal(ef_client_generate(w->client, MODEL, "hello", NULL, gather, text, &res),
                     EF_EPROTO);
    assert_string_equal(text, "ab"); /* nothing past the gap reached the caller */
    assert_non_null(strstr(ef_client_last_error(w->client), "expected chunk seq 2, got 5"));
    assert_int_equal(wait_cancels(w->fake, 1, 2000), 1);
    uint8_t cancelled[CODEC_REQUEST_ID_LEN];
    fc_cancels(w->fake, cancelled);
    assert_int_equal(atomic_load(&g.have_id), 1);
    assert_memory_equal(cancelled, g.id, CODEC_REQUEST_ID_LEN);
    /* A chunk that repeats tokens is caught the same way. */
    g.next_seq = 1;
    text[0] = '\0';
    assert_int_equal(ef_client_generate(w->client, MODEL, "hello", NULL, gather, text, &res),
                     EF_EPROTO);
    assert_non_null(strstr(ef_client_last_error(w->client), "overlaps"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_batch_the_coordinator_refuses_whole_ends_at_once_with_its_error, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_refused_batch_of_1025_items_is_answered_with_the_batch_id, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_batch_of_1025_items_is_split_and_every_item_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_error_with_no_request_id_ends_the_call_in_progress,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_two_hundred_prompts_on_two_agents_are_paced_and_all_answered_once, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_batch_with_failed_items_returns_partial_with_their_count, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_gap_in_the_chunk_sequence_fails_the_call_and_cancels_it, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
