/* llama.cpp backend, text side: tokenizing prompts, rendering chat messages with the model's
 * template (llama_chat_apply_template), and token pieces for streaming. llama.cpp documents
 * tokenization as thread-safe; the engine calls these on its inference thread. */
#include "backend_llama.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More than llama.cpp's built-in templates (about 50 in 2025): all of them get listed. */
#define TEMPLATE_NAMES_MAX 128
/* Room for one rendered probe message; the call reports the size it needs if it is short. */
#define TEMPLATE_PROBE_CAP 256

int llama_text_tokenize(backend *b, const char *text, size_t len, int32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (len > INT32_MAX / 2)
        return EF_ETOOBIG;
    /* A token covers at least one byte, plus BOS/EOS: len + 2 always fits. */
    size_t cap = len + 2;
    int32_t *tokens = malloc(sizeof *tokens * cap);
    if (!tokens)
        return EF_ENOMEM;
    /* parse_special as llama-server does: rendered chat templates carry special tokens. */
    int32_t n = llama_tokenize(b->vocab, text, (int32_t)len, tokens, (int32_t)cap, true, true);
    if (n < 0) {
        free(tokens);
        return EF_ETOKENIZE;
    }
    *out = tokens;
    *n_out = (size_t)n;
    return 0;
}

int llama_text_render_chat(backend *b, const backend_chat_msg *msgs, size_t n, char **out)
{
    *out = NULL;
    const char *tmpl =
        b->chat_template ? b->chat_template : llama_model_chat_template(b->model, NULL);
    if (!tmpl || n == 0)
        return EF_EINVAL;
    struct llama_chat_message *chat = calloc(n, sizeof *chat);
    if (!chat)
        return EF_ENOMEM;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        chat[i].role = msgs[i].role;
        chat[i].content = msgs[i].content;
        total += strlen(msgs[i].content) + strlen(msgs[i].role);
    }
    int rc = EF_EINVAL;
    char *buf = NULL;
    /* Two passes at most: the call returns the size it needs when the buffer is short. */
    int32_t cap = (int32_t)(total * 2 + 256);
    for (int pass = 0; pass < 2; pass++) {
        free(buf);
        buf = malloc((size_t)cap + 1);
        if (!buf) {
            rc = EF_ENOMEM;
            break;
        }
        int32_t need = llama_chat_apply_template(tmpl, chat, n, true, buf, cap);
        if (need < 0)
            break; /* unknown template */
        if (need <= cap) {
            buf[need] = '\0';
            *out = buf;
            buf = NULL;
            rc = 0;
            break;
        }
        cap = need;
    }
    free(buf);
    free(chat);
    return rc;
}

int llama_text_piece(backend *b, int32_t token, char *buf, size_t cap)
{
    int32_t n = llama_token_to_piece(b->vocab, token, buf, (int32_t)cap, 0, false);
    return n < 0 ? EF_EINVAL : n;
}

int backend_llama_check_template(const char *tmpl, char *known, size_t cap)
{
    /* llama_chat_apply_template takes a built-in name or detects the family of a template
     * text, and returns -1 for anything else: one dummy message is enough to ask it. */
    struct llama_chat_message probe = {.role = "user", .content = "hello"};
    char rendered[TEMPLATE_PROBE_CAP];
    if (tmpl && *tmpl &&
        llama_chat_apply_template(tmpl, &probe, 1, true, rendered, sizeof rendered) >= 0)
        return 0;
    const char *names[TEMPLATE_NAMES_MAX];
    int32_t n = llama_chat_builtin_templates(names, TEMPLATE_NAMES_MAX);
    size_t len = 0;
    if (cap > 0)
        known[0] = '\0';
    for (int32_t i = 0; i < n && i < TEMPLATE_NAMES_MAX && len < cap; i++) {
        int w = snprintf(known + len, cap - len, "%s%s", i ? ", " : "", names[i]);
        len += w > 0 ? (size_t)w : 0;
    }
    return EF_ECONFIG;
}
