/* Failover under faults (label chaos): real agent processes serving the real model, real
 * signals, a real network partition in a network namespace. A board that dies, freezes or is
 * cut off mid-answer costs the client nothing: the stream goes on on another board with every
 * token exactly once. Greedy output is not bit-identical across batch compositions in
 * llama.cpp (upstream #6583), and a resumed stream evaluates its tokens as a prompt, so these
 * tests check contiguity and completeness, never the text against a reference. */
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "test_support.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HB_MS    300
#define LIVENESS 3
#define N_AGENTS 3

typedef struct {
    fleet_fixture f;
    pid_t agents[N_AGENTS];
    char model_path[512];
    char model[64];
    char netns[32], veth[2][16]; /* the partition test's namespace and veth pair */
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w || fx_setup(&w->f) != 0)
        return -1;
    if (ts_model_path("stories260K.gguf", w->model_path, sizeof w->model_path) != 0) {
        fprintf(stderr, "test_failover: model %s missing\n", w->model_path);
        return -1;
    }
    if (fx_add_key(&w->f, "op", "operators", NULL) || fx_add_key(&w->f, "cli", "clients", NULL))
        return -1;
    for (int i = 0; i < N_AGENTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "board%d", i);
        if (fx_add_key(&w->f, name, "agents", NULL))
            return -1;
    }
    *state = w;
    return 0;
}

static void run(const char *cmd)
{
    int rc = system(cmd);
    (void)rc;
}

static int teardown(void **state)
{
    world *w = *state;
    for (int i = 0; i < N_AGENTS; i++)
        if (w->agents[i] > 0) {
            kill(w->agents[i], SIGCONT);
            ts_kill_wait(w->agents[i], SIGKILL, 2000);
        }
    if (w->netns[0]) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "ip link del %s 2>/dev/null; ip netns del %s 2>/dev/null",
                 w->veth[0], w->netns);
        run(cmd);
    }
    fx_teardown(&w->f);
    free(w);
    return 0;
}

/* Agent i (key board<i>, 1 slot) dialling endpoint (NULL = the fixture's), inside netns when
 * it is not NULL. */
static void start_agent_at(world *w, int i, const char *endpoint, const char *netns)
{
    char bin[512], key[512], server[512], log[512], hb[16], name[16];
    snprintf(name, sizeof name, "board%d", i);
    ts_bin_path("agent/edgefleet-agent", bin, sizeof bin);
    fx_key_path(&w->f, name, "key", key, sizeof key);
    fx_key_path(&w->f, "coordinator", "pub", server, sizeof server);
    snprintf(log, sizeof log, "%s/agent-%d.log", w->f.dir, i);
    snprintf(hb, sizeof hb, "%d", HB_MS);
    char *argv[32];
    int n = 0;
    if (netns) {
        argv[n++] = "/usr/sbin/ip";
        argv[n++] = "netns";
        argv[n++] = "exec";
        argv[n++] = (char *)netns;
    }
    char *rest[] = {bin,
                    "--coordinator",
                    (char *)(endpoint ? endpoint : w->f.agents_ep),
                    "--server-key",
                    server,
                    "--key",
                    key,
                    "--model",
                    w->model_path,
                    "--slots",
                    "1",
                    "--threads",
                    "1",
                    "--ctx",
                    "1024",
                    "--heartbeat-ms",
                    hb,
                    NULL};
    for (size_t k = 0; k < sizeof rest / sizeof rest[0]; k++)
        argv[n++] = rest[k];
    w->agents[i] = ts_spawn(argv, log);
    assert_true(w->agents[i] > 0);
}

static void start_agent(world *w, int i) { start_agent_at(w, i, NULL, NULL); }

static void wait_fleet(world *w, size_t n)
{
    assert_int_equal(fx_wait_agents(&w->f, "op", n, 20000), (int)n);
    ef_client_t *op = fx_client(&w->f, "op", 5000);
    ef_fleet_status *st = NULL;
    assert_int_equal(ef_client_status(op, &st), 0);
    snprintf(w->model, sizeof w->model, "%s", st->agents[0].models[0].model);
    ef_fleet_status_free(&st);
    ef_client_destroy(&op);
}

