/* A token bucket, as pure logic: at most rate_per_s events a second on average, with bursts of
 * up to `burst` events after a quiet spell. The caller passes the time (ms, monotonic), so a unit
 * test drives it with a fake clock. The coordinator uses it to bound how many CURVE handshakes
 * its ZAP handler admits per second (transport.c). Not thread-safe (one owner). */
#ifndef EF_TOKEN_BUCKET_H
#define EF_TOKEN_BUCKET_H

#include <stdint.h>

typedef struct {
    uint32_t rate_per_s; /* tokens added per second; 0 = unlimited (every take succeeds) */
    uint32_t burst;      /* tokens held at most */
    uint64_t milli;      /* tokens held, in thousandths: integer refill at any rate */
    uint64_t last_ms;    /* when milli was last brought up to date */
} token_bucket;

/* Start full (burst tokens) at now_ms. burst 0 = rate_per_s (one second's worth), at least 1. */
void token_bucket_init(token_bucket *b, uint32_t rate_per_s, uint32_t burst, uint64_t now_ms);
/* Take one token at now_ms: 1 if there was one (the event may go ahead), 0 if not (nothing
 * taken). A clock that steps back adds nothing and takes nothing away. */
int token_bucket_take(token_bucket *b, uint64_t now_ms);
/* ms from now_ms until a token will be there: 0 when one is (or the bucket is unlimited). */
uint32_t token_bucket_wait_ms(token_bucket *b, uint64_t now_ms);

#endif
