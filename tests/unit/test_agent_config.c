/* agent_config.c on INI files written to a temp dir: a full config parses to the right values;
 * each mistake is EF_ECONFIG (EF_ENOENT for a missing file) with a message naming file:line and
 * the key or section; --model paths name models after their file stem and refuse duplicates. */
#include "agent_config.h"
#include "test_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

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
    expect_error_at(fx, 6, "duplicate section [model m]");
    agent_config_free(&fx->cfg);
    /* Also right after itself. */
    assert_int_equal(load(fx, "[model m]\npath = /a.gguf\n\n[model m]\nctx = 64\n"), EF_ECONFIG);
    expect_error_at(fx, 5, "duplicate section [model m]");
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
