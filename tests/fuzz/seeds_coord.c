/* Writes the seed inputs of fuzz_coordinator (format: fuzz_coord_format.h) into a directory:
 * whole conversations the coordinator must handle, so the fuzzer starts from deep states
 * (agents registered, requests streaming, backlogs, resumes) rather than from bytes that never
 * get past the decoder. Regenerate after a proto/ or format change (from the repo root):
 *   bench/fuzz.sh --smoke   (or any -DEF_FUZZ=ON build), then
 *   build-fuzz/tests/fuzz/seeds_coord tests/fuzz/corpus/fuzz_coordinator
 * and commit the files. The crash_* files there are not written here: they are inputs that
 * found bugs (see the commits that fixed them) and stay as regression seeds. */
#include "codec.h"
#include "edgefleet.h"
#include "fuzz_coord_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t buf[16384];
    size_t len;
} seq;

static void put(seq *s, uint8_t b)
{
    if (s->len < sizeof s->buf)
        s->buf[s->len++] = b;
}

static void msg(seq *s, int peer, envelope *env)
{
    uint8_t *out = NULL;
    size_t len = 0;
    if (codec_encode(env, 0, &out, &len) != 0 || len > 0xffff) {
        fprintf(stderr, "seeds_coord: encoding failed\n");
        exit(1);
    }
    put(s, FC_OP(FC_MSG, peer));
    put(s, (uint8_t)(len & 0xff));
    put(s, (uint8_t)(len >> 8));
    for (size_t i = 0; i < len; i++)
        put(s, out[i]);
    free(out);
}

static void act(seq *s, int action, int peer) { put(s, FC_OP(action, peer)); }
static void clock_ms(seq *s, unsigned tens) { put(s, FC_OP(FC_CLOCK, 0)), put(s, (uint8_t)tens); }

static uint8_t ids[8][16];
static ProtobufCBinaryData id_of(int k) { return (ProtobufCBinaryData){16, ids[k]}; }

static void reg(seq *s, int agent, uint32_t slots)
{
    static uint8_t boot[3][16];
    boot[agent][0] = (uint8_t)(agent + 1);
    Edgefleet__ModelInfo m = EDGEFLEET__MODEL_INFO__INIT;
    m.name = "stories";
    m.n_slots = slots;
    Edgefleet__ModelInfo *mp = &m;
    Edgefleet__Register r = EDGEFLEET__REGISTER__INIT;
    r.hostname = "board";
    r.models = &mp;
    r.n_models = 1;
    r.boot_id = (ProtobufCBinaryData){16, boot[agent]};
    r.heartbeat_interval_ms = 1000;
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER;
    e.agent_register = &r;
    msg(s, agent, &e);
}

static void heartbeat(seq *s, int agent, uint32_t busy, int draining)
{
    Edgefleet__ModelLoad l = EDGEFLEET__MODEL_LOAD__INIT;
    l.model = "stories";
    l.busy_slots = busy;
    l.total_slots = 2;
    Edgefleet__ModelLoad *lp = &l;
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.models = &lp;
    hb.n_models = 1;
    hb.gen_tps = hb.slot_gen_tps = 50;
    hb.draining = draining;
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &hb;
    msg(s, agent, &e);
}

static void request(seq *s, int client, int k, uint32_t max_tokens)
{
    Edgefleet__Request r = EDGEFLEET__REQUEST__INIT;
    r.request_id = id_of(k);
    r.model = "stories";
    r.prompt = "Once upon a time";
    r.max_tokens = max_tokens;
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    e.request = &r;
    msg(s, client, &e);
}

static void batch(seq *s, int client, int first, int n, size_t batch_id_len)
{
    static uint8_t bid[32] = {0xba};
    Edgefleet__Request items[4], *ptrs[4];
    for (int i = 0; i < n; i++) {
        edgefleet__request__init(&items[i]);
        items[i].request_id = id_of(first + i);
        items[i].model = "stories";
        items[i].prompt = "Tell a story";
        items[i].max_tokens = 8;
        ptrs[i] = &items[i];
    }
    Edgefleet__BatchRequest b = EDGEFLEET__BATCH_REQUEST__INIT;
    b.batch_id = (ProtobufCBinaryData){batch_id_len, bid};
    b.items = ptrs;
    b.n_items = (size_t)n;
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_BATCH;
    e.batch = &b;
    msg(s, client, &e);
}

static void chunk(seq *s, int agent, int k, uint32_t seqno, int n_tokens, const char *text,
                  uint32_t attempt)
{
    int32_t toks[8];
    for (int i = 0; i < n_tokens; i++)
        toks[i] = 100 + (int32_t)seqno + i;
    Edgefleet__TokenChunk tc = EDGEFLEET__TOKEN_CHUNK__INIT;
    tc.request_id = id_of(k);
    tc.seq = seqno;
    tc.text = (char *)text;
    tc.token_ids = toks;
    tc.n_token_ids = (size_t)n_tokens;
    tc.attempt = attempt;
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK;
    e.token_chunk = &tc;
    msg(s, agent, &e);
}

