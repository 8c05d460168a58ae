/* bench_makespan: the scheduler's makespan on a simulated heterogeneous fleet (per-slot speeds
 * 1x, 2x, 4x; several simulated agents of each) for a workload of equal requests, against the
 * ideal capacity-proportional split (a lower bound: total tokens / total capacity) and against
 * plain round robin, all computed in the same run. Everything is simulated: fake clock, no model.
 */
#include "sim_fleet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define BASE_TPS 10.0 /* tokens/s per slot of a "1x" simulated agent */

typedef struct {
    const char *label;
    uint32_t per_speed; /* simulated agents of each speed class */
    uint32_t slots;     /* slots per simulated agent */
    uint32_t requests;
    uint32_t tokens; /* per request */
    bool report_speed;
} scenario;

static size_t make_fleet(const scenario *sc, sim_agent_spec *spec)
{
    static const double mult[] = {1, 2, 4};
    size_t n = 0;
    for (uint32_t k = 0; k < sc->per_speed; k++) /* interleaved, so ids don't sort by speed */
        for (int c = 0; c < 3; c++)
            spec[n++] = (sim_agent_spec){
                .speed = BASE_TPS * mult[c], .slots = sc->slots, .report_speed = sc->report_speed};
    return n;
}

/* Round robin: request i goes to agent i mod n up front; each agent runs its share through its
 * slots; the fleet finishes when the slowest share does. */
static double round_robin_s(const sim_agent_spec *spec, size_t n, const scenario *sc)
{
    double worst = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t count = sc->requests / n + (k < sc->requests % n ? 1 : 0);
        uint32_t waves = (count + spec[k].slots - 1) / spec[k].slots;
        double s = waves * ceil(1000.0 * sc->tokens / spec[k].speed) / 1000.0;
        if (s > worst)
            worst = s;
    }
    return worst;
}

/* The best any scheduler can do with whole requests: the least T at which the slots, each
 * running requests back to back, fit them all (binary search over T in simulated ms). */
static double whole_request_bound_s(const sim_agent_spec *spec, size_t n, const scenario *sc)
{
    uint64_t lo = 0, hi = UINT64_C(1) << 40;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, fit = 0;
        for (size_t k = 0; k < n; k++)
            fit += spec[k].slots * (mid / (uint64_t)ceil(1000.0 * sc->tokens / spec[k].speed));
        if (fit >= sc->requests)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo / 1000.0;
}

static int run(const scenario *sc)
{
    sim_agent_spec spec[3 * 64];
    size_t n = make_fleet(sc, spec);
    double capacity = 0;
    for (size_t k = 0; k < n; k++)
        capacity += spec[k].slots * spec[k].speed;
    double ideal = (double)sc->requests * sc->tokens / capacity;
    sim_fleet *f = sim_fleet_new(spec, n, NULL);
    if (!f)
        return -1;
    for (uint32_t i = 0; i < sc->requests; i++)
        if (sim_fleet_submit(f, sc->tokens) != 0) {
            sim_fleet_destroy(&f);
            return -1;
        }
    int rc = sim_fleet_run(f);
    double ours = sim_fleet_now_ms(f) / 1000.0;
    double rr = round_robin_s(spec, n, sc);
    printf("%-32s %3zu %6u x %-4u %8.1f %8.1f %8.1f %6.3f %8.1f %6.3f%s\n", sc->label, n,
           sc->requests, sc->tokens, ideal, whole_request_bound_s(spec, n, sc), ours, ours / ideal,
           rr, rr / ideal, rc == 0 && ours <= 1.1 * ideal ? "" : "  <- above 1.1 x ideal");
    sim_fleet_destroy(&f);
    return rc;
}

int main(void)
{
    static const scenario scenarios[] = {
        {"simulated 1x/2x/4x, 2 slots", 4, 2, 2000, 128, true},
        {"simulated 1x/2x/4x, 4 slots", 8, 4, 10000, 128, true},
        {"simulated 1x/2x/4x, 1 slot", 16, 1, 5000, 64, true},
        {"simulated, speeds not reported", 4, 2, 2000, 128, false},
        {"simulated, short workload", 4, 2, 200, 128, true},
    };
    printf("bench_makespan (simulated fleet, fake clock; 1x = %.0f tokens/s per slot)\n", BASE_TPS);
    printf("%-32s %3s %6s x %-4s %8s %8s %8s %6s %8s %6s\n", "scenario", "n", "reqs", "tok",
           "ideal_s", "whole_s", "sched_s", "ratio", "rr_s", "ratio");
    int rc = 0;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        rc |= run(&scenarios[i]);
    printf("ratio = makespan / ideal capacity-proportional split (fluid lower bound); target "
           "<= 1.1\nwhole_s = best possible with whole requests (no scheduler can beat it)\n");
    return rc == 0 ? 0 : 1;
}
