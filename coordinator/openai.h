/* The OpenAI HTTP API's JSON, both ways, as pure functions (no sockets, no clock of their own):
 * a request body of /v1/completions or /v1/chat/completions becomes a fleet Request, or an
 * OpenAI error object with its HTTP status; the fleet's chunks and ends become the response
 * objects (whole, or one server-sent event each). The HTTP gateway (gateway.c) calls these;
 * tests/fuzz/fuzz_openai.c drives the decoder directly. cJSON underneath. Thread-safe. */
#ifndef EF_COORD_OPENAI_H
#define EF_COORD_OPENAI_H

#include "codec.h"

#include <stddef.h>
#include <stdint.h>

/* Bounds of the decoder (refused above them, naming the field). A body longer than
 * OPENAI_BODY_MAX is 413 whatever the gateway's own limit: a 1 MiB prompt written with JSON
 * escapes fits several times over. max_tokens is bounded so that no client asks for 2^32-1. */
#define OPENAI_BODY_MAX       (8u << 20)
#define OPENAI_MAX_TOKENS_MAX (1u << 20)
/* max_tokens when the body gives none: the fleet needs a number (an agent refuses 0) and the
 * scheduler estimates a request's cost from it. llama-server's default is "until the context
 * is full"; this is as long as any context we serve, and the agent still ends at a full context
 * (finish_reason "length"). */
#define OPENAI_DEFAULT_MAX_TOKENS 4096u

typedef enum {
    OPENAI_COMPLETIONS = 0, /* POST /v1/completions: prompt */
    OPENAI_CHAT = 1         /* POST /v1/chat/completions: messages */
} openai_endpoint;

/* An OpenAI error: {"error":{"message","type","param","code"}} with its HTTP status. */
typedef struct {
    int status;        /* 400, 401, 404, 405, 413, 429, 500, 503 */
    char type[32];     /* "invalid_request_error", "authentication_error", "not_found_error",
                          "rate_limit_error", "server_error", "service_unavailable" */
    char param[48];    /* the offending field ("temperature", "messages[2].role"); "" = null */
    char code[40];     /* "model_not_found", "invalid_api_key"...; "" = null */
    char message[256]; /* for people: what was wrong and where */
} openai_error;

/* A decoded request body. */
typedef struct {
    Edgefleet__Request *request; /* owned (free with openai_request_clear): model, prompt or
                                    messages, sampling, max_tokens, stop, session_id (from
                                    `user`), a fresh random 16-byte request_id */
    int stream;                  /* "stream": true */
    int include_usage;           /* "stream_options": {"include_usage": true} */
} openai_request;

/* Fill *e (status, type, param, code may be NULL for null, printf-style message; a message
 * longer than the field is cut on a character boundary). Returns e->status. */
