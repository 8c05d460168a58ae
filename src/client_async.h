/* libedgefleet's asynchronous client, in two halves: client_async.c joins a client to the
 * caller's libuv loop (a DEALER tsock from transport.c, a timer) and turns what the loop sees
 * into the events below; client_async_call.c keeps the calls (started, waiting for the link,
 * on the wire, ended) and hands them to the reply core (client_reply.c) the blocking client
 * uses too. The second half touches no loop, only these functions, so tests/fuzz drives it with
 * the loop stubbed. Everything runs on the loop's thread. */
#ifndef EF_CLIENT_ASYNC_H
#define EF_CLIENT_ASYNC_H

#include "client_call.h"
#include "client_internal.h"
#include "errors.h"

#include <stdint.h>

/* ---- one call ---- */

enum { ACALL_WAIT_LINK, ACALL_SENT, ACALL_LINK_LOST, ACALL_ENDED };

struct ef_call {
    call_single s; /* a batch: s.k only (its items allocated); points into itself: never moved */
    ef_client_t *c;
    ef_call_params cb;
    int state;
    int status;             /* ACALL_ENDED: what on_done gets */
    int refused;            /* the code of an Error that ended the whole call, or 0 */
    uint32_t slot;          /* in client_calls.slots, and in the call's ids (CALL_SLOT_AT) */
    uint64_t end_ms;        /* request timeout (monotonic); UINT64_MAX = none */
    uint64_t link_until_ms; /* WAIT_LINK, LINK_LOST: give up waiting for the link then */
    struct ef_call *prev, *next;
    /* The caller's arguments, copied (a call outlives the function that started it). */
    ef_gen_params params;
    char *model, *prompt;
    char **stop;
    Edgefleet__ChatMessage *msgs, **msg_ptrs;
    char *strings; /* one block holding every copied string */
    /* Batches (client_async_batch.c). */
    batch *b;
    ef_batch_params bcb;
    ef_batch_item *items;
    ef_gen_params *item_params;
};

/* client_async_call.c, for client_async_batch.c: a slot for a made call (0 or EF_ENOMEM), then
 * its start (timeouts, the pending list, the link); freeing a call whatever its kind; a
 * batch's pump run now (ends the call on a send error). */
int async_call_slot(struct ef_call *a);
void async_call_start(struct ef_call *a);
void async_call_free(struct ef_call *a);
void async_call_pump(struct ef_call *a);
/* client_async_batch.c: an ended batch's on_done with its ef_batch_result. */
void async_batch_done(struct ef_call *a);

/* ---- the calls (client_async_call.c); the loop half calls these ---- */

/* A frame from the coordinator: to the call it names (an Error with no id: to every call on
 * the wire, as the blocking client ends its call). Callbacks run from here. */
void async_calls_on_frame(ef_client_t *c, const envelope *env);
/* The handshake succeeded (first time, or again after a break): frames still queued on the
 * socket are read first, then calls waiting for the link are sent and calls whose link broke
 * are sent again with the tokens they received. */
void async_calls_link_up(ef_client_t *c);
/* The link broke: calls on the wire wait for it (within their time, or connect_timeout_ms when
 * they have none), or end with EF_ENOTCONN when they were sent again CALL_RESENDS_MAX times. */
void async_calls_link_down(ef_client_t *c);
/* A handshake failed for good (c->link_error): every call waiting for the link ends with it. */
void async_calls_link_refused(ef_client_t *c);
/* Time passed: calls past their request timeout or their wait for the link end; ended calls get
 * their on_done. Returns when it should run again (monotonic ms), UINT64_MAX for never. */
uint64_t async_calls_tick(ef_client_t *c, uint64_t now_ms);
/* ef_client_destroy on an async client: every call not done ends with EF_ECANCELED and gets its
 * on_done, now or (inside a callback) when the callback returns; then client_async_finish. */
void async_calls_destroy(ef_client_t *c);

/* ---- the loop (client_async.c); the calls half calls these ---- */

/* Make sure async_calls_tick runs at at_ms (monotonic; at or before now: on the loop's next
 * iteration, never from inside this function). */
void client_async_wake(ef_client_t *c, uint64_t at_ms);
/* Hand every frame already queued on the socket to async_calls_on_frame. */
void client_async_drain(ef_client_t *c);
/* Send env on the client's socket. 0 or an EF_E* code with the reason in the last error. */
int client_async_send(ef_client_t *c, envelope *env);
/* Make c's loop half: a transport on loop and a DEALER connecting to c->endpoint with keys kp
 * and the server key. 0 or an EF_E* code with em saying why (then client_async_finish frees
 * what was made). */
int client_async_socket(ef_client_t *c, void *loop, const keys_pair *kp, const char *server,
                        ef_errmsg *em);
/* Close the socket and transport and free c once the loop has closed its handles. */
void client_async_finish(ef_client_t *c);

#endif
