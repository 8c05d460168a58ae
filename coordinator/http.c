/* Implementation of http.h: h2o's global configuration, one host with a handler per route, a
 * libuv TCP listener whose accepted connections go to h2o (with TLS when configured), and the
 * small helpers every handler needs. h2o does the HTTP: parsing, keep-alive, chunked encoding,
 * HTTP/2, TLS records, the body limit. Loop thread only. */
#include "http.h"

#include "log.h"

#include <h2o/http2.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pending connections the kernel keeps for us while the loop is busy. */
#define HTTP_BACKLOG 128

struct http_server {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl;
    uv_tcp_t *listener; /* freed in its close callback: the server may be gone by then */
    int have_ctx, shut;
    struct conn_count *conns; /* apart from the server: see http_conn */
    uint32_t max_conns;
    uint64_t refused_conns; /* over max_conns: counted, logged now and then */
};

/* Open connections. It lives apart from the server, so that a connection outliving it (still
 * writing at shutdown) closes without touching freed memory: the last one frees it then. */
struct conn_count {
    uint32_t n;
    int orphaned; /* the server is gone */
};

/* One accepted connection: h2o keeps the stream's data pointer for itself, so the way back to
 * the count is the struct around the handle. */
typedef struct {
    uv_tcp_t tcp; /* first: h2o's close callback gets this pointer */
    struct conn_count *count;
} http_conn;

typedef struct {
    h2o_handler_t super; /* first: h2o hands us this pointer */
    http_handler_fn fn;
    void *user;
} route_handler;

static int on_route(h2o_handler_t *self, h2o_req_t *req)
{
    route_handler *h = (route_handler *)self;
    return h->fn(h->user, req);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn *c = (http_conn *)h;
    if (c->count->n)
        c->count->n--;
    if (c->count->orphaned && c->count->n == 0)
        free(c->count);
    free(c);
}

