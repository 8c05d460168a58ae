/* libFuzzer target for the coordinator's handling of everything its peers send: the real
 * handlers (agents_link_handle, frontend_handle and ops.c behind it, peers.c, request*.c,
 * delivery.c, the scheduler and registry) over the stub transport (stub_transport.h), with no
 * sockets. One input is a sequence of steps from several peers (fuzz_coord_format.h): three
 * agents, two clients, an operator and a client key on the agent endpoint, with connections
 * that close, rebind routing ids, fill up and lose their keys, and a clock the input moves,
 * running the daemon's timers (heartbeats and liveness, deadlines, delivery backlogs, closed
 * connections, revocation) when they fall due. Checked on every frame the coordinator sends:
 * it decodes and fits its socket's limit (stub); a client's token stream for one request has
 * contiguous seq numbers; whatever goes to an agent's routing id goes to the key registered on
 * it. The coordinator is built and torn down fully per input (LeakSanitizer checks each run).
 * Seeds: seeds_coord.c. Run: bench/fuzz.sh --only fuzz_coordinator. */
#include "clock.h"
#include "coord.h"
#include "fuzz_coord_format.h"
#include "log.h"
#include "stub_transport.h"

#include <sodium.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *user_id, *key;
    peers_link link;
    int rid, want_rid; /* index into FC_RIDS: now, and on the next connection */
    int fd, up, busy, revoked;
} fpeer;

/* One client's stream of one request, as the client sees it. */
typedef struct {
    int used;
    int rid;
    uint8_t id[CODEC_REQUEST_ID_LEN];
    uint64_t next_seq;
} fstream;

/* As main.c's: log lines a peer can trigger, per key and in all. */
#define COORD_LOG_INTERVAL_MS 1000
#define COORD_LOG_KEYS        256
#define COORD_LOG_LINES       20

#define N_STREAMS 64
#define N_TIMERS  4
/* Timer firings one step may cause (a timer re-armed at 0 ms must not spin forever). */
#define TIMER_GUARD 512

static uv_loop_t loop;
static struct {
    coord c;
    fpeer p[FC_N_PEERS];
    int next_fd;
    fstream st[N_STREAMS];
    uv_timer_t *timers[N_TIMERS];
    uint64_t t_start[N_TIMERS], t_due[N_TIMERS];
    int t_known[N_TIMERS];
    int cut[FC_N_PEERS * 4]; /* fds tsock_conn_cut closed: reported after the sweep */
    int n_cut;
} S;

static const char *const UIDS[FC_N_PEERS] = {
    "agents/a", "agents/b", "agents/c", "clients/c1", "clients/c2", "operators/op", "clients/c1"};
static const char *const KEYS[FC_N_PEERS] = {"key-a",  "key-b",  "key-c", "key-c1",
                                             "key-c2", "key-op", "key-c1"};

/* ---- the peers as the stub transport sees them ------------------------------------------- */

static peers_link link_of_sock(const tsock *s)
{
    return s == S.c.agents ? PEERS_AGENTS : PEERS_CLIENTS;
}

/* The peer whose live connection on link holds routing id (peer, len), or -1. */
static int holder(peers_link link, const uint8_t *peer, size_t len)
{
    for (int i = 0; i < FC_N_PEERS; i++) {
        const char *rid = FC_RIDS[S.p[i].rid];
        if (S.p[i].up && S.p[i].link == link && strlen(rid) == len && memcmp(rid, peer, len) == 0)
            return i;
    }
    return -1;
}

static int hook_accept(const tsock *s, const uint8_t *peer, size_t len, void *user)
{
    (void)user;
    if (stub_sock_type(s) == ZMQ_PUB)
        return 0; /* telemetry: nobody subscribed is not an error */
    int i = holder(link_of_sock(s), peer, len);
    if (i < 0)
        return EF_ENOTCONN;
    return S.p[i].busy ? EF_EBUSY : 0;
}

