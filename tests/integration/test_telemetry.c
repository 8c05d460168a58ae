/* The coordinator's telemetry with scripted agents (tests/integration/support): each agent's
 * TelemetrySample comes back on the telemetry PUB under "telemetry.<agent>" named after the
 * agent's key with the coordinator's fields, plus "telemetry.fleet"; a subscriber with a client
 * key gets nothing (the telemetry ZAP domain admits operators and allow/telemetry/ only); the
 * window comes back through COMMAND_TELEMETRY_HISTORY (operators only); COMMAND_MODELS answers
 * a client key too; COMMAND_EVICT drops an agent and cuts its link. */
#include "codec.h"
#include "fleet_fixture.h"
#include "raw_peer.h"
#include "scripted_agent.h"
#include "test_support.h"
#include "transport.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#define HB_MS 200
#define MODEL "stories"

typedef struct {
    fleet_fixture f;
    scripted_agent *agents[2];
    void *ctx;
    void *subs[4]; /* closed in teardown, so a failed assertion does not hang zmq_ctx_term */
    size_t n_subs;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || fx_setup(&w->f) != 0)
        return -1;
    if (fx_add_key(&w->f, "op", "operators", NULL) || fx_add_key(&w->f, "cli", "clients", NULL) ||
        fx_add_key(&w->f, "dash", "telemetry", NULL) || fx_add_key(&w->f, "a1", "agents", NULL) ||
        fx_add_key(&w->f, "a2", "agents", NULL))
        return -1;
    w->ctx = zmq_ctx_new();
    *state = w;
    return fx_start_coordinator(&w->f, HB_MS, 3, 8);
}

static int teardown(void **state)
{
    world *w = *state;
    for (size_t i = 0; i < 2; i++)
        sa_stop(&w->agents[i]);
    fx_teardown(&w->f);
    for (size_t i = 0; i < w->n_subs; i++)
        zmq_close(w->subs[i]);
    zmq_ctx_term(w->ctx);
    free(w);
    return 0;
}

static scripted_agent *agent(world *w, size_t slot, const char *key, uint32_t slots)
{
    char key_file[512];
    fx_key_path(&w->f, key, "key", key_file, sizeof key_file);
    sa_params p = {.key_file = key_file,
                   .server_public = w->f.coord_keys.public_z85,
                   .endpoint = w->f.agents_ep,
                   .model = MODEL,
                   .slots = slots,
                   .heartbeat_ms = HB_MS,
                   .tokens = 3,
                   .token_ms = 1};
    w->agents[slot] = sa_start(&p);
    assert_non_null(w->agents[slot]);
    assert_int_equal(sa_wait_registered(w->agents[slot], 3000), 1);
    return w->agents[slot];
}

static void *subscriber(world *w, const char *key, const char *topic)
{
    char key_file[512];
    keys_pair kp;
    ef_errmsg em;
    fx_key_path(&w->f, key, "key", key_file, sizeof key_file);
    assert_int_equal(keys_load_pair(key_file, &kp, &em), 0);
    void *sub = zmq_socket(w->ctx, ZMQ_SUB);
    assert_int_equal(transport_setup_client_socket(sub, &kp, w->f.coord_keys.public_z85, 0), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic)), 0);
    assert_int_equal(zmq_connect(sub, w->f.telemetry_ep), 0);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_true(w->n_subs < 4);
    w->subs[w->n_subs++] = sub;
    return sub;
}

/* The next sample on sub within timeout_ms, its topic in topic; NULL on timeout. */
static envelope *next_sample(void *sub, int timeout_ms, char *topic, size_t cap)
{
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    int n = zmq_recv(sub, topic, cap - 1, 0);
    if (n < 0)
        return NULL;
    topic[n < (int)cap - 1 ? n : (int)cap - 1] = '\0';
    uint8_t buf[8192];
    n = zmq_recv(sub, buf, sizeof buf, 0);
    assert_true(n > 0);
    envelope *env = NULL;
    assert_int_equal(codec_decode(buf, (size_t)n, 0, &env), 0);
    assert_int_equal(env->body_case, EDGEFLEET__ENVELOPE__BODY_TELEMETRY);
    return env;
}

static void test_samples_reach_operators_and_not_clients(void **state)
{
    world *w = *state;
    agent(w, 0, "a1", 2);
    void *op = subscriber(w, "op", "telemetry.");
    void *dash = subscriber(w, "dash", "telemetry.a1");
    void *cli = subscriber(w, "cli", "telemetry.");
    int per_agent = 0, fleet = 0;
    char topic[64];
    while (per_agent < 3 || fleet < 1) {
        envelope *env = next_sample(op, 3000, topic, sizeof topic);
        assert_non_null(env);
        const Edgefleet__TelemetrySample *s = env->telemetry;
        if (strcmp(topic, "telemetry.a1") == 0) {
            per_agent++;
            assert_string_equal(s->agent_name, "a1"); /* the key's name, not what it said */
            assert_int_equal(s->total_slots, 2);
            assert_int_equal(s->n_models, 1);
            assert_string_equal(s->models[0]->model, MODEL);
            assert_true(s->received_unix_ms > 0);
        } else {
            assert_string_equal(topic, "telemetry.fleet");
            fleet++;
            assert_int_equal(s->agents, 1);
            assert_int_equal(s->total_slots, 2);
        }
        codec_free(&env);
    }
    envelope *env = next_sample(dash, 3000, topic, sizeof topic);
    assert_non_null(env); /* the telemetry allowlist of its own */
    assert_string_equal(topic, "telemetry.a1");
    codec_free(&env);
    /* Three samples reached the operator: one would have reached the client by now if its key
     * were admitted. Its handshake was refused, and the log says so. */
    int zero = 0;
    zmq_setsockopt(cli, ZMQ_RCVTIMEO, &zero, sizeof zero);
    assert_true(zmq_recv(cli, topic, sizeof topic, 0) < 0);
    assert_true(ts_file_wait_for(w->f.log, "refused connection on domain \"telemetry\"", 1000));
}

