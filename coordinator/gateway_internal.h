/* The gateway's files' shared state (gateway.h):
 *   gateway.c       open/close, routes, API keys, the completion handlers, the stream table
 *   gateway_out.c   the fleet's replies into HTTP: whole answers, server-sent events, errors
 *   gateway_info.c  GET /v1/models, GET /health, and what no route answers
 *   gateway_metrics.c  GET /metrics (Prometheus)
 * Loop thread only. */
#ifndef EF_COORD_GATEWAY_INTERNAL_H
#define EF_COORD_GATEWAY_INTERNAL_H

#include "coord.h"
#include "http.h"
#include "http_keys.h"
#include "openai.h"

#include <stdbool.h>

/* Routing ids of gateway streams: slot (4 bytes LE) + generation (4 bytes LE). */
#define GW_ID_LEN 8
/* How often HTTP/1 streams are checked for a client that hung up (see gateway.c). */
#define GW_WATCH_MS 250

typedef struct gateway gateway;

/* One HTTP request to a completion endpoint, from admission to its last byte. */
typedef struct gw_stream {
    gateway *g;
    h2o_req_t *req;            /* NULL once h2o let the request go */
    struct gw_stream **anchor; /* on req's pool: tells us when h2o frees the request */
    h2o_generator_t generator; /* streamed responses */
    uint32_t slot, gen;        /* our routing id; slot == UINT32_MAX once detached */
    openai_endpoint ep;
    bool stream, include_usage;
    bool started;    /* streamed: status and headers are out */
    bool sending;    /* streamed: h2o writes `writing`; wait for proceed */
    bool ended;      /* the fleet's last message came (or the client left): nothing more in */
    bool final_sent; /* the response's end is with h2o */
    bool role_sent;  /* chat: the first delta (with the role) went out */
    uint8_t request_id[CODEC_REQUEST_ID_LEN];
    char user_id[REGISTRY_KEY_MAX]; /* "http/NAME" */
    char model[REGISTRY_MODEL_NAME_MAX];
    char id[48]; /* "chatcmpl-…" */
    int64_t created;
    char agents[160]; /* who served it, for the response header */
    char hold[4];     /* the start of a UTF-8 character whose end has not come yet */
    size_t hold_len;
    uint32_t n_tokens;
    char *text; /* whole answers: the text so far */
    size_t text_len, text_cap;
    char *pending; /* streamed: events not handed to h2o yet */
    size_t pending_len, pending_cap;
    char *writing; /* streamed: the events h2o is writing */
    size_t writing_len, writing_cap;
} gw_stream;

struct gateway {
    coord *c;
    http_server *http;
    http_keys *keys; /* NULL: no key asked */
    gw_stream **slots;
    uint32_t *gens;
    uint32_t n_slots, n_active;
    uv_timer_t watch; /* GW_WATCH_MS: HTTP/1 clients that hung up */
    bool watching;
};

/* ---- gateway.c ----------------------------------------------------------------------------- */

/* The stream of a routing id, or NULL (gone, or not one of ours). */
gw_stream *gw_find(gateway *g, const uint8_t *id, size_t len);
/* Take the stream out of the table: no reply reaches it any more. Idempotent. */
void gw_detach(gw_stream *st);
/* The client left: the fleet forgets its request, and the HTTP side ends. */
void gw_abandon(gw_stream *st);

/* ---- gateway_out.c ------------------------------------------------------------------------- */

int gw_out_chunk(gw_stream *st, const Edgefleet__TokenChunk *tc);
void gw_out_done(gw_stream *st, const Edgefleet__Done *d);
void gw_out_error(gw_stream *st, int code, const char *message, uint32_t retry_after_ms);
/* h2o is done with what it was writing. */
void gw_out_proceed(h2o_generator_t *gen, h2o_req_t *req);
/* Hand pending events to h2o when it is not busy (the end too, once ended). */
void gw_out_flush(gw_stream *st);
/* Answer with an OpenAI error object, with Retry-After when retry_after_s > 0 and Allow when
 * allow is not NULL (a 405). */
void gw_reply_error(h2o_req_t *req, const openai_error *e, uint32_t retry_after_s,
                    const char *allow);

/* ---- gateway_info.c ------------------------------------------------------------------------ */

/* Boards that can take work now (registered, not draining, a slot for some model); fills the
 * registered and draining counts when not NULL. */
uint32_t gw_boards_serving(coord *c, uint32_t *registered, uint32_t *draining);
int gw_on_models(void *user, h2o_req_t *req);
int gw_on_health(void *user, h2o_req_t *req);
int gw_on_other(void *user, h2o_req_t *req);

/* ---- gateway_metrics.c --------------------------------------------------------------------- */

int gw_on_metrics(void *user, h2o_req_t *req);
/* The key a request carries is one we know (or none is asked): fills user_id "http/NAME".
 * Else answers 401 and returns EF_EDENIED. */
int gw_auth(gateway *g, h2o_req_t *req, char user_id[REGISTRY_KEY_MAX]);

#endif
