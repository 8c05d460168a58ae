/* libedgefleet helpers every call uses and that touch no socket: the last error, ids, the wire's
 * error codes and a call's start. Kept apart from client_link.c (the socket) so the reply
 * handling can be linked against a stubbed link (tests/fuzz/fuzz_client_reply.c). Runs on the
 * caller's thread. */
#include "client_internal.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>

int client_fail(ef_client_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    return code;
}

void client_random_id(uint8_t id[CODEC_REQUEST_ID_LEN])
{
    randombytes_buf(id, CODEC_REQUEST_ID_LEN);
}

int client_wire_error(int32_t code) { return code < 0 && code >= -1000 ? code : EF_EPROTO; }

int client_call_begin(ef_client_t *c)
{
    atomic_store(&c->cancel, 0);
    c->last_error[0] = '\0';
    if (c->loop)
        return client_fail(c, EF_EINVAL,
                           "a client opened with ef_client_open_async takes only "
                           "the _async calls");
    return client_wait_connected(c);
}
