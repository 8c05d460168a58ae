/* telemetry_window.c with a fake clock: samples come back oldest first, the window drops what is
 * older than window_ms and beyond max_samples, the latest is decoded, agents beyond max_agents
 * are refused, bytes that do not decode are refused, and agents whose samples all aged out go. */
#include "errors.h"
#include "telemetry_window.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static size_t pack(uint64_t unix_ms, double tps, uint8_t *buf)
{
    Edgefleet__TelemetrySample s = EDGEFLEET__TELEMETRY_SAMPLE__INIT;
    s.unix_ms = unix_ms;
    s.gen_tps = tps;
    return edgefleet__telemetry_sample__pack(&s, buf);
}

static int add(twin *w, const char *name, uint64_t unix_ms, uint64_t now)
{
    uint8_t buf[256];
    size_t n = pack(unix_ms, (double)unix_ms / 10, buf);
    return twin_add(w, name, buf, n, now);
}

typedef struct {
    uint64_t unix_ms[16];
    size_t n;
    size_t stop_after;
} seen;

static int collect(const uint8_t *p, size_t len, uint64_t at, void *user)
{
    (void)at;
    seen *s = user;
    Edgefleet__TelemetrySample *d = edgefleet__telemetry_sample__unpack(NULL, len, p);
    assert_non_null(d);
    s->unix_ms[s->n++] = d->unix_ms;
    edgefleet__telemetry_sample__free_unpacked(d, NULL);
    return s->stop_after && s->n == s->stop_after;
}

static void test_window_by_age_and_count(void **state)
{
    (void)state;
    twin_params p = {.window_ms = 1000, .max_samples = 3, .max_agents = 2};
    twin *w = twin_new(&p);
    assert_non_null(w);
    for (uint64_t t = 1; t <= 4; t++)
        assert_int_equal(add(w, "a", t, t * 100), 0);
    assert_int_equal(twin_agents(w), 1);
    seen s = {0};
    assert_int_equal(twin_each(w, 0, 0, collect, &s), 3); /* max_samples: the oldest went */
    assert_int_equal(s.unix_ms[0], 2);
    assert_int_equal(s.unix_ms[2], 4);
    const Edgefleet__TelemetrySample *l = twin_latest(w, "a");
    assert_non_null(l);
    assert_int_equal(l->unix_ms, 4);
    assert_true(l->gen_tps == 0.4);
    /* At 1350 the samples of 200 and 300 are older than 1000 ms. */
    assert_int_equal(add(w, "a", 5, 1350), 0);
    s = (seen){0};
    assert_int_equal(twin_each(w, 0, 0, collect, &s), 2);
    assert_int_equal(s.unix_ms[0], 4);
    s = (seen){0};
    assert_int_equal(twin_each(w, 0, 1, collect, &s), 1); /* the last one only */
    assert_int_equal(s.unix_ms[0], 5);
    s = (seen){0};
    assert_int_equal(twin_each(w, 0, 9, collect, &s), 2); /* more than there are: all */
    s = (seen){.stop_after = 1};
    assert_int_equal(twin_each(w, 0, 0, collect, &s), 1); /* fn stops the walk */
    twin_destroy(&w);
    assert_null(w);
    twin_destroy(&w); /* NULL-safe */
}

static void test_agents_bounded_and_pruned(void **state)
{
    (void)state;
    twin_params p = {.window_ms = 1000, .max_samples = 4, .max_agents = 2};
    twin *w = twin_new(&p);
    assert_int_equal(add(w, "a", 1, 0), 0);
    assert_int_equal(add(w, "b", 1, 500), 0);
    assert_int_equal(add(w, "c", 1, 600), EF_EBUSY);
    assert_null(twin_latest(w, "c"));
    twin_prune(w, 1200); /* a's only sample aged out: its window goes, b's stays */
    assert_int_equal(twin_agents(w), 1);
    assert_string_equal(twin_agent_name(w, 0), "b");
    assert_null(twin_latest(w, "a"));
    assert_int_equal(add(w, "c", 1, 1200), 0);
    twin_forget(w, "b");
    assert_int_equal(twin_agents(w), 1);
    assert_string_equal(twin_agent_name(w, 0), "c");
    assert_null(twin_agent_name(w, 1));
    twin_destroy(&w);
}

static void test_refuses_bad_input(void **state)
{
    (void)state;
    twin *w = twin_new(NULL);
    uint8_t junk[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(twin_add(w, "a", junk, sizeof junk, 0), EF_EINVAL);
    uint8_t buf[64];
    size_t n = pack(1, 1, buf);
    assert_int_equal(twin_add(w, "", buf, n, 0), EF_EINVAL);
    assert_int_equal(twin_add(w, "a", buf, 0, 0), EF_EINVAL);
    assert_int_equal(twin_add(w, "a", buf, TWIN_SAMPLE_MAX + 1, 0), EF_EINVAL);
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(twin_add(w, longname, buf, n, 0), EF_EINVAL);
    assert_int_equal(twin_agents(w), 0);
    twin_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_by_age_and_count),
        cmocka_unit_test(test_agents_bounded_and_pruned),
        cmocka_unit_test(test_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
