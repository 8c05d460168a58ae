/* Implementation of ctl_link.h over libzmq and the transport's CURVE setup. */
#include "ctl_link.h"

#include "clock.h"
#include "keys.h"
#include "transport.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CTL_CONNECT_MS 5000
#define CTL_ANSWER_MS  10000
#define CTL_HANGUP_MS  1000 /* a CURVE server hangs up at once on a HELLO it cannot open */

struct ctl_link {
    void *ctx, *sock, *monitor;
    const char *cmd;
    unsigned timeout_ms;
};

/* Telemetry is the coordinator's next port unless told otherwise. */
static void telemetry_endpoint(const ctl_connect_opts *co, char *out, size_t cap)
{
    if (co->telemetry) {
        snprintf(out, cap, "%s", co->telemetry);
        return;
    }
    snprintf(out, cap, "%s", co->coordinator);
    char *colon = strrchr(out, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (colon && port > 0 && port < 65535)
        snprintf(colon + 1, cap - (size_t)(colon + 1 - out), "%ld", port + 1);
}

/* Wait for the handshake's outcome: CTL_OK, CTL_REFUSED or CTL_UNREACHABLE, and why. */
static int wait_handshake(ctl_link *l, unsigned timeout_ms, const char **why)
{
    uint64_t until = clock_mono_ms() + timeout_ms, tcp_up_ms = 0;
    int tcp_seen = 0;
    *why = "nothing answers at the endpoint (is the coordinator running?)";
    while (clock_mono_ms() < until) {
        zmq_pollitem_t it = {.socket = l->monitor, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, (long)(until - clock_mono_ms())) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, l->monitor, 0) < 0)
            break;
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&m) >= 6) {
            memcpy(&event, zmq_msg_data(&m), 2);
            memcpy(&value, (uint8_t *)zmq_msg_data(&m) + 2, 4);
        }
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        if (more) { /* the endpoint frame */
            zmq_msg_init(&m);
            zmq_msg_recv(&m, l->monitor, 0);
            zmq_msg_close(&m);
        }
        switch (event) {
        case ZMQ_EVENT_CONNECTED:
            tcp_seen = 1;
            tcp_up_ms = clock_mono_ms();
            break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            return CTL_OK;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            *why = "the coordinator refused this key (not in its allowlist for this endpoint)";
            return CTL_REFUSED;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            *why = "the CURVE handshake failed (a wrong --server-key?)";
            return CTL_REFUSED;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_DISCONNECTED:
            if (tcp_seen && clock_mono_ms() - tcp_up_ms < CTL_HANGUP_MS) {
                *why = "the coordinator hung up in the handshake: a wrong --server-key, or this "
                       "key is not allowed";
                return CTL_REFUSED;
            }
            break;
        default:
            break;
        }
        (void)value;
    }
    if (tcp_seen)
        *why = "the coordinator accepted TCP but never finished the handshake";
    return CTL_UNREACHABLE;
}

static int load_keys(const ctl_connect_opts *co, const char *cmd, keys_pair *kp, char *server)
{
    if (!co->server_key || !co->key) {
        fprintf(stderr,
                "edgefleetctl %s: need --server-key and --key (or $EDGEFLEET_SERVER_KEY and "
                "$EDGEFLEET_KEY, or ~/.config/edgefleet/ctl.ini)\n",
                cmd);
        return CTL_BAD_ARG;
    }
    ef_errmsg em = {{0}};
    if (keys_load_pair(co->key, kp, &em) != 0 || keys_load_public(co->server_key, server, &em)) {
        fprintf(stderr, "edgefleetctl %s: %s\n", cmd, em.msg);
        return CTL_BAD_ARG;
    }
    return CTL_OK;
}

