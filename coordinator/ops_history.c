/* COMMAND_TELEMETRY_HISTORY: the rolling window of one device's samples, or of every device's,
 * oldest first per device, so `edgefleetctl top` starts with the last minutes instead of a blank
 * screen. The reply stays under the client link's frame limit: past OPS_HISTORY_BYTES the
 * oldest samples of the remaining agents are left out and the message says so. Loop thread. */
#include "coord.h"
#include "ops.h"

#include <stdlib.h>

#define OPS_HISTORY_BYTES (3u << 20)

typedef struct {
    Edgefleet__TelemetrySample **v;
    size_t n, cap;
    size_t bytes;
    int truncated;
} history;

static int take(const uint8_t *packed, size_t len, uint64_t arrived_ms, void *user)
{
    (void)arrived_ms;
    history *h = user;
    if (h->bytes + len + 8 > OPS_HISTORY_BYTES) {
        h->truncated = 1;
        return 1;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        Edgefleet__TelemetrySample **v = realloc(h->v, cap * sizeof *v);
        if (!v) {
            h->truncated = 1;
            return 1;
        }
        h->v = v;
        h->cap = cap;
    }
    Edgefleet__TelemetrySample *s = edgefleet__telemetry_sample__unpack(NULL, len, packed);
    if (!s)
        return 0; /* kept only after it decoded once: cannot happen, skip it */
    h->v[h->n++] = s;
    h->bytes += len + 8;
    return 0;
}

void ops_history(coord *c, Edgefleet__OperatorReply *r, const char *agent, uint32_t last,
                 const coord_client *client)
{
    history h = {0};
    size_t seen = telemetry_window_each(c, agent && *agent ? agent : NULL, last, take, &h);
    if (agent && *agent && seen == 0 && registry_find_name(c->registry, agent) == AGENT_ID_NONE) {
        r->code = EF_ENOENT;
        r->message = "no such agent";
    } else {
        r->samples = h.v;
        r->n_samples = h.n;
        r->message = h.truncated ? "truncated: the oldest samples are left out" : "";
    }
    ops_send_reply(c, client, r);
    for (size_t i = 0; i < h.n; i++)
        edgefleet__telemetry_sample__free_unpacked(h.v[i], NULL);
    free(h.v);
}
