/* What every binary checks in what an operator configures: the files we read at start-up or on
 * a handshake (INI files, key files, allowlist entries) and the endpoints we bind or dial. Pure
 * and stateless: any thread. Callers prefix the message with where the value came from
 * ("agent.ini:3: ", "--coordinator: "). */
#ifndef EF_CONFIG_H
#define EF_CONFIG_H

#include "errors.h"

#include <sys/stat.h>

/* Open path read-only for a short read, never blocking: O_NONBLOCK, because open() of a FIFO
 * without a writer would otherwise wait forever; then fstat the opened fd (not the path, so a
 * swap in between is harmless) and refuse anything but a regular file: a FIFO, a device such
 * as /dev/zero, a directory or a socket, named in the message. Symlinks are followed and the
 * file they lead to is what is checked. Returns the fd (>= 0, O_CLOEXEC, the caller closes it)
 * with *st filled when st is not NULL, or EF_ENOENT, EF_EIO, or not_regular_code for a file
 * that is not regular, with em saying path and why. */
int config_open_regular(const char *path, int not_regular_code, struct stat *st, ef_errmsg *em);

/* 0 if endpoint is "tcp://HOST:PORT": HOST a name or address of [A-Za-z0-9._-], "*" (bind on
 * every interface) or a bracketed IPv6 address, PORT a number 1..65535. Otherwise EF_ECONFIG
 * with em saying what is wrong, without a prefix (the caller adds one). */
int config_check_endpoint(const char *endpoint, ef_errmsg *em);

#endif
