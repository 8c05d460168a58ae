/* Implementation of uplink.h: link states, Register/Heartbeat, liveness and reconnects. What
 * arrives from the coordinator is handled in uplink_recv.c; replies go through the outbox so
 * a link loss never loses them. Loop thread only. */
#include "uplink_internal.h"

#include "clock.h"
#include "log.h"
#include "sysinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/random.h>

#ifndef EF_VERSION
#define EF_VERSION "0.0.0"
#endif

/* Coordinator's liveness when it has not told us yet (PROTOCOL.md: default 3). */
#define DEFAULT_LIVENESS 3u
#define DEFAULT_HB_MS    1000u

static uint32_t random_u32(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint32_t)clock_mono_ns();
    return r;
}

uint64_t uplink_window_ms(const uplink *u)
{
    uint32_t iv = u->coord_hb_ms > u->hb_ms ? u->coord_hb_ms : u->hb_ms;
    return (uint64_t)iv * u->liveness;
}

static int send_frame(const uint8_t *buf, size_t len, void *user)
{
    uplink *u = user;
    return u->sock ? tsock_send(u->sock, NULL, 0, buf, len) : EF_ENOTCONN;
}

void uplink_flush(uplink *u)
{
    if (u->state == UPLINK_READY)
        outbox_flush(u->outbox, clock_mono_ms(), clock_unix_ms(), send_frame, u);
}

int uplink_reply(uplink *u, envelope *env, const uint8_t id[16], uint64_t deadline)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = codec_encode(env, 0, &buf, &len);
    if (rc == 0)
        rc = outbox_push(u->outbox, &buf, len, deadline, id);
    free(buf);
    if (rc != 0)
        log_error("a reply could not be queued: %s", ef_err_name(rc));
    uplink_flush(u);
    return rc;
}

static void send_register(uplink *u)
{
    sysinfo_board board;
    sysinfo_read_board(&board);
    size_t n = engine_n_models(u->engine);
    Edgefleet__ModelInfo infos[16], *ptrs[16];
    backend_desc descs[16];
    int simulated = 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        engine_model_desc(u->engine, i, &descs[i]);
        edgefleet__model_info__init(&infos[i]);
        infos[i].name = (char *)engine_model_name(u->engine, i);
        infos[i].architecture = descs[i].architecture;
        infos[i].quantization = descs[i].quantization;
        infos[i].size_bytes = descs[i].size_bytes;
        infos[i].n_params = descs[i].n_params;
        infos[i].n_ctx = descs[i].n_ctx;
        infos[i].n_slots = descs[i].n_slots;
        infos[i].n_threads = descs[i].n_threads;
        infos[i].has_chat_template = descs[i].has_chat_template;
        infos[i].sha256 = (ProtobufCBinaryData){sizeof descs[i].sha256, descs[i].sha256};
        infos[i].n_vocab = descs[i].n_vocab;
        simulated |= descs[i].simulated;
        ptrs[i] = &infos[i];
    }
    Edgefleet__Register rg = EDGEFLEET__REGISTER__INIT;
    rg.agent_name = u->asked_name ? u->asked_name : "";
    rg.boot_id.data = u->boot_id;
    rg.boot_id.len = sizeof u->boot_id;
    rg.hostname = board.hostname;
    rg.cpu_model = board.cpu_model;
    rg.cpu_cores = board.cpu_cores;
    rg.memory_bytes = board.memory_bytes;
    rg.n_models = n < 16 ? n : 16;
    rg.models = ptrs;
    rg.agent_version = EF_VERSION;
    rg.heartbeat_interval_ms = u->hb_ms;
    rg.simulated = simulated;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER;
    env.agent_register = &rg;
    int rc = tsock_send_env(u->sock, NULL, 0, &env);
    if (rc != 0)
        log_warn("Register could not be queued: %s", ef_err_name(rc));
}

void uplink_register(uplink *u)
{
    u->state = UPLINK_REGISTERING;
    u->last_seen_ms = clock_mono_ms(); /* the liveness window starts now */
    send_register(u);
}

