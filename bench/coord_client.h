/* A bare client link for the coordinator bench: one blocking CURVE DEALER on the coordinator's
 * client endpoint, configured by transport_setup_client_socket exactly as libedgefleet's, that
 * sends Request envelopes and receives replies. Bare on purpose: the bench times the
 * coordinator, not the client library. One thread. */
#ifndef EF_BENCH_COORD_CLIENT_H
#define EF_BENCH_COORD_CLIENT_H

#include "codec.h"
#include "keys.h"

#include <stdint.h>

typedef struct coord_client coord_client;

/* Connect to endpoint (server_pub: the coordinator's Z85 key). NULL on failure. */
coord_client *coord_client_new(const char *endpoint, const keys_pair *keys, const char *server_pub);
void coord_client_destroy(coord_client **c_p);

/* Send a one-token greedy request; its id is (run tag, seq). Returns 0 or EF_EZMQ/codec errors. */
int coord_client_send(coord_client *c, const char *model, uint64_t seq);

/* Receive one reply, waiting up to timeout_ms. Returns 0 with *out set (codec_free it) and
 * *seq the request's seq, or EF_ETIMEDOUT / EF_EPROTO. */
int coord_client_recv(coord_client *c, int timeout_ms, envelope **out, uint64_t *seq);

#endif
