/* agent_config.c on INI files written to a temp dir: a full config parses to the right values;
 * each mistake (bad number, empty value, endpoint that is not tcp://HOST:PORT, duplicate key or
 * section) is EF_ECONFIG (EF_ENOENT for a missing file) with a message naming file:line and the
 * key or section; a FIFO or device is refused without blocking; --model paths name models after
 * their file stem and refuse duplicates. */
#include "agent_config.h"
#include "test_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* Seconds before SIGALRM ends a test that could block on a FIFO (old code did, forever). */
#define BLOCK_LIMIT_S 10

typedef struct {
    char dir[256];
    char path[512]; /* dir/agent.ini */
    agent_config cfg;
    ef_errmsg em;
} fixture;

static int setup(void **state)
{
    static fixture fx;
    memset(&fx, 0, sizeof fx);
    if (ts_tempdir(fx.dir, sizeof fx.dir) != 0)
        return -1;
    snprintf(fx.path, sizeof fx.path, "%s/agent.ini", fx.dir);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    agent_config_free(&fx->cfg);
    ts_rmtree(fx->dir);
    return 0;
}

static int load(fixture *fx, const char *text)
{
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return agent_config_load(&fx->cfg, fx->path, &fx->em);
}

/* The message starts with "<path>:<line>: " and contains what. */
static void expect_error_at(fixture *fx, int line, const char *what)
{
    char want[600];
    snprintf(want, sizeof want, "%s:%d: ", fx->path, line);
    if (strncmp(fx->em.msg, want, strlen(want)) != 0 || !strstr(fx->em.msg, what))
        fail_msg("message \"%s\", want \"%s...%s\"", fx->em.msg, want, what);
}

static void test_a_full_config_parses_to_its_values(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "; comment\n"
                              "[agent]\n"
                              "name = board-7\n"
                              "coordinator = tcp://10.0.0.1:7701\n"
                              "server_key = /etc/edgefleet/coord.pub\n"
                              "key = /etc/edgefleet/agent.key\n"
                              "heartbeat_ms = 500\n"
                              "telemetry_ms = 2500\n"
                              "drain_timeout_ms = 12000\n"
                              "log_level = debug\n"
                              "\n"
                              "[model qwen]\n"
                              "path = /models/qwen.gguf\n"
                              "ctx = 4096\n"
                              "slots = 4\n"
                              "threads = 8\n"
                              "batch = 512\n"
                              "chat_template = chatml\n"
                              "\n"
                              "[model sim]\n"
                              "backend = simulated\n"
                              "tokens_per_s = 12.5\n"),
                     0);
    agent_config *c = &fx->cfg;
    assert_string_equal(c->name, "board-7");
    assert_string_equal(c->coordinator, "tcp://10.0.0.1:7701");
    assert_string_equal(c->server_key, "/etc/edgefleet/coord.pub");
    assert_string_equal(c->key, "/etc/edgefleet/agent.key");
    assert_int_equal(c->heartbeat_ms, 500);
    assert_int_equal(c->telemetry_ms, 2500);
    assert_int_equal(c->drain_timeout_ms, 12000);
    assert_true(c->has_log_level);
    assert_int_equal(c->level, LOG_DEBUG);
    assert_int_equal(c->n_models, 2);
    const backend_params *q = &c->models[0], *s = &c->models[1];
    assert_string_equal(q->name, "qwen");
    assert_int_equal(q->kind, BACKEND_LLAMA);
    assert_string_equal(q->path, "/models/qwen.gguf");
    assert_int_equal(q->n_ctx, 4096);
    assert_int_equal(q->n_slots, 4);
    assert_int_equal(q->n_threads, 8);
    assert_int_equal(q->n_batch, 512);
    assert_string_equal(q->chat_template, "chatml");
    assert_string_equal(s->name, "sim");
    assert_int_equal(s->kind, BACKEND_SIMULATED);
    assert_null(s->path); /* the simulator needs none */
    assert_true(s->sim_tokens_per_s == 12.5);
    assert_int_equal(s->n_ctx, 0); /* not set: defaults apply later */

    /* Command-line numbers fill only what the file left unset. */
    agent_config_defaults(c, 2048, 2, 3);
    assert_int_equal(q->n_ctx, 4096);
    assert_int_equal(q->n_slots, 4);
    assert_int_equal(s->n_ctx, 2048);
    assert_int_equal(s->n_slots, 2);
    assert_int_equal(s->n_threads, 3);
}

