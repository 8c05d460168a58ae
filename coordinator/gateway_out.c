/* The fleet's replies into HTTP (gateway_internal.h). A whole answer collects the text and
 * goes out as one JSON document with the request's Done; a streamed one sends its headers with
 * the first chunk (so a refusal before it still gets its own status: 404, 429...) and then one
 * server-sent event per chunk. h2o writes one buffer at a time and says when it is done
 * (proceed); what comes meanwhile waits in `pending`, bounded by GATEWAY_STREAM_BUFFER, past
 * which the fleet's delivery backlog holds the rest and its stall timer decides. Loop thread. */
#include "gateway_internal.h"

#include "grow.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static openai_meta meta_of(const gw_stream *st)
{
    return (openai_meta){.ep = st->ep, .id = st->id, .created = st->created, .model = st->model};
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (grow_array((void **)buf, cap, *len + n + 1, 1) != 0)
        return EF_ENOMEM;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* One event: "data: JSON\n\n". Takes json (NULL: out of memory, the event is lost). */
static int add_event(gw_stream *st, char *json)
{
    if (!json)
        return EF_ENOMEM;
    int rc = append(&st->pending, &st->pending_len, &st->pending_cap, "data: ", 6);
    if (rc == 0)
        rc = append(&st->pending, &st->pending_len, &st->pending_cap, json, strlen(json));
    if (rc == 0)
        rc = append(&st->pending, &st->pending_len, &st->pending_cap, "\n\n", 2);
    free(json);
    return rc;
}

void gw_reply_error(h2o_req_t *req, const openai_error *e, uint32_t retry_after_s,
                    const char *allow)
{
    char retry[16];
    const char *headers[7];
    size_t n = 0;
    if (retry_after_s) {
        snprintf(retry, sizeof retry, "%u", retry_after_s);
        headers[n++] = "retry-after", headers[n++] = retry;
    }
    if (allow)
        headers[n++] = "allow", headers[n++] = allow;
    if (e->status == 401)
        headers[n++] = "www-authenticate", headers[n++] = "Bearer";
    headers[n] = NULL;
    char *json = openai_error_json(e);
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}";
    http_reply(req, e->status, "application/json", json ? json : oom,
               json ? strlen(json) : sizeof oom - 1, headers);
    free(json);
}

static void start_stream(gw_stream *st)
{
    h2o_req_t *req = st->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    if (st->agents[0])
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-edgefleet-agent"), 0,
                              NULL, st->agents, strlen(st->agents));
    int fd = req->version < 0x200 ? http_fd(req) : -1; /* HTTP/2: one socket for many */
    int sndbuf = GATEWAY_STREAM_SNDBUF;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    h2o_start_response(req, &st->generator);
    st->started = true;
}

void gw_out_flush(gw_stream *st)
{
    if (!st->req || !st->started || st->sending || st->final_sent)
        return;
    if (st->pending_len == 0 && !st->ended)
        return;
    /* Swap the buffers: h2o writes from `writing` until it calls proceed. */
    char *spare = st->writing;
    size_t spare_cap = st->writing_cap;
    st->writing = st->pending;
    st->writing_cap = st->pending_cap;
    st->writing_len = st->pending_len;
    st->pending = spare;
    st->pending_cap = spare_cap;
    st->pending_len = 0;
    h2o_iovec_t iov = h2o_iovec_init(st->writing, st->writing_len);
    h2o_send_state_t state = st->ended ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
    if (st->ended)
        st->final_sent = true;
    else
        st->sending = true;
    h2o_send(st->req, &iov, st->writing_len ? 1 : 0, state);
}

void gw_out_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    gw_stream *st = H2O_STRUCT_FROM_MEMBER(gw_stream, generator, gen);
    st->sending = false;
    st->writing_len = 0;
    gw_out_flush(st);
}

/* The text of a chunk with the held-back start of a character in front, cut after the last
 * complete character (the rest held back again). Returns a malloc'd copy of what can go out
 * and its length in *n, or NULL on ENOMEM. */
static char *complete_text(gw_stream *st, const char *text, size_t len, size_t *n)
{
    char *all = malloc(st->hold_len + len + 1);
    if (!all)
        return NULL;
    memcpy(all, st->hold, st->hold_len);
    memcpy(all + st->hold_len, text, len);
    size_t total = st->hold_len + len;
    *n = openai_utf8_complete(all, total);
    st->hold_len = total - *n;            /* at most 3 by openai_utf8_complete's contract */
    if (st->hold_len > sizeof st->hold) { /* not ours to trust blindly: keep it bounded */
        *n = total;
        st->hold_len = 0;
    }
    memcpy(st->hold, all + *n, st->hold_len);
    return all;
}

