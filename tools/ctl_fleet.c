/* edgefleetctl status, agents, models, evict: the fleet as the coordinator sees it. status and
 * agents join the registry's view (STATUS) with each board's latest telemetry sample
 * (TELEMETRY_HISTORY, last 1), so tokens/s is the last interval's, 0 on an idle board. status,
 * agents and evict need an operator key; models is answered for client keys too. */
#include "ctl.h"
#include "ctl_args.h"
#include "ctl_json.h"
#include "ctl_link.h"

#include <string.h>

static int fleet_usage(FILE *out, const char *cmd)
{
    const char *what = strcmp(cmd, "evict") == 0 ? " AGENT" : "";
    fprintf(out, "usage: edgefleetctl %s%s [options]\n" CTL_CONNECT_USAGE, cmd, what);
    return CTL_BAD_ARG;
}

int ctl_status_parse(int argc, char **argv, ctl_connect_opts *co)
{
    return ctl_connect_parse(argc, argv, "h", 0, argv[0], co, fleet_usage);
}

/* One command's reply over a fresh link: CTL_OK with *reply, or the exit code. */
static int ask(const ctl_connect_opts *co, const char *cmd, Edgefleet__CommandKind kind,
               const char *agent, uint32_t last, envelope **reply)
{
    ctl_link *l = NULL;
    int rc = ctl_link_open(co, cmd, 0, NULL, &l);
    if (rc == CTL_OK)
        rc = ctl_link_command(l, kind, agent, last, reply);
    ctl_link_close(&l);
    if (rc == CTL_OK && (rc = ctl_reply_failure(cmd, (*reply)->reply)) != CTL_OK)
        codec_free(reply);
    return rc;
}

static const Edgefleet__TelemetrySample *latest_of(const Edgefleet__OperatorReply *h,
                                                   const char *agent)
{
    const Edgefleet__TelemetrySample *found = NULL;
    for (size_t i = 0; h && i < h->n_samples; i++)
        if (h->samples[i]->agent_name && strcmp(h->samples[i]->agent_name, agent) == 0)
            found = h->samples[i];
    return found;
}

static void print_agents(const Edgefleet__FleetStatus *fs, const Edgefleet__OperatorReply *h)
{
    printf("%-16s %-9s %-20s %7s %8s %15s %6s %6s %7s\n", "AGENT", "STATE", "MODELS", "SLOTS",
           "TOK/S", "TTFT p50/p95 ms", "QUEUE", "TEMP", "SEEN");
    for (size_t i = 0; i < fs->n_agents; i++) {
        const Edgefleet__AgentStatus *a = fs->agents[i];
        const Edgefleet__TelemetrySample *s = latest_of(h, a->agent_name);
        char models[64] = "", slots[24], ttft[32] = "-", temp[16] = "-", tps[16] = "-";
        uint32_t busy = 0, total = 0;
        for (size_t m = 0; m < a->n_models; m++) {
            size_t n = strlen(models);
            snprintf(models + n, sizeof models - n, "%s%s", m ? "," : "", a->models[m]->model);
            busy += a->models[m]->busy_slots;
            total += a->models[m]->total_slots;
        }
        snprintf(slots, sizeof slots, "%u/%u", busy, total);
        if (s) {
            snprintf(tps, sizeof tps, "%.1f", s->gen_tps);
            if (s->ttft_count)
                snprintf(ttft, sizeof ttft, "%.0f/%.0f", s->ttft_p50_ms, s->ttft_p95_ms);
            if (s->has_temperature)
                snprintf(temp, sizeof temp, "%.0fC", s->temperature_c);
        }
        printf("%-16.16s %-9s %-20.20s %7s %8s %15s %6u %6s %6.1fs\n", a->agent_name,
               a->draining    ? "draining"
               : a->simulated ? "simulated"
                              : "ready",
               models, slots, tps, ttft, s ? s->queued : 0, temp, a->last_seen_ms_ago / 1000.0);
    }
    if (fs->n_agents == 0)
        printf("(no agents registered)\n");
}

static void print_status(const Edgefleet__FleetStatus *fs, const Edgefleet__OperatorReply *h)
{
    uint32_t busy = 0, total = 0, draining = 0;
    double tps = 0;
    for (size_t i = 0; i < fs->n_agents; i++) {
        const Edgefleet__AgentStatus *a = fs->agents[i];
        const Edgefleet__TelemetrySample *s = latest_of(h, a->agent_name);
        draining += a->draining;
        tps += s ? s->gen_tps : 0;
        for (size_t m = 0; m < a->n_models; m++) {
            busy += a->models[m]->busy_slots;
            total += a->models[m]->total_slots;
        }
    }
    printf("agents %zu (%u draining), slots %u/%u busy, %.1f tokens/s\n", fs->n_agents, draining,
           busy, total, tps);
    printf("\n%-24s %8s %8s\n", "QUEUE (MODEL)", "WAITING", "CAPACITY");
    for (size_t i = 0; i < fs->n_queues; i++)
        printf("%-24s %8u %8u\n", fs->queues[i]->model, fs->queues[i]->queued,
               fs->queues[i]->capacity);
    if (fs->n_queues == 0)
        printf("(no queues yet)\n");
    printf("\n");
    print_agents(fs, h);
}

