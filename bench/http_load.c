/* Implementation of http_load.h. */
#include "http_load.h"

#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { PH_HEAD, PH_LENGTH, PH_CHUNK_SIZE, PH_CHUNK_DATA, PH_CHUNK_END, PH_TRAILER, PH_DONE };

#define HL_HEAD_MAX (64u * 1024u)

int hl_open(hl_conn *c, const char *host, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    if (c->fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

void hl_close(hl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->body);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

void hl_reset(hl_conn *c)
{
    c->phase = PH_HEAD;
    c->want = 0;
    c->status = 0;
    c->chunked = c->close = false;
    c->body_len = c->sse_scan = 0;
    if (c->body)
        c->body[0] = '\0';
    c->n_events = 0;
    c->done_event = false;
    c->t_first_ns = 0;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* Events end with a blank line; lines are "field: value" (only data matters here). */
static void scan_events(hl_conn *c)
{
    for (;;) {
        char *start = c->body + c->sse_scan, *end = strstr(start, "\n\n");
        if (!end)
            return;
        for (char *line = start; line < end;) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            char *le = nl ? nl : end;
            if (le - line >= 5 && !strncmp(line, "data:", 5)) {
                const char *d = line + 5 + (line[5] == ' ');
                size_t n = (size_t)(le - d);
                if (n == 6 && !memcmp(d, "[DONE]", 6))
                    c->done_event = true;
                else {
                    c->n_events++;
                    if (!c->t_first_ns)
                        c->t_first_ns = clock_mono_ns();
                }
                if (c->on_event)
                    c->on_event(c, d, n, c->user);
            }
            line = le + 1;
        }
        c->sse_scan = (size_t)(end + 2 - c->body);
    }
}

static int body_add(hl_conn *c, const char *p, size_t n)
{
    if (grow(&c->body, &c->body_cap, c->body_len + n + 1) != 0)
        return -1;
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    scan_events(c);
    return 0;
}

/* The status line and headers in in[0..n). Returns 0 or -1. */
static int parse_head(hl_conn *c, const char *h, size_t n)
{
    int minor = 0;
    if (sscanf(h, "HTTP/1.%d %d", &minor, &c->status) != 2 || c->status < 200)
        return -1;
    c->close = minor == 0;
    bool have_length = false;
    const char *first_nl = memchr(h, '\n', n);
    for (const char *l = first_nl ? first_nl + 1 : h + n; l < h + n;) {
        const char *e = memchr(l, '\n', (size_t)(h + n - l));
        if (!e)
            e = h + n; /* the last header line: its CRLF went with the blank line */
        if (!strncasecmp(l, "content-length:", 15)) {
            c->want = (size_t)strtoull(l + 15, NULL, 10);
            have_length = true;
        } else if (!strncasecmp(l, "transfer-encoding:", 18))
            c->chunked = strstr(l, "chunked") && strstr(l, "chunked") < e;
        else if (!strncasecmp(l, "connection:", 11)) {
            const char *v = l + 11 + strspn(l + 11, " ");
            c->close = !strncasecmp(v, "close", 5)         ? true
                       : !strncasecmp(v, "keep-alive", 10) ? false
                                                           : c->close;
        }
        l = e + 1;
    }
    if (!c->chunked && !have_length)
        return -1; /* a body up to the close: not what either server sends */
    c->phase = c->chunked ? PH_CHUNK_SIZE : PH_LENGTH;
    return 0;
}

/* One step of the chunked body; returns bytes consumed, 0 when more input is needed, -1. */
static long chunk_step(hl_conn *c, const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    switch (c->phase) {
    case PH_CHUNK_SIZE: {
        if (!nl)
            return n > 64 ? -1 : 0;
        char *e;
        unsigned long long sz = strtoull(p, &e, 16);
        if (e == p)
            return -1;
        c->want = (size_t)sz;
        c->phase = sz ? PH_CHUNK_DATA : PH_TRAILER;
        return nl - p + 1;
    }
    case PH_CHUNK_DATA: {
        size_t take = n < c->want ? n : c->want;
        if (body_add(c, p, take) != 0)
            return -1;
        c->want -= take;
        if (!c->want)
            c->phase = PH_CHUNK_END;
        return (long)take;
    }
    case PH_CHUNK_END:
        if (n < 2)
            return 0;
        c->phase = PH_CHUNK_SIZE;
        return p[0] == '\r' && p[1] == '\n' ? 2 : -1;
    default: /* PH_TRAILER: lines up to an empty one */
        if (!nl)
            return 0;
        if (nl - p <= 1)
            c->phase = PH_DONE;
        return nl - p + 1;
    }
}

int hl_parse(hl_conn *c)
{
    size_t off = 0;
    while (c->phase != PH_DONE && off < c->in_len) {
        const char *p = c->in + off;
        size_t n = c->in_len - off;
        if (c->phase == PH_HEAD) {
            char *end = memmem(p, n, "\r\n\r\n", 4);
            if (!end) {
                if (n > HL_HEAD_MAX)
                    return -1;
                break;
            }
            *end = '\0';
            if (parse_head(c, p, (size_t)(end - p)) != 0)
                return -1;
            off += (size_t)(end - p) + 4;
            if (c->phase == PH_LENGTH && c->want == 0)
                c->phase = PH_DONE;
        } else if (c->phase == PH_LENGTH) {
            size_t take = n < c->want ? n : c->want;
            if (body_add(c, p, take) != 0)
                return -1;
            off += take;
            c->want -= take;
            if (!c->want)
                c->phase = PH_DONE;
        } else {
            long used = chunk_step(c, p, n);
            if (used < 0)
                return -1;
            if (used == 0)
                break;
            off += (size_t)used;
        }
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return c->phase == PH_DONE ? 1 : 0;
}

/* Read what the socket has into c->in and parse it. Returns hl_parse's answer, or -1 when the
 * connection closed or failed. */
int hl_read(hl_conn *c)
{
    if (grow(&c->in, &c->in_cap, c->in_len + 65536) != 0)
        return -1;
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    c->in_len += (size_t)n;
    return hl_parse(c);
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 1000);
            continue;
        }
        if (n <= 0)
            return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

int hl_request(hl_conn *c, const char *req, size_t len, int timeout_ms)
{
    hl_reset(c);
    if (send_all(c->fd, req, len) != 0)
        return -1;
    uint64_t end = clock_mono_ms() + (uint64_t)timeout_ms;
    int rc = hl_parse(c); /* bytes of a previous read may already hold it */
    while (rc == 0) {
        uint64_t now = clock_mono_ms();
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0)
            return -1;
        rc = hl_read(c);
    }
    return rc == 1 ? 0 : -1;
}

char *hl_post(const char *host, int port, const char *path, const char *json, size_t *len)
{
    size_t jl = strlen(json), cap = jl + 256;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int n = snprintf(s, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, host, port, jl, json);
    *len = n > 0 ? (size_t)n : 0;
    return s;
}

/* ---- the load generator -------------------------------------------------------------------- */

typedef struct {
    const hl_load_params *p;
    hl_load_result *out;
    int ep;
    uint64_t deadline_ns;
} load_run;

static int load_send(load_run *lr, hl_conn *c)
{
    hl_reset(c);
    c->on_event = lr->p->on_event;
    c->user = lr->p->user;
    c->t_sent_ns = clock_mono_ns();
    return send_all(c->fd, lr->p->req, lr->p->req_len);
}

/* (Re)connect c and register it with epoll (its index in data.u32). */
static int load_connect(load_run *lr, hl_conn *c, uint32_t i)
{
    hl_close(c);
    if (hl_open(c, lr->p->host, lr->p->port) != 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    return epoll_ctl(lr->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* A whole response on c: count it, then send again or stop. */
static void load_answered(load_run *lr, hl_conn *c, uint32_t i)
{
    bool in_time = clock_mono_ns() <= lr->deadline_ns;
    if (in_time) {
        if (c->status != 200) {
            lr->out->http_err++;
            lr->out->last_err_status = c->status;
        } else if (!lr->p->check || lr->p->check(c, lr->p->user))
            lr->out->ok++;
        else
            lr->out->bad++;
    }
    if (!in_time) {
        c->finished = true;
        return;
    }
    if (c->close && load_connect(lr, c, i) != 0) {
        c->finished = true;
        return;
    }
    if (load_send(lr, c) != 0)
        c->finished = true;
}

static void load_event(load_run *lr, hl_conn *conns, uint32_t i)
{
    hl_conn *c = &conns[i];
    if (c->finished)
        return;
    int rc = hl_read(c); /* one read: the socket blocks, epoll said it has bytes */
    while (rc == 1) {
        load_answered(lr, c, i);
        if (c->finished)
            break;
        rc = c->in_len ? hl_parse(c) : 0; /* bytes read past the last answer */
    }
    if (rc < 0 && !c->finished) { /* lost or garbled: count it, start over on a new one */
        lr->out->broken++;
        if (clock_mono_ns() > lr->deadline_ns || load_connect(lr, c, i) != 0 ||
            load_send(lr, c) != 0)
            c->finished = true;
    }
    if (c->finished && c->fd >= 0)
        epoll_ctl(lr->ep, EPOLL_CTL_DEL, c->fd, NULL);
}

int hl_load_run(const hl_load_params *p, hl_load_result *out)
{
    memset(out, 0, sizeof *out);
    hl_conn *conns = calloc((size_t)p->conns, sizeof *conns);
    load_run lr = {.p = p, .out = out, .ep = epoll_create1(0)};
    int rc = conns && lr.ep >= 0 ? 0 : -1;
    for (int i = 0; i < p->conns && conns; i++)
        conns[i].fd = -1;
    for (int i = 0; rc == 0 && i < p->conns; i++)
        rc = load_connect(&lr, &conns[i], (uint32_t)i);
    uint64_t t0 = clock_mono_ns();
    lr.deadline_ns = t0 + (uint64_t)(p->seconds * 1e9);
    for (int i = 0; rc == 0 && i < p->conns; i++)
        if (load_send(&lr, &conns[i]) != 0)
            conns[i].finished = true;
    /* Run to the deadline, then up to 5 s more for the answers still open. */
    uint64_t hard_end = lr.deadline_ns + 5000000000ull;
    while (rc == 0 && clock_mono_ns() < hard_end) {
        int open = 0;
        for (int i = 0; i < p->conns; i++)
            open += !conns[i].finished;
        if (!open)
            break;
        struct epoll_event evs[64];
        int n = epoll_wait(lr.ep, evs, 64, 100);
        for (int k = 0; k < n; k++)
            load_event(&lr, conns, evs[k].data.u32);
    }
    out->seconds = (double)(lr.deadline_ns - t0) / 1e9;
    for (int i = 0; conns && i < p->conns; i++)
        hl_close(&conns[i]);
    free(conns);
    if (lr.ep >= 0)
        close(lr.ep);
    return rc;
}
