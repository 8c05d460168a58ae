/* Registry: agents register and heartbeat under a fake clock; silent ones die after exactly
 * `liveness` intervals; a re-register with the same key replaces, another key is refused while
 * the first is live; bad fields are refused with a reason. */
#include "registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define T0 1000000u /* fake clock start: far from 0 so "earlier" is representable */

static agent_id_t add(registry_t *reg, const char *name, const char *key, uint32_t slots,
                      uint64_t now, agent_id_t *replaced)
{
    registry_model_decl m = {.name = "tiny", .n_slots = slots};
    registry_registration r = {.name = name,
                               .key_id = key,
                               .hostname = "board",
                               .routing_id = (const uint8_t *)name,
                               .routing_id_len = strlen(name),
                               .models = &m,
                               .n_models = 1,
                               .simulated = true};
    agent_id_t id = AGENT_ID_NONE, gone = AGENT_ID_NONE;
    ef_errmsg em = {{0}};
    int rc = registry_register(reg, &r, now, &id, &gone, &em);
    if (rc != 0)
        return AGENT_ID_NONE;
    if (replaced)
        *replaced = gone;
    return id;
}

static void test_agent_registers_and_is_found_by_name_and_routing_id(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t a = add(reg, "sim-a", "agents/sim-a", 4, T0, NULL);
    agent_id_t b = add(reg, "sim-b", "agents/sim-b", 2, T0, NULL);
    assert_int_not_equal(a, AGENT_ID_NONE);
    assert_int_not_equal(a, b);
    assert_int_equal(registry_find_name(reg, "sim-b"), b);
    assert_int_equal(registry_find_routing_id(reg, (const uint8_t *)"sim-a", 5), a);
    assert_int_equal(registry_find_routing_id(reg, (const uint8_t *)"sim-", 4), AGENT_ID_NONE);
    const registry_agent *ag = registry_get(reg, a);
    assert_non_null(ag);
    assert_string_equal(ag->hostname, "board");
    assert_true(ag->simulated);
    assert_int_equal(ag->models[0].total_slots, 4); /* declared slots until a heartbeat */
    assert_int_equal(registry_free_slots(ag, 0), 4);
    assert_int_equal(registry_count(reg), 2);
    registry_destroy(&reg);
    assert_null(reg);
    registry_destroy(&reg); /* NULL is a no-op */
}

static void test_agent_dead_after_liveness_intervals_not_before(void **state)
{
    registry_params p = registry_default_params(); /* 1000 ms x 3 */
    registry_t *reg = registry_new(&p);
    agent_id_t a = add(reg, "sim-a", "k", 1, T0, NULL);
    agent_id_t b = add(reg, "sim-b", "k2", 1, T0, NULL);
    registry_model_load ml = {.model = "tiny", .busy_slots = 0, .total_slots = 1};
    registry_load hb = {.models = &ml, .n_models = 1};
    assert_int_equal(registry_heartbeat(reg, b, &hb, T0 + 2000), 0);
    agent_id_t dead[4];
    assert_int_equal(registry_sweep(reg, T0 + 2999, dead, 4), 0); /* 2.999 intervals: alive */
    assert_true(registry_agent_live(reg, registry_get(reg, a), T0 + 2999));
    assert_false(registry_agent_live(reg, registry_get(reg, a), T0 + 3000));
    assert_int_equal(registry_sweep(reg, T0 + 3000, dead, 4), 1); /* 3 silent intervals: dead */
    assert_int_equal(dead[0], a);
    assert_null(registry_get(reg, a));
    assert_int_equal(registry_heartbeat(reg, a, &hb, T0 + 3001), EF_ENOENT);
    assert_int_equal(registry_sweep(reg, T0 + 4999, dead, 4), 0);
    assert_int_equal(registry_touch(reg, b, T0 + 4999), 0); /* any message counts as life */
    assert_int_equal(registry_sweep(reg, T0 + 7998, dead, 4), 0);
    assert_int_equal(registry_sweep(reg, T0 + 7999, dead, 4), 1);
    assert_int_equal(registry_count(reg), 0);
    registry_destroy(&reg);
}

static void test_sweep_reports_many_dead_in_rounds_of_cap(void **state)
{
    registry_t *reg = registry_new(NULL);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "sim-%d", i);
        assert_int_not_equal(add(reg, name, name, 1, T0, NULL), AGENT_ID_NONE);
    }
    agent_id_t dead[4];
    size_t total = 0, n;
    while ((n = registry_sweep(reg, T0 + 10000, dead, 4)) > 0)
        total += n;
    assert_int_equal(total, 10);
    registry_destroy(&reg);
}

