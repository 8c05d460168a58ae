/* registry_pick against a walk over the whole table: 10,000 agents serving three models (some
 * several, some with no speed measured, some with no slots), through a random mix of what the
 * daemon does - heartbeats that change slots, speeds and drain, credits taken (on the pick's
 * own answer, as the scheduler does) and returned, operator drains, removals, restarts with
 * other models, silence and sweeps - must give exactly the agent, model index and score the
 * walk gives, and the per-model iteration exactly the agents that declare the model. */
#include "registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define T0          1000000u
#define N_AGENTS    10000u
#define N_MODELS    3
#define N_OPS       30000u
#define CHECK_EVERY 25u

static const char *const model_names[N_MODELS] = {"m0", "m1", "m2"};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13; /* xorshift64: deterministic, so a failure replays */
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Registers board i with a random set of models (1..3, slots 0..4) as process `boot` on link
 * `link` (the same boot on a new link keeps its entry). */
static agent_id_t add_on(registry_t *reg, uint32_t i, uint8_t boot, uint32_t link, uint64_t now)
{
    char name[32], key[48], rid[48];
    snprintf(name, sizeof name, "b-%u", i);
    snprintf(key, sizeof key, "agents/b-%u", i);
    snprintf(rid, sizeof rid, "r-%u-%u-%u", i, boot, link);
    registry_model_decl m[N_MODELS];
    size_t n = 0;
    uint32_t first = rnd(N_MODELS), count = 1 + rnd(N_MODELS);
    for (uint32_t k = 0; k < count; k++)
        m[n++] =
            (registry_model_decl){.name = model_names[(first + k) % N_MODELS], .n_slots = rnd(5)};
    uint8_t boot_id[REGISTRY_BOOT_ID_LEN] = {boot, 1};
    registry_registration r = {.name = name,
                               .key_id = key,
                               .boot_id = boot_id,
                               .routing_id = (const uint8_t *)rid,
                               .routing_id_len = strlen(rid),
                               .models = m,
                               .n_models = n};
    agent_id_t id = AGENT_ID_NONE, gone = AGENT_ID_NONE;
    ef_errmsg em = {{0}};
    int rc = registry_register(reg, &r, now, &id, &gone, &em);
    if (rc != 0)
        fail_msg("register b-%u: %s", i, em.msg);
    return id;
}

static agent_id_t add(registry_t *reg, uint32_t i, uint8_t boot, uint64_t now)
{
    return add_on(reg, i, boot, 0, now);
}

static void heartbeat(registry_t *reg, agent_id_t id, uint64_t now)
{
    const registry_agent *a = registry_get(reg, id);
    registry_model_load loads[REGISTRY_MODELS_MAX];
    for (size_t k = 0; k < a->n_models; k++)
        loads[k] = (registry_model_load){
            .model = a->models[k].name, .busy_slots = 0, .total_slots = rnd(6)};
    registry_load load = {.models = loads,
                          .n_models = a->n_models,
                          .gen_tps = rnd(3) == 0 ? 0 : 5.0 + rnd(100) / 7.0,
                          .draining = rnd(20) == 0};
    assert_int_equal(registry_heartbeat(reg, id, &load, now), 0);
}

/* The whole-table answer: what registry_pick must say. */
static registry_pick_result walk(registry_t *reg, const char *model, uint64_t now, double fb)
{
    registry_pick_result best = {.agent = AGENT_ID_NONE, .mi = -1};
    for (size_t i = 0; i < registry_count(reg); i++) {
        const registry_agent *a = registry_at(reg, i);
        int mi = registry_model_index(a, model);
        if (mi < 0 || registry_agent_draining(a) || !registry_agent_live(reg, a, now) ||
            registry_free_slots(a, (size_t)mi) == 0)
            continue;
        double score = registry_load_score(a, (size_t)mi, fb);
        if (best.agent == AGENT_ID_NONE || score < best.score ||
            (score == best.score && a->id < best.agent))
            best = (registry_pick_result){.agent = a->id, .mi = mi, .score = score};
    }
    return best;
}

static void check(registry_t *reg, uint64_t now, double fb)
{
    for (int m = 0; m <= N_MODELS; m++) {
        const char *model = m < N_MODELS ? model_names[m] : "nobody-serves-this";
        registry_pick_result want = walk(reg, model, now, fb), got;
        bool found = registry_pick(reg, model, now, fb, &got);
        assert_int_equal(found, want.agent != AGENT_ID_NONE);
        assert_int_equal(got.agent, want.agent);
        if (found) {
            assert_int_equal(got.mi, want.mi);
            assert_true(got.score == want.score);
        }
        size_t declaring = 0, iterated = 0;
        for (size_t i = 0; i < registry_count(reg); i++)
            declaring += registry_model_index(registry_at(reg, i), model) >= 0;
        registry_model_iter it;
        registry_model_iter_begin(reg, model, &it);
        int mi;
        for (const registry_agent *a; (a = registry_model_iter_next(&it, &mi)) != NULL;) {
            assert_string_equal(a->models[mi].name, model);
            iterated++;
        }
        assert_int_equal(iterated, declaring);
        assert_int_equal(registry_model_declared(reg, model), declaring > 0);
    }
}

