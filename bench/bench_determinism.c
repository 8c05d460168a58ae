/* bench_determinism: is greedy output independent of load? Through the agent's own engine and
 * llama backend (the code path agents serve with), per configuration of llama.cpp's public
 * knobs: N different prompts, greedy, each run alone (1 busy slot) as the reference, then the
 * same prompts on 4 slots kept busy by filler requests of varied lengths (so the batch
 * composition changes all the time), then each prompt resumed (prompt + first k reference
 * tokens evaluated as one prompt batch, as a moved stream is). Reports the fraction of answers
 * token-identical to the reference, the first differing token (median/min), and generated
 * tokens/s at 4 slots as a ratio to the first configuration. Configurations are interleaved run
 * by run so the box's noise hits all alike. A benchmark, never a test. */
#include "engine.h"

#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPTS 32
#define MAX_TOKENS  2048
#define MAX_LIVE    64
#define N_SLOTS     4
#define WAIT_MS     600000

typedef struct {
    const char *name;
    int kv_unified, no_repack, flash_attn;
    uint32_t n_ubatch, threads;
} config;

static const config g_configs[] = {
    {"default", 0, 0, 0, 0, 0},        {"fa-off", 0, 0, 1, 0, 0},    {"fa-on", 0, 0, 2, 0, 0},
    {"kv-unified", 1, 0, 0, 0, 0},     {"ubatch-1", 0, 0, 0, 1, 0},  {"no-repack", 0, 1, 0, 0, 0},
    {"threads-1", 0, 0, 0, 0, 1},      {"fa-off+t1", 0, 0, 1, 0, 1}, {"fa-off+ub1", 0, 0, 1, 1, 0},
    {"fa-off+unified", 1, 0, 1, 0, 0},
};
#define N_CONFIGS (sizeof g_configs / sizeof g_configs[0])

static const char *g_prompts[] = {
    "Once upon a time",         "The little dog",      "Lily and Ben went to the park",
    "One day, Tom found a box", "The sun was hot and", "Sara had a red ball",
    "There was a big tree",     "Mom said to Tim",     "A cat sat on the mat",
    "The bird could not fly",   "Max wanted a cookie", "In the forest there lived",
    "The boat was small",       "Anna liked to draw",  "It was raining, so",
    "The old man smiled",
};
#define N_PROMPT_TEXTS (sizeof g_prompts / sizeof g_prompts[0])

typedef struct {
    int32_t tokens[MAX_TOKENS];
    size_t n;
} answer;

typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN];
    int measured; /* index of the measured prompt, -1 = filler */
    int live;
} live_req;

static const char *g_model;
static uint32_t g_ctx = 512, g_tokens = 400, g_threads = 2;
static int g_resume_at = 100;

static engine *engine_for(const config *c, uint32_t slots)
{
    backend_params bp = {.kind = BACKEND_LLAMA,
                         .name = "m",
                         .path = g_model,
                         .n_ctx = g_ctx,
                         .n_slots = slots,
                         .n_threads = c->threads ? c->threads : g_threads,
                         .kv_unified = c->kv_unified,
                         .n_ubatch = c->n_ubatch,
                         .no_repack = c->no_repack,
                         .flash_attn = c->flash_attn};
    engine_params ep = {.models = &bp, .n_models = 1};
    int err = 0;
    ef_errmsg em = {{0}};
    engine *e = engine_new(&ep, &err, &em);
    if (!e)
        fprintf(stderr, "bench: engine_new: %s\n", em.msg);
    return e;
}

static uint32_t g_next_id;

