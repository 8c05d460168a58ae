/* What one field of an OpenAI request body may hold: the typed readers every field goes through
 * (a string of well-formed UTF-8, a finite number in range, an integer, a bool; JSON null counts
 * as absent) and the generation settings (max_tokens, sampling, seed, stop, user, n, stream).
 * Pure; part of openai_request_parse (openai_request.c). */
#include "openai_parse.h"

#include "errors.h"
#include "scheduler.h"

#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sampling when the body leaves a field out: llama-server's defaults (the same numbers as
 * ef_gen_default_params in libedgefleet, which the coordinator does not link). */
#define DEFAULT_TEMPERATURE    0.8f
#define DEFAULT_TOP_K          40
#define DEFAULT_TOP_P          0.95f
#define DEFAULT_MIN_P          0.05f
#define DEFAULT_REPEAT_PENALTY 1.0f
/* OpenAI's range for temperature; the agent would take up to 100, no client needs it. */
#define MAX_TEMPERATURE 2.0
/* The agent's own bound (agent/engine_request.c): refused here with the field's name instead. */
#define MAX_REPEAT_PENALTY 100.0
/* Integers above 2^53 are not exact in a JSON number as cJSON reads it (a double). */
#define MAX_EXACT_INTEGER 9007199254740992.0
/* Seed 0 is a fixed seed for llama-server but "random" on the wire: it goes out as 2^32 + 1,
 * which the agent folds (low ^ high 32 bits) to the sampler seed 0. */
#define SEED_ZERO_ON_WIRE ((1ull << 32) | 1ull)
/* The session id made of `user`: "u-" and the hex of a 16-byte hash, far under
 * SCHED_SESSION_MAX. */
#define SESSION_PREFIX   "u-"
#define SESSION_HASH_LEN 16u
#define SESSION_ID_LEN   (sizeof SESSION_PREFIX - 1 + 2 * SESSION_HASH_LEN)
_Static_assert(SESSION_ID_LEN < SCHED_SESSION_MAX, "session id must fit the scheduler");
_Static_assert(SESSION_ID_LEN < 128, "session id must fit the agent (ENGINE_MAX_SESSION_LEN)");

static int verr(openai_error *e, int status, const char *type, const char *param, const char *code,
                const char *fmt, va_list ap)
{
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type ? type : "");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    int n = vsnprintf(e->message, sizeof e->message, fmt, ap);
    /* A message cut short must not end in half a character (it may quote the peer's text). */
    if (n >= (int)sizeof e->message)
        e->message[openai_utf8_complete(e->message, strlen(e->message))] = '\0';
    return status;
}

int openai_error_set(openai_error *e, int status, const char *type, const char *param,
                     const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(e, status, type, param, code, fmt, ap);
    va_end(ap);
    return status;
}

/* A caller's mistake: 400 invalid_request_error naming `param`. Returns EF_EINVAL. */
int openai_bad(openai_parse *p, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(p->err, 400, "invalid_request_error", param, NULL, fmt, ap);
    va_end(ap);
    return EF_EINVAL;
}

int openai_no_memory(openai_parse *p)
{
    openai_error_set(p->err, 500, "server_error", NULL, NULL, "out of memory");
    return EF_ENOMEM;
}

/* A member of an object; JSON null counts as absent, as OpenAI's clients send many nulls. */
const cJSON *openai_member(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return it && !cJSON_IsNull(it) ? it : NULL;
}

/* A string field that is well-formed UTF-8 without NUL (see body_copy), or a refusal. */
int openai_text_of(openai_parse *p, const cJSON *it, const char *param, const char **out)
{
    if (!cJSON_IsString(it) || !it->valuestring)
        return openai_bad(p, param, "'%s' must be a string", param);
    if (!openai_utf8_valid(it->valuestring, strlen(it->valuestring)))
        return openai_bad(p, param, "'%s' holds a NUL character (\\u0000) or invalid UTF-8", param);
    *out = it->valuestring;
    return 0;
}