/* The index of the agent whose slot is busy now, or -1. */
static int serving_agent(const world *w) { return fx_busy_agent(&w->f, "op", "board%d"); }

static int count_log(const char *path, const char *needle)
{
    FILE *in = fopen(path, "r");
    char line[2048];
    int n = 0;
    while (in && fgets(line, sizeof line, in))
        n += strstr(line, needle) != NULL;
    if (in)
        fclose(in);
    return n;
}

static ef_gen_params greedy(uint32_t max_tokens)
{
    ef_gen_params p = ef_gen_default_params();
    p.temperature = 0;
    p.max_tokens = max_tokens;
    return p;
}

/* Wait for the coordinator to die (the test kills it), then start it again on its ports. */
static void *restart_when_dead(void *arg)
{
    world *w = arg;
    if (ts_wait_exit(w->f.coord_pid, 30000) < 0)
        return NULL;
    ts_sleep_ms(300); /* a real restart takes a moment: the client must wait it out */
    fx_start_coordinator(&w->f, HB_MS, LIVENESS, 16);
    return NULL;
}

/* ---- a fault in the middle of one stream --------------------------------------------------- */

typedef struct {
    world *w;
    uint32_t pieces;      /* callbacks so far */
    uint32_t fault_at[2]; /* after this many pieces, a fault (0 = none) */
    int sig;              /* the fault: this signal to the serving agent, or */
    const char *cmd;      /* this shell command */
    int victim[2];        /* the agents hit, -1 before */
} fault;

static int on_piece(const char *text, size_t len, void *user)
{
    (void)text;
    (void)len;
    fault *ft = user;
    ft->pieces++;
    for (int k = 0; k < 2; k++) {
        if (ft->pieces != ft->fault_at[k])
            continue;
        if (ft->cmd) {
            run(ft->cmd);
            continue;
        }
        ft->victim[k] = serving_agent(ft->w);
        if (ft->victim[k] >= 0)
            kill(ft->w->agents[ft->victim[k]], ft->sig);
    }
    return 0;
}

/* Run one greedy request and hit its agent with sig after a few pieces; returns the result. */
static int stream_with_fault(world *w, int sig, uint32_t max_tokens, fault *ft, ef_result *r)
{
    *ft = (fault){.w = w, .fault_at = {5, 0}, .sig = sig, .victim = {-1, -1}};
    ef_client_t *c = fx_client(&w->f, "cli", 60000);
    ef_gen_params g = greedy(max_tokens);
    int rc = ef_client_generate(c, w->model, "Once upon a time", &g, on_piece, ft, r);
    ef_client_destroy(&c);
    return rc;
}

static void test_sigkill_mid_stream_the_call_completes_on_another_agent(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 16), 0);
    start_agent(w, 0);
    start_agent(w, 1);
    wait_fleet(w, 2);
    fault ft;
    ef_result r;
    assert_int_equal(stream_with_fault(w, SIGKILL, 600, &ft, &r), 0);
    assert_true(ft.victim[0] >= 0);
    if (ts_wait_exit(w->agents[ft.victim[0]], 2000) >= 0)
        w->agents[ft.victim[0]] = 0;
    /* Every token exactly once: the client counted what it got, the agents what they made. */
    assert_int_equal(r.tokens_received, r.completion_tokens);
    assert_true(r.finish == EF_FINISH_LENGTH || r.finish == EF_FINISH_STOP);
    if (r.finish == EF_FINISH_LENGTH)
        assert_int_equal(r.completion_tokens, 600);
    char other[24];
    snprintf(other, sizeof other, "board%d", 1 - ft.victim[0]);
    assert_string_equal(r.agent, other);
    assert_int_equal(count_log(w->f.log, "resuming it elsewhere"), 1);
    assert_int_equal(count_log(w->f.log, "its connection closed; removing it"), 1);
}

