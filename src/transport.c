/* ZeroMQ transport: one zmq context per transport, CURVE on every socket, and an RFC 27 ZAP
 * handler (a REP socket on inproc://zeromq.zap.01 in that context) that answers with zap.c's
 * decision. Every socket, the ZAP handler and the monitors included, is a tsock polled on the
 * transport's libuv loop, and everything here runs on that loop's thread. Monitors live in
 * transport_monitor.c. */
#include "transport_internal.h"

#include "log.h"

#include <sodium.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ZMQ_ZAP_ENFORCE_DOMAIN sits in zmq.h's draft section in libzmq 4.3.4, yet the library accepts
 * and honours it without the draft API (checked: with it set, a CURVE server whose context has
 * no ZAP handler refuses every client instead of falling back to "encrypt but admit anyone").
 * We set it on every bound socket AND bind the ZAP handler in transport_new, before any tsock
 * can exist, so a bound socket never accepts an unauthenticated peer even if a libzmq rejects
 * the option. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* Frames per message: ours have at most a routing id or topic plus one envelope, so 8 is
 * generous; a peer sending more is misbehaving and its message is dropped, not buffered. A ZAP
 * request (from our own libzmq) has 6 to 8 frames depending on the mechanism. */
#define TSOCK_MAX_FRAMES 8
#define ZAP_MAX_FRAMES   16

/* Messages handled per socket per wake-up before yielding to the rest of the loop (timers,
 * heartbeats, other sockets); an idle handle keeps the loop spinning until the backlog is gone. */
#define TSOCK_DRAIN_BATCH 256

/* Pending outbound messages get half a second at close: enough for a final reply or Error to
 * leave on a healthy link, short enough that a dead peer can never hang shutdown (libzmq's
 * default of -1 waits forever in zmq_ctx_term). */
#define TSOCK_LINGER_MS 500

/* Queue depth per peer, in messages. Token chunks are well under 1 KB, so 1000 is a few hundred
 * KB per peer in practice and absorbs bursts; a peer that stops reading then makes sends fail
 * with EF_EBUSY (senders never block) instead of growing our memory without bound. */
#define TSOCK_HWM_DEFAULT 1000

/* First reconnect after 100 ms (a blip heals almost at once), then exponential backoff capped
 * at 5 s so a fleet of boards does not hammer a restarting coordinator, and each board is back
 * within 5 s of it returning. */
#define TSOCK_RECONNECT_IVL_MS     100
#define TSOCK_RECONNECT_IVL_MAX_MS 5000

/* A connection must finish the CURVE handshake (four small commands) within 5 s, or it is
 * dropped: slow boards manage that easily, and half-open or stalled peers (or someone speaking
 * the wrong mechanism) stop holding resources after 5 s instead of libzmq's default 30 s. */
#define TSOCK_HANDSHAKE_IVL_MS 5000

/* ZMTP PING every 2 s, connection closed after 6 s without traffic. Without it a half-open TCP
 * link (board lost power, NAT forgot us) lives for minutes of TCP retransmits: a ROUTER keeps
 * the stale pipe and refuses the board's reconnect under the same routing id, and a DEALER
 * queues into a dead pipe instead of reconnecting. */
#define TSOCK_HEARTBEAT_IVL_MS     2000
#define TSOCK_HEARTBEAT_TIMEOUT_MS 6000

/* libzmq checks ZMQ_MAXMSGSIZE against the frame as it travels, which under CURVE is the
 * payload plus its box (33 bytes), and it drops the whole connection for a frame over the limit,
 * silently. So libzmq gets this much more than the limit we send and accept: every frame a peer
 * of ours may send arrives, and one over our limit is dropped here, alone and with a log line,
 * instead of costing the link (and every other request on it). */
#define TRANSPORT_FRAME_SLACK (64u * 1024u)

/* Log lines a peer can trigger (refused handshakes, oversized frames): one per second per key,
 * at most TRANSPORT_LOG_LINES a second in all. */
