/* GET /metrics on the HTTP listener: the fleet in Prometheus's text exposition format (0.0.4),
 * so an existing Prometheus and Grafana scrape it. Per board (labels agent, model): slots,
 * busy slots, tokens/s, requests served, last heard; per model: queue, requests by outcome,
 * tokens, resumes, and histograms of time to first token and request duration; the gateway's
 * own connections and streams. Counters end in _total; every family has HELP and TYPE. Asks
 * for a bearer key when the gateway does (--http-api-keys). Loop thread. */
#include "gateway_internal.h"

#include "clock.h"
#include "grow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !t->failed; tries++) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        if (grow_array((void **)&t->s, &t->cap, t->len + (size_t)n + 1, 1) != 0)
            t->failed = 1;
    }
}

/* A label value as the format wants it: backslash, quote and newline escaped. Names come from
 * agents (untrusted): at most 128 bytes, so out[] of 4 * 128 + 1 always holds it. */
static const char *esc(const char *v, char out[520])
{
    size_t o = 0;
    for (size_t i = 0; v && v[i] && i < 128; i++) {
        char ch = v[i];
        if (ch == '\\' || ch == '"')
            out[o++] = '\\', out[o++] = ch;
        else if (ch == '\n')
            out[o++] = '\\', out[o++] = 'n';
        else
            out[o++] = ch;
    }
    out[o] = '\0';
    return out;
}

static void family(text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void agents_part(text *t, coord *c)
{
    registry_t *r = c->registry;
    size_t n = registry_count(r);
    uint64_t now = clock_mono_ms();
    char a[520], m[520];
    family(t, "edgefleet_agent_up", "gauge", "1 for each registered board");
    for (size_t i = 0; i < n; i++)
        put(t, "edgefleet_agent_up{agent=\"%s\"} 1\n", esc(registry_at(r, i)->name, a));
    family(t, "edgefleet_agent_draining", "gauge", "1 while the board takes no new work");
    for (size_t i = 0; i < n; i++)
        put(t, "edgefleet_agent_draining{agent=\"%s\"} %d\n", esc(registry_at(r, i)->name, a),
            registry_agent_draining(registry_at(r, i)) ? 1 : 0);
    family(t, "edgefleet_agent_last_seen_seconds", "gauge", "Seconds since the board was heard");
    for (size_t i = 0; i < n; i++) {
        const registry_agent *ag = registry_at(r, i);
        put(t, "edgefleet_agent_last_seen_seconds{agent=\"%s\"} %.3f\n", esc(ag->name, a),
            now > ag->last_seen_ms ? (double)(now - ag->last_seen_ms) / 1000.0 : 0.0);
    }
    family(t, "edgefleet_agent_slot_generation_tokens_per_second", "gauge",
           "Generated tokens/s one request sees on the board (recent average per slot)");
    for (size_t i = 0; i < n; i++)
        put(t, "edgefleet_agent_slot_generation_tokens_per_second{agent=\"%s\"} %g\n",
            esc(registry_at(r, i)->name, a), registry_at(r, i)->gen_tps);
    family(t, "edgefleet_agent_prompt_tokens_per_second", "gauge",
           "Prompt tokens/s of the board, all slots (recent average)");
    for (size_t i = 0; i < n; i++)
        put(t, "edgefleet_agent_prompt_tokens_per_second{agent=\"%s\"} %g\n",
            esc(registry_at(r, i)->name, a), registry_at(r, i)->prompt_tps);
    family(t, "edgefleet_agent_requests_served_total", "counter",
           "Requests that ended on the board since it registered");
    for (size_t i = 0; i < n; i++)
        put(t, "edgefleet_agent_requests_served_total{agent=\"%s\"} %llu\n",
            esc(registry_at(r, i)->name, a), (unsigned long long)registry_at(r, i)->served);
    family(t, "edgefleet_agent_slots", "gauge", "Slots (parallel sequences) of a model on a board");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < registry_at(r, i)->n_models; k++)
            put(t, "edgefleet_agent_slots{agent=\"%s\",model=\"%s\"} %u\n",
                esc(registry_at(r, i)->name, a), esc(registry_at(r, i)->models[k].name, m),
                registry_at(r, i)->models[k].total_slots);
    family(t, "edgefleet_agent_slots_busy", "gauge", "Slots of a model on a board running now");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < registry_at(r, i)->n_models; k++) {
            const registry_model *rm = &registry_at(r, i)->models[k];
            uint32_t busy = rm->inflight > rm->busy_slots ? rm->inflight : rm->busy_slots;
            put(t, "edgefleet_agent_slots_busy{agent=\"%s\",model=\"%s\"} %u\n",
                esc(registry_at(r, i)->name, a), esc(rm->name, m),
                busy > rm->total_slots ? rm->total_slots : busy);
        }
}

