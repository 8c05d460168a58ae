/* The agent's replies to the coordinator (TokenChunk, Done, Error) in the order they were made,
 * encoded. A frame waits here while the link is down, and stays a while after it was sent: the
 * coordinator never acknowledges, so frames sent just before a link died may be lost, and after
 * re-registering the agent sends those again (receivers drop a chunk whose seq they already
 * have). Frames whose request's deadline passed are dropped with a log line instead of sent.
 * Pure logic: time comes in as arguments, sending through a callback. Loop thread only. */
#ifndef EF_AGENT_OUTBOX_H
#define EF_AGENT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

/* Cap on what waits while the coordinator is away: beyond it the oldest frames go first. */
#define OUTBOX_MAX_BYTES (64u << 20)

typedef struct outbox_frame outbox_frame;
typedef struct outbox outbox;

/* Send one frame; 0 = sent, anything else = try again later (stops the flush). */
typedef int (*outbox_send_fn)(const uint8_t *buf, size_t len, void *user);

outbox *outbox_new(void);
void outbox_destroy(outbox **ob_p);

/* Queue a frame (ownership of buf moves here). id: the request's 16-byte id, for logs. */
int outbox_push(outbox *ob, uint8_t **buf, size_t len, uint64_t deadline_unix_ms,
                const uint8_t id[16]);
/* Send unsent frames in order until one fails. Returns how many were sent. */
size_t outbox_flush(outbox *ob, uint64_t now_ms, uint64_t now_unix_ms, outbox_send_fn send,
                    void *user);
/* Take every frame sent at or after since_ms as unsent again (after a reconnect). */
void outbox_rewind(outbox *ob, uint64_t since_ms);
/* Forget sent frames older than now_ms - retain_ms and drop expired unsent ones. */
void outbox_prune(outbox *ob, uint64_t now_ms, uint64_t now_unix_ms, uint64_t retain_ms);
size_t outbox_unsent(const outbox *ob);

#endif