static void on_accept(uv_stream_t *listener, int status)
{
    http_server *s = listener->data;
    if (status != 0 || s->shut)
        return;
    http_conn *c = malloc(sizeof *c);
    if (!c)
        return;
    c->count = s->conns;
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    if (s->conns->n >= s->max_conns) {
        /* Over the limit: closed at once, before h2o spends anything on it. */
        s->refused_conns++;
        if ((s->refused_conns & (s->refused_conns - 1)) == 0) /* 1st, 2nd, 4th, 8th... */
            log_warn("http: %u connections open (the limit): a new one closed (%llu so far)",
                     s->conns->n, (unsigned long long)s->refused_conns);
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    s->conns->n++;
    uv_tcp_nodelay(&c->tcp, 1); /* token chunks are small and must not wait for Nagle */
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    if (!sock) {
        s->conns->n--;
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    h2o_accept(&s->accept_ctx, sock);
}

/* HOST:PORT into addr. 0, or EF_ECONFIG with em filled. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr, int *loopback,
                        ef_errmsg *em)
{
    char host[64];
    const char *colon = strrchr(listen ? listen : "", ':');
    if (!listen || !colon || colon == listen || !colon[1])
        return errmsg_set(em, EF_ECONFIG, "--http %s: expected HOST:PORT (127.0.0.1:8080)",
                          listen ? listen : "");
    size_t hl = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']')
        h++, hl -= 2;
    if (hl >= sizeof host)
        return errmsg_set(em, EF_ECONFIG, "--http %s: host too long", listen);
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return errmsg_set(em, EF_ECONFIG, "--http %s: port must be 1 to 65535", listen);
    memset(addr, 0, sizeof *addr);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0) {
        uint32_t a = ntohl(((struct sockaddr_in *)addr)->sin_addr.s_addr);
        *loopback = (a >> 24) == 127;
        return 0;
    }
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0) {
        *loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)addr)->sin6_addr);
        return 0;
    }
    return errmsg_set(em, EF_ECONFIG, "--http %s: host must be a numeric IPv4 or IPv6 address",
                      listen);
}

static int setup_tls(http_server *s, const http_params *p, ef_errmsg *em)
{
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (!s->ssl)
        return errmsg_set(em, EF_ENOMEM, "http: no TLS context");
    SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    char why[256];
    if (SSL_CTX_use_certificate_chain_file(s->ssl, p->tls_cert) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        return errmsg_set(em, EF_ECONFIG, "--http-tls-cert %s: %s", p->tls_cert, why);
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl, p->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        return errmsg_set(em, EF_ECONFIG, "--http-tls-key %s: %s", p->tls_key, why);
    }
    h2o_ssl_register_alpn_protocols(s->ssl, h2o_http2_alpn_protocols);
    s->accept_ctx.ssl_ctx = s->ssl;
    return 0;
}

static int check_params(const http_params *p, struct sockaddr_storage *addr, ef_errmsg *em)
{
    int loopback = 0;
    if (parse_listen(p->listen, addr, &loopback, em) != 0)
        return EF_ECONFIG;
    if (!p->tls_cert != !p->tls_key)
        return errmsg_set(em, EF_ECONFIG, "--http-tls-cert and --http-tls-key go together");
    if (!loopback && !p->tls_cert && !p->insecure)
        return errmsg_set(em, EF_ECONFIG,
                          "--http %s is not a loopback address: give --http-tls-cert and "
                          "--http-tls-key, or --http-insecure to serve plain HTTP there",
                          p->listen);
    if (p->n_routes > HTTP_ROUTES_MAX)
        return errmsg_set(em, EF_ECONFIG, "http: too many routes");
    return 0;
}

static void configure(http_server *s, const http_params *p)
{
    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("edgefleet"));
    s->config.max_request_entity_size = p->max_body ? p->max_body : HTTP_MAX_BODY_DEFAULT;
    s->config.http1.req_timeout = HTTP_IDLE_TIMEOUT_MS;
    s->config.http2.idle_timeout = HTTP_IDLE_TIMEOUT_MS;
    s->config.http2.max_concurrent_requests_per_connection = HTTP_STREAMS_PER_CONN;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    for (size_t i = 0; i < p->n_routes; i++) {
        h2o_pathconf_t *pc = h2o_config_register_path(host, p->routes[i].path, 0);
        route_handler *h = (route_handler *)h2o_create_handler(pc, sizeof *h);
        h->super.on_req = on_route;
        h->fn = p->routes[i].fn;
        h->user = p->routes[i].user;
    }
}

static void free_listener(uv_handle_t *h) { free(h); }

http_server *http_server_new(uv_loop_t *loop, const http_params *p, ef_errmsg *em)
{
    struct sockaddr_storage addr;
    if (check_params(p, &addr, em) != 0)
        return NULL;
    http_server *s = calloc(1, sizeof *s);
    if (s && !(s->conns = calloc(1, sizeof *s->conns))) {
        free(s);
        s = NULL;
    }
    if (!s) {
        errmsg_set(em, EF_ENOMEM, "http: out of memory");
        return NULL;
    }
    s->loop = loop;
    s->max_conns = p->max_conns ? p->max_conns : HTTP_MAX_CONNS_DEFAULT;
    configure(s, p);
    if (p->tls_cert && setup_tls(s, p, em) != 0) {
        http_server_destroy(&s);
        return NULL;
    }
    h2o_context_init(&s->ctx, loop, &s->config);
    s->have_ctx = 1;
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    s->listener = malloc(sizeof *s->listener);
    int rc = s->listener ? uv_tcp_init(loop, s->listener) : UV_ENOMEM;
    if (rc != 0) {
        free(s->listener);
        s->listener = NULL;
    } else {
        s->listener->data = s;
        rc = uv_tcp_bind(s->listener, (struct sockaddr *)&addr, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)s->listener, HTTP_BACKLOG, on_accept);
    }
    if (rc != 0) {
        errmsg_set(em, EF_EIO, "--http %s: %s", p->listen, uv_strerror(rc));
        http_server_destroy(&s);
        return NULL;
    }
    return s;
}

void http_server_shutdown(http_server *s)
{
    if (!s || s->shut)
        return;
    s->shut = 1;
    if (s->listener) {
        uv_close((uv_handle_t *)s->listener, free_listener);
        s->listener = NULL;
    }
    if (s->have_ctx)
        h2o_context_request_shutdown(&s->ctx);
}

uint32_t http_server_conns(const http_server *s) { return s ? s->conns->n : 0; }

/* h2o asserts that no timeout of a context it disposes has an entry left: a connection that
 * closed a moment ago may still have one until the loop runs its close. */
static int ctx_timeouts_idle(h2o_context_t *ctx)
{
    h2o_timeout_t *t[] = {&ctx->zero_timeout,
                          &ctx->one_sec_timeout,
                          &ctx->hundred_ms_timeout,
                          &ctx->handshake_timeout,
                          &ctx->http1.req_timeout,
                          &ctx->http2.idle_timeout,
                          &ctx->http2.graceful_shutdown_timeout,
                          &ctx->proxy.io_timeout};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!h2o_linklist_is_empty(&t[i]->_entries))
            return 0;
    return 1;
}

/* A server left for connections that outlived it (see http_server_destroy). */
static http_server *left_behind;

int http_server_destroy(http_server **s_p)
{
    http_server *s = *s_p;
    if (!s)
        return 0;
    *s_p = NULL;
    http_server_shutdown(s);
    /* h2o_context_request_shutdown arms HTTP/2's graceful-shutdown timer (to resend GOAWAY to
     * connections a second later) even with no connection at all, and h2o_context_dispose then
     * asserts on it: with the connections gone it has nothing left to do. */
    if (s->have_ctx && !s->conns->n &&
        h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
    for (int i = 0; i < 20 && s->have_ctx && !ctx_timeouts_idle(&s->ctx); i++)
        uv_run(s->loop, UV_RUN_NOWAIT);
    if (s->conns->n || (s->have_ctx && !ctx_timeouts_idle(&s->ctx))) {
        /* Their h2o state refers to the context inside the server and to the TLS context:
         * both stay as they are (the process is ending); the last close frees the count. */
        log_warn("http: %u connections still open at shutdown", s->conns->n);
        s->conns->orphaned = 1;
        left_behind = s; /* still reachable: left on purpose, not leaked */
        return 1;
    } else {
        if (s->have_ctx) { /* with no connection left nothing refers to the context */
            h2o_context_dispose(&s->ctx);
            h2o_config_dispose(&s->config);
        }
        if (s->ssl)
            SSL_CTX_free(s->ssl);
        free(s->conns);
    }
    free(s);
    return 0;
}

/* ---- helpers for handlers ------------------------------------------------------------------ */

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

void http_reply(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len,
                const char *const *headers)
{
    req->res.status = status;
    req->res.reason = http_reason(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                   strlen(content_type));
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        h2o_add_header_by_str(&req->pool, &req->res.headers, headers[i], strlen(headers[i]), 0,
                              NULL, headers[i + 1], strlen(headers[i + 1]));
    h2o_send_inline(req, body, len);
}

h2o_iovec_t http_header(const h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}

int http_path_is(const h2o_req_t *req, const char *path)
{
    size_t n = strlen(path);
    size_t len = req->path_normalized.len;
    const char *q = memchr(req->path_normalized.base, '?', len);
    if (q)
        len = (size_t)(q - req->path_normalized.base);
    return len == n && memcmp(req->path_normalized.base, path, n) == 0;
}

int http_is(const h2o_req_t *req, const char *method, const char *path)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method)) &&
           http_path_is(req, path);
}

int http_fd(h2o_req_t *req)
{
    if (!req->conn || !req->conn->callbacks->get_socket)
        return -1;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock ? h2o_socket_get_fd(sock) : -1;
}
