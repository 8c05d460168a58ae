/* edgefleet client library: the only header a program that talks to an edgefleet fleet includes.
 * Error codes are shared with the daemons and travel on the wire (Error.code), so their values
 * never change once released; new codes are appended. */
#ifndef EDGEFLEET_H
#define EDGEFLEET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version. The build reads it from here (CMakeLists.txt), so the header, the
 * soname and the packages cannot disagree; ef_version() says what was linked. */
#define EF_VERSION_MAJOR 0
#define EF_VERSION_MINOR 1
#define EF_VERSION_PATCH 0

/* EF_API marks the public ABI. The library is built with -fvisibility=hidden and EF_BUILDING
 * defined; where symbols are imported (Windows DLLs) a consumer of the static library defines
 * EF_STATIC, a consumer of the shared one nothing. */
#if defined(_WIN32) || defined(__CYGWIN__)
#if defined(EF_BUILDING)
#define EF_API __declspec(dllexport)
#elif defined(EF_STATIC)
#define EF_API
#else
#define EF_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define EF_API __attribute__((visibility("default")))
#else
#define EF_API
#endif

/* Every function that can fail returns int: 0 on success or one of these negative codes.
 * XX(name, value, message). Values are part of the wire protocol: append, never renumber. */
#define EF_ERR_MAP(XX)                                        \
    XX(EINVAL, -1, "invalid argument")                        \
    XX(ENOMEM, -2, "out of memory")                           \
    XX(EPROTO, -3, "malformed message")                       \
    XX(EVERSION, -4, "protocol version mismatch")             \
    XX(ETOOBIG, -5, "message too large")                      \
    XX(ETIMEDOUT, -6, "timed out")                            \
    XX(EKEY, -7, "bad key file")                              \
    XX(EKEYPERM, -8, "secret key file is readable by others") \
    XX(EEXIST, -9, "file exists")                             \
    XX(ENOENT, -10, "no such file")                           \
    XX(EIO, -11, "input/output error")                        \
    XX(EZMQ, -12, "ZeroMQ error")                             \
    XX(ECRYPTO, -13, "cryptography error")                    \
    XX(EMODEL, -14, "model file could not be loaded")         \
    XX(EUNKNOWNMODEL, -15, "unknown model")                   \
    XX(ECONTEXT, -16, "prompt longer than the context")       \
    XX(EBUSY, -17, "fleet busy")                              \
    XX(ECANCELED, -18, "request cancelled")                   \
    XX(EDEADLINE, -19, "deadline passed")                     \
    XX(EAGENTLOST, -20, "agent lost mid-request")             \
    XX(ENOTCONN, -21, "not connected")                        \
    XX(ECONFIG, -22, "bad configuration")                     \
    XX(EDUPLICATE, -23, "duplicate name")                     \
    XX(EINTERNAL, -24, "internal error")                      \
    XX(EDRAINING, -25, "agent is draining")                   \
    XX(ETOKENIZE, -26, "prompt could not be tokenized")       \
    XX(EDENIED, -27, "not allowed for this key")              \
    XX(EPARTIAL, -28, "some items of the batch failed")       \
    XX(ESTALLED, -29, "the client stopped reading its stream")

typedef enum {
    EF_OK = 0,
#define EF_ERR_ENUM_(name, value, msg) EF_##name = value,
    EF_ERR_MAP(EF_ERR_ENUM_)
#undef EF_ERR_ENUM_
} ef_err;

/* Human-readable message for an error code ("fleet busy"). Never NULL; an unknown code gives
 * "unknown error". The string is static. Thread-safe. */
EF_API const char *ef_strerror(int err);

/* Symbolic name of an error code ("EF_EBUSY"), for logs. Never NULL. Static. Thread-safe. */
EF_API const char *ef_err_name(int err);

/* The linked library's version, "MAJOR.MINOR.PATCH" (compare with the EF_VERSION_* this
 * program was compiled with). Never NULL. Static. Thread-safe. */
EF_API const char *ef_version(void);

/* ---- client ---------------------------------------------------------------------------------
 * A client is one CURVE-authenticated DEALER connection to a coordinator's client endpoint.
 * Every call on a client opened with ef_client_open or ef_client_new is blocking and runs on the
 * caller's thread; a client opened with ef_client_open_async runs on a libuv loop instead (see
 * "asynchronous calls" below for its thread contract).
 * Thread-safety: one client per thread. Different clients may be used from different threads
 * at the same time; one client must not be used from two threads at once, except for
 * ef_client_cancel(), which any thread may call at any time. */

