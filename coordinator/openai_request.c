/* The OpenAI request decoder: a JSON body of /v1/completions or /v1/chat/completions (any bytes,
 * from an unauthenticated-until-proven peer) becomes a fleet Request that every later check
 * (front door, scheduler, agent) accepts, or an OpenAI error naming the field. Pure; cJSON
 * parses, this file decides what each field may hold. See openai.h for the contract. */
#include "openai.h"

#include "errors.h"
#include "registry.h"
#include "scheduler.h"

#include <cjson/cJSON.h>
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

typedef struct {
    openai_endpoint ep;
    Edgefleet__Request *r;
    openai_error *err;
    size_t text_bytes; /* prompt + every role and content so far (CODEC_MAX_PROMPT_BYTES) */
} parse;

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
__attribute__((format(printf, 3, 4))) static int bad(parse *p, const char *param, const char *fmt,
                                                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(p->err, 400, "invalid_request_error", param, NULL, fmt, ap);
    va_end(ap);
    return EF_EINVAL;
}

static int no_memory(parse *p)
{
    openai_error_set(p->err, 500, "server_error", NULL, NULL, "out of memory");
    return EF_ENOMEM;
}

/* A member of an object; JSON null counts as absent, as OpenAI's clients send many nulls. */
static const cJSON *member(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return it && !cJSON_IsNull(it) ? it : NULL;
}

/* A string field that is well-formed UTF-8 without NUL (see body_copy), or a refusal. */
static int text_of(parse *p, const cJSON *it, const char *param, const char **out)
{
    if (!cJSON_IsString(it) || !it->valuestring)
        return bad(p, param, "'%s' must be a string", param);
    if (!openai_utf8_valid(it->valuestring, strlen(it->valuestring)))
        return bad(p, param, "'%s' holds a NUL character (\\u0000) or invalid UTF-8", param);
    *out = it->valuestring;
    return 0;
}

static int number_of(parse *p, const cJSON *it, const char *param, double lo, double hi,
                     double *out)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return bad(p, param, "'%s' must be a finite number", param);
    if (it->valuedouble < lo || it->valuedouble > hi)
        return bad(p, param, "'%s' is %g; it must be between %g and %g", param, it->valuedouble, lo,
                   hi);
    *out = it->valuedouble;
    return 0;
}

static int integer_of(parse *p, const cJSON *it, const char *param, double lo, double hi,
                      int64_t *out)
{
    double d = 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        it->valuedouble != floor(it->valuedouble))
        return bad(p, param, "'%s' must be an integer", param);
    if (number_of(p, it, param, lo, hi, &d) != 0)
        return EF_EINVAL;
    *out = (int64_t)d;
    return 0;
}

static int bool_of(parse *p, const cJSON *it, const char *param, int *out)
{
    if (!cJSON_IsBool(it))
        return bad(p, param, "'%s' must be true or false", param);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return 0;
}

/* Count text toward CODEC_MAX_PROMPT_BYTES (the front door's and the agent's bound). */
static int count_text(parse *p, const char *param, size_t n)
{
    p->text_bytes += n;
    if (p->text_bytes > CODEC_MAX_PROMPT_BYTES) {
        openai_error_set(p->err, 400, "invalid_request_error", param, "context_length_exceeded",
                         "the prompt is longer than %u bytes", CODEC_MAX_PROMPT_BYTES);
        return EF_EINVAL;
    }
    return 0;
}

/* ---- prompt (completions) ------------------------------------------------------------------ */

static int take_prompt(parse *p, const cJSON *root)
{
    const cJSON *it = member(root, "prompt");
    if (!it)
        return bad(p, "prompt", "'prompt' is required for /v1/completions");
    if (cJSON_IsArray(it)) {
        int n = cJSON_GetArraySize(it);
        if (n != 1 || !cJSON_IsString(cJSON_GetArrayItem(it, 0)))
            return bad(p, "prompt",
                       "'prompt' as an array must hold exactly one string (several prompts and "
                       "token ids are not supported)");
        it = cJSON_GetArrayItem(it, 0);
    }
    const char *text = NULL;
    int rc = text_of(p, it, "prompt", &text);
    if (rc != 0)
        return rc;
    if (!*text)
        return bad(p, "prompt", "'prompt' is empty");
    size_t n = strlen(text);
    if ((rc = count_text(p, "prompt", n)) != 0)
        return rc;
    if (!(p->r->prompt = strdup(text)))
        return no_memory(p);
    return 0;
}