static void test_an_unknown_key_names_file_line_and_key(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[agent]\nname = a\nthread = 4\n"), EF_ECONFIG);
    expect_error_at(fx, 3, "unknown key \"thread\"");
    agent_config_free(&fx->cfg);
    assert_int_equal(load(fx, "[model m]\npath = /m.gguf\n\nthread = 4\n"), EF_ECONFIG);
    expect_error_at(fx, 4, "unknown key \"thread\" in [model m]");
}

static void test_an_unknown_section_names_file_line_and_section(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[agent]\nname = a\n[agnet]\nkey = k\n"), EF_ECONFIG);
    expect_error_at(fx, 4, "unknown section [agnet]");
    agent_config_free(&fx->cfg);
    assert_int_equal(load(fx, "[model]\npath = /m.gguf\n"), EF_ECONFIG); /* no name */
    expect_error_at(fx, 2, "unknown section [model]");
    agent_config_free(&fx->cfg);
    assert_int_equal(load(fx, "path = /m.gguf\n"), EF_ECONFIG); /* before any section */
    expect_error_at(fx, 1, "unknown section");
}

static void test_a_bad_number_names_the_key_and_its_range(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *text;
        int line;
        const char *what;
    } cases[] = {
        {"[model m]\npath = /m\nctx = lots\n", 3, "bad value \"lots\" for \"ctx\""},
        {"[model m]\npath = /m\nctx = 2048000\n", 3, "bad value \"2048000\" for \"ctx\""},
        {"[model m]\npath = /m\nthreads = 4x\n", 3, "bad value \"4x\" for \"threads\""},
        {"[model m]\npath = /m\nbatch =\n", 3, "bad value \"\" for \"batch\""},
        {"[agent]\nheartbeat_ms = 5\n", 2, "bad value \"5\" for \"heartbeat_ms\""},
        {"[agent]\ntelemetry_ms = 50\n", 2, "bad value \"50\" for \"telemetry_ms\""},
        {"[agent]\nlog_level = loud\n", 2, "bad value \"loud\" for \"log_level\""},
        {"[agent]\ndrain_timeout_ms = soon\n", 2, "bad value \"soon\" for \"drain_timeout_ms\""},
        {"[model m]\nbackend = cuda\n", 2, "bad value \"cuda\" for \"backend\""},
        {"[model m]\nbackend = simulated\ntokens_per_s = -3\n", 3,
         "bad value \"-3\" for \"tokens_per_s\""},
        {"[model m]\nbackend = simulated\ntokens_per_s = nan\n", 3,
         "bad value \"nan\" for \"tokens_per_s\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load(fx, cases[i].text), EF_ECONFIG);
        expect_error_at(fx, cases[i].line, cases[i].what);
        agent_config_free(&fx->cfg);
    }
}

static void test_zero_or_negative_slots_are_refused(void **state)
{
    fixture *fx = *state;
    static const char *const values[] = {"0", "-1", "-4294967295", "65", "99999999999999999999"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char text[128], what[64];
        snprintf(text, sizeof text, "[model m]\npath = /m.gguf\nslots = %s\n", values[i]);
        snprintf(what, sizeof what, "bad value \"%s\" for \"slots\" (an integer 1..64)", values[i]);
        assert_int_equal(load(fx, text), EF_ECONFIG);
        expect_error_at(fx, 3, what);
        agent_config_free(&fx->cfg);
    }
    assert_int_equal(load(fx, "[model m]\npath = /m.gguf\nslots = 64\n"), 0);
    assert_int_equal(fx->cfg.models[0].n_slots, 64);
}

static void test_a_llama_model_without_a_path_is_refused(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[model m]\nctx = 512\n"), EF_ECONFIG);
    char want[600];
    snprintf(want, sizeof want, "%s: [model m] has no \"path\"", fx->path);
    assert_string_equal(fx->em.msg, want);
}

