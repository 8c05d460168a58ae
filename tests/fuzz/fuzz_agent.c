/* libFuzzer target for the agent's handling of what the coordinator sends: Registered,
 * Heartbeat, Request (every field: chat, sampling, stop strings, session, deadline,
 * resume_tokens, attempt, received_tokens), Cancel, Drain, Error and anything else, fed through
 * codec_decode into uplink_handle, with the engine stepped between messages so requests start,
 * stream, hit their limits and end. The engine runs its simulated backend without its thread
 * (engine_params.manual), the clock is fake (fake_clock.c) and the transport is a stub that
 * checks every frame the agent sends (agent_link_stub.c), so a run is a function of its input.
 * Input format: fuzz_agent.h. Seeds: seeds_edge.c. Built only with clang and -DEF_FUZZ=ON:
 *   ./fuzz_agent -runs=1000000 corpus/fuzz_agent/
 *
 * The real llama backend is not loaded here: one engine per input would load the model per
 * input, and one engine for all inputs would make each run depend on the ones before. Token-id
 * bounds do not depend on the backend: engine_submit checks resume tokens against the model's
 * n_vocab (the simulator's is 4096), which this target exercises, and test_engine checks the
 * same bound against stories260K's own vocabulary (512). */
#include "fuzz_agent.h"

#include "agent_link_stub.h"
#include "engine.h"
#include "fake_clock.h"
#include "fuzz_check.h"
#include "log.h"
#include "uplink_internal.h"

#include <string.h>
#include <uv.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bounds per input, so an input costs at most a few ms. */
#define MAX_ACTIONS 128
#define MAX_TURNS   128

static uv_loop_t g_loop;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_OFF);
    CHECK(uv_loop_init(&g_loop) == 0);
    return 0;
}

typedef struct {
    const uint8_t *p, *end;
} reader;

static int read_u8(reader *r, uint8_t *out)
{
    if (r->p >= r->end)
        return 0;
    *out = *r->p++;
    return 1;
}

static engine *make_engine(void)
{
    /* 1000 tokens/s: one token per 1 ms turn; prompts "evaluate" in no time, so the simulator
     * never sleeps (its sleep is real time, not the fake clock's). A small context makes
     * FINISH_CONTEXT and EF_ECONTEXT reachable. */
    backend_params models[2] = {
        {.kind = BACKEND_SIMULATED,
         .name = FA_MODEL_A,
         .n_ctx = 256,
         .n_slots = 4,
         .sim_tokens_per_s = 1000,
         .sim_prompt_tps = 1e12},
        {.kind = BACKEND_SIMULATED,
         .name = FA_MODEL_B,
         .n_ctx = 64,
         .n_slots = 1,
         .sim_tokens_per_s = 1000,
         .sim_prompt_tps = 1e12},
    };
    engine_params ep = {.models = models, .n_models = 2, .manual = 1};
    int err = 0;
    ef_errmsg em = {{0}};
    engine *e = engine_new(&ep, &err, &em);
    CHECK(e != NULL);
    return e;
}

static uplink *make_uplink(engine *e)
{
    keys_pair keys;
    memset(&keys, 0, sizeof keys);
    uplink_params p = {.loop = &g_loop,
                       .transport = NULL, /* the stub needs none */
                       .engine = e,
                       .endpoint = "tcp://coordinator.fuzz:7701",
                       .name = "fuzz-agent",
                       .server_public = "fuzz-server-key",
                       .keys = &keys,
                       .heartbeat_ms = 100,
                       .liveness = 3};
    ef_errmsg em = {{0}};
    uplink *u = uplink_new(&p, &em);
    CHECK(u != NULL);
    CHECK(agent_stub_open_sockets() == 1 && agent_stub_registers() == 1);
    return u;
}

static void on_stopped(void *user) { *(int *)user = 1; }

