/* The agent's inference engine on the real model (stories260K): repeatable greedy output
 * whatever the batch, parallel requests, cancel, stop strings, session prefix reuse, bad input
 * (resume tokens outside the vocabulary among it), bad model files; and the simulated backend.
 * Engines are created per test (the model is 1 MB and loads in milliseconds), so a failing test
 * leaves nothing behind for the next. */
#include "engine.h"
#include "test_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define WAIT_MS  20000
#define MAX_REQS 8

static char g_model[1024];

typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN];
    char text[8192];
    size_t text_len;
    int32_t tokens[2048];
    size_t n_tokens;
    int chunks;
    int ended; /* 1 = Done, 2 = Error */
    engine_event done;
    int error_code;
} result;

static engine *engine_with(uint32_t slots, uint32_t ctx)
{
    backend_params bp = {.kind = BACKEND_LLAMA,
                         .name = "stories",
                         .path = g_model,
                         .n_ctx = ctx,
                         .n_slots = slots,
                         .n_threads = 1};
    engine_params ep = {.models = &bp, .n_models = 1};
    int err = 0;
    ef_errmsg em = {{0}};
    engine *e = engine_new(&ep, &err, &em);
    if (!e)
        fprintf(stderr, "engine_new: %s (%s)\n", em.msg, ef_err_name(err));
    return e;
}

static void make_id(uint8_t id[CODEC_REQUEST_ID_LEN], int n)
{
    memset(id, 0xA0, CODEC_REQUEST_ID_LEN);
    id[0] = (uint8_t)n;
}

/* A raw-prompt request; strings are borrowed. */
static void request_init(Edgefleet__Request *req, Edgefleet__SamplingParams *sp, uint8_t *id,
                         const char *prompt, uint32_t max_tokens)
{
    edgefleet__request__init(req);
    edgefleet__sampling_params__init(sp);
    req->request_id.data = id;
    req->request_id.len = CODEC_REQUEST_ID_LEN;
    req->model = "stories";
    req->prompt = (char *)prompt;
    req->max_tokens = max_tokens;
    req->sampling = sp;
}

static result *find(result *rs, size_t n, const uint8_t *id)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(rs[i].id, id, CODEC_REQUEST_ID_LEN) == 0)
            return &rs[i];
    return NULL;
}

/* Collect events until every result in rs has ended; checks chunk sequence numbers. */
static void collect(engine *e, result *rs, size_t n)
{
    size_t ended = 0;
    while (ended < n) {
        engine_event *ev = engine_wait_event(e, WAIT_MS);
        assert_non_null(ev);
        result *r = find(rs, n, ev->request_id);
        assert_non_null(r);
        assert_int_equal(r->ended, 0);
        if (ev->kind == ENGINE_EV_CHUNK) {
            assert_int_equal(ev->seq, r->n_tokens); /* no gaps, no repeats */
            assert_true(r->text_len + ev->text_len < sizeof r->text);
            memcpy(r->text + r->text_len, ev->text, ev->text_len + 1);
            r->text_len += ev->text_len;
            if (ev->n_tokens)
                memcpy(r->tokens + r->n_tokens, ev->tokens, ev->n_tokens * sizeof(int32_t));
            r->n_tokens += ev->n_tokens;
            r->chunks++;
        } else {
            r->ended = ev->kind == ENGINE_EV_DONE ? 1 : 2;
            r->done = *ev;
            r->done.text = NULL;
            r->done.tokens = NULL;
            r->error_code = ev->code;
            ended++;
        }
        engine_event_free(&ev);
    }
}

/* Run one greedy request to its end on e. */
static void run_one(engine *e, int idn, const char *prompt, uint32_t max_tokens, result *out)
{
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    memset(out, 0, sizeof *out);
    make_id(out->id, idn);
    request_init(&req, &sp, out->id, prompt, max_tokens);
    ef_errmsg em;
    assert_int_equal(engine_submit(e, &req, &em), 0);
    collect(e, out, 1);
    assert_int_equal(out->ended, 1);
}

