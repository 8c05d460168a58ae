/* The real edgefleet-agent binary (fork/exec, real model) against a small coordinator stand-in:
 * a CURVE ROUTER from src/transport.h on a libuv loop in this process, whose ZAP allowlist
 * holds the agent's key. Registration, heartbeats, streaming, bad requests, and a stream that
 * survives the peer going away and coming back on the same port. Every process started here is
 * killed in teardown, also when an assertion failed. */
#include "clock.h"
#include "codec.h"
#include "keys.h"
#include "test_support.h"
#include "transport.h"

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

#include <cmocka.h>

#define HB_MS   200
#define WAIT_MS 15000

typedef struct {
    char dir[512], allow[600], log[600], endpoint[64], model[1024];
    keys_pair server, agent;
    uv_loop_t loop;
    transport *t;
    tsock *router;
    pid_t pid;
    /* what the peer saw */
    int registers, heartbeats;
    char agent_name[64], model_name[64], arch[64], quant[64];
    uint32_t n_slots, n_ctx, hb_total;
    uint64_t size_bytes;
    int simulated;
    uint8_t peer_id[256];
    size_t peer_len;
    uint64_t last_hb_sent;
    /* the request being followed */
    uint8_t req_id[CODEC_REQUEST_ID_LEN];
    uint32_t n_tokens;  /* one past the highest token position received */
    uint8_t have[4096]; /* token positions received (a replay may fill a hole later) */
    int known;          /* the agent registered with this incarnation of the peer */
    int chunks, dups, done, finish, error_code;
    uint32_t completion_tokens;
    char text[16384];
    size_t text_len;
    int drop_on_chunk; /* destroy the router after this many chunks (0 = never) */
    int dropped;
} fixture;

static void peer_send(fixture *f, envelope *env)
{
    if (f->router && f->peer_len)
        tsock_send_env(f->router, f->peer_id, f->peer_len, env);
}

/* Every token position below n was received: no gaps. */
static int all_tokens(const fixture *f, uint32_t n)
{
    for (uint32_t i = 0; i < n && i < sizeof f->have; i++)
        if (!f->have[i])
            return 0;
    return n <= sizeof f->have;
}

static void on_register(fixture *f, const Edgefleet__Register *rg)
{
    f->registers++;
    f->known = 1;
    snprintf(f->agent_name, sizeof f->agent_name, "%s", rg->agent_name);
    f->simulated = rg->simulated;
    if (rg->n_models > 0) {
        const Edgefleet__ModelInfo *m = rg->models[0];
        snprintf(f->model_name, sizeof f->model_name, "%s", m->name);
        snprintf(f->arch, sizeof f->arch, "%s", m->architecture);
        snprintf(f->quant, sizeof f->quant, "%s", m->quantization);
        f->n_slots = m->n_slots;
        f->n_ctx = m->n_ctx;
        f->size_bytes = m->size_bytes;
    }
    Edgefleet__Registered r = EDGEFLEET__REGISTERED__INIT;
    r.accepted = 1;
    r.heartbeat_interval_ms = HB_MS;
    r.liveness = 3;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED;
    env.agent_registered = &r;
    peer_send(f, &env);
}

static void on_chunk(fixture *f, const Edgefleet__TokenChunk *tc)
{
    if (memcmp(tc->request_id.data, f->req_id, CODEC_REQUEST_ID_LEN) != 0)
        return;
    if (tc->n_token_ids && tc->seq < sizeof f->have && f->have[tc->seq]) {
        f->dups++; /* replayed after a reconnect: already have it */
        return;
    }
    for (size_t i = 0; i < tc->n_token_ids && tc->seq + i < sizeof f->have; i++)
        f->have[tc->seq + i] = 1;
    if (tc->seq + tc->n_token_ids > f->n_tokens)
        f->n_tokens = tc->seq + (uint32_t)tc->n_token_ids;
    size_t len = strlen(tc->text);
    if (f->text_len + len < sizeof f->text) {
        memcpy(f->text + f->text_len, tc->text, len + 1);
        f->text_len += len;
    }
    f->chunks++;
}

static void on_msg(tsock *s, zmq_msg_t *frames, size_t n, void *user)
{
    (void)s;
    fixture *f = user;
    if (n < 2)
        return;
    envelope *env = NULL;
    if (codec_decode(zmq_msg_data(&frames[n - 1]), zmq_msg_size(&frames[n - 1]), 0, &env) != 0)
        return;
    f->peer_len = zmq_msg_size(&frames[0]) < sizeof f->peer_id ? zmq_msg_size(&frames[0]) : 0;
    memcpy(f->peer_id, zmq_msg_data(&frames[0]), f->peer_len);
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER:
        on_register(f, env->agent_register);
        break;
    case EDGEFLEET__ENVELOPE__BODY_HEARTBEAT:
        f->heartbeats++;
        if (env->heartbeat->n_models > 0)
            f->hb_total = env->heartbeat->models[0]->total_slots;
        break;
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        on_chunk(f, env->token_chunk);
        break;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        if (memcmp(env->done->request_id.data, f->req_id, CODEC_REQUEST_ID_LEN) == 0 && !f->done) {
            f->done = 1;
            f->finish = env->done->finish;
            f->completion_tokens = env->done->usage ? env->done->usage->completion_tokens : 0;
        }
        break;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        if (env->error->request_id.len == CODEC_REQUEST_ID_LEN &&
            memcmp(env->error->request_id.data, f->req_id, CODEC_REQUEST_ID_LEN) == 0) {
            f->done = 2;
            f->error_code = env->error->code;
        }
        break;
    default:
        break;
    }
    codec_free(&env);
}

