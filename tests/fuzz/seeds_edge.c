/* Writes the seeds of fuzz_agent and fuzz_client_reply: valid action sequences (fuzz_agent.h,
 * fuzz_client_reply.h) carrying encoded envelopes, so the seeds follow the schema. Regenerate
 * after a proto/ or input-format change, from the repository root:
 *   cmake --build build-fuzz --target seeds_edge && build-fuzz/tests/fuzz/seeds_edge
 * tests/fuzz/corpus (any build directory works: it is a normal program). */
#include "codec.h"
#include "errors.h"
#include "fuzz_agent.h"
#include "fuzz_client_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t buf[8192];
    size_t len;
} seq;

static void put(seq *s, const void *p, size_t n)
{
    if (s->len + n > sizeof s->buf)
        abort();
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}
static void op(seq *s, uint8_t o, int operand)
{
    put(s, &o, 1);
    if (operand >= 0) {
        uint8_t b = (uint8_t)operand;
        put(s, &b, 1);
    }
}
/* An envelope as u16 length + bytes (after its op byte and, for the client, the fixup). */
static void env_out(seq *s, envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_encode(env, 0, &buf, &len) != 0 || len > 0xffff)
        abort();
    uint8_t hdr[2] = {(uint8_t)len, (uint8_t)(len >> 8)};
    put(s, hdr, 2);
    put(s, buf, len);
    free(buf);
}

static const char *g_dir;
static void save(const char *target, const char *name, const seq *s)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", g_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static uint8_t g_id[16];
static ProtobufCBinaryData id_of(int n)
{
    memset(g_id, 0, sizeof g_id);
    g_id[15] = (uint8_t)n;
    g_id[0] = 0xef;
    return (ProtobufCBinaryData){16, g_id};
}

/* ---- fuzz_agent ---- */

static void a_frame(seq *s, envelope *env)
{
    op(s, FA_OP_FRAME, -1);
    env_out(s, env);
}

static void a_registered(seq *s, int accepted)
{
    Edgefleet__Registered r = EDGEFLEET__REGISTERED__INIT;
    r.accepted = accepted;
    r.agent_name = "fuzz-agent";
    r.reason = accepted ? "" : "no such key";
    r.heartbeat_interval_ms = 100;
    r.liveness = 3;
    r.coordinator_name = "coord";
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED;
    env.agent_registered = &r;
    a_frame(s, &env);
}

static void a_request(seq *s, Edgefleet__Request *r)
{
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = r;
    a_frame(s, &env);
}

static void req_init(Edgefleet__Request *r, int n, const char *model, uint32_t max_tokens)
{
    edgefleet__request__init(r);
    r->request_id = id_of(n);
    r->model = (char *)model;
    r->prompt = "once upon a time";
    r->max_tokens = max_tokens;
}

static void a_cancel(seq *s, int n)
{
    Edgefleet__Cancel c = EDGEFLEET__CANCEL__INIT;
    c.request_id = id_of(n);
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_CANCEL;
    env.cancel = &c;
    a_frame(s, &env);
}

static void a_drain(seq *s, int enable)
{
    Edgefleet__Drain d = EDGEFLEET__DRAIN__INIT;
    d.enable = enable;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DRAIN;
    env.drain = &d;
    a_frame(s, &env);
}

static void a_heartbeat(seq *s)
{
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.sent_unix_ms = 1800000000000ull;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    a_frame(s, &env);
}

static void a_error_no_id(seq *s)
{
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    e.code = EF_EPROTO;
    e.message = "unknown agent";
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    env.error = &e;
    a_frame(s, &env);
}

