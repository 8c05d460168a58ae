/* Reconnect delays: exponential backoff with jitter, as pure logic. The caller passes the time
 * and a random number, so a unit test drives it with a fake clock and fixed "randomness".
 * A link that stayed up for stable_ms counts as healthy again and starts from the first delay;
 * one that flaps (connects, then dies at once) keeps backing off. Not thread-safe (one owner). */
#ifndef EF_BACKOFF_H
#define EF_BACKOFF_H

#include <stdint.h>

typedef struct {
    uint32_t initial_ms; /* first delay; 0 = 250 */
    uint32_t max_ms;     /* cap on the delay; 0 = 30000 */
    double factor;       /* growth per failed attempt; 0 = 2.0 */
    double jitter;       /* share of each delay drawn at random, 0..1: delay * (1 - jitter * u),
                            u uniform in [0, 1); 0 = none. 0.5 spreads a fleet over [d/2, d] */
    uint32_t stable_ms;  /* up this long = healthy again; 0 = 10000 */
} backoff_params;

typedef struct {
    backoff_params p;
    uint32_t attempt;      /* failed attempts since healthy */
    uint64_t connected_ms; /* when the link last came up; 0 = not up */
} backoff;

void backoff_init(backoff *b, const backoff_params *p);
/* The link came up (registered) at now_ms. */
void backoff_connected(backoff *b, uint64_t now_ms);
/* The link is down at now_ms: how long to wait before the next attempt. rnd is a uniformly
 * random 32-bit number from the caller. Each call counts one more failed attempt. */
uint32_t backoff_next(backoff *b, uint64_t now_ms, uint32_t rnd);

#endif
