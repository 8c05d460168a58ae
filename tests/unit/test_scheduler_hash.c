/* The scheduler's hashes of client-chosen bytes are keyed: request ids and session ids crafted so
 * that FNV-1a (the unkeyed hash used before) puts them all in one bucket spread over the buckets
 * under the scheduler's random SipHash key, so no client can make every lookup walk them all.
 * White-box: reads the tables through the scheduler's private header. */
#include "scheduler_internal.h"

#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T0          1000000u
#define FNV_OFFSET  2166136261u
#define FNV_PRIME   16777619u
#define CRAFTED     2000 /* hostile ids per table */
#define CHAIN_BOUND 12   /* 2000 keys in >= 4096 buckets: a fair hash stays far below this */
#define ID_LEN      SCHED_REQUEST_ID_LEN

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Fills ID_LEN bytes whose FNV-1a hash is `target` in its low `bits` (<= 16) bits, no byte 0
 * (so it is also a valid C string): the low bits of FNV-1a's state depend only on the low bits
 * before, so pick the first 14 bytes at random, then the 15th until the state's bits 8..bits-1
 * match what the inverse of the last multiply needs, and the 16th fixes the low 8. */
static void craft(uint8_t *id, uint32_t bits, uint32_t target, uint32_t *seed)
{
    uint32_t mask = (1u << bits) - 1, inv = FNV_PRIME;
    for (int i = 0; i < 4; i++) /* Newton: FNV_PRIME^-1 mod 2^32 */
        inv *= 2 - FNV_PRIME * inv;
    uint32_t want = (target * inv) & mask; /* the state before the last multiply */
    for (;;) {
        for (int i = 0; i < ID_LEN - 2; i++)
            id[i] = (uint8_t)(1 + lcg(seed) % 255);
        uint32_t h = fnv1a(id, ID_LEN - 2);
        for (uint32_t b = 1; b < 256; b++) {
            uint32_t h15 = (h ^ b) * FNV_PRIME;
            uint32_t last = (h15 ^ want) & 0xffu;
            if (((h15 ^ want) & mask & ~0xffu) == 0 && last != 0) {
                id[ID_LEN - 2] = (uint8_t)b;
                id[ID_LEN - 1] = (uint8_t)last;
                assert_int_equal(fnv1a(id, ID_LEN) & mask, target & mask);
                return;
            }
        }
    }
}

static uint32_t log2u(uint32_t n)
{
    uint32_t b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

static void test_request_ids_crafted_to_collide_spread_over_the_buckets(void **state)
{
    (void)state;
    registry_t *reg = registry_new(NULL);
    scheduler_params p = scheduler_default_params();
    p.queue_unknown_models = true; /* no agent: everything waits in the table */
    p.max_per_client = 0;
    scheduler_t *s = scheduler_new(reg, &p);
    assert_non_null(s);
    uint32_t seed = 99, bits = log2u(s->nbuckets);
    for (int i = 0; i < CRAFTED; i++) {
        uint8_t id[ID_LEN];
        craft(id, bits, 0x1234, &seed); /* all in one bucket under FNV-1a */
        sched_submit req = {.request_id = id, .model = "m", .client = "clients/hostile"};
        sched_dispatch d;
        int rc = scheduler_submit(s, &req, T0, &d, NULL);
        assert_true(rc == 0 || rc == EF_EDUPLICATE);
    }
    uint32_t longest = 0;
    for (uint32_t b = 0; b < s->nbuckets; b++) {
        uint32_t n = 0;
        for (int32_t i = s->buckets[b]; i != NIL; i = s->recs[i].hnext)
            n++;
        longest = n > longest ? n : longest;
    }
    printf("request ids: %d crafted for one FNV-1a bucket, longest chain %u of %u buckets\n",
           CRAFTED, longest, s->nbuckets);
    assert_in_range(longest, 1, CHAIN_BOUND);
    assert_int_equal(scheduler_check(s), 0);
    sched_request out[64];
    while (scheduler_flush(s, out, 64) == 64) {
    }
    scheduler_destroy(&s);
    registry_destroy(&reg);
}

static void test_session_ids_crafted_to_collide_spread_over_the_buckets(void **state)
{
    (void)state;
    uint8_t key[SCHED_HASH_KEY_LEN];
    randombytes_buf(key, sizeof(key));
    session_map *m = session_map_new(4096, 600000, key); /* the default size: 4096 buckets */
    assert_non_null(m);
    uint32_t seed = 7;
    for (int i = 0; i < CRAFTED; i++) {
        char sid[ID_LEN + 1] = {0};
        craft((uint8_t *)sid, log2u(4096), 0xabc, &seed);
        session_map_put(m, sid, (agent_id_t)(1 + i % 3), T0);
    }
    uint32_t longest = session_map_longest_chain(m);
    printf("session ids: %d crafted for one FNV-1a bucket, longest chain %u\n", CRAFTED, longest);
    assert_in_range(longest, 1, CHAIN_BOUND);
    session_map_destroy(&m);
}

static void test_the_key_is_random_unless_the_params_fix_it(void **state)
{
    (void)state;
    registry_t *reg = registry_new(NULL);
    static const uint8_t fixed[SCHED_HASH_KEY_LEN] = "0123456789abcde";
    scheduler_params p = scheduler_default_params();
    p.hash_key = fixed;
    scheduler_t *a = scheduler_new(reg, &p), *b = scheduler_new(reg, &p);
    scheduler_t *r1 = scheduler_new(reg, NULL), *r2 = scheduler_new(reg, NULL);
    assert_true(a && b && r1 && r2);
    assert_memory_equal(a->hash_key, fixed, SCHED_HASH_KEY_LEN);
    assert_memory_equal(a->hash_key, b->hash_key, SCHED_HASH_KEY_LEN);
    assert_null(a->params.hash_key); /* copied: the caller's buffer may go */
    assert_memory_not_equal(r1->hash_key, r2->hash_key, SCHED_HASH_KEY_LEN);
    assert_memory_not_equal(r1->hash_key, fixed, SCHED_HASH_KEY_LEN);
    scheduler_destroy(&a);
    scheduler_destroy(&b);
    scheduler_destroy(&r1);
    scheduler_destroy(&r2);
    registry_destroy(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ids_crafted_to_collide_spread_over_the_buckets),
        cmocka_unit_test(test_session_ids_crafted_to_collide_spread_over_the_buckets),
        cmocka_unit_test(test_the_key_is_random_unless_the_params_fix_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