typedef struct ef_client ef_client_t;

typedef struct {
    const char *endpoint;          /* coordinator client endpoint, "tcp://host:7702"; required */
    const char *server_public_key; /* coordinator's Z85 public key (40 chars); NULL = read
                                      server_key_file */
    const char *server_key_file;   /* path of the coordinator's .pub file; NULL = use
                                      server_public_key */
    const char *public_key;        /* this client's Z85 public key; NULL = derive from secret */
    const char *secret_key;        /* this client's Z85 secret key; NULL = read key_file */
    const char *key_file;          /* path of this client's .key file (mode 0600); NULL = use
                                      secret_key */
    uint32_t connect_timeout_ms;   /* ms to wait for the CURVE handshake (in ef_client_open, and
                                      in a call after the link dropped) before failing with
                                      EF_ENOTCONN; 0 = 5000 */
    uint32_t request_timeout_ms;   /* ms one call may take in total before it is cancelled and
                                      fails with EF_ETIMEDOUT; 0 = no limit (rely on deadlines) */
} ef_client_params;

/* Defaults: all strings NULL, both timeouts 0 (see each field). Returns by value. Thread-safe. */
EF_API ef_client_params ef_client_default_params(void);

/* Create a client and connect: load and check the keys, open the CURVE DEALER and wait (up to
 * connect_timeout_ms) for the handshake with the coordinator. Keys are copied; params need not
 * outlive the call. Returns 0 and sets *out (caller owns; free with ef_client_destroy), or an
 * error with *out NULL and nothing left allocated:
 *   EF_EINVAL (no endpoint or no key given, a bad endpoint string), EF_ENOENT / EF_EIO /
 *   EF_EKEY / EF_EKEYPERM (a key file missing, unreadable, not a key, or readable by others),
 *   EF_ENOTCONN (nothing answers at the endpoint, or it does not finish a handshake in time),
 *   EF_ECRYPTO (the CURVE handshake failed: wrong server key, or this key is not allowed),
 *   EF_EDENIED (the coordinator refused this client's key: not in its allowlist),
 *   EF_EPROTO (the peer at the endpoint is not a CURVE ZeroMQ server), EF_EZMQ, EF_ENOMEM.
 * When why is not NULL, it receives (up to why_cap bytes, always NUL-terminated) a one-line
 * reason naming the file or endpoint and what is wrong; "" on success. Thread-safe. */
EF_API int ef_client_open(const ef_client_params *params, ef_client_t **out, char *why,
                          size_t why_cap);

/* As ef_client_open, but returns at once without waiting for the handshake (the connection
 * completes in the background and the first call waits for it up to connect_timeout_ms), and
 * without a reason: NULL when the parameters or key files are bad or libzmq fails. Kept for
 * existing callers; ef_client_open says why. Thread-safe. */
EF_API ef_client_t *ef_client_new(const ef_client_params *params);

/* Close the connection (unsent messages are dropped after a short linger), free the client and
 * set *client_p to NULL. NULL or *client_p == NULL is a no-op. Not thread-safe for that client.
 * An async client: loop thread only; what happens to its calls is said under "asynchronous
 * calls". */
EF_API void ef_client_destroy(ef_client_t **client_p);

/* The last error's one-line explanation on this client ("coordinator refused our key",
 * "fleet busy, retry after 250 ms"); "" when the last call succeeded. Valid until the next call
 * on the client. Never NULL. */
EF_API const char *ef_client_last_error(const ef_client_t *client);

/* Ask the call in progress on client (from any thread, or from a callback) to stop: the
 * coordinator is told to cancel, and the call returns EF_ECANCELED soon after. With no call in
 * progress the next call is not affected. Returns 0, or EF_EINVAL for a NULL client.
 * Thread-safe: this is the one function that may be called while another thread is inside a
 * call on the same client. An async client: EF_EINVAL (use ef_call_cancel). */
EF_API int ef_client_cancel(ef_client_t *client);

/* ---- generation ---------------------------------------------------------------------------- */

