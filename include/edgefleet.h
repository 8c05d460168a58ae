/* edgefleet client library: the only header a program that talks to an edgefleet fleet includes.
 * Error codes are shared with the daemons and travel on the wire (Error.code), so their values
 * never change once released; new codes are appended. */
#ifndef EDGEFLEET_H
#define EDGEFLEET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EF_API __declspec(dllexport)
#elif defined(__GNUC__)
#define EF_API __attribute__((visibility("default")))
#else
#define EF_API
#endif

/* Every function that can fail returns int: 0 on success or one of these negative codes.
 * XX(name, value, message). Values are part of the wire protocol: append, never renumber. */
#define EF_ERR_MAP(XX)                                        \
    XX(EINVAL, -1, "invalid argument")                        \
    XX(ENOMEM, -2, "out of memory")                           \
    XX(EPROTO, -3, "malformed message")                       \
    XX(EVERSION, -4, "protocol version mismatch")             \
    XX(ETOOBIG, -5, "message too large")                      \
    XX(ETIMEDOUT, -6, "timed out")                            \
    XX(EKEY, -7, "bad key file")                              \
    XX(EKEYPERM, -8, "secret key file is readable by others") \
    XX(EEXIST, -9, "file exists")                             \
    XX(ENOENT, -10, "no such file")                           \
    XX(EIO, -11, "input/output error")                        \
    XX(EZMQ, -12, "ZeroMQ error")                             \
    XX(ECRYPTO, -13, "cryptography error")                    \
    XX(EMODEL, -14, "model file could not be loaded")         \
    XX(EUNKNOWNMODEL, -15, "unknown model")                   \
    XX(ECONTEXT, -16, "prompt longer than the context")       \
    XX(EBUSY, -17, "fleet busy")                              \
    XX(ECANCELED, -18, "request cancelled")                   \
    XX(EDEADLINE, -19, "deadline passed")                     \
    XX(EAGENTLOST, -20, "agent lost mid-request")             \
    XX(ENOTCONN, -21, "not connected")                        \
    XX(ECONFIG, -22, "bad configuration")                     \
    XX(EDUPLICATE, -23, "duplicate name")                     \
    XX(EINTERNAL, -24, "internal error")                      \
    XX(EDRAINING, -25, "agent is draining")                   \
    XX(ETOKENIZE, -26, "prompt could not be tokenized")

typedef enum {
    EF_OK = 0,
#define EF_ERR_ENUM_(name, value, msg) EF_##name = value,
    EF_ERR_MAP(EF_ERR_ENUM_)
#undef EF_ERR_ENUM_
} ef_err;

/* Human-readable message for an error code ("fleet busy"). Never NULL; an unknown code gives
 * "unknown error". The string is static. Thread-safe. */
EF_API const char *ef_strerror(int err);

/* Symbolic name of an error code ("EF_EBUSY"), for logs. Never NULL. Static. Thread-safe. */
EF_API const char *ef_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* EDGEFLEET_H */
