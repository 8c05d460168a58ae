/* libFuzzer target for libedgefleet's handling of the coordinator's replies during
 * ef_client_generate, ef_client_chat, ef_client_batch and the operator commands: TokenChunk,
 * Done, Error (about an item, a whole BatchRequest, or no request), OperatorReply, anything
 * else and garbage, with timeouts, link drops and cancels between them. The link is a stub
 * (client_wait_connected/client_send/client_recv/client_recv_queued, the seam of
 * client_internal.h; client.c and client_link.c are not linked) fed from the input, on a fake
 * clock, so waits cost nothing and a call that never gets its Done ends by its timeout.
 * Checked: every frame the library sends encodes and decodes within the limit; the text handed
 * to on_token is exactly an accepted chunk's and chunks are accepted only contiguously (seq);
 * a re-sent request carries exactly the tokens accepted so far; on_item comes once per item;
 * every call ends with 0 or an error code, with results that agree, in bounded steps.
 * FC_MODE_ASYNC runs up to four async generate/chat calls on one client through the same reply
 * core (client_async_call.c), with the loop half (client_async.c) stubbed: frames, link drops and
 * returns, timer ticks, ef_call_cancel and ef_client_destroy come from the input. Checked too:
 * each call gets exactly one on_done, never from inside the function that started or cancelled
 * it, and only a Done the harness saw accepted makes it succeed.
 * Input format: fuzz_client_reply.h. Seeds: seeds_edge.c. Built only with clang -DEF_FUZZ=ON:
 *   ./fuzz_client_reply -runs=1000000 corpus/fuzz_client_reply/ */
#include "fuzz_client_reply.h"

#include "client_async.h"
#include "client_internal.h"
#include "clock.h"
#include "fake_clock.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITEMS  4
#define MAX_KNOWN  64
#define MAX_TOKENS 4096
#define MAX_RECVS  100000 /* a call that has not ended by then hangs */
#define TIMEOUT_MS 300u   /* request_timeout_ms, virtual: room for busy retries (>= 50 ms) */
#define CONNECT_MS 100u

/* What the harness knows, independently of the library, about one item. */
typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN]; /* its attempt on the wire */
    int live;                         /* replies to id are its own (sent, not held, not ended) */
    int ended;                        /* on_item came (batch), or Done/Error/gap (single) */
    uint32_t expected;                /* the seq its next accepted chunk carries */
    int32_t tokens[MAX_TOKENS];       /* accepted so far, across attempts */
    size_t n_tokens;
    int done_ok; /* single: ended by a Done that is not CANCELLED */
} item_model;

static struct {
    const uint8_t *p, *end;
    int mode, n_items, stop_at, callbacks;
    int down;
    size_t recvs;
    uint8_t known[MAX_KNOWN][CODEC_REQUEST_ID_LEN];
    size_t n_known;
    item_model items[MAX_ITEMS];
    int item_calls[MAX_ITEMS];
    /* The chunk being handed to the library, for on_token. */
    const Edgefleet__TokenChunk *delivering;
    int delivering_accepted, delivering_index;
    /* An Error about a live batch item: held (busy) unless on_item ends it. */
    int pending_hold; /* index + 1 */
    /* Async: the call being started (its first Request names it), -1 otherwise; inside a start
     * or cancel; when the library asked the loop to tick; the calls' handles and on_dones. */
    int starting;
    int in_api;
    uint64_t wake_ms;
    ef_call_t *calls[MAX_ITEMS];
    int dones[MAX_ITEMS];
    int batch_n; /* > 0: call 0 is a batch of that many items */
    int batch_items[MAX_ITEMS];
    int finished; /* client_async_finish ran */
} g;

static int read_u8(uint8_t *out)
{
    if (g.p >= g.end)
        return 0;
    *out = *g.p++;
    return 1;
}

