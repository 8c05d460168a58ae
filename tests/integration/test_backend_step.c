/* The llama.cpp backend's batched step on the real model (stories260K), driven directly through
 * backend_llama_ops, below the engine's checks: a slot whose own tokens llama_decode refuses is
 * stopped alone, with an error in its step item, while the other slots of the same batch get
 * their token in that step and every later one; the failed slot takes a new sequence again. */
#include "backend.h"
#include "test_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Steps slot 0 is followed for after the failure: enough to see it is not a one-off. */
#define FOLLOW_STEPS 24

static char g_model[1024];

static backend *load(uint32_t slots)
{
    backend_params bp = {.kind = BACKEND_LLAMA,
                         .name = "stories",
                         .path = g_model,
                         .n_ctx = 256,
                         .n_slots = slots,
                         .n_threads = 1};
    backend *b = NULL;
    ef_errmsg em = {{0}};
    int rc = backend_llama_ops.load(&bp, &b, &em);
    if (rc != 0)
        fprintf(stderr, "load: %s (%s)\n", em.msg, ef_err_name(rc));
    return b;
}

/* The tokens of text, plus `extra` ids appended (for foreign ids); *n set. Caller frees. */
static int32_t *tokens_of(backend *b, const char *text, const int32_t *extra, size_t n_extra,
                          size_t *n)
{
    int32_t *t = NULL;
    assert_int_equal(backend_llama_ops.tokenize(b, text, strlen(text), &t, n), 0);
    assert_true(*n > 0);
    int32_t *all = realloc(t, (*n + n_extra) * sizeof *all);
    assert_non_null(all);
    if (n_extra)
        memcpy(all + *n, extra, n_extra * sizeof *extra);
    *n += n_extra;
    return all;
}

static void start(backend *b, int slot, const int32_t *prompt, size_t n)
{
    backend_sampling greedy = {0};
    uint32_t n_eval = 0;
    assert_int_equal(backend_llama_ops.seq_start(b, slot, prompt, n, &greedy, &n_eval), 0);
}

/* One step; the item of `slot` (NULL when the step did not touch it). */
static const backend_step_item *step_item(backend *b, backend_step_item *items, size_t *n, int slot)
{
    backend_llama_ops.step(b, items, BACKEND_MAX_SLOTS, n);
    for (size_t i = 0; i < *n; i++)
        if (items[i].slot == slot)
            return &items[i];
    return NULL;
}

static const backend_step_item *find_item(const backend_step_item *items, size_t n, int slot)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].slot == slot)
            return &items[i];
    return NULL;
}

/* Greedy tokens of "Once upon a time" on slot 0 of a fresh backend, one per step: what slot 0
 * must produce whatever happens to slot 1 (after the failure slot 0 is decoded alone, the same
 * batches as here). */
static void reference(int32_t *out, size_t n_out)
{
    backend *b = load(2);
    assert_non_null(b);
    size_t n = 0;
    int32_t *p = tokens_of(b, "Once upon a time", NULL, 0, &n);
    start(b, 0, p, n);
    backend_step_item items[BACKEND_MAX_SLOTS];
    size_t n_items = 0;
    for (size_t k = 0; k < n_out; k++) {
        const backend_step_item *it = step_item(b, items, &n_items, 0);
        assert_non_null(it);
        assert_int_equal(it->error, 0);
        assert_true(it->token >= 0);
        out[k] = it->token;
    }
    free(p);
    backend_llama_ops.destroy(&b);
}

