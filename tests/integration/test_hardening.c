/* The coordinator against hostile and careless peers, on loopback with real CURVE sockets: each
 * test is one way a board or a client used to hurt others (issue: hardening), and checks that
 * the coordinator and every other peer keep working. Real agent processes with the real model
 * where a model is involved; scripted agents where only the coordinator's routing is. */
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "raw_peer.h"
#include "scripted_agent.h"
#include "test_support.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#define HB_MS 200
#define MODEL "stories"

typedef struct {
    fleet_fixture f;
    scripted_agent *sa[4];
    pid_t agents[4];
    char model_path[512];
    char model[64]; /* the real agents' model name */
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || fx_setup(&w->f) != 0)
        return -1;
    if (ts_model_path("stories260K.gguf", w->model_path, sizeof w->model_path) != 0) {
        fprintf(stderr, "test_hardening: model %s missing\n", w->model_path);
        return -1;
    }
    const char *keys[][2] = {{"op", "operators"}, {"cli", "clients"}, {"cli2", "clients"},
                             {"a1", "agents"},    {"a2", "agents"},   {"a3", "agents"},
                             {"stranger", NULL}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (fx_add_key(&w->f, keys[i][0], keys[i][1], NULL) != 0)
            return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    for (size_t i = 0; i < 4; i++) {
        sa_stop(&w->sa[i]);
        if (w->agents[i] > 0)
            ts_kill_wait(w->agents[i], SIGKILL, 2000);
    }
    fx_teardown(&w->f);
    free(w);
    return 0;
}

static scripted_agent *scripted_burst(world *w, size_t i, const char *key, uint32_t slots,
                                      uint32_t tokens, uint32_t token_ms, uint32_t burst,
                                      uint32_t text_bytes)
{
    char key_file[512];
    fx_key_path(&w->f, key, "key", key_file, sizeof key_file);
    sa_params p = {.key_file = key_file,
                   .server_public = w->f.coord_keys.public_z85,
                   .endpoint = w->f.agents_ep,
                   .model = MODEL,
                   .slots = slots,
                   .heartbeat_ms = HB_MS,
                   .tokens = tokens,
                   .token_ms = token_ms,
                   .burst = burst,
                   .text_bytes = text_bytes};
    w->sa[i] = sa_start(&p);
    assert_non_null(w->sa[i]);
    assert_int_equal(sa_wait_registered(w->sa[i], 3000), 1);
    return w->sa[i];
}

static scripted_agent *scripted(world *w, size_t i, const char *key, uint32_t slots,
                                uint32_t tokens, uint32_t token_ms)
{
    return scripted_burst(w, i, key, slots, tokens, token_ms, 1, 0);
}

/* A real agent process with keys/KEY.key; name NULL = ask for none. */
static void real_agent(world *w, size_t i, const char *key, const char *name, int slots)
{
    char bin[512], key_file[512], server[512], log[512], sl[16], hb[16];
    ts_bin_path("agent/edgefleet-agent", bin, sizeof bin);
    fx_key_path(&w->f, key, "key", key_file, sizeof key_file);
    fx_key_path(&w->f, "coordinator", "pub", server, sizeof server);
    snprintf(log, sizeof log, "%s/agent-%zu.log", w->f.dir, i);
    snprintf(sl, sizeof sl, "%d", slots);
    snprintf(hb, sizeof hb, "%d", HB_MS);
    char *argv[] = {bin,
                    "--coordinator",
                    w->f.agents_ep,
                    "--server-key",
                    server,
                    "--key",
                    key_file,
                    "--model",
                    w->model_path,
                    "--slots",
                    sl,
                    "--threads",
                    "1",
                    "--ctx",
                    "1024",
                    "--heartbeat-ms",
                    hb,
                    name ? "--name" : NULL,
                    (char *)name,
                    NULL};
    w->agents[i] = ts_spawn(argv, log);
    assert_true(w->agents[i] > 0);
}