static fstream *stream_of(int rid, ProtobufCBinaryData id, int add)
{
    fstream *free_slot = NULL;
    for (int i = 0; i < N_STREAMS; i++) {
        fstream *st = &S.st[i];
        if (st->used && st->rid == rid && memcmp(st->id, id.data, sizeof st->id) == 0)
            return st;
        if (!st->used && !free_slot)
            free_slot = st;
    }
    if (!add || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = 1;
    free_slot->rid = rid;
    memcpy(free_slot->id, id.data, sizeof free_slot->id);
    return free_slot;
}

static void to_client(int i, const envelope *env)
{
    int rid = S.p[i].rid;
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK) {
        const Edgefleet__TokenChunk *tc = env->token_chunk;
        CHECK(tc->request_id.len == CODEC_REQUEST_ID_LEN);
        fstream *st = stream_of(rid, tc->request_id, 0);
        if (st) /* a stream goes on exactly where the client's copy of it stops */
            CHECK(tc->seq == st->next_seq);
        else
            st = stream_of(rid, tc->request_id, 1);
        if (st)
            st->next_seq = tc->seq + tc->n_token_ids;
    } else if (env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE ||
               env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR) {
        ProtobufCBinaryData id = env->body_case == EDGEFLEET__ENVELOPE__BODY_DONE
                                     ? env->done->request_id
                                     : env->error->request_id;
        fstream *st = id.len == CODEC_REQUEST_ID_LEN ? stream_of(rid, id, 0) : NULL;
        if (st)
            st->used = 0; /* ended: the same id may be asked again */
    }
}

static void to_agent(int i, const uint8_t *peer, size_t len, const envelope *env)
{
    /* A refusal or a "register first" goes to whoever sent what it answers. */
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR ||
        (env->body_case == EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED &&
         !env->agent_registered->accepted))
        return;
    /* Work, cancels, drains, heartbeats go to a registered agent, and to the very key that
     * registered on that routing id: never to another key that took the id over. */
    const registry_agent *a = registry_get_routing_id(S.c.registry, peer, len);
    CHECK(a != NULL);
    CHECK(strcmp(a->key_id, S.p[i].user_id) == 0);
}

static void hook_sent(const tsock *s, const uint8_t *peer, size_t len, const envelope *env,
                      void *user)
{
    (void)user;
    if (stub_sock_type(s) == ZMQ_PUB) {
        CHECK(env->body_case == EDGEFLEET__ENVELOPE__BODY_TELEMETRY);
        return;
    }
    int i = holder(link_of_sock(s), peer, len);
    CHECK(i >= 0); /* hook_accept said so */
    if (link_of_sock(s) == PEERS_CLIENTS)
        to_client(i, env);
    else
        to_agent(i, peer, len, env);
}

static int hook_conn_up(int fd, void *user)
{
    (void)user;
    for (int i = 0; i < FC_N_PEERS; i++)
        if (S.p[i].up && S.p[i].fd == fd)
            return 1;
    return 0;
}

static void hook_conn_cut(int fd, void *user)
{
    (void)user;
    for (int i = 0; i < FC_N_PEERS; i++)
        if (S.p[i].up && S.p[i].fd == fd) {
            S.p[i].up = 0;
            if (S.n_cut < (int)(sizeof S.cut / sizeof S.cut[0]))
                S.cut[S.n_cut++] = fd;
        }
}

static int hook_allowed(const char *key, const char *user_id, void *user)
{
    (void)user;
    for (int i = 0; i < FC_N_PEERS; i++)
        if (strcmp(S.p[i].user_id, user_id) == 0 && strcmp(S.p[i].key, key) == 0)
            return !S.p[i].revoked;
    return 0; /* a key we never made is in no allowlist */
}

/* ---- timers on the stub clock ------------------------------------------------------------- */

/* The loop never runs, so its time stands still: a timer started for d ms has timeout =
 * uv_now + d. Note when each was (re)started, on our clock. */
static void note_timers(void)
{
    for (int k = 0; k < N_TIMERS; k++) {
        uv_timer_t *t = S.timers[k];
        if (!uv_is_active((uv_handle_t *)t)) {
            S.t_known[k] = 0;
            continue;
        }
        if (!S.t_known[k] || t->start_id != S.t_start[k]) {
            S.t_known[k] = 1;
            S.t_start[k] = t->start_id;
            S.t_due[k] = clock_mono_ms() + (t->timeout - uv_now(&loop));
        }
    }
}

/* Fire the due timers, earliest first, as uv_run would (a repeating one comes again `repeat`
 * ms after it ran). */
static void run_due(void)
{
    for (int guard = 0; guard < TIMER_GUARD; guard++) {
        note_timers();
        int best = -1;
        for (int k = 0; k < N_TIMERS; k++)
            if (S.t_known[k] && S.t_due[k] <= clock_mono_ms() &&
                (best < 0 || S.t_due[k] < S.t_due[best]))
                best = k;
        if (best < 0)
            return;
        uv_timer_t *t = S.timers[best];
        uint64_t repeat = uv_timer_get_repeat(t);
        if (repeat == 0)
            uv_timer_stop(t);
        else
            S.t_due[best] = clock_mono_ms() + repeat;
        t->timer_cb(t);
    }
}