static void test_reregister_with_same_key_replaces_old_entry(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t replaced = 99;
    agent_id_t a = add(reg, "sim-a", "agents/sim-a", 2, T0, &replaced);
    assert_int_equal(replaced, AGENT_ID_NONE);
    assert_int_equal(registry_credit_take(reg, a, 0), 0);
    agent_id_t a2 = add(reg, "sim-a", "agents/sim-a", 2, T0 + 10, &replaced);
    assert_int_not_equal(a2, AGENT_ID_NONE);
    assert_int_not_equal(a2, a); /* a fresh id: requests of the old entry can't match it */
    assert_int_equal(replaced, a);
    assert_null(registry_get(reg, a));
    assert_int_equal(registry_count(reg), 1);
    assert_int_equal(registry_get(reg, a2)->models[0].inflight, 0);
    registry_destroy(&reg);
}

static void test_duplicate_name_with_other_key_is_refused_while_live(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t a = add(reg, "sim-a", "agents/sim-a", 2, T0, NULL);
    registry_model_decl m = {.name = "tiny", .n_slots = 1};
    registry_registration r = {.name = "sim-a",
                               .key_id = "agents/intruder",
                               .routing_id = (const uint8_t *)"x",
                               .routing_id_len = 1,
                               .models = &m,
                               .n_models = 1};
    agent_id_t id, gone;
    ef_errmsg em = {{0}};
    assert_int_equal(registry_register(reg, &r, T0 + 2999, &id, &gone, &em), EF_EDUPLICATE);
    assert_non_null(strstr(em.msg, "sim-a"));
    assert_non_null(strstr(em.msg, "another key"));
    assert_non_null(registry_get(reg, a)); /* the first agent is untouched */
    /* Once the first is dead (not yet swept), the name is free for the new key. */
    assert_int_equal(registry_register(reg, &r, T0 + 3000, &id, &gone, &em), 0);
    assert_int_equal(gone, a);
    assert_string_equal(registry_get(reg, id)->key_id, "agents/intruder");
    registry_destroy(&reg);
}

static void test_register_refuses_bad_fields_with_a_reason(void **state)
{
    registry_t *reg = registry_new(NULL);
    char longname[REGISTRY_NAME_MAX + 8];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    registry_model_decl models[2] = {{.name = "tiny", .n_slots = 1},
                                     {.name = "tiny", .n_slots = 1}};
    registry_registration r = {.name = longname,
                               .key_id = "k",
                               .routing_id = (const uint8_t *)"r",
                               .routing_id_len = 1,
                               .models = models,
                               .n_models = 1};
    agent_id_t id, gone;
    ef_errmsg em = {{0}};
    assert_int_equal(registry_register(reg, &r, T0, &id, &gone, &em), EF_EINVAL);
    assert_non_null(strstr(em.msg, "agent name"));
    r.name = "";
    assert_int_equal(registry_register(reg, &r, T0, &id, &gone, &em), EF_EINVAL);
    r.name = "sim-a";
    r.routing_id_len = 0;
    assert_int_equal(registry_register(reg, &r, T0, &id, &gone, &em), EF_EINVAL);
    r.routing_id_len = 1;
    r.n_models = 2;
    assert_int_equal(registry_register(reg, &r, T0, &id, &gone, &em), EF_EINVAL);
    assert_non_null(strstr(em.msg, "twice"));
    r.n_models = REGISTRY_MODELS_MAX + 1;
    assert_int_equal(registry_register(reg, &r, T0, &id, &gone, NULL), EF_EINVAL);
    assert_int_equal(registry_count(reg), 0);
    registry_destroy(&reg);
}