static void learn_model(world *w)
{
    ef_client_t *op = fx_client(&w->f, "op", 5000);
    ef_fleet_status *st = NULL;
    assert_int_equal(ef_client_status(op, &st), 0);
    assert_true(st->n_agents > 0 && st->agents[0].n_models > 0);
    snprintf(w->model, sizeof w->model, "%s", st->agents[0].models[0].model);
    ef_fleet_status_free(&st);
    ef_client_destroy(&op);
}

static int alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0 && ts_wait_exit(pid, 0) < 0; }

/* ---- a long request from a well-behaved client, run beside each attack ---------------------- */

typedef struct {
    const world *w;
    const char *key; /* default cli2 */
    const char *model;
    uint32_t max_tokens;
    int rc;
    ef_result r;
    pthread_t thread;
} bystander;

static void *bystander_run(void *arg)
{
    bystander *b = arg;
    ef_client_t *c = fx_client(&b->w->f, b->key ? b->key : "cli2", 60000);
    ef_gen_params p = ef_gen_default_params();
    p.temperature = 0;
    p.max_tokens = b->max_tokens;
    b->rc = c ? ef_client_generate(c, b->model, "Once upon a time", &p, NULL, NULL, &b->r)
              : EF_ENOTCONN;
    ef_client_destroy(&c);
    return NULL;
}

static void bystander_start(bystander *b, const world *w, const char *model, uint32_t max_tokens)
{
    *b = (bystander){.w = w, .model = model, .max_tokens = max_tokens, .rc = 1};
    assert_int_equal(pthread_create(&b->thread, NULL, bystander_run, b), 0);
}

/* ---- item 1: identity ----------------------------------------------------------------------- */

/* Two boards with their own keys and no name configured (cloned from one image) both join, each
 * named after its key; a second copy of one board's configuration (the same key) is refused
 * while the first serves on, and the coordinator stays up (it used to abort in libzmq). */
static void test_cloned_boards_join_by_key_and_a_copied_key_is_refused(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    real_agent(w, 0, "a1", NULL, 1);
    real_agent(w, 1, "a2", NULL, 1);
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 20000), 2);
    learn_model(w);
    real_agent(w, 2, "a1", "a1", 1); /* the same agent.ini copied to a second board */
    char log[512];
    snprintf(log, sizeof log, "%s/agent-2.log", w->f.dir);
    assert_true(ts_file_wait_for(log, "coordinator refused registration", 15000));
    assert_true(ts_file_wait_for(w->f.log, "key agents/a1 is in use by a live agent", 1000));
    bystander b;
    bystander_start(&b, w, w->model, 32);
    pthread_join(b.thread, NULL);
    assert_int_equal(b.rc, 0);
    ts_sleep_ms(3000); /* the copy keeps knocking; the coordinator must not mind */
    assert_true(alive(w->f.coord_pid));
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 1000), 2);
}

/* ---- items 2 and 3: what a client may put in a request ------------------------------------- */

static envelope *next_about(raw_peer *p, int body, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        envelope *env = rp_recv(p, 100);
        if (env && (int)env->body_case == body)
            return env;
        codec_free(&env);
    }
    return NULL;
}

/* A request just under the client link's limit is refused at the front door, alone: the board
 * it would have been forwarded to keeps its link, and another client's answer on it finishes. */
static void
test_an_oversized_prompt_is_refused_at_the_door_and_the_board_keeps_serving(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    real_agent(w, 0, "a1", NULL, 2);
    assert_int_equal(fx_wait_agents(&w->f, "op", 1, 20000), 1);
    learn_model(w);
    bystander b;
    bystander_start(&b, w, w->model, 200);
    raw_peer *p = rp_open(&w->f, w->f.clients_ep, "cli", 0);
    assert_non_null(p);
    size_t n = CODEC_MAX_FRAME_DEFAULT - 200;
    char *prompt = malloc(n + 1);
    memset(prompt, 'a', n);
    prompt[n] = '\0';
    for (int i = 0; i < 3; i++) {
        uint8_t id[16] = {0x42, (uint8_t)i};
        Edgefleet__Request r;
        Edgefleet__SamplingParams sp;
        rp_request(&r, &sp, id, w->model, prompt, 8);
        envelope env = EDGEFLEET__ENVELOPE__INIT;
        env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
        env.request = &r;
        assert_int_equal(rp_send(p, &env), 0);
        envelope *reply = next_about(p, EDGEFLEET__ENVELOPE__BODY_ERROR, 5000);
        assert_non_null(reply);
        assert_int_equal(reply->error->code, EF_ETOOBIG);
        assert_non_null(strstr(reply->error->message, "prompt of"));
        codec_free(&reply);
    }
    free(prompt);
    rp_close(&p);
    pthread_join(b.thread, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.r.completion_tokens, b.r.tokens_received);
    char log[512];
    snprintf(log, sizeof log, "%s/agent-0.log", w->f.dir);
    assert_false(ts_file_wait_for(log, "coordinator link down", 10));
    assert_false(ts_file_wait_for(w->f.log, "dead: silent", 10));
}

