/* Inference backend interface: one loaded model with a fixed number of slots (parallel
 * sequences), stepped in lockstep. Two implementations sit behind the same table of functions:
 * backend_llama.c (llama.cpp in-process, one shared context, one batch per step) and
 * backend_sim.c (tokens at a configured rate, no model, for fleet-scale tests).
 * A backend is used by one thread at a time (the engine's inference thread), except load. */
#ifndef EF_AGENT_BACKEND_H
#define EF_AGENT_BACKEND_H

#include "errors.h"

#include <stddef.h>
#include <stdint.h>

/* Upper bound on slots per model: the slot index is a llama_seq_id and sizes fixed arrays. */
#define BACKEND_MAX_SLOTS 64

typedef struct backend backend;

typedef enum { BACKEND_LLAMA = 0, BACKEND_SIMULATED = 1 } backend_kind;

typedef struct {
    backend_kind kind;
    const char *name;          /* model name requests use */
    const char *path;          /* GGUF file; unused by the simulated backend */
    uint32_t n_ctx;            /* context per slot, tokens; 0 = min(2048, model's training ctx) */
    uint32_t n_slots;          /* parallel sequences; 0 = 1 */
    uint32_t n_threads;        /* 0 = online CPUs */
    uint32_t n_batch;          /* tokens per decode (prompt chunk budget); 0 = 256 */
    const char *chat_template; /* template name or text when the model has none; NULL = model's */
    double sim_tokens_per_s;   /* simulated: tokens/s per slot; 0 = 20 */
    double sim_prompt_tps;     /* simulated: prompt tokens/s; 0 = 2000 */
    /* llama.cpp knobs that bench_determinism varies (0 = the agent's default each): */
    int kv_unified;    /* 1 = one KV buffer for all slots (default: one stream per slot) */
    uint32_t n_ubatch; /* physical batch; 0 = n_batch */
    int no_repack;     /* 1 = llama_model_params.use_extra_bufts off (no CPU weight repack) */
    int flash_attn;    /* 0 = llama.cpp's auto, 1 = off, 2 = on */
    /* 1 = greedy output independent of the other slots' load (on one build and CPU): flash
     * attention off, since its CPU kernel takes a split-KV path for a lone decoding sequence
     * and another for several (bench/README.md, "Determinism"). Overrides flash_attn. */
    int deterministic;
} backend_params;

/* What Register reports about a model. */
typedef struct {
    char architecture[64]; /* general.architecture, "simulated" for the simulator */
    char quantization[64]; /* "F32", "Q4_K_M", "simulated" */
    uint64_t size_bytes;   /* file size */
    uint64_t n_params;
    uint32_t n_ctx;     /* per slot */
    uint32_t n_vocab;   /* token ids are 0 .. n_vocab-1; anything else must never be decoded */
    uint8_t sha256[32]; /* of the model file (simulated: of its name): which bytes it serves */
    uint32_t n_slots;
    uint32_t n_threads;
    int has_chat_template; /* own or configured */
    int simulated;
} backend_desc;

typedef struct {
    float temperature;      /* 0 = greedy */
    int32_t top_k;          /* 0 = off */
    float top_p;            /* 0 or 1 = off */
    float min_p;            /* 0 = off */
    float repeat_penalty;   /* 0 or 1 = off */
    uint32_t repeat_last_n; /* 0 = 64 */
    uint32_t seed;          /* used as is (the engine picks one for "random") */
} backend_sampling;

typedef struct {
    const char *role;
    const char *content;
} backend_chat_msg;

/* What one step did for one slot. */
typedef struct {
    int slot;
    int32_t token;     /* the sampled token, or -1 when the step only advanced the prompt */
    int eog;           /* token ends generation (EOS/EOT) */
    int context_full;  /* the slot's context has no room for another token (token is -1) */
    uint32_t n_prompt; /* prompt tokens evaluated for this slot in this step */
    /* 0, or the backend's code for why this slot's own tokens could not be decoded (for llama,
     * llama_decode's return value). The slot is then stopped, its cache holding what it held
     * before the step; token is -1. Other slots of the step are not affected. */
    int32_t error;
} backend_step_item;

typedef struct {
    /* Load p->path (or set up the simulator). Returns 0 with *out set, or EF_ENOENT (missing
     * file), EF_EMODEL (not GGUF, truncated, refused by llama.cpp), EF_EINVAL, EF_ENOMEM, with
     * em naming the file. Safe to call from any thread; nothing is left allocated on failure. */
    int (*load)(const backend_params *p, backend **out, ef_errmsg *em);
    /* Free everything; sets *b_p = NULL. NULL-safe. */
    void (*destroy)(backend **b_p);
    void (*describe)(const backend *b, backend_desc *out);

    /* Text to tokens, with BOS when the model wants one. *out is malloc'd (caller frees).
     * EF_ETOKENIZE, EF_ENOMEM. Thread-safe. */
    int (*tokenize)(backend *b, const char *text, size_t len, int32_t **out, size_t *n_out);
    /* Render chat messages with the model's template (or the configured one), ending with the
     * assistant turn's opening. *out malloc'd. EF_EINVAL when no template applies. */
    int (*render_chat)(backend *b, const backend_chat_msg *msgs, size_t n, char **out);
    /* The text of one token into buf (not NUL-terminated). Returns its byte length, or
     * EF_EINVAL when cap is too small. */
    int (*piece)(backend *b, int32_t token, char *buf, size_t cap);

    /* Tokens of prompt already in slot's cache (the common prefix), without changing it. */
    size_t (*cached_prefix)(backend *b, int slot, const int32_t *prompt, size_t n);
    /* Start a sequence on a free slot: keep the common prefix of its cache, drop the rest, and
     * queue the remaining prompt tokens; *n_eval says how many will be evaluated. n must be at
     * least 1 and below the slot context, and every id below n_vocab (the engine checks: ids a
     * peer sent are checked in engine_submit). Returns 0, EF_ENOMEM, EF_EINVAL. */
    int (*seq_start)(backend *b, int slot, const int32_t *prompt, size_t n,
                     const backend_sampling *s, uint32_t *n_eval);
    /* One decode over every started slot: pending prompt chunks and each generating slot's last
     * token go in one batch. Fills up to cap items (one per slot touched; cap >= the slot count,
     * or items are lost). A failure is per slot, never per step: a slot whose tokens cannot be
     * decoded gets an item with error set and is stopped; the others still get their step.
     * Blocks for the duration of the decode (the simulator sleeps until its next token is
     * due). */
    void (*step)(backend *b, backend_step_item *items, size_t cap, size_t *n_items);
    /* Stop a slot's sequence at once (cancel, finish). Its cache stays for prefix reuse. */
    void (*seq_stop)(backend *b, int slot);
} backend_ops;

extern const backend_ops backend_llama_ops;
extern const backend_ops backend_sim_ops;

/* The table for a kind. */
const backend_ops *backend_ops_for(backend_kind kind);

/* Route llama.cpp's own log lines to our log at debug level. Idempotent; call before load. */
void backend_llama_init(void);

/* 0 if tmpl is a chat template llama.cpp can apply: a built-in name (llama_chat_builtin_templates)
 * or a template text it recognises (tried on one message). Otherwise EF_ECONFIG, and the
 * built-in names, comma-separated, go into known (cap bytes; cut short if they do not fit).
 * Needs no model: the agent checks its config with it before loading any. Any thread. */
int backend_llama_check_template(const char *tmpl, char *known, size_t cap);

#endif
