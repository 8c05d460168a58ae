/* The OpenAI request decoder: a JSON body of /v1/completions or /v1/chat/completions (any bytes,
 * from a peer we do not trust) becomes a fleet Request that every later check (front door,
 * scheduler, agent) accepts, or an OpenAI error naming the field. This file reads the body's
 * structure (the JSON itself, model, prompt, messages); openai_fields.c the typed fields and the
 * generation settings. Pure; cJSON parses. See openai.h for the contract. */
#include "openai_parse.h"

#include "errors.h"
#include "registry.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Count text toward CODEC_MAX_PROMPT_BYTES (the front door's and the agent's bound). */
static int count_text(openai_parse *p, const char *param, size_t n)
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

static int take_prompt(openai_parse *p, const cJSON *root)
{
    const cJSON *it = openai_member(root, "prompt");
    if (!it)
        return openai_bad(p, "prompt", "'prompt' is required for /v1/completions");
    if (cJSON_IsArray(it)) {
        int n = cJSON_GetArraySize(it);
        if (n != 1 || !cJSON_IsString(cJSON_GetArrayItem(it, 0)))
            return openai_bad(
                p, "prompt",
                "'prompt' as an array must hold exactly one string (several prompts and "
                "token ids are not supported)");
        it = cJSON_GetArrayItem(it, 0);
    }
    const char *text = NULL;
    int rc = openai_text_of(p, it, "prompt", &text);
    if (rc != 0)
        return rc;
    if (!*text)
        return openai_bad(p, "prompt", "'prompt' is empty");
    size_t n = strlen(text);
    if ((rc = count_text(p, "prompt", n)) != 0)
        return rc;
    if (!(p->r->prompt = strdup(text)))
        return openai_no_memory(p);
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
static int content_of_parts(openai_parse *p, const cJSON *parts, size_t i, char **out)
{
    char param[48];
    if (!parts->child) {
        snprintf(param, sizeof param, "messages[%zu].content", i);
        return openai_bad(p, param, "'%s' is an empty array", param);
    }
    size_t total = 0, k = 0;
    for (const cJSON *part = parts->child; part; part = part->next, k++) {
        const cJSON *type = cJSON_IsObject(part) ? openai_member(part, "type") : NULL;
        snprintf(param, sizeof param, "messages[%zu].content[%zu].type", i, k);
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
            return openai_bad(
                p, param, "'%s' must be \"text\" (other content parts are not supported)", param);
        const char *text = NULL;
        snprintf(param, sizeof param, "messages[%zu].content[%zu].text", i, k);
        int rc = openai_text_of(p, openai_member(part, "text"), param, &text);
        if (rc != 0)
            return rc;
        total += strlen(text);
        if (total > CODEC_MAX_PROMPT_BYTES)
            return count_text(p, "messages", total);
    }
    char *joined = malloc(total + 1);
    if (!joined)
        return openai_no_memory(p);
    size_t at = 0;
    for (const cJSON *part = parts->child; part; part = part->next) {
        const char *text = openai_member(part, "text")->valuestring; /* checked above */
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
static int content_of(openai_parse *p, const cJSON *msg, size_t i, const char *role, char **out)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    const cJSON *c = openai_member(msg, "content");
    if (!c) {
        if (strcmp(role, "assistant") != 0)
            return openai_bad(p, param, "'%s' is required", param);
        *out = strdup("");
        return *out ? 0 : openai_no_memory(p);
    }
    if (cJSON_IsArray(c))
        return content_of_parts(p, c, i, out);
    const char *text = NULL;
    int rc = openai_text_of(p, c, param, &text);
    if (rc != 0)
        return rc;
    *out = strdup(text);
    return *out ? 0 : openai_no_memory(p);
}

/* messages[i] into a ChatMessage (malloc'd member by member, for free_unpacked). */
static int take_message(openai_parse *p, const cJSON *msg, size_t i, Edgefleet__ChatMessage **out)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (!cJSON_IsObject(msg))
        return openai_bad(p, param, "'%s' must be an object", param);
    snprintf(param, sizeof param, "messages[%zu].role", i);
    const cJSON *role_it = openai_member(msg, "role");
    if (!role_it)
        return openai_bad(p, param, "'%s' is required", param);
    const char *given = NULL, *role = NULL;
    int rc = openai_text_of(p, role_it, param, &given);
    if (rc != 0)
        return rc;
    if (!(role = fleet_role(given)))
        return openai_bad(p, param,
                          "'%s' is \"%.40s\"; it must be system, developer, user or assistant",
                          param, given);
    const cJSON *calls = openai_member(msg, "tool_calls");
    if (calls && !(cJSON_IsArray(calls) && cJSON_GetArraySize(calls) == 0)) {
        snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
        return openai_bad(p, param, "'%s': tool calls are not supported", param);
    }
    char *content = NULL;
    if ((rc = content_of(p, msg, i, role, &content)) != 0)
        return rc;
    Edgefleet__ChatMessage *m = malloc(sizeof *m);
    char *role_copy = strdup(role);
    if (!m || !role_copy) {
        free(m), free(role_copy), free(content);
        return openai_no_memory(p);
    }
    edgefleet__chat_message__init(m);
    m->role = role_copy;
    m->content = content;
    *out = m;
    return count_text(p, "messages", strlen(role_copy) + strlen(content));
}

static int take_messages(openai_parse *p, const cJSON *root)
{
    const cJSON *list = openai_member(root, "messages");
    if (!list)
        return openai_bad(p, "messages", "'messages' is required for /v1/chat/completions");
    if (!cJSON_IsArray(list))
        return openai_bad(p, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(list);
    if (n == 0)
        return openai_bad(p, "messages", "'messages' is empty");
    if (n > CODEC_MAX_MESSAGES)
        return openai_bad(p, "messages", "'messages' has %d entries (at most %d)", n,
                          CODEC_MAX_MESSAGES);
    if (!(p->r->messages = calloc((size_t)n, sizeof *p->r->messages)))
        return openai_no_memory(p);
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

static int take_model(openai_parse *p, const cJSON *root)
{
    const cJSON *it = openai_member(root, "model");
    const char *model = NULL;
    if (!it)
        return openai_bad(p, "model", "'model' is required");
    int rc = openai_text_of(p, it, "model", &model);
    if (rc != 0)
        return rc;
    if (!*model || strlen(model) >= REGISTRY_MODEL_NAME_MAX)
        return openai_bad(p, "model", "'model' must be 1 to %d bytes", REGISTRY_MODEL_NAME_MAX - 1);
    if (!(p->r->model = strdup(model)))
        return openai_no_memory(p);
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
static int parse_body(openai_parse *p, const char *body, size_t len, cJSON **root)
{
    char *copy = body_copy(body, len);
    if (!copy)
        return openai_no_memory(p);
    const char *end = NULL;
    /* cJSON cannot tell ENOMEM from bad syntax: a failure is taken for the body's. */
    *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
    while (*root && at < len && is_json_space(copy[at]))
        at++;
    free(copy);
    if (!*root)
        return openai_bad(p, NULL, "malformed JSON near byte %zu of the body", at);
    if (at < len)
        return openai_bad(p, NULL, "unexpected data after the JSON value at byte %zu of the body",
                          at);
    if (!cJSON_IsObject(*root))
        return openai_bad(p, NULL, "the body must be a JSON object");
    return 0;
}

static int take_fields(openai_parse *p, const cJSON *root, openai_request *out)
{
    int rc = take_model(p, root);
    if (rc == 0)
        rc = p->ep == OPENAI_CHAT ? take_messages(p, root) : take_prompt(p, root);
    return rc != 0 ? rc : openai_take_settings(p, root, out);
}

static int new_request(openai_parse *p)
{
    Edgefleet__Request *r = malloc(sizeof *r);
    uint8_t *id = malloc(CODEC_REQUEST_ID_LEN);
    if (!r || !id) {
        free(r), free(id);
        return openai_no_memory(p);
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
    openai_parse p = {.ep = ep, .err = err};
    if (ep != OPENAI_COMPLETIONS && ep != OPENAI_CHAT)
        return openai_error_set(err, 404, "not_found_error", NULL, NULL, "unknown endpoint"),
               EF_EINVAL;
    if (!body && len > 0)
        return openai_bad(&p, NULL, "no body");
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