static void test_pick_agrees_with_a_walk_of_ten_thousand_agents_through_churn(void **state)
{
    (void)state;
    registry_t *reg = registry_new(NULL);
    static agent_id_t ids[N_AGENTS];
    static uint8_t boots[N_AGENTS];
    uint64_t now = T0;
    for (uint32_t i = 0; i < N_AGENTS; i++) {
        ids[i] = add(reg, i, 0, now);
        heartbeat(reg, ids[i], now);
    }
    check(reg, now, 12.5);
    for (uint32_t op = 0; op < N_OPS; op++) {
        uint32_t i = rnd(N_AGENTS), what = rnd(100);
        const registry_agent *a = ids[i] ? registry_get(reg, ids[i]) : NULL;
        if (!a) { /* gone (removed or swept): it comes back as a new process */
            ids[i] = add(reg, i, ++boots[i], now);
            continue;
        }
        if (what < 30) {
            heartbeat(reg, ids[i], now);
        } else if (what < 55) { /* the scheduler takes a credit where the pick says */
            registry_pick_result p;
            if (registry_pick(reg, model_names[rnd(N_MODELS)], now, 12.5, &p))
                assert_int_equal(registry_credit_take(reg, p.agent, (size_t)p.mi), 0);
        } else if (what < 75) {
            size_t mi = rnd((uint32_t)a->n_models);
            if (a->models[mi].inflight > 0)
                assert_int_equal(registry_credit_return(reg, ids[i], mi, true), 0);
        } else if (what < 80) {
            assert_int_equal(registry_set_drain(reg, ids[i], rnd(2) == 0), 0);
        } else if (what < 83) {
            assert_int_equal(registry_remove(reg, ids[i]), 0);
            ids[i] = AGENT_ID_NONE;
        } else if (what < 86) {
            if (registry_agent_live(reg, a, now)) /* the same process on a new link */
                assert_int_equal(add_on(reg, i, boots[i], op + 1, now), ids[i]);
            else /* a restart, with other models, replaces the silent entry */
                ids[i] = add(reg, i, ++boots[i], now);
        } else if (what < 96) {
            assert_int_equal(registry_touch(reg, ids[i], now), 0);
        } else if (what < 99) {
            now += 100 + rnd(400); /* silence: agents not heard for 3 s stop being live */
        } else {
            agent_id_t dead[256];
            while (registry_sweep(reg, now, dead, 256) > 0) {
            }
        }
        if (op % CHECK_EVERY == 0)
            check(reg, now, op % 2 ? 12.5 : 40.0); /* the fallback speed moves too */
    }
    check(reg, now, 12.5);
    registry_destroy(&reg);
}

/* With every agent silent, the pick parks them all and finds nothing; one heartbeat makes that
 * agent the answer again. */
static void test_silent_agents_are_parked_and_come_back_when_heard(void **state)
{
    (void)state;
    registry_t *reg = registry_new(NULL);
    agent_id_t ids[50];
    for (uint32_t i = 0; i < 50; i++) {
        ids[i] = add(reg, i, 0, T0);
        heartbeat(reg, ids[i], T0);
    }
    registry_pick_result p;
    uint64_t later = T0 + 10000;
    for (int m = 0; m < N_MODELS; m++)
        assert_false(registry_pick(reg, model_names[m], later, 10, &p));
    bool tried = false;
    for (uint32_t i = 0; i < 50 && !tried; i++) {
        registry_model_load load = {.model = "m0", .total_slots = 4};
        registry_load hb = {.models = &load, .n_models = 1, .gen_tps = 10};
        const registry_agent *a = registry_get(reg, ids[i]);
        int mi = registry_model_index(a, "m0");
        if (mi < 0 || a->models[mi].n_slots == 0)
            continue;
        assert_int_equal(registry_heartbeat(reg, ids[i], &hb, later), 0);
        assert_true(registry_pick(reg, "m0", later, 10, &p));
        assert_int_equal(p.agent, ids[i]);
        tried = true;
    }
    assert_true(tried);
    registry_destroy(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_agrees_with_a_walk_of_ten_thousand_agents_through_churn),
        cmocka_unit_test(test_silent_agents_are_parked_and_come_back_when_heard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