static void test_sigstop_past_the_liveness_window_then_sigcont(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 16), 0);
    start_agent(w, 0);
    start_agent(w, 1);
    wait_fleet(w, 2);
    fault ft;
    ef_result r;
    assert_int_equal(stream_with_fault(w, SIGSTOP, 600, &ft, &r), 0);
    assert_true(ft.victim[0] >= 0);
    assert_int_equal(r.tokens_received, r.completion_tokens);
    assert_true(count_log(w->f.log, "dead: silent") >= 1);
    assert_int_equal(count_log(w->f.log, "resuming it elsewhere"), 1);
    /* The frozen board wakes with its old stream's output: fenced off, never relayed. */
    kill(w->agents[ft.victim[0]], SIGCONT);
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 10000), 2);
    ef_client_t *c = fx_client(&w->f, "cli", 30000);
    ef_gen_params g = greedy(32);
    ef_result again;
    assert_int_equal(ef_client_generate(c, w->model, "The cat", &g, NULL, NULL, &again), 0);
    ef_client_destroy(&c);
}

static void test_a_stream_resumed_too_often_fails_naming_every_agent(void **state)
{
    world *w = *state;
    w->f.extra[0] = "--max-resumes";
    w->f.extra[1] = "1";
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 16), 0);
    for (int i = 0; i < 3; i++)
        start_agent(w, i);
    wait_fleet(w, 3);
    /* Kill whoever serves it, twice: the second loss is one more than it may have. */
    fault ft = {.w = w, .fault_at = {5, 60}, .sig = SIGKILL, .victim = {-1, -1}};
    ef_client_t *c = fx_client(&w->f, "cli", 60000);
    ef_gen_params g = greedy(900);
    ef_result r;
    int rc = ef_client_generate(c, w->model, "Once upon a time", &g, on_piece, &ft, &r);
    ef_client_destroy(&c);
    assert_int_equal(rc, EF_EAGENTLOST);
    assert_true(ft.victim[0] >= 0 && ft.victim[1] >= 0 && ft.victim[0] != ft.victim[1]);
    assert_non_null(strstr(r.message, "resumed 1 times already"));
    char first[24];
    snprintf(first, sizeof first, "board%d", ft.victim[0]);
    assert_non_null(strstr(r.message, first));
    assert_true(r.tokens_received >= ft.pieces); /* a piece holds one token or more */
}

/* The coordinator dies mid-call and comes back: libedgefleet sends the call again with what it
 * has, and the new coordinator continues the stream after it. */
static void test_a_coordinator_killed_and_restarted_mid_call_loses_nothing(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 16), 0);
    start_agent(w, 0);
    start_agent(w, 1);
    wait_fleet(w, 2);
    char restart[64];
    snprintf(restart, sizeof restart, "kill -KILL %d", (int)w->f.coord_pid);
    fault ft = {.w = w, .fault_at = {5, 0}, .cmd = restart, .victim = {-1, -1}};
    ef_client_t *c = fx_client(&w->f, "cli", 60000);
    ef_gen_params g = greedy(900);
    ef_result r;
    /* The kill happens inside the stream; the restart from a second thread once it is dead. */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, restart_when_dead, w), 0);
    int rc = ef_client_generate(c, w->model, "Once upon a time", &g, on_piece, &ft, &r);
    pthread_join(t, NULL);
    ef_client_destroy(&c);
    assert_int_equal(rc, 0);
    assert_int_equal(r.tokens_received, r.completion_tokens);
    assert_true(r.resumes >= 1);
    if (r.finish == EF_FINISH_LENGTH)
        assert_int_equal(r.completion_tokens, 900);
}

typedef struct {
    int ended, bad, moved;
} batch_tally;

