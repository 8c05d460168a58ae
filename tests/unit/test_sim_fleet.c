/* Simulated fleet: 200 simulated agents with mixed speeds and slot counts, driven by a fake clock
 * (each request ends after tokens / speed simulated seconds). Every submitted request completes,
 * and each simulated agent's share of the work matches its share of capacity (slots x speed). */
#include "sim_fleet.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SIM_AGENTS   200
#define SIM_REQUESTS 30000

static uint32_t lcg(uint32_t *s) /* deterministic: the same simulated fleet every run */
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void make_fleet(sim_agent_spec *spec, size_t n, uint32_t seed, bool all_measured)
{
    static const double speeds[] = {5, 10, 20, 40};
    static const uint32_t slots[] = {1, 2, 4};
    for (size_t i = 0; i < n; i++) {
        spec[i].speed = speeds[lcg(&seed) % 4];
        spec[i].slots = slots[lcg(&seed) % 3];
        /* Some simulated boards never report a speed: they get the fleet median as weight. */
        spec[i].report_speed = all_measured || lcg(&seed) % 8 != 0;
    }
}

/* Runs the simulated fleet to completion and checks the books and the shares. */
static void run_and_check_shares(bool all_measured)
{
    sim_agent_spec spec[SIM_AGENTS];
    make_fleet(spec, SIM_AGENTS, 42, all_measured);
    sim_fleet *f = sim_fleet_new(spec, SIM_AGENTS, NULL);
    assert_non_null(f);
    uint32_t seed = 7;
    uint64_t total_tokens = 0;
    for (int i = 0; i < SIM_REQUESTS; i++) {
        uint32_t tokens = 50 + lcg(&seed) % 101; /* 50..150 */
        total_tokens += tokens;
        assert_int_equal(sim_fleet_submit(f, tokens), 0);
    }
    assert_int_equal(sim_fleet_run(f), 0);
    assert_int_equal(sim_fleet_completed(f), SIM_REQUESTS);
    double capacity = 0;
    for (size_t i = 0; i < SIM_AGENTS; i++)
        capacity += spec[i].slots * spec[i].speed;
    uint64_t tokens_done = 0;
    double worst = 0;
    for (size_t i = 0; i < SIM_AGENTS; i++) {
        double share = spec[i].slots * spec[i].speed / capacity;
        double expected = share * (double)total_tokens;
        double got = (double)sim_fleet_agent_tokens(f, i);
        tokens_done += sim_fleet_agent_tokens(f, i);
        /* Within 15% of its capacity share, plus a couple of requests for granularity: the
         * slowest simulated agents do only a few dozen requests. */
        double tolerance = 0.15 * expected + 2 * 150;
        if (got < expected - tolerance || got > expected + tolerance)
            fail_msg("simulated-%zu (%u slots x %.0f tok/s): %.0f tokens, expected %.0f +- %.0f", i,
                     spec[i].slots, spec[i].speed, got, expected, tolerance);
        double dev = (got - expected) / expected;
        if (dev < 0)
            dev = -dev;
        if (dev > worst)
            worst = dev;
    }
    assert_int_equal(tokens_done, total_tokens);
    printf("simulated fleet: %d agents, %d requests, makespan %.1f s, ideal %.1f s, worst "
           "share deviation %.1f%%\n",
           SIM_AGENTS, SIM_REQUESTS, sim_fleet_now_ms(f) / 1000.0, (double)total_tokens / capacity,
           100 * worst);
    sim_fleet_destroy(&f);
}

static void test_simulated_fleet_work_follows_capacity_and_all_completes(void **state)
{
    run_and_check_shares(true);
}

static void test_simulated_fleet_with_unmeasured_agents_still_follows_capacity(void **state)
{
    run_and_check_shares(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simulated_fleet_work_follows_capacity_and_all_completes),
        cmocka_unit_test(test_simulated_fleet_with_unmeasured_agents_still_follows_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
