/* Implementation of bench_prompt.h: grows a plain English text word by word and re-tokenizes it
 * after each word, stopping at exactly the wanted count (a one-token filler closes the gap when
 * a word would overshoot). */
#include "bench_prompt.h"

#include "edgefleet.h"

#include <llama.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench_prompts {
    struct llama_model *model; /* vocab only */
    const struct llama_vocab *vocab;
};

/* Children's-story words: stories260K knows them, and the Qwen vocab has each as one token. */
static const char *const WORDS[] = {
    " once", " upon", " a",     " time", " there", " was", " little", " girl",  " named",
    " Lily", " she",  " loved", " to",   " play",  " in",  " the",    " park",  " with",
    " her",  " dog",  " one",   " day",  " they",  " saw", " big",    " red",   " ball",
    " and",  " ran",  " after", " it",   " sun",   " was", " warm",   " happy", " friends"};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

/* Words that are one token in common vocabularies, to close the last gap. */
static const char *const FILLERS[] = {" a", ".", " I", ",", "a"};
#define N_FILLERS (sizeof FILLERS / sizeof FILLERS[0])

bench_prompts *bench_prompts_new(const char *model_path)
{
    bench_prompts *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    p->model = llama_model_load_from_file(model_path, mp);
    if (!p->model) {
        free(p);
        return NULL;
    }
    p->vocab = llama_model_get_vocab(p->model);
    return p;
}

void bench_prompts_destroy(bench_prompts **p_p)
{
    if (!*p_p)
        return;
    llama_model_free((*p_p)->model);
    free(*p_p);
    *p_p = NULL;
}

static int count_tokens(bench_prompts *p, const char *text)
{
    llama_token toks[1024];
    return llama_tokenize(p->vocab, text, (int32_t)strlen(text), toks, 1024, true, true);
}

/* Append word to text if the result has at most n_tokens tokens; returns the new count, or -1
 * (text unchanged) when it would overshoot or not fit. */
static int try_append(bench_prompts *p, char *text, size_t cap, const char *word, int n_tokens)
{
    size_t len = strlen(text);
    if (len + strlen(word) + 1 > cap)
        return -1;
    strcpy(text + len, word);
    int n = count_tokens(p, text);
    if (n < 0 || n > n_tokens) {
        text[len] = '\0';
        return -1;
    }
    return n;
}

int bench_prompt_make(bench_prompts *p, int variant, int n_tokens, char *out, size_t cap)
{
    /* A distinct number first: prompts share no prefix beyond BOS. */
    if (snprintf(out, cap, "%d", variant) >= (int)cap)
        return EF_EINVAL;
    int n = count_tokens(p, out);
    for (size_t i = 0; n >= 0 && n < n_tokens; i++) {
        int m = try_append(p, out, cap, WORDS[(i + (size_t)variant) % N_WORDS], n_tokens);
        for (size_t f = 0; m < 0 && f < N_FILLERS; f++)
            m = try_append(p, out, cap, FILLERS[f], n_tokens);
        if (m < 0)
            return EF_EINVAL;
        n = m;
    }
    return n == n_tokens ? 0 : EF_EINVAL;
}