static int tally_item(size_t index, const char *text, size_t len, const ef_result *r, void *user)
{
    (void)index;
    (void)text;
    (void)len;
    batch_tally *t = user;
    __atomic_add_fetch(&t->ended, 1, __ATOMIC_SEQ_CST);
    if (r->status != 0 || r->tokens_received != r->completion_tokens)
        __atomic_add_fetch(&t->bad, 1, __ATOMIC_SEQ_CST);
    if (r->resumes > 0)
        __atomic_add_fetch(&t->moved, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* A batch across a coordinator restart: its open items are sent again with what they have. */
static void test_a_batch_survives_a_coordinator_restart(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 64), 0);
    start_agent(w, 0);
    start_agent(w, 1);
    wait_fleet(w, 2);
    enum { ITEMS = 12 };
    ef_gen_params g = greedy(700);
    ef_batch_item items[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        items[i] = (ef_batch_item){"Once upon a time", &g};
    batch_tally t = {0};
    ef_client_t *c = fx_client(&w->f, "cli", 120000);
    /* Kill the coordinator once the batch is under way, restart it from a second thread. */
    char kill_cmd[64];
    snprintf(kill_cmd, sizeof kill_cmd, "sleep 0.5; kill -KILL %d", (int)w->f.coord_pid);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, restart_when_dead, w), 0);
    char bg[96];
    snprintf(bg, sizeof bg, "(%s) &", kill_cmd);
    run(bg);
    ef_batch_result br;
    int rc = ef_client_batch(c, w->model, items, ITEMS, tally_item, &t, &br);
    pthread_join(th, NULL);
    ef_client_destroy(&c);
    fprintf(stderr, "batch across a restart: %d ended, %d bad, %d moved\n", t.ended, t.bad,
            t.moved);
    assert_int_equal(rc, 0);
    assert_int_equal(t.ended, ITEMS);
    assert_int_equal(t.bad, 0);
    assert_true(t.moved >= 1);
}

/* ---- a network partition -------------------------------------------------------------------- */

static void
test_a_partitioned_agent_loses_its_stream_to_another_and_rejoins_when_healed(void **state)
{
    world *w = *state;
    snprintf(w->netns, sizeof w->netns, "ef%d", (int)getpid());
    snprintf(w->veth[0], sizeof w->veth[0], "efa%d", (int)getpid() % 100000);
    snprintf(w->veth[1], sizeof w->veth[1], "efb%d", (int)getpid() % 100000);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "ip netns add %1$s && ip link add %2$s type veth peer name %3$s && "
             "ip link set %3$s netns %1$s && ip addr add 10.77.0.1/24 dev %2$s && "
             "ip link set %2$s up && ip netns exec %1$s ip addr add 10.77.0.2/24 dev %3$s && "
             "ip netns exec %1$s ip link set %3$s up && ip netns exec %1$s ip link set lo up",
             w->netns, w->veth[0], w->veth[1]);
    assert_int_equal(system(cmd), 0); /* needs root and iproute2, as CI has */
    char bind_ep[64], remote_ep[64];
    int port = atoi(strrchr(w->f.agents_ep, ':') + 1);
    snprintf(bind_ep, sizeof bind_ep, "tcp://*:%d", port);
    snprintf(remote_ep, sizeof remote_ep, "tcp://10.77.0.1:%d", port);
    w->f.extra[0] = "--agents-endpoint";
    w->f.extra[1] = bind_ep;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 16), 0);
    start_agent_at(w, 0, remote_ep, w->netns); /* behind the cable we will pull */
    wait_fleet(w, 1);
    start_agent(w, 1);
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 20000), 2);
    /* Both idle: the tie goes to the agent registered first, board0, behind the cable. */
    ef_client_t *c = fx_client(&w->f, "cli", 60000);
    ef_gen_params g = greedy(600);
    char pull[96];
    snprintf(pull, sizeof pull, "ip link set %s down", w->veth[0]);
    fault ft = {.w = w, .fault_at = {5, 0}, .cmd = pull, .victim = {-1, -1}};
    ef_result r;
    int rc = ef_client_generate(c, w->model, "Once upon a time", &g, on_piece, &ft, &r);
    assert_int_equal(rc, 0);
    assert_int_equal(r.tokens_received, r.completion_tokens);
    assert_string_equal(r.agent, "board1");
    assert_int_equal(count_log(w->f.log, "resuming it elsewhere"), 1);
    snprintf(cmd, sizeof cmd, "ip link set %s up", w->veth[0]);
    run(cmd);
    assert_int_equal(fx_wait_agents(&w->f, "op", 2, 15000), 2); /* healed: it is back */
    ef_client_destroy(&c);
}

