/* edgefleetctl's own link for what libedgefleet has no call for (operator commands beyond
 * status and drain, the telemetry stream): a blocking CURVE DEALER to the client endpoint or a
 * SUB to the telemetry endpoint, with a socket monitor so the caller can tell "nothing answers"
 * from "the key was refused" before anything is sent. One thread; nothing kept between calls. */
#ifndef EF_CTL_LINK_H
#define EF_CTL_LINK_H

#include "codec.h"
#include "ctl_connect.h"

typedef struct ctl_link ctl_link;

/* Connect (telemetry = 0: DEALER to co->coordinator; 1: SUB to the telemetry endpoint, topic
 * subscribed) and wait for the CURVE handshake, at most co->timeout_ms (0 = 5000). Returns
 * CTL_OK with *out, else the exit code after "edgefleetctl CMD: <why>" on stderr. */
int ctl_link_open(const ctl_connect_opts *co, const char *cmd, int telemetry, const char *topic,
                  ctl_link **out);
void ctl_link_close(ctl_link **l_p);
/* Send OperatorCommand{kind, agent} and wait for its reply (co's timeout, 0 = 10000 ms).
 * Returns CTL_OK with *reply (free with codec_free; its code may be non-zero), or the exit code
 * after a message. */
int ctl_link_command(ctl_link *l, Edgefleet__CommandKind kind, const char *agent, uint32_t last,
                     envelope **reply);
/* The exit code and a message for an OperatorReply's code (0 = CTL_OK, nothing printed). */
int ctl_reply_failure(const char *cmd, const Edgefleet__OperatorReply *r);
/* Next telemetry sample within timeout_ms (-1 = wait): its envelope (codec_free) or NULL. */
envelope *ctl_link_sample(ctl_link *l, int timeout_ms);

#endif
