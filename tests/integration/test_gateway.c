/* The coordinator's OpenAI HTTP gateway (--http) against a live fleet: a real coordinator, two
 * real edgefleet-agent processes on the real model (stories260K, with the chatml template so
 * chat works), driven with the curl command line and with OpenAI's own Node client library
 * (npm `openai`, installed by scripts/setup.sh). A second, small fleet checks what needs its own
 * settings: TLS on a non-loopback listen with a certificate made here, no board (503), a client
 * over its limit (429), and a client that hangs up mid-stream freeing its slot. */
#include "cjson/cJSON.h"
#include "edgefleet.h"
#include "fleet_fixture.h"
#include "test_support.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define HB_MS    300
#define N_AGENTS 2
#define SLOTS    4
#define KEY_A    "sk-alice-0123456789abcdefghij"
#define KEY_B    "sk-bob-0123456789abcdefghijkl"
#define MODEL    "stories260K"

typedef struct gw {
    fleet_fixture f;
    pid_t agents[N_AGENTS + 1];
    char model_path[512];
    char api_keys[400]; /* f.dir/api-keys */
    char base[64];      /* http://127.0.0.1:PORT */
    char js_dir[512];   /* where setup.sh put the openai npm package */
    char js_script[512];
    struct gw *inner; /* the small fleet of the last test, while it runs */
    pid_t slow;       /* its slow reader */
} gw;

/* ---- small helpers ------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* The whole of a file, NUL-terminated (caller frees), or NULL. */
static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = s ? fread(s, 1, (size_t)n, fp) : 0;
    if (s)
        s[got] = '\0';
    fclose(fp);
    return s;
}

/* Run a shell command, its stdout into a new string (caller frees). *status = exit status. */
static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024)
            out = realloc(out, cap *= 2);
    }
    out[len] = '\0';
    int st = pclose(p);
    if (status)
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

typedef struct {
    int status;
    char *body;
    char *headers; /* raw response headers, lower-cased names as h2o sends them */
} http_resp;

