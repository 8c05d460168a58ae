/* The coordinator's HTTP listener: h2o 2.2 (libh2o, built on libuv) on the coordinator's own
 * loop, one address, HTTP/1.1 with keep-alive and HTTP/2, TLS through OpenSSL when a
 * certificate is given. It owns the listening socket, the h2o context and the count of open
 * connections; what a path answers is a handler's (gateway.c). Loop thread only. */
#ifndef EF_COORD_HTTP_H
#define EF_COORD_HTTP_H

#include "errors.h"

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Defaults of the --http-* options. A body holds a prompt of at most CODEC_MAX_PROMPT_BYTES,
 * which JSON escaping may blow up to six times in the worst case of control characters; 8 MiB
 * holds any prompt we accept in ordinary text. */
#define HTTP_MAX_BODY_DEFAULT  (8u << 20)
#define HTTP_MAX_CONNS_DEFAULT 1024u
#define HTTP_STREAMS_PER_CONN  16u /* HTTP/2 requests one connection may have at once */
#define HTTP_ROUTES_MAX        8
#define HTTP_IDLE_TIMEOUT_MS   10000u /* an idle keep-alive connection is closed after this */

typedef struct http_server http_server;

/* A handler answers a request on its path (and below it: handlers check the exact path). It
 * returns 0 once it has taken the request (answered, or will answer later), -1 to decline. */
typedef int (*http_handler_fn)(void *user, h2o_req_t *req);

typedef struct {
    const char *path; /* "/v1/chat/completions"; "/" catches everything else */
    http_handler_fn fn;
    void *user;
} http_route;

typedef struct {
    const char *listen;   /* "HOST:PORT" with a numeric host; "[::1]:PORT" for IPv6 */
    const char *tls_cert; /* PEM certificate chain, or NULL for plain HTTP */
    const char *tls_key;  /* PEM private key, with tls_cert */
    int insecure;         /* allow plain HTTP on an address other than loopback */
    size_t max_body;      /* request bodies beyond this are refused (413); 0 = default */
    uint32_t max_conns;   /* connections beyond this are closed at accept; 0 = default */
    const http_route *routes;
    size_t n_routes; /* at most HTTP_ROUTES_MAX */
} http_params;

/* Check p (address, TLS pair, the loopback rule) and listen on loop. Returns the server, or
 * NULL with em filled (EF_ECONFIG for a bad option: the caller exits 2; EF_EIO for a socket or
 * certificate that could not be used). */
http_server *http_server_new(uv_loop_t *loop, const http_params *p, ef_errmsg *em);

/* Stop accepting, and ask open connections to close once their response is out. The server
 * stays valid for responses still being written; destroy it when the loop winds down. */
void http_server_shutdown(http_server *s);

/* Connections open now. */
uint32_t http_server_conns(const http_server *s);

/* Free the server (its listener is closed first). With connections still open their h2o state
 * needs it: it is then left allocated for the rest of the process (logged) and 1 is returned;
 * else 0. NULL-safe; sets *s_p = NULL. */
int http_server_destroy(http_server **s_p);

/* Answer req at once with status, a body of len bytes (copied) and its content type, plus
 * optional extra headers (pairs of name, value, NULL-terminated; may be NULL). */
void http_reply(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len,
                const char *const *headers);

/* The reason phrase of a status we send ("OK", "Too Many Requests"), "" for others. */
const char *http_reason(int status);

/* The request's header `name` (lower case), or an empty iovec. */
h2o_iovec_t http_header(const h2o_req_t *req, const char *name);

/* 1 if the request's method is `method`, its path (without the query) is exactly `path`. */
int http_is(const h2o_req_t *req, const char *method, const char *path);
int http_path_is(const h2o_req_t *req, const char *path);

/* The request's connection's socket fd, or -1 (for closing a stalled client's connection). */
int http_fd(h2o_req_t *req);

#endif