static void remember(const uint8_t *id)
{
    if (g.n_known == MAX_KNOWN) {
        memmove(g.known[0], g.known[1], (MAX_KNOWN - 1) * CODEC_REQUEST_ID_LEN);
        g.n_known--;
    }
    memcpy(g.known[g.n_known++], id, CODEC_REQUEST_ID_LEN);
}

static int item_index(ProtobufCBinaryData id)
{
    if (id.len != CODEC_REQUEST_ID_LEN)
        return -1;
    if (g.mode == FC_MODE_ASYNC) { /* every async call is item 0 of its own: search the ids */
        for (int i = 0; i < g.n_items; i++)
            if (g.items[i].live && memcmp(g.items[i].id, id.data, CODEC_REQUEST_ID_LEN) == 0)
                return i;
        return -1;
    }
    uint32_t i = 0;
    for (int b = 0; b < 4; b++)
        i = i << 8 | id.data[CODEC_REQUEST_ID_LEN - 4 + b];
    if (i >= (uint32_t)g.n_items || !g.items[i].live ||
        memcmp(g.items[i].id, id.data, CODEC_REQUEST_ID_LEN) != 0)
        return -1;
    return (int)i;
}

/* The effect of the last delivered frame that shows only once the library handled it. */
static void settle(void)
{
    if (g.pending_hold) {
        item_model *m = &g.items[g.pending_hold - 1];
        if (!m->ended)
            m->live = 0; /* held for a resend: replies to this attempt are stale now */
        g.pending_hold = 0;
    }
    g.delivering = NULL;
}

/* A Request the library sends (alone or in a BatchRequest): it carries what it already has. */
static void sent_request(const Edgefleet__Request *r, int single)
{
    CHECK(r->request_id.len == CODEC_REQUEST_ID_LEN);
    int i = 0;
    if (g.mode == FC_MODE_ASYNC && g.starting >= 0) {
        i = g.starting;                   /* its first attempt */
    } else if (g.mode == FC_MODE_ASYNC) { /* sent again after the link came back: same id */
        for (i = 0; i < g.n_items; i++)
            if (memcmp(g.items[i].id, r->request_id.data, CODEC_REQUEST_ID_LEN) == 0)
                break;
        CHECK(i < g.n_items);
    } else if (!single) {
        uint32_t v = 0;
        for (int b = 0; b < 4; b++)
            v = v << 8 | r->request_id.data[CODEC_REQUEST_ID_LEN - 4 + b];
        CHECK(v < (uint32_t)g.n_items);
        i = (int)v;
    }
    item_model *m = &g.items[i];
    CHECK(!m->ended); /* an ended item is never sent again */
    CHECK(r->n_received_tokens == m->n_tokens);
    CHECK(m->n_tokens == 0 ||
          memcmp(r->received_tokens, m->tokens, m->n_tokens * sizeof *m->tokens) == 0);
    memcpy(m->id, r->request_id.data, CODEC_REQUEST_ID_LEN);
    m->live = 1;
    m->expected = (uint32_t)m->n_tokens;
    remember(r->request_id.data);
}

int client_wait_connected(ef_client_t *c)
{
    settle();
    if (!g.down)
        return 0;
    uint8_t b = 1;
    read_u8(&b);
    if (b % 2 == 0) {
        g.down = 0;
        /* A batch holds every open item for a resend with a fresh id (a single request goes
         * again under its own): replies to the old attempts are stale from here on. */
        for (int i = 0; g.mode == FC_MODE_BATCH && i < g.n_items; i++)
            g.items[i].live = 0;
        return 0;
    }
    fake_clock_advance_ms(c->connect_timeout_ms);
    return client_fail(c, EF_ENOTCONN, "fuzz: the link did not come back");
}

