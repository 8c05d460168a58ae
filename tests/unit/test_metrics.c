/* metrics.c: per-model counters and histograms for /metrics, driven directly. */
#include "metrics.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

static void test_a_value_lands_in_the_first_bucket_that_holds_it(void **state)
{
    (void)state;
    metrics_hist h = {0};
    metrics_hist_add(&h, 0.005); /* on a bound: that bucket (le is "less or equal") */
    metrics_hist_add(&h, 0.0051);
    metrics_hist_add(&h, 1e9); /* past the last bound: +Inf */
    metrics_hist_add(&h, NAN); /* a broken clock counts as 0 */
    metrics_hist_add(&h, -3);
    assert_int_equal(h.counts[0], 3);
    assert_int_equal(h.counts[1], 1);
    assert_int_equal(h.counts[METRICS_BUCKETS], 1);
    assert_int_equal(h.count, 5);
    assert_true(fabs(h.sum - (0.005 + 0.0051 + 1e9)) < 1e-3);
}

static void test_outcomes_tokens_and_resumes_count_per_model(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    assert_non_null(m);
    metrics_request_end(m, "a", METRICS_DONE, 1.5, 17);
    metrics_request_end(m, "a", METRICS_BUSY, 0, 0);
    metrics_request_end(m, "b", METRICS_FAILED, 2, 3);
    metrics_first_token(m, "a", 0.2);
    metrics_resume(m, "b");
    assert_int_equal(metrics_count(m), 2);
    const metrics_model *a = metrics_at(m, 0), *b = metrics_at(m, 1);
    assert_string_equal(a->model, "a");
    assert_int_equal(a->requests[METRICS_DONE], 1);
    assert_int_equal(a->requests[METRICS_BUSY], 1);
    assert_int_equal(a->tokens, 17);
    assert_int_equal(a->duration.count, 1); /* only answered requests have a duration */
    assert_int_equal(a->ttft.count, 1);
    assert_int_equal(b->requests[METRICS_FAILED], 1);
    assert_int_equal(b->duration.count, 0);
    assert_int_equal(b->resumes, 1);
    assert_null(metrics_at(m, 2));
    metrics_destroy(&m);
    assert_null(m);
    metrics_request_end(NULL, "a", METRICS_DONE, 1, 1); /* no table: nothing, no crash */
}

static void test_made_up_model_names_cannot_grow_the_table(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    char name[32];
    for (int i = 0; i < METRICS_MODELS_MAX + 500; i++) {
        snprintf(name, sizeof name, "model-%d", i);
        metrics_request_end(m, name, METRICS_FAILED, 0, 1);
    }
    assert_int_equal(metrics_count(m), METRICS_MODELS_MAX + 1);
    const metrics_model *other = metrics_at(m, METRICS_MODELS_MAX);
    assert_string_equal(other->model, "_other");
    assert_int_equal(other->requests[METRICS_FAILED], 500);
    metrics_request_end(m, "model-3", METRICS_DONE, 0, 1); /* a known one still finds its row */
    assert_int_equal(metrics_at(m, 3)->requests[METRICS_DONE], 1);
    metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_value_lands_in_the_first_bucket_that_holds_it),
        cmocka_unit_test(test_outcomes_tokens_and_resumes_count_per_model),
        cmocka_unit_test(test_made_up_model_names_cannot_grow_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
