/* Envelope encode/decode on protobuf-c with a size limit and protocol versioning. Every frame
 * from the network passes through codec_decode before anything else reads it: a truncated,
 * garbage, oversized or wrong-version frame becomes an error code here, never a crash later.
 * Pure functions; thread-safe. */
#ifndef EF_CODEC_H
#define EF_CODEC_H

#include "edgefleet.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Bumped on an incompatible change only; additions ride on proto3's unknown-field skipping. */
#define CODEC_PROTOCOL_VERSION 1u

/* Default largest frame a daemon accepts: 4 MiB holds a long prompt (a 32k-token context is
 * ~130 KB of text) many times over, and bounds what one peer can make us allocate. Model-push
 * chunks are sized to fit under it. */
#define CODEC_MAX_FRAME_DEFAULT (4u * 1024u * 1024u)

/* What one request may carry, checked at the coordinator's front door (before anything is
 * queued) and again by the agent: a prompt (raw text plus every chat message's role and
 * content) of 1 MiB is far beyond any context we serve, and with these bounds a Request always
 * fits in a frame of CODEC_MAX_FRAME_DEFAULT once the coordinator has added its own fields. */
#define CODEC_MAX_PROMPT_BYTES (1u << 20)
#define CODEC_MAX_MESSAGES     256
#define CODEC_MAX_STOP         16
#define CODEC_MAX_STOP_LEN     256

/* Request ids are 128-bit, chosen by the client. */
#define CODEC_REQUEST_ID_LEN 16u

typedef Edgefleet__Envelope envelope;

/* Pack `env` (its version is set here) into a new malloc'd buffer. Returns 0 and sets
 * *out (caller frees) and *len; EF_ETOOBIG if the packed size exceeds max_len (0 = default);
 * EF_ENOMEM. On failure *out is NULL. */
int codec_encode(envelope *env, size_t max_len, uint8_t **out, size_t *len);

/* Unpack and validate one frame. Returns 0 and sets *out (free with codec_free), or:
 * EF_ETOOBIG (len > max_len, checked before any allocation), EF_EPROTO (empty, truncated,
 * garbage, no body, or a request id that is not 16 bytes), EF_EVERSION. On failure *out is NULL. */
int codec_decode(const uint8_t *buf, size_t len, size_t max_len, envelope **out);

/* Free a decoded envelope and set *env_p to NULL. NULL is a no-op. */
void codec_free(envelope **env_p);

/* Short name of the envelope's body ("request", "heartbeat"...) for logs. Never NULL. */
const char *codec_body_name(const envelope *env);

/* Hex of a 16-byte id into out[33]; "-" when the id is empty. Returns out. */
const char *codec_id_hex(ProtobufCBinaryData id, char out[33]);

#endif