int openai_error_set(openai_error *e, int status, const char *type, const char *param,
                     const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Decode a JSON body of `len` bytes (not NUL-terminated, may hold anything) for `ep`.
 * Honoured: model (required), prompt (string, or an array of one string; completions), messages
 * (chat: role system/developer/user/assistant, content a string or an array of text parts),
 * max_tokens and max_completion_tokens, temperature, top_p, top_k, min_p, repeat_penalty, seed,
 * stop (string or array), n (1 only), user (the session key: hashed to a fixed-length session
 * id), stream, stream_options.include_usage. Unknown fields are ignored; a known field of the
 * wrong type or out of range is refused, naming it. Returns 0 and fills *out (caller clears),
 * or an EF_E* code (EF_EINVAL bad request, EF_ENOMEM) with *err filled (status 400 for every
 * mistake of the caller's, 500 for ENOMEM) and *out zeroed.
 * In detail: JSON null is the same as an absent field; names are case-sensitive and of two
 * equal names the first counts. Absent sampling fields take llama-server's defaults
 * (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1), absent max_tokens
 * OPENAI_DEFAULT_MAX_TOKENS; max_tokens must be 1..OPENAI_MAX_TOKENS_MAX (the agent refuses 0).
 * Ranges: temperature 0..2, top_p and min_p 0..1, top_k 0..2^31-1, repeat_penalty 0..100.
 * seed: -1 or absent is random (0 on the wire), 0..2^53 is fixed (0 goes out as 2^32+1, which
 * the agent folds to sampler seed 0); integers must be integral JSON numbers. The developer
 * role becomes system; an assistant's null content is ""; text parts are joined without a
 * separator; tool roles, tool_calls and non-text parts are refused. user "" is no session;
 * any other becomes "u-" + 32 hex digits (BLAKE2b-128). A string holding \u0000 or invalid
 * UTF-8 is refused (400), so is any raw NUL byte in the body. A prompt (or every role and
 * content together) over CODEC_MAX_PROMPT_BYTES is 400 with code context_length_exceeded; a
 * body over OPENAI_BODY_MAX is 413 (EF_ETOOBIG), before it is parsed. cJSON cannot tell its
 * ENOMEM from bad syntax: that case answers 400. Thread-safety: cJSON records a parse failure
 * in a global it never reads back for us (a benign race between threads parsing at once). */
int openai_request_parse(openai_endpoint ep, const char *body, size_t len, openai_request *out,
                         openai_error *err);
/* Free what a parse filled. Zeroed or cleared twice is a no-op. */
void openai_request_clear(openai_request *r);

/* What the response objects carry about their request. */
typedef struct {
    openai_endpoint ep;
    const char *id;  /* "cmpl-…" / "chatcmpl-…" (openai_response_id) */
    int64_t created; /* unix seconds */
    const char *model;
} openai_meta;

/* The response id for a request id: prefix ("cmpl-" or "chatcmpl-") + 32 hex digits into out.
 * Returns out. */
const char *openai_response_id(openai_endpoint ep, ProtobufCBinaryData request_id, char out[48]);

/* "stop", "length", or NULL (still running / cancelled) for a FinishReason. FINISH_CONTEXT is
 * "length", as llama-server says it. */
const char *openai_finish_reason(Edgefleet__FinishReason f);

/* The whole (non-streamed) response: text (`len` bytes, any bytes: invalid UTF-8 becomes
 * U+FFFD), finish_reason (NULL = null), usage (NULL = none). Returns a malloc'd NUL-terminated
 * JSON document (caller frees) or NULL on ENOMEM. usage also carries
 * prompt_tokens_details.cached_tokens (prompt tokens served from the session's KV cache). */
char *openai_response_json(const openai_meta *m, const char *text, size_t len,
                           const char *finish_reason, const Edgefleet__Usage *usage);

/* One streamed chunk object (no "data: " framing): a delta of text (`len` bytes, may be 0;
 * with `first` set, a chat delta also carries "role":"assistant"), finish_reason (NULL = null).
 * A chat delta that is not the first and has no text is {} (OpenAI's last chunk); a completions
 * chunk always has "text". No "usage": null in the other chunks (clients do without).
 * With usage != NULL it is the include_usage chunk: "choices": [] and the usage object.
 * Returns a malloc'd JSON document or NULL on ENOMEM. */
char *openai_chunk_json(const openai_meta *m, const char *text, size_t len, int first,
                        const char *finish_reason, const Edgefleet__Usage *usage);

/* {"error":{...}} for e. malloc'd, NULL on ENOMEM. */
char *openai_error_json(const openai_error *e);

/* The OpenAI error for a fleet error code (an Error's code and message): EF_EUNKNOWNMODEL 404
 * (not_found_error, model_not_found), EF_EBUSY 429 (rate_limit_error), EF_EINVAL, EF_ETOOBIG,
 * EF_ECONTEXT (code context_length_exceeded) and EF_ETOKENIZE 400 (invalid_request_error),
 * EF_EDENIED 403 (permission_error), EF_EDEADLINE 408 (timeout_error), EF_EAGENTLOST,
 * EF_ENOTCONN and EF_EDRAINING 503 (service_unavailable), anything else 500 (server_error).
 * The code is the fleet's name in lower case when none above ("ef_estalled"). Fills *e
 * (message = `message`, or ef_strerror(code)). Returns e->status. */
int openai_error_from_fleet(int code, const char *message, openai_error *e);

/* One row of GET /v1/models. */
typedef struct {
    const char *name;    /* the model name requests use */
    uint32_t boards;     /* agents serving it now */
    uint32_t slots;      /* their slots in all */
    uint32_t busy_slots; /* of those, busy */
    uint32_t queued;     /* requests waiting in the coordinator's queue for it */
} openai_model_row;

/* {"object":"list","data":[{"id","object":"model","created","owned_by":"edgefleet","boards",
 * "slots","busy_slots","queued"}...]}. `created` is the same for every row. malloc'd or NULL. */
char *openai_models_json(const openai_model_row *rows, size_t n, int64_t created);

/* 1 if s[0..len) is well-formed UTF-8 (Unicode table 3-7: no overlong forms, surrogates or
 * code points above U+10FFFF) holding no NUL byte, else 0. */
int openai_utf8_valid(const char *s, size_t len);

/* Bytes of s[0..len) that can go out now: len less an incomplete UTF-8 character at the very
 * end (at most 3 bytes held back for the next chunk). */
size_t openai_utf8_complete(const char *s, size_t len);

#endif
