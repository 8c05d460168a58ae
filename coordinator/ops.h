/* Private to ops*.c: the operator commands' shared pieces. Loop thread. */
#ifndef EF_COORD_OPS_H
#define EF_COORD_OPS_H

#include "coord.h"

void ops_send_reply(coord *c, const coord_client *client, Edgefleet__OperatorReply *r);
/* COMMAND_TELEMETRY_HISTORY (ops_history.c): replies itself. agent "" = every agent; last =
 * each agent's latest that many (0 = the whole window). */
void ops_history(coord *c, Edgefleet__OperatorReply *r, const char *agent, uint32_t last,
                 const coord_client *client);
/* COMMAND_MODELS (ops_models.c): replies itself; allowed for client keys. */
void ops_models(coord *c, Edgefleet__OperatorReply *r, const coord_client *client);
/* COMMAND_EVICT (ops_models.c): fills r. */
void ops_evict(coord *c, Edgefleet__OperatorReply *r, const char *agent, const char *user_id);

#endif