/* ---- messages (chat) ----------------------------------------------------------------------- */

/* The fleet's role for an OpenAI one, or NULL (tool and function messages need tool calling,
 * which the fleet does not do). */
static const char *fleet_role(const char *role)
{
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return "system";
    if (strcmp(role, "user") == 0)
        return "user";
    if (strcmp(role, "assistant") == 0)
        return "assistant";
    return NULL;
}

/* Content given as parts: every part {"type":"text","text":...}, joined as they come. */
static int content_of_parts(parse *p, const cJSON *parts, size_t i, char **out)
{
    char param[48];
    if (!parts->child) {
        snprintf(param, sizeof param, "messages[%zu].content", i);
        return bad(p, param, "'%s' is an empty array", param);
    }
    size_t total = 0, k = 0;
    for (const cJSON *part = parts->child; part; part = part->next, k++) {
        const cJSON *type = cJSON_IsObject(part) ? member(part, "type") : NULL;
        snprintf(param, sizeof param, "messages[%zu].content[%zu].type", i, k);
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
            return bad(p, param, "'%s' must be \"text\" (other content parts are not supported)",
                       param);
        const char *text = NULL;
        snprintf(param, sizeof param, "messages[%zu].content[%zu].text", i, k);
        int rc = text_of(p, member(part, "text"), param, &text);
        if (rc != 0)
            return rc;
        total += strlen(text);
        if (total > CODEC_MAX_PROMPT_BYTES)
            return count_text(p, "messages", total);
    }
    char *joined = malloc(total + 1);
    if (!joined)
        return no_memory(p);
    size_t at = 0;
    for (const cJSON *part = parts->child; part; part = part->next) {
        const char *text = member(part, "text")->valuestring; /* checked above */
        size_t len = strlen(text);
        memcpy(joined + at, text, len);
        at += len;
    }
    joined[at] = '\0';
    *out = joined;
    return 0;
}

/* messages[i]'s content, malloc'd: a string; null or absent only for the assistant ("");
 * or an array of text parts. */
static int content_of(parse *p, const cJSON *msg, size_t i, const char *role, char **out)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    const cJSON *c = member(msg, "content");
    if (!c) {
        if (strcmp(role, "assistant") != 0)
            return bad(p, param, "'%s' is required", param);
        *out = strdup("");
        return *out ? 0 : no_memory(p);
    }
    if (cJSON_IsArray(c))
        return content_of_parts(p, c, i, out);
    const char *text = NULL;
    int rc = text_of(p, c, param, &text);
    if (rc != 0)
        return rc;
    *out = strdup(text);
    return *out ? 0 : no_memory(p);
}

/* messages[i] into a ChatMessage (malloc'd member by member, for free_unpacked). */
static int take_message(parse *p, const cJSON *msg, size_t i, Edgefleet__ChatMessage **out)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (!cJSON_IsObject(msg))
        return bad(p, param, "'%s' must be an object", param);
    snprintf(param, sizeof param, "messages[%zu].role", i);
    const cJSON *role_it = member(msg, "role");
    if (!role_it)
        return bad(p, param, "'%s' is required", param);
    const char *given = NULL, *role = NULL;
    int rc = text_of(p, role_it, param, &given);
    if (rc != 0)
        return rc;
    if (!(role = fleet_role(given)))
        return bad(p, param, "'%s' is \"%.40s\"; it must be system, developer, user or assistant",
                   param, given);
    const cJSON *calls = member(msg, "tool_calls");
    if (calls && !(cJSON_IsArray(calls) && cJSON_GetArraySize(calls) == 0)) {
        snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
        return bad(p, param, "'%s': tool calls are not supported", param);
    }
    char *content = NULL;
    if ((rc = content_of(p, msg, i, role, &content)) != 0)
        return rc;
    Edgefleet__ChatMessage *m = malloc(sizeof *m);
    char *role_copy = strdup(role);
    if (!m || !role_copy) {
        free(m), free(role_copy), free(content);
        return no_memory(p);
    }
    edgefleet__chat_message__init(m);
    m->role = role_copy;
    m->content = content;
    *out = m;
    return count_text(p, "messages", strlen(role_copy) + strlen(content));
}