static void test_greedy_is_identical_across_runs_and_batch_sizes(void **state)
{
    (void)state;
    engine *e = engine_with(4, 256);
    assert_non_null(e);
    result first, again;
    run_one(e, 1, "Once upon a time", 24, &first);
    run_one(e, 2, "Once upon a time", 24, &again);
    assert_true(first.text_len > 0);
    assert_int_equal(first.n_tokens, 24);
    assert_string_equal(first.text, again.text);
    assert_memory_equal(first.tokens, again.tokens, sizeof(int32_t) * 24);

    /* Four at once, with different prompts in the same batch as the one we compare. */
    const char *prompts[4] = {"Once upon a time", "The cat sat", "Once upon a time",
                              "Lily and Ben went to the park"};
    result rs[4];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 4; i++) {
        Edgefleet__Request req;
        Edgefleet__SamplingParams sp;
        make_id(rs[i].id, 10 + i);
        request_init(&req, &sp, rs[i].id, prompts[i], 24);
        ef_errmsg em;
        assert_int_equal(engine_submit(e, &req, &em), 0);
    }
    collect(e, rs, 4);
    assert_string_equal(rs[0].text, first.text);
    assert_string_equal(rs[2].text, first.text);
    assert_memory_equal(rs[0].tokens, first.tokens, sizeof(int32_t) * 24);
    engine_destroy(&e);
    assert_null(e);
}

static void test_four_parallel_requests_complete_with_right_counts(void **state)
{
    (void)state;
    engine *e = engine_with(4, 256);
    assert_non_null(e);
    const char *prompts[4] = {"Once upon a time", "The dog", "One day, Tom", "The sun was"};
    /* Longest first, and long enough that no slot frees before the fifth request below: the
     * last one submitted still needs 40 decode steps (many ms even for stories260K). */
    const uint32_t max[4] = {120, 90, 60, 40};
    result rs[4];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 4; i++) {
        Edgefleet__Request req;
        Edgefleet__SamplingParams sp;
        make_id(rs[i].id, 20 + i);
        request_init(&req, &sp, rs[i].id, prompts[i], max[i]);
        ef_errmsg em;
        assert_int_equal(engine_submit(e, &req, &em), 0);
    }
    /* All four slots are taken: a fifth is refused with EF_EBUSY (the coordinator's credit). */
    uint8_t id5[CODEC_REQUEST_ID_LEN];
    make_id(id5, 29);
    Edgefleet__Request req5;
    Edgefleet__SamplingParams sp5;
    request_init(&req5, &sp5, id5, "extra", 4);
    ef_errmsg em;
    assert_int_equal(engine_submit(e, &req5, &em), EF_EBUSY);
    collect(e, rs, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rs[i].ended, 1);
        assert_int_equal(rs[i].done.finish, EDGEFLEET__FINISH_REASON__FINISH_LENGTH);
        assert_int_equal(rs[i].done.completion_tokens, max[i]);
        assert_int_equal(rs[i].n_tokens, max[i]);
        assert_true(rs[i].done.prompt_tokens > 0);
        assert_true(rs[i].done.prompt_evaluated <= rs[i].done.prompt_tokens);
        assert_true(rs[i].text_len > 0);
    }
    engine_destroy(&e);
}

static void test_cancel_stops_generation_and_frees_the_slot(void **state)
{
    (void)state;
    engine *e = engine_with(1, 512);
    assert_non_null(e);
    result r;
    memset(&r, 0, sizeof r);
    make_id(r.id, 30);
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    request_init(&req, &sp, r.id, "Once upon a time", 500);
    sp.temperature = 0.8f; /* sampled, so it does not end early on a repeated story */
    sp.seed = 42;
    ef_errmsg em;
    assert_int_equal(engine_submit(e, &req, &em), 0);
    engine_event *ev = engine_wait_event(e, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(ev->kind, ENGINE_EV_CHUNK);
    uint32_t first_n = (uint32_t)ev->n_tokens;
    engine_event_free(&ev);

    uint8_t id2[CODEC_REQUEST_ID_LEN];
    make_id(id2, 31);
    Edgefleet__Request req2;
    Edgefleet__SamplingParams sp2;
    request_init(&req2, &sp2, id2, "The dog", 4);
    assert_int_equal(engine_submit(e, &req2, &em), EF_EBUSY);

    engine_cancel(e, r.id);
    r.n_tokens = first_n;
    collect(e, &r, 1);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.done.finish, EDGEFLEET__FINISH_REASON__FINISH_CANCELLED);
    assert_true(r.done.completion_tokens < 500);
    assert_int_equal(r.done.seed, 42);

    result r2;
    memset(&r2, 0, sizeof r2);
    memcpy(r2.id, id2, sizeof id2);
    assert_int_equal(engine_submit(e, &req2, &em), 0);
    collect(e, &r2, 1);
    assert_int_equal(r2.ended, 1);
    assert_int_equal(r2.done.completion_tokens, 4);
    engine_destroy(&e);
}