static int open_router(fixture *f)
{
    tsock_params p = {.type = ZMQ_ROUTER,
                      .endpoint = f->endpoint,
                      .bind = 1,
                      .keys = &f->server,
                      .zap_domain = "agents",
                      .on_recv = on_msg,
                      .user = f};
    /* The old socket's port may take a moment to be released. */
    for (int i = 0; i < 100 && !f->router; i++) {
        ef_errmsg em;
        f->router = tsock_new(f->t, &p, &em);
        if (!f->router) {
            uv_run(&f->loop, UV_RUN_NOWAIT);
            ts_sleep_ms(20);
        }
    }
    return f->router ? 0 : -1;
}

/* Run the loop (and the peer's heartbeats) until *flag is true or timeout. */
static int pump_until(fixture *f, const int *flag, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (f->drop_on_chunk && !f->dropped && f->chunks >= f->drop_on_chunk) {
            tsock_destroy(&f->router); /* the coordinator "restarts" mid-stream */
            f->dropped = 1;
            f->peer_len = 0;
            f->known = 0;
            /* Down longer than the agent's liveness window (3 x 200 ms): it must notice. */
            for (int i = 0; i < 100; i++) {
                uv_run(&f->loop, UV_RUN_NOWAIT);
                ts_sleep_ms(10);
            }
            if (open_router(f) != 0)
                return 0;
        }
        uint64_t now = clock_mono_ms();
        if (f->known && now - f->last_hb_sent >= HB_MS) {
            Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
            envelope env = EDGEFLEET__ENVELOPE__INIT;
            env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
            env.heartbeat = &hb;
            peer_send(f, &env);
            f->last_hb_sent = now;
        }
        if (*flag)
            return 1;
        ts_sleep_ms(5);
    }
    return *flag;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[256];
    size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
    int ok = in && out && fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    ef_errmsg em;
    char from[700], to[700], bin[1024], skey[700], akey[700];
    if (!f || ts_model_path("stories260K.gguf", f->model, sizeof f->model) != 0 ||
        ts_tempdir(f->dir, sizeof f->dir) != 0 ||
        ts_bin_path("agent/edgefleet-agent", bin, sizeof bin) != 0)
        return -1;
    snprintf(f->allow, sizeof f->allow, "%s/allow", f->dir);
    snprintf(f->log, sizeof f->log, "%s/agent.log", f->dir);
    mkdir(f->allow, 0700);
    if (keys_generate(f->dir, "coord", &f->server, &em) != 0 ||
        keys_generate(f->dir, "agent-1", &f->agent, &em) != 0)
        return -1;
    snprintf(from, sizeof from, "%s/agent-1.pub", f->dir);
    snprintf(to, sizeof to, "%s/agent-1.pub", f->allow);
    if (copy_file(from, to) != 0)
        return -1;
    snprintf(f->endpoint, sizeof f->endpoint, "tcp://127.0.0.1:%d", ts_free_port());
    uv_loop_init(&f->loop);
    f->t = transport_new(&f->loop);
    if (!f->t || transport_allow_dir(f->t, "agents", f->allow) != 0 || open_router(f) != 0)
        return -1;
    snprintf(skey, sizeof skey, "%s/coord.pub", f->dir);
    snprintf(akey, sizeof akey, "%s/agent-1.key", f->dir);
    char *argv[] = {
        bin,      "--coordinator", f->endpoint, "--server-key",   skey,      "--key", akey,
        "--name", "agent-1",       "--model",   f->model,         "--slots", "2",     "--ctx",
        "1024",   "--threads",     "1",         "--heartbeat-ms", "200",     NULL};
    f->pid = ts_spawn(argv, f->log);
    return f->pid > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f)
        return 0;
    ts_kill_wait(f->pid, SIGTERM, 5000);
    tsock_destroy(&f->router);
    transport_destroy(&f->t);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    if (getenv("EF_KEEP_LOGS") == NULL)
        ts_rmtree(f->dir);
    free(f);
    return 0;
}