/* Token ids only the coordinator may set are refused from a client; a running request of
 * another client on the same model finishes (out-of-vocabulary ids used to fail every request
 * on the board). */
static void test_client_resume_tokens_are_refused_and_others_finish(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    real_agent(w, 0, "a1", NULL, 2);
    assert_int_equal(fx_wait_agents(&w->f, "op", 1, 20000), 1);
    learn_model(w);
    bystander b;
    bystander_start(&b, w, w->model, 200);
    raw_peer *p = rp_open(&w->f, w->f.clients_ep, "cli", 0);
    uint8_t id[16] = {0x77};
    int32_t bad[3] = {1, 999999, -5};
    Edgefleet__Request r;
    Edgefleet__SamplingParams sp;
    rp_request(&r, &sp, id, w->model, "Once", 8);
    r.resume_tokens = bad;
    r.n_resume_tokens = 3;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &r;
    assert_int_equal(rp_send(p, &env), 0);
    envelope *reply = next_about(p, EDGEFLEET__ENVELOPE__BODY_ERROR, 5000);
    assert_non_null(reply);
    assert_int_equal(reply->error->code, EF_EINVAL);
    assert_non_null(strstr(reply->error->message, "resume_tokens"));
    codec_free(&reply);
    rp_close(&p);
    pthread_join(b.thread, NULL);
    assert_int_equal(b.rc, 0);
}

/* ---- item 4: a request belongs to its key --------------------------------------------------- */

static void send_request(raw_peer *p, const uint8_t *id, const char *model, uint32_t max_tokens)
{
    Edgefleet__Request r;
    Edgefleet__SamplingParams sp;
    rp_request(&r, &sp, id, model, "Once upon a time", max_tokens);
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &r;
    assert_int_equal(rp_send(p, &env), 0);
}

/* Read one request's stream to its end: checks the chunks are contiguous from 0, returns the
 * tokens seen and the final envelope's kind (Done/Error) in *end (its code in *code). */
static uint32_t read_stream(raw_peer *p, const uint8_t *id, int timeout_ms, int *end, int *code)
{
    uint32_t next = 0;
    *end = 0;
    for (int idle = 0; idle < timeout_ms && !*end;) {
        envelope *env = rp_recv(p, 100);
        if (!env) {
            idle += 100;
            continue;
        }
        idle = 0;
        if (env->body_case == EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK &&
            memcmp(env->token_chunk->request_id.data, id, 16) == 0) {
            assert_int_equal(env->token_chunk->seq, next); /* no gap, no repeat */
            next += (uint32_t)env->token_chunk->n_token_ids;
        } else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE) {
            *end = EDGEFLEET__ENVELOPE__BODY_DONE;
        } else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR) {
            *end = EDGEFLEET__ENVELOPE__BODY_ERROR;
            *code = env->error->code;
        }
        codec_free(&env);
    }
    return next;
}