static void test_stop_string_ends_generation_and_is_not_in_output(void **state)
{
    (void)state;
    engine *e = engine_with(2, 256);
    assert_non_null(e);
    result full;
    run_one(e, 40, "Once upon a time", 32, &full);
    /* Stop on the fifth word of the known greedy answer. */
    const char *p = full.text;
    for (int words = 0; words < 5 && p; words++)
        p = strchr(p + 1, ' ');
    assert_non_null(p);
    char stop[16];
    snprintf(stop, sizeof stop, "%.4s", p + 1);
    size_t expect_len = (size_t)(strstr(full.text, stop) - full.text);

    result r;
    memset(&r, 0, sizeof r);
    make_id(r.id, 41);
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    request_init(&req, &sp, r.id, "Once upon a time", 32);
    char *stops[1] = {stop};
    req.n_stop = 1;
    req.stop = stops;
    ef_errmsg em;
    assert_int_equal(engine_submit(e, &req, &em), 0);
    collect(e, &r, 1);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.done.finish, EDGEFLEET__FINISH_REASON__FINISH_STOP);
    assert_null(strstr(r.text, stop));
    assert_int_equal(r.text_len, expect_len);
    assert_memory_equal(r.text, full.text, expect_len);
    assert_true(r.done.completion_tokens < 32);
    assert_int_equal(r.done.completion_tokens, r.n_tokens);
    engine_destroy(&e);
}

static void test_session_reuse_evaluates_only_the_suffix(void **state)
{
    (void)state;
    engine *e = engine_with(2, 512);
    assert_non_null(e);
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    result t1, other, t2;
    memset(&t1, 0, sizeof t1);
    memset(&other, 0, sizeof other);
    memset(&t2, 0, sizeof t2);
    ef_errmsg em;
    make_id(t1.id, 50);
    request_init(&req, &sp, t1.id, "Once upon a time, there was a little girl named Lily.", 12);
    req.session_id = "chat-1";
    assert_int_equal(engine_submit(e, &req, &em), 0);
    collect(e, &t1, 1);
    assert_int_equal(t1.done.prompt_evaluated, t1.done.prompt_tokens);

    /* Another request in between must not take the session's slot. */
    make_id(other.id, 51);
    request_init(&req, &sp, other.id, "The big red ball bounced", 6);
    assert_int_equal(engine_submit(e, &req, &em), 0);
    collect(e, &other, 1);

    char turn2[sizeof t1.text + 128];
    snprintf(turn2, sizeof turn2, "Once upon a time, there was a little girl named Lily.%s Then",
             t1.text);
    make_id(t2.id, 52);
    request_init(&req, &sp, t2.id, turn2, 8);
    req.session_id = "chat-1";
    assert_int_equal(engine_submit(e, &req, &em), 0);
    collect(e, &t2, 1);
    assert_int_equal(t2.ended, 1);
    assert_true(t2.done.prompt_tokens > t1.done.prompt_tokens);
    assert_true(t2.done.prompt_evaluated < t2.done.prompt_tokens);
    /* Only the new suffix (a few tokens) was evaluated, not the first turn again. */
    assert_true(t2.done.prompt_evaluated <= t2.done.prompt_tokens - t1.done.prompt_tokens + 2);
    engine_destroy(&e);
}

