/* Implementation of ctl_json.h. */
#include "ctl_json.h"

#include <stdio.h>
#include <stdlib.h>

void ctl_hex(const uint8_t *b, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 3 <= cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%02x", b[i]);
    if (cap)
        out[n < cap ? n : cap - 1] = '\0';
}

static void add_sha(cJSON *o, const ProtobufCBinaryData *sha)
{
    char hex[65];
    ctl_hex(sha->data, sha->len > 32 ? 32 : sha->len, hex, sizeof hex);
    cJSON_AddStringToObject(o, "sha256", hex);
}

cJSON *ctl_json_sample(const Edgefleet__TelemetrySample *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "agent", s->agent_name ? s->agent_name : "");
    cJSON_AddNumberToObject(o, "unix_ms", (double)s->unix_ms);
    cJSON_AddNumberToObject(o, "received_unix_ms", (double)s->received_unix_ms);
    cJSON_AddNumberToObject(o, "interval_ms", s->interval_ms);
    cJSON_AddNumberToObject(o, "prompt_tps", s->prompt_tps);
    cJSON_AddNumberToObject(o, "gen_tps", s->gen_tps);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)s->prompt_tokens);
    cJSON_AddNumberToObject(o, "gen_tokens", (double)s->gen_tokens);
    cJSON_AddNumberToObject(o, "ttft_p50_ms", s->ttft_p50_ms);
    cJSON_AddNumberToObject(o, "ttft_p95_ms", s->ttft_p95_ms);
    cJSON_AddNumberToObject(o, "ttft_count", s->ttft_count);
    cJSON_AddNumberToObject(o, "finished", s->finished);
    cJSON_AddNumberToObject(o, "failed", s->failed);
    cJSON_AddNumberToObject(o, "busy_slots", s->busy_slots);
    cJSON_AddNumberToObject(o, "total_slots", s->total_slots);
    cJSON_AddNumberToObject(o, "queued", s->queued);
    cJSON_AddNumberToObject(o, "rss_bytes", (double)s->rss_bytes);
    cJSON_AddNumberToObject(o, "free_memory_bytes", (double)s->free_memory_bytes);
    cJSON_AddNumberToObject(o, "available_memory_bytes", (double)s->available_memory_bytes);
    cJSON_AddNumberToObject(o, "cpu_load1", s->cpu_load1);
    cJSON_AddNumberToObject(o, "cpu_busy", s->cpu_busy);
    if (s->has_temperature)
        cJSON_AddNumberToObject(o, "temperature_c", s->temperature_c);
    else
        cJSON_AddNullToObject(o, "temperature_c");
    cJSON_AddNumberToObject(o, "uptime_ms", (double)s->uptime_ms);
    cJSON_AddBoolToObject(o, "draining", s->draining);
    cJSON_AddBoolToObject(o, "simulated", s->simulated);
    cJSON_AddNumberToObject(o, "rtt_ms", s->rtt_ms);
    cJSON_AddNumberToObject(o, "routed", (double)s->routed);
    cJSON_AddNumberToObject(o, "resumed", (double)s->resumed);
    if (s->agents)
        cJSON_AddNumberToObject(o, "agents", s->agents);
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    for (size_t i = 0; models && i < s->n_models; i++) {
        const Edgefleet__ModelTelemetry *m = s->models[i];
        cJSON *j = cJSON_CreateObject();
        if (!j)
            break;
        cJSON_AddStringToObject(j, "model", m->model ? m->model : "");
        cJSON_AddNumberToObject(j, "busy_slots", m->busy_slots);
        cJSON_AddNumberToObject(j, "total_slots", m->total_slots);
        cJSON_AddNumberToObject(j, "queued", m->queued);
        add_sha(j, &m->sha256);
        cJSON_AddItemToArray(models, j);
    }
    return o;
}

static cJSON *json_agent(const Edgefleet__AgentStatus *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "agent", a->agent_name ? a->agent_name : "");
    cJSON_AddStringToObject(o, "hostname", a->hostname ? a->hostname : "");
    cJSON_AddStringToObject(o, "state",
                            a->draining    ? "draining"
                            : a->simulated ? "simulated"
                                           : "ready");
    cJSON_AddNumberToObject(o, "gen_tps", a->gen_tps);
    cJSON_AddNumberToObject(o, "prompt_tps", a->prompt_tps);
    cJSON_AddNumberToObject(o, "last_seen_ms_ago", (double)a->last_seen_ms_ago);
    cJSON_AddNumberToObject(o, "served", (double)a->served);
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    for (size_t m = 0; models && m < a->n_models; m++) {
        cJSON *j = cJSON_CreateObject();
        if (!j)
            break;
        cJSON_AddStringToObject(j, "model", a->models[m]->model ? a->models[m]->model : "");
        cJSON_AddNumberToObject(j, "busy_slots", a->models[m]->busy_slots);
        cJSON_AddNumberToObject(j, "total_slots", a->models[m]->total_slots);
        cJSON_AddItemToArray(models, j);
    }
    return o;
}

cJSON *ctl_json_status(const Edgefleet__FleetStatus *fs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *agents = o ? cJSON_AddArrayToObject(o, "agents") : NULL;
    cJSON *queues = o ? cJSON_AddArrayToObject(o, "queues") : NULL;
    if (!agents || !queues) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; fs && i < fs->n_agents; i++)
        cJSON_AddItemToArray(agents, json_agent(fs->agents[i]));
    for (size_t i = 0; fs && i < fs->n_queues; i++) {
        cJSON *q = cJSON_CreateObject();
        if (!q)
            break;
        cJSON_AddStringToObject(q, "model", fs->queues[i]->model ? fs->queues[i]->model : "");
        cJSON_AddNumberToObject(q, "queued", fs->queues[i]->queued);
        cJSON_AddNumberToObject(q, "capacity", fs->queues[i]->capacity);
        cJSON_AddItemToArray(queues, q);
    }
    return o;
}

cJSON *ctl_json_models(const Edgefleet__OperatorReply *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *models = o ? cJSON_AddArrayToObject(o, "models") : NULL;
    if (!models) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < r->n_models; i++) {
        const Edgefleet__ModelSummary *m = r->models[i];
        cJSON *j = cJSON_CreateObject();
        if (!j)
            break;
        cJSON_AddStringToObject(j, "model", m->name ? m->name : "");
        cJSON_AddNumberToObject(j, "agents", m->agents);
        cJSON_AddNumberToObject(j, "busy_slots", m->busy_slots);
        cJSON_AddNumberToObject(j, "total_slots", m->total_slots);
        cJSON_AddNumberToObject(j, "queued", m->queued);
        add_sha(j, &m->sha256);
        cJSON_AddItemToArray(models, j);
    }
    return o;
}

int ctl_json_print(cJSON *j, int pretty)
{
    if (!j)
        return -1;
    char *text = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text)
        return -1;
    int rc = printf("%s\n", text) < 0 ? -1 : 0;
    fflush(stdout);
    free(text);
    return rc;
}
