/* gen_synthetic_qwen: writes a synthetic GGUF with Qwen2.5-0.5B's exact shapes (qwen2
 * architecture, 24 layers, hidden 896, FFN 4864, 14/2 heads, vocab 151936, tied embeddings, Q/K/V
 * biases) and seeded random weights, with the real Qwen2 tokenizer copied from llama.cpp's
 * vocab-only GGUF; then quantizes it with llama_model_quantize and checks the result decodes.
 * Its tokens/s and memory are those of the real model; its text is gibberish, so every figure
 * taken with it is labelled "synthetic". Single-threaded except inside llama.cpp. */
#include "ggml.h"
#include "gguf.h"
#include "llama.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYN_NAME "synthetic-qwen2.5-0.5b-shaped"

/* Qwen2.5-0.5B's hyper-parameters (its config.json), which set the speed we want to measure. */
enum {
    SYN_LAYERS = 24,
    SYN_EMBD = 896,
    SYN_FF = 4864,
    SYN_HEADS = 14,
    SYN_HEADS_KV = 2,
    SYN_HEAD_DIM = SYN_EMBD / SYN_HEADS, /* 64 */
    SYN_VOCAB = 151936,
    SYN_CTX = 32768,
};
#define SYN_ROPE_THETA 1000000.0f
#define SYN_RMS_EPS    1e-6f
#define SYN_INIT_STD   0.02f /* the usual init scale; keeps activations finite through 24 layers */

typedef struct {
    const char *out_dir;
    const char *vocab;
    uint64_t seed;
    int threads;
    int f32;   /* write the unquantized file as F32 instead of F16 */
    int q8;    /* also write Q8_0 */
    int force; /* regenerate even when the outputs exist */
    int keep;  /* keep the unquantized file */
} gen_opts;

/* ---- seeded normal numbers: splitmix64 + Box-Muller, plenty for weights ------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_normal(float *dst, int64_t n, float std, uint64_t *s)
{
    for (int64_t i = 0; i < n; i += 2) {
        uint64_t r = rng_next(s);
        /* two 32-bit uniforms in (0,1]; the +1 avoids log(0) */
        float u1 = ((float)(uint32_t)r + 1.0f) * (1.0f / 4294967296.0f);
        float u2 = (float)(uint32_t)(r >> 32) * (1.0f / 4294967296.0f);
        float mag = std * sqrtf(-2.0f * logf(u1));
        dst[i] = mag * cosf(6.2831853f * u2);
        if (i + 1 < n)
            dst[i + 1] = mag * sinf(6.2831853f * u2);
    }
}

/* ---- the tensor list ------------------------------------------------------------------------ */

typedef enum { INIT_NORMAL, INIT_ONES } tensor_init;

/* Add one tensor to the GGUF header; 1-D tensors stay F32 as in real conversions. */
static void add_tensor(struct ggml_context *gctx, struct gguf_context *g, enum ggml_type wtype,
                       const char *name, int64_t ne0, int64_t ne1)
{
    struct ggml_tensor *t = ne1 > 1 ? ggml_new_tensor_2d(gctx, wtype, ne0, ne1)
                                    : ggml_new_tensor_1d(gctx, GGML_TYPE_F32, ne0);
    ggml_set_name(t, name);
    gguf_add_tensor(g, t);
}

