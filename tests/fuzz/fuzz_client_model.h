/* fuzz_client_reply's model of the conversation, shared by its two files: fuzz_client_reply.c
 * (the blocking calls and operator commands on a stubbed link, and the input's entry point) and
 * fuzz_client_async.c (the async calls with the loop half stubbed). One input at a time. */
#ifndef EF_FUZZ_CLIENT_MODEL_H
#define EF_FUZZ_CLIENT_MODEL_H

#include "client_internal.h"

#include <stddef.h>
#include <stdint.h>

#define MAX_ITEMS  4
#define MAX_KNOWN  64
#define MAX_TOKENS 4096
#define MAX_RECVS  100000 /* a call that has not ended by then hangs */
#define TIMEOUT_MS 300u   /* request_timeout_ms, virtual: room for busy retries (>= 50 ms) */
#define CONNECT_MS 100u

/* What the harness knows, independently of the library, about one item. */
typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN]; /* its attempt on the wire */
    int live;                         /* replies to id are its own (sent, not held, not ended) */
    int ended;                        /* on_item came (batch), or Done/Error/gap (single) */
    uint32_t expected;                /* the seq its next accepted chunk carries */
    int32_t tokens[MAX_TOKENS];       /* accepted so far, across attempts */
    size_t n_tokens;
    int done_ok; /* single: ended by a Done that is not CANCELLED */
} item_model;

typedef struct {
    const uint8_t *p, *end;
    int mode, n_items, stop_at, callbacks;
    int down;
    size_t recvs;
    uint8_t known[MAX_KNOWN][CODEC_REQUEST_ID_LEN];
    size_t n_known;
    item_model items[MAX_ITEMS];
    int item_calls[MAX_ITEMS];
    /* The chunk being handed to the library, for on_token. */
    const Edgefleet__TokenChunk *delivering;
    int delivering_accepted, delivering_index;
    /* An Error about a live batch item: held (busy) unless on_item ends it. */
    int pending_hold; /* index + 1 */
    /* Async: the call being started (its first Request names it), -1 otherwise; inside a start
     * or cancel; when the library asked the loop to tick; the calls' handles and on_dones. */
    int starting;
    int in_api;
    uint64_t wake_ms;
    ef_call_t *calls[MAX_ITEMS];
    int dones[MAX_ITEMS];
    int batch_n; /* > 0: call 0 is a batch of that many items */
    int batch_items[MAX_ITEMS];
    int finished;            /* client_async_finish ran */
    int destroy_in_callback; /* the stopping token callback destroys the client instead */
    int in_token;            /* inside that destroy: no on_done may run */
    ef_client_t *client;
} fc_state;

extern fc_state g;

/* The next input byte into *out: 1, or 0 at the end of the input. */
int read_u8(uint8_t *out);
/* FC_OP_FRAME's operands and frame: decoded, its id fixed up and modelled; NULL when it does not
 * decode. */
envelope *read_frame(void);
/* The effect of the last delivered frame that shows only once the library handled it. */
void settle(void);
/* Remember an id the library sent, for FC_OP_FRAME's fix-ups. */
void remember(const uint8_t *id);

/* fuzz_client_async.c: FC_MODE_ASYNC on c (destroy: the client is destroyed at the end of the
 * input instead of letting its calls time out). */
void run_async(ef_client_t *c, int destroy);

#endif
