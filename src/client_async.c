/* libedgefleet's async client on the caller's libuv loop: its own transport (zmq context) with
 * one CURVE DEALER tsock, whose frames and monitor events (transport.c polls both on the loop,
 * ZMQ_FD + uv_poll, draining while ZMQ_EVENTS says readable) become client_async_call.c's
 * events, and one timer for request timeouts, waits for the link and handing ended calls their
 * on_done. The client's memory goes in the timer's close callback. Loop thread only. */
#include "client_async.h"
#include "clock.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

struct client_loop {
    uv_loop_t *loop;
    transport *t;
    tsock *ts;        /* DEALER to the coordinator's client endpoint */
    uv_timer_t timer; /* runs async_calls_tick */
    uint64_t wake_ms; /* when the timer fires (monotonic); UINT64_MAX = stopped */
    int finished;     /* client_async_finish ran: the handles are closing */
};

static void arm(ef_client_t *c, uint64_t at_ms);

static void on_timer(uv_timer_t *h)
{
    ef_client_t *c = h->data;
    c->loop->wake_ms = UINT64_MAX;
    uint64_t next = async_calls_tick(c, clock_mono_ms());
    /* The earlier of next and a wake a batch's pump asked for during the tick; a no-op once the
     * tick destroyed the client. */
    client_async_wake(c, next);
}

static void arm(ef_client_t *c, uint64_t at_ms)
{
    struct client_loop *cl = c->loop;
    if (cl->finished)
        return;
    if (at_ms == UINT64_MAX) {
        uv_timer_stop(&cl->timer);
        cl->wake_ms = UINT64_MAX;
        return;
    }
    uint64_t now = clock_mono_ms();
    uv_timer_start(&cl->timer, on_timer, at_ms > now ? at_ms - now : 0, 0);
    cl->wake_ms = at_ms;
}

void client_async_wake(ef_client_t *c, uint64_t at_ms)
{
    if (at_ms < c->loop->wake_ms && at_ms != UINT64_MAX)
        arm(c, at_ms);
}

static void on_frame(tsock *s, zmq_msg_t *frames, size_t n_frames, void *user)
{
    (void)s;
    ef_client_t *c = user;
    envelope *env = NULL;
    if (n_frames != 1 || codec_decode(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
                                      CODEC_MAX_FRAME_DEFAULT, &env) != 0)
        return; /* not a frame of ours: skipped, as the blocking client does */
    async_calls_on_frame(c, env);
    codec_free(&env);
}

void client_async_drain(ef_client_t *c)
{
    void *z = tsock_zmq(c->loop->ts);
    zmq_msg_t m;
    while (z && !c->loop->finished) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        int more = zmq_msg_more(&m);
        envelope *env = NULL;
        if (!more && zmq_msg_size(&m) <= CODEC_MAX_FRAME_DEFAULT &&
            codec_decode(zmq_msg_data(&m), zmq_msg_size(&m), CODEC_MAX_FRAME_DEFAULT, &env) == 0) {
            async_calls_on_frame(c, env);
            codec_free(&env);
        }
        while (more) { /* a multipart frame is not ours: drain it */
            zmq_msg_recv(&m, z, 0);
            more = zmq_msg_more(&m);
        }
        zmq_msg_close(&m);
    }
}

static void on_link_event(tsock *s, uint16_t event, uint32_t value, void *user)
{
    (void)s;
    ef_client_t *c = user;
    int was = c->connected;
    client_link_event(c, event, value);
    if (!was && c->connected)
        async_calls_link_up(c);
    else if (was && !c->connected)
        async_calls_link_down(c);
    else if (!c->connected && c->link_error)
        async_calls_link_refused(c);
}

int client_async_send(ef_client_t *c, envelope *env)
{
    int rc = c->loop->finished ? EF_ENOTCONN : tsock_send_env(c->loop->ts, NULL, 0, env);
    return rc ? client_fail(c, rc, "could not send the %s to the coordinator at %s: %s",
                            codec_body_name(env), c->endpoint, ef_strerror(rc))
              : 0;
}

int client_async_socket(ef_client_t *c, void *loop, const keys_pair *kp, const char *server,
                        ef_errmsg *em)
{
    struct client_loop *cl = calloc(1, sizeof *cl);
    if (!cl)
        return errmsg_set(em, EF_ENOMEM, "out of memory for a client");
    cl->loop = loop;
    cl->wake_ms = UINT64_MAX;
    uv_timer_init(loop, &cl->timer);
    cl->timer.data = c;
    c->loop = cl;
    if (!(cl->t = transport_new(loop)))
        return errmsg_set(em, EF_EZMQ, "cannot make a ZeroMQ context on the loop");
    tsock_params tp = {.type = ZMQ_DEALER,
                       .endpoint = c->endpoint,
                       .keys = kp,
                       .server_public = server,
                       .on_recv = on_frame,
                       .on_event = on_link_event,
                       .user = c};
    ef_errmsg tem = {{0}};
    if (!(cl->ts = tsock_new(cl->t, &tp, &tem)))
        return errmsg_set(em, EF_EINVAL, "cannot connect to \"%s\": %s (expected tcp://HOST:PORT)",
                          c->endpoint, tem.msg);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    ef_client_t *c = h->data;
    free(c->loop);
    free(c);
}

void client_async_finish(ef_client_t *c)
{
    struct client_loop *cl = c->loop;
    if (cl->finished)
        return;
    cl->finished = 1;
    uv_timer_stop(&cl->timer);
    transport_destroy(&cl->t); /* closes the DEALER (its linger flushes the Cancels) */
    cl->ts = NULL;
    uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
}
