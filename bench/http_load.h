/* A small HTTP/1.1 client for the gateway benches, on plain sockets: a response parser (status
 * line, headers, Content-Length or chunked bodies, server-sent events as the body arrives), one
 * blocking request on a keep-alive connection, and a load generator keeping K keep-alive
 * connections busy from one thread with epoll. A bench harness, not product code: it speaks
 * what h2o and llama-server send (no 1xx, no trailers beyond the empty one) and calls anything
 * else a protocol error, which the bench counts. */
#ifndef EF_BENCH_HTTP_LOAD_H
#define EF_BENCH_HTTP_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hl_conn hl_conn;

/* Called for each server-sent event's data (without "data: "), "[DONE]" included. */
typedef void (*hl_event_fn)(hl_conn *c, const char *data, size_t len, void *user);

struct hl_conn {
    int fd;
    /* raw bytes read and not yet parsed */
    char *in;
    size_t in_len, in_cap;
    int phase;   /* parser state, http_load.c */
    size_t want; /* body bytes left (Content-Length) or in this chunk */
    /* the response being read */
    int status;
    bool chunked, close;
    char *body; /* decoded body, NUL-terminated */
    size_t body_len, body_cap, sse_scan;
    uint32_t n_events;    /* data events other than [DONE] */
    bool done_event;      /* "data: [DONE]" seen */
    uint64_t t_first_ns;  /* clock_mono_ns of the first data event other than [DONE] */
    hl_event_fn on_event; /* may be NULL */
    void *user;
    /* the load generator's bookkeeping */
    uint64_t t_sent_ns;
    bool finished;
};

/* Connect to host:port (numeric IPv4) with TCP_NODELAY. Returns 0 with c ready, or -1. */
int hl_open(hl_conn *c, const char *host, int port);
void hl_close(hl_conn *c);
/* Forget the last response (keep the connection and any bytes already read past it). */
void hl_reset(hl_conn *c);

/* Parse what is in c->in. Returns 1 when a whole response is in (c->status, c->body...),
 * 0 when more bytes are needed, -1 on a protocol error. */
int hl_parse(hl_conn *c);

/* One read of what the socket has, then hl_parse: 1 a whole response, 0 more needed, -1 the
 * connection closed or failed or a protocol error. Blocks when nothing is there to read. */
int hl_read(hl_conn *c);

/* Send req (a whole HTTP request) and read its response, blocking up to timeout_ms. Returns 0
 * with the response in c, or -1 (connection lost, timeout, protocol error). */
int hl_request(hl_conn *c, const char *req, size_t len, int timeout_ms);

/* "POST path HTTP/1.1" with Host, Content-Type: application/json and Content-Length, in a new
 * string (caller frees), *len its length. */
char *hl_post(const char *host, int port, const char *path, const char *json, size_t *len);

/* Checks a whole response; returns true when it counts as a completion. */
typedef bool (*hl_check_fn)(hl_conn *c, void *user);

typedef struct {
    const char *host;
    int port;
    const char *req; /* the same request on every connection, again and again */
    size_t req_len;
    int conns;
    double seconds;
    hl_check_fn check;
    hl_event_fn on_event;
    void *user;
} hl_load_params;

typedef struct {
    uint64_t ok;       /* completions checked good that ended before the deadline */
    uint64_t bad;      /* 200 responses the check refused */
    uint64_t http_err; /* other statuses */
    uint64_t broken;   /* protocol errors and lost connections (each reconnected) */
    int last_err_status;
    double seconds; /* the measured window */
} hl_load_result;

/* Keep p->conns connections each sending p->req as soon as its previous answer is in, for
 * p->seconds; answers still open at the deadline are read and not counted. Returns 0, or -1
 * when the connections could not be opened. */
int hl_load_run(const hl_load_params *p, hl_load_result *out);

#endif
