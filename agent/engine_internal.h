/* Private to the engine's files: engine.c (API, queues, the thread), engine_request.c (checking
 * and copying a Request on the caller's thread) and engine_run.c (starting, stepping and
 * finishing requests on the inference thread). Fields say which lock or thread guards them. */
#ifndef EF_AGENT_ENGINE_INTERNAL_H
#define EF_AGENT_ENGINE_INTERNAL_H

#include "engine.h"
#include "textout.h"

#include <pthread.h>

typedef struct ereq {
    /* Set by engine_submit, then read-only. */
    uint8_t id[CODEC_REQUEST_ID_LEN];
    uint32_t attempt; /* Request.attempt, echoed in every event */
    uint32_t batch_index;
    uint64_t deadline_unix_ms;
    size_t model;
    char *prompt; /* raw prompt, or NULL when msgs is set */
    size_t prompt_len;
    backend_chat_msg *msgs; /* strings owned */
    size_t n_msgs;
    backend_sampling sampling;
    uint64_t seed; /* reported in Done */
    uint32_t max_tokens;
    char **stop;
    size_t n_stop;
    char *session;   /* NULL = none */
    int32_t *resume; /* tokens a previous agent already streamed: continue after them */
    size_t n_resume;
    int log_prompt;
    uint64_t t_arrive_ns;
    /* Inference thread only. */
    int slot;
    textout out;
    uint32_t n_prompt, n_eval_done;
    uint32_t n_gen, n_sent;
    uint64_t t_start_ns, t_prompt_ns, t_first_ns;
    /* Its chunk still in the out queue (valid if gen matches); NULL until its first chunk was
     * queued, and that one wakes the loop at once (time to first token). */
    engine_event *pending_chunk;
    uint64_t pending_gen;
    /* Under engine.mu. */
    struct ereq *next;      /* incoming queue */
    struct ereq *live_next; /* every accepted, unfinished request */
} ereq;

typedef struct {
    char *name;
    const backend_ops *ops;
    backend *b;
    backend_desc desc;
    /* Inference thread only. */
    ereq *slot_req[BACKEND_MAX_SLOTS];
    char *slot_session[BACKEND_MAX_SLOTS]; /* session whose KV cache the slot holds */
    uint64_t slot_used_ns[BACKEND_MAX_SLOTS];
    /* Under engine.mu: accepted requests not finished yet (the credits in use). */
    uint32_t reserved;
} emodel;

typedef struct ecancel {
    uint8_t id[CODEC_REQUEST_ID_LEN];
    struct ecancel *next;
} ecancel;

struct engine {
    emodel *models;
    size_t n_models;
    pthread_t thread;
    int thread_started;
    void (*notify)(void *user);
    void *notify_user;

    pthread_mutex_t mu;
    pthread_cond_t wake;     /* inference thread: work arrived */
    pthread_cond_t ev_ready; /* engine_wait_event */
    int stopping;
    ereq *in_head, *in_tail;
    uint32_t n_in;
    ereq *live;
    ecancel *cancels;
    engine_event *ev_head, *ev_tail;
    uint64_t ev_gen; /* bumped each time the queue is taken: stale pending_chunk pointers */
    double prompt_tps, gen_tps, slot_gen_tps;

    /* Inference thread only. */
    uint32_t n_running;
    int events_pushed; /* events queued since the loop was last woken */
    int events_urgent; /* ...of which one must go now: a first chunk, a Done or an Error */
    uint64_t last_notify_ns;
    textout_release rel; /* what one textout_take released; reused, so a token allocates none */
};

/* Chunks after a request's first wake the loop at most this often; between wake-ups they
 * coalesce into one TokenChunk. A small model makes thousands of tokens/s, and a wake-up per
 * token (loop thread, then ZeroMQ's I/O thread) preempts ggml's workers mid-decode on a 2-core
 * board: measured 0.14x llama-bench's tg on stories260K with -t 2. 10 ms is below what a reader
 * or a relay notices; models slower than 100 tokens/s still send every token at once. */
#define ENGINE_NOTIFY_INTERVAL_NS 10000000ull

/* engine_request.c */
int engine_request_check(const engine *e, const Edgefleet__Request *req, size_t *model,
                         ef_errmsg *em);
ereq *engine_request_copy(const Edgefleet__Request *req, size_t model);
void engine_request_free(ereq **r_p);

/* engine.c: the out queue (inference thread) */
/* A new event of this kind about r (id, batch index, deadline filled in); NULL when out of
 * memory. */
engine_event *engine_event_new(const ereq *r, engine_event_kind kind);
/* Append text/tokens to r's pending chunk if still queued, else queue a new chunk. */
int engine_push_chunk(engine *e, ereq *r, const char *text, size_t len, const int32_t *tokens,
                      size_t n);
/* Drop r from the live list, give back its credit and queue its last event `ev` (NULL: none),
 * all under one hold of mu: nobody sees the slot free without its Done/Error queued, which is
 * what engine_idle relies on (inference thread). */
void engine_release(engine *e, ereq *r, engine_event *ev);

/* engine_run.c (inference thread) */
void engine_run_cancels(engine *e, ecancel *list);
void engine_run_start(engine *e, ereq *list);
void engine_run_steps(engine *e);
void engine_run_drop_all(engine *e);

#endif
