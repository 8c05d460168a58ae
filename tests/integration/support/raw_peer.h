/* A hostile or careless peer for tests: one blocking CURVE DEALER with a key from the fixture,
 * that sends any envelope (or any bytes) we build and reads whatever comes back, with no
 * library logic in between. What libedgefleet and the real agent would never send is exactly
 * what the coordinator must survive. */
#ifndef EF_TEST_RAW_PEER_H
#define EF_TEST_RAW_PEER_H

#include "codec.h"
#include "fleet_fixture.h"

#include <stddef.h>
#include <stdint.h>

typedef struct raw_peer raw_peer;

/* Connect to endpoint with keys/NAME.key; rcvhwm > 0 sets a small receive queue (a slow
 * reader). NULL on failure. */
raw_peer *rp_open(const fleet_fixture *f, const char *endpoint, const char *key_name, int rcvhwm);
/* The same with a routing id of our own choosing (ZMQ_ROUTING_ID), as any DEALER may set. */
raw_peer *rp_open_id(const fleet_fixture *f, const char *endpoint, const char *key_name,
                     const char *routing_id);
void rp_close(raw_peer **p_p);
int rp_send(raw_peer *p, envelope *env);
int rp_send_bytes(raw_peer *p, const void *buf, size_t len);
/* The next envelope within timeout_ms (free with codec_free), or NULL. */
envelope *rp_recv(raw_peer *p, int timeout_ms);
/* The underlying libzmq socket. */
void *rp_zmq(raw_peer *p);

/* A Request for model with id (16 bytes) and prompt; free nothing (all borrowed). */
void rp_request(Edgefleet__Request *r, Edgefleet__SamplingParams *sp, const uint8_t *id,
                const char *model, const char *prompt, uint32_t max_tokens);

#endif
