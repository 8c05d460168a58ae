/* The telemetry endpoint: a CURVE PUB (ZAP domain "telemetry", the clients' and operators'
 * keys) republishing one TelemetrySample per agent heartbeat under the topic
 * "telemetry.<agent name>", so a dashboard subscribes to one board or to all. Loop thread. */
#include "clock.h"
#include "coord.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

void telemetry_publish(coord *c, const registry_agent *a, const Edgefleet__Heartbeat *hb)
{
    Edgefleet__TelemetrySample t = EDGEFLEET__TELEMETRY_SAMPLE__INIT;
    t.agent_name = (char *)a->name;
    t.unix_ms = clock_unix_ms();
    t.prompt_tps = hb->prompt_tps;
    t.gen_tps = hb->gen_tps;
    for (size_t i = 0; i < hb->n_models; i++) {
        t.busy_slots += hb->models[i]->busy_slots;
        t.total_slots += hb->models[i]->total_slots;
    }
    t.rss_bytes = hb->rss_bytes;
    t.simulated = a->simulated;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_TELEMETRY;
    env.telemetry = &t;
    char topic[16 + REGISTRY_NAME_MAX];
    int n = snprintf(topic, sizeof topic, "telemetry.%s", a->name);
    int rc = tsock_send_env(c->telemetry, topic, (size_t)n, &env);
    if (rc && rc != EF_EBUSY) /* a slow subscriber only loses samples */
        log_warn("telemetry for agent %s: %s", a->name, ef_strerror(rc));
}

int telemetry_open(coord *c, ef_errmsg *em)
{
    /* Its allowlists are registered with the client endpoint's (frontend_open). */
    tsock_params p = {.type = ZMQ_PUB,
                      .endpoint = c->cfg.telemetry_endpoint,
                      .bind = 1,
                      .keys = &c->keys,
                      .zap_domain = "telemetry",
                      .user = c};
    c->telemetry = tsock_new(c->transport, &p, em);
    return c->telemetry ? 0 : EF_EZMQ;
}
