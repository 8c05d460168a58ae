/* libedgefleet's calls: the items of one generate, chat or batch, the reply core that reads the
 * coordinator's replies into them (client_reply.c), and the blocking loop (client_call.c).
 * client_batch.c adds pacing through the hooks; client_async_call.c drives the same core from a
 * libuv loop. A call runs on one thread: the caller's (blocking) or the loop's (async). */
#ifndef EF_CLIENT_CALL_H
#define EF_CLIENT_CALL_H

#include "client_internal.h"

/* One request of a call and what has come back for it. */
typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN]; /* the id of its attempt on the wire (fresh per resend) */
    int sent;                         /* an attempt is on the wire: replies to id are ours */
    int done;
    uint32_t attempts;         /* times sent */
    uint32_t next_seq;         /* the seq the next TokenChunk must carry */
    uint64_t deadline_unix_ms; /* fixed at the call's start; 0 = none */
    ef_result result;
    char *text; /* batch only: the item's whole output so far (NUL-terminated) */
    size_t len, cap;
    int32_t *tokens; /* the token ids received, for a re-send */
    size_t n_tokens, tokens_cap;
    size_t attempt_tokens; /* n_tokens when this attempt was sent */
} call_item;

typedef struct call call;

/* What a batch adds to the loop. NULL hooks: a single request, where busy ends the call. */
typedef struct {
    /* In-flight item it was refused as busy before any token: 1 when it is held for a resend
     * (not ended), 0 to end it with the error. */
    int (*on_busy)(call *k, call_item *it, uint32_t retry_after_ms);
    /* Item it has ended (after it was counted, before on_item). */
    void (*on_end)(call *k, call_item *it);
    /* Send what is due at now; set *wake_ms to when it should run again (UINT64_MAX: after the
     * next reply). 0 or an EF_E* code that ends the call. */
    int (*pump)(call *k, uint64_t now, uint64_t *wake_ms);
    void *state;
} call_hooks;

struct call {
    ef_client_t *c;
    call_item *items;
    size_t n, n_done, n_failed;
    ef_token_fn on_token; /* single requests: stream */
    ef_item_fn on_item;   /* batches: one callback per ended item */
    void *user;
    uint64_t start_ms; /* monotonic */
    int stop;          /* a callback asked to cancel */
    /* Batches: the first CALL_TAG_LEN bytes of every BatchRequest id of this call, so an Error
     * about a refused BatchRequest is known as ours. */
    uint8_t batch_tag[CODEC_REQUEST_ID_LEN];
    uint32_t n_batches;
    call_hooks hooks;
    /* When the coordinator link breaks mid-call (its restart), the call waits for the link and
     * sends its open items again with the tokens they received, so the restart costs the caller
     * nothing. Single requests: the Request on the wire, re-sent as it is. Batches set
     * keep_tokens and let their on_busy hook hold every open item for the pump instead. */
    Edgefleet__Request *resend;
    int keep_tokens;
    uint32_t resends;
    /* Async calls: every id this call puts on the wire carries slot in bytes CALL_SLOT_AT..+3,
     * so the loop finds the call a reply is for at once. */
    int slotted;
    uint32_t slot;
};

/* Where an async call's slot sits in its ids: bytes 0..7 stay random, 12..15 are the item index
 * (call_item_new_id). */
#define CALL_SLOT_AT 8

/* Write slot big-endian into id's bytes CALL_SLOT_AT..CALL_SLOT_AT+3. */
void call_id_put_slot(uint8_t id[CODEC_REQUEST_ID_LEN], uint32_t slot);

/* Times one call is sent again after its coordinator link broke. */
#define CALL_RESENDS_MAX 3

/* Bytes of a batch id that name the call; the rest count its BatchRequests. */
#define CALL_TAG_LEN 12u

/* A fresh id for item index (random, with the index in its last 4 bytes so a reply finds its
 * item without a search). */
void call_item_new_id(call_item *it, size_t index);