/* n engine turns, each 1 ms later, the replies they made handed to the uplink. */
static void run_turns(engine *e, uplink *u, unsigned n, unsigned *turns)
{
    for (unsigned i = 0; i < n && *turns < MAX_TURNS; i++, (*turns)++) {
        fake_clock_advance_ms(1);
        int busy = engine_pump(e);
        uplink_deliver(u);
        if (!busy)
            break;
    }
}

static void handle_frame(uplink *u, reader *r)
{
    uint8_t lo = 0, hi = 0;
    read_u8(r, &lo);
    read_u8(r, &hi);
    size_t len = (size_t)lo | (size_t)hi << 8;
    if (len > (size_t)(r->end - r->p))
        len = (size_t)(r->end - r->p);
    envelope *env = NULL;
    /* What uplink_on_recv does with a frame: decode (limit: the link's), then handle. */
    if (u && codec_decode(r->p, len, CODEC_MAX_FRAME_DEFAULT, &env) == 0) {
        const Edgefleet__Request *req = env->request;
        if (env->body_case == EDGEFLEET__ENVELOPE__BODY_REQUEST &&
            req->request_id.len == CODEC_REQUEST_ID_LEN)
            agent_stub_request(req->request_id.data, req->attempt, req->n_resume_tokens);
        uplink_handle(u, env);
        codec_free(&env);
    }
    r->p += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_clock_reset();
    agent_stub_reset();
    engine *e = make_engine();
    uplink *u = make_uplink(e);
    reader r = {data, data + size};
    int stopped = 0, stopping = 0;
    unsigned turns = 0;
    uint8_t op = 0, n = 0;
    for (int a = 0; a < MAX_ACTIONS && !stopped && read_u8(&r, &op); a++) {
        switch (op % FA_N_OPS) {
        case FA_OP_FRAME:
            /* Frames arrive only through a socket: while the link is down (the tick dropped it
             * and the retry timer, which does not run here, has not dialled) they are lost. */
            if (agent_stub_open_sockets() == 0) {
                reader skip = r;
                handle_frame(NULL, &skip);
                r = skip;
                break;
            }
            handle_frame(u, &r);
            uplink_deliver(u); /* refusals and cancels are answered at once */
            break;
        case FA_OP_RUN:
            read_u8(&r, &n);
            run_turns(e, u, n % 32u + 1u, &turns);
            break;
        case FA_OP_TICK:
            read_u8(&r, &n);
            fake_clock_advance_ms((uint64_t)n * 20u);
            uplink_tick(u);
            uplink_deliver(u);
            break;
        case FA_OP_RECONNECT:
            /* What the tick does when the coordinator went silent, then the retry timer's dial
             * without waiting for the backoff. */
            if (agent_stub_open_sockets() == 1)
                uplink_reconnect(u, "fuzz: link dropped");
            CHECK(agent_stub_open_sockets() == 0);
            uv_timer_stop(&u->retry);
            uplink_connect(u);
            CHECK(agent_stub_open_sockets() == 1);
            break;
        default: /* FA_OP_STOP */
            stopping = 1;
            uplink_stop(u, 50, on_stopped, &stopped);
            break;
        }
        CHECK(agent_stub_open_sockets() <= 1);
    }
    /* A stop in progress ends: every request finishes or the drain timeout passes. */
    for (int i = 0; stopping && !stopped && i < 200; i++) {
        run_turns(e, u, 1, &turns);
        fake_clock_advance_ms(1);
        uplink_tick(u);
    }
    CHECK(!stopping || stopped);
    engine_stats st;
    engine_get_stats(e, &st);
    CHECK(st.n_models == 2 && st.models[0].busy_slots <= 4 && st.models[1].busy_slots <= 1);
    uplink_destroy(&u);
    uv_run(&g_loop, UV_RUN_NOWAIT); /* the timers' close callbacks free the uplink */
    CHECK(agent_stub_open_sockets() == 0);
    engine_destroy(&e);
    return 0;
}

/* backend_llama.c (which defines it) is not linked: only the simulator serves here. */
const backend_ops *backend_ops_for(backend_kind kind)
{
    CHECK(kind == BACKEND_SIMULATED);
    return &backend_sim_ops;
}