static void test_another_key_cannot_take_over_or_cancel_a_running_request(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    scripted(w, 0, "a1", 1, 40, 20); /* 40 tokens over ~800 ms */
    raw_peer *owner = rp_open(&w->f, w->f.clients_ep, "cli", 0);
    raw_peer *thief = rp_open(&w->f, w->f.clients_ep, "cli2", 0);
    uint8_t id[16] = {0xab, 0xcd};
    send_request(owner, id, MODEL, 40);
    ts_sleep_ms(200);
    send_request(thief, id, MODEL, 40); /* the same id from another key */
    Edgefleet__Cancel cn = EDGEFLEET__CANCEL__INIT;
    cn.request_id = (ProtobufCBinaryData){16, id};
    envelope cancel = EDGEFLEET__ENVELOPE__INIT;
    cancel.body_case = EDGEFLEET__ENVELOPE__BODY_CANCEL;
    cancel.cancel = &cn;
    assert_int_equal(rp_send(thief, &cancel), 0);
    int end = 0, code = 0;
    assert_int_equal(read_stream(owner, id, 5000, &end, &code), 40);
    assert_int_equal(end, EDGEFLEET__ENVELOPE__BODY_DONE);
    envelope *reply = next_about(thief, EDGEFLEET__ENVELOPE__BODY_ERROR, 1000);
    assert_non_null(reply);
    assert_int_equal(reply->error->code, EF_EDUPLICATE);
    codec_free(&reply);
    assert_null(next_about(thief, EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK, 300));
    rp_close(&owner);
    rp_close(&thief);
}

/* A DEALER may choose its routing id: one that takes the id of a client that just left (its
 * request still streaming) must get none of that answer, whether it says something first or
 * only listens, and the abandoned request stops on its board. */
static void test_a_routing_id_taken_over_by_another_key_gets_none_of_the_old_answer(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    scripted(w, 0, "a1", 1, 400, 10); /* 400 tokens over ~4 s */
    for (int speaks = 0; speaks < 2; speaks++) {
        char rid[16];
        snprintf(rid, sizeof rid, "victim-%d", speaks);
        raw_peer *owner = rp_open_id(&w->f, w->f.clients_ep, "cli", rid);
        uint8_t id[16] = {0x7a, (uint8_t)speaks};
        send_request(owner, id, MODEL, 400);
        envelope *first = next_about(owner, EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK, 3000);
        assert_non_null(first); /* it streams */
        codec_free(&first);
        rp_close(&owner); /* leaves mid-answer */
        raw_peer *thief = NULL;
        for (int tries = 0; tries < 50 && !thief; tries++) /* until libzmq lets the id go */
            thief = rp_open_id(&w->f, w->f.clients_ep, "cli2", rid);
        assert_non_null(thief);
        if (speaks) { /* a cancel for an id of its own: harmless, and it is heard */
            Edgefleet__Cancel cn = EDGEFLEET__CANCEL__INIT;
            uint8_t other[16] = {0x01};
            cn.request_id = (ProtobufCBinaryData){16, other};
            envelope cancel = EDGEFLEET__ENVELOPE__INIT;
            cancel.body_case = EDGEFLEET__ENVELOPE__BODY_CANCEL;
            cancel.cancel = &cn;
            assert_int_equal(rp_send(thief, &cancel), 0);
        }
        envelope *got = rp_recv(thief, 1500);
        if (got)
            fprintf(stderr, "the thief got a %s\n", codec_body_name(got));
        assert_null(got);
        rp_close(&thief);
    }
    assert_true(ts_file_wait_for(w->f.log, "client gone", 2000));
}

/* ---- item 6: a slow reader ----------------------------------------------------------------- */

/* A client that reads slowly gets every token in order (its link's queue fills, and the
 * coordinator used to drop chunks there and still send Done). */
static void test_a_slow_reader_gets_every_token_in_order(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    scripted(w, 0, "a1", 1, 3000, 0); /* 3000 one-token chunks as fast as it can */
    raw_peer *p = rp_open(&w->f, w->f.clients_ep, "cli", 4);
    uint8_t id[16] = {0x51};
    send_request(p, id, MODEL, 3000);
    ts_sleep_ms(1500); /* not reading: thousands of chunks pile up at the coordinator */
    int end = 0, code = 0;
    assert_int_equal(read_stream(p, id, 5000, &end, &code), 3000);
    assert_int_equal(end, EDGEFLEET__ENVELOPE__BODY_DONE);
    rp_close(&p);
}

/* One that stops reading loses its own request after --client-stall-ms, which frees the board's
 * slot for others; nobody else waits on it. */
