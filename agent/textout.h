/* What of a generation's text may be streamed yet. Tokens go in as they are sampled; text comes
 * out only when it cannot turn out to be the start of a stop string and does not end inside a
 * UTF-8 character, so a client never sees part of a stop string and every chunk is valid
 * UTF-8. Pure logic on plain buffers: no clock, no I/O; one request's state, one thread. */
#ifndef EF_AGENT_TEXTOUT_H
#define EF_AGENT_TEXTOUT_H

#include "grow.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *const *stop; /* borrowed; valid for the textout's life */
    size_t n_stop;
    char *text; /* held text, not yet released */
    size_t len, cap;
    int32_t *tokens; /* held tokens; ends[i] = offset in text just past token i's text */
    size_t *ends;
    size_t n, n_cap;
    int stopped; /* a stop string was found: nothing more is released */
} textout;

/* What textout_take released: appended to these buffers, which grow by doubling (caller frees;
 * textout_release_clear empties them for reuse). */
typedef struct {
    char *text;
    size_t len, cap;
    int32_t *tokens;
    size_t n, n_cap;
} textout_release;

void textout_init(textout *t, const char *const *stop, size_t n_stop);
void textout_free(textout *t);

/* Hold one more token and its text. Returns 0 or EF_ENOMEM. Ignored once stopped. */
int textout_push(textout *t, int32_t token, const char *piece, size_t len);

/* Release what is safe into r (appending). With final = 1 (the stream ends for another reason)
 * everything held is released. Returns 1 when a stop string was found: text is released up to
 * it, tokens only those wholly before it, and the rest is dropped; 0 otherwise; EF_ENOMEM. */
int textout_take(textout *t, int final, textout_release *r);

/* Empty r for the next take, keeping its buffers: a caller that takes once per token reuses
 * one release instead of allocating each time. */
void textout_release_clear(textout_release *r);
void textout_release_free(textout_release *r);

/* Buffers grow with the tree's one helper (src/grow.h); the old name stays for the engine. */
#define textout_grow grow_array

#endif
