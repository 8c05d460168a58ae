/* flight.c: a request's record in the coordinator. A resume carries every relayed token as
 * resume_tokens with a fresh attempt and the documented seed; a client's re-sent call becomes a
 * stream that goes on after the tokens it has. */
#include "request.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static flight *make(flight **list, int32_t *received, size_t n_received, uint64_t seed)
{
    uint8_t id[16] = {1, 2, 3};
    Edgefleet__SamplingParams sp = EDGEFLEET__SAMPLING_PARAMS__INIT;
    sp.seed = seed;
    Edgefleet__Request r = EDGEFLEET__REQUEST__INIT;
    r.request_id = (ProtobufCBinaryData){16, id};
    r.model = "m";
    r.prompt = "p";
    r.max_tokens = 100;
    r.sampling = &sp;
    r.received_tokens = received;
    r.n_received_tokens = n_received;
    coord_client cl = {(const uint8_t *)"rid", 3, "clients/alice", CLIENT_VIA_ZMQ};
    return flight_new(&r, &cl, 5, list);
}

static void test_a_resume_carries_every_relayed_token_with_a_new_attempt_and_seed(void **state)
{
    (void)state;
    flight *list = NULL;
    flight *f = make(&list, NULL, 0, 42);
    assert_non_null(f);
    assert_ptr_equal(list, f);
    assert_int_equal(f->seed0, 42);
    int32_t ids[3] = {7, 8, 9};
    assert_int_equal(flight_add_tokens(f, ids, 3), 0);
    assert_int_equal(flight_resume(f), 0);
    assert_int_equal(f->attempt, 1);
    assert_int_equal(f->resumes, 1);
    assert_int_equal(f->request->attempt, 1);
    assert_int_equal(f->request->n_resume_tokens, 3);
    assert_memory_equal(f->request->resume_tokens, ids, sizeof ids);
    assert_int_equal(f->attempt_tokens, 3);
    assert_true(f->request->sampling->seed == flight_resume_seed(42, 1, 3));
    assert_true(flight_resume_seed(42, 1, 3) != flight_resume_seed(42, 2, 3));
    assert_true(flight_resume_seed(42, 1, 3) != flight_resume_seed(42, 1, 4));
    assert_true(flight_resume_seed(42, 1, 3) == flight_resume_seed(42, 1, 3));
    flight_served_by(f, "a");
    flight_served_by(f, "a");
    flight_served_by(f, "b");
    assert_int_equal(f->n_agents, 2);
    assert_string_equal(f->agents[1], "b");
    flight_destroy(&f);
    assert_null(list); /* off the coordinator's list */
}

static void test_a_re_sent_call_goes_on_after_the_tokens_the_client_has(void **state)
{
    (void)state;
    flight *list = NULL;
    int32_t got[2] = {5, 6};
    flight *f = make(&list, got, 2, 9);
    assert_non_null(f);
    assert_int_equal(f->n_tokens, 2);
    assert_int_equal(f->request->n_resume_tokens, 2);
    assert_int_equal(f->request->n_received_tokens, 0);
    assert_true(f->attempt >= 0x80000000u); /* never an earlier coordinator's number */
    assert_int_equal(f->request->attempt, f->attempt);
    assert_int_equal(f->resumes, 0);
    flight_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_resume_carries_every_relayed_token_with_a_new_attempt_and_seed),
        cmocka_unit_test(test_a_re_sent_call_goes_on_after_the_tokens_the_client_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