static envelope *command(world *w, const char *key, Edgefleet__CommandKind kind,
                         const char *agent_name)
{
    raw_peer *p = rp_open(&w->f, w->f.clients_ep, key, 0);
    assert_non_null(p);
    Edgefleet__OperatorCommand cmd = EDGEFLEET__OPERATOR_COMMAND__INIT;
    uint8_t id[16] = {7};
    cmd.command_id = (ProtobufCBinaryData){16, id};
    cmd.kind = kind;
    cmd.agent_name = (char *)agent_name;
    envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_COMMAND;
    env.command = &cmd;
    assert_int_equal(rp_send(p, &env), 0);
    envelope *r = rp_recv(p, 5000);
    rp_close(&p);
    assert_non_null(r);
    assert_int_equal(r->body_case, EDGEFLEET__ENVELOPE__BODY_REPLY);
    return r;
}

static void test_history_models_and_evict(void **state)
{
    world *w = *state;
    agent(w, 0, "a1", 2);
    agent(w, 1, "a2", 3);
    void *op = subscriber(w, "op", "telemetry.a2");
    char topic[64];
    for (int i = 0; i < 3; i++) { /* a2 sent three samples: the window holds them */
        envelope *env = next_sample(op, 3000, topic, sizeof topic);
        assert_non_null(env);
        codec_free(&env);
    }
    envelope *r = command(w, "op", EDGEFLEET__COMMAND_KIND__COMMAND_TELEMETRY_HISTORY, "a2");
    assert_int_equal(r->reply->code, 0);
    assert_true(r->reply->n_samples >= 3);
    for (size_t i = 0; i < r->reply->n_samples; i++) {
        assert_string_equal(r->reply->samples[i]->agent_name, "a2");
        if (i)
            assert_true(r->reply->samples[i]->received_unix_ms >=
                        r->reply->samples[i - 1]->received_unix_ms); /* oldest first */
    }
    codec_free(&r);
    r = command(w, "op", EDGEFLEET__COMMAND_KIND__COMMAND_TELEMETRY_HISTORY, "");
    int seen[2] = {0};
    for (size_t i = 0; i < r->reply->n_samples; i++) {
        seen[0] |= strcmp(r->reply->samples[i]->agent_name, "a1") == 0;
        seen[1] |= strcmp(r->reply->samples[i]->agent_name, "a2") == 0;
    }
    assert_true(seen[0] && seen[1]);
    codec_free(&r);
    r = command(w, "op", EDGEFLEET__COMMAND_KIND__COMMAND_TELEMETRY_HISTORY, "nobody");
    assert_int_equal(r->reply->code, EF_ENOENT);
    codec_free(&r);
    r = command(w, "cli", EDGEFLEET__COMMAND_KIND__COMMAND_TELEMETRY_HISTORY, "");
    assert_int_equal(r->reply->code, EF_EDENIED);
    assert_int_equal(r->reply->n_samples, 0);
    codec_free(&r);
    /* Models: for a client key too, one row per model with the fleet's slots. */
    r = command(w, "cli", EDGEFLEET__COMMAND_KIND__COMMAND_MODELS, NULL);
    assert_int_equal(r->reply->code, 0);
    assert_int_equal(r->reply->n_models, 1);
    assert_string_equal(r->reply->models[0]->name, MODEL);
    assert_int_equal(r->reply->models[0]->agents, 2);
    assert_int_equal(r->reply->models[0]->total_slots, 5);
    codec_free(&r);
    /* Evict: operators only; the agent's registration goes and its link is cut. */
    r = command(w, "cli", EDGEFLEET__COMMAND_KIND__COMMAND_EVICT, "a1");
    assert_int_equal(r->reply->code, EF_EDENIED);
    codec_free(&r);
    r = command(w, "op", EDGEFLEET__COMMAND_KIND__COMMAND_EVICT, "a1");
    assert_int_equal(r->reply->code, 0);
    codec_free(&r);
    assert_true(ts_file_wait_for(w->f.log, "agent a1 evicted by operators/op: link cut", 2000));
    r = command(w, "op", EDGEFLEET__COMMAND_KIND__COMMAND_EVICT, "nobody");
    assert_int_equal(r->reply->code, EF_ENOENT);
    codec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_samples_reach_operators_and_not_clients, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_history_models_and_evict, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