int openai_number_of(openai_parse *p, const cJSON *it, const char *param, double lo, double hi,
                     double *out)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return openai_bad(p, param, "'%s' must be a finite number", param);
    if (it->valuedouble < lo || it->valuedouble > hi)
        return openai_bad(p, param, "'%s' is %g; it must be between %g and %g", param,
                          it->valuedouble, lo, hi);
    *out = it->valuedouble;
    return 0;
}

int openai_integer_of(openai_parse *p, const cJSON *it, const char *param, double lo, double hi,
                      int64_t *out)
{
    double d = 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        it->valuedouble != floor(it->valuedouble))
        return openai_bad(p, param, "'%s' must be an integer", param);
    if (openai_number_of(p, it, param, lo, hi, &d) != 0)
        return EF_EINVAL;
    *out = (int64_t)d;
    return 0;
}

int openai_bool_of(openai_parse *p, const cJSON *it, const char *param, int *out)
{
    if (!cJSON_IsBool(it))
        return openai_bad(p, param, "'%s' must be true or false", param);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return 0;
}

/* ---- generation settings ------------------------------------------------------------------- */

/* max_tokens and max_completion_tokens (the newer name wins when both are given). */
static int take_max_tokens(openai_parse *p, const cJSON *root)
{
    static const char *const names[] = {"max_tokens", "max_completion_tokens"};
    p->r->max_tokens = OPENAI_DEFAULT_MAX_TOKENS;
    for (size_t k = 0; k < 2; k++) {
        const cJSON *it = openai_member(root, names[k]);
        int64_t v = 0;
        if (!it)
            continue;
        /* 0 is refused: the agent would (it asks for at least one token). */
        if (openai_integer_of(p, it, names[k], 1, OPENAI_MAX_TOKENS_MAX, &v) != 0)
            return EF_EINVAL;
        p->r->max_tokens = (uint32_t)v;
    }
    return 0;
}

static int take_float(openai_parse *p, const cJSON *root, const char *name, double lo, double hi,
                      float *out)
{
    const cJSON *it = openai_member(root, name);
    double v = 0;
    if (!it)
        return 0;
    if (openai_number_of(p, it, name, lo, hi, &v) != 0)
        return EF_EINVAL;
    *out = (float)v;
    return 0;
}

static int take_seed(openai_parse *p, const cJSON *root, uint64_t *out)
{
    const cJSON *it = openai_member(root, "seed");
    int64_t v = -1;
    if (it && openai_integer_of(p, it, "seed", -1, MAX_EXACT_INTEGER, &v) != 0)
        return EF_EINVAL;
    *out = v < 0 ? 0 : v == 0 ? SEED_ZERO_ON_WIRE : (uint64_t)v;
    return 0;
}

static int take_sampling(openai_parse *p, const cJSON *root)
{
    Edgefleet__SamplingParams *s = malloc(sizeof *s); /* freed by free_unpacked */
    if (!s)
        return openai_no_memory(p);
    edgefleet__sampling_params__init(s);
    p->r->sampling = s;
    s->temperature = DEFAULT_TEMPERATURE;
    s->top_k = DEFAULT_TOP_K;
    s->top_p = DEFAULT_TOP_P;
    s->min_p = DEFAULT_MIN_P;
    s->repeat_penalty = DEFAULT_REPEAT_PENALTY;
    int64_t top_k = DEFAULT_TOP_K;
    const cJSON *k = openai_member(root, "top_k");
    if (take_float(p, root, "temperature", 0, MAX_TEMPERATURE, &s->temperature) != 0 ||
        take_float(p, root, "top_p", 0, 1, &s->top_p) != 0 ||
        take_float(p, root, "min_p", 0, 1, &s->min_p) != 0 ||
        take_float(p, root, "repeat_penalty", 0, MAX_REPEAT_PENALTY, &s->repeat_penalty) != 0 ||
        (k && openai_integer_of(p, k, "top_k", 0, INT32_MAX, &top_k) != 0) ||
        take_seed(p, root, &s->seed) != 0)
        return EF_EINVAL;
    s->top_k = (int32_t)top_k;
    return 0;
}