typedef struct {
    uint32_t max_tokens;     /* tokens to generate at most; 0 = the agent's default */
    float temperature;       /* 0 = greedy */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* 0 or 1 = off */
    float min_p;             /* 0 = off */
    float repeat_penalty;    /* 0 or 1 = off */
    uint64_t seed;           /* 0 = random (the seed used comes back in ef_result.seed) */
    const char *const *stop; /* stop strings (caller owns, read during the call); NULL = none */
    size_t n_stop;           /* entries in stop */
    const char *session_id;  /* KV-cache affinity across turns; NULL or "" = none */
    uint32_t deadline_ms;    /* ms from the call's start after which the fleet gives up with
                                EF_EDEADLINE (also while queued); 0 = none */
    int log_prompt;          /* nonzero lets the daemons log the prompt text; 0 = never */
} ef_gen_params;

/* Defaults: max_tokens 128, temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * repeat_penalty 1.0, seed 0, no stop strings, no session, no deadline, log_prompt 0.
 * Returns by value. Thread-safe. */
EF_API ef_gen_params ef_gen_default_params(void);

typedef enum {
    EF_FINISH_UNSPECIFIED = 0,
    EF_FINISH_STOP = 1,      /* end-of-generation token or a stop string */
    EF_FINISH_LENGTH = 2,    /* max_tokens reached */
    EF_FINISH_CANCELLED = 3, /* cancelled by the caller */
    EF_FINISH_CONTEXT = 4    /* the context filled up */
} ef_finish;

/* What one request produced. Filled by the library; plain values, nothing to free. */
typedef struct {
    int status;                 /* 0, or the EF_E* code the request ended with */
    ef_finish finish;           /* why generation stopped (status 0 only) */
    uint32_t prompt_tokens;     /* tokens in the prompt */
    uint32_t prompt_evaluated;  /* of those, evaluated now (the rest came from the KV cache) */
    uint32_t completion_tokens; /* tokens generated */
    uint32_t tokens_received;   /* tokens that reached the caller, also after a failure */
    uint32_t retry_after_ms;    /* with EF_EBUSY: when to try again; else 0 */
    uint64_t seed;              /* the seed the agent used (reproduces a sampled answer) */
    double queue_ms;            /* time waiting for a slot on the agent */
    double first_token_ms;      /* from arrival at the agent to the first token */
    double elapsed_ms;          /* the whole call as the client saw it */
    char agent[64];             /* name of the agent that served it; "" if none did */
    char message[160];          /* the fleet's error message, else the library's reason;
                                   "" on success */
    uint32_t resumes;           /* times the stream moved to another agent (its agent was lost)
                                   or was sent again (the coordinator restarted); 0 = none */
    char agents[256];           /* every agent that served a part, in order, comma-separated */
} ef_result;

/* Called with each piece of text as it arrives (len bytes, not NUL-terminated; a piece may end
 * mid-UTF-8-character). Return 0 to go on, nonzero to cancel the request. */
typedef int (*ef_token_fn)(const char *text, size_t len, void *user);

/* Generate from a raw prompt on any agent serving `model`, streaming text to on_token (may be
 * NULL). Blocks until the request ends. Returns 0 when it completed (out->finish says how), or:
 * EF_EINVAL (bad arguments), EF_ENOTCONN (no handshake within connect_timeout_ms), EF_EDENIED (the
 * coordinator refused our key), EF_ECRYPTO (handshake failed), EF_EBUSY (queue full;
 * out->retry_after_ms), EF_EUNKNOWNMODEL, EF_EDEADLINE, EF_EAGENTLOST (out->tokens_received says
 * how much arrived), EF_EPROTO (the reply stream had a gap or an overlap in its chunk sequence;
 * the request was cancelled on the fleet), EF_ECANCELED (callback or ef_client_cancel),
 * EF_ETIMEDOUT, or another code the fleet sent, also in an Error it could tie to no request (a
 * frame it could not decode, e.g. EF_EVERSION), which ends the call at once.
 * ef_client_last_error says why in each case.
 * If it fails before any text arrived, on_token was never called. out (may be NULL) is always
 * filled, also on failure; prompt and params are read during the call only (caller owns).
 * Not thread-safe for one client (see above); the client stays usable after any failure. */
EF_API int ef_client_generate(ef_client_t *client, const char *model, const char *prompt,
                              const ef_gen_params *params, ef_token_fn on_token, void *user,
                              ef_result *out);

typedef struct {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* the message text */
} ef_chat_message;

/* As ef_client_generate, but the agent renders `messages` (n_messages >= 1) with the model's
 * chat template. Same returns, ownership, callbacks and thread-safety. */
EF_API int ef_client_chat(ef_client_t *client, const char *model, const ef_chat_message *messages,
                          size_t n_messages, const ef_gen_params *params, ef_token_fn on_token,
                          void *user, ef_result *out);