static void resp_free(http_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

/* curl with `args` (already shell-quoted) and the dir's body/header files. */
static http_resp curl(const gw *w, const char *fmt, ...)
{
    char args[2048], cmd[3072], body[400], hdrs[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(body, sizeof body, "%s/resp.body", w->f.dir);
    snprintf(hdrs, sizeof hdrs, "%s/resp.headers", w->f.dir);
    snprintf(cmd, sizeof cmd, "curl -s -S -o '%s' -D '%s' -w '%%{http_code}' %s", body, hdrs, args);
    int rc = 0;
    char *out = run(cmd, &rc);
    http_resp r = {.status = atoi(out), .body = read_file(body), .headers = read_file(hdrs)};
    free(out);
    if (!r.body)
        r.body = strdup("");
    if (!r.headers)
        r.headers = strdup("");
    return r;
}

/* A request body in the dir's file `name`, for curl -d @file. Returns the path in out. */
static const char *body_file(const gw *w, const char *name, const char *json, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", w->f.dir, name);
    write_file(out, json);
    return out;
}

static cJSON *parse_ok(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fprintf(stderr, "not JSON: %.300s\n", text);
    assert_non_null(j);
    return j;
}

/* The item at "a.b.0.c" (objects by name, arrays by index), or NULL. */
static const cJSON *jat(const cJSON *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(cur, atoi(tok))
                                           : cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cur;
}

static const char *jstr(const cJSON *o, const char *path)
{
    const cJSON *it = jat(o, path);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *path)
{
    const cJSON *it = jat(o, path);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

/* The SSE body of a streamed answer: every data event parsed, text joined, the last finish
 * reason, the usage chunk's completion_tokens, and whether [DONE] came last. */
typedef struct {
    char text[8192];
    char finish[16];
    char role[16];
    int events, done_last, completion_tokens, errors;
} sse_result;

static sse_result parse_sse(const char *body, int chat)
{
    sse_result s = {.completion_tokens = -1};
    const char *p = body;
    while ((p = strstr(p, "data: ")) != NULL) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        if (strncmp(p, "[DONE]", 6) == 0) {
            s.done_last = end[2] == '\0';
            p = end;
            continue;
        }
        char *ev = strndup(p, (size_t)(end - p));
        cJSON *j = parse_ok(ev);
        s.events++;
        if (cJSON_GetObjectItem(j, "error"))
            s.errors++;
        const char *t = jstr(j, chat ? "choices.0.delta.content" : "choices.0.text");
        if (t)
            strncat(s.text, t, sizeof s.text - strlen(s.text) - 1);
        const char *role = jstr(j, "choices.0.delta.role");
        if (role)
            snprintf(s.role, sizeof s.role, "%s", role);
        const char *f = jstr(j, "choices.0.finish_reason");
        if (f)
            snprintf(s.finish, sizeof s.finish, "%s", f);
        if (jnum(j, "usage.completion_tokens") >= 0)
            s.completion_tokens = (int)jnum(j, "usage.completion_tokens");
        cJSON_Delete(j);
        free(ev);
        p = end;
    }
    return s;
}

static const char *auth_a(void) { return "-H 'Authorization: Bearer " KEY_A "'"; }

/* ---- the fleet ----------------------------------------------------------------------------- */

static void start_agent(gw *w, int i, const char *key, int slots)
{
    char ini[512], text[2560], bin[512], log[512], keyp[512], server[512];
    snprintf(ini, sizeof ini, "%s/agent-%s.ini", w->f.dir, key);
    fx_key_path(&w->f, key, "key", keyp, sizeof keyp);
    fx_key_path(&w->f, "coordinator", "pub", server, sizeof server);
    snprintf(text, sizeof text,
             "[agent]\ncoordinator = %s\nserver_key = %s\nkey = %s\nheartbeat_ms = "
             "%d\ntelemetry_ms = 300\n"
             "[model " MODEL "]\npath = %s\nctx = 8192\nslots = %d\nthreads = 1\n"
             "chat_template = chatml\n",
             w->f.agents_ep, server, keyp, HB_MS, w->model_path, slots);
    write_file(ini, text);
    ts_bin_path("agent/edgefleet-agent", bin, sizeof bin);
    snprintf(log, sizeof log, "%s/agent-%s.log", w->f.dir, key);
    char *argv[] = {bin, "--config", ini, NULL};
    w->agents[i] = ts_spawn(argv, log);
    assert_true(w->agents[i] > 0);
}

static int wait_health(const gw *w, const char *curl_opts, const char *base, int want,
                       int timeout_ms)
{
    int got = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        http_resp r = curl(w, "%s '%s/health'", curl_opts, base);
        got = r.status;
        resp_free(&r);
        if (got == want)
            return got;
        ts_sleep_ms(100);
    }
    return got;
}

static int setup(void **state)
{
    gw *w = calloc(1, sizeof *w);
    if (!w || ts_model_path(MODEL ".gguf", w->model_path, sizeof w->model_path) != 0) {
        fprintf(stderr, "test_gateway: model %s.gguf missing\n", MODEL);
        return -1;
    }
    const char *cache = getenv("EDGEFLEET_CACHE");
    const char *home = getenv("HOME");
    if (cache)
        snprintf(w->js_dir, sizeof w->js_dir, "%s/openai-js-6.30.1", cache);
    else
        snprintf(w->js_dir, sizeof w->js_dir, "%s/.cache/edgefleet/openai-js-6.30.1",
                 home ? home : "/root");
    snprintf(w->js_script, sizeof w->js_script, "%s/tests/integration/gateway_openai_client.cjs",
             getenv("EDGEFLEET_SOURCE_DIR") ? getenv("EDGEFLEET_SOURCE_DIR") : ".");
    if (fx_setup(&w->f) != 0 || fx_add_key(&w->f, "op", "operators", NULL) ||
        fx_add_key(&w->f, "board0", "agents", NULL) || fx_add_key(&w->f, "board1", "agents", NULL))
        return -1;
    snprintf(w->api_keys, sizeof w->api_keys, "%s/api-keys", w->f.dir);
    write_file(w->api_keys, "# name key\nalice " KEY_A "\nbob " KEY_B "\n");
    int port = ts_free_port();
    static char listen[64]; /* the fixture keeps pointers to its options */
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(w->base, sizeof w->base, "http://127.0.0.1:%d", port);
    w->f.orphan_grace_ms = 1000;
    const char *extra[] = {"--http",
                           listen,
                           "--http-api-keys",
                           w->api_keys,
                           "--http-max-body",
                           "65536",
                           "--client-stall-ms",
                           "1500",
                           NULL};
    memcpy(w->f.extra, extra, sizeof extra);
    if (fx_start_coordinator(&w->f, HB_MS, 3, 256) != 0)
        return -1;
    *state = w;
    for (int i = 0; i < N_AGENTS; i++) {
        char key[16];
        snprintf(key, sizeof key, "board%d", i);
        start_agent(w, i, key, SLOTS);
    }
    if (fx_wait_agents(&w->f, "op", N_AGENTS, 30000) != N_AGENTS ||
        wait_health(w, "", w->base, 200, 5000) != 200) {
        fprintf(stderr, "test_gateway: the fleet did not come up (logs in %s)\n", w->f.dir);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    gw *w = *state;
    if (!w)
        return 0;
    if (w->inner) { /* the small fleet's test failed half-way: kill what it started */
        ts_kill_wait(w->slow, SIGKILL, 1000);
        ts_kill_wait(w->inner->agents[0], SIGKILL, 1000);
        fx_teardown(&w->inner->f);
        free(w->inner);
    }
    for (int i = 0; i <= N_AGENTS; i++)
        if (w->agents[i] > 0)
            ts_kill_wait(w->agents[i], SIGTERM, 3000);
    fx_teardown(&w->f);
    free(w);
    return 0;
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void test_completions_whole_and_streamed_give_the_same_greedy_text(void **state)
{
    gw *w = *state;
    char b1[512], b2[512];
    body_file(w, "c1.json",
              "{\"model\":\"" MODEL "\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
              "\"temperature\":0,\"unknown_field\":{\"ignored\":true}}",
              b1, sizeof b1);
    http_resp r = curl(w, "%s -d @'%s' '%s/v1/completions'", auth_a(), b1, w->base);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "x-edgefleet-agent: board"));
    cJSON *j = parse_ok(r.body);
    assert_string_equal(jstr(j, "object"), "text_completion");
    assert_true(strncmp(jstr(j, "id"), "cmpl-", 5) == 0);
    assert_string_equal(jstr(j, "model"), MODEL);
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "length");
    assert_int_equal((int)jnum(j, "usage.completion_tokens"), 24);
    assert_true(jnum(j, "usage.prompt_tokens") > 0);
    assert_int_equal((int)jnum(j, "usage.total_tokens"),
                     (int)(jnum(j, "usage.prompt_tokens") + jnum(j, "usage.completion_tokens")));
    char whole[4096];
    snprintf(whole, sizeof whole, "%s", jstr(j, "choices.0.text"));
    assert_true(strlen(whole) > 0);
    cJSON_Delete(j);
    resp_free(&r);

    /* The same request streamed, alone on the fleet as the first was: the same greedy text. */
    body_file(w, "c2.json",
              "{\"model\":\"" MODEL "\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
              "\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
              b2, sizeof b2);
    r = curl(w, "-N %s -d @'%s' '%s/v1/completions'", auth_a(), b2, w->base);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "content-type: text/event-stream"));
    sse_result s = parse_sse(r.body, 0);
    assert_int_equal(s.errors, 0);
    assert_true(s.done_last);
    assert_string_equal(s.finish, "length");
    assert_int_equal(s.completion_tokens, 24);
    assert_string_equal(s.text, whole);
    resp_free(&r);
}