/* A whole answer grew past what we keep: it fails, and the fleet forgets it (ENOTCONN). */
static int answer_too_long(gw_stream *st)
{
    openai_error e;
    openai_error_set(&e, 500, "server_error", NULL, "answer_too_long",
                     "the answer passed %u bytes; ask with \"stream\": true for longer ones",
                     GATEWAY_ANSWER_MAX);
    st->ended = st->final_sent = true;
    gw_detach(st);
    gw_reply_error(st->req, &e, 0, NULL);
    return EF_ENOTCONN;
}

int gw_out_chunk(gw_stream *st, const Edgefleet__TokenChunk *tc)
{
    size_t len = tc->text ? strlen(tc->text) : 0;
    if (st->stream && st->pending_len > GATEWAY_STREAM_BUFFER)
        return EF_EBUSY; /* nothing taken: delivery.c keeps it in order */
    if (!st->agents[0] && tc->agent_name)
        snprintf(st->agents, sizeof st->agents, "%s", tc->agent_name);
    if (!st->stream) {
        if (st->text_len + len > GATEWAY_ANSWER_MAX)
            return answer_too_long(st);
        st->n_tokens += (uint32_t)tc->n_token_ids;
        return append(&st->text, &st->text_len, &st->text_cap, tc->text ? tc->text : "", len) == 0
                   ? 0
                   : answer_too_long(st);
    }
    st->n_tokens += (uint32_t)tc->n_token_ids;
    if (!st->started)
        start_stream(st);
    size_t n = 0;
    char *text = complete_text(st, tc->text ? tc->text : "", len, &n);
    if (!text)
        return 0; /* out of memory: this chunk's text is lost, the stream goes on */
    bool first = st->ep == OPENAI_CHAT && !st->role_sent;
    if (n > 0 || first) {
        openai_meta m = meta_of(st);
        add_event(st, openai_chunk_json(&m, text, n, first, NULL, NULL));
        st->role_sent = true;
    }
    free(text);
    gw_out_flush(st);
    return 0;
}

/* Who served the request, for the response header: every agent, in order. */
static void note_agents(gw_stream *st, const Edgefleet__Done *d)
{
    size_t used = 0;
    for (size_t i = 0; i < d->n_agents && used < sizeof st->agents; i++) {
        int w = snprintf(st->agents + used, sizeof st->agents - used, "%s%s", i ? "," : "",
                         d->agents[i] ? d->agents[i] : "");
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used >= sizeof st->agents) /* cut on a name boundary rather than mid-name */
        *(strrchr(st->agents, ',') ? strrchr(st->agents, ',') : st->agents) = '\0';
}

void gw_out_done(gw_stream *st, const Edgefleet__Done *d)
{
    const char *finish = openai_finish_reason(d->finish);
    if (!finish)
        finish = "stop";
    Edgefleet__Usage usage = EDGEFLEET__USAGE__INIT;
    if (d->usage)
        usage = *d->usage;
    /* The tokens this client got: with a resumed stream the last agent counts only its part. */
    usage.completion_tokens = st->n_tokens;
    openai_meta m = meta_of(st);
    st->ended = true;
    gw_detach(st);
    if (!st->stream) {
        if (d->n_agents)
            note_agents(st, d);
        st->final_sent = true;
        char *json =
            openai_response_json(&m, st->text ? st->text : "", st->text_len, finish, &usage);
        const char *headers[] = {"x-edgefleet-agent", st->agents, NULL};
        if (json)
            http_reply(st->req, 200, "application/json", json, strlen(json),
                       st->agents[0] ? headers : NULL);
        else
            gw_out_error(st, EF_ENOMEM, "coordinator out of memory", 0);
        free(json);
        return;
    }
    if (!st->started)
        start_stream(st);
    add_event(st, openai_chunk_json(&m, st->hold, st->hold_len,
                                    st->ep == OPENAI_CHAT && !st->role_sent, finish, NULL));
    st->hold_len = 0;
    if (st->include_usage)
        add_event(st, openai_chunk_json(&m, "", 0, 0, NULL, &usage));
    append(&st->pending, &st->pending_len, &st->pending_cap, "data: [DONE]\n\n", 14);
    gw_out_flush(st);
}

void gw_out_error(gw_stream *st, int code, const char *message, uint32_t retry_after_ms)
{
    openai_error e;
    openai_error_from_fleet(code, message, &e);
    st->ended = true;
    gw_detach(st);
    if (!st->started) {
        st->final_sent = true;
        uint32_t retry_s = retry_after_ms ? (retry_after_ms + 999) / 1000 : 1;
        gw_reply_error(st->req, &e, code == EF_EBUSY ? retry_s : 0, NULL);
        return;
    }
    /* Mid-stream the status is gone: the error is the last event (OpenAI's clients raise it). */
    add_event(st, openai_error_json(&e));
    gw_out_flush(st);
}
