/* The agent endpoint: a CURVE ROUTER (ZAP domain "agents", keys from allow/agents/) where agents
 * register and heartbeat, Paranoid-Pirate style in both directions: we heartbeat every live
 * agent each interval, any message from an agent counts as life, and an agent silent for
 * `liveness` intervals is dropped and its requests failed. An agent is its key: it is named
 * after its allowlist file (allow/agents/NAME.pub), whatever name it asks for, and its routing
 * id is only the way back to it. Replies about requests go to request_agent.c. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* How long after start requests for models no agent declared yet are queued, not refused. */
#define COORD_STARTUP_GRACE_MS 10000u
/* Liveness checks per heartbeat interval. */
#define LINK_SWEEPS_PER_INTERVAL 4
/* Our heartbeat to the agents goes every this many intervals (Registered.heartbeat_interval_ms
 * says so, and an agent's window is liveness x that): an idle fleet's messages are its
 * heartbeats, and ours were half of the coordinator's CPU at 1,000 boards
 * (bench_fleet_scale). Agents still beat every interval, so a dead board is noticed as fast. */
#define LINK_HEARTBEAT_BACK_INTERVALS 2

/* How often we heartbeat the agents: LINK_HEARTBEAT_BACK_INTERVALS intervals, while that
 * leaves at least two of our heartbeats in an agent's window. */
static uint32_t heartbeat_back_ms(const coord *c)
{
    uint32_t k =
        c->cfg.liveness > LINK_HEARTBEAT_BACK_INTERVALS ? LINK_HEARTBEAT_BACK_INTERVALS : 1;
    return c->cfg.heartbeat_ms * k;
}

int agents_link_send(coord *c, agent_id_t agent, envelope *env)
{
    const registry_agent *a = registry_get(c->registry, agent);
    if (!a)
        return EF_ENOENT;
    return tsock_send_env(c->agents, a->routing_id, a->routing_id_len, env);
}

void agents_link_cancel(coord *c, agent_id_t agent, ProtobufCBinaryData request_id)
{
    Edgefleet__Cancel cn = EDGEFLEET__CANCEL__INIT;
    cn.request_id = request_id;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_CANCEL;
    env.cancel = &cn;
    agents_link_send(c, agent, &env);
}

static void send_registered(coord *c, const uint8_t *peer, size_t len, int accepted,
                            const char *name, const char *reason)
{
    Edgefleet__Registered r = EDGEFLEET__REGISTERED__INIT;
    r.accepted = accepted != 0;
    r.reason = (char *)(reason ? reason : "");
    r.coordinator_name = c->name;
    r.heartbeat_interval_ms = heartbeat_back_ms(c);
    r.liveness = c->cfg.liveness;
    r.agent_name = (char *)(name ? name : "");
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTERED;
    env.agent_registered = &r;
    int rc = tsock_send_env(c->agents, peer, len, &env);
    if (rc)
        log_warn("Registered reply failed: %s", ef_strerror(rc));
}

static void log_registered(const registry_agent *a, const Edgefleet__Register *rg, const char *how)
{
    char models[256];
    size_t used = 0;
    models[0] = '\0';
    for (size_t i = 0; i < a->n_models && used < sizeof models; i++) {
        int w = snprintf(models + used, sizeof models - used, "%s%s x%u", i ? ", " : "",
                         a->models[i].name, a->models[i].n_slots);
        if (w > 0)
            used += (size_t)w;
    }
    log_info("agent %s %s (key %s, host %s, %u cores, version %s%s): %s", a->name, how, a->key_id,
             a->hostname, rg->cpu_cores, rg->agent_version ? rg->agent_version : "?",
             a->simulated ? ", SIMULATED backend" : "", models);
}

/* A refusal the agent hears (Registered{accepted=false}) and the log keeps, rate-limited per
 * key: a misconfigured board retries every few seconds. */
static void refuse_register(coord *c, const char *user_id, const uint8_t *peer, size_t len,
                            const char *reason)
{
    uint32_t held = 0;
    char key[RATELIMIT_KEY_MAX]; /* the same refusal again is what a retrying board repeats */
    snprintf(key, sizeof key, "register %.64s %.40s", user_id, reason);
    if (ratelimit_check(c->log_limit, key, clock_mono_ms(), &held))
        log_warn("agent key %s refused: %s%s", user_id, reason,
                 held ? " (and more since the last such line)" : "");
    send_registered(c, peer, len, 0, NULL, reason);
}