static void add_all_tensors(struct ggml_context *gctx, struct gguf_context *g, enum ggml_type wtype)
{
    const int64_t kv = (int64_t)SYN_HEADS_KV * SYN_HEAD_DIM;
    char name[GGML_MAX_NAME];
    add_tensor(gctx, g, wtype, "token_embd.weight", SYN_EMBD, SYN_VOCAB);
    for (int l = 0; l < SYN_LAYERS; l++) {
#define T(suffix, ne0, ne1)                               \
    do {                                                  \
        snprintf(name, sizeof name, "blk.%d." suffix, l); \
        add_tensor(gctx, g, wtype, name, ne0, ne1);       \
    } while (0)
        T("attn_norm.weight", SYN_EMBD, 1);
        T("attn_q.weight", SYN_EMBD, SYN_EMBD);
        T("attn_q.bias", SYN_EMBD, 1);
        T("attn_k.weight", SYN_EMBD, kv);
        T("attn_k.bias", kv, 1);
        T("attn_v.weight", SYN_EMBD, kv);
        T("attn_v.bias", kv, 1);
        T("attn_output.weight", SYN_EMBD, SYN_EMBD);
        T("ffn_norm.weight", SYN_EMBD, 1);
        T("ffn_gate.weight", SYN_EMBD, SYN_FF);
        T("ffn_up.weight", SYN_EMBD, SYN_FF);
        T("ffn_down.weight", SYN_FF, SYN_EMBD);
#undef T
    }
    /* no output.weight: Qwen2.5-0.5B ties the LM head to token_embd */
    add_tensor(gctx, g, wtype, "output_norm.weight", SYN_EMBD, 1);
}

/* ---- metadata -------------------------------------------------------------------------------- */

/* The tokenizer holds fewer tokens than the model's 151936 embedding rows; llama.cpp's converter
 * pads the list with "[PAD<i>]" entries of type UNUSED, and so do we, so that the vocab and the
 * embedding matrix agree as they do in the real model's GGUF. */
static int pad_vocab(struct gguf_context *g)
{
    int64_t kt = gguf_find_key(g, "tokenizer.ggml.tokens");
    int64_t ky = gguf_find_key(g, "tokenizer.ggml.token_type");
    size_t n = gguf_get_arr_n(g, kt);
    if (n > SYN_VOCAB || (ky >= 0 && gguf_get_arr_n(g, ky) != n)) {
        fprintf(stderr, "gen: vocab has %zu tokens, more than %d or mismatched types\n", n,
                SYN_VOCAB);
        return -1;
    }
    if (n == SYN_VOCAB)
        return 0;
    /* own copies: gguf_set_arr_* drops the old array before it reads the new one */
    char **tokens = calloc(SYN_VOCAB, sizeof *tokens);
    int32_t *types = malloc(SYN_VOCAB * sizeof *types);
    int rc = -1;
    if (!tokens || !types)
        goto out;
    const int32_t *old_types = ky >= 0 ? gguf_get_arr_data(g, ky) : NULL;
    for (size_t i = 0; i < SYN_VOCAB; i++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%zu]", i);
        tokens[i] = strdup(i < n ? gguf_get_arr_str(g, kt, i) : pad);
        if (!tokens[i])
            goto out;
        types[i] = i >= n      ? LLAMA_TOKEN_TYPE_UNUSED
                   : old_types ? old_types[i]
                               : LLAMA_TOKEN_TYPE_NORMAL;
    }
    gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, SYN_VOCAB);
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", (const char **)tokens, SYN_VOCAB);
    fprintf(stderr, "gen: padded the vocab from %zu to %d tokens\n", n, SYN_VOCAB);
    rc = 0;
out:
    for (size_t i = 0; tokens && i < SYN_VOCAB; i++)
        free(tokens[i]);
    free(tokens);
    free(types);
    return rc;
}

/* Copy every tokenizer.* key (vocab, merges, token types, special ids, chat template) and drop
 * the vocab file's own general.* keys, so the model is labelled as ours. */
static int copy_tokenizer(struct gguf_context *g, const char *vocab_path)
{
    struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *v = gguf_init_from_file(vocab_path, ip);
    if (!v) {
        fprintf(stderr, "gen: cannot read vocab GGUF %s\n", vocab_path);
        return -1;
    }
    gguf_set_kv(g, v);
    gguf_free(v);
    for (int64_t i = gguf_get_n_kv(g) - 1; i >= 0; i--) {
        const char *key = gguf_get_key(g, i);
        if (strncmp(key, "tokenizer.", 10) != 0)
            gguf_remove_key(g, key);
    }
    if (gguf_find_key(g, "tokenizer.ggml.tokens") < 0) {
        fprintf(stderr, "gen: %s has no tokenizer.ggml.tokens\n", vocab_path);
        return -1;
    }
    return pad_vocab(g);
}