/* ---- a storm -------------------------------------------------------------------------------- */

#define STORM_THREADS  6
#define STORM_REQUESTS 200
#define STORM_TOKENS   160

typedef struct {
    world *w;
    int next; /* requests taken (under mu) */
    int failed, bad_counts, done;
    pthread_mutex_t mu;
    volatile int stop;
} storm;

static void *storm_worker(void *arg)
{
    storm *s = arg;
    ef_client_t *c = fx_client(&s->w->f, "cli", 120000);
    ef_gen_params g = greedy(STORM_TOKENS);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int mine = s->next < STORM_REQUESTS ? s->next++ : -1;
        pthread_mutex_unlock(&s->mu);
        if (mine < 0)
            break;
        ef_result r;
        int rc = ef_client_generate(c, s->w->model, "Once upon a time", &g, NULL, NULL, &r);
        pthread_mutex_lock(&s->mu);
        s->done++;
        if (rc != 0) {
            s->failed++;
            fprintf(stderr, "storm request %d failed: %s: %s\n", mine, ef_err_name(rc), r.message);
        } else if (r.tokens_received != r.completion_tokens ||
                   (r.finish == EF_FINISH_LENGTH && r.completion_tokens != STORM_TOKENS)) {
            s->bad_counts++;
        }
        pthread_mutex_unlock(&s->mu);
    }
    ef_client_destroy(&c);
    return NULL;
}

static void test_a_storm_of_kills_and_restarts_loses_no_call_and_no_token(void **state)
{
    world *w = *state;
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, LIVENESS, 256), 0);
    for (int i = 0; i < N_AGENTS; i++)
        start_agent(w, i);
    wait_fleet(w, N_AGENTS);
    storm s = {.w = w};
    pthread_mutex_init(&s.mu, NULL);
    pthread_t t[STORM_THREADS];
    for (int i = 0; i < STORM_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, storm_worker, &s), 0);
    unsigned seed = (unsigned)time(NULL);
    int kills = 0;
    for (;;) {
        pthread_mutex_lock(&s.mu);
        int done = s.done;
        pthread_mutex_unlock(&s.mu);
        if (done >= STORM_REQUESTS)
            break;
        ts_sleep_ms(1000 + (int)(rand_r(&seed) % 2000)); /* every 1-3 s */
        int victim = (int)(rand_r(&seed) % N_AGENTS);
        if (w->agents[victim] > 0) {
            kill(w->agents[victim], SIGKILL);
            ts_wait_exit(w->agents[victim], 2000);
            kills++;
            start_agent(w, victim);
        }
    }
    for (int i = 0; i < STORM_THREADS; i++)
        pthread_join(t[i], NULL);
    int resumes = count_log(w->f.log, "resuming it elsewhere");
    fprintf(stderr, "storm: %d calls, %d kills, %d resumes, %d failed, %d with wrong counts\n",
            STORM_REQUESTS, kills, resumes, s.failed, s.bad_counts);
    assert_true(kills >= 1);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.bad_counts, 0);
    pthread_mutex_destroy(&s.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_mid_stream_the_call_completes_on_another_agent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigstop_past_the_liveness_window_then_sigcont, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stream_resumed_too_often_fails_naming_every_agent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_coordinator_killed_and_restarted_mid_call_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_survives_a_coordinator_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_partitioned_agent_loses_its_stream_to_another_and_rejoins_when_healed, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_storm_of_kills_and_restarts_loses_no_call_and_no_token, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