static void agent_seeds(void)
{
    seq s;
    Edgefleet__Request r;

    s.len = 0; /* a plain request streams to its max_tokens */
    a_registered(&s, 1);
    req_init(&r, 1, FA_MODEL_A, 8);
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 20);
    a_heartbeat(&s);
    op(&s, FA_OP_TICK, 3);
    save("fuzz_agent", "request_streams", &s);

    s.len = 0; /* chat, sampling, stop strings, session */
    a_registered(&s, 1);
    req_init(&r, 2, FA_MODEL_A, 30);
    r.prompt = "";
    Edgefleet__ChatMessage m1 = EDGEFLEET__CHAT_MESSAGE__INIT, m2 = EDGEFLEET__CHAT_MESSAGE__INIT;
    m1.role = "system", m1.content = "be brief";
    m2.role = "user", m2.content = "tell a story";
    Edgefleet__ChatMessage *msgs[2] = {&m1, &m2};
    r.messages = msgs, r.n_messages = 2;
    Edgefleet__SamplingParams sp = EDGEFLEET__SAMPLING_PARAMS__INIT;
    sp.temperature = 0.7f, sp.top_k = 40, sp.top_p = 0.9f, sp.min_p = 0.05f, sp.seed = 42;
    sp.repeat_penalty = 1.1f;
    r.sampling = &sp;
    char *stop[2] = {" the", " edge"};
    r.stop = stop, r.n_stop = 2;
    r.session_id = "chat-1";
    r.log_prompt = 1;
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 31);
    save("fuzz_agent", "chat_stop_session", &s);

    s.len = 0; /* a resumed attempt (tokens of an earlier agent) */
    a_registered(&s, 1);
    req_init(&r, 3, FA_MODEL_A, 12);
    int32_t resume[4] = {1, 2, 3, 4095};
    r.resume_tokens = resume, r.n_resume_tokens = 4;
    r.received_tokens = resume, r.n_received_tokens = 2;
    r.attempt = 1;
    r.batch_index = 2;
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 15);
    r.attempt = 2; /* moved back here: the running attempt is stopped */
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 5);
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 15);
    save("fuzz_agent", "resume_attempts", &s);

    s.len = 0; /* cancel mid-stream, and a replay of the same request */
    a_registered(&s, 1);
    req_init(&r, 4, FA_MODEL_A, 100);
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 3);
    a_request(&s, &r);
    a_cancel(&s, 4);
    op(&s, FA_OP_RUN, 5);
    save("fuzz_agent", "cancel", &s);

    s.len = 0; /* drain refuses, undrain takes again; a busy single-slot model */
    a_registered(&s, 1);
    a_drain(&s, 1);
    req_init(&r, 5, FA_MODEL_B, 5);
    a_request(&s, &r);
    a_drain(&s, 0);
    a_request(&s, &r);
    req_init(&r, 6, FA_MODEL_B, 5);
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 10);
    save("fuzz_agent", "drain_busy", &s);

    s.len = 0; /* the coordinator forgot us; then the link drops mid-stream */
    a_registered(&s, 1);
    req_init(&r, 7, FA_MODEL_A, 20);
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 4);
    a_error_no_id(&s);
    op(&s, FA_OP_RUN, 4);
    op(&s, FA_OP_RECONNECT, -1);
    op(&s, FA_OP_RUN, 4);
    a_registered(&s, 1);
    op(&s, FA_OP_RUN, 20);
    save("fuzz_agent", "reregister_reconnect", &s);

    s.len = 0; /* a deadline passes mid-stream; liveness runs out */
    a_registered(&s, 1);
    req_init(&r, 8, FA_MODEL_A, 200);
    r.deadline_unix_ms = 1800000000000ull + 10;
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 20);
    op(&s, FA_OP_TICK, 30);
    op(&s, FA_OP_TICK, 30);
    save("fuzz_agent", "deadline_silence", &s);

    s.len = 0; /* context full, refused requests */
    a_registered(&s, 1);
    req_init(&r, 9, FA_MODEL_B, 1000);
    r.prompt = "a prompt long enough to fill much of a small context of sixty-four tokens, "
               "which is what the second model has";
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 31);
    op(&s, FA_OP_RUN, 31);
    req_init(&r, 10, "no-such-model", 5);
    a_request(&s, &r);
    req_init(&r, 11, FA_MODEL_A, 0);
    a_request(&s, &r);
    save("fuzz_agent", "context_refusals", &s);

    s.len = 0; /* graceful stop with a request running */
    a_registered(&s, 1);
    req_init(&r, 12, FA_MODEL_A, 10);
    a_request(&s, &r);
    op(&s, FA_OP_RUN, 2);
    op(&s, FA_OP_STOP, -1);
    op(&s, FA_OP_RUN, 20);
    save("fuzz_agent", "stop_drains", &s);

    s.len = 0; /* registration refused */
    a_registered(&s, 0);
    op(&s, FA_OP_TICK, 5);
    save("fuzz_agent", "refused", &s);
}

/* ---- fuzz_client_reply ---- */

static void c_frame(seq *s, uint8_t back, envelope *env)
{
    op(s, FC_OP_FRAME, back);
    env_out(s, env);
}