static void test_a_model_section_given_twice_is_refused(void **state)
{
    fixture *fx = *state;
    /* Not merged: the second section would silently replace the first one's path. */
    assert_int_equal(load(fx, "[model m]\npath = /a.gguf\n[model n]\npath = /n.gguf\n"
                              "[model m]\npath = /b.gguf\n"),
                     EF_ECONFIG);
    expect_error_at(fx, 5, "duplicate section [model m] (first at line 1)");
    agent_config_free(&fx->cfg);
    /* Also right after itself. */
    assert_int_equal(load(fx, "[model m]\npath = /a.gguf\n\n[model m]\nctx = 64\n"), EF_ECONFIG);
    expect_error_at(fx, 4, "duplicate section [model m] (first at line 1)");
    agent_config_free(&fx->cfg);
    /* Keys of one section are not a duplicate, nor is a value continued on the next line. */
    assert_int_equal(load(fx, "[model m]\npath = /a.gguf\nctx = 64\n"
                              "chat_template = a\n  [b]\n"),
                     0);
    assert_string_equal(fx->cfg.models[0].chat_template, "[b]"); /* inih: the last line wins */
}

static void test_the_first_error_is_reported_with_its_own_line(void **state)
{
    fixture *fx = *state;
    /* A line inih cannot parse comes before a bad key: the message is about line 2. */
    assert_int_equal(load(fx, "[agent]\nno equals sign here\nthread = 4\n"), EF_ECONFIG);
    expect_error_at(fx, 2, "syntax error");
    agent_config_free(&fx->cfg);
    /* Two bad keys: the first one is named. */
    assert_int_equal(load(fx, "[agent]\nthread = 4\nport = 7\n"), EF_ECONFIG);
    expect_error_at(fx, 2, "unknown key \"thread\"");
}

static void test_a_missing_file_is_enoent_with_its_path(void **state)
{
    fixture *fx = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/nope.ini", fx->dir);
    assert_int_equal(agent_config_load(&fx->cfg, path, &fx->em), EF_ENOENT);
    assert_non_null(strstr(fx->em.msg, path));
    assert_int_equal(fx->cfg.n_models, 0);
}

static void test_model_paths_are_named_after_their_file_stem(void **state)
{
    fixture *fx = *state;
    agent_config *c = &fx->cfg;
    assert_int_equal(
        agent_config_add_model(c, "/models/qwen2-0.5b.Q4_K_M.gguf", BACKEND_LLAMA, &fx->em), 0);
    assert_int_equal(agent_config_add_model(c, "tiny", BACKEND_SIMULATED, &fx->em), 0);
    assert_int_equal(c->n_models, 2);
    assert_string_equal(c->models[0].name, "qwen2-0.5b.Q4_K_M");
    assert_string_equal(c->models[0].path, "/models/qwen2-0.5b.Q4_K_M.gguf");
    assert_int_equal(c->models[0].kind, BACKEND_LLAMA);
    assert_string_equal(c->models[1].name, "tiny");
    assert_int_equal(c->models[1].kind, BACKEND_SIMULATED);

    assert_int_equal(agent_config_add_model(c, "/other/dir/tiny.gguf", BACKEND_LLAMA, &fx->em),
                     EF_ECONFIG);
    assert_non_null(strstr(fx->em.msg, "/other/dir/tiny.gguf"));
    assert_non_null(strstr(fx->em.msg, "\"tiny\" exists"));
    assert_int_equal(agent_config_add_model(c, "/models/", BACKEND_LLAMA, &fx->em), EF_ECONFIG);
    assert_non_null(strstr(fx->em.msg, "no file name"));
    assert_int_equal(c->n_models, 2);
}

static void test_a_model_path_clashing_with_a_config_section_is_refused(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[model tiny]\npath = /a/tiny.gguf\n"), 0);
    assert_int_equal(agent_config_add_model(&fx->cfg, "/b/tiny.gguf", BACKEND_LLAMA, &fx->em),
                     EF_ECONFIG);
    assert_non_null(strstr(fx->em.msg, "\"tiny\" exists"));
    assert_int_equal(fx->cfg.n_models, 1);
    assert_string_equal(fx->cfg.models[0].path, "/a/tiny.gguf");
}

static void test_more_than_the_model_limit_is_refused(void **state)
{
    fixture *fx = *state;
    char text[4096] = "";
    size_t len = 0;
    for (int i = 0; i <= AGENT_MAX_MODELS; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "[model m%d]\npath = /m%d\n", i, i);
    assert_int_equal(load(fx, text), EF_ECONFIG);
    expect_error_at(fx, 2 * AGENT_MAX_MODELS + 2, "more than 16 models");
    assert_int_equal(fx->cfg.n_models, AGENT_MAX_MODELS);
    assert_int_equal(agent_config_add_model(&fx->cfg, "/x.gguf", BACKEND_LLAMA, &fx->em),
                     EF_ECONFIG);
}

