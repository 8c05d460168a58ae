/* What the gateway answers from the fleet's state (gateway_internal.h): GET /v1/models (and
 * /v1/models/ID), GET /health for load balancers and service managers, the API-key check,
 * and what no route answers (404, 405). Loop thread. */
#include "gateway_internal.h"

#include "clock.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Models listed at most (the fleet's distinct model names). */
#define GW_MODELS_MAX 256

int gw_auth(gateway *g, h2o_req_t *req, char user_id[REGISTRY_KEY_MAX])
{
    if (!g->keys) {
        snprintf(user_id, REGISTRY_KEY_MAX, "http/anonymous");
        return 0;
    }
    h2o_iovec_t v = http_header(req, "authorization");
    char name[HTTP_KEY_NAME_MAX];
    const char *why = "missing API key: send Authorization: Bearer KEY";
    if (v.len > 7 && h2o_lcstris(v.base, 7, H2O_STRLIT("bearer "))) {
        const char *key = v.base + 7;
        size_t len = v.len - 7;
        while (len && *key == ' ')
            key++, len--;
        if (http_keys_check(g->keys, key, len, name) == 0) {
            snprintf(user_id, REGISTRY_KEY_MAX, "http/%s", name);
            return 0;
        }
        why = "incorrect API key";
    }
    uint32_t held = 0;
    if (ratelimit_check(g->c->log_limit, "http/unauthenticated", clock_mono_ms(), &held))
        log_warn("http: request refused: %s%s", why,
                 held ? " (and more since the last such line)" : "");
    openai_error e;
    openai_error_set(&e, 401, "invalid_request_error", NULL, "invalid_api_key", "%s", why);
    gw_reply_error(req, &e, 0, NULL);
    return EF_EDENIED;
}

static void reply_json(h2o_req_t *req, int status, char *json)
{
    if (!json) {
        openai_error e;
        openai_error_from_fleet(EF_ENOMEM, "coordinator out of memory", &e);
        gw_reply_error(req, &e, 0, NULL);
        return;
    }
    http_reply(req, status, "application/json", json, strlen(json), NULL);
    free(json);
}

/* The fleet's models now: boards serving each (not draining), their slots, the queue. */
static size_t model_rows(coord *c, openai_model_row *rows, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < registry_count(c->registry); i++) {
        const registry_agent *a = registry_at(c->registry, i);
        if (!a || registry_agent_draining(a))
            continue;
        for (size_t m = 0; m < a->n_models; m++) {
            const registry_model *rm = &a->models[m];
            size_t r = 0;
            while (r < n && strcmp(rows[r].name, rm->name) != 0)
                r++;
            if (r == n) {
                if (n == cap)
                    continue;
                rows[n++] = (openai_model_row){.name = rm->name};
            }
            uint32_t busy = rm->inflight > rm->busy_slots ? rm->inflight : rm->busy_slots;
            rows[r].boards++;
            rows[r].slots += rm->total_slots;
            rows[r].busy_slots += busy > rm->total_slots ? rm->total_slots : busy;
        }
    }
    for (size_t r = 0; r < n; r++)
        rows[r].queued = scheduler_queued(c->scheduler, rows[r].name);
    return n;
}

int gw_on_models(void *user, h2o_req_t *req)
{
    gateway *g = user;
    int one =
        req->path_normalized.len > 11 && memcmp(req->path_normalized.base, "/v1/models/", 11) == 0;
    if (!one && !http_path_is(req, "/v1/models"))
        return gw_on_other(g, req);
    char user_id[REGISTRY_KEY_MAX];
    if (gw_auth(g, req, user_id) != 0)
        return 0;
    openai_error e;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        openai_error_set(&e, 405, "invalid_request_error", NULL, "method_not_allowed",
                         "/v1/models takes GET");
        gw_reply_error(req, &e, 0, "GET");
        return 0;
    }
    openai_model_row *rows = calloc(GW_MODELS_MAX, sizeof *rows);
    if (!rows) {
        reply_json(req, 500, NULL);
        return 0;
    }
    size_t n = model_rows(g->c, rows, GW_MODELS_MAX);
    int64_t created = (int64_t)(clock_unix_ms() / 1000);
    if (!one) {
        reply_json(req, 200, openai_models_json(rows, n, created));
        free(rows);
        return 0;
    }
    /* GET /v1/models/ID: the one model, in the list's row shape. */
    h2o_iovec_t id = h2o_iovec_init(req->path_normalized.base + 11, req->path_normalized.len - 11);
    for (size_t r = 0; r < n; r++) {
        if (strlen(rows[r].name) != id.len || memcmp(rows[r].name, id.base, id.len) != 0)
            continue;
        char *list = openai_models_json(&rows[r], 1, created);
        cJSON *doc = list ? cJSON_Parse(list) : NULL;
        cJSON *item = doc ? cJSON_DetachItemFromArray(cJSON_GetObjectItem(doc, "data"), 0) : NULL;
        reply_json(req, 200, item ? cJSON_PrintUnformatted(item) : NULL);
        cJSON_Delete(item);
        cJSON_Delete(doc);
        free(list);
        free(rows);
        return 0;
    }
    free(rows);
    openai_error_set(&e, 404, "invalid_request_error", "model", "model_not_found",
                     "no board serves model %.*s", (int)(id.len > 128 ? 128 : id.len), id.base);
    gw_reply_error(req, &e, 0, NULL);
    return 0;
}

uint32_t gw_boards_serving(coord *c, uint32_t *registered, uint32_t *draining)
{
    uint32_t boards = 0, reg = (uint32_t)registry_count(c->registry), dr = 0;
    for (size_t i = 0; i < reg; i++) {
        const registry_agent *a = registry_at(c->registry, i);
        if (a && registry_agent_draining(a)) {
            dr++;
            continue;
        }
        for (size_t m = 0; a && m < a->n_models; m++)
            if (a->models[m].total_slots > 0) {
                boards++;
                break;
            }
    }
    if (registered)
        *registered = reg;
    if (draining)
        *draining = dr;
    return boards;
}

int gw_on_health(void *user, h2o_req_t *req)
{
    gateway *g = user;
    if (!http_path_is(req, "/health"))
        return gw_on_other(g, req);
    uint32_t registered = 0, draining = 0;
    uint32_t boards = gw_boards_serving(g->c, &registered, &draining);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", boards ? "ok" : "unavailable");
    cJSON_AddNumberToObject(o, "boards", boards);
    cJSON_AddNumberToObject(o, "registered", registered);
    cJSON_AddNumberToObject(o, "draining", draining);
    if (!boards)
        cJSON_AddStringToObject(o, "reason",
                                registered == 0          ? "no board is registered"
                                : draining == registered ? "every board is draining"
                                                         : "no board has a slot for any model");
    reply_json(req, boards ? 200 : 503, cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
    return 0;
}

int gw_on_other(void *user, h2o_req_t *req)
{
    (void)user;
    openai_error e;
    int len = (int)(req->path_normalized.len > 128 ? 128 : req->path_normalized.len);
    openai_error_set(&e, 404, "invalid_request_error", NULL, "not_found", "no such path: %.*s", len,
                     req->path_normalized.base);
    gw_reply_error(req, &e, 0, NULL);
    return 0;
}
