/* client_pace.c with a fake clock: items go out in order within the window, a busy refusal holds
 * an item until its retry time and shrinks the window to what the fleet took, the window grows
 * back as items end, and an item ended while waiting is never sent. */
#include "client_pace.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Take and send everything pace_next offers at now; returns how many. */
static size_t send_all(pace *p, uint64_t now, size_t *order, size_t cap)
{
    size_t n = 0, i;
    while ((i = pace_next(p, now)) != PACE_NONE) {
        if (n < cap)
            order[n] = i;
        n++;
        pace_sent(p, i);
    }
    return n;
}

static void test_items_go_out_in_batch_order_up_to_the_window(void **state)
{
    (void)state;
    pace p;
    assert_int_equal(pace_init(&p, 5, 3), 0);
    size_t order[8];
    assert_int_equal(send_all(&p, 0, order, 8), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(order[i], i);
    assert_int_equal(pace_wake_ms(&p), UINT64_MAX); /* full: only a reply changes that */
    pace_end(&p, 1);
    assert_int_equal(send_all(&p, 0, order, 8), 1);
    assert_int_equal(order[0], 3);
    pace_free(&p);
}

static void test_a_busy_item_waits_for_its_retry_time_and_the_window_shrinks(void **state)
{
    (void)state;
    pace p;
    size_t order[8];
    assert_int_equal(pace_init(&p, 4, 8), 0);
    assert_int_equal(send_all(&p, 0, order, 8), 4);
    pace_busy(&p, 3, 1000);
    pace_busy(&p, 2, 1200);
    assert_int_equal(p.window, 2); /* the fleet took two */
    assert_int_equal(pace_next(&p, 500), PACE_NONE);
    pace_end(&p, 0);
    assert_int_equal(pace_next(&p, 999), PACE_NONE); /* room, but not due yet */
    assert_int_equal(pace_wake_ms(&p), 1000);
    assert_int_equal(send_all(&p, 1000, order, 8), 1);
    assert_int_equal(order[0], 3);
    pace_end(&p, 1);
    assert_int_equal(pace_next(&p, 1100), PACE_NONE);
    assert_int_equal(pace_wake_ms(&p), 1200);
    assert_int_equal(pace_next(&p, 1200), 2);
    pace_free(&p);
}

static void test_the_window_grows_by_one_after_a_window_of_items_ended(void **state)
{
    (void)state;
    pace p;
    size_t order[16];
    assert_int_equal(pace_init(&p, 10, 10), 0);
    assert_int_equal(send_all(&p, 0, order, 16), 10);
    for (size_t i = 9; i >= 3; i--)
        pace_busy(&p, i, 100);
    assert_int_equal(p.window, 3);
    pace_end(&p, 0);
    pace_end(&p, 1);
    assert_int_equal(p.window, 3);
    pace_end(&p, 2); /* a window's worth ended: one more may go */
    assert_int_equal(p.window, 4);
    assert_int_equal(send_all(&p, 100, order, 16), 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(order[i], 3 + i); /* held items keep their batch order */
    pace_free(&p);
}

static void test_the_window_never_drops_below_one(void **state)
{
    (void)state;
    pace p;
    size_t order[4];
    assert_int_equal(pace_init(&p, 2, 2), 0);
    assert_int_equal(send_all(&p, 0, order, 4), 2);
    pace_busy(&p, 0, 10);
    pace_busy(&p, 1, 10);
    assert_int_equal(p.window, 1);
    assert_int_equal(send_all(&p, 10, order, 4), 1);
    pace_free(&p);
}

static void test_an_item_ended_while_waiting_is_never_sent(void **state)
{
    (void)state;
    pace p;
    size_t order[4];
    assert_int_equal(pace_init(&p, 3, 1), 0);
    pace_end(&p, 0); /* e.g. its deadline passed before it went */
    assert_int_equal(send_all(&p, 0, order, 4), 1);
    assert_int_equal(order[0], 1);
    pace_end(&p, 1);
    pace_end(&p, 1); /* twice: no effect */
    assert_int_equal(p.in_flight, 0);
    assert_int_equal(send_all(&p, 0, order, 4), 1);
    assert_int_equal(order[0], 2);
    pace_sent(&p, 0); /* not pace_next's answer: ignored */
    assert_int_equal(p.in_flight, 1);
    pace_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_go_out_in_batch_order_up_to_the_window),
        cmocka_unit_test(test_a_busy_item_waits_for_its_retry_time_and_the_window_shrinks),
        cmocka_unit_test(test_the_window_grows_by_one_after_a_window_of_items_ended),
        cmocka_unit_test(test_the_window_never_drops_below_one),
        cmocka_unit_test(test_an_item_ended_while_waiting_is_never_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
