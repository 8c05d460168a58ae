/* token_bucket.c with a fake clock: a full start, the rate over time, the burst cap after a quiet
 * spell, the wait until the next token, unlimited, and a clock that steps back. */
#include "token_bucket.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static int take_all(token_bucket *b, uint64_t now_ms)
{
    int n = 0;
    while (token_bucket_take(b, now_ms))
        n++;
    return n;
}

static void test_a_new_bucket_holds_one_burst(void **state)
{
    (void)state;
    token_bucket b;
    token_bucket_init(&b, 100, 20, 1000);
    assert_int_equal(take_all(&b, 1000), 20);
    assert_int_equal(token_bucket_take(&b, 1000), 0);
}

static void test_tokens_come_back_at_the_rate(void **state)
{
    (void)state;
    token_bucket b;
    token_bucket_init(&b, 100, 20, 0);
    take_all(&b, 0);
    assert_int_equal(take_all(&b, 9), 0);  /* 100/s: 0.9 of a token after 9 ms */
    assert_int_equal(take_all(&b, 10), 1); /* one after 10 ms */
    int admitted = 0;
    for (uint64_t t = 11; t <= 10010; t++) /* taken as they come, for 10 s */
        admitted += take_all(&b, t);
    assert_int_equal(admitted, 1000);
}

static void test_a_quiet_spell_refills_only_up_to_the_burst(void **state)
{
    (void)state;
    token_bucket b;
    token_bucket_init(&b, 1000, 50, 0);
    take_all(&b, 0);
    assert_int_equal(take_all(&b, 3600000), 50); /* an hour idle: still one burst */
    token_bucket_init(&b, 4000000000u, 1, 0);    /* a huge rate does not overflow */
    take_all(&b, 0);
    assert_int_equal(token_bucket_take(&b, UINT64_MAX / 2), 1);
}

static void test_wait_says_when_the_next_token_comes(void **state)
{
    (void)state;
    token_bucket b;
    token_bucket_init(&b, 300, 1, 0);
    assert_int_equal(token_bucket_wait_ms(&b, 0), 0);
    assert_int_equal(token_bucket_take(&b, 0), 1);
    assert_int_equal(token_bucket_wait_ms(&b, 0), 4); /* 3.33 ms, rounded up */
    assert_int_equal(token_bucket_take(&b, 3), 0);
    assert_int_equal(token_bucket_wait_ms(&b, 3), 1);
    assert_int_equal(token_bucket_take(&b, 4), 1);
}

static void test_rate_zero_admits_everything(void **state)
{
    (void)state;
    token_bucket b;
    token_bucket_init(&b, 0, 0, 0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(token_bucket_take(&b, 0), 1);
    assert_int_equal(token_bucket_wait_ms(&b, 0), 0);
}

static void test_burst_zero_means_one_second_of_tokens(void **state)
{
    (void)state;
    token_bucket b;
    token_bucket_init(&b, 250, 0, 0);
    assert_int_equal(take_all(&b, 0), 250);
}

static void test_a_clock_stepping_back_adds_nothing(void **state)
{
    (void)state;
    token_bucket b;
    token_bucket_init(&b, 1000, 10, 5000);
    take_all(&b, 5000);
    assert_int_equal(take_all(&b, 1000), 0);
    assert_int_equal(take_all(&b, 4999), 0);
    assert_int_equal(take_all(&b, 5003), 3); /* counting resumes from the latest time seen */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_new_bucket_holds_one_burst),
        cmocka_unit_test(test_tokens_come_back_at_the_rate),
        cmocka_unit_test(test_a_quiet_spell_refills_only_up_to_the_burst),
        cmocka_unit_test(test_wait_says_when_the_next_token_comes),
        cmocka_unit_test(test_rate_zero_admits_everything),
        cmocka_unit_test(test_burst_zero_means_one_second_of_tokens),
        cmocka_unit_test(test_a_clock_stepping_back_adds_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