int client_send(ef_client_t *c, envelope *env)
{
    settle();
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = codec_encode(env, 0, &buf, &len);
    CHECK(rc == 0); /* the library never makes a frame it cannot send */
    envelope *back = NULL;
    CHECK(codec_decode(buf, len, CODEC_MAX_FRAME_DEFAULT, &back) == 0);
    free(buf);
    switch (back->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_REQUEST:
        CHECK(g.mode == FC_MODE_GENERATE || g.mode == FC_MODE_CHAT || g.mode == FC_MODE_ASYNC);
        sent_request(back->request, 1);
        break;
    case EDGEFLEET__ENVELOPE__BODY_BATCH:
        CHECK((g.mode == FC_MODE_BATCH || (g.mode == FC_MODE_ASYNC && g.batch_n)) &&
              back->batch->n_items > 0);
        for (size_t i = 0; i < back->batch->n_items; i++)
            if (g.mode == FC_MODE_BATCH)
                sent_request(back->batch->items[i], 0);
            else /* an async batch's items: their ids only (the single calls are modelled) */
                remember(back->batch->items[i]->request_id.data);
        CHECK(back->batch->batch_id.len == CODEC_REQUEST_ID_LEN);
        remember(back->batch->batch_id.data);
        break;
    case EDGEFLEET__ENVELOPE__BODY_COMMAND:
        CHECK(g.mode == FC_MODE_OPERATOR);
        remember(back->command->command_id.data);
        break;
    case EDGEFLEET__ENVELOPE__BODY_CANCEL:
        break;
    default:
        CHECK(!"the library sent a message clients do not send");
    }
    codec_free(&back);
    if (g.down)
        return client_fail(c, EF_ENOTCONN, "fuzz: link down");
    return 0;
}

/* The id field a reply names its request (or command, or batch) by; NULL when none. */
static ProtobufCBinaryData *reply_id(envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        return &env->token_chunk->request_id;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        return &env->done->request_id;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        return &env->error->request_id;
    case EDGEFLEET__ENVELOPE__BODY_REPLY:
        return &env->reply->command_id;
    default:
        return NULL;
    }
}

/* What the harness expects the library to do with a reply it is handed. */
static void model_reply(const envelope *env)
{
    int single = g.mode != FC_MODE_BATCH;
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK) {
        const Edgefleet__TokenChunk *tc = env->token_chunk;
        int i = item_index(tc->request_id);
        g.delivering = tc;
        g.delivering_accepted = 0;
        g.delivering_index = i;
        if (i < 0 || g.items[i].ended)
            return;
        item_model *m = &g.items[i];
        if (tc->seq != m->expected) {
            if (single)
                m->ended = 1; /* a gap or an overlap ends the request */
            return;
        }
        g.delivering_accepted = 1;
        m->expected += (uint32_t)tc->n_token_ids;
        for (size_t k = 0; k < tc->n_token_ids && m->n_tokens < MAX_TOKENS; k++)
            m->tokens[m->n_tokens++] = tc->token_ids[k];
        return;
    }
    ProtobufCBinaryData id = {0};
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE)
        id = env->done->request_id;
    else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR)
        id = env->error->request_id;
    else
        return;
    int i = item_index(id);
    if (i < 0 || g.items[i].ended)
        return;
    if (single) {
        g.items[i].ended = 1;
        g.items[i].done_ok = env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE &&
                             env->done->finish != EDGEFLEET__FINISH_REASON__FINISH_CANCELLED;
    } else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR) {
        g.pending_hold = i + 1;
    }
}

static void fix_id(envelope *env, uint8_t fixup)
{
    ProtobufCBinaryData *id = reply_id(env);
    if ((fixup & 0x80) || !id || id->len != CODEC_REQUEST_ID_LEN || g.n_known == 0)
        return;
    size_t back = (size_t)(fixup & 0x7f) % g.n_known;
    memcpy(id->data, g.known[g.n_known - 1 - back], CODEC_REQUEST_ID_LEN);
}

/* FC_OP_FRAME's operands and frame: the decoded frame with its id fixed up and modelled, or
 * NULL when it does not decode. */