/* Submit req; the error comes back either at once or as an Error event. */
static int outcome(engine *e, Edgefleet__Request *req)
{
    ef_errmsg em = {{0}};
    int rc = engine_submit(e, req, &em);
    if (rc != 0) {
        assert_true(strlen(em.msg) > 0);
        return rc;
    }
    result r;
    memset(&r, 0, sizeof r);
    memcpy(r.id, req->request_id.data, CODEC_REQUEST_ID_LEN);
    collect(e, &r, 1);
    return r.ended == 2 ? r.error_code : 0;
}

static void test_bad_input_gets_its_error_and_the_engine_keeps_serving(void **state)
{
    (void)state;
    engine *e = engine_with(2, 128);
    assert_non_null(e);
    uint8_t id[CODEC_REQUEST_ID_LEN];
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    int n = 60;
#define FRESH(prompt, max) (make_id(id, n++), request_init(&req, &sp, id, (prompt), (max)))
    FRESH("hello", 4);
    req.model = "no-such-model";
    assert_int_equal(outcome(e, &req), EF_EUNKNOWNMODEL);
    FRESH("hello", 0);
    assert_int_equal(outcome(e, &req), EF_EINVAL);
    FRESH("hello", 4);
    sp.temperature = -1.0f;
    assert_int_equal(outcome(e, &req), EF_EINVAL);
    FRESH("hello", 4);
    sp.top_p = 1.5f;
    assert_int_equal(outcome(e, &req), EF_EINVAL);
    char *stops[17];
    for (int i = 0; i < 17; i++)
        stops[i] = "x";
    FRESH("hello", 4);
    req.n_stop = 17;
    req.stop = stops;
    assert_int_equal(outcome(e, &req), EF_EINVAL);
    char long_stop[300];
    memset(long_stop, 'a', sizeof long_stop - 1);
    long_stop[sizeof long_stop - 1] = '\0';
    stops[0] = long_stop;
    FRESH("hello", 4);
    req.n_stop = 1;
    req.stop = stops;
    assert_int_equal(outcome(e, &req), EF_EINVAL);
    size_t huge_len = 2u << 20;
    char *huge = malloc(huge_len + 1);
    assert_non_null(huge);
    memset(huge, 'a', huge_len);
    huge[huge_len] = '\0';
    FRESH(huge, 4);
    assert_int_equal(outcome(e, &req), EF_ETOOBIG);
    /* Fits the byte cap, not the 128-token context. */
    snprintf(huge, 4000, "%s", "");
    for (int i = 0; i < 300; i++)
        strcat(huge, "cat ");
    FRESH(huge, 4);
    assert_int_equal(outcome(e, &req), EF_ECONTEXT);
    free(huge);
    FRESH("", 4);
    assert_int_equal(outcome(e, &req), EF_EINVAL);
    /* Chat on a model with no template and none configured. */
    Edgefleet__ChatMessage msg = EDGEFLEET__CHAT_MESSAGE__INIT, *msgs[1] = {&msg};
    msg.role = "user";
    msg.content = "hi";
    FRESH("", 4);
    req.n_messages = 1;
    req.messages = msgs;
    assert_int_equal(outcome(e, &req), EF_EINVAL);
#undef FRESH
    result ok;
    run_one(e, 99, "Once upon a time", 5, &ok);
    assert_int_equal(ok.done.completion_tokens, 5);
    engine_destroy(&e);
}

/* Tokens of the stream that runs while foreign resume tokens arrive: long enough to still be
 * running when the test thread wakes on its first chunk, even on a loaded box. */
#define STREAM_TOKENS 480

/* Submit a request resuming after `resume` (borrowed); returns engine_submit's code. */
static int submit_resumed(engine *e, int idn, int32_t *resume, size_t n_resume, ef_errmsg *em)
{
    uint8_t id[CODEC_REQUEST_ID_LEN];
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    make_id(id, idn);
    request_init(&req, &sp, id, "The cat sat", 8);
    req.resume_tokens = resume;
    req.n_resume_tokens = n_resume;
    memset(em, 0, sizeof *em);
    return engine_submit(e, &req, em);
}