static void test_an_empty_value_is_refused_with_its_line(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *text;
        int line;
        const char *what;
    } cases[] = {
        {"[agent]\nname =\n", 2, "empty value for \"name\""},
        {"[agent]\nname = a\ncoordinator =\n", 3, "empty value for \"coordinator\""},
        {"[agent]\nserver_key = ; the coordinator's\n", 2, "empty value for \"server_key\""},
        {"[agent]\n\nkey =   \n", 3, "empty value for \"key\""},
        {"[model m]\npath =\n", 2, "empty value for \"path\""},
        {"[model m]\npath = /m\nchat_template =\n", 3, "empty value for \"chat_template\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load(fx, cases[i].text), EF_ECONFIG);
        expect_error_at(fx, cases[i].line, cases[i].what);
        agent_config_free(&fx->cfg);
    }
}

static void test_a_coordinator_that_is_not_tcp_host_port_is_refused(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *endpoint, *what;
    } bad[] = {
        {"10.0.0.1:7701", "does not start with tcp://"},
        {"ipc:///run/edgefleet.sock", "does not start with tcp://"},
        {"tcp://10.0.0.1", "has no port"},
        {"tcp://[::1]", "has no port"},
        {"tcp://:7701", "bad host \"\""},
        {"tcp://coord inator:7701", "bad host"},
        {"tcp://10.0.0.1:0", "bad port \"0\""},
        {"tcp://10.0.0.1:70000", "bad port \"70000\""},
        {"tcp://10.0.0.1:77o1", "bad port \"77o1\""},
        {"tcp://10.0.0.1:-1", "bad port"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], what[128];
        snprintf(text, sizeof text, "[agent]\nname = a\ncoordinator = %s\n", bad[i].endpoint);
        snprintf(what, sizeof what, "bad value for \"coordinator\": ");
        assert_int_equal(load(fx, text), EF_ECONFIG);
        expect_error_at(fx, 3, what);
        if (!strstr(fx->em.msg, bad[i].what))
            fail_msg("%s: message \"%s\", want \"%s\"", bad[i].endpoint, fx->em.msg, bad[i].what);
        agent_config_free(&fx->cfg);
    }
    static const char *const good[] = {"tcp://coordinator.plant.lan:7701", "tcp://10.0.0.1:1",
                                       "tcp://[fe80::1%eth0]:65535", "tcp://*:7701"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "[agent]\ncoordinator = %s\n", good[i]);
        if (load(fx, text) != 0)
            fail_msg("%s refused: %s", good[i], fx->em.msg);
        assert_string_equal(fx->cfg.coordinator, good[i]);
        agent_config_free(&fx->cfg);
    }
}

static void test_a_key_given_twice_in_one_section_is_refused(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[agent]\nname = a\nkey = /k\nname = b\n"), EF_ECONFIG);
    expect_error_at(fx, 4, "duplicate key \"name\" in [agent] (first at line 2)");
    agent_config_free(&fx->cfg);
    assert_int_equal(load(fx, "[model m]\npath = /a.gguf\nctx = 64\n\npath = /b.gguf\n"),
                     EF_ECONFIG);
    expect_error_at(fx, 5, "duplicate key \"path\" in [model m] (first at line 2)");
    agent_config_free(&fx->cfg);
    /* The same key in two sections is no duplicate. */
    assert_int_equal(load(fx, "[model a]\npath = /a.gguf\n[model b]\npath = /b.gguf\n"), 0);
    assert_int_equal(fx->cfg.n_models, 2);
}

static void test_a_second_agent_section_is_refused(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[agent]\nname = a\n[model m]\npath = /m\n\n[agent]\nkey = /k\n"),
                     EF_ECONFIG);
    expect_error_at(fx, 6, "duplicate section [agent] (first at line 1)");
}

static void test_threads_0_means_all_cpus_and_is_kept(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[model all]\npath = /a.gguf\nthreads = 0\n"
                              "[model some]\npath = /s.gguf\n"),
                     0);
    agent_config *c = &fx->cfg;
    assert_int_equal(c->models[0].n_threads, 0); /* the backend reads 0 as online CPUs */
    /* --threads 2 fills the model that did not say, not the one that asked for all CPUs. */
    agent_config_defaults(c, 0, 0, 2);
    assert_int_equal(c->models[0].n_threads, 0);
    assert_int_equal(c->models[1].n_threads, 2);
}