static int take_messages(parse *p, const cJSON *root)
{
    const cJSON *list = member(root, "messages");
    if (!list)
        return bad(p, "messages", "'messages' is required for /v1/chat/completions");
    if (!cJSON_IsArray(list))
        return bad(p, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(list);
    if (n == 0)
        return bad(p, "messages", "'messages' is empty");
    if (n > CODEC_MAX_MESSAGES)
        return bad(p, "messages", "'messages' has %d entries (at most %d)", n, CODEC_MAX_MESSAGES);
    if (!(p->r->messages = calloc((size_t)n, sizeof *p->r->messages)))
        return no_memory(p);
    size_t i = 0;
    for (const cJSON *msg = list->child; msg; msg = msg->next, i++) {
        /* Counted as soon as stored, so free_unpacked frees it whatever fails next. */
        int rc = take_message(p, msg, i, &p->r->messages[i]);
        if (p->r->messages[i])
            p->r->n_messages = i + 1;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- generation settings ------------------------------------------------------------------- */

/* max_tokens and max_completion_tokens (the newer name wins when both are given). */
static int take_max_tokens(parse *p, const cJSON *root)
{
    static const char *const names[] = {"max_tokens", "max_completion_tokens"};
    p->r->max_tokens = OPENAI_DEFAULT_MAX_TOKENS;
    for (size_t k = 0; k < 2; k++) {
        const cJSON *it = member(root, names[k]);
        int64_t v = 0;
        if (!it)
            continue;
        /* 0 is refused: the agent would (it asks for at least one token). */
        if (integer_of(p, it, names[k], 1, OPENAI_MAX_TOKENS_MAX, &v) != 0)
            return EF_EINVAL;
        p->r->max_tokens = (uint32_t)v;
    }
    return 0;
}

static int take_float(parse *p, const cJSON *root, const char *name, double lo, double hi,
                      float *out)
{
    const cJSON *it = member(root, name);
    double v = 0;
    if (!it)
        return 0;
    if (number_of(p, it, name, lo, hi, &v) != 0)
        return EF_EINVAL;
    *out = (float)v;
    return 0;
}

static int take_seed(parse *p, const cJSON *root, uint64_t *out)
{
    const cJSON *it = member(root, "seed");
    int64_t v = -1;
    if (it && integer_of(p, it, "seed", -1, MAX_EXACT_INTEGER, &v) != 0)
        return EF_EINVAL;
    *out = v < 0 ? 0 : v == 0 ? SEED_ZERO_ON_WIRE : (uint64_t)v;
    return 0;
}

static int take_sampling(parse *p, const cJSON *root)
{
    Edgefleet__SamplingParams *s = malloc(sizeof *s); /* freed by free_unpacked */
    if (!s)
        return no_memory(p);
    edgefleet__sampling_params__init(s);
    p->r->sampling = s;
    s->temperature = DEFAULT_TEMPERATURE;
    s->top_k = DEFAULT_TOP_K;
    s->top_p = DEFAULT_TOP_P;
    s->min_p = DEFAULT_MIN_P;
    s->repeat_penalty = DEFAULT_REPEAT_PENALTY;
    int64_t top_k = DEFAULT_TOP_K;
    const cJSON *k = member(root, "top_k");
    if (take_float(p, root, "temperature", 0, MAX_TEMPERATURE, &s->temperature) != 0 ||
        take_float(p, root, "top_p", 0, 1, &s->top_p) != 0 ||
        take_float(p, root, "min_p", 0, 1, &s->min_p) != 0 ||
        take_float(p, root, "repeat_penalty", 0, MAX_REPEAT_PENALTY, &s->repeat_penalty) != 0 ||
        (k && integer_of(p, k, "top_k", 0, INT32_MAX, &top_k) != 0) ||
        take_seed(p, root, &s->seed) != 0)
        return EF_EINVAL;
    s->top_k = (int32_t)top_k;
    return 0;
}

static int add_stop(parse *p, const cJSON *it, const char *param)
{
    const char *text = NULL;
    int rc = text_of(p, it, param, &text);
    if (rc != 0)
        return rc;
    size_t len = strlen(text);
    if (len == 0 || len > CODEC_MAX_STOP_LEN)
        return bad(p, param, "'%s' is %zu bytes (1 to %u)", param, len, CODEC_MAX_STOP_LEN);
    if (!(p->r->stop[p->r->n_stop] = strdup(text)))
        return no_memory(p);
    p->r->n_stop++;
    return 0;
}

/* stop: a string, or an array of strings. */
static int take_stop(parse *p, const cJSON *root)
{
    const cJSON *it = member(root, "stop");
    if (!it)
        return 0;
    int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 1;
    if (n > CODEC_MAX_STOP)
        return bad(p, "stop", "'stop' has %d strings (at most %d)", n, CODEC_MAX_STOP);
    if (n == 0)
        return 0;
    if (!(p->r->stop = calloc((size_t)n, sizeof *p->r->stop)))
        return no_memory(p);
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
static int take_user(parse *p, const cJSON *root)
{
    const cJSON *it = member(root, "user");
    const char *user = NULL;
    if (!it)
        return 0;
    int rc = text_of(p, it, "user", &user);
    if (rc != 0 || !*user)
        return rc;
    unsigned char hash[SESSION_HASH_LEN];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)user, strlen(user), NULL, 0);
    char *id = malloc(SESSION_ID_LEN + 1);
    if (!id)
        return no_memory(p);
    memcpy(id, SESSION_PREFIX, sizeof SESSION_PREFIX - 1);
    sodium_bin2hex(id + sizeof SESSION_PREFIX - 1, 2 * SESSION_HASH_LEN + 1, hash, sizeof hash);
    p->r->session_id = id;
    return 0;
}

/* n (1 only), stream, stream_options.include_usage. */
static int take_options(parse *p, const cJSON *root, openai_request *out)
{
    const cJSON *n = member(root, "n"), *stream = member(root, "stream");
    const cJSON *opts = member(root, "stream_options");
    int64_t choices = 1;
    if (n && integer_of(p, n, "n", 1, 1, &choices) != 0)
        return bad(p, "n", "'n' must be 1 (one choice per request)");
    if (stream && bool_of(p, stream, "stream", &out->stream) != 0)
        return EF_EINVAL;
    if (opts && !cJSON_IsObject(opts))
        return bad(p, "stream_options", "'stream_options' must be an object");
    const cJSON *usage = opts ? member(opts, "include_usage") : NULL;
    if (usage && bool_of(p, usage, "stream_options.include_usage", &out->include_usage) != 0)
        return EF_EINVAL;
    return 0;
}

static int take_model(parse *p, const cJSON *root)
{
    const cJSON *it = member(root, "model");
    const char *model = NULL;
    if (!it)
        return bad(p, "model", "'model' is required");
    int rc = text_of(p, it, "model", &model);
    if (rc != 0)
        return rc;
    if (!*model || strlen(model) >= REGISTRY_MODEL_NAME_MAX)
        return bad(p, "model", "'model' must be 1 to %d bytes", REGISTRY_MODEL_NAME_MAX - 1);
    if (!(p->r->model = strdup(model)))
        return no_memory(p);
    return 0;
}

/* ---- the body ------------------------------------------------------------------------------ */

/* cJSON turns "\u0000" into a NUL that silently cuts the string short. In this copy of the body
 * every such escape inside a string becomes six bytes 0xFF and every raw NUL one: 0xFF is never
 * UTF-8, so the check of each honoured string refuses it by name, and outside a string it is a
 * syntax error. Same length, so byte offsets in messages are the body's. NULL on ENOMEM. */
static char *body_copy(const char *body, size_t len)
{
    char *c = malloc(len + 1);
    if (!c)
        return NULL;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        c[i] = body[i] == '\0' ? (char)0xFF : body[i];
        if (!in_string) {
            in_string = body[i] == '"';
        } else if (body[i] == '"') {
            in_string = 0;
        } else if (body[i] == '\\' && len - i >= 6 && memcmp(body + i + 1, "u0000", 5) == 0) {
            memset(c + i, 0xFF, 6);
            i += 5;
        } else if (body[i] == '\\' && i + 1 < len) {
            i++; /* the escaped character cannot end the string */
            c[i] = body[i] == '\0' ? (char)0xFF : body[i];
        }
    }
    c[len] = '\0';
    return c;
}

static int is_json_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* The body as a JSON object, or a refusal saying where it stops being JSON. */
static int parse_body(parse *p, const char *body, size_t len, cJSON **root)
{
    char *copy = body_copy(body, len);
    if (!copy)
        return no_memory(p);
    const char *end = NULL;
    /* cJSON cannot tell ENOMEM from bad syntax: a failure is taken for the body's. */
    *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
    while (*root && at < len && is_json_space(copy[at]))
        at++;
    free(copy);
    if (!*root)
        return bad(p, NULL, "malformed JSON near byte %zu of the body", at);
    if (at < len)
        return bad(p, NULL, "unexpected data after the JSON value at byte %zu of the body", at);
    if (!cJSON_IsObject(*root))
        return bad(p, NULL, "the body must be a JSON object");
    return 0;
}

static int take_fields(parse *p, const cJSON *root, openai_request *out)
{
    int rc = take_model(p, root);
    if (rc == 0)
        rc = p->ep == OPENAI_CHAT ? take_messages(p, root) : take_prompt(p, root);
    if (rc == 0)
        rc = take_max_tokens(p, root);
    if (rc == 0)
        rc = take_sampling(p, root);
    if (rc == 0)
        rc = take_stop(p, root);
    if (rc == 0)
        rc = take_user(p, root);
    if (rc == 0)
        rc = take_options(p, root, out);
    return rc;
}

static int new_request(parse *p)
{
    Edgefleet__Request *r = malloc(sizeof *r);
    uint8_t *id = malloc(CODEC_REQUEST_ID_LEN);
    if (!r || !id) {
        free(r), free(id);
        return no_memory(p);
    }
    edgefleet__request__init(r);
    randombytes_buf(id, CODEC_REQUEST_ID_LEN);
    r->request_id.data = id;
    r->request_id.len = CODEC_REQUEST_ID_LEN;
    p->r = r;
    return 0;
}

int openai_request_parse(openai_endpoint ep, const char *body, size_t len, openai_request *out,
                         openai_error *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    parse p = {.ep = ep, .err = err};
    if (ep != OPENAI_COMPLETIONS && ep != OPENAI_CHAT)
        return openai_error_set(err, 404, "not_found_error", NULL, NULL, "unknown endpoint"),
               EF_EINVAL;
    if (!body && len > 0)
        return bad(&p, NULL, "no body");
    if (len > OPENAI_BODY_MAX)
        return openai_error_set(err, 413, "invalid_request_error", NULL, NULL,
                                "the body is %zu bytes (at most %u)", len, OPENAI_BODY_MAX),
               EF_ETOOBIG;
    if (sodium_init() < 0) /* randombytes and the hash need it; a no-op once done */
        return openai_error_set(err, 500, "server_error", NULL, NULL, "libsodium failed"),
               EF_ECRYPTO;
    cJSON *root = NULL;
    int rc = parse_body(&p, body ? body : "", len, &root);
    if (rc == 0)
        rc = new_request(&p);
    if (rc == 0)
        rc = take_fields(&p, root, out);
    cJSON_Delete(root);
    if (rc != 0) {
        if (p.r)
            edgefleet__request__free_unpacked(p.r, NULL);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->request = p.r;
    return 0;
}

void openai_request_clear(openai_request *r)
{
    if (!r)
        return;
    if (r->request)
        edgefleet__request__free_unpacked(r->request, NULL);
    memset(r, 0, sizeof *r);
}
