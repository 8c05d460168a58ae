/* sampler.c with a fake clock: rates are the interval's tokens over its length, an interval
 * after a busy one with nothing in it reports 0 (not the last value), counts reset per
 * interval, TTFT percentiles are nearest-rank over that interval's requests only. */
#include "sampler.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_rates_over_interval(void **state)
{
    (void)state;
    sampler s;
    sampler_init(&s, 1000);
    sampler_add_tokens(&s, 40, 0);
    sampler_add_tokens(&s, 0, 7);
    sampler_add_tokens(&s, 0, 3);
    sampler_interval iv;
    sampler_take(&s, 3000, &iv);
    assert_int_equal(iv.interval_ms, 2000);
    assert_int_equal(iv.prompt_tokens, 40);
    assert_int_equal(iv.gen_tokens, 10);
    assert_true(iv.prompt_tps == 20.0);
    assert_true(iv.gen_tps == 5.0);
}

static void test_idle_reports_zero(void **state)
{
    (void)state;
    sampler s;
    sampler_init(&s, 0);
    sampler_add_tokens(&s, 100, 100);
    sampler_add_end(&s, 1, 12.0);
    sampler_interval iv;
    sampler_take(&s, 1000, &iv);
    assert_true(iv.gen_tps > 0);
    sampler_take(&s, 2000, &iv); /* nothing happened in this one */
    assert_int_equal(iv.interval_ms, 1000);
    assert_true(iv.gen_tps == 0 && iv.prompt_tps == 0);
    assert_int_equal(iv.gen_tokens, 0);
    assert_int_equal(iv.finished, 0);
    assert_int_equal(iv.ttft_count, 0);
    assert_true(iv.ttft_p50_ms == 0 && iv.ttft_p95_ms == 0);
}

static void test_clock_still(void **state)
{
    (void)state;
    sampler s;
    sampler_init(&s, 500);
    sampler_add_tokens(&s, 0, 9);
    sampler_interval iv;
    sampler_take(&s, 500, &iv);
    assert_int_equal(iv.interval_ms, 0);
    assert_true(iv.gen_tps == 0); /* no division by zero */
    assert_int_equal(iv.gen_tokens, 9);
    sampler_take(&s, 400, &iv); /* a clock going back gives 0, not a wrapped span */
    assert_int_equal(iv.interval_ms, 0);
}

static void test_ends_and_percentiles(void **state)
{
    (void)state;
    sampler s;
    sampler_init(&s, 0);
    for (int i = 100; i >= 1; i--) /* out of order: the take sorts */
        sampler_add_end(&s, 1, (double)i);
    sampler_add_end(&s, 0, -1); /* failed before its first token: no TTFT */
    sampler_add_end(&s, 0, 250);
    sampler_interval iv;
    sampler_take(&s, 5000, &iv);
    assert_int_equal(iv.finished, 100);
    assert_int_equal(iv.failed, 2);
    assert_int_equal(iv.ttft_count, 101);
    assert_true(iv.ttft_p50_ms == 51.0); /* rank ceil(50.5) = 51 of 1..100,250 */
    assert_true(iv.ttft_p95_ms == 96.0); /* rank ceil(95.95) = 96 */
}

static void test_percentile_edges(void **state)
{
    (void)state;
    double one[] = {7.5};
    assert_true(sampler_percentile(one, 1, 50) == 7.5);
    assert_true(sampler_percentile(one, 1, 95) == 7.5);
    assert_true(sampler_percentile(NULL, 0, 50) == 0);
    double v[] = {4, 1, 3, 2};
    assert_true(sampler_percentile(v, 4, 50) == 2);
    assert_true(sampler_percentile(v, 4, 95) == 4);
    assert_true(sampler_percentile(v, 4, 0) == 1);
}

static void test_ttft_bounded(void **state)
{
    (void)state;
    sampler *s = malloc(sizeof *s);
    assert_non_null(s);
    sampler_init(s, 0);
    for (int i = 0; i < SAMPLER_TTFT_MAX + 50; i++)
        sampler_add_end(s, 1, 1.0);
    sampler_interval iv;
    sampler_take(s, 10, &iv);
    assert_int_equal(iv.finished, SAMPLER_TTFT_MAX + 50); /* every end counts */
    assert_int_equal(iv.ttft_count, SAMPLER_TTFT_MAX);    /* the percentiles' array is bounded */
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates_over_interval), cmocka_unit_test(test_idle_reports_zero),
        cmocka_unit_test(test_clock_still),         cmocka_unit_test(test_ends_and_percentiles),
        cmocka_unit_test(test_percentile_edges),    cmocka_unit_test(test_ttft_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