static envelope *read_frame(void)
{
    uint8_t fixup = 0, lo = 0, hi = 0;
    read_u8(&fixup);
    read_u8(&lo);
    read_u8(&hi);
    size_t len = (size_t)lo | (size_t)hi << 8;
    if (len > (size_t)(g.end - g.p))
        len = (size_t)(g.end - g.p);
    envelope *env = NULL;
    int rc = codec_decode(g.p, len, CODEC_MAX_FRAME_DEFAULT, &env);
    g.p += len;
    if (rc != 0)
        return NULL;
    fix_id(env, fixup);
    model_reply(env);
    return env;
}

int client_recv(ef_client_t *c, uint32_t wait_ms, envelope **out)
{
    settle();
    *out = NULL;
    CHECK(++g.recvs < MAX_RECVS);
    CHECK(wait_ms <= TIMEOUT_MS + 1000u);
    for (;;) {
        if (atomic_load(&c->cancel))
            return EF_ECANCELED;
        if (g.down)
            return client_fail(c, EF_ENOTCONN, "fuzz: link down");
        uint8_t op = 0, b = 0;
        if (!read_u8(&op)) {
            fake_clock_advance_ms(wait_ms); /* nothing more will come */
            return EF_ETIMEDOUT;
        }
        switch (op % FC_N_OPS) {
        case FC_OP_FRAME:
            if ((*out = read_frame()) == NULL)
                continue; /* what client_recv does with a frame it cannot read */
            return 0;
        case FC_OP_TIMEOUT:
            fake_clock_advance_ms(wait_ms);
            return EF_ETIMEDOUT;
        case FC_OP_DROP:
            g.down = 1;
            return client_fail(c, EF_ENOTCONN, "fuzz: lost the link");
        case FC_OP_CANCEL:
            atomic_store(&c->cancel, 1);
            continue;
        default: /* FC_OP_CLOCK */
            read_u8(&b);
            fake_clock_advance_ms((uint64_t)b * 10u);
            continue;
        }
    }
}

/* Frames queued before a link broke: none in this model (every frame is a recv). */
int client_recv_queued(ef_client_t *c, envelope **out)
{
    (void)c;
    settle();
    *out = NULL;
    return 1;
}

static int stop_now(void) { return g.stop_at && ++g.callbacks == g.stop_at; }

static int on_token(const char *text, size_t len, void *user)
{
    (void)user;
    const Edgefleet__TokenChunk *tc = g.delivering;
    /* Text reaches the caller only from an accepted chunk, once, and as it came. */
    CHECK(tc && g.delivering_accepted && len > 0);
    CHECK(len == strlen(tc->text) && memcmp(text, tc->text, len) == 0);
    g.delivering = NULL;
    return stop_now();
}

static int on_item(size_t index, const char *text, size_t text_len, const ef_result *r, void *user)
{
    (void)user;
    CHECK(index < (size_t)g.n_items);
    CHECK(g.item_calls[index]++ == 0); /* once per item */
    CHECK(text && strlen(text) == text_len);
    CHECK(r->status <= 0 && r->status >= -1000);
    g.items[index].ended = 1;
    g.items[index].live = 0;
    return stop_now();
}

static void run_single(ef_client_t *c, int chat)
{
    ef_gen_params p = ef_gen_default_params();
    ef_result res;
    int rc;
    if (chat) {
        ef_chat_message msgs[2] = {{"system", "be brief"}, {"user", "hello"}};
        rc = ef_client_chat(c, "fuzz-model", msgs, 2, &p, on_token, NULL, &res);
    } else {
        rc = ef_client_generate(c, "fuzz-model", "once upon a time", &p, on_token, NULL, &res);
    }
    settle();
    CHECK(rc <= 0 && rc >= -1000);
    CHECK(res.status == rc);
    /* Success only through a Done the harness saw accepted. */
    CHECK(rc != 0 || g.items[0].done_ok);
}