static void test_chat_whole_and_streamed_answer_as_the_assistant(void **state)
{
    gw *w = *state;
    char b[512];
    body_file(w, "chat.json",
              "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
              "brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Tell a "
              "story\"}]}],\"max_completion_tokens\":16,\"temperature\":0,\"user\":\"s1\"}",
              b, sizeof b);
    http_resp r = curl(w, "%s -d @'%s' '%s/v1/chat/completions'", auth_a(), b, w->base);
    assert_int_equal(r.status, 200);
    cJSON *j = parse_ok(r.body);
    assert_string_equal(jstr(j, "object"), "chat.completion");
    assert_string_equal(jstr(j, "choices.0.message.role"), "assistant");
    assert_non_null(jstr(j, "choices.0.message.content"));
    assert_int_equal((int)jnum(j, "usage.completion_tokens"), 16);
    cJSON_Delete(j);
    resp_free(&r);

    body_file(w, "chat2.json",
              "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
              "\"max_tokens\":16,\"stream\":true}",
              b, sizeof b);
    r = curl(w, "-N %s -d @'%s' '%s/v1/chat/completions'", auth_a(), b, w->base);
    assert_int_equal(r.status, 200);
    sse_result s = parse_sse(r.body, 1);
    assert_string_equal(s.role, "assistant");
    assert_string_equal(s.finish, "length");
    assert_int_equal(s.completion_tokens, -1); /* no usage chunk unless asked */
    assert_true(s.done_last);
    assert_true(strlen(s.text) > 0);
    resp_free(&r);
}

/* Status, error.type and error.code of a refusal; the body is OpenAI's error object. */
static void expect_error(http_resp r, int status, const char *type, const char *code)
{
    if (r.status != status)
        fprintf(stderr, "expected %d, got %d: %s\n", status, r.status, r.body);
    assert_int_equal(r.status, status);
    cJSON *j = parse_ok(r.body);
    assert_non_null(jstr(j, "error.message"));
    assert_string_equal(jstr(j, "error.type"), type);
    if (code)
        assert_string_equal(jstr(j, "error.code"), code);
    cJSON_Delete(j);
    resp_free(&r);
}