static void c_chunk(seq *s, uint8_t back, uint32_t seqno, const char *text, int n_tokens)
{
    Edgefleet__TokenChunk tc = EDGEFLEET__TOKEN_CHUNK__INIT;
    tc.request_id = id_of(0);
    tc.seq = seqno;
    tc.text = (char *)text;
    int32_t toks[8] = {5, 6, 7, 8, 9, 10, 11, 12};
    tc.token_ids = toks;
    tc.n_token_ids = (size_t)n_tokens;
    tc.agent_name = "agent-1";
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
    env.token_chunk = &tc;
    c_frame(s, back, &env);
}

static void c_done(seq *s, uint8_t back, int finish)
{
    Edgefleet__Done d = EDGEFLEET__DONE__INIT;
    Edgefleet__Usage us = EDGEFLEET__USAGE__INIT;
    Edgefleet__Timings tm = EDGEFLEET__TIMINGS__INIT;
    us.prompt_tokens = 4, us.completion_tokens = 3;
    tm.queue_ms = 1, tm.first_token_ms = 2;
    d.request_id = id_of(0);
    d.finish = (Edgefleet__FinishReason)finish;
    d.usage = &us, d.timings = &tm;
    d.agent_name = "agent-1";
    char *agents[2] = {"agent-0", "agent-1"};
    d.agents = agents, d.n_agents = 2;
    d.resumes = 1;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    env.done = &d;
    c_frame(s, back, &env);
}

static void c_error(seq *s, uint8_t back, int with_id, int code, uint32_t retry_ms)
{
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    if (with_id)
        e.request_id = id_of(0);
    e.code = code;
    e.message = "fuzz error";
    e.retry_after_ms = retry_ms;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    env.error = &e;
    c_frame(s, back, &env);
}

static void c_reply(seq *s, int code, int with_status)
{
    Edgefleet__OperatorReply r = EDGEFLEET__OPERATOR_REPLY__INIT;
    Edgefleet__FleetStatus fs = EDGEFLEET__FLEET_STATUS__INIT;
    Edgefleet__AgentStatus a = EDGEFLEET__AGENT_STATUS__INIT;
    Edgefleet__ModelLoad ml = EDGEFLEET__MODEL_LOAD__INIT;
    Edgefleet__QueueStatus q = EDGEFLEET__QUEUE_STATUS__INIT;
    ml.model = "m", ml.busy_slots = 1, ml.total_slots = 2;
    Edgefleet__ModelLoad *mls[1] = {&ml};
    a.agent_name = "agent-1", a.hostname = "board", a.models = mls, a.n_models = 1;
    Edgefleet__AgentStatus *as[1] = {&a};
    q.model = "m", q.queued = 3, q.capacity = 2;
    Edgefleet__QueueStatus *qs[1] = {&q};
    fs.agents = as, fs.n_agents = 1, fs.queues = qs, fs.n_queues = 1;
    r.command_id = id_of(0);
    r.code = code;
    r.message = code ? "no such agent" : "";
    if (with_status)
        r.status = &fs;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REPLY;
    env.reply = &r;
    c_frame(s, 0, &env);
}

/* FC_MODE_ASYNC: n calls at once; known ids are each call's Request in start order, then the
 * re-sends (newest call first) after a link comes back. */
#define ASYNC_HEADER(n, stop_at, destroy)                                  \
    (FC_HEADER(FC_MODE_OPERATOR, n, 0) | ((stop_at) << 4) | FC_ASYNC_BIT | \
     ((destroy) ? FC_ASYNC_DESTROY : 0))