static void set_hparams(struct gguf_context *g, int f32)
{
    gguf_set_val_str(g, "general.architecture", "qwen2");
    gguf_set_val_str(g, "general.name", SYN_NAME);
    gguf_set_val_str(g, "general.description",
                     "SYNTHETIC: Qwen2.5-0.5B shapes, random weights; for speed and memory only");
    gguf_set_val_u32(g, "general.file_type", f32 ? LLAMA_FTYPE_ALL_F32 : LLAMA_FTYPE_MOSTLY_F16);
    gguf_set_val_u32(g, "qwen2.context_length", SYN_CTX);
    gguf_set_val_u32(g, "qwen2.embedding_length", SYN_EMBD);
    gguf_set_val_u32(g, "qwen2.block_count", SYN_LAYERS);
    gguf_set_val_u32(g, "qwen2.feed_forward_length", SYN_FF);
    gguf_set_val_u32(g, "qwen2.attention.head_count", SYN_HEADS);
    gguf_set_val_u32(g, "qwen2.attention.head_count_kv", SYN_HEADS_KV);
    gguf_set_val_f32(g, "qwen2.rope.freq_base", SYN_ROPE_THETA);
    gguf_set_val_f32(g, "qwen2.attention.layer_norm_rms_epsilon", SYN_RMS_EPS);
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Stream one tensor's data (generated row block by row block, converted to its type) plus the
 * alignment padding gguf expects after it. */
static int write_tensor_data(FILE *f, struct gguf_context *g, int64_t id, uint64_t *rng, float *tmp,
                             void *conv, int64_t chunk)
{
    const char *name = gguf_get_tensor_name(g, id);
    const int64_t *ne = gguf_get_tensor_ne(g, id);
    enum ggml_type type = gguf_get_tensor_type(g, id);
    int64_t n = ne[0] * ne[1];
    tensor_init init = strstr(name, "norm") ? INIT_ONES : INIT_NORMAL;
    for (int64_t off = 0; off < n; off += chunk) {
        int64_t m = n - off < chunk ? n - off : chunk;
        if (init == INIT_ONES)
            for (int64_t i = 0; i < m; i++)
                tmp[i] = 1.0f;
        else
            fill_normal(tmp, m, SYN_INIT_STD, rng);
        const void *out = tmp;
        size_t bytes = (size_t)m * sizeof(float);
        if (type == GGML_TYPE_F16) {
            ggml_fp32_to_fp16_row(tmp, conv, m);
            out = conv;
            bytes = (size_t)m * sizeof(ggml_fp16_t);
        }
        if (fwrite(out, 1, bytes, f) != bytes)
            return -1;
    }
    size_t size = gguf_get_tensor_size(g, id), align = gguf_get_alignment(g);
    static const char zeros[64];
    size_t pad = (align - size % align) % align;
    return pad && fwrite(zeros, 1, pad, f) != pad ? -1 : 0;
}

static int write_unquantized(const char *path, const gen_opts *o)
{
    enum ggml_type wtype = o->f32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
    struct gguf_context *g = gguf_init_empty();
    if (copy_tokenizer(g, o->vocab) != 0) {
        gguf_free(g);
        return -1;
    }
    set_hparams(g, o->f32);
    struct ggml_init_params cp = {.mem_size = ggml_tensor_overhead() * (SYN_LAYERS * 12 + 8),
                                  .no_alloc = true};
    struct ggml_context *gctx = ggml_init(cp);
    add_all_tensors(gctx, g, wtype);

    int rc = -1;
    const int64_t chunk = 1 << 20;
    float *tmp = malloc(chunk * sizeof(float));
    void *conv = malloc(chunk * sizeof(ggml_fp16_t));
    FILE *f = fopen(path, "wb");
    if (!tmp || !conv || !f) {
        fprintf(stderr, "gen: cannot write %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (!gguf_write_to_file_ptr(g, f, true)) /* header; tensor data follows */
        goto out;
    uint64_t rng = o->seed;
    int64_t nt = gguf_get_n_tensors(g);
    for (int64_t i = 0; i < nt; i++) {
        if (write_tensor_data(f, g, i, &rng, tmp, conv, chunk) != 0) {
            fprintf(stderr, "gen: write %s: %s\n", path, strerror(errno));
            goto out;
        }
        if (i % 24 == 0 || i == nt - 1)
            fprintf(stderr, "gen: wrote %3lld/%lld tensors (%s)\n", (long long)i + 1, (long long)nt,
                    gguf_get_tensor_name(g, i));
    }
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = -1;
    free(tmp);
    free(conv);
    ggml_free(gctx);
    gguf_free(g);
    if (rc != 0)
        unlink(path);
    return rc;
}

/* ---- quantization ------------------------------------------------------------------------- */

/* llama.cpp's log: errors and warnings through; its per-tensor quantize lines ("[  25/ 290] ...")
 * become one progress line every 24 tensors, so a long run shows it is alive without flooding.
 * The 896-wide rows are not a multiple of Q4_K's 256-block, so llama.cpp falls back to Q5_0 /
 * Q8_0 for them exactly as it does for the real Qwen2.5-0.5B; those warnings are only counted. */
typedef struct {
    const char *label;
    int fallbacks;
} log_state;

static void on_llama_log(enum ggml_log_level level, const char *text, void *user)
{
    log_state *ls = user;
    int i, n;
    if (strstr(text, "falling back to")) {
        ls->fallbacks++;
    } else if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) {
        fputs(text, stderr);
    } else if (sscanf(text, "[%d/%d]", &i, &n) == 2 && (i % 24 == 0 || i == n)) {
        fprintf(stderr, "%s: %d/%d tensors\n", ls->label, i, n);
    }
}

static log_state g_llama_log = {"llama", 0}; /* the default sink, set before any llama call */

static int quantize(const char *in, const char *out, enum llama_ftype ftype, int threads,
                    const char *label)
{
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = ftype;
    qp.nthread = threads;
    fprintf(stderr, "%s: %s -> %s\n", label, in, out);
    log_state ls = {label, 0};
    llama_log_set(on_llama_log, &ls);
    uint32_t rc = llama_model_quantize(in, out, &qp);
    llama_log_set(on_llama_log, &g_llama_log);
    if (rc != 0) {
        fprintf(stderr, "%s: llama_model_quantize failed (%u)\n", label, rc);
        unlink(out);
        return -1;
    }
    if (ls.fallbacks)
        fprintf(stderr,
                "%s: %d tensors fell back to another type (896 %% 256 != 0, as in the real "
                "model)\n",
                label, ls.fallbacks);
    return 0;
}

/* ---- sanity: the file loads with the real loader and decodes finite logits ------------------ */

static int sanity_check(const char *path, int threads)
{
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) {
        fprintf(stderr, "check: %s does not load\n", path);
        return -1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_threads = cp.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    int rc = -1;
    char desc[128] = "";
    llama_model_desc(model, desc, sizeof desc);
    const char *prompt = "The quick brown fox jumps over the lazy dog.";
    llama_token toks[64];
    int n = llama_tokenize(vocab, prompt, (int32_t)strlen(prompt), toks, 64, true, false);
    if (!ctx || n <= 0 || llama_vocab_n_tokens(vocab) != SYN_VOCAB) {
        fprintf(stderr, "check: context/tokenize/vocab failed (n=%d vocab=%d)\n", n,
                ctx ? llama_vocab_n_tokens(vocab) : -1);
        goto out;
    }
    llama_token next = 0;
    for (int step = 0; step < 5; step++) {
        struct llama_batch b =
            step == 0 ? llama_batch_get_one(toks, n) : llama_batch_get_one(&next, 1);
        if (llama_decode(ctx, b) != 0) {
            fprintf(stderr, "check: llama_decode failed at step %d\n", step);
            goto out;
        }
        const float *logits = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int i = 0; i < SYN_VOCAB; i++) {
            if (!isfinite(logits[i])) {
                fprintf(stderr, "check: logit %d is not finite\n", i);
                goto out;
            }
            if (logits[i] > logits[best])
                best = i;
        }
        next = best;
    }
    fprintf(stderr, "check: %s loads (%s, %.0fM params, vocab %d) and decodes finite logits\n",
            path, desc, llama_model_n_params(model) / 1e6, llama_vocab_n_tokens(vocab));
    rc = 0;
out:
    llama_free(ctx);
    llama_model_free(model);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: gen_synthetic_qwen [--out-dir DIR] [--vocab GGUF] [--seed N] "
               "[--threads N] [--f32] [--q8] [--keep] [--force]\n"
               "  writes DIR/" SYN_NAME "-q4_k_m.gguf (and -q8_0.gguf with --q8)\n"
               "  DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet/models\n");
}

