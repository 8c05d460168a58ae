/* The simulated backend: no model, no llama.cpp. Each slot "evaluates" its prompt at
 * sim_prompt_tps and then produces tokens at sim_tokens_per_s, so the coordinator can be tested
 * at fleet scale with hundreds of cheap agents. It says so everywhere: kind "simulated",
 * architecture and quantization "simulated", desc.simulated = 1 (Register.simulated). Tokens are
 * words from a fixed list; prefix reuse works as on the real backend. Inference thread only. */
#include "backend.h"

#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIM_DEFAULT_TPS        20.0
#define SIM_DEFAULT_PROMPT_TPS 2000.0
#define SIM_DEFAULT_CTX        2048u
/* Longest sleep inside one step, so the engine still sees cancels and new requests promptly. */
#define SIM_MAX_SLEEP_NS 20000000ull
/* Bytes of text per simulated prompt token, roughly what real tokenizers give for English. */
#define SIM_BYTES_PER_TOKEN 4
/* Token ids the simulator knows: prompt tokens hash into 0..SIM_N_VOCAB-1, generated ones are
 * word indexes below it; the engine refuses resume tokens outside it as for a real model. */
#define SIM_N_VOCAB 4096u

static const char *const g_words[] = {
    " the",  " fleet", " board", " token", " model", " quick", " small", " edge",
    " runs", " and",   " a",     " story", " of",    " light", " in",    " time",
};
#define SIM_N_WORDS ((int32_t)(sizeof g_words / sizeof g_words[0]))

typedef enum { SSLOT_FREE = 0, SSLOT_PROMPT, SSLOT_GENERATE } sslot_state;

typedef struct {
    sslot_state state;
    int32_t *tokens;
    uint32_t n_cached, n_eval;
    uint64_t due_ns; /* when the next event (prompt done, next token) happens */
    uint32_t rng;
} sslot;

struct backend {
    uint32_t n_slots, slot_ctx, n_threads;
    double tps, prompt_tps;
    uint8_t sha256[32]; /* of the model's name: simulated boards of one model match */
    sslot slots[BACKEND_MAX_SLOTS];
};

static int sim_load(const backend_params *p, backend **out, ef_errmsg *em)
{
    *out = NULL;
    if (p->n_slots > BACKEND_MAX_SLOTS)
        return errmsg_set(em, EF_EINVAL, "simulated model \"%s\": %u slots (at most %d)",
                          p->name ? p->name : "?", p->n_slots, BACKEND_MAX_SLOTS);
    backend *b = calloc(1, sizeof *b);
    if (!b)
        return errmsg_set(em, EF_ENOMEM, "out of memory");
    b->n_slots = p->n_slots ? p->n_slots : 1;
    const char *name = p->name ? p->name : "";
    crypto_hash_sha256(b->sha256, (const unsigned char *)name, strlen(name));
    b->slot_ctx = p->n_ctx ? p->n_ctx : SIM_DEFAULT_CTX;
    b->n_threads = p->n_threads ? p->n_threads : 1;
    b->tps = p->sim_tokens_per_s > 0 ? p->sim_tokens_per_s : SIM_DEFAULT_TPS;
    b->prompt_tps = p->sim_prompt_tps > 0 ? p->sim_prompt_tps : SIM_DEFAULT_PROMPT_TPS;
    for (uint32_t i = 0; i < b->n_slots; i++) {
        b->slots[i].tokens = calloc(b->slot_ctx + 1, sizeof(int32_t));
        if (!b->slots[i].tokens) {
            for (uint32_t j = 0; j < i; j++)
                free(b->slots[j].tokens);
            free(b);
            return errmsg_set(em, EF_ENOMEM, "out of memory");
        }
    }
    log_info("model \"%s\" is SIMULATED: %u slots x %u tokens, %.1f tokens/s per slot",
             p->name ? p->name : "?", b->n_slots, b->slot_ctx, b->tps);
    *out = b;
    return 0;
}

static void sim_destroy(backend **b_p)
{
    if (!b_p || !*b_p)
        return;
    for (uint32_t i = 0; i < (*b_p)->n_slots; i++)
        free((*b_p)->slots[i].tokens);
    free(*b_p);
    *b_p = NULL;
}

static void sim_describe(const backend *b, backend_desc *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->architecture, sizeof out->architecture, "simulated");
    snprintf(out->quantization, sizeof out->quantization, "simulated");
    out->n_ctx = b->slot_ctx;
    out->n_vocab = SIM_N_VOCAB;
    memcpy(out->sha256, b->sha256, sizeof out->sha256);
    out->n_slots = b->n_slots;
    out->n_threads = b->n_threads;
    out->has_chat_template = 1;
    out->simulated = 1;
}

/* One token per SIM_BYTES_PER_TOKEN bytes, its id a hash of those bytes: the same text gives
 * the same tokens, so prefix reuse behaves as on a real model. */