static int add_stop(openai_parse *p, const cJSON *it, const char *param)
{
    const char *text = NULL;
    int rc = openai_text_of(p, it, param, &text);
    if (rc != 0)
        return rc;
    size_t len = strlen(text);
    if (len == 0 || len > CODEC_MAX_STOP_LEN)
        return openai_bad(p, param, "'%s' is %zu bytes (1 to %u)", param, len, CODEC_MAX_STOP_LEN);
    if (!(p->r->stop[p->r->n_stop] = strdup(text)))
        return openai_no_memory(p);
    p->r->n_stop++;
    return 0;
}

/* stop: a string, or an array of strings. */
static int take_stop(openai_parse *p, const cJSON *root)
{
    const cJSON *it = openai_member(root, "stop");
    if (!it)
        return 0;
    int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 1;
    if (n > CODEC_MAX_STOP)
        return openai_bad(p, "stop", "'stop' has %d strings (at most %d)", n, CODEC_MAX_STOP);
    if (n == 0)
        return 0;
    if (!(p->r->stop = calloc((size_t)n, sizeof *p->r->stop)))
        return openai_no_memory(p);
    if (!cJSON_IsArray(it))
        return add_stop(p, it, "stop");
    char param[48];
    size_t i = 0;
    for (const cJSON *s = it->child; s; s = s->next, i++) {
        snprintf(param, sizeof param, "stop[%zu]", i);
        int rc = add_stop(p, s, param);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* user: the session key, hashed (BLAKE2b) to a session id of fixed length whatever its size. */
static int take_user(openai_parse *p, const cJSON *root)
{
    const cJSON *it = openai_member(root, "user");
    const char *user = NULL;
    if (!it)
        return 0;
    int rc = openai_text_of(p, it, "user", &user);
    if (rc != 0 || !*user)
        return rc;
    unsigned char hash[SESSION_HASH_LEN];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)user, strlen(user), NULL, 0);
    char *id = malloc(SESSION_ID_LEN + 1);
    if (!id)
        return openai_no_memory(p);
    memcpy(id, SESSION_PREFIX, sizeof SESSION_PREFIX - 1);
    sodium_bin2hex(id + sizeof SESSION_PREFIX - 1, 2 * SESSION_HASH_LEN + 1, hash, sizeof hash);
    p->r->session_id = id;
    return 0;
}

/* n (1 only), stream, stream_options.include_usage. */
static int take_options(openai_parse *p, const cJSON *root, openai_request *out)
{
    const cJSON *n = openai_member(root, "n"), *stream = openai_member(root, "stream");
    const cJSON *opts = openai_member(root, "stream_options");
    int64_t choices = 1;
    if (n && openai_integer_of(p, n, "n", 1, 1, &choices) != 0)
        return openai_bad(p, "n", "'n' must be 1 (one choice per request)");
    if (stream && openai_bool_of(p, stream, "stream", &out->stream) != 0)
        return EF_EINVAL;
    if (opts && !cJSON_IsObject(opts))
        return openai_bad(p, "stream_options", "'stream_options' must be an object");
    const cJSON *usage = opts ? openai_member(opts, "include_usage") : NULL;
    if (usage && openai_bool_of(p, usage, "stream_options.include_usage", &out->include_usage) != 0)
        return EF_EINVAL;
    return 0;
}

int openai_take_settings(openai_parse *p, const cJSON *root, openai_request *out)
{
    int rc = take_max_tokens(p, root);
    if (rc == 0)
        rc = take_sampling(p, root);
    if (rc == 0)
        rc = take_stop(p, root);
    if (rc == 0)
        rc = take_user(p, root);
    return rc != 0 ? rc : take_options(p, root, out);
}
