/* Internal to the OpenAI request decoder (openai_request.c, openai_fields.c): the state of one
 * openai_request_parse and the typed readers of its fields. Each reader returns 0, or EF_EINVAL
 * (EF_ENOMEM) with the error filled: 400 invalid_request_error naming the field. */
#ifndef EF_COORD_OPENAI_PARSE_H
#define EF_COORD_OPENAI_PARSE_H

#include "openai.h"

#include <cjson/cJSON.h>

typedef struct {
    openai_endpoint ep;
    Edgefleet__Request *r; /* being built: every member malloc'd, for free_unpacked */
    openai_error *err;
    size_t text_bytes; /* prompt + every role and content so far (CODEC_MAX_PROMPT_BYTES) */
} openai_parse;

/* A caller's mistake: 400 invalid_request_error naming `param`. Returns EF_EINVAL. */
int openai_bad(openai_parse *p, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 500 server_error. Returns EF_ENOMEM. */
int openai_no_memory(openai_parse *p);
/* A member of an object (names are case-sensitive; of duplicates the first counts); JSON null
 * counts as absent, as OpenAI's clients send many nulls. NULL if absent. */
const cJSON *openai_member(const cJSON *obj, const char *name);
/* A string of well-formed UTF-8 without NUL; *out points into the tree. */
int openai_text_of(openai_parse *p, const cJSON *it, const char *param, const char **out);
/* A finite number in [lo, hi]. */
int openai_number_of(openai_parse *p, const cJSON *it, const char *param, double lo, double hi,
                     double *out);
/* An integral number in [lo, hi]. */
int openai_integer_of(openai_parse *p, const cJSON *it, const char *param, double lo, double hi,
                      int64_t *out);
/* true or false, as 1 or 0. */
int openai_bool_of(openai_parse *p, const cJSON *it, const char *param, int *out);
/* max_tokens, sampling (with llama-server's defaults), seed, stop, user (session id), n, stream
 * and stream_options into p->r and *out. */
int openai_take_settings(openai_parse *p, const cJSON *root, openai_request *out);

#endif
