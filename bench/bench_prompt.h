/* Prompts of an exact token count for the agent benches: pp128 must be 128 tokens as the agent
 * tokenizes them (llama_tokenize with special tokens added and parsed, as
 * agent/backend_llama_text.c does), and every prompt must differ from the first token on, so
 * the agent's prefix cache cannot skip any of the prompt. Uses a vocab-only load of the model. */
#ifndef EF_BENCH_PROMPT_H
#define EF_BENCH_PROMPT_H

#include <stddef.h>

typedef struct bench_prompts bench_prompts;

/* Load the model's vocabulary only. NULL when the file does not load. */
bench_prompts *bench_prompts_new(const char *model_path);
void bench_prompts_destroy(bench_prompts **p_p);

/* Write prompt number `variant` of exactly n_tokens tokens into out. Returns 0, or EF_EINVAL
 * when no such text was found (or it does not fit cap). */
int bench_prompt_make(bench_prompts *p, int variant, int n_tokens, char *out, size_t cap);

#endif
