/* Implementation of stub_transport.h. */
#include "stub_transport.h"

#include "clock.h"
#include "gateway.h"
#include "zap.h"

#include <string.h>

struct transport {
    uv_loop_t *loop;
    int n_open;
};

struct tsock {
    transport *t;
    int type;
    size_t max_msg_size;
    char domain[32];
};

static stub_hooks hooks;
static const char *sender_uid = "", *sender_key = "";
static int sender_fd = -1, sockets_open;

void stub_set_hooks(const stub_hooks *h) { hooks = *h; }

void stub_set_sender(const char *user_id, const char *key, int fd)
{
    sender_uid = user_id;
    sender_key = key;
    sender_fd = fd;
}

int stub_sock_type(const tsock *s) { return s->type; }
const char *stub_sock_domain(const tsock *s) { return s->domain; }
int stub_sockets_open(void) { return sockets_open; }

/* ---- clock.h: fixed start, moved by the target only, so runs are reproducible ------------- */

#define STUB_CLOCK_START_MS 1000000u
#define STUB_UNIX_EPOCH_MS  1780000000000ull
static uint64_t now_ms = STUB_CLOCK_START_MS;

void stub_clock_reset(void) { now_ms = STUB_CLOCK_START_MS; }
void stub_clock_advance(uint64_t ms) { now_ms += ms; }
uint64_t clock_mono_ns(void) { return now_ms * 1000000u; }
uint64_t clock_mono_ms(void) { return now_ms; }
uint64_t clock_unix_ms(void) { return STUB_UNIX_EPOCH_MS + now_ms; }

/* ---- transport.h ------------------------------------------------------------------------- */

transport *transport_new(uv_loop_t *loop)
{
    transport *t = calloc(1, sizeof *t);
    if (t)
        t->loop = loop;
    return t;
}

void transport_destroy(transport **t_p)
{
    if (!t_p || !*t_p)
        return;
    free(*t_p);
    *t_p = NULL;
}

int transport_allow_dir(transport *t, const char *zap_domain, const char *dir)
{
    (void)t;
    return zap_domain && dir ? 0 : EF_EINVAL;
}

/* A non-NULL handle the snapshot stubs below never read. */
const zap_allow *transport_allowlists(const transport *t) { return (const zap_allow *)t; }

tsock *tsock_new(transport *t, const tsock_params *p, ef_errmsg *em)
{
    (void)em;
    tsock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->t = t;
    s->type = p->type;
    s->max_msg_size = p->max_msg_size ? p->max_msg_size : CODEC_MAX_FRAME_DEFAULT;
    snprintf(s->domain, sizeof s->domain, "%s", p->zap_domain ? p->zap_domain : "");
    sockets_open++;
    return s;
}

void tsock_destroy(tsock **s_p)
{
    if (!s_p || !*s_p)
        return;
    free(*s_p);
    *s_p = NULL;
    sockets_open--;
}

int tsock_send(tsock *s, const void *peer_id, size_t peer_len, const void *buf, size_t len)
{
    if (!s || !buf)
        return EF_EINVAL;
    if (s->type == ZMQ_ROUTER && (!peer_id || peer_len == 0))
        return EF_EINVAL;
    if (len > s->max_msg_size)
        return EF_ETOOBIG;
    /* Everything the daemon sends must be a frame its peers can decode. */
    envelope *env = NULL;
    int rc = codec_decode(buf, len, s->max_msg_size, &env);
    CHECK(rc == 0 && env != NULL);
    rc = hooks.accept ? hooks.accept(s, peer_id, peer_len, hooks.user) : 0;
    if (rc == 0 && hooks.sent)
        hooks.sent(s, peer_id, peer_len, env, hooks.user);
    codec_free(&env);
    return rc;
}

int tsock_send_env(tsock *s, const void *peer_id, size_t peer_len, envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = codec_encode(env, s ? s->max_msg_size : 0, &buf, &len);
    if (rc == 0)
        rc = tsock_send(s, peer_id, peer_len, buf, len);
    free(buf);
    return rc;
}

int tsock_subscribe(tsock *s, const char *prefix)
{
    (void)s;
    (void)prefix;
    return 0;
}

void *tsock_zmq(tsock *s)
{
    (void)s;
    return NULL;
}

size_t tsock_max_msg_size(const tsock *s) { return s->max_msg_size; }

void tsock_peer_of(zmq_msg_t *frame, tsock_peer *out)
{
    (void)frame;
    out->user_id = sender_uid;
    out->key = sender_key;
    out->fd = sender_fd;
}

int tsock_conn_capture(int fd, tsock_conn *out)
{
    memset(out, 0, sizeof *out);
    out->fd = fd;
    return fd >= 0 ? 0 : EF_ENOENT;
}

int tsock_conn_same(const tsock_conn *c)
{
    return c->fd >= 0 && hooks.conn_up && hooks.conn_up(c->fd, hooks.user);
}

/* Delivery is synchronous here: nothing ever waits unread. */
int tsock_backlogged(const tsock *s)
{
    (void)s;
    return 0;
}

int tsock_conn_cut(const tsock_conn *c)
{
    if (!tsock_conn_same(c))
        return EF_ENOENT;
    if (hooks.conn_cut)
        hooks.conn_cut(c->fd, hooks.user);
    return 0;
}

/* ---- zap.h: the revocation snapshot only -------------------------------------------------- */

struct zap_snapshot {
    int unused;
};

/* The hooked allowlists can change at any call: a stamp that never repeats makes every sweep
 * read them, as the target expects. */
uint64_t zap_allow_stamp(const zap_allow *a, int *recent)
{
    static uint64_t stamp;
    (void)a;
    *recent = 1;
    return ++stamp;
}

zap_snapshot *zap_snapshot_new(const zap_allow *a, const char *domain)
{
    (void)a;
    (void)domain;
    return calloc(1, sizeof(zap_snapshot));
}

void zap_snapshot_destroy(zap_snapshot **s_p)
{
    if (s_p && *s_p) {
        free(*s_p);
        *s_p = NULL;
    }
}

int zap_snapshot_has(const zap_snapshot *s, const char *key_z85, const char *user_id)
{
    (void)s;
    return hooks.allowed ? hooks.allowed(key_z85, user_id, hooks.user) : 1;
}

/* The HTTP gateway is not part of this world (no --http): every flight is a ZeroMQ client's,
 * and a reply for an HTTP stream could only find it gone. */
int gateway_deliver(gateway *g, const uint8_t *id, size_t id_len, const envelope *env)
{
    (void)g;
    (void)id;
    (void)id_len;
    (void)env;
    return EF_ENOTCONN;
}

int gateway_deliver_packed(gateway *g, const uint8_t *id, size_t id_len, const uint8_t *buf,
                           size_t len)
{
    (void)g;
    (void)id;
    (void)id_len;
    (void)buf;
    (void)len;
    return EF_ENOTCONN;
}