/* Send a request for the followed id; max_tokens and sampling as given. */
static void send_request(fixture *f, int idn, const char *prompt, uint32_t max_tokens,
                         float temperature, float top_p)
{
    memset(f->req_id, 0xB0, sizeof f->req_id);
    f->req_id[0] = (uint8_t)idn;
    f->n_tokens = 0;
    f->chunks = f->dups = f->done = f->error_code = 0;
    memset(f->have, 0, sizeof f->have);
    f->text_len = 0;
    f->text[0] = '\0';
    Edgefleet__SamplingParams sp = EDGEFLEET__SAMPLING_PARAMS__INIT;
    sp.temperature = temperature;
    sp.top_p = top_p;
    sp.seed = 7;
    Edgefleet__Request req = EDGEFLEET__REQUEST__INIT;
    req.request_id.data = f->req_id;
    req.request_id.len = CODEC_REQUEST_ID_LEN;
    req.model = "stories260K";
    req.prompt = (char *)prompt;
    req.max_tokens = max_tokens;
    req.sampling = &sp;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = &req;
    peer_send(f, &env);
}

static void test_agent_registers_with_its_model_and_heartbeats_slots(void **state)
{
    fixture *f = *state;
    assert_true(pump_until(f, &f->registers, WAIT_MS));
    assert_string_equal(f->agent_name, "agent-1");
    assert_string_equal(f->model_name, "stories260K");
    assert_string_equal(f->arch, "llama");
    assert_string_equal(f->quant, "F32");
    assert_int_equal(f->n_slots, 2);
    assert_int_equal(f->n_ctx, 1024);
    assert_int_equal(f->size_bytes, 1185376);
    assert_false(f->simulated);
    f->heartbeats = 0;
    assert_true(pump_until(f, &f->heartbeats, WAIT_MS));
    assert_int_equal(f->hb_total, 2);
}

static void test_request_streams_chunks_then_done_and_bad_request_gets_error(void **state)
{
    fixture *f = *state;
    assert_true(pump_until(f, &f->registers, WAIT_MS));
    send_request(f, 1, "Once upon a time", 16, 0.0f, 0.0f);
    assert_true(pump_until(f, &f->done, WAIT_MS));
    assert_int_equal(f->done, 1);
    assert_int_equal(f->finish, EDGEFLEET__FINISH_REASON__FINISH_LENGTH);
    assert_int_equal(f->completion_tokens, 16);
    assert_int_equal(f->n_tokens, 16);
    assert_true(all_tokens(f, 16));
    assert_true(f->text_len > 0);

    send_request(f, 2, "Once upon a time", 16, 0.0f, 2.0f); /* top_p outside [0, 1] */
    assert_true(pump_until(f, &f->done, WAIT_MS));
    assert_int_equal(f->done, 2);
    assert_int_equal(f->error_code, EF_EINVAL);

    send_request(f, 3, "The dog", 8, 0.0f, 0.0f);
    assert_true(pump_until(f, &f->done, WAIT_MS));
    assert_int_equal(f->done, 1);
    assert_int_equal(f->completion_tokens, 8);
}

static int stream_complete(fixture *f)
{
    return f->done == 1 && f->registers >= 2 && all_tokens(f, f->completion_tokens);
}

static void test_agent_reconnects_and_delivers_the_rest_of_the_stream(void **state)
{
    fixture *f = *state;
    assert_true(pump_until(f, &f->registers, WAIT_MS));
    f->drop_on_chunk = 1;
    send_request(f, 4, "Once upon a time", 900, 0.8f, 0.0f);
    int complete = 0;
    for (int waited = 0; waited < WAIT_MS && !complete; waited += 10) {
        pump_until(f, &complete, 10);
        complete = stream_complete(f);
    }
    assert_true(f->dropped);
    /* It registered again with the new peer; on a loaded box a reconnect can overlap a
     * liveness window and register once more, which changes nothing below. */
    assert_true(f->registers >= 2);
    assert_int_equal(f->done, 1);
    assert_true(f->completion_tokens > 0);
    /* Sequence numbers continue without gaps: every position up to Done's count arrived. */
    assert_true(all_tokens(f, f->completion_tokens));
    assert_int_equal(f->n_tokens, f->completion_tokens);
    assert_true(ts_file_wait_for(f->log, "reconnecting", 100));
}

static void test_command_line_errors_exit_2_and_help_exits_0(void **state)
{
    fixture *f = *state;
    char bin[1024], log[700];
    assert_int_equal(ts_bin_path("agent/edgefleet-agent", bin, sizeof bin), 0);
    snprintf(log, sizeof log, "%s/cli.log", f->dir);
    char skey[700], akey[700];
    snprintf(skey, sizeof skey, "%s/coord.pub", f->dir);
    snprintf(akey, sizeof akey, "%s/agent-1.key", f->dir);
    /* Link options and keys are checked before any model is loaded: give good ones. */
    char *bad[] = {
        bin,       "--coordinator",           f->endpoint, "--server-key", skey, "--key", akey,
        "--model", "/nonexistent/model.gguf", NULL};
    int st = ts_wait_exit(ts_spawn(bad, log), 10000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    assert_true(ts_file_wait_for(log, "/nonexistent/model.gguf", 100));
    char *help[] = {bin, "--help", NULL};
    st = ts_wait_exit(ts_spawn(help, log), 10000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_registers_with_its_model_and_heartbeats_slots,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_request_streams_chunks_then_done_and_bad_request_gets_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_reconnects_and_delivers_the_rest_of_the_stream,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_line_errors_exit_2_and_help_exits_0, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