/* The agent's name is its key's: "agents/board-7" is board-7. A Register may ask for a name,
 * but only that one. Returns the name, or NULL with why filled. */
static const char *name_of(const char *user_id, const Edgefleet__Register *rg, char *why,
                           size_t cap)
{
    static const char prefix[] = "agents/";
    if (strncmp(user_id, prefix, sizeof prefix - 1) != 0 || !user_id[sizeof prefix - 1]) {
        snprintf(why, cap, "not an agent key (%s)", user_id);
        return NULL;
    }
    const char *name = user_id + sizeof prefix - 1;
    if (rg->agent_name && *rg->agent_name && strcmp(rg->agent_name, name) != 0) {
        snprintf(why, cap,
                 "agent name \"%.64s\" is not the name of its key (%s): agents are named after "
                 "their allowlist file; drop the name option, or name the file %.64s.pub",
                 rg->agent_name, user_id, rg->agent_name);
        return NULL;
    }
    if (rg->boot_id.len != REGISTRY_BOOT_ID_LEN) {
        snprintf(why, cap, "Register without a %d-byte boot id (an older agent?)",
                 REGISTRY_BOOT_ID_LEN);
        return NULL;
    }
    return name;
}

void agents_link_drop_other_key(coord *c, const uint8_t *peer, size_t len, const char *user_id)
{
    const registry_agent *prev = registry_get_routing_id(c->registry, peer, len);
    if (!prev || strcmp(prev->key_id, user_id) == 0)
        return;
    agent_id_t prev_id = prev->id;
    char prev_name[REGISTRY_NAME_MAX];
    snprintf(prev_name, sizeof prev_name, "%s", prev->name);
    log_warn("agent %s: its routing id is now key %s's; removing it", prev_name, user_id);
    registry_remove(c->registry, prev_id);
    request_agent_gone(c, prev_id, prev_name, "its link was taken over");
}

static void on_register(coord *c, const Edgefleet__Register *rg, const char *user_id,
                        const uint8_t *peer, size_t len)
{
    char why[320];
    const char *name = name_of(user_id, rg, why, sizeof why);
    if (!name) {
        refuse_register(c, user_id, peer, len, why);
        return;
    }
    if (rg->n_models > REGISTRY_MODELS_MAX) {
        snprintf(why, sizeof why, "%zu models (at most %d)", rg->n_models, REGISTRY_MODELS_MAX);
        refuse_register(c, user_id, peer, len, why);
        return;
    }
    /* The registry may still hold another key's agent on this id (its close not yet seen). */
    agents_link_drop_other_key(c, peer, len, user_id);
    registry_model_decl decl[REGISTRY_MODELS_MAX];
    for (size_t i = 0; i < rg->n_models; i++)
        decl[i] = (registry_model_decl){
            rg->models[i]->name, rg->models[i]->n_slots,
            rg->models[i]->sha256.len == REGISTRY_SHA256_LEN ? rg->models[i]->sha256.data : NULL};
    registry_registration reg = {.name = name,
                                 .key_id = user_id,
                                 .boot_id = rg->boot_id.data,
                                 .hostname = rg->hostname,
                                 .routing_id = peer,
                                 .routing_id_len = len,
                                 .models = decl,
                                 .n_models = rg->n_models,
                                 .heartbeat_interval_ms = rg->heartbeat_interval_ms,
                                 .simulated = rg->simulated};
    agent_id_t before = registry_find_key(c->registry, user_id);
    agent_id_t id = AGENT_ID_NONE, replaced = AGENT_ID_NONE;
    ef_errmsg reason = {{0}};
    int rc = registry_register(c->registry, &reg, clock_mono_ms(), &id, &replaced, &reason);
    if (rc) {
        refuse_register(c, user_id, peer, len, reason.msg[0] ? reason.msg : ef_strerror(rc));
        return;
    }
    if (replaced != AGENT_ID_NONE)
        request_agent_gone(c, replaced, name, "it restarted");
    log_registered(registry_get(c->registry, id), rg,
                   id == before ? "re-registered on a new link (same process: its requests "
                                  "go on)"
                   : replaced != AGENT_ID_NONE
                       ? "re-registered after a restart (old entry replaced)"
                       : "registered");
    send_registered(c, peer, len, 1, name, NULL);
    request_pump(c); /* a new agent takes queued work at once */
}

