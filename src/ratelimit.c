/* Implementation of ratelimit.h: a small array of keys scanned linearly (a few dozen entries:
 * cheaper than hashing for the handful of peers that misbehave at once), and one window counter
 * for the overall cap. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char key[RATELIMIT_KEY_MAX];
    uint64_t logged_ms; /* last line that went out for this key; 0 = slot unused */
    uint32_t held;      /* lines held back since */
} rl_entry;

struct ratelimit {
    uint32_t interval_ms, max_keys, max_lines;
    rl_entry *entries;
    uint64_t window_ms;   /* start of the current overall window */
    uint32_t window_used; /* lines that went out in it */
    uint32_t held_global; /* lines the overall cap held back since the last line out */
};

ratelimit *ratelimit_new(uint32_t interval_ms, uint32_t max_keys, uint32_t max_lines)
{
    ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->interval_ms = interval_ms ? interval_ms : 1000;
    rl->max_keys = max_keys ? max_keys : 64;
    rl->max_lines = max_lines ? max_lines : 10;
    rl->entries = calloc(rl->max_keys, sizeof *rl->entries);
    if (!rl->entries) {
        free(rl);
        return NULL;
    }
    return rl;
}

void ratelimit_destroy(ratelimit **rl_p)
{
    if (!rl_p || !*rl_p)
        return;
    free((*rl_p)->entries);
    free(*rl_p);
    *rl_p = NULL;
}

/* The key's entry, or the least recently logged one taken over for it. */
static rl_entry *entry_for(ratelimit *rl, const char *key)
{
    rl_entry *oldest = &rl->entries[0];
    for (uint32_t i = 0; i < rl->max_keys; i++) {
        rl_entry *e = &rl->entries[i];
        if (e->logged_ms && strncmp(e->key, key, RATELIMIT_KEY_MAX - 1) == 0)
            return e;
        if (e->logged_ms < oldest->logged_ms)
            oldest = e;
    }
    /* A forgotten key's held-back count moves to the overall count: it is still reported. */
    rl->held_global += oldest->held;
    memset(oldest, 0, sizeof *oldest);
    strncpy(oldest->key, key, RATELIMIT_KEY_MAX - 1);
    return oldest;
}

int ratelimit_check(ratelimit *rl, const char *key, uint64_t now_ms, uint32_t *held_back)
{
    if (held_back)
        *held_back = 0;
    if (!rl)
        return 1;
    /* 0 marks an unused slot: a clock that reads 0 is taken as 1. */
    uint64_t now = now_ms ? now_ms : 1;
    rl_entry *e = entry_for(rl, key ? key : "");
    if (e->logged_ms && now - e->logged_ms < rl->interval_ms) {
        e->held++;
        return 0;
    }
    if (now - rl->window_ms >= rl->interval_ms) {
        rl->window_ms = now;
        rl->window_used = 0;
    }
    if (rl->window_used >= rl->max_lines) {
        rl->held_global++; /* a key never logged keeps its slot free (logged_ms 0) */
        return 0;
    }
    rl->window_used++;
    if (held_back)
        *held_back = e->held + rl->held_global;
    e->held = 0;
    rl->held_global = 0;
    e->logged_ms = now;
    return 1;
}