/* ---- batches ------------------------------------------------------------------------------- */

typedef struct {
    const char *prompt;          /* raw prompt (caller owns, read during the call) */
    const ef_gen_params *params; /* NULL = ef_gen_default_params() */
} ef_batch_item;

/* Called once per item as it completes, in completion order: index is the item's position in
 * the batch, text its whole output (text_len bytes, NUL-terminated, valid during the call),
 * result its outcome (result->status != 0 for a failed item). Return nonzero to cancel the rest. */
typedef int (*ef_item_fn)(size_t index, const char *text, size_t text_len, const ef_result *result,
                          void *user);

/* What a batch did, filled by ef_client_batch. Plain values. */
typedef struct {
    size_t n_items;    /* items in the batch */
    size_t n_ok;       /* items that completed (result->status 0) */
    size_t n_failed;   /* items that ended with an error (result->status != 0) */
    size_t n_retried;  /* resends of items the fleet refused as busy (one item may count twice) */
    double elapsed_ms; /* the whole call */
} ef_batch_result;

/* Run n_items prompts for `model`; the coordinator shards them across agents in proportion to
 * their capacity. The library paces the batch within the fleet's capacity: it sends at most 1024
 * items per BatchRequest, and items the fleet refuses as busy (EF_EBUSY) are held and sent again
 * (with fresh request ids) no earlier than the retry_after_ms the fleet gave and only as items in
 * flight end, until they run, their deadline (params->deadline_ms, from the call's start) passes
 * (EF_EDEADLINE) or request_timeout_ms is up. Blocks until every item has ended, calling on_item
 * once per item as it ends (never for a busy refusal that is resent).
 * Returns:
 *   0            every item completed;
 *   EF_EPARTIAL  every item ended, some with an error (out->n_failed; each through on_item);
 *   EF_EINVAL, EF_ENOMEM, or a connect failure (EF_ENOTCONN, EF_EDENIED, EF_ECRYPTO, EF_EPROTO,
 *   as ef_client_open) before anything was sent: on_item never called;
 *   a code the coordinator refused a whole BatchRequest with (EF_EINVAL for a bad item, which
 *   the message names; EF_EVERSION, EF_EPROTO...): every item not yet ended is reported through
 *   on_item with that code and message, and ef_client_last_error says why;
 *   EF_ECANCELED (on_item returned nonzero or ef_client_cancel), EF_ETIMEDOUT, or EF_ENOTCONN
 *   (the link dropped): items not yet ended are cancelled on the fleet and not reported.
 * out (may be NULL) is always filled, also on failure. Caller owns items; they are read during
 * the call only. Not thread-safe for one client; the client stays usable after any failure. */
EF_API int ef_client_batch(ef_client_t *client, const char *model, const ef_batch_item *items,
                           size_t n_items, ef_item_fn on_item, void *user, ef_batch_result *out);

/* ---- asynchronous calls on the caller's libuv loop ------------------------------------------
 * For programs that serve many requests at once: one client opened with ef_client_open_async
 * joins the caller's libuv loop (its socket is a uv_poll on it), and any number of generate,
 * chat and batch calls run on it at the same time, each reporting through callbacks.
 * Thread contract (libuv's):
 *  - Every function below, and ef_client_destroy on such a client, must be called on the thread
 *    that runs the loop. Every callback is called on that thread, from inside uv_run (or from
 *    inside ef_client_destroy, see below), never from inside the function that started or
 *    cancelled the call.
 *  - A function that returns an error never calls a callback. Every call it accepted (returned 0)
 *    gets exactly one on_done, however it ends: completed, failed, cancelled (ef_call_cancel, a
 *    token callback returning nonzero), timed out, or its client destroyed.
 *  - Inside a callback any of these functions may be called: start calls, cancel this or another
 *    call, destroy the client. Blocking functions (ef_client_generate...) must not be called on
 *    an async client (EF_EINVAL), nor may uv_run be entered recursively.
 *  - The text and result handed to a callback are valid only until it returns (copy what you
 *    keep). The call handle is valid from its start until its on_done returns, then freed.
 *  - The client behaves like an active libuv handle: while it exists, uv_run(UV_RUN_DEFAULT)
 *    does not return. ef_client_destroy gives every call not yet done its on_done (status
 *    EF_ECANCELED, the coordinator is told to stop them) before it returns, or, called from
 *    inside a callback of that client, as soon as that callback has returned; no callback runs
 *    after that. The client's memory is released by the loop (uv_close), so run the loop once
 *    more (uv_run(loop, UV_RUN_NOWAIT)) before uv_loop_close.
 * This header needs no libuv header: the loop is passed as the opaque struct uv_loop_s *
 * (uv_loop_t * in <uv.h>). */

