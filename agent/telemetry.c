/* The agent's telemetry sender (telemetry.h). */
#include "telemetry.h"

#include "clock.h"
#include "log.h"
#include "sampler.h"
#include "sysinfo.h"

#include <stdlib.h>
#include <string.h>

struct agent_telemetry {
    uv_timer_t timer;
    engine *engine;
    uplink *uplink;
    int simulated;
    uint64_t started_ms;
    uint64_t cpu_total, cpu_busy; /* /proc/stat at the last sample */
    sampler sampler;
};

static void observe(const engine_event *ev, void *user)
{
    agent_telemetry *t = user;
    if (ev->kind == ENGINE_EV_CHUNK)
        sampler_add_tokens(&t->sampler, 0, ev->n_tokens);
    else if (ev->kind == ENGINE_EV_DONE) {
        /* The prompt is counted when its request ends: the engine reports it in Done. */
        sampler_add_tokens(&t->sampler, ev->prompt_evaluated, 0);
        sampler_add_end(&t->sampler, 1, ev->completion_tokens ? ev->first_token_ms : -1);
    } else
        sampler_add_end(&t->sampler, 0, -1);
}

static double cpu_busy_fraction(agent_telemetry *t)
{
    uint64_t total = 0, busy = 0;
    if (sysinfo_cpu_ticks(&total, &busy) != 0)
        return 0;
    double f = 0;
    if (total > t->cpu_total && busy >= t->cpu_busy)
        f = (double)(busy - t->cpu_busy) / (double)(total - t->cpu_total);
    t->cpu_total = total;
    t->cpu_busy = busy;
    return f > 1 ? 1 : f;
}

static void fill_board(agent_telemetry *t, Edgefleet__TelemetrySample *s)
{
    size_t rss = 0;
    s->rss_bytes = uv_resident_set_memory(&rss) == 0 ? rss : sysinfo_rss_bytes();
    s->free_memory_bytes = uv_get_free_memory();
    s->available_memory_bytes = sysinfo_available_bytes();
    double load[3] = {0};
    uv_loadavg(load);
    s->cpu_load1 = load[0];
    s->cpu_busy = cpu_busy_fraction(t);
    s->has_temperature = sysinfo_temperature_c(&s->temperature_c) == 0;
    s->uptime_ms = clock_mono_ms() - t->started_ms;
    s->simulated = t->simulated != 0;
}

static void on_timer(uv_timer_t *h)
{
    agent_telemetry *t = h->data;
    sampler_interval iv;
    sampler_take(&t->sampler, clock_mono_ms(), &iv);
    Edgefleet__TelemetrySample s = EDGEFLEET__TELEMETRY_SAMPLE__INIT;
    s.unix_ms = clock_unix_ms();
    s.interval_ms = iv.interval_ms;
    s.prompt_tokens = iv.prompt_tokens;
    s.gen_tokens = iv.gen_tokens;
    s.prompt_tps = iv.prompt_tps;
    s.gen_tps = iv.gen_tps;
    s.finished = iv.finished;
    s.failed = iv.failed;
    s.ttft_count = iv.ttft_count;
    s.ttft_p50_ms = iv.ttft_p50_ms;
    s.ttft_p95_ms = iv.ttft_p95_ms;
    engine_stats st;
    engine_get_stats(t->engine, &st);
    s.queued = st.queued;
    Edgefleet__ModelTelemetry models[16], *ptrs[16];
    backend_desc desc;
    for (size_t i = 0; i < st.n_models && i < 16; i++) {
        edgefleet__model_telemetry__init(&models[i]);
        models[i].model = st.models[i].name;
        models[i].busy_slots = st.models[i].busy_slots;
        models[i].total_slots = st.models[i].total_slots;
        s.busy_slots += st.models[i].busy_slots;
        s.total_slots += st.models[i].total_slots;
        ptrs[i] = &models[i];
    }
    /* Model i of the stats is model i of the engine; the hashes are kept by index too. */
    uint8_t sha[16][32];
    for (size_t i = 0; i < st.n_models && i < engine_n_models(t->engine); i++) {
        engine_model_desc(t->engine, i, &desc);
        memcpy(sha[i], desc.sha256, 32);
        models[i].sha256 = (ProtobufCBinaryData){32, sha[i]};
    }
    s.n_models = st.n_models < 16 ? st.n_models : 16;
    s.models = ptrs;
    fill_board(t, &s);
    int rc = uplink_send_telemetry(t->uplink, &s);
    if (rc && rc != EF_ENOTCONN && rc != EF_EBUSY)
        log_warn("telemetry sample not sent: %s", ef_strerror(rc));
}

agent_telemetry *agent_telemetry_new(uv_loop_t *loop, engine *e, uplink *u, uint32_t interval_ms,
                                     int simulated)
{
    agent_telemetry *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->engine = e;
    t->uplink = u;
    t->simulated = simulated;
    t->started_ms = clock_mono_ms();
    sampler_init(&t->sampler, t->started_ms);
    sysinfo_cpu_ticks(&t->cpu_total, &t->cpu_busy);
    uint32_t ms = interval_ms ? interval_ms : AGENT_TELEMETRY_DEFAULT_MS;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, on_timer, ms, ms);
    uplink_observe(u, observe, t);
    return t;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void agent_telemetry_destroy(agent_telemetry **t_p)
{
    if (!t_p || !*t_p)
        return;
    agent_telemetry *t = *t_p;
    uplink_observe(t->uplink, NULL, NULL);
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_closed);
    *t_p = NULL;
}
