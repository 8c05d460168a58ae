/* llama.cpp backend, sequence side: slots on one shared llama_context, the sampler chain per
 * request, and the batched step. Each step builds ONE llama_batch: first every generating
 * slot's pending token (one output row each), then prompt chunks from slots still evaluating
 * their prompt, up to n_batch tokens in all, so a long prompt advances in chunks while the
 * other streams keep producing a token per step. When that decode fails, each slot is restored
 * and decoded alone, so a failure stops only the slots it belongs to. Inference thread only. */
#include "backend_llama.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

/* Default penalty window, as llama.cpp's common sampling uses. */
#define DEFAULT_REPEAT_LAST_N 64

static struct llama_sampler *sampler_new(backend *b, const backend_sampling *s)
{
    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler *chain = llama_sampler_chain_init(cp);
    if (!chain)
        return NULL;
    if (s->repeat_penalty > 0.0f && s->repeat_penalty != 1.0f) {
        int32_t last_n = s->repeat_last_n ? (int32_t)s->repeat_last_n : DEFAULT_REPEAT_LAST_N;
        llama_sampler_chain_add(chain,
                                llama_sampler_init_penalties(llama_vocab_n_tokens(b->vocab), last_n,
                                                             s->repeat_penalty, 0.0f, 0.0f));
    }
    if (s->temperature <= 0.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return chain;
    }
    if (s->top_k > 0)
        llama_sampler_chain_add(chain, llama_sampler_init_top_k(s->top_k));
    if (s->top_p > 0.0f && s->top_p < 1.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(s->top_p, 1));
    if (s->min_p > 0.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_min_p(s->min_p, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(s->temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(s->seed));
    return chain;
}

size_t llama_slots_cached_prefix(backend *b, int slot, const int32_t *prompt, size_t n)
{
    const lslot *sl = &b->slots[slot];
    size_t i = 0;
    while (i < sl->n_cached && i < n && sl->tokens[i] == prompt[i])
        i++;
    return i;
}

int llama_slots_seq_start(backend *b, int slot, const int32_t *prompt, size_t n,
                          const backend_sampling *s, uint32_t *n_eval)
{
    if (slot < 0 || (uint32_t)slot >= b->n_slots || n == 0 || n >= b->slot_ctx)
        return EF_EINVAL;
    lslot *sl = &b->slots[slot];
    if (sl->state != LSLOT_FREE)
        return EF_EINVAL;
    struct llama_sampler *smpl = sampler_new(b, s);
    if (!smpl)
        return EF_ENOMEM;
    /* Keep the common prefix; the last prompt token is always evaluated again because its
     * logits are what the first sampled token comes from. */
    size_t keep = llama_slots_cached_prefix(b, slot, prompt, n);
    if (keep >= n)
        keep = n - 1;
    llama_memory_t mem = llama_get_memory(b->ctx);
    if (!llama_memory_seq_rm(mem, slot, (llama_pos)keep, -1)) {
        /* Models whose memory cannot drop a tail (recurrent) start from scratch. */
        llama_memory_seq_rm(mem, slot, -1, -1);
        keep = 0;
    }
    memcpy(sl->tokens, prompt, n * sizeof *prompt);
    sl->n_cached = (uint32_t)keep;
    sl->n_prompt = (uint32_t)n;
    sl->sampler = smpl;
    sl->state = LSLOT_PROMPT;
    sl->i_batch = -1;
    /* The penalty sampler must see the prompt to penalise repeats of it. */
    for (size_t i = 0; i < n; i++)
        llama_sampler_accept(smpl, prompt[i]);
    *n_eval = (uint32_t)(n - keep);
    return 0;
}

void llama_slots_seq_stop(backend *b, int slot)
{
    if (slot < 0 || (uint32_t)slot >= b->n_slots)
        return;
    lslot *sl = &b->slots[slot];
    if (sl->sampler)
        llama_sampler_free(sl->sampler);
    sl->sampler = NULL;
    sl->state = LSLOT_FREE;
    sl->i_batch = -1;
    for (uint32_t i = 0; i < b->n_slots; i++)
        if (b->slots[i].state != LSLOT_FREE)
            return;
    if (b->threadpool)
        ggml_threadpool_pause(b->threadpool); /* idle: let the workers sleep */
}

static void batch_add(struct llama_batch *batch, int32_t token, uint32_t pos, int seq, int output)
{
    int32_t i = batch->n_tokens++;
    batch->token[i] = token;
    batch->pos[i] = (llama_pos)pos;
    batch->n_seq_id[i] = 1;
    batch->seq_id[i][0] = seq;
    batch->logits[i] = (int8_t)output;
}

/* Fill the batch: generating slots first (one token each), then prompt chunks round-robin.
 * Slots whose context is full get an item at once and stay out of the batch. */
static void build_batch(backend *b, backend_step_item *items, size_t cap, size_t *n_items)
{
    struct llama_batch *batch = &b->batch;
    batch->n_tokens = 0;
    for (uint32_t i = 0; i < b->n_slots; i++) {
        lslot *sl = &b->slots[i];
        sl->i_batch = -1;
        sl->n_in_batch = 0;
        if (sl->state != LSLOT_GENERATE)
            continue;
        if (sl->n_cached >= b->slot_ctx) {
            if (*n_items < cap)
                items[(*n_items)++] =
                    (backend_step_item){.slot = (int)i, .token = -1, .context_full = 1};
            continue;
        }
        sl->i_batch = batch->n_tokens;
        batch_add(batch, sl->tokens[sl->n_cached], sl->n_cached, (int)i, 1);
        sl->n_in_batch = 1;
    }
    for (uint32_t k = 0; k < b->n_slots; k++) {
        uint32_t i = (b->next_first + k) % b->n_slots;
        lslot *sl = &b->slots[i];
        if (sl->state != LSLOT_PROMPT)
            continue;
        while (sl->n_cached + sl->n_in_batch < sl->n_prompt &&
               (uint32_t)batch->n_tokens < b->n_batch) {
            uint32_t pos = sl->n_cached + sl->n_in_batch;
            int last = pos + 1 == sl->n_prompt;
            if (last)
                sl->i_batch = batch->n_tokens;
            batch_add(batch, sl->tokens[pos], pos, (int)i, last);
            sl->n_in_batch++;
        }
    }
    b->next_first = (b->next_first + 1) % b->n_slots;
}

/* Slot i's part of the batch just decoded: its cache now holds the tokens it had in it, and
 * its output row (if any) gives its next token. */
static backend_step_item slot_advance(backend *b, uint32_t i)
{
    lslot *sl = &b->slots[i];
    backend_step_item it = {.slot = (int)i, .token = -1};
    if (sl->state == LSLOT_PROMPT)
        it.n_prompt = sl->n_in_batch;
    sl->n_cached += sl->n_in_batch;
    if (sl->i_batch >= 0) {
        int32_t tok = llama_sampler_sample(sl->sampler, b->ctx, sl->i_batch);
        sl->tokens[sl->n_cached] = tok;
        sl->state = LSLOT_GENERATE;
        it.token = tok;
        it.eog = llama_vocab_is_eog(b->vocab, tok);
    }
    return it;
}

/* Put slot i's KV cache back to the n_cached tokens it held before the step. llama_decode has
 * already done so when it returned -1 (invalid batch) or 1 (no KV room); after 2 (aborted) or
 * < -1 (fatal) the ubatches processed before the failure stay in memory, which pos_max shows.
 * Returns 0, or -1 when that tail cannot be dropped (a recurrent model's state, or a cache that
 * lost tokens): the slot's cache is emptied and it cannot go on. */
static int slot_restore(backend *b, uint32_t i)
{
    llama_memory_t mem = llama_get_memory(b->ctx);
    lslot *sl = &b->slots[i];
    llama_seq_id seq = (llama_seq_id)i;
    llama_pos last = (llama_pos)sl->n_cached - 1;
    if (llama_memory_seq_pos_max(mem, seq) == last)
        return 0;
    if (llama_memory_seq_rm(mem, seq, (llama_pos)sl->n_cached, -1) &&
        llama_memory_seq_pos_max(mem, seq) == last)
        return 0;
    llama_memory_seq_rm(mem, seq, -1, -1);
    sl->n_cached = 0;
    return -1;
}

/* Slot i's tokens could not be decoded (code rc): stop it, its cache as before the step. */
static backend_step_item slot_fail(backend *b, uint32_t i, int32_t rc)
{
    log_error("slot %u: llama_decode failed (%d) on its own %u tokens; slot stopped", i, rc,
              b->slots[i].n_in_batch);
    slot_restore(b, i);
    llama_slots_seq_stop(b, (int)i);
    return (backend_step_item){.slot = (int)i, .token = -1, .error = rc};
}

/* The batch again with slot i's tokens of this step only (n_in_batch from n_cached). */
static void build_slot_batch(backend *b, uint32_t i)
{
    lslot *sl = &b->slots[i];
    b->batch.n_tokens = 0;
    sl->i_batch = -1;
    for (uint32_t k = 0; k < sl->n_in_batch; k++) {
        uint32_t pos = sl->n_cached + k;
        int output = sl->state == LSLOT_GENERATE || pos + 1 == sl->n_prompt;
        if (output)
            sl->i_batch = (int32_t)k;
        batch_add(&b->batch, sl->tokens[pos], pos, (int)i, output);
    }
}

/* The shared batch failed with rc. Which slot's tokens caused it is unknown (an invalid id, a
 * fatal error), so restore every slot in it and decode each alone: a slot whose tokens are
 * fine still gets this step's token, and only the slots whose own batch fails are stopped.
 * Runs only after a failure; the normal step pays nothing for it. */
static void step_each_alone(backend *b, int32_t rc, backend_step_item *items, size_t cap,
                            size_t *n_items)
{
    uint32_t involved = 0;
    for (uint32_t i = 0; i < b->n_slots; i++)
        involved += b->slots[i].n_in_batch != 0;
    if (involved > 1)
        log_warn("llama_decode failed (%d) on a batch of %d tokens from %u slots; decoding each "
                 "slot alone",
                 rc, b->batch.n_tokens, involved);
    for (uint32_t i = 0; i < b->n_slots; i++) {
        lslot *sl = &b->slots[i];
        if (sl->n_in_batch == 0)
            continue;
        if (slot_restore(b, i) != 0 && *n_items < cap) {
            log_warn("slot %u: its KV cache cannot drop what the failed decode left", i);
            items[(*n_items)++] = slot_fail(b, i, rc);
            sl->n_in_batch = 0;
        }
    }
    for (uint32_t i = 0; i < b->n_slots && *n_items < cap; i++) {
        if (b->slots[i].n_in_batch == 0)
            continue;
        int32_t own = rc; /* a slot alone in the batch has had its own try already */
        if (involved > 1) {
            build_slot_batch(b, i);
            own = llama_decode(b->ctx, b->batch);
        }
        items[(*n_items)++] = own == 0 ? slot_advance(b, i) : slot_fail(b, i, own);
    }
}

void llama_slots_step(backend *b, backend_step_item *items, size_t cap, size_t *n_items)
{
    *n_items = 0;
    build_batch(b, items, cap, n_items);
    if (b->batch.n_tokens == 0)
        return;
    int32_t rc = llama_decode(b->ctx, b->batch);
    if (rc != 0) {
        step_each_alone(b, rc, items, cap, n_items);
        return;
    }
    for (uint32_t i = 0; i < b->n_slots && *n_items < cap; i++)
        if (b->slots[i].n_in_batch != 0)
            items[(*n_items)++] = slot_advance(b, i);
}
