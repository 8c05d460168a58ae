/* What the coordinator keeps for each request it admitted (the scheduler's payload): its own copy
 * of the Request (prompt or messages, sampling parameters, seed, stop strings, limits), the
 * client to answer and the key that owns it, and the token ids streamed so far, so a stream can
 * be resumed elsewhere. Loop thread only. */
#include "request.h"

#include "errors.h"
#include "grow.h"

#include <sodium.h>
#include <stdio.h>
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

flight *flight_new(const Edgefleet__Request *request, const coord_client *client, uint64_t now_ms,
                   flight **list)
{
    if (!client || client->routing_id_len == 0 || client->routing_id_len > COORD_PEER_MAX)
        return NULL;
    flight *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->request = request_clone(request);
    if (!f->request || pin_seed(f->request) != 0) {
        flight_destroy(&f);
        return NULL;
    }
    f->seed0 = f->request->sampling->seed;
    /* A client re-sending a call (its coordinator restarted) says what it already has: the
     * stream goes on after those tokens. The front door bounded them. */
    if (f->request->n_received_tokens > 0) {
        if (flight_add_tokens(f, f->request->received_tokens, f->request->n_received_tokens) != 0) {
            flight_destroy(&f);
            return NULL;
        }
        free(f->request->resume_tokens); /* none from a client: refused at the door */
        f->request->resume_tokens = f->request->received_tokens;
        f->request->n_resume_tokens = f->request->n_received_tokens;
        f->request->received_tokens = NULL;
        f->request->n_received_tokens = 0;
        f->attempt_tokens = f->n_tokens;
        /* The call may still run under its old attempt number on an agent that outlived the
         * old coordinator: a number of our own above 2^31 can never be mistaken for it. */
        randombytes_buf(&f->attempt, sizeof f->attempt);
        f->attempt |= 0x80000000u;
        f->request->attempt = f->attempt;
    }
    memcpy(f->client, client->routing_id, client->routing_id_len);
    f->client_len = client->routing_id_len;
    f->via = client->via;
    snprintf(f->client_key, sizeof f->client_key, "%s", client->user_id ? client->user_id : "");
    f->received_ms = now_ms;
    f->list = list;
    f->next = *list;
    if (*list)
        (*list)->prev = f;
    *list = f;
    return f;
}

void flight_destroy(flight **f_p)
{
    if (!f_p || !*f_p)
        return;
    flight *f = *f_p;
    if (f->list) {
        if (f->prev)
            f->prev->next = f->next;
        else
            *f->list = f->next;
        if (f->next)
            f->next->prev = f->prev;
    }
    if (f->request)
        edgefleet__request__free_unpacked(f->request, NULL);
    free(f->tokens);
    free(f);
    *f_p = NULL;
}

uint64_t flight_resume_seed(uint64_t seed0, uint32_t k, uint32_t n)
{
    uint8_t in[16], out[crypto_hash_sha256_BYTES];
    for (int i = 0; i < 8; i++)
        in[i] = (uint8_t)(seed0 >> (8 * i));
    for (int i = 0; i < 4; i++) {
        in[8 + i] = (uint8_t)(k >> (8 * i));
        in[12 + i] = (uint8_t)(n >> (8 * i));
    }
    crypto_hash_sha256(out, in, sizeof in);
    uint64_t seed = 0;
    for (int i = 0; i < 8; i++)
        seed |= (uint64_t)out[i] << (8 * i);
    return seed ? seed : 1;
}

int flight_resume(flight *f)
{
    int32_t *ids = NULL;
    if (f->n_tokens > 0) {
        ids = malloc(f->n_tokens * sizeof *ids); /* freed by free_unpacked with the rest */
        if (!ids)
            return EF_ENOMEM;
        memcpy(ids, f->tokens, f->n_tokens * sizeof *ids);
    }
    free(f->request->resume_tokens);
    f->request->resume_tokens = ids;
    f->request->n_resume_tokens = f->n_tokens;
    f->attempt++;
    f->resumes++;
    f->request->attempt = f->attempt;
    f->attempt_tokens = f->n_tokens;
    f->request->sampling->seed = flight_resume_seed(f->seed0, f->resumes, (uint32_t)f->n_tokens);
    return 0;
}

void flight_served_by(flight *f, const char *name)
{
    if (f->n_agents > 0 && strcmp(f->agents[f->n_agents - 1], name) == 0)
        return;
    if (f->n_agents < FLIGHT_RESUMES_MAX + 1)
        snprintf(f->agents[f->n_agents++], REGISTRY_NAME_MAX, "%s", name);
}

int flight_add_tokens(flight *f, const int32_t *ids, size_t n)
{
    if (n == 0)
        return 0;
    if (grow_array((void **)&f->tokens, &f->cap_tokens, f->n_tokens + n, sizeof *f->tokens) != 0)
        return EF_ENOMEM;
    memcpy(f->tokens + f->n_tokens, ids, n * sizeof *ids);
    f->n_tokens += n;
    return 0;
}
