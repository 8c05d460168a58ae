/* fuzz_client_reply's FC_MODE_ASYNC: up to four async calls (generate, chat, and a batch as call
 * 0 when the flags byte says so) on one client, through client_async_call.c and the shared reply
 * core, with the loop half (client_async.c) stubbed here: frames, link drops, returns and
 * refusals, timer ticks, ef_call_cancel and destroy come from the input (fuzz_client_reply.h).
 * Checked: exactly one on_done per call, never from inside the function that started or
 * cancelled it; text only from accepted chunks, every accepted chunk of a live call delivered;
 * success only through an accepted Done; a batch's items reported once, with counts that agree
 * with its status. */
#include "client_async.h"
#include "clock.h"
#include "fake_clock.h"
#include "fuzz_check.h"
#include "fuzz_client_model.h"
#include "fuzz_client_reply.h"

#include <stdint.h>
#include <string.h>

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
    if (stop && g.destroy_in_callback) {
        /* ef_client_destroy from inside a callback: every call ends, but no on_done may run
         * before this callback has returned. */
        g.in_token = 1;
        async_calls_destroy(g.client);
        g.in_token = 0;
        CHECK(!g.finished);
        for (int k = 0; k < g.n_items; k++)
            g.items[k].ended = 1;
        return 0;
    }
    if (stop) /* the library cancels it: nothing of it is accepted from here on */
        g.items[i].ended = 1;
    return stop;
}

static void async_done(ef_call_t *call, int status, const ef_result *r, void *user)
{
    int i = (int)(intptr_t)user;
    CHECK(!g.in_api && !g.in_token && call == g.calls[i]);
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
    CHECK(!g.in_api && !g.in_token && call == g.calls[0]);
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

void run_async(ef_client_t *c, int destroy)
{
    static uint8_t not_a_loop; /* c->loop only says "async"; the loop half is stubbed */
    c->loop = (struct client_loop *)(void *)&not_a_loop;
    g.starting = -1;
    g.wake_ms = UINT64_MAX;
    uint8_t flags = 0;
    read_u8(&flags); /* the async flags byte: call 0 is a batch of (flags & 3) items, 0 = not */
    g.batch_n = flags & 3;
    g.destroy_in_callback = (flags & 4) != 0;
    g.client = c;
    for (int i = 0; i < g.n_items; i++)
        async_start(c, i);
    CHECK(ef_client_pending(c) == (size_t)g.n_items);
    uint8_t op;
    for (size_t n = 0; !g.finished && read_u8(&op); n++) {
        CHECK(n < MAX_RECVS);
        async_op(c, op);
    }
    if (g.finished) { /* destroyed from a callback: done once it returned, every call ended */
        for (int i = 0; i < g.n_items; i++)
            CHECK(g.dones[i] == 1);
        return;
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