static void test_heartbeat_updates_slots_speed_and_drain(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t a = add(reg, "sim-a", "k", 2, T0, NULL);
    registry_model_load ml[2] = {{.model = "tiny", .busy_slots = 1, .total_slots = 6},
                                 {.model = "undeclared", .busy_slots = 0, .total_slots = 9}};
    registry_load hb = {.models = ml, .n_models = 2, .gen_tps = 42.5, .draining = true};
    assert_int_equal(registry_heartbeat(reg, a, &hb, T0 + 500), 0);
    const registry_agent *ag = registry_get(reg, a);
    assert_int_equal(ag->n_models, 1);
    /* 6 slots claimed, 2 declared at register: a board cannot talk itself into more work. */
    assert_int_equal(ag->models[0].total_slots, 2);
    assert_int_equal(ag->models[0].busy_slots, 1);
    assert_true(ag->gen_tps == 42.5);
    assert_true(registry_agent_draining(ag));
    assert_int_equal(ag->last_seen_ms, T0 + 500);
    hb.draining = false;
    hb.gen_tps = -3;       /* nonsense from the wire is "not measured" */
    ml[0].total_slots = 1; /* fewer than declared (a slot failed): taken as it is */
    assert_int_equal(registry_heartbeat(reg, a, &hb, T0 + 600), 0);
    assert_int_equal(ag->models[0].total_slots, 1);
    assert_false(registry_agent_draining(ag));
    assert_true(ag->gen_tps == 0);
    assert_int_equal(registry_set_drain(reg, a, true), 0); /* operator order, no echo needed */
    assert_true(registry_agent_draining(ag));
    assert_int_equal(registry_set_drain(reg, a, false), 0);
    assert_false(registry_agent_draining(ag));
    registry_destroy(&reg);
}

static void test_credits_are_total_slots_minus_inflight(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t a = add(reg, "sim-a", "k", 2, T0, NULL);
    const registry_agent *ag = registry_get(reg, a);
    assert_int_equal(registry_credit_take(reg, a, 0), 0);
    assert_int_equal(registry_credit_take(reg, a, 0), 0);
    assert_int_equal(registry_free_slots(ag, 0), 0);
    assert_int_equal(registry_credit_take(reg, a, 1), EF_EINVAL);
    assert_int_equal(registry_credit_return(reg, a, 0, true), 0);
    assert_int_equal(registry_free_slots(ag, 0), 1);
    assert_int_equal(ag->served, 1);
    assert_int_equal(registry_credit_return(reg, 12345, 0, true), EF_ENOENT);
    registry_destroy(&reg);
}

static void test_median_speed_ignores_unmeasured_agents(void **state)
{
    registry_t *reg = registry_new(NULL);
    assert_true(registry_median_gen_tps(reg) == 0);
    double speeds[] = {0, 10, 30, 20, 40};
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "sim-%d", i);
        agent_id_t id = add(reg, name, name, 1, T0, NULL);
        registry_load hb = {.gen_tps = speeds[i]};
        assert_int_equal(registry_heartbeat(reg, id, &hb, T0), 0);
    }
    assert_true(registry_median_gen_tps(reg) == 25); /* of 10, 20, 30, 40 */
    assert_true(registry_median_gen_tps_at(reg, T0) == 25);
    /* A new speed shows in the timed median only once its refresh interval has passed. */
    registry_load fast = {.gen_tps = 100};
    assert_int_equal(registry_heartbeat(reg, registry_find_name(reg, "sim-1"), &fast, T0 + 1), 0);
    assert_true(registry_median_gen_tps_at(reg, T0 + 1) == 25);
    assert_true(registry_median_gen_tps_at(reg, T0 + 999) == 25);
    assert_true(registry_median_gen_tps_at(reg, T0 + 1000) == 35); /* of 20, 30, 40, 100 */
    assert_true(registry_median_gen_tps(reg) == 35);
    registry_destroy(&reg);
}

static void test_full_table_refuses_with_ebusy(void **state)
{
    registry_params p = registry_default_params();
    p.max_agents = 2;
    registry_t *reg = registry_new(&p);
    assert_int_not_equal(add(reg, "sim-a", "a", 1, T0, NULL), AGENT_ID_NONE);
    assert_int_not_equal(add(reg, "sim-b", "b", 1, T0, NULL), AGENT_ID_NONE);
    assert_int_equal(add(reg, "sim-c", "c", 1, T0, NULL), AGENT_ID_NONE);
    /* A replacement needs no new room. */
    assert_int_not_equal(add(reg, "sim-a", "a", 1, T0 + 1, NULL), AGENT_ID_NONE);
    assert_int_equal(registry_remove(reg, registry_find_name(reg, "sim-b")), 0);
    assert_int_not_equal(add(reg, "sim-c", "c", 1, T0, NULL), AGENT_ID_NONE);
    registry_destroy(&reg);
}