/* One gauge family from each board's latest telemetry sample (telemetry.c), when it has one. */
typedef double (*sample_value)(const Edgefleet__TelemetrySample *s, int *present);

static void sample_family(text *t, coord *c, const char *name, const char *help, sample_value v)
{
    char a[520];
    family(t, name, "gauge", help);
    for (size_t i = 0; i < registry_count(c->registry); i++) {
        const registry_agent *ag = registry_at(c->registry, i);
        const Edgefleet__TelemetrySample *s = telemetry_latest(c, ag->id);
        int present = 1;
        double x = s ? v(s, &present) : 0;
        if (s && present)
            put(t, "%s{agent=\"%s\"} %g\n", name, esc(ag->name, a), x);
    }
}

static double v_gen(const Edgefleet__TelemetrySample *s, int *p) { return (void)p, s->gen_tps; }
static double v_prompt(const Edgefleet__TelemetrySample *s, int *p)
{
    return (void)p, s->prompt_tps;
}
static double v_ttft50(const Edgefleet__TelemetrySample *s, int *p)
{
    *p = s->ttft_count > 0;
    return s->ttft_p50_ms / 1000.0;
}
static double v_ttft95(const Edgefleet__TelemetrySample *s, int *p)
{
    *p = s->ttft_count > 0;
    return s->ttft_p95_ms / 1000.0;
}
static double v_rss(const Edgefleet__TelemetrySample *s, int *p)
{
    return (void)p, (double)s->rss_bytes;
}
static double v_avail(const Edgefleet__TelemetrySample *s, int *p)
{
    *p = s->available_memory_bytes > 0 || s->free_memory_bytes > 0;
    return (double)(s->available_memory_bytes ? s->available_memory_bytes : s->free_memory_bytes);
}
static double v_load(const Edgefleet__TelemetrySample *s, int *p) { return (void)p, s->cpu_load1; }
static double v_busy(const Edgefleet__TelemetrySample *s, int *p) { return (void)p, s->cpu_busy; }
static double v_temp(const Edgefleet__TelemetrySample *s, int *p)
{
    *p = s->has_temperature;
    return s->temperature_c;
}
static double v_rtt(const Edgefleet__TelemetrySample *s, int *p)
{
    *p = s->rtt_ms > 0;
    return s->rtt_ms / 1000.0;
}
static double v_queued(const Edgefleet__TelemetrySample *s, int *p)
{
    return (void)p, (double)s->queued;
}
static double v_uptime(const Edgefleet__TelemetrySample *s, int *p)
{
    return (void)p, (double)s->uptime_ms / 1000.0;
}

static void samples_part(text *t, coord *c)
{
    sample_family(t, c, "edgefleet_agent_generation_tokens_per_second",
                  "Tokens the board generated per second over its last telemetry interval (all "
                  "slots; 0 when idle)",
                  v_gen);
    sample_family(t, c, "edgefleet_agent_prompt_evaluation_tokens_per_second",
                  "Prompt tokens the board evaluated per second over its last interval", v_prompt);
    sample_family(t, c, "edgefleet_agent_ttft_p50_seconds",
                  "Median time to first token on the board over its last interval", v_ttft50);
    sample_family(t, c, "edgefleet_agent_ttft_p95_seconds",
                  "95th percentile time to first token on the board over its last interval",
                  v_ttft95);
    sample_family(t, c, "edgefleet_agent_queued_requests",
                  "Requests the board accepted that wait for its inference thread", v_queued);
    sample_family(t, c, "edgefleet_agent_resident_memory_bytes", "The agent process's RSS", v_rss);
    sample_family(t, c, "edgefleet_agent_available_memory_bytes", "Memory available on the board",
                  v_avail);
    sample_family(t, c, "edgefleet_agent_load1", "The board's 1-minute load average", v_load);
    sample_family(t, c, "edgefleet_agent_cpu_busy_ratio",
                  "Fraction of the board's CPU time not idle over the last interval", v_busy);
    sample_family(t, c, "edgefleet_agent_temperature_celsius",
                  "Hottest thermal zone of the board (absent when it has none)", v_temp);
    sample_family(t, c, "edgefleet_agent_link_rtt_seconds",
                  "Round-trip time of the board's link to the coordinator", v_rtt);
    sample_family(t, c, "edgefleet_agent_uptime_seconds", "Seconds the agent process has run",
                  v_uptime);
}

static void queues_part(text *t, coord *c)
{
    char m[520];
    size_t nq = scheduler_queue_count(c->scheduler);
    family(t, "edgefleet_queue_requests", "gauge", "Requests waiting in the coordinator's queue");
    for (size_t i = 0; i < nq; i++) {
        uint32_t queued = 0;
        const char *model = scheduler_queue_at(c->scheduler, i, &queued);
        put(t, "edgefleet_queue_requests{model=\"%s\"} %u\n", esc(model, m), queued);
    }
    family(t, "edgefleet_queue_capacity", "gauge", "Requests a model's queue holds at most");
    put(t, "edgefleet_queue_capacity %u\n", scheduler_queue_capacity(c->scheduler));
}

