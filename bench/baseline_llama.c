/* Implementation of baseline_llama.h: builds the tools' command lines, runs them through
 * bench_run_capture and reads their JSON output. */
#include "baseline_llama.h"

#include "bench_util.h"
#include "edgefleet.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

/* llama-bench -o json: an array with one object per test; avg_ts is tokens/s (with -r 1 it is
 * the one sample). Tests are told apart by n_prompt / n_gen / n_depth. */
static int parse_llama_bench(const char *json, const baseline_params *p, llama_bench_run *out)
{
    cJSON *arr = cJSON_Parse(json);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return EF_EPROTO;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, arr)
    {
        double np = num(t, "n_prompt"), ng = num(t, "n_gen"), nd = num(t, "n_depth");
        double ts = num(t, "avg_ts");
        if (np == p->n_prompt && ng == 0 && nd == 0)
            out->pp_tps = ts;
        else if (np == 0 && ng == p->n_gen && nd == 0)
            out->tg_tps = ts;
        else if (np == 0 && ng == p->n_gen && nd == p->n_prompt)
            out->tg_d_tps = ts;
    }
    cJSON_Delete(arr);
    return out->pp_tps > 0 && out->tg_tps > 0 && out->tg_d_tps > 0 ? 0 : EF_EPROTO;
}

int baseline_llama_bench(const baseline_params *p, llama_bench_run *out)
{
    char bin[4096], t[16], pp[16], tg[16], d[32], b[16];
    snprintf(bin, sizeof bin, "%s/llama-bench", p->bin_dir);
    snprintf(t, sizeof t, "%d", p->threads);
    snprintf(pp, sizeof pp, "%d", p->n_prompt);
    snprintf(tg, sizeof tg, "%d", p->n_gen);
    snprintf(d, sizeof d, "0,%d", p->n_prompt); /* tg also at the depth a served request has */
    snprintf(b, sizeof b, "%d", p->n_batch);
    char *argv[] = {
        bin, "-m", (char *)p->model, "-t", t, "-p", pp, "-n", tg, "-d", d, "-b", b, "-ub", b, "-r",
        "1", "-o", "json",           NULL};
    memset(out, 0, sizeof *out);
    char *json = NULL;
    int rc = bench_run_capture(argv, p->stderr_log, &json, &out->maxrss_kb, p->idle, p->idle_user);
    if (rc == 0 && (rc = parse_llama_bench(json, p, out)) != 0)
        fprintf(stderr, "bench: llama-bench output not understood:\n%s\n", json);
    free(json);
    return rc;
}

/* batched-bench --output-format jsonl: one JSON object per line, one line per (pp, tg, pl). */
static int parse_batched_bench(char *jsonl, batched_bench_run *out)
{
    size_t found = 0;
    for (char *line = strtok(jsonl, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o); /* the tool's own non-JSON lines, if any */
            continue;
        }
        double pl = num(o, "pl");
        for (size_t i = 0; i < out->n_pl; i++) {
            if (out->pl[i] == (int)pl) {
                out->tg_tps[i] = num(o, "speed_tg");
                out->total_tps[i] = num(o, "speed");
                found++;
            }
        }
        cJSON_Delete(o);
    }
    return found == out->n_pl ? 0 : EF_EPROTO;
}

int baseline_batched_bench(const baseline_params *p, const int *pl, size_t n_pl,
                           batched_bench_run *out)
{
    if (n_pl == 0 || n_pl > BASELINE_MAX_PL)
        return EF_EINVAL;
    char bin[4096], t[16], pp[16], tg[16], b[16], c[16], npl[128] = "";
    snprintf(bin, sizeof bin, "%s/llama-batched-bench", p->bin_dir);
    snprintf(t, sizeof t, "%d", p->threads);
    snprintf(pp, sizeof pp, "%d", p->n_prompt);
    snprintf(tg, sizeof tg, "%d", p->n_gen);
    snprintf(b, sizeof b, "%d", p->n_batch);
    snprintf(c, sizeof c, "%d", p->n_ctx);
    memset(out, 0, sizeof *out);
    out->n_pl = n_pl;
    for (size_t i = 0; i < n_pl; i++) {
        out->pl[i] = pl[i];
        size_t len = strlen(npl);
        snprintf(npl + len, sizeof npl - len, "%s%d", i ? "," : "", pl[i]);
    }
    /* --no-kv-unified: one KV stream per sequence, as the agent's slots have */
    char *argv[] = {bin,
                    "-m",
                    (char *)p->model,
                    "-t",
                    t,
                    "-c",
                    c,
                    "-b",
                    b,
                    "-ub",
                    b,
                    "-npp",
                    pp,
                    "-ntg",
                    tg,
                    "-npl",
                    npl,
                    "--no-kv-unified",
                    "--output-format",
                    "jsonl",
                    NULL};
    char *text = NULL;
    int rc = bench_run_capture(argv, p->stderr_log, &text, &out->maxrss_kb, p->idle, p->idle_user);
    if (rc == 0 && (rc = parse_batched_bench(text, out)) != 0)
        fprintf(stderr, "bench: batched-bench output not understood:\n%s\n", text);
    free(text);
    return rc;
}