static int submit(engine *e, live_req *lr, const char *prompt, uint32_t max_tokens,
                  const int32_t *resume, size_t n_resume)
{
    Edgefleet__Request req;
    Edgefleet__SamplingParams sp;
    edgefleet__request__init(&req);
    edgefleet__sampling_params__init(&sp);
    memset(lr->id, 0, sizeof lr->id);
    uint32_t id = ++g_next_id;
    memcpy(lr->id, &id, sizeof id);
    req.request_id.data = lr->id;
    req.request_id.len = CODEC_REQUEST_ID_LEN;
    req.model = "m";
    req.prompt = (char *)prompt;
    req.max_tokens = max_tokens;
    req.sampling = &sp; /* temperature 0: greedy */
    req.resume_tokens = (int32_t *)resume;
    req.n_resume_tokens = n_resume;
    sp.seed = 1;
    ef_errmsg em = {{0}};
    int rc = engine_submit(e, &req, &em);
    if (rc != 0)
        fprintf(stderr, "bench: submit: %s\n", em.msg);
    lr->live = rc == 0;
    return rc;
}

/* Wait for one event; append tokens of measured requests to out[]; returns the index of the
 * live request that ended, -1 if none did, -2 on timeout/error. Counts every generated token. */
static int pump(engine *e, live_req *lrs, size_t n_lr, answer *out, uint64_t *n_gen)
{
    engine_event *ev = engine_wait_event(e, WAIT_MS);
    if (!ev)
        return -2;
    int ended = -1;
    for (size_t i = 0; i < n_lr; i++) {
        if (!lrs[i].live || memcmp(lrs[i].id, ev->request_id, CODEC_REQUEST_ID_LEN) != 0)
            continue;
        if (ev->kind == ENGINE_EV_CHUNK) {
            *n_gen += ev->n_tokens;
            if (lrs[i].measured >= 0) {
                answer *a = &out[lrs[i].measured];
                for (size_t k = 0; k < ev->n_tokens && a->n < MAX_TOKENS; k++)
                    a->tokens[a->n++] = ev->tokens[k];
            }
        } else {
            if (ev->kind == ENGINE_EV_ERROR)
                fprintf(stderr, "bench: request error %d: %s\n", ev->code, ev->message);
            lrs[i].live = 0;
            ended = ev->kind == ENGINE_EV_DONE ? (int)i : -2;
        }
    }
    engine_event_free(&ev);
    return ended;
}

/* Each prompt alone on a fresh 1-busy-slot engine (4 slots, 3 idle: same context shape). */
static int run_alone(const config *c, int n, answer *ref, const answer *resume_from)
{
    engine *e = engine_for(c, N_SLOTS);
    if (!e)
        return -1;
    uint64_t n_gen = 0;
    for (int p = 0; p < n; p++) {
        live_req lr = {.measured = p};
        ref[p].n = 0;
        size_t k = 0;
        if (resume_from) {
            k = resume_from[p].n > (size_t)g_resume_at ? (size_t)g_resume_at : 0;
            memcpy(ref[p].tokens, resume_from[p].tokens, k * sizeof(int32_t));
            ref[p].n = k;
        }
        if (submit(e, &lr, g_prompts[p], g_tokens, resume_from ? resume_from[p].tokens : NULL, k) !=
            0) {
            engine_destroy(&e);
            return -1;
        }
        int r;
        while ((r = pump(e, &lr, 1, ref, &n_gen)) == -1)
            ;
        if (r < 0) {
            engine_destroy(&e);
            return -1;
        }
    }
    engine_destroy(&e);
    return 0;
}

/* The measured prompts on 4 slots kept busy: a slot that frees takes the next measured prompt
 * only every other time, a filler of varied length otherwise, so measured answers start at
 * staggered points with different neighbours. Returns generated tokens/s (all requests). */