static void
test_resume_tokens_outside_the_vocabulary_are_refused_and_others_keep_streaming(void **state)
{
    (void)state;
    engine *e = engine_with(2, 512);
    assert_non_null(e);
    backend_desc d;
    engine_model_desc(e, 0, &d);
    assert_int_equal(d.n_vocab, 512); /* stories260K's own, from llama_vocab_n_tokens */
    /* Sampled with a fixed seed: a long stream (no early end on a repeated story) that is the
     * same whenever it runs alone on the model. */
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    result alone, r;
    memset(&alone, 0, sizeof alone);
    make_id(alone.id, 100);
    request_init(&req, &sp, alone.id, "Once upon a time", STREAM_TOKENS);
    sp.temperature = 0.8f;
    sp.seed = 42;
    ef_errmsg em;
    assert_int_equal(engine_submit(e, &req, &em), 0);
    collect(e, &alone, 1);
    assert_int_equal(alone.ended, 1);
    assert_true(alone.n_tokens > 100);

    /* The same request again; while it streams, resumed requests with foreign ids arrive. */
    memset(&r, 0, sizeof r);
    make_id(r.id, 101);
    req.request_id.data = r.id;
    assert_int_equal(engine_submit(e, &req, &em), 0);
    engine_event *ev = engine_wait_event(e, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(ev->kind, ENGINE_EV_CHUNK);
    assert_true(ev->n_tokens < alone.n_tokens); /* still streaming */
    memcpy(r.text, ev->text, ev->text_len + 1);
    r.text_len = ev->text_len;
    memcpy(r.tokens, ev->tokens, ev->n_tokens * sizeof(int32_t));
    r.n_tokens = ev->n_tokens;
    engine_event_free(&ev);

    int32_t big[5] = {10, 20, 30, 99999, 40};
    assert_int_equal(submit_resumed(e, 102, big, 5, &em), EF_EINVAL);
    assert_string_equal(em.msg, "resume token 3 is 99999; the model's vocabulary has 512 tokens");
    int32_t negative[2] = {-1, 5};
    assert_int_equal(submit_resumed(e, 103, negative, 2, &em), EF_EINVAL);
    assert_string_equal(em.msg, "resume token 0 is -1; the model's vocabulary has 512 tokens");
    int32_t edge[2] = {5, 512};
    assert_int_equal(submit_resumed(e, 104, edge, 2, &em), EF_EINVAL);
    assert_non_null(strstr(em.msg, "resume token 1 is 512"));

    collect(e, &r, 1);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.done.finish, alone.done.finish);
    assert_int_equal(r.n_tokens, alone.n_tokens);
    assert_string_equal(r.text, alone.text);

    /* The last id of the vocabulary is one: a resume at the edge is served. */
    int32_t last[2] = {5, 511};
    assert_int_equal(submit_resumed(e, 105, last, 2, &em), 0);
    result resumed;
    memset(&resumed, 0, sizeof resumed);
    make_id(resumed.id, 105);
    resumed.n_tokens = 2; /* the stream continues after the resumed tokens */
    collect(e, &resumed, 1);
    assert_int_equal(resumed.ended, 1);
    assert_int_equal(resumed.done.completion_tokens, 8);
    engine_destroy(&e);
}

static int load_error(const char *path, char *msg, size_t cap)
{
    backend_params bp = {.kind = BACKEND_LLAMA, .name = "m", .path = path, .n_slots = 1};
    engine_params ep = {.models = &bp, .n_models = 1};
    int err = 0;
    ef_errmsg em = {{0}};
    engine *e = engine_new(&ep, &err, &em);
    assert_null(e);
    snprintf(msg, cap, "%s", em.msg);
    return err;
}

