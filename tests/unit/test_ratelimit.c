/* ratelimit.c with a fake clock: one line per key per interval with the held-back count, keys
 * independent, the overall cap across keys, and keys rotated past the table still capped. */
#include "ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

static void test_one_line_per_key_per_interval_then_the_count_held_back(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1000, 8, 100);
    uint32_t held = 99;
    assert_int_equal(ratelimit_check(rl, "clients/a", 5000, &held), 1);
    assert_int_equal(held, 0);
    for (int i = 1; i <= 7; i++)
        assert_int_equal(ratelimit_check(rl, "clients/a", 5000 + (uint64_t)i * 100, &held), 0);
    assert_int_equal(ratelimit_check(rl, "clients/a", 6000, &held), 1);
    assert_int_equal(held, 7);
    assert_int_equal(ratelimit_check(rl, "clients/a", 7000, &held), 1);
    assert_int_equal(held, 0);
    ratelimit_destroy(&rl);
    assert_null(rl);
}

static void test_keys_are_limited_independently(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1000, 8, 100);
    assert_int_equal(ratelimit_check(rl, "agents/a", 10, NULL), 1);
    assert_int_equal(ratelimit_check(rl, "agents/b", 11, NULL), 1);
    assert_int_equal(ratelimit_check(rl, "agents/a", 12, NULL), 0);
    assert_int_equal(ratelimit_check(rl, "agents/b", 13, NULL), 0);
    ratelimit_destroy(&rl);
}

static void test_rotating_keys_cannot_pass_the_overall_cap(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1000, 4, 3);
    int out = 0;
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "stranger-%d", i);
        out += ratelimit_check(rl, key, 100 + (uint64_t)i / 10, NULL); /* all within 100 ms */
    }
    assert_int_equal(out, 3);
    uint32_t held = 0;
    assert_int_equal(ratelimit_check(rl, "stranger-x", 1200, &held), 1);
    assert_int_equal(held, 997); /* every held-back line is still counted once */
    ratelimit_destroy(&rl);
}

static void test_null_limiter_allows_everything(void **state)
{
    (void)state;
    uint32_t held = 5;
    assert_int_equal(ratelimit_check(NULL, "x", 1, &held), 1);
    assert_int_equal(held, 0);
    ratelimit_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_line_per_key_per_interval_then_the_count_held_back),
        cmocka_unit_test(test_keys_are_limited_independently),
        cmocka_unit_test(test_rotating_keys_cannot_pass_the_overall_cap),
        cmocka_unit_test(test_null_limiter_allows_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