static int sim_tokenize(backend *b, const char *text, size_t len, int32_t **out, size_t *n_out)
{
    (void)b;
    size_t n = (len + SIM_BYTES_PER_TOKEN - 1) / SIM_BYTES_PER_TOKEN;
    int32_t *t = malloc(sizeof *t * (n + 1));
    if (!t)
        return EF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t h = 2166136261u;
        for (size_t k = i * SIM_BYTES_PER_TOKEN; k < len && k < (i + 1) * SIM_BYTES_PER_TOKEN; k++)
            h = (h ^ (uint8_t)text[k]) * 16777619u;
        t[i] = (int32_t)(h % SIM_N_VOCAB);
    }
    *out = t;
    *n_out = n;
    return 0;
}

static int sim_render_chat(backend *b, const backend_chat_msg *msgs, size_t n, char **out)
{
    (void)b;
    size_t total = 32;
    for (size_t i = 0; i < n; i++)
        total += strlen(msgs[i].role) + strlen(msgs[i].content) + 4;
    char *s = malloc(total);
    if (!s)
        return EF_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(s + used, total - used, "%s: %s\n", msgs[i].role, msgs[i].content);
    snprintf(s + used, total - used, "assistant:");
    *out = s;
    return 0;
}

static int sim_piece(backend *b, int32_t token, char *buf, size_t cap)
{
    (void)b;
    const char *w = g_words[(token < 0 ? -token : token) % SIM_N_WORDS];
    size_t n = strlen(w);
    if (n > cap)
        return EF_EINVAL;
    memcpy(buf, w, n);
    return (int)n;
}

static size_t sim_cached_prefix(backend *b, int slot, const int32_t *prompt, size_t n)
{
    const sslot *sl = &b->slots[slot];
    size_t i = 0;
    while (i < sl->n_cached && i < n && sl->tokens[i] == prompt[i])
        i++;
    return i;
}

static int sim_seq_start(backend *b, int slot, const int32_t *prompt, size_t n,
                         const backend_sampling *s, uint32_t *n_eval)
{
    if (slot < 0 || (uint32_t)slot >= b->n_slots || n == 0 || n >= b->slot_ctx)
        return EF_EINVAL;
    sslot *sl = &b->slots[slot];
    if (sl->state != SSLOT_FREE)
        return EF_EINVAL;
    size_t keep = sim_cached_prefix(b, slot, prompt, n);
    if (keep >= n)
        keep = n - 1;
    memcpy(sl->tokens, prompt, n * sizeof *prompt);
    sl->n_cached = (uint32_t)n; /* the simulated cache is filled at once; timing is modelled */
    sl->n_eval = (uint32_t)(n - keep);
    sl->rng = s->seed ? s->seed : 1u;
    sl->state = SSLOT_PROMPT;
    sl->due_ns = clock_mono_ns() + (uint64_t)((double)sl->n_eval / b->prompt_tps * 1e9);
    *n_eval = sl->n_eval;
    return 0;
}

static void sim_seq_stop(backend *b, int slot)
{
    if (slot >= 0 && (uint32_t)slot < b->n_slots)
        b->slots[slot].state = SSLOT_FREE;
}

static void sleep_until(uint64_t due_ns)
{
    uint64_t now = clock_mono_ns();
    if (due_ns <= now)
        return;
    uint64_t ns = due_ns - now;
    if (ns > SIM_MAX_SLEEP_NS)
        ns = SIM_MAX_SLEEP_NS;
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

static void sim_step(backend *b, backend_step_item *items, size_t cap, size_t *n_items)
{
    *n_items = 0;
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < b->n_slots; i++)
        if (b->slots[i].state != SSLOT_FREE && b->slots[i].due_ns < next)
            next = b->slots[i].due_ns;
    if (next == UINT64_MAX)
        return;
    sleep_until(next);
    uint64_t now = clock_mono_ns();
    uint64_t gap = (uint64_t)(1e9 / b->tps);
    for (uint32_t i = 0; i < b->n_slots && *n_items < cap; i++) {
        sslot *sl = &b->slots[i];
        if (sl->state == SSLOT_FREE || sl->due_ns > now)
            continue;
        backend_step_item it = {.slot = (int)i, .token = -1};
        if (sl->n_cached >= b->slot_ctx) {
            it.context_full = 1;
        } else {
            if (sl->state == SSLOT_PROMPT)
                it.n_prompt = sl->n_eval;
            sl->state = SSLOT_GENERATE;
            sl->rng = sl->rng * 1103515245u + 12345u; /* a seed gives a repeatable "answer" */
            it.token = (int32_t)((sl->rng >> 8) % (uint32_t)SIM_N_WORDS);
            sl->tokens[sl->n_cached++] = it.token;
            sl->due_ns = now + gap;
        }
        items[(*n_items)++] = it;
    }
}

const backend_ops backend_sim_ops = {
    .load = sim_load,
    .destroy = sim_destroy,
    .describe = sim_describe,
    .tokenize = sim_tokenize,
    .render_chat = sim_render_chat,
    .piece = sim_piece,
    .cached_prefix = sim_cached_prefix,
    .seq_start = sim_seq_start,
    .step = sim_step,
    .seq_stop = sim_seq_stop,
};