static void test_every_refusal_has_its_status_and_an_openai_error_object(void **state)
{
    gw *w = *state;
    char b[512];
    const char *url = "/v1/chat/completions";
    body_file(w, "bad.json", "{\"model\": \"" MODEL "\", \"messages\": [", b, sizeof b);
    expect_error(curl(w, "%s -d @'%s' '%s%s'", auth_a(), b, w->base, url), 400,
                 "invalid_request_error", NULL);
    body_file(w, "nomodel.json", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", b,
              sizeof b);
    expect_error(curl(w, "%s -d @'%s' '%s%s'", auth_a(), b, w->base, url), 400,
                 "invalid_request_error", NULL);
    body_file(w, "badtype.json",
              "{\"model\":\"" MODEL "\",\"temperature\":\"hot\",\"messages\":[{\"role\":"
              "\"user\",\"content\":\"x\"}]}",
              b, sizeof b);
    http_resp r = curl(w, "%s -d @'%s' '%s%s'", auth_a(), b, w->base, url);
    assert_non_null(strstr(r.body, "\"param\":\"temperature\""));
    expect_error(r, 400, "invalid_request_error", NULL);
    body_file(w, "unknown.json",
              "{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              b, sizeof b);
    expect_error(curl(w, "%s -d @'%s' '%s%s'", auth_a(), b, w->base, url), 404, "not_found_error",
                 "model_not_found");
    /* 70,000 bytes against --http-max-body 65536 */
    char big[512], *text = malloc(70100);
    memset(text, 'a', 70100);
    memcpy(text, "{\"model\":\"x\",\"prompt\":\"", 23);
    strcpy(text + 70000, "\"}");
    body_file(w, "big.json", text, big, sizeof big);
    free(text);
    r = curl(w, "%s -d @'%s' '%s/v1/completions'", auth_a(), big, w->base);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    expect_error(curl(w, "-d @'%s' '%s%s'", b, w->base, url), 401, "invalid_request_error",
                 "invalid_api_key");
    r = curl(w, "-H 'Authorization: Bearer sk-not-a-key-of-ours-000' -d @'%s' '%s%s'", b, w->base,
             url);
    assert_non_null(strstr(r.headers, "www-authenticate: Bearer"));
    expect_error(r, 401, "invalid_request_error", "invalid_api_key");
    r = curl(w, "%s '%s%s'", auth_a(), w->base, url);
    assert_non_null(strstr(r.headers, "allow: POST"));
    expect_error(r, 405, "invalid_request_error", NULL);
    expect_error(curl(w, "%s '%s/v1/nothing-here'", auth_a(), w->base), 404,
                 "invalid_request_error", NULL);
    /* ... and the gateway kept serving through all of it. */
    body_file(w, "ok.json", "{\"model\":\"" MODEL "\",\"prompt\":\"Hi\",\"max_tokens\":4}", b,
              sizeof b);
    r = curl(w, "%s -d @'%s' '%s/v1/completions'", auth_a(), b, w->base);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_a_key_whose_line_is_removed_is_refused_on_its_next_request(void **state)
{
    gw *w = *state;
    char b[512];
    body_file(w, "k.json", "{\"model\":\"" MODEL "\",\"prompt\":\"Hi\",\"max_tokens\":4}", b,
              sizeof b);
    const char *bob = "-H 'Authorization: Bearer " KEY_B "'";
    http_resp r = curl(w, "%s -d @'%s' '%s/v1/completions'", bob, b, w->base);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    write_file(w->api_keys, "alice " KEY_A "\n"); /* bob's line is gone */
    expect_error(curl(w, "%s -d @'%s' '%s/v1/completions'", bob, b, w->base), 401,
                 "invalid_request_error", "invalid_api_key");
    r = curl(w, "%s -d @'%s' '%s/v1/completions'", auth_a(), b, w->base);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    write_file(w->api_keys, "alice " KEY_A "\nbob " KEY_B "\n");
    r = curl(w, "%s -d @'%s' '%s/v1/completions'", bob, b, w->base);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_keep_alive_serves_several_requests_on_one_connection(void **state)
{
    gw *w = *state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "curl -s -w '%%{http_code} %%{num_connects}\\n' %s -o /dev/null '%s/v1/models' "
             "-o /dev/null '%s/health' -o /dev/null '%s/v1/models'",
             auth_a(), w->base, w->base, w->base);
    char *out = run(cmd, NULL);
    assert_string_equal(out, "200 1\n200 0\n200 0\n");
    free(out);
}

static void test_models_and_health_describe_the_fleet(void **state)
{
    gw *w = *state;
    http_resp r = curl(w, "%s '%s/v1/models'", auth_a(), w->base);
    assert_int_equal(r.status, 200);
    cJSON *j = parse_ok(r.body);
    assert_string_equal(jstr(j, "object"), "list");
    assert_string_equal(jstr(j, "data.0.id"), MODEL);
    assert_string_equal(jstr(j, "data.0.object"), "model");
    assert_int_equal((int)jnum(j, "data.0.boards"), N_AGENTS);
    assert_int_equal((int)jnum(j, "data.0.slots"), N_AGENTS * SLOTS);
    cJSON_Delete(j);
    resp_free(&r);
    r = curl(w, "'%s/health'", w->base); /* no key asked: for load balancers */
    assert_int_equal(r.status, 200);
    j = parse_ok(r.body);
    assert_string_equal(jstr(j, "status"), "ok");
    assert_int_equal((int)jnum(j, "boards"), N_AGENTS);
    cJSON_Delete(j);
    resp_free(&r);
}

static cJSON *node(const gw *w, const char *mode, const char *base, const char *env)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s EF_OPENAI_JS_DIR='%s' node '%s' %s '%s/v1' '%s' '%s' 50",
             env ? env : "", w->js_dir, w->js_script, mode, base, KEY_A, MODEL);
    int rc = 0;
    char *out = run(cmd, &rc);
    if (rc != 0)
        fprintf(stderr, "node exited %d (is openai installed? scripts/setup.sh): %s\n", rc, out);
    assert_int_equal(rc, 0);
    cJSON *j = parse_ok(out);
    if (cJSON_GetObjectItem(j, "fatal"))
        fprintf(stderr, "openai client: %s\n", out);
    assert_null(cJSON_GetObjectItem(j, "fatal"));
    free(out);
    return j;
}

