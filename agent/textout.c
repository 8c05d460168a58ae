/* Implementation of textout.h: stop strings and UTF-8 boundaries on the streamed text. */
#include "textout.h"

#include "edgefleet.h"

#include <stdlib.h>
#include <string.h>

void textout_init(textout *t, const char *const *stop, size_t n_stop)
{
    memset(t, 0, sizeof *t);
    t->stop = stop;
    t->n_stop = n_stop;
}

void textout_free(textout *t)
{
    free(t->text);
    free(t->tokens);
    free(t->ends);
    memset(t, 0, sizeof *t);
}

void textout_release_free(textout_release *r)
{
    free(r->text);
    free(r->tokens);
    memset(r, 0, sizeof *r);
}

void textout_release_clear(textout_release *r)
{
    r->len = 0;
    r->n = 0;
    if (r->text)
        r->text[0] = '\0';
}

int textout_push(textout *t, int32_t token, const char *piece, size_t len)
{
    if (t->stopped)
        return 0;
    if (textout_grow((void **)&t->text, &t->cap, t->len + len + 1, 1) != 0)
        return EF_ENOMEM;
    if (t->n == t->n_cap) {
        /* tokens and ends share n_cap: it grows only once both have the new size. */
        size_t cap = t->n_cap ? t->n_cap * 2 : 64;
        int32_t *tokens = realloc(t->tokens, cap * sizeof *tokens);
        if (!tokens)
            return EF_ENOMEM;
        t->tokens = tokens;
        size_t *ends = realloc(t->ends, cap * sizeof *ends);
        if (!ends)
            return EF_ENOMEM;
        t->ends = ends;
        t->n_cap = cap;
    }
    memcpy(t->text + t->len, piece, len);
    t->len += len;
    t->tokens[t->n] = token;
    t->ends[t->n] = t->len;
    t->n++;
    return 0;
}

/* Bytes at the end of s[0..len) that begin a UTF-8 character not yet complete. */
static size_t utf8_incomplete_tail(const char *s, size_t len)
{
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: keep looking for the lead */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Longest suffix of s[0..len) that is a proper prefix of some stop string. */
static size_t stop_prefix_tail(const textout *t)
{
    size_t best = 0;
    for (size_t i = 0; i < t->n_stop; i++) {
        size_t sl = strlen(t->stop[i]);
        if (sl == 0)
            continue;
        for (size_t k = sl - 1 < t->len ? sl - 1 : t->len; k > best; k--) {
            if (memcmp(t->text + t->len - k, t->stop[i], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

/* Earliest occurrence of any stop string in the held text; -1 when none. */
static long find_stop(const textout *t)
{
    long first = -1;
    for (size_t i = 0; i < t->n_stop; i++) {
        size_t sl = strlen(t->stop[i]);
        if (sl == 0 || sl > t->len)
            continue;
        for (size_t at = 0; at + sl <= t->len; at++) {
            if (memcmp(t->text + at, t->stop[i], sl) == 0) {
                if (first < 0 || (long)at < first)
                    first = (long)at;
                break;
            }
        }
    }
    return first;
}

static int release(textout *t, textout_release *r, size_t n_tokens, size_t n_text)
{
    if (textout_grow((void **)&r->text, &r->cap, r->len + n_text + 1, 1) != 0 ||
        textout_grow((void **)&r->tokens, &r->n_cap, r->n + n_tokens + 1, sizeof *r->tokens) != 0)
        return EF_ENOMEM;
    /* Held buffers are NULL until the first push: copy and shift only what exists. */
    if (n_text) {
        memcpy(r->text + r->len, t->text, n_text);
        memmove(t->text, t->text + n_text, t->len - n_text);
    }
    r->len += n_text;
    r->text[r->len] = '\0';
    t->len -= n_text;
    if (n_tokens) {
        memcpy(r->tokens + r->n, t->tokens, n_tokens * sizeof *t->tokens);
        memmove(t->tokens, t->tokens + n_tokens, (t->n - n_tokens) * sizeof *t->tokens);
    }
    r->n += n_tokens;
    for (size_t i = n_tokens; i < t->n; i++)
        t->ends[i - n_tokens] = t->ends[i] - n_text;
    t->n -= n_tokens;
    return 0;
}

int textout_take(textout *t, int final, textout_release *r)
{
    if (t->stopped)
        return 1;
    long at = find_stop(t);
    if (at >= 0) {
        size_t k = 0;
        while (k < t->n && t->ends[k] <= (size_t)at)
            k++;
        int rc = release(t, r, k, (size_t)at);
        t->stopped = 1;
        t->len = 0;
        t->n = 0;
        return rc != 0 ? rc : 1;
    }
    if (final)
        return release(t, r, t->n, t->len);
    size_t hold = stop_prefix_tail(t);
    size_t utf = utf8_incomplete_tail(t->text, t->len);
    if (utf > hold)
        hold = utf;
    size_t safe = t->len - hold;
    size_t k = 0;
    while (k < t->n && t->ends[k] <= safe)
        k++;
    /* Cut only where a token ends on a character boundary: one piece may hold the end of one
     * character and the start of the next (byte-level BPE), so "safe" can lie past a token
     * that ends mid-character. */
    while (k && utf8_incomplete_tail(t->text, t->ends[k - 1]))
        k--;
    return release(t, r, k, k ? t->ends[k - 1] : 0);
}
