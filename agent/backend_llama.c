/* The real backend: llama.cpp in-process. One model, ONE llama_context shared by all slots
 * (slot i = sequence i, each with its own KV stream), and one llama_batch per step that carries
 * every generating slot's last token plus chunks of pending prompts (continuous batching, as
 * llama-server does). Loading may run on any thread; everything else runs on the inference
 * thread. Text helpers (tokenize, chat, piece) live in backend_llama_text.c. */
#include "backend_llama.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <sodium.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Default per-slot context when neither config nor flag sets one: enough for chat turns on a
 * small board without reserving the model's whole training context per slot. */
#define DEFAULT_SLOT_CTX 2048u
/* Default tokens per decode: bounds how long one step (and so every stream's next token)
 * waits behind a long prompt, while still evaluating prompts in useful chunks. */
#define DEFAULT_BATCH 256u

static void llama_log_to_ours(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    (void)level;
    if (log_get_level() > LOG_DEBUG || !text)
        return;
    /* llama.cpp sends fragments ending in '\n'; our log adds its own line end. */
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (n > 0)
        log_debug("llama.cpp: %.*s", (int)n, text);
}

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    llama_log_set(llama_log_to_ours, NULL);
    llama_backend_init();
}

void backend_llama_init(void) { pthread_once(&g_init_once, init_once); }

/* Bytes read per step while hashing a model file. */
#define HASH_CHUNK (1u << 20)

/* SHA-256 of the rest of an open file, read in chunks: what identifies the model's bytes
 * across the fleet (a stream resumes only on a board serving the same file). */
static int hash_file(FILE *f, const char *path, uint8_t out[32], ef_errmsg *em)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    uint8_t *buf = malloc(HASH_CHUNK);
    if (!buf)
        return errmsg_set(em, EF_ENOMEM, "%s: out of memory", path);
    size_t got;
    while ((got = fread(buf, 1, HASH_CHUNK, f)) > 0)
        crypto_hash_sha256_update(&st, buf, got);
    int failed = ferror(f);
    free(buf);
    crypto_hash_sha256_final(&st, out);
    return failed ? errmsg_set(em, EF_EIO, "%s: read error while hashing", path) : 0;
}

/* Check before llama.cpp sees the file, so a wrong path or a non-model gets a clear error
 * naming the file rather than a loader message on stderr; and hash it. */
static int check_gguf_file(const char *path, uint64_t *size, uint8_t sha256[32], ef_errmsg *em)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errmsg_set(em, errno == ENOENT ? EF_ENOENT : EF_EIO, "%s: %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode))
        return errmsg_set(em, EF_EMODEL, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errmsg_set(em, EF_EIO, "%s: %s", path, strerror(errno));
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    int rc = 0;
    if (got != 4 || memcmp(magic, "GGUF", 4) != 0) {
        rc = errmsg_set(em, EF_EMODEL, "%s: not a GGUF model file (bad magic)", path);
    } else {
        uint64_t t0 = clock_mono_ns();
        rewind(f);
        rc = hash_file(f, path, sha256, em);
        if (rc == 0)
            log_info("model file %s: sha256 in %.0f ms (%.1f MB)", path,
                     (double)(clock_mono_ns() - t0) / 1e6, (double)st.st_size / 1e6);
    }
    fclose(f);
    *size = (uint64_t)st.st_size;
    return rc;
}

static uint32_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1u;
}

static int create_context(backend *b, const backend_params *p, ef_errmsg *em)
{
    uint32_t train = (uint32_t)llama_model_n_ctx_train(b->model);
    uint32_t slot_ctx = p->n_ctx ? p->n_ctx : DEFAULT_SLOT_CTX;
    if (!p->n_ctx && train > 0 && slot_ctx > train)
        slot_ctx = train;
    b->n_batch = p->n_batch ? p->n_batch : DEFAULT_BATCH;
    if (b->n_batch < b->n_slots)
        b->n_batch = b->n_slots; /* every generating slot needs its token in each batch */
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = slot_ctx * b->n_slots;
    cp.n_batch = b->n_batch;
    cp.n_ubatch = p->n_ubatch && p->n_ubatch < b->n_batch ? p->n_ubatch : b->n_batch;
    cp.n_seq_max = b->n_slots;
    cp.n_threads = (int32_t)b->n_threads;
    cp.n_threads_batch = (int32_t)b->n_threads;
    cp.kv_unified = p->kv_unified != 0; /* default one stream per slot: no slot evicts another */
    if (p->flash_attn == 1 || p->deterministic)
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    else if (p->flash_attn == 2)
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    cp.no_perf = true;
    b->ctx = llama_init_from_model(b->model, cp);
    if (!b->ctx)
        return errmsg_set(em, EF_EMODEL, "%s: llama.cpp could not create a context (%u slots x %u)",
                          p->path, b->n_slots, slot_ctx);
    /* Without an attached threadpool (and ggml built without OpenMP), every llama_decode starts
     * and joins fresh worker threads: on a 2-core board that cost more than a small model's
     * whole token (stories260K at -t 2: 150-1700 tokens/s, bimodal; llama-bench, which attaches
     * one, ~4000). It starts paused and is paused again when the last slot ends, so an idle
     * agent keeps no spinning workers; a decode resumes it. */
    struct ggml_threadpool_params tpp = ggml_threadpool_params_default((int)b->n_threads);
    tpp.paused = true;
    b->threadpool = ggml_threadpool_new(&tpp);
    if (!b->threadpool)
        return errmsg_set(em, EF_EMODEL, "%s: could not start %u inference threads", p->path,
                          b->n_threads);
    llama_attach_threadpool(b->ctx, b->threadpool, NULL);
    b->slot_ctx = llama_n_ctx_seq(b->ctx);
    if (b->slot_ctx > slot_ctx)
        b->slot_ctx = slot_ctx; /* unified: one buffer for all; keep each slot to its share */
    b->batch = llama_batch_init((int32_t)b->n_batch, 0, 1);
    return 0;
}

