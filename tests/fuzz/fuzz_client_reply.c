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
 * FC_MODE_ASYNC (the async calls on the same reply core) is in fuzz_client_async.c; the
 * model both share is fuzz_client_model.h.
 * Input format: fuzz_client_reply.h. Seeds: seeds_edge.c. Built only with clang -DEF_FUZZ=ON:
 *   ./fuzz_client_reply -runs=1000000 corpus/fuzz_client_reply/ */
#include "fuzz_client_reply.h"

#include "client_internal.h"
#include "fake_clock.h"
#include "fuzz_check.h"
#include "fuzz_client_model.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

fc_state g;

int read_u8(uint8_t *out)
{
    if (g.p >= g.end)
        return 0;
    *out = *g.p++;
    return 1;
}

void remember(const uint8_t *id)
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
void settle(void)
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
envelope *read_frame(void)
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