static void async_seeds(void)
{
    seq s;
    const int stop = EDGEFLEET__FINISH_REASON__FINISH_STOP;
    const uint8_t no_batch = 0, batch2 = 2;

    s.len = 0; /* two calls interleaved, both complete */
    op(&s, ASYNC_HEADER(2, 0, 0), -1);
    put(&s, &no_batch, 1);
    c_chunk(&s, 0, 0, "a", 1);
    c_chunk(&s, 1, 0, "b", 2);
    c_done(&s, 1, stop);
    c_chunk(&s, 0, 1, "c", 1);
    c_done(&s, 0, EDGEFLEET__FINISH_REASON__FINISH_LENGTH);
    save("fuzz_client_reply", "async_two", &s);

    s.len = 0; /* the link breaks and comes back: both re-sent with their tokens (c1, then c0) */
    op(&s, ASYNC_HEADER(2, 0, 0), -1);
    put(&s, &no_batch, 1);
    c_chunk(&s, 1, 0, "Once", 2);
    op(&s, FC_OP_DROP, 0);
    c_chunk(&s, 0, 2, " upon", 1);
    c_done(&s, 0, stop);
    c_done(&s, 1, stop);
    save("fuzz_client_reply", "async_resend", &s);

    s.len = 0; /* the link stays down: the calls wait, then time out */
    op(&s, ASYNC_HEADER(1, 0, 0), -1);
    put(&s, &no_batch, 1);
    op(&s, FC_OP_DROP, 1);
    op(&s, FC_OP_TIMEOUT, -1);
    save("fuzz_client_reply", "async_link_lost", &s);

    s.len = 0; /* one call cancelled mid-stream, then the client destroyed with two pending */
    op(&s, ASYNC_HEADER(3, 0, 1), -1);
    put(&s, &no_batch, 1);
    c_chunk(&s, 0, 0, "x", 1);
    op(&s, FC_OP_CANCEL, 2);
    c_chunk(&s, 1, 0, "y", 1);
    save("fuzz_client_reply", "async_cancel_destroy", &s);

    s.len = 0; /* a token callback stops its call; a busy refusal; an Error with no id */
    op(&s, ASYNC_HEADER(3, 1, 0), -1);
    put(&s, &no_batch, 1);
    c_chunk(&s, 0, 0, "stop here", 1);
    c_error(&s, 1, 1, EF_EBUSY, 100);
    c_error(&s, 0, 0, EF_EVERSION, 0);
    save("fuzz_client_reply", "async_stop_errors", &s);

    s.len = 0; /* the handshake is refused after a break */
    op(&s, ASYNC_HEADER(2, 0, 0), -1);
    put(&s, &no_batch, 1);
    op(&s, FC_OP_DROP, 3);
    save("fuzz_client_reply", "async_refused", &s);

    s.len = 0; /* a batch of two beside a generate: ids g1, then b0, b1, the batch tag */
    op(&s, ASYNC_HEADER(2, 0, 0), -1);
    put(&s, &batch2, 1);
    op(&s, FC_OP_CLOCK, 1); /* the batch goes out on the next tick */
    c_chunk(&s, 1, 0, "a", 1);
    c_error(&s, 2, 1, EF_EBUSY, 60);
    c_done(&s, 1, stop);
    op(&s, FC_OP_CLOCK, 10);
    c_chunk(&s, 1, 0, "x", 1);
    c_done(&s, 1, stop);
    c_done(&s, 0, stop);
    save("fuzz_client_reply", "async_batch", &s);

    s.len = 0; /* a batch across a link break, then cancelled */
    op(&s, ASYNC_HEADER(1, 0, 0), -1);
    put(&s, &batch2, 1);
    op(&s, FC_OP_CLOCK, 1);
    c_chunk(&s, 1, 0, "a", 2);
    op(&s, FC_OP_DROP, 0);
    op(&s, FC_OP_CLOCK, 10);
    c_chunk(&s, 1, 2, "b", 1);
    op(&s, FC_OP_CANCEL, 0);
    save("fuzz_client_reply", "async_batch_drop", &s);

    s.len = 0; /* the client destroyed from inside a token callback, a batch pending */
    const uint8_t batch1_destroy = 1 | 4;
    op(&s, ASYNC_HEADER(2, 1, 0), -1);
    put(&s, &batch1_destroy, 1);
    c_chunk(&s, 0, 0, "bye", 1);
    op(&s, FC_OP_CLOCK, 1);
    save("fuzz_client_reply", "async_destroy_in_callback", &s);
}

