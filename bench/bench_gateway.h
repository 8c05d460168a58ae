/* What bench_gateway.c and gw_llm.c share: reading an OpenAI completion answer (whole JSON or
 * server-sent events) as both the gateway and llama-server send it, and the --llm entry. */
#ifndef EF_BENCH_GATEWAY_H
#define EF_BENCH_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *text; /* choices[0].text of every event, joined (caller frees) */
    size_t text_len;
    int usage_tokens;  /* usage.completion_tokens of the last event that had one, or -1 */
    int n_text_events; /* events with a non-empty text */
    bool done;         /* "data: [DONE]" came last */
    char finish[16];   /* the finish_reason given, "" if none */
    int bad_events;    /* events that were not a completion chunk */
} gw_answer;

/* A streamed /v1/completions body (the decoded SSE) into *a. Returns 0, or -1 when it is not a
 * well-formed stream (bad events, no [DONE], anything after it). */
int gw_answer_sse(const char *body, gw_answer *a);
/* A whole /v1/completions JSON body into *a. Returns 0 or -1. */
int gw_answer_json(const char *body, gw_answer *a);
void gw_answer_free(gw_answer *a);

/* "1.23 1.45 1.60", the load averages, from /proc/loadavg (static buffer). */
const char *gw_loadavg(void);

/* bench_gateway --llm ... (gw_llm.c). */
int gw_llm_main(int argc, char **argv);

#endif