static double run_loaded(const config *c, int n, answer *out)
{
    engine *e = engine_for(c, N_SLOTS);
    if (!e)
        return -1;
    live_req lrs[MAX_LIVE];
    memset(lrs, 0, sizeof lrs);
    int next = 0, done = 0, filler = 0, turn = 0;
    uint64_t n_gen = 0, t0 = clock_mono_ns();
    for (int p = 0; p < n; p++)
        out[p].n = 0;
    while (done < n) {
        size_t busy = 0;
        for (size_t i = 0; i < MAX_LIVE; i++)
            busy += lrs[i].live;
        while (busy < N_SLOTS) {
            size_t slot = 0;
            while (lrs[slot].live)
                slot++;
            int measured = next < n && (turn++ % 2 == 1 || busy == N_SLOTS - 1 || filler > 3 * n);
            lrs[slot].measured = measured ? next : -1;
            const char *text =
                measured ? g_prompts[next] : g_prompts[(filler * 7) % N_PROMPT_TEXTS];
            uint32_t max = measured ? g_tokens : 16 + (uint32_t)(filler * 37) % (g_tokens / 2);
            if (!measured && next >= n)
                max = g_tokens; /* keep the last measured ones company until they end */
            if (submit(e, &lrs[slot], text, max, NULL, 0) != 0) {
                engine_destroy(&e);
                return -1;
            }
            if (measured)
                next++;
            else
                filler++;
            busy++;
        }
        int r = pump(e, lrs, MAX_LIVE, out, &n_gen);
        if (r == -2) {
            engine_destroy(&e);
            return -1;
        }
        if (r >= 0 && lrs[r].measured >= 0)
            done++;
    }
    double s = (double)(clock_mono_ns() - t0) / 1e9;
    engine_destroy(&e);
    return (double)n_gen / s;
}

typedef struct {
    int same, total, first_diff[MAX_PROMPTS * 64];
    int n_diff;
    int resume_same, resume_total;
    double tps[64];
    int n_tps;
} tally;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Index of the first token where a and b differ (length differences count); -1 = identical. */
static int first_diff(const answer *a, const answer *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++)
        if (a->tokens[i] != b->tokens[i])
            return (int)i;
    return a->n == b->n ? -1 : (int)n;
}

