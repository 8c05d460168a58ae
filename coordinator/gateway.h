/* The OpenAI-compatible HTTP gateway of the coordinator (--http): POST /v1/completions and
 * /v1/chat/completions (whole or streamed as server-sent events), GET /v1/models and GET
 * /health, on http.c's listener. A request enters the fleet through the same front door and
 * request.c path as libedgefleet's (frontend_check, request_submit), as a client whose way
 * back is this gateway: delivery.c hands each reply to gateway_deliver, which turns it into
 * HTTP. Each HTTP request is a "stream" named by a routing id of our own (slot + generation),
 * so a reply for a stream that is gone finds nothing instead of freed memory. Loop thread. */
#ifndef EF_COORD_GATEWAY_H
#define EF_COORD_GATEWAY_H

#include "codec.h"
#include "errors.h"

#include <stddef.h>
#include <stdint.h>

typedef struct coord coord;
typedef struct gateway gateway;

/* Defaults of --http-max-streams and of what one stream may hold unsent. */
#define GATEWAY_STREAMS_DEFAULT 256u
/* SSE bytes a stream keeps while the client is slow: past it the fleet's delivery backlog and
 * its stall timer take over (--client-stall-ms), as for a slow libedgefleet client. */
#define GATEWAY_STREAM_BUFFER (16u * 1024u)
/* The socket send buffer of an HTTP/1 connection once it streams (the kernel doubles it): a
 * client that stops reading then holds a small, known amount in our kernel instead of what
 * TCP autotuning would give it (megabytes), so the stall timer sees it. Token events are
 * small; 32 KiB in flight is ~130 events per round trip. Whole answers keep autotuning. */
#define GATEWAY_STREAM_SNDBUF (16 * 1024)
/* Text a whole (non-streamed) answer may reach; a longer one fails (use "stream": true). */
#define GATEWAY_ANSWER_MAX (4u << 20)

/* Start the gateway when --http was given (else do nothing and return 0). Returns 0, or an
 * EF_E* code with em filled (EF_ECONFIG: the caller exits 2). */
int gateway_open(coord *c, ef_errmsg *em);
/* Stop accepting; streams still open get their end (request_flush answers them first). */
void gateway_shutdown(coord *c);
/* Free everything. Returns 0, or 1 when h2o state had to be left in place (connections still
 * open): the loop then has handles that never close, and must not be run to its end. */
int gateway_close(coord *c);
/* Connections still open (shutdown waits a moment for them). */
uint32_t gateway_conns(const coord *c);

/* A reply for the stream named `id` (delivery.c). Returns 0 (taken), EF_EBUSY (its client is
 * slow: keep it and offer it again), EF_ENOTCONN (the stream is gone). NULL gateway: gone. */
int gateway_deliver(gateway *g, const uint8_t *id, size_t id_len, const envelope *env);
/* The same for a packed envelope (a backlog's last message). */
int gateway_deliver_packed(gateway *g, const uint8_t *id, size_t id_len, const uint8_t *buf,
                           size_t len);

#endif