struct uv_loop_s;

/* One asynchronous generate, chat or batch. Owned by the library. */
typedef struct ef_call ef_call_t;

/* Each piece of text of call as it arrives (len bytes, not NUL-terminated, valid during the
 * callback; a piece may end mid-UTF-8-character). Return 0 to go on, nonzero to cancel the call
 * (its on_done then comes with EF_ECANCELED). */
typedef int (*ef_call_token_fn)(ef_call_t *call, const char *text, size_t len, void *user);

/* call has ended: status is 0 when it completed (result->finish says how) or the EF_E* code it
 * failed with, as the blocking ef_client_generate would have returned it (EF_EBUSY with
 * result->retry_after_ms, EF_EUNKNOWNMODEL, EF_ECANCELED, EF_ETIMEDOUT, EF_ENOTCONN when the
 * link did not come back in time, EF_EDENIED / EF_ECRYPTO when the handshake was refused...);
 * result->message says why. result is valid during the callback; call is freed after it. */
typedef void (*ef_call_done_fn)(ef_call_t *call, int status, const ef_result *result, void *user);

typedef struct {
    ef_call_token_fn on_token; /* NULL = the text is not streamed (on_done still comes) */
    ef_call_done_fn on_done;   /* required */
    void *user;                /* handed to both */
} ef_call_params;

/* Defaults: no callbacks, user NULL (on_done must be set). Returns by value. Thread-safe. */
EF_API ef_call_params ef_call_default_params(void);

/* Make a client on loop (a uv_loop_t *) and start connecting in the background: keys are loaded
 * and checked and the endpoint parsed now; the CURVE handshake completes on the loop, and calls
 * started before it wait for it (up to connect_timeout_ms from their start; then their on_done
 * says why, as ef_client_open would). Keys are copied; params need not outlive the call.
 * request_timeout_ms bounds each call. Returns 0 and sets *out (caller owns; free with
 * ef_client_destroy on the loop thread), or, with *out NULL (what was made is released by the
 * loop's next turn, as after ef_client_destroy), EF_EINVAL (no loop, no endpoint or key, a bad
 * endpoint), EF_ENOENT / EF_EIO / EF_EKEY / EF_EKEYPERM (a key file), EF_EZMQ, EF_ENOMEM; why (may
 * be NULL) gets the reason as with ef_client_open. Loop thread only. */
EF_API int ef_client_open_async(const ef_client_params *params, struct uv_loop_s *loop,
                                ef_client_t **out, char *why, size_t why_cap);

/* Start generating from a raw prompt on any agent serving `model`. model, prompt and params
 * (stop strings and session id included) are copied: they need not outlive this function.
 * Returns 0 when the call was accepted: on_done will come exactly once, and *call_out (may be
 * NULL) is the call's handle until then. Or, with no callback ever: EF_EINVAL (bad arguments, no
 * on_done, a blocking client, or a client being destroyed), EF_ENOMEM. The coordinator link
 * breaking mid-call is handled as in ef_client_generate: the call is sent again with the tokens
 * received (at most 3 times), within its time. Loop thread only. */
EF_API int ef_client_generate_async(ef_client_t *client, const char *model, const char *prompt,
                                    const ef_gen_params *params, const ef_call_params *cb,
                                    ef_call_t **call_out);

/* As ef_client_generate_async, with messages (n_messages >= 1, copied) rendered by the agent
 * with the model's chat template. Same returns and contract. */
EF_API int ef_client_chat_async(ef_client_t *client, const char *model,
                                const ef_chat_message *messages, size_t n_messages,
                                const ef_gen_params *params, const ef_call_params *cb,
                                ef_call_t **call_out);

/* An async batch's item has ended (in completion order; never for a busy refusal that is sent
 * again): index is its position in the batch, text its whole output (text_len bytes,
 * NUL-terminated), result its outcome, all valid during the callback. Return nonzero to cancel
 * the rest (the batch's on_done then comes with EF_ECANCELED). */
typedef int (*ef_call_item_fn)(ef_call_t *call, size_t index, const char *text, size_t text_len,
                               const ef_result *result, void *user);

