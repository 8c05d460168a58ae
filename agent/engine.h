/* The inference engine: owns the loaded models (backends) and one inference thread that steps
 * them. Requests come in through a mutex-protected queue (engine_submit, any thread); tokens,
 * Done and Error go out through an event queue that the caller drains (engine_take_events) when
 * its notify callback fires (the agent wires it to uv_async_send). The engine never touches a
 * socket. Chunks of one request that pile up before the caller drains are merged, so a slow
 * reader gets fewer, larger TokenChunks. */
#ifndef EF_AGENT_ENGINE_H
#define EF_AGENT_ENGINE_H

#include "backend.h"
#include "codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on a request, checked in engine_submit before anything is allocated for it. */
/* The wire's limits (codec.h), which the coordinator's front door checks too. */
#define ENGINE_MAX_PROMPT_BYTES CODEC_MAX_PROMPT_BYTES
#define ENGINE_MAX_STOP         CODEC_MAX_STOP
#define ENGINE_MAX_STOP_LEN     CODEC_MAX_STOP_LEN
#define ENGINE_MAX_MESSAGES     CODEC_MAX_MESSAGES
#define ENGINE_MAX_SESSION_LEN  128

typedef struct engine engine;

typedef enum { ENGINE_EV_CHUNK = 0, ENGINE_EV_DONE, ENGINE_EV_ERROR } engine_event_kind;

typedef struct engine_event {
    engine_event_kind kind;
    uint8_t request_id[CODEC_REQUEST_ID_LEN];
    uint32_t attempt; /* the request's Request.attempt: replies carry it (fencing) */
    uint32_t batch_index;
    uint64_t deadline_unix_ms; /* the request's, 0 = none: lets the link drop stale output */
    /* chunk */
    uint32_t seq; /* index of the first token in this chunk */
    char *text;   /* NUL-terminated, valid UTF-8 */
    size_t text_len, text_cap;
    int32_t *tokens;
    size_t n_tokens, tokens_cap; /* the caps: chunks that coalesce grow by doubling */
    /* done */
    int finish; /* EDGEFLEET__FINISH_REASON__* */
    uint32_t prompt_tokens, prompt_evaluated, completion_tokens;
    double queue_ms, prompt_ms, generation_ms, first_token_ms;
    uint64_t seed;
    /* error */
    int code;
    char message[256];
    uint32_t tokens_sent;
    struct engine_event *next;
} engine_event;

typedef struct {
    const backend_params *models; /* copied */
    size_t n_models;
    /* Called on the inference thread after events were queued (may be NULL). */
    void (*notify)(void *user);
    void *notify_user;
    /* No inference thread: the caller steps the engine with engine_pump, so a run is a function
     * of its inputs (unit tests, fuzz targets). Daemons leave it 0. */
    int manual;
} engine_params;

typedef struct {
    char name[128];
    uint32_t busy_slots; /* running or accepted */
    uint32_t total_slots;
} engine_model_load;

typedef struct {
    engine_model_load models[16];
    size_t n_models;
    uint32_t queued;     /* accepted, not yet started by the inference thread */
    double prompt_tps;   /* recent prompt tokens/s */
    double gen_tps;      /* recent generated tokens/s, all slots together */
    double slot_gen_tps; /* recent tokens/s of one sequence (what one request sees) */
} engine_stats;

/* Load every model and start the inference thread. Returns the engine (caller owns; free with
 * engine_destroy), or NULL with *err (EF_ENOENT, EF_EMODEL, EF_EINVAL, EF_ENOMEM) and em naming
 * the model file; nothing is left running on failure. */
engine *engine_new(const engine_params *p, int *err, ef_errmsg *em);
/* Manual engines only (engine_params.manual): do what one turn of the inference thread does
 * (start what was submitted, apply cancels, step every model once) on the caller's thread.
 * Returns 1 while a request is accepted or running, else 0. */
int engine_pump(engine *e);
/* Stop the thread (requests in flight are dropped without events) and free everything.
 * NULL-safe; sets *e_p = NULL. Call from the thread that drains events. */
void engine_destroy(engine **e_p);

/* Accept a request (copied; req need not outlive the call). Thread-safe. Returns 0, or
 * EF_EUNKNOWNMODEL, EF_EINVAL (absurd parameters, a resume token outside the model's
 * vocabulary), EF_ETOOBIG (prompt), EF_EBUSY (no free slot for the model), EF_EDUPLICATE (that
 * id is already in flight), EF_ENOMEM; em says why. A refused request gets no events. Errors
 * found later (EF_ECONTEXT, EF_ETOKENIZE, EF_EINTERNAL when the backend could not decode this
 * request's tokens; other requests are unaffected) come as an ENGINE_EV_ERROR event. An id that
 * runs already under another attempt (the coordinator moved it back here) cancels the running
 * one and is refused with EF_EBUSY until that one is gone; under the same attempt it is
 * EF_EDUPLICATE (a replay, to be ignored). */
int engine_submit(engine *e, const Edgefleet__Request *req, ef_errmsg *em);
/* Cancel a request: its slot is freed at the next step and it ends with Done{CANCELLED}.
 * Unknown ids are ignored. Thread-safe. */
void engine_cancel(engine *e, const uint8_t id[CODEC_REQUEST_ID_LEN]);

/* Take every queued event, oldest first (NULL when none); the caller frees each with
 * engine_event_free. Thread-safe, non-blocking. */
engine_event *engine_take_events(engine *e);
/* Take the oldest event, waiting up to timeout_ms; NULL on timeout. For tests. */
engine_event *engine_wait_event(engine *e, int timeout_ms);
void engine_event_free(engine_event **ev_p);

size_t engine_n_models(const engine *e);
/* Name and description of model i (valid for the engine's life). */
const char *engine_model_name(const engine *e, size_t i);
void engine_model_desc(const engine *e, size_t i, backend_desc *out);
/* Thread-safe snapshot of load, for heartbeats. */
void engine_get_stats(engine *e, engine_stats *out);
/* True when no request is accepted or running and no event waits to be taken: every reply is
 * in the caller's hands. Thread-safe. */
bool engine_idle(engine *e);

#endif