static void done(seq *s, int agent, int k, uint32_t attempt, Edgefleet__FinishReason why)
{
    Edgefleet__Done d = EDGEFLEET__DONE__INIT;
    d.request_id = id_of(k);
    d.finish = why;
    d.attempt = attempt;
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_DONE;
    e.done = &d;
    msg(s, agent, &e);
}

static void error(seq *s, int agent, int k, int code)
{
    Edgefleet__Error er = EDGEFLEET__ERROR__INIT;
    er.request_id = id_of(k);
    er.code = code;
    er.message = "agent error";
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    e.error = &er;
    msg(s, agent, &e);
}

static void cancel(seq *s, int client, int k)
{
    Edgefleet__Cancel cn = EDGEFLEET__CANCEL__INIT;
    cn.request_id = id_of(k);
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_CANCEL;
    e.cancel = &cn;
    msg(s, client, &e);
}

static void command(seq *s, int peer, Edgefleet__CommandKind kind, const char *agent)
{
    static uint8_t cid[16] = {0xc0};
    Edgefleet__OperatorCommand oc = EDGEFLEET__OPERATOR_COMMAND__INIT;
    oc.command_id = (ProtobufCBinaryData){16, cid};
    oc.kind = kind;
    oc.agent_name = (char *)agent;
    envelope e = EDGEFLEET__ENVELOPE__INIT;
    e.body_case = EDGEFLEET__ENVELOPE__BODY_COMMAND;
    e.command = &oc;
    msg(s, peer, &e);
}