void uplink_connect(uplink *u)
{
    tsock_params p = {.type = ZMQ_DEALER,
                      .endpoint = u->endpoint,
                      .bind = 0,
                      .keys = &u->keys,
                      .server_public = u->server_public,
                      .on_recv = uplink_on_recv,
                      .on_event = uplink_on_event,
                      /* Our silence check (uplink_tick) redials a link that went quiet, as
                       * ZMTP PINGs would; they were 2 of every 5 messages the coordinator's
                       * I/O thread handled for an idle fleet (bench_fleet_scale). */
                      .no_zmtp_heartbeat = 1,
                      .user = u};
    ef_errmsg em = {{0}};
    u->sock = tsock_new(u->transport, &p, &em);
    if (!u->sock) {
        log_error("cannot dial %s: %s", u->endpoint, em.msg);
        uplink_reconnect(u, "dial failed");
        return;
    }
    log_info("dialling coordinator %s%s%s", u->endpoint, u->asked_name ? " as " : "",
             u->asked_name ? u->asked_name : "");
    uplink_register(u);
}

void uplink_rewind(uplink *u, uint64_t seen_ms)
{
    /* The coordinator processed what we sent well before its last sign of life (one socket,
     * in order); what came after may be lost with it. Receivers drop what they already have. */
    uint64_t replay_from_ms = seen_ms > u->coord_hb_ms ? seen_ms - u->coord_hb_ms : 0;
    outbox_rewind(u->outbox, replay_from_ms);
}

static void on_retry(uv_timer_t *t) { uplink_connect(t->data); }

void uplink_reconnect(uplink *u, const char *why)
{
    uint64_t now = clock_mono_ms();
    if (u->state == UPLINK_READY)
        uplink_rewind(u, u->last_seen_ms);
    tsock_destroy(&u->sock);
    u->state = UPLINK_DOWN;
    uint32_t delay = backoff_next(&u->backoff, now, random_u32());
    log_warn("coordinator link down (%s): reconnecting in %u ms", why, delay);
    uv_timer_start(&u->retry, on_retry, delay, 0);
}

static void send_heartbeat(uplink *u, int leaving)
{
    engine_stats st;
    engine_get_stats(u->engine, &st);
    Edgefleet__ModelLoad loads[16], *ptrs[16];
    for (size_t i = 0; i < st.n_models; i++) {
        edgefleet__model_load__init(&loads[i]);
        loads[i].model = st.models[i].name;
        loads[i].busy_slots = st.models[i].busy_slots;
        loads[i].total_slots = st.models[i].total_slots;
        ptrs[i] = &loads[i];
    }
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.sent_unix_ms = clock_unix_ms();
    hb.n_models = st.n_models;
    hb.models = ptrs;
    hb.queued = st.queued;
    hb.prompt_tps = st.prompt_tps;
    hb.gen_tps = st.gen_tps;
    hb.slot_gen_tps = st.slot_gen_tps;
    hb.rss_bytes = sysinfo_rss_bytes();
    hb.draining = u->draining;
    hb.leaving = leaving;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    tsock_send_env(u->sock, NULL, 0, &env); /* a lost heartbeat is covered by the next */
}

static void on_tick(uv_timer_t *t) { uplink_tick(t->data); }

void uplink_observe(uplink *u, void (*fn)(const engine_event *ev, void *user), void *user)
{
    u->observe = fn;
    u->observe_user = user;
}

int uplink_send_telemetry(uplink *u, Edgefleet__TelemetrySample *t)
{
    if (u->state != UPLINK_READY || !u->sock)
        return EF_ENOTCONN;
    if (u->echo_unix_ms) {
        uint64_t held = clock_mono_ms() - u->echo_at_ms;
        t->echo_unix_ms = u->echo_unix_ms;
        t->echo_held_ms = held > UINT32_MAX ? UINT32_MAX : (uint32_t)held;
    }
    t->draining = u->draining != 0;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TELEMETRY;
    env.telemetry = t;
    return tsock_send_env(u->sock, NULL, 0, &env);
}

void uplink_tick(uplink *u)
{
    uint64_t now = clock_mono_ms();
    /* Sent frames are forgotten only while the link is up: during an outage they are what a
     * reconnect sends again, however long it lasts. */
    outbox_prune(u->outbox, now, clock_unix_ms(),
                 u->state == UPLINK_READY ? 2 * uplink_window_ms(u) : UINT64_MAX / 2);
    uplink_check_stop(u); /* also while the link is down: the drain timeout still holds */
    if (u->state == UPLINK_DOWN)
        return;
    if (u->want_reconnect) {
        const char *why = u->want_reconnect;
        u->want_reconnect = NULL;
        uplink_reconnect(u, why);
        return;
    }
    if (now - u->last_seen_ms > uplink_window_ms(u)) {
        char why[96];
        snprintf(why, sizeof why, "coordinator silent for %llu ms",
                 (unsigned long long)(now - u->last_seen_ms));
        uplink_reconnect(u, why);
        return;
    }
    if (u->state == UPLINK_READY) {
        send_heartbeat(u, 0);
        uplink_flush(u); /* frames refused earlier (high-water mark) go now */
    }
}