static void run_batch(ef_client_t *c)
{
    ef_batch_item items[MAX_ITEMS] = {{"a", NULL}, {"b", NULL}, {"c", NULL}, {"d", NULL}};
    ef_batch_result br;
    int rc = ef_client_batch(c, "fuzz-model", items, (size_t)g.n_items, on_item, NULL, &br);
    settle();
    CHECK(rc <= 0 && rc >= -1000);
    CHECK(br.n_ok + br.n_failed <= (size_t)g.n_items);
    if (rc == 0 || rc == EF_EPARTIAL) { /* every item ended and was reported */
        CHECK(br.n_ok + br.n_failed == (size_t)g.n_items);
        for (int i = 0; i < g.n_items; i++)
            CHECK(g.item_calls[i] == 1);
    }
    CHECK(rc != 0 || br.n_failed == 0);
    CHECK(rc != EF_EPARTIAL || br.n_failed > 0);
}

static void run_operator(ef_client_t *c, int which)
{
    if (which % 2 == 0) {
        ef_fleet_status *st = NULL;
        int rc = ef_client_status(c, &st);
        CHECK(rc <= 0 && rc >= -1000);
        CHECK((rc == 0) == (st != NULL));
        ef_fleet_status_free(&st);
    } else {
        int rc = ef_client_drain(c, "agent-1", which % 4 == 1);
        CHECK(rc <= 0 && rc >= -1000);
    }
    settle();
}

/* ---- FC_MODE_ASYNC: the async calls with the loop half stubbed ------------------------------ */

void client_async_wake(ef_client_t *c, uint64_t at_ms)
{
    (void)c;
    CHECK(!g.finished);
    if (at_ms < g.wake_ms)
        g.wake_ms = at_ms;
}

/* Frames queued before the link broke: none in this model (every frame is an op). */
void client_async_drain(ef_client_t *c) { (void)c; }

void client_async_finish(ef_client_t *c)
{
    (void)c;
    CHECK(!g.finished); /* once */
    g.finished = 1;
}

int client_link_failure(ef_client_t *c)
{
    return client_fail(c, c->link_error ? c->link_error : EF_ECRYPTO, "fuzz: handshake failed");
}

int client_link_timed_out(ef_client_t *c)
{
    return client_fail(c, EF_ENOTCONN, "fuzz: nothing answers");
}

/* What the loop's timer does: tick while a wake is due. */
static void pump_timer(ef_client_t *c)
{
    for (int n = 0; g.wake_ms <= clock_mono_ms() && !g.finished; n++) {
        CHECK(n < 16); /* a tick that asks for itself at once forever would spin the loop */
        g.wake_ms = UINT64_MAX;
        uint64_t next = async_calls_tick(c, clock_mono_ms());
        if (next < g.wake_ms)
            g.wake_ms = next;
    }
}

static int async_token(ef_call_t *call, const char *text, size_t len, void *user)
{
    int i = (int)(intptr_t)user;
    const Edgefleet__TokenChunk *tc = g.delivering;
    CHECK(!g.in_api && call == g.calls[i] && g.dones[i] == 0);
    CHECK(tc && g.delivering_accepted && g.delivering_index == i && len > 0);
    CHECK(len == strlen(tc->text) && memcmp(text, tc->text, len) == 0);
    g.delivering = NULL;
    int stop = g.stop_at && ++g.callbacks == g.stop_at;
    if (stop) /* the library cancels it: nothing of it is accepted from here on */
        g.items[i].ended = 1;
    return stop;
}

static void async_done(ef_call_t *call, int status, const ef_result *r, void *user)
{
    int i = (int)(intptr_t)user;
    CHECK(!g.in_api && call == g.calls[i]);
    CHECK(g.dones[i]++ == 0); /* exactly once */
    CHECK(status <= 0 && status >= -1000 && r->status == status);
    CHECK(status != 0 || g.items[i].done_ok); /* success only through an accepted Done */
    CHECK(strlen(r->message) < sizeof r->message);
    g.items[i].ended = 1;
    g.items[i].live = 0;
}

