/* A fake coordinator for libedgefleet tests: a thread with a real CURVE ROUTER on a free loopback
 * port (no allowlist: any client key is admitted) that hands each decoded client message to a
 * script the test writes, which answers with whatever a faulty or hostile coordinator might send
 * (chunks with a gap, an Error with no id). Counts the Cancels it gets. */
#ifndef EF_TEST_FAKE_COORDINATOR_H
#define EF_TEST_FAKE_COORDINATOR_H

#include "codec.h"
#include "keys.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fake_coordinator fake_coordinator;

/* Called on the fake's thread for each client message; reply with fc_send. */
typedef void (*fc_script)(fake_coordinator *fc, const envelope *env, void *user);

/* Bind with server_keys on a free port and start the thread. NULL on failure. */
fake_coordinator *fc_start(const keys_pair *server_keys, fc_script script, void *user);
/* Stop the thread, close the socket, free. NULL-safe; sets *fc_p = NULL. */
void fc_stop(fake_coordinator **fc_p);

/* "tcp://127.0.0.1:PORT". Valid until fc_stop. */
const char *fc_endpoint(const fake_coordinator *fc);
/* From a script: send env to the client whose message is being handled. */
void fc_send(fake_coordinator *fc, envelope *env);
/* Cancels received so far, and the request id of the last one (16 bytes) into id when not NULL. */
int fc_cancels(fake_coordinator *fc, uint8_t *id);

#endif
