/* The project's first real-model test: stories260K through the llama.cpp C API directly, with no
 * edgefleet code in between. If this fails, the pinned llama.cpp or the model file is at fault,
 * not the agent. Loads the model once; every test shares it. */
#include "test_support.h"

#include <llama.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N_GEN 32

static struct llama_model *g_model;

/* llama.cpp is chatty on stderr; the test keeps only its errors. */
static void quiet_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

static int setup(void **state)
{
    (void)state;
    char path[1024];
    if (ts_model_path("stories260K.gguf", path, sizeof path) != 0) {
        fprintf(stderr, "model not found: %s\n", path);
        return -1;
    }
    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    g_model = llama_model_load_from_file(path, mp);
    return g_model ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    llama_model_free(g_model);
    g_model = NULL;
    llama_backend_free();
    return 0;
}

static void test_tokenize_detokenize_round_trip(void **state)
{
    (void)state;
    const struct llama_vocab *vocab = llama_model_get_vocab(g_model);
    const char *text = "Once upon a time, there was a little girl named Lily.";
    llama_token tokens[128];
    int32_t n = llama_tokenize(vocab, text, (int32_t)strlen(text), tokens, 128, false, false);
    assert_true(n > 0);
    assert_true(n < (int32_t)strlen(text)); /* a real tokenizer merges characters */
    char back[512];
    int32_t len = llama_detokenize(vocab, tokens, n, back, sizeof back - 1, false, false);
    assert_true(len > 0);
    back[len] = '\0';
    /* SentencePiece may add one leading space; the text itself must come back unchanged. */
    const char *cmp = back[0] == ' ' && text[0] != ' ' ? back + 1 : back;
    assert_string_equal(cmp, text);
}

/* Greedy generation of N_GEN tokens on a fresh context; writes the text into out. */
static int generate_greedy(const char *prompt, char *out, size_t cap, llama_token *ids)
{
    const struct llama_vocab *vocab = llama_model_get_vocab(g_model);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    struct llama_context *ctx = llama_init_from_model(g_model, cp);
    if (!ctx)
        return -1;
    struct llama_sampler *smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

    llama_token prompt_tokens[64];
    int32_t n =
        llama_tokenize(vocab, prompt, (int32_t)strlen(prompt), prompt_tokens, 64, true, false);
    int rc = n > 0 ? 0 : -1;
    struct llama_batch batch = llama_batch_get_one(prompt_tokens, n);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; rc == 0 && i < N_GEN; i++) {
        if (llama_decode(ctx, batch) != 0) {
            rc = -1;
            break;
        }
        ids[i] = llama_sampler_sample(smpl, ctx, -1);
        char piece[64];
        int32_t plen = llama_token_to_piece(vocab, ids[i], piece, sizeof piece, 0, false);
        if (plen < 0 || used + (size_t)plen >= cap) {
            rc = -1;
            break;
        }
        memcpy(out + used, piece, (size_t)plen);
        used += (size_t)plen;
        out[used] = '\0';
        batch = llama_batch_get_one(&ids[i], 1);
    }
    llama_sampler_free(smpl);
    llama_free(ctx);
    return rc;
}

static void test_greedy_generation_is_repeatable(void **state)
{
    (void)state;
    char first[2048], second[2048];
    llama_token ids1[N_GEN] = {0}, ids2[N_GEN] = {0};
    assert_int_equal(generate_greedy("Once upon a time", first, sizeof first, ids1), 0);
    assert_int_equal(generate_greedy("Once upon a time", second, sizeof second, ids2), 0);
    assert_true(strlen(first) > 0);
    assert_memory_equal(ids1, ids2, sizeof ids1);
    assert_string_equal(first, second);
    printf("greedy: \"Once upon a time%s\"\n", first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_detokenize_round_trip),
        cmocka_unit_test(test_greedy_generation_is_repeatable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