static void on_heartbeat(coord *c, const registry_agent *a, const Edgefleet__Heartbeat *hb)
{
    agent_id_t id = a->id;
    if (hb->leaving) {
        char name[REGISTRY_NAME_MAX];
        snprintf(name, sizeof name, "%s", a->name);
        log_info("agent %s left the fleet (it is stopping)", name);
        registry_remove(c->registry, id);
        request_agent_gone(c, id, name, "it stopped");
        return;
    }
    uint64_t now = clock_mono_ms();
    if (hb->draining == a->drain_reported && a->heartbeat_ms &&
        now - a->heartbeat_ms < a->heartbeat_interval_ms / 2) {
        /* More often than its own interval says: life, but no more work for us (a board that
         * floods heartbeats must not make us republish and reschedule per message). */
        registry_touch(c->registry, id, now);
        return;
    }
    registry_model_load loads[REGISTRY_MODELS_MAX];
    size_t n = hb->n_models < REGISTRY_MODELS_MAX ? hb->n_models : REGISTRY_MODELS_MAX;
    for (size_t i = 0; i < n; i++)
        loads[i] = (registry_model_load){hb->models[i]->model, hb->models[i]->busy_slots,
                                         hb->models[i]->total_slots};
    /* The registry weighs boards by what one request sees; the agent measures that per decode
     * step (slot_gen_tps). Its all-slots gen_tps goes to telemetry unchanged. */
    registry_load load = {.models = loads,
                          .n_models = n,
                          .gen_tps = hb->slot_gen_tps,
                          .prompt_tps = hb->prompt_tps,
                          .draining = hb->draining};
    if (registry_heartbeat(c->registry, id, &load, now) != 0)
        return;
    request_pump(c);
}

/* A message from a routing id we do not know, e.g. after our restart: ask it to register. */
static void on_unknown(coord *c, const envelope *env, const uint8_t *peer, size_t len)
{
    if (env->body_case != EDGEFLEET__ENVELOPE__BODY_HEARTBEAT)
        return; /* answer once per interval at most: heartbeats come that often */
    uint32_t held = 0;
    if (ratelimit_check(c->log_limit, "unregistered agent link", clock_mono_ms(), &held))
        log_info("heartbeat from an unregistered agent link; asking it to register");
    Edgefleet__Error e = EDGEFLEET__ERROR__INIT;
    e.code = EF_ENOTCONN;
    e.message = "not registered with this coordinator: send Register";
    envelope out = EDGEFLEET__ENVELOPE__INIT;
    out.body_case = EDGEFLEET__ENVELOPE__BODY_ERROR;
    out.error = &e;
    tsock_send_env(c->agents, peer, len, &out);
}

void agents_link_handle(coord *c, const envelope *env, const char *user_id, const uint8_t *peer,
                        size_t len)
{
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER) {
        on_register(c, env->agent_register, user_id, peer, len);
        return;
    }
    const registry_agent *a = registry_get_routing_id(c->registry, peer, len);
    if (!a) {
        on_unknown(c, env, peer, len);
        return;
    }
    if (strcmp(a->key_id, user_id) != 0) { /* a peer that chose this routing id: not it */
        uint32_t held = 0;
        if (ratelimit_check(c->log_limit, user_id, clock_mono_ms(), &held))
            log_warn("agent %s: message from key %s ignored (it is %s)", a->name, user_id,
                     a->key_id);
        return;
    }
    if (env->body_case != EDGEFLEET__ENVELOPE__BODY_HEARTBEAT) /* registry_heartbeat counts it */
        registry_touch(c->registry, a->id, clock_mono_ms());
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_HEARTBEAT:
        on_heartbeat(c, a, env->heartbeat);
        break;
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        request_on_chunk(c, a, env->token_chunk);
        break;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        request_on_done(c, a, env->done);
        break;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        request_on_error(c, a, env->error);
        break;
    case EDGEFLEET__ENVELOPE__BODY_TELEMETRY:
        telemetry_on_sample(c, a, env->telemetry);
        break;
    default:
        log_debug("agent %s: %s ignored", a->name, codec_body_name(env));
        break;
    }
}