static int write_seed(const char *dir, const char *name, const seq *s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0) {
        fprintf(stderr, "seeds_coord: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

#define SEED(name, cfg, ...)                \
    do {                                    \
        seq s_ = {.len = 0};                \
        seq *s = &s_;                       \
        put(s, (uint8_t)(cfg));             \
        __VA_ARGS__;                        \
        failed |= write_seed(dir, name, s); \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seeds_coord DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    for (int k = 0; k < 8; k++)
        ids[k][0] = (uint8_t)(0x10 + k), ids[k][15] = 0x42;
    int failed = 0;
    const Edgefleet__FinishReason STOP = EDGEFLEET__FINISH_REASON__FINISH_STOP;
    SEED("stream", 0x3f, {
        reg(s, FC_A, 2);
        heartbeat(s, FC_A, 0, 0);
        request(s, FC_C1, 0, 16);
        chunk(s, FC_A, 0, 0, 2, "Once", 0);
        chunk(s, FC_A, 0, 2, 3, " upon", 0);
        done(s, FC_A, 0, 0, STOP);
    });
    SEED("text_only_chunk", 0x3f, {
        reg(s, FC_A, 2);
        request(s, FC_C1, 0, 16);
        act(s, FC_BUSY, FC_C1);
        chunk(s, FC_A, 0, 0, 0, "text, no tokens", 0);
        chunk(s, FC_A, 0, 0, 1, "x", 0);
        act(s, FC_BUSY, FC_C1);
        clock_ms(s, 10);
        done(s, FC_A, 0, 0, STOP);
    });
    SEED("backlog_then_cancel", 0x3f, {
        reg(s, FC_A, 2);
        request(s, FC_C1, 0, 16);
        act(s, FC_BUSY, FC_C1);
        chunk(s, FC_A, 0, 0, 2, "ab", 0);
        cancel(s, FC_C1, 0);
        clock_ms(s, 10);
        done(s, FC_A, 0, 0, EDGEFLEET__FINISH_REASON__FINISH_CANCELLED);
        clock_ms(s, 128 + 12);
    });
    SEED("backlog_stall", 0x3f, {
        reg(s, FC_A, 1);
        request(s, FC_C1, 0, 16);
        request(s, FC_C2, 1, 16);
        act(s, FC_BUSY, FC_C1);
        chunk(s, FC_A, 0, 0, 2, "ab", 0);
        clock_ms(s, 128 + 11);
        chunk(s, FC_A, 0, 2, 2, "cd", 0);
        clock_ms(s, 128 + 2);
        done(s, FC_A, 0, 0, STOP);
        clock_ms(s, 128 + 11);
    });
    SEED("client_gone_retry", 0x3f, {
        reg(s, FC_A, 2);
        request(s, FC_C1, 0, 16);
        chunk(s, FC_A, 0, 0, 2, "ab", 0);
        act(s, FC_CLOSE, FC_C1);
        clock_ms(s, 5);
        chunk(s, FC_A, 0, 2, 2, "cd", 0);
        request(s, FC_C1, 0, 16);
        done(s, FC_A, 0, 0, STOP);
    });
    SEED("batch", 0x3f, {
        reg(s, FC_A, 2);
        reg(s, FC_B, 2);
        batch(s, FC_C1, 2, 4, 16);
        chunk(s, FC_A, 2, 0, 1, "a", 0);
        chunk(s, FC_B, 3, 0, 1, "b", 0);
        done(s, FC_A, 2, 0, STOP);
        done(s, FC_B, 3, 0, STOP);
        clock_ms(s, 50);
    });
    SEED("batch_bad_id", 0x3f, {
        reg(s, FC_A, 2);
        batch(s, FC_C1, 2, 2, 5);
        batch(s, FC_C2, 4, 2, 0);
    });
    SEED("operator", 0x3f, {
        reg(s, FC_A, 2);
        reg(s, FC_B, 2);
        command(s, FC_OP, EDGEFLEET__COMMAND_KIND__COMMAND_STATUS, NULL);
        command(s, FC_OP, EDGEFLEET__COMMAND_KIND__COMMAND_DRAIN, "a");
        request(s, FC_C1, 0, 8);
        command(s, FC_C1, EDGEFLEET__COMMAND_KIND__COMMAND_STATUS, NULL);
        command(s, FC_OP, EDGEFLEET__COMMAND_KIND__COMMAND_UNDRAIN, "a");
        command(s, FC_OP, EDGEFLEET__COMMAND_KIND__COMMAND_STATUS, NULL);
    });
    SEED("agent_dies_resume", 0x3f, {
        reg(s, FC_A, 2);
        reg(s, FC_B, 2);
        request(s, FC_C1, 0, 16);
        chunk(s, FC_A, 0, 0, 2, "ab", 0);
        chunk(s, FC_B, 0, 0, 2, "ab", 0);
        act(s, FC_CLOSE, FC_A);
        clock_ms(s, 5);
        chunk(s, FC_B, 0, 2, 2, "cd", 1);
        done(s, FC_B, 0, 1, STOP);
    });
    SEED("liveness", 0x3f, {
        reg(s, FC_A, 2);
        request(s, FC_C1, 0, 16);
        clock_ms(s, 128 + 5);
        request(s, FC_C1, 1, 16);
        clock_ms(s, 128 + 40);
    });
    SEED("rebind_other_key", 0x3f, {
        reg(s, FC_A, 2);
        request(s, FC_C1, 0, 16);
        act(s, FC_CLOSE, FC_A);
        put(s, FC_OP(FC_REBIND, FC_B)), put(s, 0); /* b takes a's routing id */
        reg(s, FC_B, 2);
        heartbeat(s, FC_B, 0, 0);
        chunk(s, FC_B, 0, 0, 1, "x", 0);
        request(s, FC_C1, 1, 16);
        clock_ms(s, 5);
    });
    SEED("stray_key", 0x3f, {
        reg(s, FC_A, 2);
        reg(s, FC_STRAY, 2);
        heartbeat(s, FC_STRAY, 0, 0);
        put(s, FC_OP(FC_REBIND, FC_STRAY)), put(s, 0);
        heartbeat(s, FC_STRAY, 0, 0);
    });
    SEED("revoke", 0x3f, {
        reg(s, FC_A, 2);
        request(s, FC_C1, 0, 16);
        request(s, FC_C2, 1, 16);
        act(s, FC_REVOKE, FC_C1);
        act(s, FC_REVOKE, FC_A);
        clock_ms(s, 5);
        request(s, FC_C2, 2, 16);
    });
    SEED("errors_retry", 0x3f, {
        reg(s, FC_A, 2);
        request(s, FC_C1, 0, 16);
        error(s, FC_A, 0, EF_EBUSY);
        heartbeat(s, FC_A, 0, 0);
        clock_ms(s, 100);
        error(s, FC_A, 0, EF_EINTERNAL);
        request(s, FC_C1, 0, 16);
        error(s, FC_A, 0, EF_EDRAINING);
    });
    SEED("queue_deadline", 0x00, {
        request(s, FC_C1, 0, 16);
        request(s, FC_C1, 1, 16);
        request(s, FC_C2, 2, 16);
        clock_ms(s, 128 + 15);
        reg(s, FC_A, 1);
        clock_ms(s, 128 + 40);
    });
    SEED("leaving", 0x3f, {
        reg(s, FC_A, 2);
        reg(s, FC_C, 2);
        request(s, FC_C1, 0, 16);
        {
            Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
            hb.leaving = 1;
            envelope e = EDGEFLEET__ENVELOPE__INIT;
            e.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
            e.heartbeat = &hb;
            msg(s, FC_A, &e);
        }
        reg(s, FC_A, 2);
        done(s, FC_C, 0, 1, STOP);
    });
    return failed;
}