/* Fill r from the caller's parameters for item it. Strings are borrowed (protobuf-c wants
 * char *, and packing only reads them). */
void call_request_fill(Edgefleet__Request *r, Edgefleet__SamplingParams *sp, const char *model,
                       const ef_gen_params *p, const call_item *it);

/* End item it with code and message (code 0: completed), as if the fleet had said so. */
void call_item_fail(call *k, call_item *it, int code, const char *message);

/* ---- the reply core (client_reply.c) ---- */

/* The item whose attempt on the wire has this id, or NULL (stale, or not ours). */
call_item *call_find_item(call *k, ProtobufCBinaryData id);
/* Handle one frame from the coordinator: chunks, Done and Errors for this call's items (others
 * are ignored). Returns 0, or the code of an Error that ends the whole call (a BatchRequest of
 * ours refused, or a frame of ours the coordinator could not name), after every open item was
 * ended with it. A callback asking to stop sets k->stop. */
int call_on_reply(call *k, const envelope *env);
/* 1 when a reply with this id is for k: one of its items' attempts, or one of its BatchRequests
 * (an Error refusing it whole). */
int call_owns_id(call *k, ProtobufCBinaryData id);
/* Tell the coordinator to stop every item that is on the wire and has not ended. Best effort. */
void call_cancel_open(call *k);
/* After the coordinator link came back: send the open items again with the tokens they received
 * (a single request: its Request as it is; a batch: each item held for the pump). 0 or a send
 * error. The caller checks CALL_RESENDS_MAX and keep_tokens first. */
int call_send_again(call *k);

/* ---- single requests (generate, chat), blocking and async ---- */

/* One generate or chat: its call, its one item and its Request. Points into itself: set up in
 * place with call_single_init and never moved. */
typedef struct {
    call k;
    call_item it;
    Edgefleet__Request r;
    Edgefleet__SamplingParams sp;
} call_single;

/* Check the arguments every generate and chat takes; zero *out when not NULL. 0 or EF_EINVAL. */
int call_check_args(ef_client_t *c, const char *model, const ef_gen_params *p, ef_result *out);
/* Set s up for client c: a fresh id, the deadline from now, the Request carrying prompt (when not
 * NULL) or messages. Strings and arrays are borrowed: they must outlive the call. */
void call_single_init(call_single *s, ef_client_t *c, const char *model, const ef_gen_params *p,
                      const char *prompt, Edgefleet__ChatMessage **messages, size_t n_messages);
/* Send the first attempt. 0 or a send error. */
int call_single_send(call_single *s);
/* The call's outcome from rc (the code that ended it early, or 0): fills the result's status,
 * elapsed time and, for a failure without one, message (from the client's last error). Returns
 * the status. */
int call_single_outcome(call_single *s, int rc);

/* ---- batches (client_batch.c), blocking and async ---- */

typedef struct batch batch;

/* EF_EINVAL unless model, items (n_items of them, 1..UINT32_MAX, each with a prompt) are given. */
int batch_check(ef_client_t *client, const char *model, const ef_batch_item *items, size_t n_items);
/* Set up k (its n items allocated, k->slotted set if it is async) as a batch of items for model:
 * deadlines from now, a batch tag, pacing, and the hooks call_wait or the loop run. model and
 * items are borrowed for the call. 0 with *out (free with batch_free), or EF_ENOMEM. */
int batch_new(call *k, const char *model, const ef_batch_item *items, batch **out);
/* After every item ended: 0, or EF_EPARTIAL with the first failure in the last error. */
int batch_outcome(call *k);
/* Resends of items the fleet refused as busy. */
size_t batch_retried(const batch *b);
void batch_free(batch **b_p);

/* ---- the blocking loop (client_call.c) ---- */

/* Read replies until every item has ended, the caller cancels, or the call's time is up. Returns
 * 0, or the code that ended the call early (its text in the client's last error). */
int call_wait(call *k);

#endif