static void test_a_slot_whose_tokens_fail_to_decode_is_stopped_alone_and_the_other_keeps_generating(
    void **state)
{
    (void)state;
    int32_t ref[FOLLOW_STEPS];
    reference(ref, FOLLOW_STEPS);

    backend *b = load(2);
    assert_non_null(b);
    backend_desc d;
    backend_llama_ops.describe(b, &d);
    assert_true(d.n_vocab > 0);
    size_t n0 = 0, n1 = 0;
    int32_t *p0 = tokens_of(b, "Once upon a time", NULL, 0, &n0);
    /* An id past the vocabulary in slot 1's prompt, as the engine would never let through:
     * llama_decode refuses the whole shared batch (-1). */
    const int32_t foreign[2] = {(int32_t)d.n_vocab + 7, 5};
    int32_t *p1 = tokens_of(b, "The cat sat", foreign, 2, &n1);
    start(b, 0, p0, n0);
    start(b, 1, p1, n1);

    backend_step_item items[BACKEND_MAX_SLOTS];
    size_t n = 0;
    const backend_step_item *it0 = step_item(b, items, &n, 0);
    const backend_step_item *it1 = find_item(items, n, 1);
    assert_non_null(it0);
    assert_int_equal(it0->error, 0);
    assert_int_equal(it0->n_prompt, n0);
    assert_int_equal(it0->token, ref[0]); /* its token in the very step that failed */
    assert_non_null(it1);
    assert_int_not_equal(it1->error, 0);
    assert_int_equal(it1->token, -1);
    assert_int_equal(n, 2);

    for (size_t k = 1; k < FOLLOW_STEPS; k++) {
        it0 = step_item(b, items, &n, 0);
        assert_non_null(it0);
        assert_int_equal(n, 1); /* slot 1 is stopped: no more items for it */
        assert_int_equal(it0->error, 0);
        assert_int_equal(it0->token, ref[k]);
    }

    /* Slot 1 is free again and serves a sound prompt beside the running slot 0. */
    free(p1);
    p1 = tokens_of(b, "The cat sat", NULL, 0, &n1);
    start(b, 1, p1, n1);
    it1 = step_item(b, items, &n, 1);
    assert_non_null(it1);
    assert_int_equal(it1->error, 0);
    assert_int_equal(it1->n_prompt, n1);
    assert_true(it1->token >= 0);
    it0 = find_item(items, n, 0);
    assert_non_null(it0);
    assert_int_equal(it0->error, 0);
    assert_true(it0->token >= 0);
    it1 = step_item(b, items, &n, 1);
    assert_non_null(it1);
    assert_int_equal(it1->error, 0);
    assert_true(it1->token >= 0);

    backend_llama_ops.seq_stop(b, 0);
    backend_llama_ops.seq_stop(b, 1);
    free(p0);
    free(p1);
    backend_llama_ops.destroy(&b);
    assert_null(b);
}

static void
test_a_lone_slot_whose_tokens_fail_gets_its_error_and_the_slot_starts_again(void **state)
{
    (void)state;
    backend *b = load(2);
    assert_non_null(b);
    backend_desc d;
    backend_llama_ops.describe(b, &d);
    size_t n = 0, n_items = 0;
    const int32_t foreign[1] = {-3};
    int32_t *p = tokens_of(b, "Lily and Ben", foreign, 1, &n);
    start(b, 1, p, n);
    backend_step_item items[BACKEND_MAX_SLOTS];
    const backend_step_item *it = step_item(b, items, &n_items, 1);
    assert_non_null(it);
    assert_int_not_equal(it->error, 0);
    assert_int_equal(it->token, -1);
    assert_int_equal(n_items, 1);
    /* Stopped: a step with nothing started touches no slot. */
    step_item(b, items, &n_items, 1);
    assert_int_equal(n_items, 0);

    free(p);
    p = tokens_of(b, "Lily and Ben", NULL, 0, &n);
    start(b, 1, p, n);
    it = step_item(b, items, &n_items, 1);
    assert_non_null(it);
    assert_int_equal(it->error, 0);
    assert_true(it->token >= 0 && (uint32_t)it->token < d.n_vocab);
    backend_llama_ops.seq_stop(b, 1);
    free(p);
    backend_llama_ops.destroy(&b);
}

int main(void)
{
    if (ts_model_path("stories260K.gguf", g_model, sizeof g_model) != 0) {
        fprintf(stderr, "model not found: %s\n", g_model);
        return 1;
    }
    backend_llama_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_a_slot_whose_tokens_fail_to_decode_is_stopped_alone_and_the_other_keeps_generating),
        cmocka_unit_test(
            test_a_lone_slot_whose_tokens_fail_gets_its_error_and_the_slot_starts_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