static void test_openai_client_library_works_by_changing_only_the_base_url(void **state)
{
    gw *w = *state;
    cJSON *j = node(w, "basic", w->base, NULL);
    assert_string_equal(jstr(j, "chat.object"), "chat.completion");
    assert_string_equal(jstr(j, "chat.role"), "assistant");
    assert_string_equal(jstr(j, "chat.finish"), "length");
    assert_int_equal((int)jnum(j, "chat.usage.completion_tokens"), 24);
    assert_string_equal(jstr(j, "chat_stream.role"), "assistant");
    assert_string_equal(jstr(j, "chat_stream.finish"), "length");
    assert_int_equal((int)jnum(j, "chat_stream.usage.completion_tokens"), 24);
    assert_string_equal(jstr(j, "completion.object"), "text_completion");
    assert_string_equal(jstr(j, "completion.finish"), "length");
    assert_string_equal(jstr(j, "completion_stream.finish"), "length");
    /* greedy, each alone on the fleet: streamed and whole agree */
    assert_string_equal(jstr(j, "completion_stream.text"), jstr(j, "completion.text"));
    assert_string_equal(jstr(j, "models.0"), MODEL);
    cJSON_Delete(j);

    j = node(w, "errors", w->base, NULL);
    assert_int_equal((int)jnum(j, "unknown_model.status"), 404);
    assert_string_equal(jstr(j, "unknown_model.kind"), "NotFoundError");
    assert_int_equal((int)jnum(j, "bad_field.status"), 400);
    assert_string_equal(jstr(j, "bad_field.kind"), "BadRequestError");
    assert_int_equal((int)jnum(j, "wrong_key.status"), 401);
    assert_string_equal(jstr(j, "wrong_key.kind"), "AuthenticationError");
    cJSON_Delete(j);
}

static void test_fifty_concurrent_streams_all_complete_with_every_token(void **state)
{
    gw *w = *state;
    cJSON *j = node(w, "concurrent", w->base, NULL);
    cJSON *results = cJSON_GetObjectItem(j, "results");
    assert_int_equal(cJSON_GetArraySize(results), 50);
    for (int i = 0; i < 50; i++) {
        cJSON *r = cJSON_GetArrayItem(results, i);
        if (cJSON_GetObjectItem(r, "error"))
            fprintf(stderr, "stream %d: %s\n", i, jstr(r, "error"));
        assert_null(cJSON_GetObjectItem(r, "error"));
        assert_string_equal(jstr(r, "finish"), "length");
        assert_int_equal((int)jnum(r, "usage.completion_tokens"), 32);
        assert_true(strlen(jstr(r, "text")) > 0);
    }
    cJSON_Delete(j);
}

/* The value of the sample line `series` (exact, labels included) in a /metrics body, or -1. */
static double metric(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}