/* mkdir -p for the default cache directory */
static int mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int parse_args(int argc, char **argv, gen_opts *o, char *dir_buf, size_t dir_cap)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--out-dir") && v)
            o->out_dir = v, i++;
        else if (!strcmp(a, "--vocab") && v)
            o->vocab = v, i++;
        else if (!strcmp(a, "--seed") && v)
            o->seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--threads") && v)
            o->threads = atoi(v), i++;
        else if (!strcmp(a, "--f32"))
            o->f32 = 1;
        else if (!strcmp(a, "--q8"))
            o->q8 = 1;
        else if (!strcmp(a, "--keep"))
            o->keep = 1;
        else if (!strcmp(a, "--force"))
            o->force = 1;
        else {
            usage(stderr);
            return -1;
        }
    }
    if (!o->out_dir) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg)
            snprintf(dir_buf, dir_cap, "%s/edgefleet/models", xdg);
        else
            snprintf(dir_buf, dir_cap, "%s/.cache/edgefleet/models", home ? home : ".");
        o->out_dir = dir_buf;
    }
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

int main(int argc, char **argv)
{
    gen_opts o = {.vocab = EF_LLAMA_SHARE_DIR "/ggml-vocab-qwen2.gguf", .seed = 42, .threads = 2};
    char dir[4096], raw[4200], q4[4200], q8[4200];
    if (parse_args(argc, argv, &o, dir, sizeof dir) != 0)
        return 2;
    if (mkdirs(o.out_dir) != 0) {
        fprintf(stderr, "gen: cannot create %s: %s\n", o.out_dir, strerror(errno));
        return 1;
    }
    snprintf(raw, sizeof raw, "%s/" SYN_NAME "-%s.gguf", o.out_dir, o.f32 ? "f32" : "f16");
    snprintf(q4, sizeof q4, "%s/" SYN_NAME "-q4_k_m.gguf", o.out_dir);
    snprintf(q8, sizeof q8, "%s/" SYN_NAME "-q8_0.gguf", o.out_dir);
    llama_log_set(on_llama_log, &g_llama_log);
    llama_backend_init();

    int need_q4 = o.force || !exists(q4), need_q8 = o.q8 && (o.force || !exists(q8));
    int rc = 0;
    if (need_q4 || need_q8) {
        fprintf(stderr, "gen: writing %s (seed %llu)\n", raw, (unsigned long long)o.seed);
        rc = write_unquantized(raw, &o);
        if (rc == 0 && need_q4)
            rc = quantize(raw, q4, LLAMA_FTYPE_MOSTLY_Q4_K_M, o.threads, "quantize Q4_K_M");
        if (rc == 0 && need_q8)
            rc = quantize(raw, q8, LLAMA_FTYPE_MOSTLY_Q8_0, o.threads, "quantize Q8_0");
        if (!o.keep)
            unlink(raw);
    } else {
        fprintf(stderr, "gen: %s exists (use --force to regenerate)\n", q4);
    }
    if (rc == 0)
        rc = sanity_check(q4, o.threads);
    if (rc == 0 && o.q8)
        rc = sanity_check(q8, o.threads);
    llama_backend_free();
    if (rc == 0)
        printf("%s\n", q4); /* stdout: the path, for scripts */
    return rc == 0 ? 0 : 1;
}
