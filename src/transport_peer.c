/* Who is on the other end of a message, and its TCP connection: the ZAP User-Id and key a
 * message carries, and a record of the connection (fd and both ends' addresses) by which the
 * coordinator can later cut exactly that connection when its key is revoked. Any thread (pure
 * system calls); the caller owns the records. */
#include "transport_internal.h"

#include <string.h>
#include <sys/socket.h>

void tsock_peer_of(zmq_msg_t *m, tsock_peer *out)
{
    const char *uid = zmq_msg_gets(m, "User-Id");
    const char *key = zmq_msg_gets(m, ZAP_PROPERTY_KEY);
    out->user_id = uid ? uid : "";
    out->key = key ? key : "";
    out->fd = zmq_msg_get(m, ZMQ_SRCFD); /* -1 when libzmq does not know */
}

int tsock_conn_capture(int fd, tsock_conn *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->local_len = sizeof out->local;
    out->remote_len = sizeof out->remote;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&out->local, &out->local_len) != 0 ||
        getpeername(fd, (struct sockaddr *)&out->remote, &out->remote_len) != 0)
        return EF_ENOENT;
    out->fd = fd;
    return 0;
}

int tsock_conn_same(const tsock_conn *c)
{
    tsock_conn now;
    return c->fd >= 0 && tsock_conn_capture(c->fd, &now) == 0 && now.local_len == c->local_len &&
           now.remote_len == c->remote_len && memcmp(&now.local, &c->local, c->local_len) == 0 &&
           memcmp(&now.remote, &c->remote, c->remote_len) == 0;
}

int tsock_conn_cut(const tsock_conn *c)
{
    /* libzmq has no call to drop one peer of a ROUTER, so we end its TCP connection under it:
     * shutdown() leaves the fd to libzmq's I/O thread, which sees the end of the stream and
     * tears the pipe down as for any lost peer. The fd is checked to carry the very connection
     * recorded (same addresses and ports both ends), never one that reused its number. */
    if (!tsock_conn_same(c))
        return EF_ENOENT;
    return shutdown(c->fd, SHUT_RDWR) == 0 ? 0 : EF_EIO;
}