static void test_bad_model_files_are_named_errors(void **state)
{
    (void)state;
    char dir[512], path[1024], msg[EF_ERRMSG_MAX];
    assert_int_equal(ts_tempdir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    assert_int_equal(load_error(path, msg, sizeof msg), EF_ENOENT);
    assert_non_null(strstr(msg, path));

    snprintf(path, sizeof path, "%s/notes.gguf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not a model\n", f);
    fclose(f);
    assert_int_equal(load_error(path, msg, sizeof msg), EF_EMODEL);
    assert_non_null(strstr(msg, path));

    /* The first 100 KB of the real model: a valid header, missing tensor data. */
    snprintf(path, sizeof path, "%s/truncated.gguf", dir);
    FILE *in = fopen(g_model, "rb");
    f = fopen(path, "wb");
    assert_non_null(in);
    assert_non_null(f);
    static char buf[100000];
    size_t got = fread(buf, 1, sizeof buf, in);
    assert_int_equal(fwrite(buf, 1, got, f), got);
    fclose(in);
    fclose(f);
    assert_int_equal(load_error(path, msg, sizeof msg), EF_EMODEL);
    assert_non_null(strstr(msg, path));
    ts_rmtree(dir);
}

static void test_simulated_backend_streams_and_says_so(void **state)
{
    (void)state;
    backend_params bp = {
        .kind = BACKEND_SIMULATED, .name = "stories", .n_slots = 2, .sim_tokens_per_s = 500};
    engine_params ep = {.models = &bp, .n_models = 1};
    int err = 0;
    ef_errmsg em;
    engine *e = engine_new(&ep, &err, &em);
    assert_non_null(e);
    backend_desc d;
    engine_model_desc(e, 0, &d);
    assert_int_equal(d.simulated, 1);
    assert_string_equal(d.architecture, "simulated");
    result rs[2];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 2; i++) {
        Edgefleet__Request req;
        Edgefleet__SamplingParams sp;
        make_id(rs[i].id, 80 + i);
        request_init(&req, &sp, rs[i].id, "Once upon a time", 10);
        assert_int_equal(engine_submit(e, &req, &em), 0);
    }
    collect(e, rs, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rs[i].done.completion_tokens, 10);
        assert_int_equal(rs[i].n_tokens, 10);
    }
    engine_destroy(&e);
}

static void test_chat_uses_the_configured_template_for_a_model_without_one(void **state)
{
    (void)state;
    backend_params bp = {.kind = BACKEND_LLAMA,
                         .name = "stories",
                         .path = g_model,
                         .n_ctx = 256,
                         .n_slots = 1,
                         .n_threads = 1,
                         .chat_template = "chatml"};
    engine_params ep = {.models = &bp, .n_models = 1};
    int err = 0;
    ef_errmsg em;
    engine *e = engine_new(&ep, &err, &em);
    assert_non_null(e);
    backend_desc d;
    engine_model_desc(e, 0, &d);
    assert_true(d.has_chat_template);
    Edgefleet__ChatMessage sys = EDGEFLEET__CHAT_MESSAGE__INIT,
                           user = EDGEFLEET__CHAT_MESSAGE__INIT;
    Edgefleet__ChatMessage *msgs[2] = {&sys, &user};
    sys.role = "system";
    sys.content = "You tell stories.";
    user.role = "user";
    user.content = "Once upon a time";
    result r;
    memset(&r, 0, sizeof r);
    make_id(r.id, 90);
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    request_init(&req, &sp, r.id, "", 6);
    req.n_messages = 2;
    req.messages = msgs;
    assert_int_equal(engine_submit(e, &req, &em), 0);
    collect(e, &r, 1);
    assert_int_equal(r.ended, 1);
    /* The rendered template (role markers around both messages) is longer than the text. */
    assert_true(r.done.prompt_tokens > 12);
    engine_destroy(&e);
}

int main(void)
{
    if (ts_model_path("stories260K.gguf", g_model, sizeof g_model) != 0) {
        fprintf(stderr, "model not found: %s\n", g_model);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_is_identical_across_runs_and_batch_sizes),
        cmocka_unit_test(test_four_parallel_requests_complete_with_right_counts),
        cmocka_unit_test(test_cancel_stops_generation_and_frees_the_slot),
        cmocka_unit_test(test_stop_string_ends_generation_and_is_not_in_output),
        cmocka_unit_test(test_session_reuse_evaluates_only_the_suffix),
        cmocka_unit_test(test_bad_input_gets_its_error_and_the_engine_keeps_serving),
        cmocka_unit_test(
            test_resume_tokens_outside_the_vocabulary_are_refused_and_others_keep_streaming),
        cmocka_unit_test(test_bad_model_files_are_named_errors),
        cmocka_unit_test(test_simulated_backend_streams_and_says_so),
        cmocka_unit_test(test_chat_uses_the_configured_template_for_a_model_without_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