int ctl_link_open(const ctl_connect_opts *co, const char *cmd, int telemetry, const char *topic,
                  ctl_link **out)
{
    *out = NULL;
    if (!telemetry) {
        /* libedgefleet's connect first: it names every cause of failure precisely (the key
         * file, the endpoint, the server key, the allowlist), and a script sees the same words
         * from every command. Our own socket then finds the handshake works. */
        ef_client_t *probe = NULL;
        int code = ctl_connect(co, cmd, &probe);
        ef_client_destroy(&probe);
        if (code != CTL_OK)
            return code;
    }
    keys_pair kp;
    char server[KEYS_Z85_LEN + 1];
    int rc = load_keys(co, cmd, &kp, server);
    if (rc != CTL_OK)
        return rc;
    ctl_link *l = calloc(1, sizeof *l);
    if (!l)
        return CTL_FAILED;
    l->cmd = cmd;
    l->timeout_ms = co->timeout_ms;
    l->ctx = zmq_ctx_new();
    l->sock = l->ctx ? zmq_socket(l->ctx, telemetry ? ZMQ_SUB : ZMQ_DEALER) : NULL;
    char ep[512], mon[64];
    snprintf(ep, sizeof ep, "%s", co->coordinator);
    if (telemetry)
        telemetry_endpoint(co, ep, sizeof ep);
    snprintf(mon, sizeof mon, "inproc://ctl-monitor-%p", (void *)l);
    int linger = 0;
    if (!l->sock || transport_setup_client_socket(l->sock, &kp, server, 0) != 0 ||
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        (telemetry && zmq_setsockopt(l->sock, ZMQ_SUBSCRIBE, topic, strlen(topic)) != 0) ||
        zmq_socket_monitor(l->sock, mon, ZMQ_EVENT_ALL) != 0 ||
        !(l->monitor = zmq_socket(l->ctx, ZMQ_PAIR)) || zmq_connect(l->monitor, mon) != 0) {
        fprintf(stderr, "edgefleetctl %s: cannot make a socket: %s\n", cmd, zmq_strerror(errno));
        ctl_link_close(&l);
        return CTL_FAILED;
    }
    if (zmq_connect(l->sock, ep) != 0) {
        fprintf(stderr, "edgefleetctl %s: bad endpoint \"%s\": %s\n", cmd, ep, zmq_strerror(errno));
        ctl_link_close(&l);
        return CTL_BAD_ARG;
    }
    const char *why = "";
    rc = wait_handshake(l, co->timeout_ms ? co->timeout_ms : CTL_CONNECT_MS, &why);
    if (rc != CTL_OK) {
        fprintf(stderr, "edgefleetctl %s: %s: %s\n", cmd, ep, why);
        ctl_link_close(&l);
        return rc;
    }
    *out = l;
    return CTL_OK;
}

void ctl_link_close(ctl_link **l_p)
{
    if (!l_p || !*l_p)
        return;
    ctl_link *l = *l_p;
    if (l->sock) {
        zmq_socket_monitor(l->sock, NULL, 0);
        zmq_close(l->sock);
    }
    if (l->monitor) {
        int linger = 0;
        zmq_setsockopt(l->monitor, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(l->monitor);
    }
    if (l->ctx)
        zmq_ctx_term(l->ctx);
    free(l);
    *l_p = NULL;
}

/* The next envelope on the socket within timeout_ms (-1 = wait), skipping a SUB's topic. */
static envelope *recv_env(ctl_link *l, int timeout_ms)
{
    zmq_setsockopt(l->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_msg_t m;
    for (;;) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, l->sock, 0) < 0) {
            zmq_msg_close(&m);
            return NULL;
        }
        if (!zmq_msg_more(&m))
            break;
        zmq_msg_close(&m); /* the topic frame */
    }
    envelope *env = NULL;
    int rc = codec_decode(zmq_msg_data(&m), zmq_msg_size(&m), 0, &env);
    zmq_msg_close(&m);
    return rc == 0 ? env : NULL;
}

int ctl_link_command(ctl_link *l, Edgefleet__CommandKind kind, const char *agent, uint32_t last,
                     envelope **reply)
{
    *reply = NULL;
    uint8_t id[16];
    randombytes_buf(id, sizeof id);
    Edgefleet__OperatorCommand cmd = EDGEFLEET__OPERATOR_COMMAND__INIT;
    cmd.command_id = (ProtobufCBinaryData){sizeof id, id};
    cmd.kind = kind;
    cmd.agent_name = (char *)(agent ? agent : "");
    cmd.last = last;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_COMMAND;
    env.command = &cmd;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_encode(&env, 0, &buf, &len) != 0 || zmq_send(l->sock, buf, len, 0) < 0) {
        free(buf);
        fprintf(stderr, "edgefleetctl %s: cannot send the command\n", l->cmd);
        return CTL_FAILED;
    }
    free(buf);
    uint64_t until = clock_mono_ms() + (l->timeout_ms ? l->timeout_ms : CTL_ANSWER_MS);
    while (clock_mono_ms() < until) {
        envelope *r = recv_env(l, (int)(until - clock_mono_ms()));
        if (!r)
            continue;
        if (r->body_case == EDGEFLEET__ENVELOPE__BODY_REPLY && r->reply->command_id.len == 16 &&
            memcmp(r->reply->command_id.data, id, 16) == 0) {
            *reply = r;
            return CTL_OK;
        }
        codec_free(&r);
    }
    fprintf(stderr, "edgefleetctl %s: no answer from the coordinator\n", l->cmd);
    return CTL_UNREACHABLE;
}

int ctl_reply_failure(const char *cmd, const Edgefleet__OperatorReply *r)
{
    if (r->code == 0)
        return CTL_OK;
    fprintf(stderr, "edgefleetctl %s: %s (%s)\n", cmd,
            r->message && *r->message ? r->message : ef_strerror(r->code), ef_err_name(r->code));
    return r->code == EF_EDENIED ? CTL_REFUSED : CTL_FAILED;
}

envelope *ctl_link_sample(ctl_link *l, int timeout_ms)
{
    for (;;) {
        envelope *env = recv_env(l, timeout_ms);
        if (!env || env->body_case == EDGEFLEET__ENVELOPE__BODY_TELEMETRY)
            return env;
        codec_free(&env);
    }
}