static void hist(text *t, const char *name, const char *model, const metrics_hist *h)
{
    char m[520];
    esc(model, m);
    uint64_t cum = 0;
    for (size_t b = 0; b < METRICS_BUCKETS; b++) {
        cum += h->counts[b];
        put(t, "%s_bucket{model=\"%s\",le=\"%g\"} %llu\n", name, m, metrics_bucket_bounds[b],
            (unsigned long long)cum);
    }
    put(t, "%s_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", name, m, (unsigned long long)h->count);
    put(t, "%s_sum{model=\"%s\"} %.6f\n", name, m, h->sum);
    put(t, "%s_count{model=\"%s\"} %llu\n", name, m, (unsigned long long)h->count);
}

static void requests_part(text *t, coord *c)
{
    static const char *outcomes[METRICS_OUTCOMES] = {"done", "cancelled", "busy", "failed"};
    size_t n = metrics_count(c->metrics);
    char m[520];
    family(t, "edgefleet_requests_total", "counter", "Requests that ended, by outcome");
    for (size_t i = 0; i < n; i++)
        for (int o = 0; o < METRICS_OUTCOMES; o++)
            put(t, "edgefleet_requests_total{model=\"%s\",outcome=\"%s\"} %llu\n",
                esc(metrics_at(c->metrics, i)->model, m), outcomes[o],
                (unsigned long long)metrics_at(c->metrics, i)->requests[o]);
    family(t, "edgefleet_completion_tokens_total", "counter", "Tokens relayed to clients");
    for (size_t i = 0; i < n; i++)
        put(t, "edgefleet_completion_tokens_total{model=\"%s\"} %llu\n",
            esc(metrics_at(c->metrics, i)->model, m),
            (unsigned long long)metrics_at(c->metrics, i)->tokens);
    family(t, "edgefleet_resumes_total", "counter",
           "Streams moved to another board after theirs was lost");
    for (size_t i = 0; i < n; i++)
        put(t, "edgefleet_resumes_total{model=\"%s\"} %llu\n",
            esc(metrics_at(c->metrics, i)->model, m),
            (unsigned long long)metrics_at(c->metrics, i)->resumes);
    family(t, "edgefleet_time_to_first_token_seconds", "histogram",
           "From a request's arrival at the coordinator to its first token relayed");
    for (size_t i = 0; i < n; i++)
        hist(t, "edgefleet_time_to_first_token_seconds", metrics_at(c->metrics, i)->model,
             &metrics_at(c->metrics, i)->ttft);
    family(t, "edgefleet_request_duration_seconds", "histogram",
           "From a request's arrival to its end, for answered requests");
    for (size_t i = 0; i < n; i++)
        hist(t, "edgefleet_request_duration_seconds", metrics_at(c->metrics, i)->model,
             &metrics_at(c->metrics, i)->duration);
}

int gw_on_metrics(void *user, h2o_req_t *req)
{
    gateway *g = user;
    if (!http_path_is(req, "/metrics"))
        return gw_on_other(g, req);
    char user_id[REGISTRY_KEY_MAX];
    if (gw_auth(g, req, user_id) != 0)
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        openai_error e;
        openai_error_set(&e, 405, "invalid_request_error", NULL, "method_not_allowed",
                         "/metrics takes GET");
        gw_reply_error(req, &e, 0, "GET");
        return 0;
    }
    text t = {0};
    family(&t, "edgefleet_build_info", "gauge", "The coordinator's version");
    put(&t, "edgefleet_build_info{version=\"%d.%d.%d\"} 1\n", EF_VERSION_MAJOR, EF_VERSION_MINOR,
        EF_VERSION_PATCH);
    agents_part(&t, g->c);
    samples_part(&t, g->c);
    queues_part(&t, g->c);
    requests_part(&t, g->c);
    family(&t, "edgefleet_http_connections", "gauge", "Open connections to the HTTP listener");
    put(&t, "edgefleet_http_connections %u\n", http_server_conns(g->http));
    family(&t, "edgefleet_http_streams", "gauge", "Completion requests open on the gateway");
    put(&t, "edgefleet_http_streams %u\n", g->n_active);
    if (t.failed) {
        openai_error e;
        openai_error_from_fleet(EF_ENOMEM, "coordinator out of memory", &e);
        gw_reply_error(req, &e, 0, NULL);
    } else {
        http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", t.s ? t.s : "", t.len,
                   NULL);
    }
    free(t.s);
    return 0;
}