/* The earliest due time of a timer, or UINT64_MAX. */
static uint64_t next_due(void)
{
    note_timers();
    uint64_t best = UINT64_MAX;
    for (int k = 0; k < N_TIMERS; k++)
        if (S.t_known[k] && S.t_due[k] < best)
            best = S.t_due[k];
    return best;
}

/* Move the clock by ms, stopping at each due timer on the way (a loop that was not stalled). */
static void advance(uint64_t ms)
{
    uint64_t end = clock_mono_ms() + ms;
    for (int steps = 0; steps < 64 && clock_mono_ms() < end; steps++) {
        uint64_t due = next_due();
        uint64_t to = due < end && due > clock_mono_ms() ? due : end;
        stub_clock_advance(to - clock_mono_ms());
        run_due();
    }
    if (clock_mono_ms() < end)
        stub_clock_advance(end - clock_mono_ms());
    run_due();
}

/* ---- the coordinator, built as main.c's wire() does ---------------------------------------- */

static int coord_up(uint8_t cfg)
{
    memset(&S, 0, sizeof S);
    stub_clock_reset();
    coord *c = &S.c;
    c->cfg = (coord_config){.agents_endpoint = COORD_AGENTS_ENDPOINT,
                            .clients_endpoint = COORD_CLIENTS_ENDPOINT,
                            .telemetry_endpoint = COORD_TELEMETRY_ENDPOINT,
                            .allow_dir = "/nonexistent",
                            .heartbeat_ms = 1000,
                            .liveness = 3,
                            .queue = 1u + (cfg & 3u) * 2u,
                            .client_max = 1u + ((cfg >> 2) & 3u) * 2u,
                            .orphan_grace_ms = cfg & 0x40 ? 2000 : 30000,
                            .client_stall_ms = DELIVERY_STALL_MS,
                            .max_resumes = (cfg >> 4) & 3u};
    snprintf(c->name, sizeof c->name, "fuzz");
    c->loop = &loop;
    request_init(c);
    registry_params rp = registry_default_params();
    rp.heartbeat_interval_ms = c->cfg.heartbeat_ms;
    rp.liveness = c->cfg.liveness;
    scheduler_params sp = scheduler_default_params();
    sp.max_queued_per_model = c->cfg.queue;
    sp.max_per_client = c->cfg.client_max;
    sp.orphan_grace_ms = c->cfg.orphan_grace_ms;
    /* Tables sized for a few peers: the defaults' megabytes per run would cost most of the
     * fuzzer's time, and the limits themselves are reached sooner. */
    rp.max_agents = 4;
    sp.max_models = 4;
    sp.max_requests = 16;
    sp.max_sessions = 8;
    c->transport = transport_new(c->loop);
    c->peers = peers_new();
    c->log_limit = ratelimit_new(COORD_LOG_INTERVAL_MS, COORD_LOG_KEYS, COORD_LOG_LINES);
    c->registry = registry_new(&rp);
    c->scheduler = c->registry ? scheduler_new(c->registry, &sp) : NULL;
    ef_errmsg em = {{0}};
    CHECK(c->transport && c->peers && c->log_limit && c->scheduler);
    CHECK(agents_link_open(c, &em) == 0 && frontend_open(c, &em) == 0 &&
          telemetry_open(c, &em) == 0);
    S.timers[0] = &c->heartbeat_timer;
    S.timers[1] = &c->peers_timer;
    S.timers[2] = &c->deadline_timer;
    S.timers[3] = &c->delivery_timer;
    for (int i = 0; i < FC_N_PEERS; i++) {
        S.p[i] = (fpeer){.user_id = UIDS[i],
                         .key = KEYS[i],
                         .link = i >= FC_C1 && i <= FC_OP ? PEERS_CLIENTS : PEERS_AGENTS,
                         .rid = FC_RID0[i],
                         .want_rid = FC_RID0[i],
                         .fd = -1};
    }
    S.next_fd = 10;
    return 0;
}

/* As main.c's teardown(); the stub's sockets are freed here (transport_destroy would). */
static void coord_down(void)
{
    coord *c = &S.c;
    request_flush(c);
    agents_link_close(c);
    request_close(c);
    tsock_destroy(&c->agents);
    tsock_destroy(&c->clients);
    tsock_destroy(&c->telemetry);
    telemetry_close(c);
    transport_destroy(&c->transport);
    uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks */
    scheduler_destroy(&c->scheduler);
    registry_destroy(&c->registry);
    peers_destroy(&c->peers);
    ratelimit_destroy(&c->log_limit);
    CHECK(stub_sockets_open() == 0);
    CHECK(c->backlog == NULL);
}

