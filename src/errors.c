/* ef_strerror / ef_err_name, generated from EF_ERR_MAP so codes and messages never drift. */
#include "edgefleet.h"

const char *ef_strerror(int err)
{
    switch (err) {
    case EF_OK:
        return "success";
#define EF_ERR_MSG_(name, value, msg) \
    case EF_##name:                   \
        return msg;
        EF_ERR_MAP(EF_ERR_MSG_)
#undef EF_ERR_MSG_
    default:
        return "unknown error";
    }
}

const char *ef_err_name(int err)
{
    switch (err) {
    case EF_OK:
        return "EF_OK";
#define EF_ERR_NAME_(name, value, msg) \
    case EF_##name:                    \
        return "EF_" #name;
        EF_ERR_MAP(EF_ERR_NAME_)
#undef EF_ERR_NAME_
    default:
        return "EF_UNKNOWN";
    }
}

#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

int errmsg_set(ef_errmsg *em, int code, const char *fmt, ...)
{
    if (em) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(em->msg, sizeof em->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