static void test_a_client_that_stops_reading_loses_only_its_own_request(void **state)
{
    world *w = *state;
    w->f.extra[0] = "--client-stall-ms";
    w->f.extra[1] = "1000";
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    /* One slot and an endless answer of 1 KB tokens as fast as it can: the link's queue and the
     * kernel's buffers fill within seconds (also on a slow or sanitized build), then the
     * backlog's bound or the stall ends it. */
    scripted_burst(w, 0, "a1", 1, 2000000, 0, 200, 1024);
    raw_peer *p = rp_open(&w->f, w->f.clients_ep, "cli", 4);
    uint8_t id[16] = {0x52};
    send_request(p, id, MODEL, 2000000);
    ts_sleep_ms(300);
    ef_client_t *other = fx_client(&w->f, "cli2", 20000);
    ef_gen_params g = ef_gen_default_params();
    g.max_tokens = 5;
    ef_result r;
    /* Queued behind the stalled stream on the only slot: it runs once that one is given up. */
    assert_int_equal(ef_client_generate(other, MODEL, "hi", &g, NULL, NULL, &r), 0);
    assert_true(ts_file_wait_for(w->f.log, "ESTALLED: the client did not read its stream", 1000));
    ef_client_destroy(&other);
    rp_close(&p);
}

/* ---- items 8 and 9: refused strangers, revoked keys ---------------------------------------- */

static void test_a_flood_of_strangers_leaves_a_few_log_lines(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    enum { STRANGERS = 100 };
    raw_peer *p[STRANGERS];
    for (int i = 0; i < STRANGERS; i++)
        p[i] = rp_open(&w->f, w->f.clients_ep, "stranger", 0);
    ts_sleep_ms(1200);
    for (int i = 0; i < STRANGERS; i++)
        rp_close(&p[i]);
    for (int i = 0; i < 5; i++) /* a second wave, after the first line's second has passed */
        p[i] = rp_open(&w->f, w->f.clients_ep, "stranger", 0);
    ts_sleep_ms(500);
    for (int i = 0; i < 5; i++)
        rp_close(&p[i]);
    FILE *in = fopen(w->f.log, "r");
    assert_non_null(in);
    char line[2048];
    int lines = 0, counted = 0;
    while (fgets(line, sizeof line, in)) {
        lines += strstr(line, "refused connection on domain \"clients\"") != NULL;
        counted += strstr(line, "more refused since the last such line") != NULL;
    }
    fclose(in);
    fprintf(stderr, "%d strangers, then 5 more, in 1.7 s: %d log lines\n", STRANGERS, lines);
    assert_true(lines >= 1);
    assert_true(lines <= 3);
    assert_true(counted >= 1);
    /* And an allowed client is still served at once. */
    ef_client_t *op = fx_client(&w->f, "op", 3000);
    ef_fleet_status *st = NULL;
    assert_int_equal(ef_client_status(op, &st), 0);
    ef_fleet_status_free(&st);
    ef_client_destroy(&op);
}

static void remove_pub(world *w, const char *sub, const char *name)
{
    char path[640];
    snprintf(path, sizeof path, "%s/%s/%s.pub", w->f.allow, sub, name);
    assert_int_equal(unlink(path), 0);
}

/* A revoked client's live link is cut within a few seconds, with the request it was waiting
 * for; a revoked board leaves the fleet, and its request fails to its client at once. */
