/* The telemetry endpoint: a CURVE PUB (ZAP domain "telemetry": operators' keys and
 * allow/telemetry/, never the clients') republishing each agent's TelemetrySample under
 * "telemetry.<agent name>" with what the coordinator adds (link RTT, requests routed and
 * resumed, queue depth per model), and at most once a second the fleet's sum under
 * "telemetry.fleet". Each device's last samples stay in a rolling window (telemetry_window.h)
 * that operators ask for (COMMAND_TELEMETRY_HISTORY) and /metrics reads. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"
#include "telemetry_window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEET_EVERY_MS 1000
#define COUNTS_MAX     4096 /* agent names with routed/resumed counters */
#define RTT_MAX_MS     60000

typedef struct {
    char name[REGISTRY_NAME_MAX];
    uint64_t routed, resumed;
} agent_counts;

struct coord_telemetry {
    twin *window;
    agent_counts *counts;
    size_t n_counts, cap_counts;
    uint64_t next_fleet_ms, next_prune_ms;
};

static agent_counts *counts_of(coord_telemetry *t, const char *name, int add)
{
    for (size_t i = 0; i < t->n_counts; i++)
        if (strcmp(t->counts[i].name, name) == 0)
            return &t->counts[i];
    if (!add || t->n_counts == COUNTS_MAX)
        return NULL;
    if (t->n_counts == t->cap_counts) {
        size_t cap = t->cap_counts ? 2 * t->cap_counts : 16;
        agent_counts *n = realloc(t->counts, cap * sizeof *n);
        if (!n)
            return NULL;
        t->counts = n;
        t->cap_counts = cap;
    }
    agent_counts *a = &t->counts[t->n_counts++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    return a;
}

void telemetry_count_routed(coord *c, const char *agent, int resumed)
{
    agent_counts *a = c->tel ? counts_of(c->tel, agent, 1) : NULL;
    if (!a)
        return;
    a->routed++;
    a->resumed += resumed != 0;
}

static void publish(coord *c, const char *name, Edgefleet__TelemetrySample *s)
{
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TELEMETRY;
    env.telemetry = s;
    char topic[16 + REGISTRY_NAME_MAX];
    int n = snprintf(topic, sizeof topic, "telemetry.%s", name);
    int rc = tsock_send_env(c->telemetry, topic, (size_t)n, &env);
    if (rc && rc != EF_EBUSY) /* a slow subscriber only loses samples */
        log_warn("telemetry for %s: %s", name, ef_strerror(rc));
}

/* What the coordinator knows and the agent cannot: its name, round trip, routing, queues. */
static void add_ours(coord *c, const registry_agent *a, Edgefleet__TelemetrySample *s)
{
    uint64_t now = clock_unix_ms();
    s->agent_name = (char *)a->name;
    s->simulated = a->simulated;
    s->received_unix_ms = now;
    s->rtt_ms = 0;
    if (s->echo_unix_ms && s->echo_unix_ms <= now && now - s->echo_unix_ms >= s->echo_held_ms &&
        now - s->echo_unix_ms - s->echo_held_ms < RTT_MAX_MS)
        s->rtt_ms = (double)(now - s->echo_unix_ms - s->echo_held_ms);
    const agent_counts *k = counts_of(c->tel, a->name, 0);
    s->routed = k ? k->routed : 0;
    s->resumed = k ? k->resumed : 0;
    s->agents = 0;
    for (size_t i = 0; i < s->n_models; i++) {
        Edgefleet__ModelTelemetry *m = s->models[i];
        m->queued = m->model ? scheduler_queued(c->scheduler, m->model) : 0;
    }
}

/* The fleet's sum over the latest sample of every registered agent. */
static void publish_fleet(coord *c)
{
    Edgefleet__TelemetrySample f = EDGEFLEET__TELEMETRY_SAMPLE__INIT;
    f.agent_name = "fleet";
    f.unix_ms = clock_unix_ms();
    double ttft_weight = 0;
    for (size_t i = 0; i < registry_count(c->registry); i++) {
        const registry_agent *a = registry_at(c->registry, i);
        const Edgefleet__TelemetrySample *s = twin_latest(c->tel->window, a->name);
        if (!s)
            continue;
        f.agents++;
        f.prompt_tps += s->prompt_tps;
        f.gen_tps += s->gen_tps;
        f.prompt_tokens += s->prompt_tokens;
        f.gen_tokens += s->gen_tokens;
        f.busy_slots += s->busy_slots;
        f.total_slots += s->total_slots;
        f.finished += s->finished;
        f.failed += s->failed;
        f.queued += s->queued;
        f.rss_bytes += s->rss_bytes;
        f.routed += s->routed;
        f.resumed += s->resumed;
        f.ttft_count += s->ttft_count;
        /* Percentiles do not add up: the fleet's are the agents' weighted by their requests. */
        f.ttft_p50_ms += s->ttft_p50_ms * s->ttft_count;
        f.ttft_p95_ms += s->ttft_p95_ms * s->ttft_count;
        ttft_weight += s->ttft_count;
        if (s->has_temperature && (!f.has_temperature || s->temperature_c > f.temperature_c)) {
            f.has_temperature = 1;
            f.temperature_c = s->temperature_c; /* the hottest board */
        }
    }
    if (ttft_weight > 0) {
        f.ttft_p50_ms /= ttft_weight;
        f.ttft_p95_ms /= ttft_weight;
    }
    f.received_unix_ms = f.unix_ms;
    publish(c, "fleet", &f);
}

static void keep_sample(coord *c, const registry_agent *a, Edgefleet__TelemetrySample *s);

void telemetry_on_sample(coord *c, const registry_agent *a, Edgefleet__TelemetrySample *s)
{
    if (!c->tel)
        return;
    /* s belongs to the decoded envelope, which frees its strings: the name we put in is ours
     * and must be taken out again before that. */
    char *their_name = s->agent_name;
    keep_sample(c, a, s);
    s->agent_name = their_name;
}

static void keep_sample(coord *c, const registry_agent *a, Edgefleet__TelemetrySample *s)
{
    uint64_t now = clock_mono_ms();
    uint32_t held = 0;
    add_ours(c, a, s);
    uint8_t buf[TWIN_SAMPLE_MAX];
    size_t len = edgefleet__telemetry_sample__get_packed_size(s);
    /* A board has at most REGISTRY_MODELS_MAX models; a sample claiming more, or too big to
     * keep, is a peer's mistake: dropped, neither kept nor republished. */
    if (s->n_models > REGISTRY_MODELS_MAX || len > sizeof buf) {
        if (ratelimit_check(c->log_limit, a->key_id, now, &held))
            log_warn("telemetry sample of agent %s dropped: %zu models, %zu bytes", a->name,
                     s->n_models, len);
        return;
    }
    edgefleet__telemetry_sample__pack(s, buf);
    int rc = twin_add(c->tel->window, a->name, buf, len, now);
    if (rc && ratelimit_check(c->log_limit, a->key_id, now, &held))
        log_warn("telemetry sample of agent %s not kept: %s", a->name, ef_strerror(rc));
    publish(c, a->name, s);
    if (now >= c->tel->next_fleet_ms) {
        c->tel->next_fleet_ms = now + FLEET_EVERY_MS;
        publish_fleet(c);
    }
    if (now >= c->tel->next_prune_ms) {
        c->tel->next_prune_ms = now + FLEET_EVERY_MS;
        twin_prune(c->tel->window, now);
    }
}

const Edgefleet__TelemetrySample *telemetry_latest(coord *c, agent_id_t id)
{
    const registry_agent *a = registry_get(c->registry, id);
    return a && c->tel ? twin_latest(c->tel->window, a->name) : NULL;
}

size_t telemetry_window_each(coord *c, const char *agent, size_t last, telemetry_sample_fn fn,
                             void *user)
{
    if (!c->tel)
        return 0;
    for (size_t i = 0; i < twin_agents(c->tel->window); i++)
        if (!agent || strcmp(twin_agent_name(c->tel->window, i), agent) == 0) {
            size_t n = twin_each(c->tel->window, i, last, fn, user);
            if (agent)
                return n;
        }
    return 0;
}

void telemetry_forget(coord *c, const char *agent)
{
    if (c->tel)
        twin_forget(c->tel->window, agent);
}

int telemetry_open(coord *c, ef_errmsg *em)
{
    c->tel = calloc(1, sizeof *c->tel);
    twin_params wp = {.window_ms = c->cfg.telemetry_window_s * 1000u};
    if (!c->tel || !(c->tel->window = twin_new(&wp))) {
        free(c->tel);
        c->tel = NULL;
        return errmsg_set(em, EF_ENOMEM, "out of memory for the telemetry window");
    }
    /* Operators and a telemetry allowlist of its own: a client key runs requests, and what
     * every board does is not its business. */
    char dir[1024];
    const char *subdirs[] = {"operators", "telemetry"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/%s", c->cfg.allow_dir, subdirs[i]);
        if (transport_allow_dir(c->transport, "telemetry", dir) != 0)
            return errmsg_set(em, EF_ENOMEM, "out of memory registering %s", dir);
    }
    tsock_params p = {.type = ZMQ_PUB,
                      .endpoint = c->cfg.telemetry_endpoint,
                      .bind = 1,
                      .keys = &c->keys,
                      .zap_domain = "telemetry",
                      .user = c};
    c->telemetry = tsock_new(c->transport, &p, em);
    return c->telemetry ? 0 : EF_EZMQ;
}

void telemetry_close(coord *c)
{
    if (!c->tel)
        return;
    twin_destroy(&c->tel->window);
    free(c->tel->counts);
    free(c->tel);
    c->tel = NULL;
}
