/* bench_gateway --llm: S concurrent streamed POST /v1/completions (4 by default) to two
 * OpenAI-style servers in turn, the gateway in front of a real edgefleet-agent and llama-server
 * on the same model file, the same prompts (new ones each round, the same on both sides within
 * a round, so neither can answer from a cached prefix of the previous round), greedy, the same
 * max_tokens; rounds alternate which goes first. Aggregate tokens/s = completion tokens of the
 * S streams / (sending -> the last stream's [DONE]). bench/run_gateway_bench.sh starts both
 * servers. Also: answer readers shared with bench_gateway.c (bench_gateway.h). */
#include "bench_gateway.h"
#include "bench_util.h"
#include "http_load.h"

#include "clock.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_STREAMS 16
#define MAX_ROUNDS  64

/* ---- answers -------------------------------------------------------------------------------- */

const char *gw_loadavg(void)
{
    static char buf[64];
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || !fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    if (f)
        fclose(f);
    char *p = buf;
    for (int fields = 0; *p && fields < 3; p++) /* keep the three averages */
        fields += *p == ' ';
    if (p > buf && p[-1] == ' ')
        p[-1] = '\0';
    return buf;
}

void gw_answer_free(gw_answer *a)
{
    free(a->text);
    a->text = NULL;
}

/* One completion object (whole, or a chunk): its text, finish_reason and usage into *a. */
static int take_object(const char *json, size_t len, gw_answer *a)
{
    cJSON *j = cJSON_ParseWithLength(json, len);
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    if (!cJSON_IsArray(choices) || cJSON_HasObjectItem(j, "error")) {
        cJSON_Delete(j);
        return -1;
    }
    if (cJSON_IsNumber(ct))
        a->usage_tokens = ct->valueint;
    cJSON *c0 = cJSON_GetArrayItem(choices, 0); /* an include_usage chunk has none */
    cJSON *text = cJSON_GetObjectItemCaseSensitive(c0, "text");
    cJSON *finish = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    int rc = c0 && !cJSON_IsString(text) ? -1 : 0;
    if (cJSON_IsString(finish))
        snprintf(a->finish, sizeof a->finish, "%s", finish->valuestring);
    size_t n = cJSON_IsString(text) ? strlen(text->valuestring) : 0;
    char *grown = n ? realloc(a->text, a->text_len + n + 1) : a->text;
    if (n && grown) {
        memcpy(grown + a->text_len, text->valuestring, n + 1);
        a->text = grown;
        a->text_len += n;
        a->n_text_events++;
    } else if (n)
        rc = -1;
    cJSON_Delete(j);
    return rc;
}

int gw_answer_json(const char *body, gw_answer *a)
{
    memset(a, 0, sizeof *a);
    a->usage_tokens = -1;
    return body && take_object(body, strlen(body), a) == 0 ? 0 : -1;
}

int gw_answer_sse(const char *body, gw_answer *a)
{
    memset(a, 0, sizeof *a);
    a->usage_tokens = -1;
    for (const char *p = body; p && *p;) {
        const char *end = strstr(p, "\n\n");
        if (!end || a->done)
            return -1; /* an unfinished event, or anything after [DONE] */
        if (strncmp(p, "data: ", 6) != 0) {
            a->bad_events++;
        } else if (end - p == 12 && !strncmp(p + 6, "[DONE]", 6)) {
            a->done = true;
        } else if (take_object(p + 6, (size_t)(end - p - 6), a) != 0)
            a->bad_events++;
        p = end + 2;
    }
    return a->done && !a->bad_events ? 0 : -1;
}

/* ---- the streams ---------------------------------------------------------------------------- */

typedef struct {
    const char *name, *host, *model;
    int port;
} llm_side;

typedef struct {
    llm_side side[2]; /* 0: the gateway, 1: llama-server */
    const char *label, *summary;
    int streams, max_tokens, rounds;
} llm_opts;

typedef struct {
    double tps[MAX_ROUNDS], ttft_ms[MAX_ROUNDS]; /* per round that completed */
    int n;
    long tokens;
    int failed;
    char *text[MAX_ROUNDS][MAX_STREAMS];
} llm_series;

/* Openings that differ from their first word, one per round and stream, before a story start
 * (stories260K knows only children's stories; the synthetic model's text is noise anyway). */
static const char *const OPENERS[] = {
    "Amber",  "Basil",  "Cedar", "Delta",  "Ember",  "Fable", "Garnet", "Harbor", "Indigo",
    "Jasper", "Kettle", "Lemon", "Maple",  "Nutmeg", "Olive", "Pepper", "Quartz", "Raven",
    "Sable",  "Tulip",  "Umber", "Violet", "Willow", "Xenon", "Yarrow", "Zephyr"};
static const char *const STORIES[] = {
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with",
    "One day, a big brown dog found a red ball under the tree. He wanted to show it to",
    "Tom and Sue went to the beach with their mom. The sun was hot and the water was",
    "There was a small bird who lived in a tall tree near the river. Every morning the bird"};