/* status and agents: STATUS joined with the latest samples. */
static int run_view(int argc, char **argv, int agents_only)
{
    ctl_connect_opts co;
    int rc = ctl_status_parse(argc, argv, &co);
    if (rc >= 0)
        return rc;
    envelope *st = NULL, *h = NULL;
    rc = ask(&co, argv[0], EDGEFLEET__COMMAND_KIND__COMMAND_STATUS, NULL, 0, &st);
    if (rc == CTL_OK)
        rc = ask(&co, argv[0], EDGEFLEET__COMMAND_KIND__COMMAND_TELEMETRY_HISTORY, "", 1, &h);
    if (rc != CTL_OK) {
        codec_free(&st);
        return rc;
    }
    const Edgefleet__FleetStatus *fs = st->reply->status;
    Edgefleet__FleetStatus empty = EDGEFLEET__FLEET_STATUS__INIT;
    if (!fs)
        fs = &empty;
    if (co.json) {
        cJSON *j = ctl_json_status(fs);
        cJSON *agents = j ? cJSON_GetObjectItem(j, "agents") : NULL;
        for (int i = 0; agents && i < cJSON_GetArraySize(agents); i++) {
            cJSON *a = cJSON_GetArrayItem(agents, i);
            const Edgefleet__TelemetrySample *s = latest_of(h->reply, fs->agents[i]->agent_name);
            cJSON_AddItemToObject(a, "telemetry", s ? ctl_json_sample(s) : cJSON_CreateNull());
        }
        if (agents_only && j) {
            cJSON *only = cJSON_DetachItemFromObject(j, "agents");
            cJSON_Delete(j);
            j = only;
        }
        rc = ctl_json_print(j, 0) == 0 ? CTL_OK : CTL_FAILED;
    } else if (agents_only) {
        print_agents(fs, h->reply);
    } else {
        print_status(fs, h->reply);
    }
    codec_free(&st);
    codec_free(&h);
    return rc;
}

int ctl_status(int argc, char **argv) { return run_view(argc, argv, 0); }
int ctl_agents(int argc, char **argv) { return run_view(argc, argv, 1); }

int ctl_models(int argc, char **argv)
{
    ctl_connect_opts co;
    int rc = ctl_status_parse(argc, argv, &co);
    if (rc >= 0)
        return rc;
    envelope *r = NULL;
    rc = ask(&co, "models", EDGEFLEET__COMMAND_KIND__COMMAND_MODELS, NULL, 0, &r);
    if (rc != CTL_OK)
        return rc;
    if (co.json) {
        rc = ctl_json_print(ctl_json_models(r->reply), 0) == 0 ? CTL_OK : CTL_FAILED;
    } else {
        printf("%-24s %6s %9s %6s  %s\n", "MODEL", "AGENTS", "SLOTS", "QUEUE", "SHA256");
        for (size_t i = 0; i < r->reply->n_models; i++) {
            const Edgefleet__ModelSummary *m = r->reply->models[i];
            char slots[24], hex[65];
            snprintf(slots, sizeof slots, "%u/%u", m->busy_slots, m->total_slots);
            ctl_hex(m->sha256.data, m->sha256.len > 32 ? 32 : m->sha256.len, hex, sizeof hex);
            printf("%-24s %6u %9s %6u  %.16s\n", m->name, m->agents, slots, m->queued, hex);
        }
        if (r->reply->n_models == 0)
            printf("(no models: no agent registered)\n");
    }
    codec_free(&r);
    return rc;
}

int ctl_evict(int argc, char **argv)
{
    ctl_connect_opts co;
    int rc = ctl_connect_parse(argc, argv, "h", 1, "evict", &co, fleet_usage);
    if (rc >= 0)
        return rc;
    const char *agent = argv[optind];
    envelope *r = NULL;
    rc = ask(&co, "evict", EDGEFLEET__COMMAND_KIND__COMMAND_EVICT, agent, 0, &r);
    if (rc != CTL_OK)
        return rc;
    if (co.json) {
        cJSON *j = cJSON_CreateObject();
        if (j) {
            cJSON_AddStringToObject(j, "agent", agent);
            cJSON_AddStringToObject(j, "result", "evicted");
        }
        rc = ctl_json_print(j, 0) == 0 ? CTL_OK : CTL_FAILED;
    } else {
        printf("agent %s %s\n", agent, r->reply->message ? r->reply->message : "evicted");
    }
    codec_free(&r);
    return rc;
}