/* A Register with a boot id and a model file hash, from routing id `rid`. */
static int add_boot(registry_t *reg, const char *key, const char *rid, uint8_t boot, uint8_t sha,
                    uint64_t now, agent_id_t *id, agent_id_t *gone, ef_errmsg *em)
{
    uint8_t boot_id[REGISTRY_BOOT_ID_LEN], file[REGISTRY_SHA256_LEN];
    memset(boot_id, boot, sizeof boot_id);
    memset(file, sha, sizeof file);
    registry_model_decl m = {.name = "tiny", .n_slots = 2, .sha256 = file};
    registry_registration r = {.name = key + 7, /* "agents/x" is x */
                               .key_id = key,
                               .boot_id = boot_id,
                               .hostname = rid,
                               .routing_id = (const uint8_t *)rid,
                               .routing_id_len = strlen(rid),
                               .models = &m,
                               .n_models = 1};
    return registry_register(reg, &r, now, id, gone, em);
}

static void test_the_same_process_on_a_new_link_keeps_its_entry_and_credits(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t a, again, gone;
    ef_errmsg em = {{0}};
    assert_int_equal(add_boot(reg, "agents/a", "link-1", 7, 1, T0, &a, &gone, &em), 0);
    assert_int_equal(registry_credit_take(reg, a, 0), 0);
    assert_int_equal(add_boot(reg, "agents/a", "link-2", 7, 1, T0 + 10, &again, &gone, &em), 0);
    assert_int_equal(again, a); /* its requests go on: same id, credits kept */
    assert_int_equal(gone, AGENT_ID_NONE);
    assert_int_equal(registry_get(reg, a)->models[0].inflight, 1);
    assert_int_equal(registry_find_routing_id(reg, (const uint8_t *)"link-2", 6), a);
    assert_int_equal(registry_find_routing_id(reg, (const uint8_t *)"link-1", 6), AGENT_ID_NONE);
    registry_destroy(&reg);
}

static void test_a_copy_of_a_live_key_is_refused_and_a_restart_replaces(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t a, b, gone;
    ef_errmsg em = {{0}};
    assert_int_equal(add_boot(reg, "agents/a", "link-1", 7, 1, T0, &a, &gone, &em), 0);
    assert_int_equal(add_boot(reg, "agents/a", "clone", 8, 1, T0 + 10, &b, &gone, &em),
                     EF_EDUPLICATE);
    assert_non_null(strstr(em.msg, "copy of that key"));
    assert_non_null(strstr(em.msg, "link-1")); /* the live board's host */
    assert_non_null(strstr(em.msg, "clone"));  /* and the newcomer's */
    assert_non_null(registry_get(reg, a));
    /* Once the first is silent past its window, another boot is a restart: it replaces. */
    assert_int_equal(add_boot(reg, "agents/a", "link-3", 8, 1, T0 + 3000, &b, &gone, &em), 0);
    assert_int_equal(gone, a);
    assert_int_not_equal(b, a);
    registry_destroy(&reg);
}

static void test_one_model_name_means_one_file_across_the_fleet(void **state)
{
    registry_t *reg = registry_new(NULL);
    agent_id_t a, b, gone;
    ef_errmsg em = {{0}};
    assert_int_equal(add_boot(reg, "agents/a", "l-a", 1, 0x11, T0, &a, &gone, &em), 0);
    assert_int_equal(add_boot(reg, "agents/b", "l-b", 2, 0x22, T0, &b, &gone, &em), EF_EMODEL);
    assert_non_null(strstr(em.msg, "another file"));
    assert_non_null(strstr(em.msg, "11111111"));
    assert_int_equal(add_boot(reg, "agents/b", "l-b", 2, 0x11, T0, &b, &gone, &em), 0);
    registry_destroy(&reg);
}

/* 10,000 boards: every one is found by id, name, key and routing id after registrations,
 * removals from the middle (which move the last entry into the hole), sweeps, and
 * re-registrations on new links, checked against a model of what must be there. */