static void test_the_line_of_each_chat_template_is_recorded(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[model a]\npath = /a.gguf\n\nchat_template = chatml\n"
                              "[model b]\npath = /b.gguf\n"),
                     0);
    assert_int_equal(fx->cfg.origins[0].chat_template_line, 4);
    assert_int_equal(fx->cfg.origins[1].chat_template_line, 0);
    assert_int_equal(fx->cfg.origins[1].section_line, 5);
}

static void test_a_fifo_or_device_as_config_is_refused_at_once(void **state)
{
    fixture *fx = *state;
    alarm(BLOCK_LIMIT_S);
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.ini", fx->dir);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(agent_config_load(&fx->cfg, fifo, &fx->em), EF_ECONFIG);
    char want[1300];
    snprintf(want, sizeof want, "%s: is a FIFO, not a regular file; refusing to read it", fifo);
    assert_string_equal(fx->em.msg, want);
    /* /dev/zero has no line ends: inih would read it forever. */
    assert_int_equal(agent_config_load(&fx->cfg, "/dev/zero", &fx->em), EF_ECONFIG);
    assert_non_null(strstr(fx->em.msg, "/dev/zero: is a character device"));
    assert_int_equal(agent_config_load(&fx->cfg, fx->dir, &fx->em), EF_ECONFIG);
    assert_non_null(strstr(fx->em.msg, "is a directory"));
    alarm(0);
    assert_int_equal(fx->cfg.n_models, 0);
}

static void test_the_example_deploy_config_loads(void **state)
{
    fixture *fx = *state;
    /* deploy/agent.ini is what operators copy: it must say what the parser accepts. */
    const char *src = getenv("EDGEFLEET_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/deploy/agent.ini", src && *src ? src : ".");
    if (agent_config_load(&fx->cfg, path, &fx->em) != 0)
        fail_msg("%s", fx->em.msg);
    assert_null(fx->cfg.name); /* no name: the fleet names the board after its key */
    assert_string_equal(fx->cfg.key, "/etc/edgefleet/keys/board-7.key");
    assert_int_equal(fx->cfg.n_models, 2);
}

static void test_deterministic_is_true_or_false_per_model(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load(fx, "[model d]\npath = /d.gguf\ndeterministic = true\n"
                              "[model n]\npath = /n.gguf\ndeterministic = false\n"
                              "[model u]\npath = /u.gguf\n"),
                     0);
    assert_int_equal(fx->cfg.models[0].deterministic, 1);
    assert_int_equal(fx->cfg.models[1].deterministic, 0);
    assert_int_equal(fx->cfg.models[2].deterministic, 0); /* off unless asked: it costs tokens/s */
    agent_config_free(&fx->cfg);
    /* Only the two words: "yes" or "1" could be a typo for something else, so say so. */
    assert_int_equal(load(fx, "[model d]\npath = /d.gguf\n\ndeterministic = yes\n"), EF_ECONFIG);
    expect_error_at(fx, 4, "bad value \"yes\" for \"deterministic\" (true|false)");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_full_config_parses_to_its_values),
        T(test_an_unknown_key_names_file_line_and_key),
        T(test_an_unknown_section_names_file_line_and_section),
        T(test_a_bad_number_names_the_key_and_its_range),
        T(test_zero_or_negative_slots_are_refused),
        T(test_a_llama_model_without_a_path_is_refused),
        T(test_a_model_section_given_twice_is_refused),
        T(test_the_first_error_is_reported_with_its_own_line),
        T(test_a_missing_file_is_enoent_with_its_path),
        T(test_model_paths_are_named_after_their_file_stem),
        T(test_a_model_path_clashing_with_a_config_section_is_refused),
        T(test_more_than_the_model_limit_is_refused),
        T(test_an_empty_value_is_refused_with_its_line),
        T(test_a_coordinator_that_is_not_tcp_host_port_is_refused),
        T(test_a_key_given_twice_in_one_section_is_refused),
        T(test_a_second_agent_section_is_refused),
        T(test_threads_0_means_all_cpus_and_is_kept),
        T(test_the_line_of_each_chat_template_is_recorded),
        T(test_a_fifo_or_device_as_config_is_refused_at_once),
        T(test_the_example_deploy_config_loads),
        T(test_deterministic_is_true_or_false_per_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
