/* Implementation of config.h: safe opening of operator-named files and the endpoint rule shared
 * by the agent and the coordinator. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENDPOINT_SCHEME   "tcp://"
#define ENDPOINT_PORT_MAX 65535

/* What a non-regular file is, in the words ls and stat use. */
static const char *file_kind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

int config_open_regular(const char *path, int not_regular_code, struct stat *st, ef_errmsg *em)
{
    /* O_NOFOLLOW is deliberately not used: key and config paths are often symlinks (a
     * "current.key" link, Kubernetes secret volumes), and the fstat below checks the target. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int code = errno == ENOENT ? EF_ENOENT : EF_EIO;
        return errmsg_set(em, code, "%s: %s", path, strerror(errno));
    }
    struct stat own;
    struct stat *s = st ? st : &own;
    if (fstat(fd, s) != 0) {
        int rc = errmsg_set(em, EF_EIO, "%s: stat: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(s->st_mode)) {
        int rc =
            errmsg_set(em, not_regular_code, "%s: is %s, not a regular file; refusing to read it",
                       path, file_kind(s->st_mode));
        close(fd);
        return rc;
    }
    return fd;
}

static int host_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* 1 if [host, host + n) is a host we can bind or dial: a name, "*" or "[IPv6]". */
static int host_valid(const char *host, size_t n)
{
    if (n == 1 && host[0] == '*')
        return 1;
    int bracketed = n >= 3 && host[0] == '[' && host[n - 1] == ']';
    size_t from = bracketed ? 1 : 0, to = bracketed ? n - 1 : n;
    if (to <= from)
        return 0;
    for (size_t i = from; i < to; i++)
        if (!host_char(host[i]) && !(bracketed && (host[i] == ':' || host[i] == '%')))
            return 0;
    return 1;
}

int config_check_endpoint(const char *endpoint, ef_errmsg *em)
{
    const char *want = "expected tcp://HOST:PORT, e.g. tcp://10.0.0.1:7701";
    if (!endpoint || !*endpoint)
        return errmsg_set(em, EF_ECONFIG, "empty endpoint (%s)", want);
    if (strncmp(endpoint, ENDPOINT_SCHEME, strlen(ENDPOINT_SCHEME)) != 0)
        return errmsg_set(em, EF_ECONFIG, "\"%.200s\" does not start with tcp:// (%s)", endpoint,
                          want);
    const char *host = endpoint + strlen(ENDPOINT_SCHEME);
    /* An IPv6 address has colons of its own: its port follows the closing bracket. */
    const char *close = host[0] == '[' ? strchr(host, ']') : NULL;
    const char *colon = close ? (close[1] == ':' ? close + 1 : NULL) : strrchr(host, ':');
    if (!colon)
        return errmsg_set(em, EF_ECONFIG, "\"%.200s\" has no port (%s)", endpoint, want);
    if (!host_valid(host, (size_t)(colon - host)))
        return errmsg_set(em, EF_ECONFIG, "\"%.200s\": bad host \"%.*s\" (%s)", endpoint,
                          (int)(colon - host > 200 ? 200 : colon - host), host, want);
    const char *port = colon + 1;
    char *end = (char *)port;
    errno = 0;
    long n = port[0] >= '0' && port[0] <= '9' ? strtol(port, &end, 10) : -1;
    if (n < 1 || n > ENDPOINT_PORT_MAX || errno || *end)
        return errmsg_set(em, EF_ECONFIG, "\"%.200s\": bad port \"%.16s\" (1..%d)", endpoint, port,
                          ENDPOINT_PORT_MAX);
    return 0;
}
