/* What the coordinator keeps for each request it admitted (the scheduler's payload): its own copy
 * of the Request (prompt or messages, sampling parameters, seed, stop strings, limits), the
 * client to answer, and the tokens streamed so far, so a later issue can resume the stream on
 * another agent. Loop thread only. */
#include "coord.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A deep copy through the wire form: the copy owns every string and array, and is freed by
 * protobuf-c like any decoded message. */
static Edgefleet__Request *request_clone(const Edgefleet__Request *r)
{
    size_t n = edgefleet__request__get_packed_size(r);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    edgefleet__request__pack(r, buf);
    Edgefleet__Request *copy = edgefleet__request__unpack(NULL, n, buf);
    free(buf);
    return copy;
}

/* Give the request a seed of our own when the client left it to chance: the agent then uses
 * ours, and a stream resumed elsewhere samples the same way. */
static int pin_seed(Edgefleet__Request *r)
{
    if (!r->sampling) {
        r->sampling = malloc(sizeof *r->sampling); /* freed by free_unpacked */
        if (!r->sampling)
            return EF_ENOMEM;
        edgefleet__sampling_params__init(r->sampling);
    }
    while (r->sampling->seed == 0)
        randombytes_buf(&r->sampling->seed, sizeof r->sampling->seed);
    return 0;
}

flight *flight_new(const Edgefleet__Request *request, const uint8_t *client, size_t client_len,
                   uint64_t now_ms)
{
    if (client_len == 0 || client_len > COORD_PEER_MAX)
        return NULL;
    flight *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->request = request_clone(request);
    if (!f->request || pin_seed(f->request) != 0) {
        flight_destroy(&f);
        return NULL;
    }
    memcpy(f->client, client, client_len);
    f->client_len = client_len;
    f->received_ms = now_ms;
    return f;
}

void flight_destroy(flight **f_p)
{
    if (!f_p || !*f_p)
        return;
    flight *f = *f_p;
    if (f->request)
        edgefleet__request__free_unpacked(f->request, NULL);
    free(f->tokens);
    free(f);
    *f_p = NULL;
}

int flight_add_tokens(flight *f, const int32_t *ids, size_t n, size_t text_len)
{
    /* A chunk without ids still carried text: count it as one token so tokens_sent moves. */
    f->tokens_sent += n ? (uint32_t)n : (text_len ? 1u : 0u);
    if (n == 0)
        return 0;
    if (f->n_tokens + n > f->cap_tokens) {
        size_t cap = f->cap_tokens ? f->cap_tokens * 2 : 64;
        while (cap < f->n_tokens + n)
            cap *= 2;
        int32_t *t = realloc(f->tokens, cap * sizeof *t);
        if (!t)
            return EF_ENOMEM;
        f->tokens = t;
        f->cap_tokens = cap;
    }
    memcpy(f->tokens + f->n_tokens, ids, n * sizeof *ids);
    f->n_tokens += n;
    return 0;
}

void flight_fail(coord *c, flight **f_p, int code, uint32_t retry_after_ms, uint32_t tokens_sent,
                 const char *message)
{
    flight *f = *f_p;
    frontend_send_error(c, f->client, f->client_len, &f->request->request_id,
                        f->request->batch_index, code, retry_after_ms, tokens_sent, message);
    flight_destroy(f_p);
}
