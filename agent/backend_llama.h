/* Private to the llama.cpp backend: its state and the functions its three files share
 * (backend_llama.c: load/describe; backend_llama_text.c: tokens and chat;
 * backend_llama_slots.c: sequences and the batched step). Nothing else includes this. */
#ifndef EF_AGENT_BACKEND_LLAMA_H
#define EF_AGENT_BACKEND_LLAMA_H

#include "backend.h"

#include <ggml-cpu.h>
#include <llama.h>

typedef enum { LSLOT_FREE = 0, LSLOT_PROMPT, LSLOT_GENERATE } lslot_state;

/* One slot = one llama sequence (seq_id = slot index). tokens[0..n_cached) are in the KV cache;
 * while generating, tokens[n_cached] is the sampled token that the next step decodes. The cache
 * outlives the request so the next turn of a session reuses its common prefix. */
typedef struct {
    lslot_state state;
    int32_t *tokens;   /* slot_ctx + 1 entries */
    uint32_t n_cached; /* decoded into the KV cache */
    uint32_t n_prompt;
    struct llama_sampler *sampler;
    int32_t i_batch; /* this slot's output row in the current batch, -1 = none */
    uint32_t n_in_batch;
} lslot;

struct backend {
    struct llama_model *model;
    const struct llama_vocab *vocab;
    struct llama_context *ctx;
    struct ggml_threadpool *threadpool; /* persistent workers; paused while no slot is busy */
    struct llama_batch batch;
    char *chat_template; /* configured; NULL = the model's own */
    uint64_t size_bytes;
    uint8_t sha256[32]; /* of the GGUF file */
    uint32_t n_slots, n_threads, n_batch;
    uint32_t slot_ctx;   /* tokens per slot (llama_n_ctx_seq) */
    uint32_t next_first; /* round-robin start for prompt chunks, so prompts share the budget */
    lslot slots[BACKEND_MAX_SLOTS];
};

void llama_ops_destroy(backend **b_p);

int llama_text_tokenize(backend *b, const char *text, size_t len, int32_t **out, size_t *n_out);
int llama_text_render_chat(backend *b, const backend_chat_msg *msgs, size_t n, char **out);
int llama_text_piece(backend *b, int32_t token, char *buf, size_t cap);

size_t llama_slots_cached_prefix(backend *b, int slot, const int32_t *prompt, size_t n);
int llama_slots_seq_start(backend *b, int slot, const int32_t *prompt, size_t n,
                          const backend_sampling *s, uint32_t *n_eval);
void llama_slots_step(backend *b, backend_step_item *items, size_t cap, size_t *n_items);
void llama_slots_seq_stop(backend *b, int slot);

#endif
