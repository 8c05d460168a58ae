/* Log-line rate limiting for what a peer can trigger: at most one line per key (a peer's key id,
 * an endpoint, a ZAP domain) per interval, and at most max_lines lines per interval over all
 * keys, so a peer rotating through keys cannot flood the log either. A held-back line is
 * counted, and the next line that goes out says how many were held back. Pure logic: time is an
 * argument. Not thread-safe (one owner, e.g. a loop thread). */
#ifndef EF_RATELIMIT_H
#define EF_RATELIMIT_H

#include <stdint.h>

/* Longest key that is told apart from others; longer keys are compared on this prefix. */
#define RATELIMIT_KEY_MAX 128

typedef struct ratelimit ratelimit;

/* interval_ms: per key (0 = 1000); max_keys: keys remembered, least recently logged forgotten
 * first (0 = 64); max_lines: lines per interval over all keys (0 = 10). NULL on ENOMEM. */
ratelimit *ratelimit_new(uint32_t interval_ms, uint32_t max_keys, uint32_t max_lines);
/* NULL-safe; sets *rl_p = NULL. */
void ratelimit_destroy(ratelimit **rl_p);

/* May a line about key be logged at now_ms? Returns 1 and sets *held_back (may be NULL) to the
 * lines held back for this key since its last line, plus those held back by the overall cap
 * since the last line that went out; or 0, counting this one as held back. A NULL rl allows
 * everything (held_back 0). */
int ratelimit_check(ratelimit *rl, const char *key, uint64_t now_ms, uint32_t *held_back);

#endif