#define SCALE_N 10000u
static void test_ten_thousand_agents_are_found_by_every_key_through_churn(void **state)
{
    (void)state;
    registry_params p = registry_default_params();
    registry_t *reg = registry_new(&p);
    static agent_id_t ids[SCALE_N];
    char name[32], key[48], rid[32];
    for (uint32_t i = 0; i < SCALE_N; i++) {
        snprintf(name, sizeof name, "b-%u", i);
        snprintf(key, sizeof key, "agents/b-%u", i);
        ids[i] = add(reg, name, key, 1 + i % 4, T0, NULL);
        assert_int_not_equal(ids[i], AGENT_ID_NONE);
    }
    assert_int_equal(registry_count(reg), SCALE_N);
    for (uint32_t i = 0; i < SCALE_N; i += 3) { /* every third leaves */
        assert_int_equal(registry_remove(reg, ids[i]), 0);
        assert_int_equal(registry_remove(reg, ids[i]), EF_ENOENT);
    }
    for (uint32_t i = 1; i < SCALE_N; i += 3) /* these stay silent; the others speak later */
        assert_int_equal(registry_touch(reg, ids[i], T0), 0);
    for (uint32_t i = 2; i < SCALE_N; i += 3)
        assert_int_equal(registry_touch(reg, ids[i], T0 + 2500), 0);
    agent_id_t dead[512];
    size_t n_dead = 0, got;
    while ((got = registry_sweep(reg, T0 + 3000, dead, 512)) > 0)
        n_dead += got;
    assert_int_equal(n_dead, (SCALE_N + 1) / 3);
    for (uint32_t i = 0; i < SCALE_N; i++) {
        snprintf(name, sizeof name, "b-%u", i);
        snprintf(key, sizeof key, "agents/b-%u", i);
        agent_id_t want = i % 3 == 2 ? ids[i] : AGENT_ID_NONE;
        assert_int_equal(registry_find_name(reg, name), want);
        assert_int_equal(registry_find_key(reg, key), want);
        assert_int_equal(registry_find_routing_id(reg, (const uint8_t *)name, strlen(name)), want);
        const registry_agent *a = registry_get(reg, ids[i]);
        assert_true(want ? a && strcmp(a->name, name) == 0 : a == NULL);
    }
    /* The survivors restart once their window has passed, on new links: each new entry
     * replaces the old one, found by its new routing id only. */
    for (uint32_t i = 2; i < SCALE_N; i += 3) {
        snprintf(name, sizeof name, "b-%u", i);
        snprintf(key, sizeof key, "agents/b-%u", i);
        snprintf(rid, sizeof rid, "new-%u", i);
        uint8_t boot[REGISTRY_BOOT_ID_LEN] = {1};
        registry_model_decl m = {.name = "tiny", .n_slots = 1 + i % 4};
        registry_registration r = {.name = name,
                                   .key_id = key,
                                   .boot_id = boot,
                                   .routing_id = (const uint8_t *)rid,
                                   .routing_id_len = strlen(rid),
                                   .models = &m,
                                   .n_models = 1};
        agent_id_t id = AGENT_ID_NONE, gone = AGENT_ID_NONE;
        assert_int_equal(registry_register(reg, &r, T0 + 6000, &id, &gone, NULL), 0);
        assert_int_equal(gone, ids[i]);
        ids[i] = id;
        assert_int_equal(registry_find_routing_id(reg, (const uint8_t *)rid, strlen(rid)), id);
        assert_int_equal(registry_find_routing_id(reg, (const uint8_t *)name, strlen(name)),
                         AGENT_ID_NONE);
    }
    assert_int_equal(registry_count(reg), SCALE_N / 3);
    registry_destroy(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_registers_and_is_found_by_name_and_routing_id),
        cmocka_unit_test(test_agent_dead_after_liveness_intervals_not_before),
        cmocka_unit_test(test_sweep_reports_many_dead_in_rounds_of_cap),
        cmocka_unit_test(test_reregister_with_same_key_replaces_old_entry),
        cmocka_unit_test(test_duplicate_name_with_other_key_is_refused_while_live),
        cmocka_unit_test(test_register_refuses_bad_fields_with_a_reason),
        cmocka_unit_test(test_heartbeat_updates_slots_speed_and_drain),
        cmocka_unit_test(test_credits_are_total_slots_minus_inflight),
        cmocka_unit_test(test_median_speed_ignores_unmeasured_agents),
        cmocka_unit_test(test_full_table_refuses_with_ebusy),
        cmocka_unit_test(test_the_same_process_on_a_new_link_keeps_its_entry_and_credits),
        cmocka_unit_test(test_a_copy_of_a_live_key_is_refused_and_a_restart_replaces),
        cmocka_unit_test(test_one_model_name_means_one_file_across_the_fleet),
        cmocka_unit_test(test_ten_thousand_agents_are_found_by_every_key_through_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
