/* edgefleetctl's JSON (cJSON): the wire's messages as JSON objects, for --json output. Every
 * function returns a new object the caller owns (cJSON_Delete), or NULL when out of memory. */
#ifndef EF_CTL_JSON_H
#define EF_CTL_JSON_H

#include "codec.h"

#include <cjson/cJSON.h>

cJSON *ctl_json_sample(const Edgefleet__TelemetrySample *s);
cJSON *ctl_json_status(const Edgefleet__FleetStatus *fs);
cJSON *ctl_json_models(const Edgefleet__OperatorReply *r);
/* Print j on one line (or indented when pretty) with a newline, then delete it. Returns 0, or
 * -1 when j is NULL or printing failed. */
int ctl_json_print(cJSON *j, int pretty);
/* Lower-case hex of bytes into out (cap >= 2 * len + 1). */
void ctl_hex(const uint8_t *b, size_t len, char *out, size_t cap);

#endif