/* ---- the steps ----------------------------------------------------------------------------- */

static tsock *sock_of(const fpeer *p) { return p->link == PEERS_AGENTS ? S.c.agents : S.c.clients; }

static void close_conn(int i)
{
    fpeer *p = &S.p[i];
    if (!p->up)
        return;
    p->up = 0;
    peers_on_event(sock_of(p), ZMQ_EVENT_DISCONNECTED, (uint32_t)p->fd, &S.c);
}

/* Connect if needed, as libzmq would: a revoked key is refused by ZAP, and a routing id that a
 * live connection holds is not given to a second one. Returns 1 when connected. */
static int connect_peer(int i)
{
    fpeer *p = &S.p[i];
    if (p->up)
        return 1;
    if (p->revoked)
        return 0;
    const char *want = FC_RIDS[p->want_rid];
    if (holder(p->link, (const uint8_t *)want, strlen(want)) >= 0)
        return 0;
    p->rid = p->want_rid;
    p->fd = S.next_fd++;
    p->up = 1;
    return 1;
}

static void message(int i, const uint8_t *buf, size_t len)
{
    fpeer *p = &S.p[i];
    if (!connect_peer(i))
        return;
    const char *rid = FC_RIDS[p->rid];
    size_t rid_len = strlen(rid);
    zmq_msg_t frames[2];
    zmq_msg_init_size(&frames[0], rid_len);
    memcpy(zmq_msg_data(&frames[0]), rid, rid_len);
    zmq_msg_init_size(&frames[1], len);
    if (len)
        memcpy(zmq_msg_data(&frames[1]), buf, len);
    stub_set_sender(p->user_id, p->key, p->fd);
    /* As on_agent_message / on_client_message: peers first, then the codec, then the handler. */
    if (peers_seen(&S.c, p->link, &frames[0], &frames[1]) == 0) {
        envelope *env = NULL;
        if (codec_decode(buf, len, 0, &env) == 0) {
            if (p->link == PEERS_AGENTS) {
                agents_link_handle(&S.c, env, p->user_id, (const uint8_t *)rid, rid_len);
            } else {
                coord_client cl = {(const uint8_t *)rid, rid_len, p->user_id, CLIENT_VIA_ZMQ};
                frontend_handle(&S.c, env, &cl);
            }
            codec_free(&env);
        }
    }
    zmq_msg_close(&frames[0]);
    zmq_msg_close(&frames[1]);
}

static void revoke_key(int i)
{
    S.p[i].revoked = 1;
    S.n_cut = 0;
    peers_sweep(&S.c);
    /* libzmq reports each cut connection as it would any close. */
    for (int k = 0; k < S.n_cut; k++)
        for (int j = 0; j < FC_N_PEERS; j++)
            if (S.p[j].fd == S.cut[k])
                peers_on_event(sock_of(&S.p[j]), ZMQ_EVENT_DISCONNECTED, (uint32_t)S.cut[k], &S.c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    CHECK(sodium_init() >= 0);
    CHECK(uv_loop_init(&loop) == 0);
    log_set_level(LOG_OFF);
    stub_hooks h = {.accept = hook_accept,
                    .sent = hook_sent,
                    .conn_up = hook_conn_up,
                    .conn_cut = hook_conn_cut,
                    .allowed = hook_allowed};
    stub_set_hooks(&h);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    coord_up(data[0]);
    size_t at = 1;
    while (at < size) {
        uint8_t op = data[at++];
        int peer = FC_PEER_OF(op);
        switch (FC_ACTION_OF(op)) {
        case FC_CLOCK: {
            uint8_t b = at < size ? data[at++] : 0;
            advance(b < 128 ? b * 10u : (b - 128u) * 1000u);
            break;
        }
        case FC_CLOSE:
            close_conn(peer);
            break;
        case FC_BUSY:
            S.p[peer].busy = !S.p[peer].busy;
            break;
        case FC_REBIND:
            S.p[peer].want_rid = (at < size ? data[at++] : 0) % FC_N_RIDS;
            close_conn(peer);
            break;
        case FC_REVOKE:
            revoke_key(peer);
            break;
        default: { /* FC_MSG, and the unused actions */
            size_t len = 0;
            if (at + 2 <= size)
                len = (size_t)data[at] | (size_t)data[at + 1] << 8;
            at += 2;
            if (at > size)
                break;
            if (len > size - at)
                len = size - at;
            message(peer, data + at, len);
            at += len;
            break;
        }
        }
        run_due(); /* timers 0 ms from now (e.g. a passed deadline) run as the loop turns */
    }
    coord_down();
    return 0;
}
