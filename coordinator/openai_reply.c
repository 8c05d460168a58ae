/* The OpenAI response side: completion objects (whole or streamed chunks), error objects, the
 * models list, and the mapping of fleet error codes onto OpenAI's. Every string that goes out
 * (token text and model names come from agents, untrusted peers) passes through utf8_clean
 * first, so the output is always valid JSON in valid UTF-8. Pure; cJSON prints. */
#include "openai.h"

#include "errors.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

/* At s (n > 0 bytes): the length of the well-formed sequence that starts there (1 to 4, Unicode
 * table 3-7), or 0 with *bad set to the length of its maximal ill-formed subpart (what one U+FFFD
 * replaces, as Unicode recommends). *need is the length a sequence with this lead byte has. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad, size_t *need)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80) {
        *need = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else {
        *need = 1, *bad = 1; /* a continuation byte, C0, C1 or F5..FF: never a lead */
        return 0;
    }
    *need = len;
    size_t i = 1;
    for (; i < len && i < n; i++) {
        unsigned char b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF))
            break;
    }
    if (i == len)
        return len;
    *bad = i;
    return 0;
}

int openai_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t bad = 0, need = 0, n = utf8_seq(u + i, len - i, &bad, &need);
        if (n == 0 || u[i] == '\0')
            return 0;
        i += n;
    }
    return 1;
}

size_t openai_utf8_complete(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    /* The last lead byte within the final 3: if it starts a sequence that is well-formed so far
     * but runs past the end, hold it back. Anything else goes out (and is replaced if bad). */
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        size_t at = len - back;
        if ((u[at] & 0xC0) == 0x80)
            continue; /* a continuation byte: look further back */
        size_t bad = 0, need = 0;
        if (utf8_seq(u + at, back, &bad, &need) == 0 && need > back && bad == back)
            return at;
        break;
    }
    return len;
}

/* s[0..len) as a malloc'd NUL-terminated string of well-formed UTF-8: each ill-formed subpart
 * and each NUL byte (a JSON string in cJSON cannot hold one) becomes U+FFFD. NULL on ENOMEM. */
static char *utf8_clean(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    if (!s)
        len = 0;
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(3 * len + 1), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t bad = 0, need = 0, n = utf8_seq(u + i, len - i, &bad, &need);
        if (n > 0 && u[i] != '\0') {
            memcpy(w, u + i, n);
            w += n, i += n;
        } else {
            memcpy(w, UTF8_REPLACEMENT, 3);
            w += 3, i += n > 0 ? n : bad;
        }
    }
    *w = '\0';
    return out;
}

/* ---- building objects ------------------------------------------------------------------------
 * Each add_* returns 0 or -1 (ENOMEM); callers chain them with || and free the tree on -1. */

static int add_text(cJSON *obj, const char *name, const char *s, size_t len)
{
    char *clean = utf8_clean(s, len);
    if (!clean)
        return -1;
    cJSON *it = cJSON_AddStringToObject(obj, name, clean);
    free(clean);
    return it ? 0 : -1;
}

static int add_str(cJSON *obj, const char *name, const char *s)
{
    return add_text(obj, name, s, s ? strlen(s) : 0);
}

/* A string, or null for NULL or "". */
static int add_str_or_null(cJSON *obj, const char *name, const char *s)
{
    if (s && *s)
        return add_str(obj, name, s);
    return cJSON_AddNullToObject(obj, name) ? 0 : -1;
}

static int add_num(cJSON *obj, const char *name, double v)
{
    return cJSON_AddNumberToObject(obj, name, v) ? 0 : -1;
}

static int add_usage(cJSON *obj, const Edgefleet__Usage *u)
{
    cJSON *usage = cJSON_AddObjectToObject(obj, "usage");
    if (!usage)
        return -1;
    uint64_t total = (uint64_t)u->prompt_tokens + u->completion_tokens;
    /* Tokens served from the session's KV cache are OpenAI's cached_tokens. */
    uint32_t cached =
        u->prompt_evaluated <= u->prompt_tokens ? u->prompt_tokens - u->prompt_evaluated : 0;
    cJSON *details = NULL;
    if (add_num(usage, "prompt_tokens", u->prompt_tokens) ||
        add_num(usage, "completion_tokens", u->completion_tokens) ||
        add_num(usage, "total_tokens", (double)total) ||
        !(details = cJSON_AddObjectToObject(usage, "prompt_tokens_details")))
        return -1;
    return add_num(details, "cached_tokens", cached);
}

/* id, object, created, model: the head every response object starts with. */
static cJSON *head(const openai_meta *m, const char *object)
{
    cJSON *root = cJSON_CreateObject();
    if (root &&
        (add_str(root, "id", m->id) || add_str(root, "object", object) ||
         add_num(root, "created", (double)m->created) || add_str(root, "model", m->model))) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The document as text, and the tree freed; NULL if anything failed (ok != 0 or ENOMEM). */
static char *finish(cJSON *root, int failed)
{
    char *out = root && !failed ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return out;
}

/* choices[0]: index, then text (completions), message (chat, whole) or delta (chat, chunk),
 * then logprobs null and finish_reason. */
static int add_choice(cJSON *choices, const openai_meta *m, const char *text, size_t len, int chunk,
                      int first, const char *finish_reason)
{
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddItemToArray(choices, c)) {
        cJSON_Delete(c);
        return -1;
    }
    if (add_num(c, "index", 0))
        return -1;
    if (m->ep == OPENAI_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, chunk ? "delta" : "message");
        if (!msg)
            return -1;
        if ((!chunk || first) && add_str(msg, "role", "assistant"))
            return -1;
        /* A chunk's delta carries content when it has some (or is the first, as OpenAI's
         * is); the last one, with only a finish_reason, is {}. */
        if ((!chunk || first || len > 0) && add_text(msg, "content", text, len))
            return -1;
    } else if (add_text(c, "text", text, len)) {
        return -1;
    }
    if (!cJSON_AddNullToObject(c, "logprobs"))
        return -1;
    return add_str_or_null(c, "finish_reason", finish_reason);
}