static void on_agent_message(tsock *s, zmq_msg_t *frames, size_t n, void *user)
{
    coord *c = user;
    if (n != 2 || zmq_msg_size(&frames[0]) == 0 || zmq_msg_size(&frames[0]) > COORD_PEER_MAX)
        return;
    const uint8_t *peer = zmq_msg_data(&frames[0]);
    size_t len = zmq_msg_size(&frames[0]);
    const char *user_id = zmq_msg_gets(&frames[1], "User-Id");
    if (peers_seen(c, PEERS_AGENTS, &frames[0], &frames[1]) != 0)
        return; /* a revoked key: it gets nothing more */
    envelope *env = NULL;
    int rc = codec_decode(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), 0, &env);
    if (rc) {
        uint32_t held = 0;
        if (ratelimit_check(c->log_limit, user_id ? user_id : "?", clock_mono_ms(), &held))
            log_warn("agent link (key %s): message refused: %s%s", user_id ? user_id : "?",
                     ef_strerror(rc), held ? " (and more since the last such line)" : "");
        return;
    }
    agents_link_handle(c, env, user_id ? user_id : "", peer, len);
    codec_free(&env);
}

/* While agent messages wait unread (a reconnect storm of thousands of handshakes and
 * registrations), an agent whose heartbeat sits in the backlog only looks silent: dropping it
 * would make it register again and feed the storm (bench_fleet_scale saw 2,000 such drops at
 * 10,000 boards). The sweep waits for the backlog, but at most one liveness window. */
static int sweep_held(coord *c, uint64_t now)
{
    if (!tsock_backlogged(c->agents)) {
        c->sweep_held_ms = 0;
        return 0;
    }
    if (!c->sweep_held_ms) {
        c->sweep_held_ms = now;
        log_info("liveness sweep waits: agent messages are queued unread");
    }
    return now - c->sweep_held_ms < (uint64_t)c->cfg.heartbeat_ms * c->cfg.liveness;
}

/* Drop agents silent for their liveness window and fail what they were running. */
static void drop_dead(coord *c, uint64_t now)
{
    if (sweep_held(c, now))
        return;
    for (size_t i = 0; i < registry_count(c->registry);) {
        const registry_agent *a = registry_at(c->registry, i);
        if (registry_agent_live(c->registry, a, now)) {
            i++;
            continue;
        }
        agent_id_t id = a->id;
        char name[REGISTRY_NAME_MAX];
        snprintf(name, sizeof name, "%s", a->name);
        log_warn("agent %s dead: silent for %llu ms (liveness window %llu ms)", name,
                 (unsigned long long)(now - a->last_seen_ms),
                 (unsigned long long)registry_liveness_window_ms(c->registry, a));
        registry_remove(c->registry, id); /* the last agent moved into i: look at i again */
        request_agent_gone(c, id, name, "silent too long");
    }
}