#define TRANSPORT_LOG_INTERVAL_MS 1000
#define TRANSPORT_LOG_KEYS        64
#define TRANSPORT_LOG_LINES       10

/* ---- errors ---------------------------------------------------------------------------------- */

static int zmq_fail(ef_errmsg *em, const char *what, const char *endpoint)
{
    int e = zmq_errno();
    return errmsg_set(em, EF_EZMQ, "%s %s: %s", what, endpoint ? endpoint : "", zmq_strerror(e));
}

static int set_int(void *zsock, int option, int value)
{
    return zmq_setsockopt(zsock, option, &value, sizeof value);
}

/* ---- socket options shared by tsock_new and the blocking client ------------------------------ */

static int configure_limits(void *zsock, size_t max_msg_size, int sndhwm, int rcvhwm,
                            int zmtp_heartbeat_ms)
{
    int64_t max =
        (int64_t)(max_msg_size ? max_msg_size : CODEC_MAX_FRAME_DEFAULT) + TRANSPORT_FRAME_SLACK;
    int type = 0;
    size_t type_len = sizeof type;
    if (zmq_setsockopt(zsock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0 ||
        set_int(zsock, ZMQ_LINGER, TSOCK_LINGER_MS) != 0 ||
        set_int(zsock, ZMQ_SNDHWM, sndhwm > 0 ? sndhwm : TSOCK_HWM_DEFAULT) != 0 ||
        set_int(zsock, ZMQ_RCVHWM, rcvhwm > 0 ? rcvhwm : TSOCK_HWM_DEFAULT) != 0 ||
        set_int(zsock, ZMQ_RECONNECT_IVL, TSOCK_RECONNECT_IVL_MS) != 0 ||
        set_int(zsock, ZMQ_RECONNECT_IVL_MAX, TSOCK_RECONNECT_IVL_MAX_MS) != 0 ||
        set_int(zsock, ZMQ_HANDSHAKE_IVL, TSOCK_HANDSHAKE_IVL_MS) != 0 ||
        set_int(zsock, ZMQ_HEARTBEAT_IVL, zmtp_heartbeat_ms) != 0 ||
        set_int(zsock, ZMQ_HEARTBEAT_TIMEOUT, TSOCK_HEARTBEAT_TIMEOUT_MS) != 0 ||
        zmq_getsockopt(zsock, ZMQ_TYPE, &type, &type_len) != 0)
        return EF_EZMQ;
    /* A ROUTER silently drops a message for an unknown or gone peer by default; mandatory makes
     * the send fail (EHOSTUNREACH -> EF_ENOTCONN) so the caller can fail the request over. */
    if (type == ZMQ_ROUTER && set_int(zsock, ZMQ_ROUTER_MANDATORY, 1) != 0)
        return EF_EZMQ;
    return 0;
}

static int configure_curve_client(void *zsock, const keys_pair *keys, const char *server_public)
{
    if (!keys || !keys_z85_valid(keys->public_z85) || !keys_z85_valid(keys->secret_z85) ||
        !keys_z85_valid(server_public))
        return EF_EKEY;
    if (zmq_setsockopt(zsock, ZMQ_CURVE_SERVERKEY, server_public, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(zsock, ZMQ_CURVE_PUBLICKEY, keys->public_z85, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(zsock, ZMQ_CURVE_SECRETKEY, keys->secret_z85, KEYS_Z85_LEN) != 0)
        return EF_EZMQ;
    return 0;
}

int transport_setup_client_socket(void *zsock, const keys_pair *keys, const char *server_public,
                                  size_t max_msg_size)
{
    if (!zsock)
        return EF_EINVAL;
    int rc = configure_curve_client(zsock, keys, server_public);
    return rc != 0 ? rc : configure_limits(zsock, max_msg_size, 0, 0, TSOCK_HEARTBEAT_IVL_MS);
}

static int configure_curve_server(void *zsock, const keys_pair *keys, const char *zap_domain)
{
    if (!keys || !keys_z85_valid(keys->secret_z85))
        return EF_EKEY;
    if (set_int(zsock, ZMQ_CURVE_SERVER, 1) != 0 ||
        zmq_setsockopt(zsock, ZMQ_CURVE_SECRETKEY, keys->secret_z85, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(zsock, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) != 0)
        return EF_EZMQ;
    if (set_int(zsock, ZMQ_ZAP_ENFORCE_DOMAIN, 1) != 0)
        log_debug("ZMQ_ZAP_ENFORCE_DOMAIN not supported; the ZAP handler is always bound first");
    return 0;
}

/* ---- polling on the loop --------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    tsock *s = h->data;
    if (--s->handles_open == 0)
        free(s);
}

/* A warning about what one peer sent, at most one line per peer and interval (with how many
 * were held back). The peer is named by its User-Id when the frame has one. */
static void log_peer(tsock *s, zmq_msg_t *frame, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_peer(tsock *s, zmq_msg_t *frame, const char *fmt, ...)
{
    const char *uid = frame ? zmq_msg_gets(frame, "User-Id") : NULL;
    char key[RATELIMIT_KEY_MAX];
    snprintf(key, sizeof key, "%.40s %.80s", s->endpoint, uid ? uid : "?");
    uint32_t held = 0;
    if (!ratelimit_check(s->t->rl, key, uv_now(s->t->loop), &held))
        return;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    log_warn("%s: peer %s: %s%s", s->endpoint, uid && *uid ? uid : "(unknown key)", what,
             held ? " (and more since the last such line)" : "");
}

/* Receive one whole multipart message and hand it to on_recv. Returns 1 if a message was
 * taken off the socket (delivered or dropped), 0 if none was ready. */
static int recv_one(tsock *s)
{
    zmq_msg_t frames[ZAP_MAX_FRAMES];
    size_t n = 0, total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t spare;
        zmq_msg_t *m = n < s->max_frames ? &frames[n] : &spare;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, s->zsock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m); /* EAGAIN on the first frame; parts of a message arrive together */
            break;
        }
        more = zmq_msg_more(m);
        total++;
        if (m == &spare)
            zmq_msg_close(m);
        else
            n++;
    }
    if (total > n)
        log_peer(s, n ? &frames[n - 1] : NULL, "dropped a %zu-frame message (limit %zu frames)",
                 total, s->max_frames);
    else if (n > 0 && zmq_msg_size(&frames[n - 1]) > s->max_msg_size && s->owner == NULL &&
             s != s->t->zap)
        log_peer(s, &frames[n - 1], "dropped a %zu-byte frame (limit %zu bytes)",
                 zmq_msg_size(&frames[n - 1]), s->max_msg_size);
    else if (n > 0 && s->on_recv)
        s->on_recv(s, frames, n, s->user);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    return total > 0;
}

/* An active idle handle only keeps the loop from blocking in poll; the prepare handle drains. */
static void on_idle(uv_idle_t *h) { (void)h; }

static void drain(tsock *s);
static void on_pace_timer(uv_timer_t *h) { drain(h->data); }

/* May a paced socket read one more message now? When not, the message stays queued in libzmq
 * and the timer drains again when the bucket has a token (the fd gives no new edge for what
 * is already queued). */
static int pace_admit(tsock *s)
{
    uint64_t now = uv_now(s->t->loop);
    if (token_bucket_take(&s->pace, now))
        return 1;
    if (!uv_is_active((uv_handle_t *)&s->pace_timer)) {
        uint32_t wait = token_bucket_wait_ms(&s->pace, now);
        uv_timer_start(&s->pace_timer, on_pace_timer, wait ? wait : 1, 0);
        uint32_t held = 0;
        if (ratelimit_check(s->t->rl, "zap pace", now, &held))
            log_info("CURVE handshakes arrive faster than the %u/s admitted: the others wait "
                     "their turn in ZeroMQ%s",
                     s->pace.rate_per_s, held ? " (still so since the last such line)" : "");
    }
    return 0;
}

/* Deliver messages while ZMQ_EVENTS says readable. The callback may destroy this socket (or the
 * whole transport): memory stays valid until the close callbacks, and `closing` stops us. */
static void drain(tsock *s)
{
    for (int batch = 0; !s->closing; batch++) {
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(s->zsock, ZMQ_EVENTS, &events, &len) != 0 || !(events & ZMQ_POLLIN)) {
            uv_idle_stop(&s->idle);
            return;
        }
        if (batch == TSOCK_DRAIN_BATCH) {
            uv_idle_start(&s->idle, on_idle);
            return;
        }
        if (s->paced && !pace_admit(s)) {
            uv_idle_stop(&s->idle);
            return;
        }
        if (!recv_one(s)) {
            uv_idle_stop(&s->idle);
            return;
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    tsock *s = h->data;
    if (status < 0)
        log_warn("%s: poll: %s", s->endpoint, uv_strerror(status));
    drain(s);
}

static void on_prepare(uv_prepare_t *h) { drain(h->data); }

int tsock_backlogged(const tsock *s) { return s && uv_is_active((const uv_handle_t *)&s->idle); }

/* zmq_send processes the socket's pending commands, which can consume the ZMQ_FD edge while a
 * message waits to be read. The prepare re-check alone misses that when the send happens in a
 * later socket's prepare callback (A's prepare already ran, B's handler sends on A, the loop
 * blocks: a stall until the next timer, seen as ~250 ms gaps under load). So after every send:
 * if the socket is readable, keep the loop from blocking until its prepare has drained it. */
static void recheck_after_send(tsock *s)
{
    int events = 0;
    size_t len = sizeof events;
    if (!s->closing && zmq_getsockopt(s->zsock, ZMQ_EVENTS, &events, &len) == 0 &&
        (events & ZMQ_POLLIN))
        uv_idle_start(&s->idle, on_idle);
}

/* Put an already configured zmq socket on t's loop. On failure the socket is left to the
 * caller. */
tsock *transport_attach(transport *t, void *zsock, const char *endpoint, size_t max_frames,
                        ef_errmsg *em)
{
    zmq_fd_t fd;
    size_t fd_len = sizeof fd;
    int type = 0;
    size_t type_len = sizeof type;
    if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &fd_len) != 0 ||
        zmq_getsockopt(zsock, ZMQ_TYPE, &type, &type_len) != 0) {
        zmq_fail(em, "getsockopt", endpoint);
        return NULL;
    }
    tsock *s = calloc(1, sizeof *s);
    if (!s) {
        errmsg_set(em, EF_ENOMEM, "%s: out of memory", endpoint);
        return NULL;
    }
    int rc = uv_poll_init(t->loop, &s->poll, fd);
    if (rc != 0) {
        free(s);
        errmsg_set(em, EF_EIO, "%s: uv_poll_init: %s", endpoint, uv_strerror(rc));
        return NULL;
    }
    uv_prepare_init(t->loop, &s->prepare);
    uv_idle_init(t->loop, &s->idle);
    uv_timer_init(t->loop, &s->pace_timer);
    s->poll.data = s->prepare.data = s->idle.data = s->pace_timer.data = s;
    s->handles_open = 4;
    s->t = t;
    s->zsock = zsock;
    s->type = type;
    s->max_frames = max_frames;
    s->max_msg_size = SIZE_MAX; /* helper sockets; tsock_new sets the real limit */
    snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    uv_prepare_start(&s->prepare, on_prepare);
    s->next = t->sockets;
    if (t->sockets)
        t->sockets->prev = s;
    t->sockets = s;
    return s;
}

/* Stop polling before the fd goes away, then close the zmq socket; memory goes in the uv close
 * callbacks. */
void transport_close_sock(tsock *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    if (s->monitor) { /* stop the events first: the monitor's callback points at us */
        zmq_socket_monitor(s->zsock, NULL, 0);
        transport_close_sock(s->monitor);
    }
    if (s->owner)
        s->owner->monitor = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->t->sockets = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    uv_close((uv_handle_t *)&s->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    uv_close((uv_handle_t *)&s->pace_timer, on_handle_closed);
    zmq_close(s->zsock);
    s->zsock = NULL;
}

void transport_unref(tsock *s)
{
    uv_unref((uv_handle_t *)&s->poll);
    uv_unref((uv_handle_t *)&s->prepare);
    uv_unref((uv_handle_t *)&s->idle);
    uv_unref((uv_handle_t *)&s->pace_timer);
}

/* ---- ZAP handler (RFC 27) -------------------------------------------------------------------- */

/* Request frames: version, request id, domain, address, routing id, mechanism, credentials...
 * Reply frames: version, request id, status code, status text, user id, metadata. The REP
 * socket must answer every request, so malformed ones get 500 rather than silence. */
static void zap_on_request(tsock *s, zmq_msg_t *f, size_t n, void *user)
{
    transport *t = user;
    zap_frame frames[ZAP_MAX_FRAMES] = {{0}};
    for (size_t i = 0; i < n && i < ZAP_MAX_FRAMES; i++)
        frames[i] = (zap_frame){zmq_msg_data(&f[i]), zmq_msg_size(&f[i])};
    zap_verdict v;
    zap_decide(t->allow, frames, n, uv_now(t->loop), &v);
    uint32_t held = 0;
    char rl_key[96];
    snprintf(rl_key, sizeof rl_key, "zap %s", v.domain);
    if (v.refused && ratelimit_check(t->rl, rl_key, uv_now(t->loop), &held))
        log_warn("refused connection on domain \"%s\" from %s: %s (mechanism %s, key %s)%s%u%s",
                 v.domain, v.address, v.text, v.mechanism, v.key_z85[0] ? v.key_z85 : "-",
                 held ? "; " : "", held, held ? " more refused since the last such line" : "");
    uint8_t meta[64];
    size_t meta_len = zap_metadata(&v, meta, sizeof meta);
    const void *request_id = n >= 2 ? zmq_msg_data(&f[1]) : "";
    size_t request_id_len = n >= 2 ? zmq_msg_size(&f[1]) : 0;
    if (zmq_send(s->zsock, "1.0", 3, ZMQ_SNDMORE) < 0 ||
        zmq_send(s->zsock, request_id, request_id_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(s->zsock, v.status, 3, ZMQ_SNDMORE) < 0 ||
        zmq_send(s->zsock, v.text, strlen(v.text), ZMQ_SNDMORE) < 0 ||
        zmq_send(s->zsock, v.user_id, strlen(v.user_id), ZMQ_SNDMORE) < 0 ||
        zmq_send(s->zsock, meta, meta_len, 0) < 0)
        log_error("ZAP reply: %s", zmq_strerror(zmq_errno()));
}

/* ---- transport ------------------------------------------------------------------------------- */

transport *transport_new(uv_loop_t *loop)
{
    if (!loop)
        return NULL;
    transport *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->loop = loop;
    t->allow = zap_allow_new();
    t->rl = ratelimit_new(TRANSPORT_LOG_INTERVAL_MS, TRANSPORT_LOG_KEYS, TRANSPORT_LOG_LINES);
    t->ctx = t->allow && t->rl ? zmq_ctx_new() : NULL;
    void *rep = t->ctx ? zmq_socket(t->ctx, ZMQ_REP) : NULL;
    ef_errmsg em = {{0}};
    if (!rep || set_int(rep, ZMQ_LINGER, 0) != 0 || zmq_bind(rep, ZAP_ENDPOINT) != 0) {
        log_error("ZAP handler %s: %s", ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
    } else if ((t->zap = transport_attach(t, rep, ZAP_ENDPOINT, ZAP_MAX_FRAMES, &em)) != NULL) {
        t->zap->on_recv = zap_on_request;
        t->zap->user = t;
        transport_unref(t->zap); /* it serves bound sockets; alone it keeps nothing running */
        return t;
    } else {
        log_error("%s", em.msg);
    }
    if (rep)
        zmq_close(rep);
    if (t->ctx)
        zmq_ctx_term(t->ctx);
    zap_allow_destroy(&t->allow);
    ratelimit_destroy(&t->rl);
    free(t);
    return NULL;
}

void transport_destroy(transport **t_p)
{
    if (!t_p || !*t_p)
        return;
    transport *t = *t_p;
    while (t->sockets)
        transport_close_sock(t->sockets);
    while (zmq_ctx_term(t->ctx) != 0 && zmq_errno() == EINTR) {
    }
    zap_allow_destroy(&t->allow);
    ratelimit_destroy(&t->rl);
    free(t);
    *t_p = NULL;
}

int transport_allow_dir(transport *t, const char *zap_domain, const char *dir)
{
    return t ? zap_allow_add(t->allow, zap_domain, dir) : EF_EINVAL;
}

const zap_allow *transport_allowlists(const transport *t) { return t ? t->allow : NULL; }

int transport_set_zap_rate(transport *t, uint32_t per_s, uint32_t burst)
{
    if (!t || !t->zap)
        return EF_EINVAL;
    t->zap->paced = per_s > 0;
    token_bucket_init(&t->zap->pace, per_s, burst, uv_now(t->loop));
    if (!per_s)
        uv_timer_stop(&t->zap->pace_timer);
    return 0;
}

/* ---- sockets --------------------------------------------------------------------------------- */

static int check_params(const tsock_params *p, ef_errmsg *em)
{
    const char *ep = p->endpoint ? p->endpoint : "(no endpoint)";
    if (p->type != ZMQ_ROUTER && p->type != ZMQ_DEALER && p->type != ZMQ_PUB && p->type != ZMQ_SUB)
        return errmsg_set(em, EF_EINVAL, "%s: socket type %d not supported", ep, p->type);
    if (!p->endpoint || !*p->endpoint)
        return errmsg_set(em, EF_EINVAL, "socket without an endpoint");
    if (!p->keys || !keys_z85_valid(p->keys->secret_z85) || !keys_z85_valid(p->keys->public_z85))
        return errmsg_set(em, EF_EKEY, "%s: missing or malformed key pair", ep);
    if (p->bind && (!p->zap_domain || !*p->zap_domain))
        return errmsg_set(em, EF_EINVAL, "%s: a bound socket needs a ZAP domain", ep);
    if (!p->bind && !keys_z85_valid(p->server_public))
        return errmsg_set(em, EF_EKEY, "%s: missing or malformed server public key", ep);
    if (p->type != ZMQ_PUB && !p->on_recv)
        return errmsg_set(em, EF_EINVAL, "%s: on_recv is required for this socket type", ep);
    return 0;
}

static int configure(void *z, const tsock_params *p, ef_errmsg *em)
{
    int rc = p->bind ? configure_curve_server(z, p->keys, p->zap_domain)
                     : configure_curve_client(z, p->keys, p->server_public);
    if (rc == 0)
        rc = configure_limits(z, p->max_msg_size, p->sndhwm, p->rcvhwm,
                              p->no_zmtp_heartbeat ? 0 : TSOCK_HEARTBEAT_IVL_MS);
    if (rc == 0 && p->routing_id && *p->routing_id &&
        zmq_setsockopt(z, ZMQ_ROUTING_ID, p->routing_id, strlen(p->routing_id)) != 0)
        rc = EF_EZMQ;
    if (rc == EF_EKEY)
        return errmsg_set(em, rc, "%s: malformed key", p->endpoint);
    if (rc != 0)
        return zmq_fail(em, "configure", p->endpoint);
    return 0;
}

tsock *tsock_new(transport *t, const tsock_params *p, ef_errmsg *em)
{
    if (!t || !p) {
        errmsg_set(em, EF_EINVAL, "tsock_new: NULL argument");
        return NULL;
    }
    if (check_params(p, em) != 0)
        return NULL;
    void *z = zmq_socket(t->ctx, p->type);
    if (!z) {
        zmq_fail(em, "zmq_socket", p->endpoint);
        return NULL;
    }
    tsock *s = NULL;
    if (configure(z, p, em) == 0) {
        if ((p->bind ? zmq_bind(z, p->endpoint) : zmq_connect(z, p->endpoint)) != 0)
            zmq_fail(em, p->bind ? "bind" : "connect", p->endpoint);
        else
            s = transport_attach(t, z, p->endpoint, TSOCK_MAX_FRAMES, em);
    }
    if (!s) {
        set_int(z, ZMQ_LINGER, 0);
        zmq_close(z);
        return NULL;
    }
    s->on_recv = p->on_recv;
    s->on_event = p->on_event;
    s->user = p->user;
    s->bound = p->bind != 0;
    s->max_msg_size = p->max_msg_size ? p->max_msg_size : CODEC_MAX_FRAME_DEFAULT;
    if (p->bind || p->on_event)
        transport_monitor_start(t, s);
    return s;
}

void tsock_destroy(tsock **s_p)
{
    if (!s_p || !*s_p)
        return;
    transport_close_sock(*s_p);
    *s_p = NULL;
}

static int send_error(void)
{
    switch (zmq_errno()) {
    case EAGAIN:
        return EF_EBUSY;
    case EHOSTUNREACH:
        return EF_ENOTCONN;
    default:
        return EF_EZMQ;
    }
}

int tsock_send(tsock *s, const void *peer_id, size_t peer_len, const void *buf, size_t len)
{
    if (!s || s->closing || (!buf && len > 0))
        return EF_EINVAL;
    if (len > s->max_msg_size) { /* the peer would refuse it */
        char hex[2 * 32 + 1] = "";
        if (peer_id && s->type == ZMQ_ROUTER)
            sodium_bin2hex(hex, sizeof hex, peer_id, peer_len < 32 ? peer_len : 32);
        char key[RATELIMIT_KEY_MAX];
        snprintf(key, sizeof key, "send %.40s %.64s", s->endpoint, hex);
        uint32_t held = 0;
        if (ratelimit_check(s->t->rl, key, uv_now(s->t->loop), &held))
            log_warn("%s: a %zu-byte frame to peer %s not sent: over the %zu-byte limit (%u "
                     "more since the last such line)",
                     s->endpoint, len, hex[0] ? hex : "-", s->max_msg_size, held);
        return EF_ETOOBIG;
    }
    /* A multipart message is queued atomically: once the first frame is accepted, the
     * last one cannot fail for want of room. */
    if (s->type == ZMQ_ROUTER || (s->type == ZMQ_PUB && peer_id)) {
        if (!peer_id || peer_len == 0)
            return EF_EINVAL;
        if (zmq_send(s->zsock, peer_id, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return send_error();
    }
    if (zmq_send(s->zsock, buf, len, ZMQ_DONTWAIT) < 0)
        return send_error();
    recheck_after_send(s);
    return 0;
}

int tsock_send_env(tsock *s, const void *peer_id, size_t peer_len, envelope *env)
{
    if (!s || !env)
        return EF_EINVAL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = codec_encode(env, s->max_msg_size, &buf, &len);
    if (rc == 0)
        rc = tsock_send(s, peer_id, peer_len, buf, len);
    free(buf);
    return rc;
}

int tsock_subscribe(tsock *s, const char *prefix)
{
    if (!s || s->closing || s->type != ZMQ_SUB || !prefix)
        return EF_EINVAL;
    return zmq_setsockopt(s->zsock, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) == 0 ? 0 : EF_EZMQ;
}

void *tsock_zmq(tsock *s) { return s && !s->closing ? s->zsock : NULL; }

size_t tsock_max_msg_size(const tsock *s) { return s ? s->max_msg_size : 0; }