static void test_metrics_pass_promtool_count_tokens_and_feed_the_dashboard(void **state)
{
    gw *w = *state;
    http_resp r = curl(w, "%s '%s/metrics'", auth_a(), w->base);
    assert_int_equal(r.status, 200);
    const char *done = "edgefleet_requests_total{model=\"" MODEL "\",outcome=\"done\"}";
    const char *tokens = "edgefleet_completion_tokens_total{model=\"" MODEL "\"}";
    double done0 = metric(r.body, done), tokens0 = metric(r.body, tokens);
    assert_true(done0 >= 1);
    resp_free(&r);
    char b[512];
    body_file(w, "m.json", "{\"model\":\"" MODEL "\",\"prompt\":\"Once\",\"max_tokens\":17}", b,
              sizeof b);
    r = curl(w, "%s -d @'%s' '%s/v1/completions'", auth_a(), b, w->base);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = curl(w, "%s '%s/metrics'", auth_a(), w->base);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "content-type: text/plain; version=0.0.4"));
    /* one more request answered, with exactly the 17 tokens it generated */
    assert_true(metric(r.body, done) == done0 + 1);
    assert_true(metric(r.body, tokens) == tokens0 + 17);
    assert_true(metric(r.body, "edgefleet_agent_up{agent=\"board0\"}") == 1);
    assert_true(metric(r.body, "edgefleet_agent_slots{agent=\"board1\",model=\"" MODEL "\"}") ==
                SLOTS);
    assert_true(metric(r.body, "edgefleet_time_to_first_token_seconds_count{model=\"" MODEL
                               "\"}") >= done0 + 1);
    /* the boards' own telemetry is there too, once a sample came */
    const char *rss = "edgefleet_agent_resident_memory_bytes{agent=\"board0\"}";
    for (int waited = 0; waited < 5000 && metric(r.body, rss) <= 0; waited += 200) {
        ts_sleep_ms(200);
        resp_free(&r);
        r = curl(w, "%s '%s/metrics'", auth_a(), w->base);
    }
    assert_true(metric(r.body, rss) > 0);
    assert_true(metric(r.body, "edgefleet_agent_uptime_seconds{agent=\"board1\"}") > 0);
    /* Prometheus's own parser accepts it */
    char path[400], cmd[600];
    snprintf(path, sizeof path, "%s/metrics.txt", w->f.dir);
    write_file(path, r.body);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
    int rc = 0;
    char *out = run(cmd, &rc);
    if (rc)
        fprintf(stderr, "promtool: %s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    /* every metric the shipped Grafana dashboard asks for is one we publish */
    char dash[600];
    snprintf(dash, sizeof dash, "%s/deploy/grafana-edgefleet.json",
             getenv("EDGEFLEET_SOURCE_DIR") ? getenv("EDGEFLEET_SOURCE_DIR") : ".");
    char *json = read_file(dash);
    assert_non_null(json);
    cJSON *d = parse_ok(json);
    int exprs = 0;
    cJSON *panel;
    cJSON_ArrayForEach(panel, cJSON_GetObjectItem(d, "panels"))
    {
        cJSON *target;
        cJSON_ArrayForEach(target, cJSON_GetObjectItem(panel, "targets"))
        {
            const char *e = jstr(target, "expr");
            assert_non_null(e);
            exprs++;
            for (const char *p = strstr(e, "edgefleet_"); p; p = strstr(p + 1, "edgefleet_")) {
                char name[96];
                size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
                snprintf(name, sizeof name, "%.*s ", (int)n, p); /* "# TYPE name " */
                char type_line[128];
                snprintf(type_line, sizeof type_line, "# TYPE %s", name);
                size_t base = strlen(type_line);
                int found = strstr(r.body, type_line) != NULL;
                if (!found && n > 7 && strncmp(p + n - 7, "_bucket", 7) == 0) {
                    type_line[base - 8] = ' ', type_line[base - 7] = '\0';
                    found = strstr(r.body, type_line) != NULL;
                }
                if (!found)
                    fprintf(stderr, "dashboard asks for %s, not in /metrics\n", name);
                assert_true(found);
            }
        }
    }
    assert_true(exprs >= 8);
    cJSON_Delete(d);
    free(json);
    resp_free(&r);
}

/* ---- the small fleet: TLS off loopback, no board, a busy client, a client that hangs up ---- */

static int busy_slots(const fleet_fixture *f)
{
    ef_client_t *op = fx_client(f, "op", 3000);
    ef_fleet_status *st = NULL;
    int busy = -1;
    if (op && ef_client_status(op, &st) == 0) {
        busy = 0;
        for (size_t i = 0; i < st->n_agents; i++)
            for (size_t m = 0; m < st->agents[i].n_models; m++)
                busy += (int)st->agents[i].models[m].busy_slots;
    }
    ef_fleet_status_free(&st);
    ef_client_destroy(&op);
    return busy;
}