static void leave(uplink *u)
{
    if (u->state == UPLINK_READY)
        send_heartbeat(u, 1); /* the socket's linger gives it time to go out */
    void (*done)(void *) = u->stop_done;
    u->stop_done = NULL;
    done(u->stop_user);
}

void uplink_check_stop(uplink *u)
{
    if (!u->stop_done)
        return;
    /* engine_idle first: once it says so, every reply is already in the outbox. */
    int idle = engine_idle(u->engine);
    size_t unsent = outbox_unsent(u->outbox);
    if (idle && unsent == 0) {
        log_info("drained: every request answered; stopping");
        leave(u);
        return;
    }
    if (clock_mono_ms() < u->stop_deadline_ms)
        return;
    engine_stats st;
    engine_get_stats(u->engine, &st);
    uint32_t busy = 0; /* busy_slots counts accepted requests, queued ones too */
    for (size_t i = 0; i < st.n_models; i++)
        busy += st.models[i].busy_slots;
    log_warn("drain timeout: stopping with %u request(s) unfinished and %zu repl%s unsent", busy,
             unsent, unsent == 1 ? "y" : "ies");
    leave(u);
}

void uplink_stop(uplink *u, uint32_t timeout_ms, void (*done)(void *user), void *user)
{
    if (u->stop_done) { /* asked twice: stop now */
        u->stop_deadline_ms = 0;
        uplink_check_stop(u);
        return;
    }
    u->stop_done = done;
    u->stop_user = user;
    u->stop_deadline_ms = clock_mono_ms() + timeout_ms;
    u->draining = 1;
    log_info("stopping: taking no new requests; running ones get up to %u ms to finish",
             timeout_ms);
    if (u->state == UPLINK_READY)
        send_heartbeat(u, 0); /* tell the coordinator now, not at the next tick */
    uplink_check_stop(u);
}

uplink *uplink_new(const uplink_params *p, ef_errmsg *em)
{
    uplink *u = calloc(1, sizeof *u);
    if (!u) {
        errmsg_set(em, EF_ENOMEM, "out of memory");
        return NULL;
    }
    u->loop = p->loop;
    u->transport = p->transport;
    u->engine = p->engine;
    u->endpoint = strdup(p->endpoint);
    u->asked_name = p->name && *p->name ? strdup(p->name) : NULL;
    snprintf(u->name, sizeof u->name, "%s", p->name && *p->name ? p->name : "?");
    randombytes_buf(u->boot_id, sizeof u->boot_id);
    u->server_public = strdup(p->server_public);
    u->keys = *p->keys;
    u->hb_ms = p->heartbeat_ms ? p->heartbeat_ms : DEFAULT_HB_MS;
    u->coord_hb_ms = u->hb_ms;
    u->liveness = p->liveness ? p->liveness : DEFAULT_LIVENESS;
    u->outbox = outbox_new();
    backoff_init(
        &u->backoff,
        &(backoff_params){.initial_ms = 200, .max_ms = 30000, .jitter = 0.5, .stable_ms = 10000});
    if (!u->endpoint || (p->name && *p->name && !u->asked_name) || !u->server_public ||
        !u->outbox) {
        errmsg_set(em, EF_ENOMEM, "out of memory");
        free(u->endpoint);
        free(u->asked_name);
        free(u->server_public);
        outbox_destroy(&u->outbox);
        free(u);
        return NULL;
    }
    uv_timer_init(u->loop, &u->tick);
    uv_timer_init(u->loop, &u->retry);
    u->tick.data = u->retry.data = u;
    uv_timer_start(&u->tick, on_tick, u->hb_ms, u->hb_ms);
    uplink_connect(u);
    return u;
}

static void on_timer_closed(uv_handle_t *h)
{
    uplink *u = h->data;
    if (++u->closed < 2)
        return;
    free(u->endpoint);
    free(u->asked_name);
    free(u->server_public);
    outbox_destroy(&u->outbox);
    free(u);
}

void uplink_destroy(uplink **u_p)
{
    if (!u_p || !*u_p)
        return;
    uplink *u = *u_p;
    size_t pending = outbox_unsent(u->outbox);
    if (pending)
        log_warn("stopping with %zu replies not delivered", pending);
    tsock_destroy(&u->sock);
    uv_close((uv_handle_t *)&u->tick, on_timer_closed);
    uv_close((uv_handle_t *)&u->retry, on_timer_closed);
    *u_p = NULL;
}