static int async_item(ef_call_t *call, size_t index, const char *text, size_t len,
                      const ef_result *r, void *user)
{
    (void)user;
    CHECK(!g.in_api && call == g.calls[0] && g.dones[0] == 0);
    CHECK(index < (size_t)g.batch_n && g.batch_items[index]++ == 0); /* once per item */
    CHECK(text && strlen(text) == len);
    CHECK(r->status <= 0 && r->status >= -1000);
    return g.stop_at && ++g.callbacks == g.stop_at;
}

static void async_batch_done_cb(ef_call_t *call, int status, const ef_batch_result *r, void *user)
{
    (void)user;
    CHECK(!g.in_api && call == g.calls[0]);
    CHECK(g.dones[0]++ == 0);
    CHECK(status <= 0 && status >= -1000);
    CHECK(r->n_items == (size_t)g.batch_n && r->n_ok + r->n_failed <= r->n_items);
    if (status == 0 || status == EF_EPARTIAL) { /* every item ended and was reported */
        CHECK(r->n_ok + r->n_failed == r->n_items);
        for (int i = 0; i < g.batch_n; i++)
            CHECK(g.batch_items[i] == 1);
    }
    CHECK(status != 0 || r->n_failed == 0);
    CHECK(status != EF_EPARTIAL || r->n_failed > 0);
}

static void async_start_batch(ef_client_t *c)
{
    ef_batch_item items[MAX_ITEMS] = {{"a", NULL}, {"b", NULL}, {"c", NULL}, {"d", NULL}};
    ef_gen_params p = ef_gen_default_params();
    const char *stop[] = {"\n\n"};
    p.stop = stop;
    p.n_stop = 1;
    p.session_id = "s";
    items[1].params = &p;
    ef_batch_params cb = ef_batch_default_params();
    cb.on_item = async_item;
    cb.on_done = async_batch_done_cb;
    g.in_api = 1;
    int rc = ef_client_batch_async(c, "fuzz-model", items, (size_t)g.batch_n, &cb, &g.calls[0]);
    g.in_api = 0;
    CHECK(rc == 0 && g.calls[0] != NULL);
}

static void async_start(ef_client_t *c, int i)
{
    if (i == 0 && g.batch_n) {
        async_start_batch(c);
        return;
    }
    ef_call_params cb = ef_call_default_params();
    cb.on_token = async_token;
    cb.on_done = async_done;
    cb.user = (void *)(intptr_t)i;
    ef_gen_params p = ef_gen_default_params();
    const char *stop[] = {"\n\n"};
    p.stop = stop;
    p.n_stop = 1;
    ef_chat_message msgs[2] = {{"system", "be brief"}, {"user", "hello"}};
    g.starting = i;
    g.in_api = 1;
    int rc =
        i % 2 ? ef_client_chat_async(c, "fuzz-model", msgs, 2, &p, &cb, &g.calls[i])
              : ef_client_generate_async(c, "fuzz-model", "once upon a time", &p, &cb, &g.calls[i]);
    g.in_api = 0;
    g.starting = -1;
    CHECK(rc == 0 && g.calls[i] != NULL);
}