static char *prompt_body(const llm_opts *o, const char *model, int round, int s)
{
    size_t n_open = sizeof OPENERS / sizeof OPENERS[0];
    const char *open = OPENERS[(size_t)(round * o->streams + s) % n_open];
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\":\"%s\",\"prompt\":\"%s %d. %s\",\"max_tokens\":%d,\"temperature\":0,"
             "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             model, open, round, STORIES[s % 4], o->max_tokens);
    return strdup(json);
}

static int fail(const llm_side *sd, int s, const char *what, const hl_conn *c)
{
    fprintf(stderr, "bench: %s stream %d: %s (%s; status %d, %zu body bytes: %.200s)\n", sd->name,
            s, what, strerror(errno), c->status, c->body_len, c->body ? c->body : "");
    return -1;
}

/* One round on one side: the S requests at once, read until every answer is in. A warm-up
 * round (ser NULL) is not counted. */
static int run_round(const llm_opts *o, int which, int round, llm_series *ser)
{
    const llm_side *sd = &o->side[which];
    hl_conn c[MAX_STREAMS];
    int rc = 0, open = 0;
    memset(c, 0, sizeof c);
    for (int s = 0; s < o->streams; s++)
        c[s].fd = -1;
    for (int s = 0; rc == 0 && s < o->streams; s++)
        if ((rc = hl_open(&c[s], sd->host, sd->port)) != 0)
            fail(sd, s, "cannot connect", &c[s]);
    uint64_t t0 = clock_mono_ns(), t_end[MAX_STREAMS] = {0};
    for (int s = 0; rc == 0 && s < o->streams; s++) {
        char *body = prompt_body(o, sd->model, round, s);
        size_t len;
        char *req = body ? hl_post(sd->host, sd->port, "/v1/completions", body, &len) : NULL;
        rc = req && send(c[s].fd, req, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
        if (rc)
            fail(sd, s, "cannot send", &c[s]);
        free(body), free(req);
        open++;
    }
    while (rc == 0 && open > 0) {
        struct pollfd pf[MAX_STREAMS];
        for (int s = 0; s < o->streams; s++)
            pf[s] = (struct pollfd){.fd = t_end[s] ? -1 : c[s].fd, .events = POLLIN};
        if (poll(pf, (nfds_t)o->streams, 120000) <= 0) /* a hang, reported as a failed round */
            rc = fail(sd, -1, "two minutes without a byte on any stream", &c[0]);
        for (int s = 0; rc == 0 && s < o->streams; s++) {
            if (!(pf[s].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int r = hl_read(&c[s]);
            if (r < 0)
                rc = fail(sd, s, "connection closed or answer malformed", &c[s]);
            else if (r == 1)
                t_end[s] = clock_mono_ns(), open--;
        }
    }
    long tokens = 0;
    uint64_t last = t0;
    double ttft[MAX_STREAMS];
    for (int s = 0; rc == 0 && s < o->streams; s++) {
        gw_answer a;
        if (c[s].status != 200 || gw_answer_sse(c[s].body, &a) != 0 || !c[s].t_first_ns) {
            fprintf(stderr, "bench: %s stream %d: status %d, not a complete stream: %.300s\n",
                    sd->name, s, c[s].status, c[s].body ? c[s].body : "");
            rc = -1;
            gw_answer_free(&a);
            break;
        }
        tokens += a.usage_tokens >= 0 ? a.usage_tokens : a.n_text_events;
        ttft[s] = (double)(c[s].t_first_ns - t0) / 1e6;
        last = t_end[s] > last ? t_end[s] : last;
        if (ser)
            ser->text[round][s] = a.text ? a.text : strdup("");
        else
            gw_answer_free(&a);
    }
    for (int s = 0; s < o->streams; s++)
        hl_close(&c[s]);
    if (rc != 0 || !ser) {
        if (ser)
            ser->failed++;
        return rc;
    }
    ser->tokens += tokens;
    ser->tps[ser->n] = (double)tokens / ((double)(last - t0) / 1e9);
    ser->ttft_ms[ser->n++] = bench_median(ttft, (size_t)o->streams);
    return 0;
}

/* ---- options, rounds, report ---------------------------------------------------------------- */

static int parse_hostport(const char *v, llm_side *sd)
{
    static char hosts[2][64];
    int i = sd->name[0] == 'g' ? 0 : 1;
    const char *colon = strrchr(v, ':');
    if (!colon || colon - v >= 63)
        return -1;
    memcpy(hosts[i], v, (size_t)(colon - v));
    hosts[i][colon - v] = '\0';
    sd->host = hosts[i];
    sd->port = atoi(colon + 1);
    return sd->port > 0 ? 0 : -1;
}

static int parse_llm(int argc, char **argv, llm_opts *o)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        int rc = 0;
        if (!strcmp(a, "--gateway"))
            rc = parse_hostport(v, &o->side[0]);
        else if (!strcmp(a, "--server"))
            rc = parse_hostport(v, &o->side[1]);
        else if (!strcmp(a, "--model"))
            o->side[0].model = v;
        else if (!strcmp(a, "--server-model"))
            o->side[1].model = v;
        else if (!strcmp(a, "--streams"))
            o->streams = atoi(v);
        else if (!strcmp(a, "--max-tokens"))
            o->max_tokens = atoi(v);
        else if (!strcmp(a, "--rounds"))
            o->rounds = atoi(v);
        else if (!strcmp(a, "--label"))
            o->label = v;
        else if (!strcmp(a, "--summary"))
            o->summary = v;
        else
            rc = -1;
        if (rc != 0)
            return -1;
    }
    if (!o->side[1].model)
        o->side[1].model = o->side[0].model;
    return argc % 2 == 1 && o->side[0].host && o->side[1].host && o->side[0].model &&
                   o->streams > 0 && o->streams <= MAX_STREAMS && o->max_tokens > 0 &&
                   o->rounds > 0 && o->rounds <= MAX_ROUNDS
               ? 0
               : -1;
}

static void llm_report(const llm_opts *o, llm_series ser[2])
{
    double tps[2], ttft[2];
    for (int w = 0; w < 2; w++) {
        tps[w] = bench_median(ser[w].tps, (size_t)ser[w].n);
        ttft[w] = bench_median(ser[w].ttft_ms, (size_t)ser[w].n);
    }
    int same = 0, pairs = 0;
    for (int r = 0; r < o->rounds; r++)
        for (int s = 0; s < o->streams; s++)
            if (ser[0].text[r][s] && ser[1].text[r][s])
                pairs++, same += !strcmp(ser[0].text[r][s], ser[1].text[r][s]);
    double ratio = tps[1] > 0 ? tps[0] / tps[1] : 0;
    printf("\n== gateway vs llama-server: %d concurrent streamed /v1/completions, greedy, "
           "max_tokens %d | %s | %d/%d rounds ok | load %s ==\n",
           o->streams, o->max_tokens, o->label ? o->label : "", ser[0].n, ser[1].n, gw_loadavg());
    printf("  %-46s %12s %12s %8s\n", "metric (median of rounds)", "gateway", "llama-server",
           "ratio");
    printf("  %-46s %12.1f %12.1f %8.3f\n", "aggregate tokens/s (send -> last [DONE])", tps[0],
           tps[1], ratio);
    printf("  %-46s %12.1f %12.1f %8.3f\n", "time to first token, median stream (ms)", ttft[0],
           ttft[1], ttft[1] > 0 ? ttft[0] / ttft[1] : 0);
    printf("  %-46s %12ld %12ld\n", "completion tokens, all rounds", ser[0].tokens, ser[1].tokens);
    printf("  same greedy text on both sides: %d/%d streams; failed rounds: gateway %d, "
           "llama-server %d\n",
           same, pairs, ser[0].failed, ser[1].failed);
    FILE *tsv = o->summary ? fopen(o->summary, "a") : NULL;
    if (tsv) {
        fprintf(tsv, "%s\t%d streams tokens/s via gateway\t%.1f\t%.1f llama-server\t%.3f\t-\n",
                o->label ? o->label : "llm", o->streams, tps[0], tps[1], ratio);
        fclose(tsv);
    }
}

int gw_llm_main(int argc, char **argv)
{
    llm_opts o = {.side = {{.name = "gateway"}, {.name = "llama-server"}},
                  .streams = 4,
                  .max_tokens = 128,
                  .rounds = 6};
    if (parse_llm(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: bench_gateway --llm --gateway HOST:PORT --server HOST:PORT --model "
                        "NAME [--server-model NAME] [--streams 4] [--max-tokens 128] [--rounds 6] "
                        "[--label TEXT] [--summary FILE]\n");
        return 2;
    }
    static llm_series ser[2];
    for (int w = 0; w < 2; w++) { /* first requests pay for page faults and thread start-up */
        int rc = run_round(&o, w, o.rounds, NULL);
        bench_progress("warm-up round %s: %s", o.side[w].name, rc ? "FAILED" : "ok");
    }
    for (int r = 0; r < o.rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int w = (r + k) % 2; /* the gateway first in even rounds, llama-server in odd */
            int rc = run_round(&o, w, r, &ser[w]);
            bench_progress("round %d/%d %s: %s", r + 1, o.rounds, o.side[w].name,
                           rc ? "FAILED" : "ok");
            if (rc == 0)
                bench_progress("  %.1f tokens/s, median TTFT %.1f ms", ser[w].tps[ser[w].n - 1],
                               ser[w].ttft_ms[ser[w].n - 1]);
        }
    }
    llm_report(&o, ser);
    for (int w = 0; w < 2; w++)
        for (int r = 0; r < o.rounds; r++)
            for (int s = 0; s < o.streams; s++)
                free(ser[w].text[r][s]);
    return ser[0].n && ser[1].n ? 0 : 1;
}
