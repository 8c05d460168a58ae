/* backoff.c with a fake clock and fixed random numbers: growth, cap, jitter bounds, reset after
 * a stable link, no reset for a flapping one. */
#include "backoff.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_delays_grow_exponentially_up_to_the_cap(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, &(backoff_params){.initial_ms = 100, .max_ms = 1000, .factor = 2.0});
    const uint32_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(backoff_next(&b, 1000 + i, 0), want[i]);
}

static void test_jitter_stays_within_its_share_of_the_delay(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, &(backoff_params){.initial_ms = 1000, .max_ms = 1000, .jitter = 0.5});
    assert_int_equal(backoff_next(&b, 1, 0), 1000);          /* u = 0: the full delay */
    assert_int_equal(backoff_next(&b, 2, 0x80000000u), 750); /* u = 0.5 */
    uint32_t low = backoff_next(&b, 3, 0xFFFFFFFFu);         /* u -> 1: half the delay */
    assert_true(low >= 500 && low <= 501);
    for (uint32_t r = 1; r < 4000000000u; r += 123456789u) {
        uint32_t d = backoff_next(&b, 4, r);
        assert_true(d >= 500 && d <= 1000);
    }
}

static void test_a_stable_link_starts_again_from_the_first_delay(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, &(backoff_params){.initial_ms = 100, .max_ms = 10000, .stable_ms = 5000});
    assert_int_equal(backoff_next(&b, 0, 0), 100);
    assert_int_equal(backoff_next(&b, 100, 0), 200);
    assert_int_equal(backoff_next(&b, 300, 0), 400);
    backoff_connected(&b, 1000);
    assert_int_equal(backoff_next(&b, 7000, 0), 100); /* up 6 s >= 5 s: healthy */
}

static void test_a_flapping_link_keeps_backing_off(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, &(backoff_params){.initial_ms = 100, .max_ms = 10000, .stable_ms = 5000});
    assert_int_equal(backoff_next(&b, 0, 0), 100);
    backoff_connected(&b, 100);
    assert_int_equal(backoff_next(&b, 600, 0), 200); /* up only 0.5 s */
    backoff_connected(&b, 800);
    assert_int_equal(backoff_next(&b, 900, 0), 400);
}

static void test_defaults_apply_to_zero_params(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, &(backoff_params){0});
    assert_int_equal(backoff_next(&b, 0, 0), 250);
    assert_int_equal(backoff_next(&b, 0, 0), 500);
    for (int i = 0; i < 100; i++)
        assert_true(backoff_next(&b, 0, 0) <= 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delays_grow_exponentially_up_to_the_cap),
        cmocka_unit_test(test_jitter_stays_within_its_share_of_the_delay),
        cmocka_unit_test(test_a_stable_link_starts_again_from_the_first_delay),
        cmocka_unit_test(test_a_flapping_link_keeps_backing_off),
        cmocka_unit_test(test_defaults_apply_to_zero_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