/* One op of the input on the async client. */
static void async_op(ef_client_t *c, uint8_t op)
{
    uint8_t b = 0;
    switch (op % FC_N_OPS) {
    case FC_OP_FRAME: {
        envelope *env = read_frame();
        if (env)
            async_calls_on_frame(c, env);
        /* A chunk the model accepted for a live call reaches its on_token (async_token clears
         * delivering): the reply found its call among the others. */
        CHECK(!(env && g.delivering && g.delivering_accepted && g.delivering->text[0]));
        settle();
        codec_free(&env);
        break;
    }
    case FC_OP_TIMEOUT: /* the loop sleeps until its timer */
        fake_clock_advance_ms(g.wake_ms != UINT64_MAX && g.wake_ms > clock_mono_ms()
                                  ? g.wake_ms - clock_mono_ms()
                                  : TIMEOUT_MS);
        break;
    case FC_OP_DROP:
        read_u8(&b);
        if (c->connected) {
            c->connected = 0;
            g.down = 1;
            async_calls_link_down(c);
        }
        if (b % 4 == 3) { /* the handshake is refused from now on */
            c->link_error = EF_EDENIED;
            async_calls_link_refused(c);
        } else if (b % 2 == 0 && !c->link_error) {
            c->connected = 1;
            g.down = 0;
            async_calls_link_up(c);
        }
        break;
    case FC_OP_CANCEL:
        read_u8(&b);
        if (g.dones[b % g.n_items] == 0) {
            g.in_api = 1;
            CHECK(ef_call_cancel(g.calls[b % g.n_items]) == 0);
            g.in_api = 0;
            g.items[b % g.n_items].ended = 1;
        }
        break;
    default: /* FC_OP_CLOCK */
        read_u8(&b);
        fake_clock_advance_ms((uint64_t)b * 10u);
        break;
    }
    pump_timer(c);
}

static void run_async(ef_client_t *c, int destroy)
{
    static uint8_t not_a_loop; /* c->loop only says "async"; the loop half is stubbed */
    c->loop = (struct client_loop *)(void *)&not_a_loop;
    g.starting = -1;
    g.wake_ms = UINT64_MAX;
    uint8_t flags = 0;
    read_u8(&flags); /* the async flags byte: call 0 is a batch of (flags & 3) items, 0 = not */
    g.batch_n = flags & 3;
    for (int i = 0; i < g.n_items; i++)
        async_start(c, i);
    CHECK(ef_client_pending(c) == (size_t)g.n_items);
    uint8_t op;
    for (size_t n = 0; read_u8(&op); n++) {
        CHECK(n < MAX_RECVS);
        async_op(c, op);
    }
    if (!destroy) { /* every call is bounded by its request timeout */
        fake_clock_advance_ms(TIMEOUT_MS + CONNECT_MS + 1);
        pump_timer(c);
        CHECK(ef_client_pending(c) == 0);
    }
    async_calls_destroy(c); /* what ef_client_destroy does: the rest end cancelled, now */
    CHECK(g.finished && ef_client_pending(c) == 0);
    for (int i = 0; i < g.n_items; i++)
        CHECK(g.dones[i] == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    memset(&g, 0, sizeof g);
    fake_clock_reset();
    g.p = data + 1;
    g.end = data + size;
    g.mode = data[0] & 3;
    if (g.mode == FC_MODE_OPERATOR && (data[0] & FC_ASYNC_BIT))
        g.mode = FC_MODE_ASYNC;
    g.n_items = g.mode == FC_MODE_BATCH || g.mode == FC_MODE_ASYNC ? ((data[0] >> 2) & 3) + 1 : 1;
    g.stop_at = g.mode == FC_MODE_ASYNC ? (data[0] >> 4) & 3 : data[0] >> 4;
    ef_client_t *c = calloc(1, sizeof *c);
    CHECK(c != NULL);
    atomic_init(&c->cancel, 0);
    c->connected = 1;
    c->connect_timeout_ms = CONNECT_MS;
    c->request_timeout_ms = TIMEOUT_MS; /* bounds every call in virtual time */
    snprintf(c->endpoint, sizeof c->endpoint, "tcp://coordinator.fuzz:7700");
    switch (g.mode) {
    case FC_MODE_GENERATE:
    case FC_MODE_CHAT:
        run_single(c, g.mode == FC_MODE_CHAT);
        break;
    case FC_MODE_BATCH:
        run_batch(c);
        break;
    case FC_MODE_ASYNC:
        run_async(c, (data[0] & FC_ASYNC_DESTROY) != 0);
        break;
    default:
        run_operator(c, data[0] >> 2);
        break;
    }
    CHECK(strlen(c->last_error) < sizeof c->last_error);
    free(c);
    return 0;
}