int main(int argc, char **argv)
{
    int n = 10, runs = 2;
    const char *label = "stories260K", *only = NULL;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--model") == 0)
            g_model = v;
        else if (strcmp(a, "--label") == 0)
            label = v;
        else if (strcmp(a, "--prompts") == 0)
            n = atoi(v);
        else if (strcmp(a, "--tokens") == 0)
            g_tokens = (uint32_t)atoi(v);
        else if (strcmp(a, "--ctx") == 0)
            g_ctx = (uint32_t)atoi(v);
        else if (strcmp(a, "--threads") == 0)
            g_threads = (uint32_t)atoi(v);
        else if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else if (strcmp(a, "--resume-at") == 0)
            g_resume_at = atoi(v);
        else if (strcmp(a, "--configs") == 0)
            only = v; /* comma-separated names; the first is the ratio's baseline */
        else {
            fprintf(stderr, "usage: bench_determinism --model GGUF [--label L] [--prompts N] "
                            "[--tokens T] [--ctx C] [--threads T] [--runs R] [--resume-at K] "
                            "[--configs a,b,...]\n");
            return 2;
        }
    }
    if (!g_model || n < 1 || n > MAX_PROMPTS || (size_t)n > N_PROMPT_TEXTS || runs < 1 ||
        runs > 64 || g_tokens < 1 || g_tokens > MAX_TOKENS) {
        fprintf(stderr, "bench: need --model; 1..%zu prompts, 1..64 runs\n", N_PROMPT_TEXTS);
        return 2;
    }
    const config *cfgs[N_CONFIGS];
    size_t n_cfg = 0;
    for (size_t i = 0; i < N_CONFIGS; i++) {
        if (only) {
            const char *s = strstr(only, g_configs[i].name);
            size_t l = strlen(g_configs[i].name);
            if (!s || (s != only && s[-1] != ',') || (s[l] && s[l] != ','))
                continue;
        }
        cfgs[n_cfg++] = &g_configs[i];
    }
    /* Keep --configs order for the baseline: the first named one. */
    if (only && n_cfg > 1)
        for (size_t i = 0; i < n_cfg; i++)
            if (strncmp(only, cfgs[i]->name, strlen(cfgs[i]->name)) == 0 &&
                (only[strlen(cfgs[i]->name)] == ',' || !only[strlen(cfgs[i]->name)])) {
                const config *t = cfgs[0];
                cfgs[0] = cfgs[i];
                cfgs[i] = t;
            }
    log_set_level(LOG_WARN); /* per-request lines would drown the progress */
    static tally t[N_CONFIGS];
    static answer ref[MAX_PROMPTS], load[MAX_PROMPTS], res[MAX_PROMPTS];
    for (int r = 0; r < runs; r++) {
        for (size_t c = 0; c < n_cfg; c++) {
            fprintf(stderr, "bench: run %d/%d, %s: %d prompts alone...\n", r + 1, runs,
                    cfgs[c]->name, n);
            if (run_alone(cfgs[c], n, ref, NULL) != 0)
                return 1;
            fprintf(stderr, "bench: run %d/%d, %s: on %d busy slots...\n", r + 1, runs,
                    cfgs[c]->name, N_SLOTS);
            double tps = run_loaded(cfgs[c], n, load);
            if (tps < 0)
                return 1;
            fprintf(stderr, "bench: run %d/%d, %s: resumed at token %d...\n", r + 1, runs,
                    cfgs[c]->name, g_resume_at);
            if (run_alone(cfgs[c], n, res, ref) != 0)
                return 1;
            t[c].tps[t[c].n_tps++] = tps;
            int same = 0;
            for (int p = 0; p < n; p++) {
                int d = first_diff(&ref[p], &load[p]);
                t[c].total++;
                if (d < 0) {
                    t[c].same++;
                    same++;
                } else {
                    t[c].first_diff[t[c].n_diff++] = d;
                }
                if (ref[p].n > (size_t)g_resume_at) {
                    t[c].resume_total++;
                    t[c].resume_same += first_diff(&ref[p], &res[p]) < 0;
                }
            }
            fprintf(stderr, "bench: run %d/%d, %s: %d/%d identical under load, %.0f tokens/s\n",
                    r + 1, runs, cfgs[c]->name, same, n, tps);
        }
    }
    printf("# %s: %d prompts x %u tokens, greedy, %d slots busy vs alone, ctx %u/slot, %u "
           "threads, %d runs interleaved%s\n",
           label, n, g_tokens, N_SLOTS, g_ctx, g_threads, runs,
           strstr(label, "synthetic") ? " (synthetic model: text is noise)" : "");
    printf("| config | identical under load | first diff median (min) | resumed at %d identical | "
           "tok/s at %d slots, median | ratio to %s |\n",
           g_resume_at, N_SLOTS, cfgs[0]->name);
    printf("|---|---|---|---|---|---|\n");
    qsort(t[0].tps, (size_t)t[0].n_tps, sizeof(double), cmp_dbl);
    double base = t[0].tps[t[0].n_tps / 2];
    for (size_t c = 0; c < n_cfg; c++) {
        tally *x = &t[c];
        qsort(x->tps, (size_t)x->n_tps, sizeof(double), cmp_dbl);
        qsort(x->first_diff, (size_t)x->n_diff, sizeof(int), cmp_int);
        char fd[64] = "-";
        if (x->n_diff)
            snprintf(fd, sizeof fd, "%d (%d)", x->first_diff[x->n_diff / 2], x->first_diff[0]);
        double med = x->tps[x->n_tps / 2];
        printf("| %s | %d/%d (%.0f%%) | %s | %d/%d | %.0f | %.2f |\n", cfgs[c]->name, x->same,
               x->total, 100.0 * x->same / x->total, fd, x->resume_same, x->resume_total, med,
               med / base);
    }
    return 0;
}