static void client_seeds(void)
{
    seq s;
    const int stop = EDGEFLEET__FINISH_REASON__FINISH_STOP;

    s.len = 0;
    op(&s, FC_HEADER(FC_MODE_GENERATE, 1, 0), -1);
    c_chunk(&s, 0, 0, "Once", 2);
    c_chunk(&s, 0, 2, " upon", 1);
    c_done(&s, 0, stop);
    save("fuzz_client_reply", "generate", &s);

    s.len = 0;
    op(&s, FC_HEADER(FC_MODE_CHAT, 1, 2), -1); /* the callback stops at its second call */
    c_chunk(&s, 0, 0, "Hi", 1);
    c_chunk(&s, 0, 1, " there", 1);
    c_chunk(&s, 0, 2, "!", 1);
    c_done(&s, 0, stop);
    save("fuzz_client_reply", "chat_stop", &s);

    s.len = 0; /* the link breaks and comes back: the request is re-sent with its tokens */
    op(&s, FC_HEADER(FC_MODE_GENERATE, 1, 0), -1);
    c_chunk(&s, 0, 0, "Once", 2);
    op(&s, FC_OP_DROP, 0);
    c_chunk(&s, 0, 2, " upon", 1);
    c_done(&s, 0, stop);
    save("fuzz_client_reply", "generate_resend", &s);

    s.len = 0;
    op(&s, FC_HEADER(FC_MODE_GENERATE, 1, 0), -1);
    c_error(&s, 0, 1, EF_EBUSY, 100);
    save("fuzz_client_reply", "generate_busy", &s);

    s.len = 0; /* a gap in the stream, then timeouts */
    op(&s, FC_HEADER(FC_MODE_GENERATE, 1, 0), -1);
    c_chunk(&s, 0, 5, "late", 1);
    op(&s, FC_OP_TIMEOUT, -1);
    save("fuzz_client_reply", "generate_gap", &s);

    s.len = 0; /* nothing but silence: the call ends by its timeout */
    op(&s, FC_HEADER(FC_MODE_GENERATE, 1, 0), -1);
    op(&s, FC_OP_CLOCK, 50);
    c_done(&s, 0x80, stop); /* stale: an id that is not ours */
    save("fuzz_client_reply", "generate_silence", &s);

    s.len = 0; /* two items: known ids are item0, item1, batch */
    op(&s, FC_HEADER(FC_MODE_BATCH, 2, 0), -1);
    c_chunk(&s, 2, 0, "a", 1);
    c_chunk(&s, 1, 0, "b", 1);
    c_done(&s, 2, stop);
    c_done(&s, 1, EDGEFLEET__FINISH_REASON__FINISH_LENGTH);
    save("fuzz_client_reply", "batch", &s);

    s.len = 0; /* item 0 busy: held and re-sent (ids then: ..., item0', batch') */
    op(&s, FC_HEADER(FC_MODE_BATCH, 2, 0), -1);
    c_error(&s, 2, 1, EF_EBUSY, 60);
    c_done(&s, 1, stop);
    op(&s, FC_OP_CLOCK, 10);
    op(&s, FC_OP_TIMEOUT, -1);
    c_chunk(&s, 1, 0, "x", 1);
    c_done(&s, 1, stop);
    save("fuzz_client_reply", "batch_busy_resend", &s);

    s.len = 0; /* the whole BatchRequest refused */
    op(&s, FC_HEADER(FC_MODE_BATCH, 3, 0), -1);
    c_error(&s, 0, 1, EF_ETOOBIG, 0);
    save("fuzz_client_reply", "batch_refused", &s);

    s.len = 0; /* the link breaks mid-batch; an item cancelled; an error with no id */
    op(&s, FC_HEADER(FC_MODE_BATCH, 4, 0), -1);
    c_chunk(&s, 4, 0, "a", 2);
    op(&s, FC_OP_DROP, 0);
    op(&s, FC_OP_TIMEOUT, -1);
    c_done(&s, 3, EDGEFLEET__FINISH_REASON__FINISH_CANCELLED);
    c_error(&s, 0, 0, EF_EPROTO, 0);
    save("fuzz_client_reply", "batch_drop", &s);

    s.len = 0;
    op(&s, FC_HEADER(FC_MODE_OPERATOR, 1, 0), -1); /* status */
    c_reply(&s, 0, 1);
    save("fuzz_client_reply", "status", &s);

    s.len = 0;
    op(&s, FC_HEADER(FC_MODE_OPERATOR, 2, 0), -1); /* drain */
    c_reply(&s, EF_ENOENT, 0);
    save("fuzz_client_reply", "drain_refused", &s);

    s.len = 0;
    op(&s, FC_HEADER(FC_MODE_GENERATE, 1, 0), -1);
    op(&s, FC_OP_CANCEL, -1);
    save("fuzz_client_reply", "cancel", &s);
    async_seeds();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    agent_seeds();
    client_seeds();
    return 0;
}