/* ---- responses ------------------------------------------------------------------------------- */

const char *openai_response_id(openai_endpoint ep, ProtobufCBinaryData request_id, char out[48])
{
    static const char digits[] = "0123456789abcdef";
    const char *prefix = ep == OPENAI_CHAT ? "chatcmpl-" : "cmpl-";
    size_t at = strlen(prefix), n = request_id.len > 16 ? 16 : request_id.len;
    memcpy(out, prefix, at);
    for (size_t i = 0; i < n && request_id.data; i++) {
        out[at++] = digits[request_id.data[i] >> 4];
        out[at++] = digits[request_id.data[i] & 15];
    }
    out[at] = '\0';
    return out;
}

const char *openai_finish_reason(Edgefleet__FinishReason f)
{
    switch (f) {
    case EDGEFLEET__FINISH_REASON__FINISH_STOP:
        return "stop";
    case EDGEFLEET__FINISH_REASON__FINISH_LENGTH:
    case EDGEFLEET__FINISH_REASON__FINISH_CONTEXT:
        return "length";
    default:
        return NULL;
    }
}

char *openai_response_json(const openai_meta *m, const char *text, size_t len,
                           const char *finish_reason, const Edgefleet__Usage *usage)
{
    cJSON *root = head(m, m->ep == OPENAI_CHAT ? "chat.completion" : "text_completion");
    cJSON *choices = root ? cJSON_AddArrayToObject(root, "choices") : NULL;
    int failed = !choices || add_choice(choices, m, text, len, 0, 0, finish_reason) ||
                 (usage && add_usage(root, usage));
    return finish(root, failed);
}

char *openai_chunk_json(const openai_meta *m, const char *text, size_t len, int first,
                        const char *finish_reason, const Edgefleet__Usage *usage)
{
    /* OpenAI streams completions as "text_completion" objects too. */
    cJSON *root = head(m, m->ep == OPENAI_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = root ? cJSON_AddArrayToObject(root, "choices") : NULL;
    int failed = !choices;
    if (!failed && usage)
        failed = add_usage(root, usage); /* the include_usage chunk: "choices": [] */
    else if (!failed)
        failed = add_choice(choices, m, text, len, 1, first, finish_reason);
    return finish(root, failed);
}

/* ---- errors ---------------------------------------------------------------------------------- */

char *openai_error_json(const openai_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    int failed = !err || add_str(err, "message", e->message) ||
                 add_str_or_null(err, "type", e->type) || add_str_or_null(err, "param", e->param) ||
                 add_str_or_null(err, "code", e->code);
    return finish(root, failed);
}

int openai_error_from_fleet(int code, const char *message, openai_error *e)
{
    int status = 500;
    const char *type = "server_error", *name = NULL;
    switch (code) {
    case EF_EUNKNOWNMODEL:
        status = 404, type = "not_found_error", name = "model_not_found";
        break;
    case EF_EBUSY:
        status = 429, type = "rate_limit_error";
        break;
    case EF_ECONTEXT:
        status = 400, type = "invalid_request_error", name = "context_length_exceeded";
        break;
    case EF_EINVAL:
    case EF_ETOOBIG:
    case EF_ETOKENIZE:
        status = 400, type = "invalid_request_error";
        break;
    case EF_EDENIED:
        status = 403, type = "permission_error";
        break;
    case EF_EDEADLINE:
        status = 408, type = "timeout_error";
        break;
    case EF_EAGENTLOST:
    case EF_ENOTCONN:
    case EF_EDRAINING:
        status = 503, type = "service_unavailable";
        break;
    default:
        break;
    }
    char lower[40];
    if (!name) { /* the fleet's own name: "EF_ESTALLED" -> "ef_estalled" */
        snprintf(lower, sizeof lower, "%s", ef_err_name(code));
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        name = lower;
    }
    /* The message may be an agent's: bounded here, cleaned when printed. */
    const char *text = message && *message ? message : ef_strerror(code);
    return openai_error_set(e, status, type, NULL, name, "%s", text);
}

/* ---- models ---------------------------------------------------------------------------------- */

char *openai_models_json(const openai_model_row *rows, size_t n, int64_t created)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *data = NULL;
    int failed =
        !root || add_str(root, "object", "list") || !(data = cJSON_AddArrayToObject(root, "data"));
    for (size_t i = 0; !failed && i < n; i++) {
        cJSON *row = cJSON_CreateObject();
        if (!row || !cJSON_AddItemToArray(data, row)) {
            cJSON_Delete(row);
            failed = 1;
            break;
        }
        failed = add_str(row, "id", rows[i].name) || add_str(row, "object", "model") ||
                 add_num(row, "created", (double)created) ||
                 add_str(row, "owned_by", "edgefleet") || add_num(row, "boards", rows[i].boards) ||
                 add_num(row, "slots", rows[i].slots) ||
                 add_num(row, "busy_slots", rows[i].busy_slots) ||
                 add_num(row, "queued", rows[i].queued);
    }
    return finish(root, failed);
}