static void test_revoking_a_key_cuts_its_live_links(void **state)
{
    world *w = *state;
    /* Without resumes: a lost agent's requests fail at once (test_failover resumes). */
    w->f.extra[0] = "--max-resumes";
    w->f.extra[1] = "0";
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    scripted(w, 0, "a1", 2, 0, 1); /* holds every request: they stay open */
    bystander b;
    bystander_start(&b, w, MODEL, 8); /* key cli2, held by the agent */
    for (int i = 0; i < 300 && sa_requests(w->sa[0]) < 1; i++)
        ts_sleep_ms(10);
    assert_int_equal(sa_requests(w->sa[0]), 1);
    uint64_t t0 = (uint64_t)time(NULL);
    remove_pub(w, "clients", "cli2");
    pthread_join(b.thread, NULL); /* admitted over a live link before the key went: it ends */
    assert_int_not_equal(b.rc, 0);
    assert_true((uint64_t)time(NULL) - t0 <= 4);
    assert_true(ts_file_wait_for(w->f.log, "key clients/cli2 revoked", 1000));

    raw_peer *p = rp_open(&w->f, w->f.clients_ep, "cli", 0);
    uint8_t id[16] = {0x99};
    send_request(p, id, MODEL, 8); /* held on a1 */
    ts_sleep_ms(300);
    remove_pub(w, "agents", "a1");
    int end = 0, code = 0;
    read_stream(p, id, 5000, &end, &code);
    assert_int_equal(end, EDGEFLEET__ENVELOPE__BODY_ERROR);
    assert_int_equal(code, EF_EAGENTLOST);
    assert_true(ts_file_wait_for(w->f.log, "key agents/a1 revoked", 1000));
    assert_int_equal(fx_wait_agents(&w->f, "op", 0, 3000), 0);
    rp_close(&p);
}

/* ---- item 10: one key cannot starve another -------------------------------------------------- */

static void test_one_key_flooding_cannot_make_another_key_wait_behind_it(void **state)
{
    world *w = *state;
    w->f.extra[0] = "--client-max";
    w->f.extra[1] = "8";
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 64), 0);
    scripted(w, 0, "a1", 1, 3, 30); /* one slot, ~90 ms per answer */
    raw_peer *flood = rp_open(&w->f, w->f.clients_ep, "cli", 0);
    for (int i = 0; i < 100; i++) {
        uint8_t id[16] = {0xf0, (uint8_t)i};
        send_request(flood, id, MODEL, 3);
    }
    int busy = 0, client_busy = 0;
    for (envelope *env; busy < 92 && (env = rp_recv(flood, 2000)) != NULL; codec_free(&env))
        if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR && env->error->code == EF_EBUSY) {
            busy++;
            client_busy += strstr(env->error->message, "for this client") != NULL;
        }
    assert_int_equal(busy, 92); /* 8 admitted: 1 running, 7 queued */
    assert_int_equal(client_busy, 92);
    ef_client_t *other = fx_client(&w->f, "cli2", 10000);
    ef_result r;
    ef_gen_params g = ef_gen_default_params();
    g.max_tokens = 3;
    assert_int_equal(ef_client_generate(other, MODEL, "hi", &g, NULL, NULL, &r), 0);
    /* Its turn came after at most the flood's running request and one more: count the flood's
     * requests that ended before it, in the coordinator's log. */
    FILE *in = fopen(w->f.log, "r");
    char line[2048];
    int before = 0, seen = 0;
    while (fgets(line, sizeof line, in) && !seen) {
        if (!strstr(line, ") done on agent"))
            continue;
        seen = strstr(line, "(clients/cli2)") != NULL;
        before += !seen;
    }
    fclose(in);
    fprintf(stderr, "the flood's requests done before the other key's: %d\n", before);
    assert_true(seen);
    assert_true(before <= 3);
    ef_client_destroy(&other);
    rp_close(&flood);
}

/* ---- item 11: a board that cannot get in says why ------------------------------------------ */

static void test_an_agent_whose_key_is_not_allowed_says_so(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);
    real_agent(w, 0, "stranger", NULL, 1);
    char log[512];
    snprintf(log, sizeof log, "%s/agent-0.log", w->f.dir);
    assert_true(ts_file_wait_for(log, "allow/agents/", 15000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cloned_boards_join_by_key_and_a_copied_key_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_oversized_prompt_is_refused_at_the_door_and_the_board_keeps_serving, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_client_resume_tokens_are_refused_and_others_finish,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_another_key_cannot_take_over_or_cancel_a_running_request, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_routing_id_taken_over_by_another_key_gets_none_of_the_old_answer, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_a_slow_reader_gets_every_token_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_client_that_stops_reading_loses_only_its_own_request,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_flood_of_strangers_leaves_a_few_log_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoking_a_key_cuts_its_live_links, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_one_key_flooding_cannot_make_another_key_wait_behind_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_agent_whose_key_is_not_allowed_says_so, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