/* An async batch has ended: status is what ef_client_batch would have returned (0, EF_EPARTIAL,
 * a code the coordinator refused it with, EF_ECANCELED, EF_ETIMEDOUT, EF_ENOTCONN), result its
 * counts (valid during the callback). call is freed after it. */
typedef void (*ef_batch_done_fn)(ef_call_t *call, int status, const ef_batch_result *result,
                                 void *user);

typedef struct {
    ef_call_item_fn on_item;  /* required */
    ef_batch_done_fn on_done; /* required */
    void *user;               /* handed to both */
} ef_batch_params;

/* Defaults: no callbacks, user NULL (both must be set). Returns by value. Thread-safe. */
EF_API ef_batch_params ef_batch_default_params(void);

/* As ef_client_batch on the loop: the same sharding, pacing within the fleet's capacity (busy
 * items held and sent again after their retry_after_ms), deadlines, and re-sends after a
 * coordinator restart; on_item once per item as it ends, then on_done once. items (prompts and
 * params, stop strings and session ids included) and model are copied. Returns 0 when accepted
 * (*call_out, may be NULL, is its handle until on_done returns; ef_call_cancel cancels what has
 * not ended), or, with no callback ever, EF_EINVAL (bad arguments as for ef_client_batch, a
 * missing callback, a blocking client, a client being destroyed) or EF_ENOMEM. Loop thread
 * only. */
EF_API int ef_client_batch_async(ef_client_t *client, const char *model, const ef_batch_item *items,
                                 size_t n_items, const ef_batch_params *cb, ef_call_t **call_out);

/* Cancel call: the coordinator is told to stop it (its slot is freed), no more on_token comes,
 * and its on_done comes with EF_ECANCELED on the loop soon after (not from inside this
 * function). A call that has already ended keeps its outcome. Returns 0, or EF_EINVAL for NULL.
 * call must be valid (its on_done has not returned yet). Loop thread only. */
EF_API int ef_call_cancel(ef_call_t *call);

/* Calls of an async client whose on_done has not been called yet; 0 for a blocking client or
 * NULL. Loop thread only. */
EF_API size_t ef_client_pending(const ef_client_t *client);

/* ---- operations (operator keys only) -------------------------------------------------------- */

typedef struct {
    char model[64];
    uint32_t busy_slots;
    uint32_t total_slots;
} ef_model_load;

typedef struct {
    char name[64];
    char hostname[64];
    double gen_tps;            /* generated tokens/s, recent average over all slots */
    double prompt_tps;         /* prompt tokens/s, recent average */
    int draining;              /* nonzero: takes no new work */
    int simulated;             /* nonzero: a simulated backend, not a real board */
    uint64_t last_seen_ms_ago; /* since its last message */
    uint64_t served;           /* requests completed */
    size_t n_models;
    ef_model_load *models; /* n_models entries, owned by the ef_fleet_status */
} ef_agent_status;

typedef struct {
    char model[64];
    uint32_t queued;   /* requests waiting at the coordinator */
    uint32_t capacity; /* the most that may wait */
} ef_queue_status;

typedef struct {
    size_t n_agents;
    ef_agent_status *agents;
    size_t n_queues;
    ef_queue_status *queues;
} ef_fleet_status;

/* Fetch the fleet's state. Returns 0 and sets *out (caller owns; free with
 * ef_fleet_status_free), or EF_EINVAL, EF_ENOTCONN, EF_ETIMEDOUT, EF_ENOMEM, EF_EDENIED (our key
 * is not an operator's, or not allowed), EF_ECRYPTO (handshake failed), or the code of an Error
 * the coordinator sent with no id; *out is NULL then.
 * Not thread-safe for one client. */
EF_API int ef_client_status(ef_client_t *client, ef_fleet_status **out);

/* Free a status from ef_client_status and set *status_p to NULL. NULL-safe. Thread-safe. */
EF_API void ef_fleet_status_free(ef_fleet_status **status_p);

/* Drain (enable != 0) or undrain agent `agent`: a draining agent gets no new work and finishes
 * what it has. Returns 0, EF_ENOENT (no such agent), EF_EDENIED (not an operator key), EF_EINVAL,
 * EF_ENOTCONN, EF_ETIMEDOUT. Not thread-safe for one client; nothing changes on failure. */
EF_API int ef_client_drain(ef_client_t *client, const char *agent, int enable);

#ifdef __cplusplus
}
#endif

#endif /* EDGEFLEET_H */
