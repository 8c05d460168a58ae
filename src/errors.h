/* Internal half of the error convention. Functions return 0 or a negative EF_E* code (the
 * EF_ERR_MAP table in include/edgefleet.h); functions that read files, argv or the network
 * also fill an ef_errmsg saying what and where ("agent.ini:12: unknown key \"thread\""), so
 * the caller can log or print it as one line. */
#ifndef EF_ERRORS_H
#define EF_ERRORS_H

#include "edgefleet.h"

#define EF_ERRMSG_MAX 512

typedef struct {
    char msg[EF_ERRMSG_MAX];
} ef_errmsg;

/* printf into em->msg (no-op when em is NULL); returns code, so: return errmsg_set(em, EF_EKEY,
 * ...). */
int errmsg_set(ef_errmsg *em, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