static void on_heartbeat_timer(uv_timer_t *t)
{
    coord *c = t->data;
    uint64_t now = clock_mono_ms();
    drop_dead(c, now);
    request_fail_orphans(c);
    if (c->startup_until_ms && now >= c->startup_until_ms) {
        c->startup_until_ms = 0;
        scheduler_set_queue_unknown_models(c->scheduler, false);
    }
    if (now >= c->next_sweep_ms) {
        c->next_sweep_ms = now + PEERS_SWEEP_MS;
        peers_sweep(c);
        /* No ZMTP PINGs on this link: a connection silent for two liveness windows with no
         * agent registered on it is cut here. Not at the drop itself: in a storm a board whose
         * heartbeat was only late would redial and handshake again, feeding the storm. */
        peers_cut_silent(c, now, 2ull * c->cfg.liveness * c->cfg.heartbeat_ms);
    }
    if (now < c->next_heartbeat_ms)
        return;
    c->next_heartbeat_ms = now + heartbeat_back_ms(c);
    Edgefleet__Heartbeat hb = EDGEFLEET__HEARTBEAT__INIT;
    hb.sent_unix_ms = clock_unix_ms();
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    uint8_t *buf = NULL; /* the same bytes go to every agent: encode them once */
    size_t len = 0;
    int rc = codec_encode(&env, 0, &buf, &len);
    if (rc) {
        log_warn("heartbeat to the agents not sent (encoding failed): %s", ef_strerror(rc));
        return;
    }
    for (size_t i = 0; i < registry_count(c->registry); i++) {
        const registry_agent *a = registry_at(c->registry, i);
        rc = tsock_send(c->agents, a->routing_id, a->routing_id_len, buf, len);
        if (rc && rc != EF_ENOTCONN)
            log_warn("heartbeat to agent %s failed: %s", a->name, ef_strerror(rc));
    }
    free(buf);
}

/* Every board holds one TCP connection here: 10,000 boards need 10,000 descriptors, past the
 * usual soft limit of 1024. The soft limit goes to the hard limit (no privilege needed); what
 * the fleet can reach is logged, since beyond it libzmq refuses connections without a word. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = before;
    }
    if (rl.rlim_cur != before)
        log_info("file descriptors: limit raised from %llu to %llu (the hard limit): about as "
                 "many boards can connect",
                 (unsigned long long)before, (unsigned long long)rl.rlim_cur);
    else
        log_info("file descriptors: limit %llu (the hard limit): about as many boards can connect",
                 (unsigned long long)rl.rlim_cur);
}

int agents_link_open(coord *c, ef_errmsg *em)
{
    raise_fd_limit();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/agents", c->cfg.allow_dir);
    if (transport_allow_dir(c->transport, "agents", dir) != 0)
        return errmsg_set(em, EF_ENOMEM, "out of memory registering %s", dir);
    tsock_params p = {.type = ZMQ_ROUTER,
                      .endpoint = c->cfg.agents_endpoint,
                      .bind = 1,
                      .keys = &c->keys,
                      .zap_domain = "agents",
                      .on_recv = on_agent_message,
                      .on_event = peers_on_event,
                      /* Register/Heartbeat and the liveness window say who is alive; ZMTP
                       * PINGs cost O(links) per message in libzmq 4.3 (bench_fleet_scale). */
                      .no_zmtp_heartbeat = 1,
                      .user = c};
    c->agents = tsock_new(c->transport, &p, em);
    if (!c->agents)
        return EF_EZMQ;
    /* No ZMQ_ROUTER_HANDOVER: with it a peer that picks another's routing id takes its link
     * over, and libzmq 4.3 could abort the whole coordinator on the race (two boards that both
     * used their host name). Agents no longer choose routing ids at all. */
    /* Boards reconnect with backoff (up to a few seconds each) after we start: calls re-sent
     * by clients meanwhile wait for their model rather than fail (the orphan grace bounds it). */
    c->startup_until_ms = clock_mono_ms() + COORD_STARTUP_GRACE_MS;
    scheduler_set_queue_unknown_models(c->scheduler, true);
    c->heartbeat_timer.data = c->peers_timer.data = c;
    uv_timer_init(c->loop, &c->heartbeat_timer);
    uv_timer_init(c->loop, &c->peers_timer);
    /* The timer ticks LINK_SWEEPS_PER_INTERVAL times per interval so a dead agent is dropped
     * within a fraction of an interval of its window; heartbeats go out once per interval. */
    uint64_t tick = c->cfg.heartbeat_ms / LINK_SWEEPS_PER_INTERVAL;
    uv_timer_start(&c->heartbeat_timer, on_heartbeat_timer, tick ? tick : 1, tick ? tick : 1);
    return 0;
}

void agents_link_close(coord *c)
{
    uv_timer_stop(&c->heartbeat_timer);
    uv_close((uv_handle_t *)&c->heartbeat_timer, NULL);
    uv_timer_stop(&c->peers_timer);
    uv_close((uv_handle_t *)&c->peers_timer, NULL);
}