/* A client that sends its request and then reads nothing (a tiny receive window, never read):
 * what waits for it is bounded (the gateway's buffer, then the fleet's delivery backlog), and
 * after --client-stall-ms its request is cancelled on the board, whose slot is free again. The
 * answer (8,000 tokens, ctx 8192) must outlast what the buffers hold plus --client-stall-ms of
 * generation on a fast idle box (1,900 tokens once finished first: the stall never came). */
static void test_a_client_that_stops_reading_is_bounded_then_cancelled(void **state)
{
    gw *w = *state;
    int port = atoi(strrchr(w->base, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int rcv = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *body = "{\"model\":\"" MODEL "\",\"prompt\":\"Once\",\"max_tokens\":8000,"
                       "\"temperature\":0,\"stream\":true}";
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /v1/completions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " KEY_A
                     "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    assert_int_equal(send(fd, req, (size_t)n, 0), n);
    assert_true(ts_file_wait_for(w->f.log, "did not read its stream", 20000));
    int busy = -1;
    for (int waited = 0; waited < 5000 && busy != 0; waited += 100) {
        ts_sleep_ms(100);
        busy = busy_slots(&w->f);
    }
    assert_int_equal(busy, 0); /* while the client is still connected, reading nothing */
    close(fd);
}

static void test_plain_http_off_loopback_needs_tls_or_insecure(void **state)
{
    gw *w = *state;
    char bin[512], key[512], log[512], listen[64];
    ts_bin_path("coordinator/edgefleet-coordinator", bin, sizeof bin);
    fx_key_path(&w->f, "coordinator", "key", key, sizeof key);
    snprintf(log, sizeof log, "%s/refused.log", w->f.dir);
    snprintf(listen, sizeof listen, "0.0.0.0:%d", ts_free_port());
    char *argv[] = {
        bin,      "--key", key, "--allow-dir", w->f.allow, "--agents-endpoint", "tcp://127.0.0.1:1",
        "--http", listen,  NULL};
    pid_t pid = ts_spawn(argv, log);
    int st = ts_wait_exit(pid, 10000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    assert_true(ts_file_wait_for(log, "--http-tls-cert", 100));
}

static void test_tls_off_loopback_and_a_client_that_hangs_up_frees_its_slot(void **state)
{
    gw *outer = *state;
    gw *w = calloc(1, sizeof *w);
    assert_non_null(w);
    outer->inner = w;
    memcpy(w->model_path, outer->model_path, sizeof w->model_path);
    assert_int_equal(fx_setup(&w->f), 0);
    assert_int_equal(fx_add_key(&w->f, "op", "operators", NULL), 0);
    assert_int_equal(fx_add_key(&w->f, "board9", "agents", NULL), 0);
    char cert[400], pkey[400], cmd[1536];
    snprintf(cert, sizeof cert, "%s/cert.pem", w->f.dir);
    snprintf(pkey, sizeof pkey, "%s/key.pem", w->f.dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=edgefleet-test -addext subjectAltName=IP:127.0.0.1 -keyout '%s' "
             "-out '%s' 2>&1",
             pkey, cert);
    int rc = 0;
    free(run(cmd, &rc));
    assert_int_equal(rc, 0);
    int port = ts_free_port();
    char listen[64], base[64], tls[512];
    snprintf(listen, sizeof listen, "0.0.0.0:%d", port);
    snprintf(base, sizeof base, "https://127.0.0.1:%d", port);
    snprintf(tls, sizeof tls, "--cacert '%s'", cert);
    const char *extra[] = {
        "--http", listen, "--http-tls-cert", cert, "--http-tls-key", pkey, "--client-max",
        "1",      NULL};
    memcpy(w->f.extra, extra, sizeof extra);
    assert_int_equal(fx_start_coordinator(&w->f, HB_MS, 3, 16), 0);

    /* No board yet: 503 with a reason, from /health and from a completion. */
    http_resp r = curl(w, "%s '%s/health'", tls, base);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "no board"));
    resp_free(&r);
    char b[512];
    body_file(w, "one.json", "{\"model\":\"" MODEL "\",\"prompt\":\"Hi\",\"max_tokens\":4}", b,
              sizeof b);
    expect_error(curl(w, "%s -d @'%s' '%s/v1/completions'", tls, b, base), 503,
                 "service_unavailable", NULL);

    start_agent(w, 0, "board9", 1);
    assert_int_equal(wait_health(w, tls, base, 200, 30000), 200);
    /* HTTP/2 by ALPN over TLS */
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_version}' --http2 %s '%s/health'",
             tls, base);
    char *v = run(cmd, NULL);
    assert_string_equal(v, "2");
    free(v);

    /* A reader at 2 KB/s holds its stream (and the board's one slot) open... */
    char long_body[512], out[400], bin_log[400];
    body_file(w, "long.json",
              "{\"model\":\"" MODEL "\",\"prompt\":\"Once\",\"max_tokens\":1800,\"stream\":true}",
              long_body, sizeof long_body);
    snprintf(out, sizeof out, "%s/slow.out", w->f.dir);
    snprintf(bin_log, sizeof bin_log, "%s/slow.log", w->f.dir);
    char cacert[420];
    snprintf(cacert, sizeof cacert, "%s", cert);
    char url[128], data[520];
    snprintf(url, sizeof url, "%s/v1/completions", base);
    snprintf(data, sizeof data, "@%s", long_body);
    char *argv[] = {"/usr/bin/curl",
                    "-s",
                    "-N",
                    "--limit-rate",
                    "2k",
                    "--cacert",
                    cacert,
                    "-d",
                    data,
                    "-o",
                    out,
                    url,
                    NULL};
    pid_t slow = outer->slow = ts_spawn(argv, bin_log);
    assert_true(slow > 0);
    assert_true(ts_file_wait_for(out, "data: ", 10000));
    /* ... so the same client over --client-max 1 is told to come back later. */
    r = curl(w, "%s -d @'%s' '%s/v1/completions'", tls, b, base);
    assert_non_null(strstr(r.headers, "retry-after: "));
    expect_error(r, 429, "rate_limit_error", NULL);
    assert_int_equal(busy_slots(&w->f), 1);

    /* The reader hangs up: its request is cancelled on the board, whose slot is free again. */
    ts_kill_wait(slow, SIGKILL, 1000);
    outer->slow = 0;
    int busy = -1;
    for (int waited = 0; waited < 3000 && busy != 0; waited += 50) {
        ts_sleep_ms(50);
        busy = busy_slots(&w->f);
    }
    assert_int_equal(busy, 0);
    assert_true(ts_file_wait_for(w->f.log, "client gone", 1000));
    assert_true(ts_file_wait_for(w->f.log, "finish 3", 3000)); /* ended cancelled, not done */
    r = curl(w, "%s -d @'%s' '%s/v1/completions'", tls, b, base);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* The Node client over TLS (the test's CA), streamed and whole. */
    snprintf(w->js_dir, sizeof w->js_dir, "%s", outer->js_dir);
    snprintf(w->js_script, sizeof w->js_script, "%s", outer->js_script);
    char env[512];
    snprintf(env, sizeof env, "NODE_EXTRA_CA_CERTS='%s'", cert);
    cJSON *j = node(w, "basic", base, env);
    assert_string_equal(jstr(j, "chat_stream.finish"), "length");
    assert_string_equal(jstr(j, "completion.finish"), "length");
    cJSON_Delete(j);

    /* SIGTERM with a slow stream open: the coordinator still exits 0 at once (the stream gets
     * its end, as far as its reader takes it) and the connection closes. */
    slow = outer->slow = ts_spawn(argv, bin_log);
    assert_true(slow > 0);
    assert_true(ts_file_wait_for(out, "data: ", 10000));
    assert_int_equal(fx_stop_coordinator(&w->f), 0);
    assert_true(ts_wait_exit(slow, 10000) >= 0);
    outer->slow = 0;
    ts_kill_wait(w->agents[0], SIGTERM, 3000);
    w->agents[0] = 0;
    fx_teardown(&w->f);
    free(w);
    outer->inner = NULL;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completions_whole_and_streamed_give_the_same_greedy_text),
        cmocka_unit_test(test_chat_whole_and_streamed_answer_as_the_assistant),
        cmocka_unit_test(test_every_refusal_has_its_status_and_an_openai_error_object),
        cmocka_unit_test(test_a_key_whose_line_is_removed_is_refused_on_its_next_request),
        cmocka_unit_test(test_keep_alive_serves_several_requests_on_one_connection),
        cmocka_unit_test(test_models_and_health_describe_the_fleet),
        cmocka_unit_test(test_openai_client_library_works_by_changing_only_the_base_url),
        cmocka_unit_test(test_fifty_concurrent_streams_all_complete_with_every_token),
        cmocka_unit_test(test_metrics_pass_promtool_count_tokens_and_feed_the_dashboard),
        cmocka_unit_test(test_a_client_that_stops_reading_is_bounded_then_cancelled),
        cmocka_unit_test(test_plain_http_off_loopback_needs_tls_or_insecure),
        cmocka_unit_test(test_tls_off_loopback_and_a_client_that_hangs_up_frees_its_slot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