static int llama_load(const backend_params *p, backend **out, ef_errmsg *em)
{
    *out = NULL;
    if (!p->path || !*p->path)
        return errmsg_set(em, EF_EINVAL, "model \"%s\": no path", p->name ? p->name : "?");
    if (p->n_slots > BACKEND_MAX_SLOTS)
        return errmsg_set(em, EF_EINVAL, "%s: %u slots (at most %d)", p->path, p->n_slots,
                          BACKEND_MAX_SLOTS);
    uint64_t size = 0;
    uint8_t sha256[32];
    int rc = check_gguf_file(p->path, &size, sha256, em);
    if (rc != 0)
        return rc;
    backend_llama_init();
    backend *b = calloc(1, sizeof *b);
    if (!b)
        return errmsg_set(em, EF_ENOMEM, "%s: out of memory", p->path);
    b->size_bytes = size;
    memcpy(b->sha256, sha256, sizeof b->sha256);
    b->n_slots = p->n_slots ? p->n_slots : 1;
    b->n_threads = p->n_threads ? p->n_threads : online_cpus();
    uint64_t t0 = clock_mono_ns();
    struct llama_model_params mp = llama_model_default_params();
    if (p->no_repack)
        mp.use_extra_bufts = false;
    b->model = llama_model_load_from_file(p->path, mp);
    if (!b->model) {
        free(b);
        return errmsg_set(em, EF_EMODEL,
                          "%s: llama.cpp could not load the model (truncated or unsupported file; "
                          "--log-level debug shows why)",
                          p->path);
    }
    b->vocab = llama_model_get_vocab(b->model);
    if (p->chat_template && *p->chat_template)
        b->chat_template = strdup(p->chat_template);
    rc = create_context(b, p, em);
    for (uint32_t i = 0; rc == 0 && i < b->n_slots; i++) {
        b->slots[i].tokens = malloc(sizeof(int32_t) * (b->slot_ctx + 1));
        if (!b->slots[i].tokens)
            rc = errmsg_set(em, EF_ENOMEM, "%s: out of memory", p->path);
    }
    if (rc != 0) {
        llama_ops_destroy(&b);
        return rc;
    }
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    log_info("model \"%s\" loaded from %s: %.1f MB in %.0f ms (%u slots x %u tokens, %u threads)",
             p->name ? p->name : "?", p->path, (double)size / 1e6, ms, b->n_slots, b->slot_ctx,
             b->n_threads);
    *out = b;
    return 0;
}

void llama_ops_destroy(backend **b_p)
{
    if (!b_p || !*b_p)
        return;
    backend *b = *b_p;
    for (uint32_t i = 0; i < BACKEND_MAX_SLOTS; i++) {
        if (b->slots[i].sampler)
            llama_sampler_free(b->slots[i].sampler);
        free(b->slots[i].tokens);
    }
    if (b->ctx) {
        llama_batch_free(b->batch);
        llama_detach_threadpool(b->ctx);
        llama_free(b->ctx);
    }
    if (b->threadpool)
        ggml_threadpool_free(b->threadpool);
    if (b->model)
        llama_model_free(b->model);
    free(b->chat_template);
    free(b);
    *b_p = NULL;
}

/* "Q4_K - Medium" -> "Q4_K_M", "all F32" -> "F32": the short names people use for GGUF files. */
static void quantization_name(enum llama_ftype ftype, char *out, size_t cap)
{
    const char *name = llama_ftype_name(ftype);
    if (strncmp(name, "(guessed) ", 10) == 0)
        name += 10;
    if (strncmp(name, "all ", 4) == 0)
        name += 4;
    const char *dash = strstr(name, " - ");
    if (!dash) {
        snprintf(out, cap, "%s", name);
        return;
    }
    char size = dash[3];
    if (size == 'S' || size == 'M' || size == 'L')
        snprintf(out, cap, "%.*s_%c", (int)(dash - name), name, size);
    else
        snprintf(out, cap, "%.*s", (int)(dash - name), name);
}

static void llama_describe(const backend *b, backend_desc *out)
{
    memset(out, 0, sizeof *out);
    if (llama_model_meta_val_str(b->model, "general.architecture", out->architecture,
                                 sizeof out->architecture) < 0)
        snprintf(out->architecture, sizeof out->architecture, "unknown");
    quantization_name(llama_model_ftype(b->model), out->quantization, sizeof out->quantization);
    out->size_bytes = b->size_bytes;
    memcpy(out->sha256, b->sha256, sizeof out->sha256);
    out->n_params = llama_model_n_params(b->model);
    out->n_ctx = b->slot_ctx;
    out->n_vocab = (uint32_t)llama_vocab_n_tokens(b->vocab);
    out->n_slots = b->n_slots;
    out->n_threads = b->n_threads;
    out->has_chat_template = b->chat_template || llama_model_chat_template(b->model, NULL);
    out->simulated = 0;
}

const backend_ops backend_llama_ops = {
    .load = llama_load,
    .destroy = llama_ops_destroy,
    .describe = llama_describe,
    .tokenize = llama_text_tokenize,
    .render_chat = llama_text_render_chat,
    .piece = llama_text_piece,
    .cached_prefix = llama_slots_cached_prefix,
    .seq_start = llama_slots_seq_start,
    .step = llama_slots_step,
    .seq_stop = llama_slots_seq_stop,
};

const backend_ops *backend_ops_for(backend_kind kind)
{
    return kind == BACKEND_SIMULATED ? &backend_sim_ops : &backend_llama_ops;
}
