/* openai_request.c and openai_reply.c: OpenAI request bodies become fleet Requests (every
 * honoured field, every refusal with its status, type and param), and the fleet's replies become
 * OpenAI objects that parse back field by field, in valid UTF-8 whatever bytes an agent sent. */
#include "openai.h"

#include "errors.h"
#include "scheduler.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static openai_request parse_ok(openai_endpoint ep, const char *body)
{
    openai_request r;
    openai_error e;
    int rc = openai_request_parse(ep, body, strlen(body), &r, &e);
    if (rc != 0)
        fail_msg("refused (%d %s %s): %s\n  body: %.200s", e.status, e.type, e.param, e.message,
                 body);
    assert_non_null(r.request);
    assert_int_equal(r.request->request_id.len, CODEC_REQUEST_ID_LEN);
    return r;
}

static openai_error parse_refused(openai_endpoint ep, const char *body, size_t len)
{
    openai_request r;
    openai_error e;
    int rc = openai_request_parse(ep, body, len, &r, &e);
    if (rc == 0)
        fail_msg("accepted: %.200s", body);
    assert_null(r.request);
    return e;
}

static void test_a_completion_body_decodes_every_honoured_field(void **state)
{
    (void)state;
    openai_request r = parse_ok(
        OPENAI_COMPLETIONS,
        "{\"model\":\"qwen2.5-0.5b\",\"prompt\":\"Once upon\",\"max_tokens\":77,"
        "\"temperature\":0.25,\"top_p\":0.5,\"top_k\":12,\"min_p\":0.125,\"repeat_penalty\":1.5,"
        "\"seed\":1234,\"stop\":[\"\\n\",\"END\"],\"n\":1,\"user\":\"alice\",\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true}}");
    Edgefleet__Request *q = r.request;
    assert_string_equal(q->model, "qwen2.5-0.5b");
    assert_string_equal(q->prompt, "Once upon");
    assert_int_equal(q->n_messages, 0);
    assert_int_equal(q->max_tokens, 77);
    assert_non_null(q->sampling);
    assert_float_equal(q->sampling->temperature, 0.25, 1e-6);
    assert_float_equal(q->sampling->top_p, 0.5, 1e-6);
    assert_int_equal(q->sampling->top_k, 12);
    assert_float_equal(q->sampling->min_p, 0.125, 1e-6);
    assert_float_equal(q->sampling->repeat_penalty, 1.5, 1e-6);
    assert_int_equal(q->sampling->seed, 1234);
    assert_int_equal(q->n_stop, 2);
    assert_string_equal(q->stop[0], "\n");
    assert_string_equal(q->stop[1], "END");
    assert_int_equal(strlen(q->session_id), 34);
    assert_memory_equal(q->session_id, "u-", 2);
    assert_true(strlen(q->session_id) < SCHED_SESSION_MAX);
    assert_int_equal(r.stream, 1);
    assert_int_equal(r.include_usage, 1);

    /* The same user is the same session, another is another; request ids are fresh. */
    openai_request same =
        parse_ok(OPENAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"user\":\"alice\"}");
    openai_request other =
        parse_ok(OPENAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"user\":\"bob\"}");
    assert_string_equal(same.request->session_id, q->session_id);
    assert_string_not_equal(other.request->session_id, q->session_id);
    assert_memory_not_equal(same.request->request_id.data, q->request_id.data, 16);
    openai_request_clear(&r);
    openai_request_clear(&same);
    openai_request_clear(&other);
    openai_request_clear(&other); /* twice: a no-op */
}

static void test_a_chat_body_maps_roles_and_joins_text_parts(void **state)
{
    (void)state;
    openai_request r = parse_ok(
        OPENAI_CHAT, "{\"model\":\"m\",\"messages\":["
                     "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                     "{\"role\":\"developer\",\"content\":\"Use French.\"},"
                     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello, \"},"
                     "{\"type\":\"text\",\"text\":\"world\"}],\"name\":\"x\"},"
                     "{\"role\":\"assistant\",\"content\":null},"
                     "{\"role\":\"assistant\",\"content\":\"Bonjour\",\"tool_calls\":[]},"
                     "{\"role\":\"user\",\"content\":\"\\u00e9t\\u00e9 \\ud83d\\ude00\"}],"
                     "\"max_completion_tokens\":9,\"max_tokens\":500,\"stream\":false}");
    Edgefleet__Request *q = r.request;
    assert_string_equal(q->prompt, "");
    assert_int_equal(q->n_messages, 6);
    const char *roles[] = {"system", "system", "user", "assistant", "assistant", "user"};
    const char *contents[] = {"Be brief.", "Use French.", "Hello, world",
                              "",          "Bonjour",     "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(q->messages[i]->role, roles[i]);
        assert_string_equal(q->messages[i]->content, contents[i]);
    }
    assert_int_equal(q->max_tokens, 9); /* max_completion_tokens wins */
    assert_int_equal(r.stream, 0);
    openai_request_clear(&r);
}

static void test_absent_and_null_fields_take_llama_server_defaults(void **state)
{
    (void)state;
    openai_request r = parse_ok(OPENAI_COMPLETIONS,
                                "{\"model\":\"m\",\"prompt\":[\"only one\"],\"temperature\":null,"
                                "\"stop\":null,\"max_tokens\":null,\"n\":null,\"user\":null,"
                                "\"seed\":null,\"stream_options\":null}");
    Edgefleet__Request *q = r.request;
    assert_string_equal(q->prompt, "only one");
    assert_int_equal(q->max_tokens, OPENAI_DEFAULT_MAX_TOKENS);
    assert_float_equal(q->sampling->temperature, 0.8, 1e-6);
    assert_int_equal(q->sampling->top_k, 40);
    assert_float_equal(q->sampling->top_p, 0.95, 1e-6);
    assert_float_equal(q->sampling->min_p, 0.05, 1e-6);
    assert_float_equal(q->sampling->repeat_penalty, 1.0, 1e-6);
    assert_int_equal(q->sampling->seed, 0); /* random */
    assert_int_equal(q->n_stop, 0);
    assert_string_equal(q->session_id, "");
    assert_int_equal(r.stream, 0);
    assert_int_equal(r.include_usage, 0);
    openai_request_clear(&r);

    /* seed -1 is random; seed 0 is a fixed seed, sent so that the agent samples with 0. */
    r = parse_ok(OPENAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"seed\":-1}");
    assert_int_equal(r.request->sampling->seed, 0);
    openai_request_clear(&r);
    r = parse_ok(OPENAI_COMPLETIONS,
                 "{\"model\":\"m\",\"prompt\":\"p\",\"seed\":0,\"stop\":\"x\"}");
    uint64_t s = r.request->sampling->seed;
    assert_true(s != 0 && (uint32_t)(s ^ (s >> 32)) == 0);
    assert_int_equal(r.request->n_stop, 1);
    assert_string_equal(r.request->stop[0], "x");
    openai_request_clear(&r);
}

static void test_unknown_fields_are_ignored(void **state)
{
    (void)state;
    openai_request r = parse_ok(
        OPENAI_CHAT, "{\"frequency_penalty\":0.5,\"logit_bias\":{\"1\":2},\"tools\":[],"
                     "\"model\":\"m\",\"prompt\":17,\"response_format\":{\"type\":\"text\"},"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"extra\":[1]}],"
                     "\"Model\":5,\"stream_options\":{\"other\":1},\"x\":\"\\u0000\"}");
    assert_string_equal(r.request->model, "m");
    assert_int_equal(r.request->n_messages, 1);
    openai_request_clear(&r);
    /* messages is not a field of /v1/completions. */
    r = parse_ok(OPENAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"messages\":7}");
    assert_int_equal(r.request->n_messages, 0);
    openai_request_clear(&r);
}

typedef struct {
    openai_endpoint ep;
    const char *body;
    int status;
    const char *param; /* "" = null */
    const char *code;
} refusal;

#define C      OPENAI_COMPLETIONS
#define CH     OPENAI_CHAT
#define MSG(x) "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}," x "]}"

static const refusal refusals[] = {
    {C, "", 400, "", ""},
    {C, "nonsense", 400, "", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\"", 400, "", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\"} x", 400, "", ""},
    {C, "[1,2]", 400, "", ""},
    {C, "\"text\"", 400, "", ""},
    {C, "{\"prompt\":\"p\"}", 400, "model", ""},
    {C, "{\"model\":\"\",\"prompt\":\"p\"}", 400, "model", ""},
    {C, "{\"model\":7,\"prompt\":\"p\"}", 400, "model", ""},
    {C, "{\"model\":\"m\"}", 400, "prompt", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"\"}", 400, "prompt", ""},
    {C, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", 400, "prompt", ""},
    {C, "{\"model\":\"m\",\"prompt\":[1,2,3]}", 400, "prompt", ""},
    {C, "{\"model\":\"m\",\"prompt\":[]}", 400, "prompt", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\\u0000q\"}", 400, "prompt", ""},
    {C, "{\"model\":\"m\\u0000\",\"prompt\":\"p\"}", 400, "model", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\xff\"}", 400, "prompt", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"\xed\xa0\x80\"}", 400, "prompt", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"max_tokens\":-1}", 400, "max_tokens", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"max_tokens\":0}", 400, "max_tokens", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"max_tokens\":2.5}", 400, "max_tokens", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"max_tokens\":1e400}", 400, "max_tokens", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"max_tokens\":\"5\"}", 400, "max_tokens", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"max_tokens\":4294967296}", 400, "max_tokens", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"max_completion_tokens\":1048577}", 400,
     "max_completion_tokens", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"temperature\":2.5}", 400, "temperature", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"temperature\":-0.1}", 400, "temperature", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"temperature\":-1e999}", 400, "temperature", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"top_p\":1.01}", 400, "top_p", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"top_k\":-1}", 400, "top_k", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"top_k\":1.5}", 400, "top_k", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"min_p\":2}", 400, "min_p", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"repeat_penalty\":-1}", 400, "repeat_penalty", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"seed\":-2}", 400, "seed", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"seed\":0.5}", 400, "seed", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"seed\":1e300}", 400, "seed", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"stop\":\"\"}", 400, "stop", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"stop\":[\"a\",\"\"]}", 400, "stop[1]", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"stop\":[\"a\",3]}", 400, "stop[1]", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"stop\":5}", 400, "stop", ""},
    {C,
     "{\"model\":\"m\",\"prompt\":\"p\",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
     "\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
     400, "stop", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"n\":2}", 400, "n", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"user\":5}", 400, "user", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"stream\":\"yes\"}", 400, "stream", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"stream_options\":true}", 400, "stream_options", ""},
    {C, "{\"model\":\"m\",\"prompt\":\"p\",\"stream_options\":{\"include_usage\":1}}", 400,
     "stream_options.include_usage", ""},
    {CH, "{\"model\":\"m\"}", 400, "messages", ""},
    {CH, "{\"model\":\"m\",\"prompt\":\"p\"}", 400, "messages", ""},
    {CH, "{\"model\":\"m\",\"messages\":[]}", 400, "messages", ""},
    {CH, "{\"model\":\"m\",\"messages\":{}}", 400, "messages", ""},
    {CH, MSG("7"), 400, "messages[1]", ""},
    {CH, MSG("{\"content\":\"x\"}"), 400, "messages[1].role", ""},
    {CH, MSG("{\"role\":\"tool\",\"content\":\"x\"}"), 400, "messages[1].role", ""},
    {CH, MSG("{\"role\":\"function\",\"content\":\"x\"}"), 400, "messages[1].role", ""},
    {CH, MSG("{\"role\":\"user\"}"), 400, "messages[1].content", ""},
    {CH, MSG("{\"role\":\"user\",\"content\":null}"), 400, "messages[1].content", ""},
    {CH, MSG("{\"role\":\"user\",\"content\":5}"), 400, "messages[1].content", ""},
    {CH, MSG("{\"role\":\"user\",\"content\":[]}"), 400, "messages[1].content", ""},
    {CH, MSG("{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}"), 400,
     "messages[1].content[0].type", ""},
    {CH,
     MSG("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\"}]"
         "}"),
     400, "messages[1].content[1].text", ""},
    {CH, MSG("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\"}]}"), 400,
     "messages[1].tool_calls", ""},
    {CH, MSG("{\"role\":\"user\",\"content\":\"a\\u0000\"}"), 400, "messages[1].content", ""},
};

static void test_each_refusal_names_its_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const refusal *t = &refusals[i];
        openai_error e = parse_refused(t->ep, t->body, strlen(t->body));
        if (e.status != t->status || strcmp(e.param, t->param) != 0 ||
            strcmp(e.code, t->code) != 0 || strcmp(e.type, "invalid_request_error") != 0)
            fail_msg("case %zu %s: got %d %s param \"%s\" code \"%s\": %s", i, t->body, e.status,
                     e.type, e.param, e.code, e.message);
        assert_true(strlen(e.message) > 0);
        char *json = openai_error_json(&e);
        cJSON *doc = cJSON_Parse(json);
        assert_non_null(doc);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(doc, "error");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring,
                            e.message);
        const cJSON *param = cJSON_GetObjectItemCaseSensitive(err, "param");
        if (*t->param)
            assert_string_equal(param->valuestring, t->param);
        else
            assert_true(cJSON_IsNull(param));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(err, "code")));
        cJSON_Delete(doc);
        free(json);
    }
}

static void test_a_raw_nul_byte_in_the_body_is_refused(void **state)
{
    (void)state;
    static const char body[] = "{\"model\":\"m\",\"prompt\":\"a\0b\"}";
    openai_error e = parse_refused(OPENAI_COMPLETIONS, body, sizeof body - 1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "prompt");
    static const char after[] = "{\"model\":\"m\",\"prompt\":\"ab\"}\0";
    e = parse_refused(OPENAI_COMPLETIONS, after, sizeof after - 1);
    assert_int_equal(e.status, 400);
    /* An escaped backslash before u0000 is text, not a NUL. */
    openai_request r = parse_ok(OPENAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"a\\\\u0000\"}");
    assert_string_equal(r.request->prompt, "a\\u0000");
    openai_request_clear(&r);
}

/* A body of `n` prompt bytes ('a'). */
static char *big_body(size_t n, const char *extra)
{
    size_t head = strlen(extra) + 64;
    char *b = malloc(head + n + 3);
    assert_non_null(b);
    int at = snprintf(b, head, "{\"model\":\"m\",%s\"prompt\":\"", extra);
    memset(b + at, 'a', n);
    strcpy(b + at + n, "\"}");
    return b;
}

static void test_a_prompt_over_the_fleet_bound_is_context_length_exceeded(void **state)
{
    (void)state;
    char *b = big_body(CODEC_MAX_PROMPT_BYTES + 1, "");
    openai_error e = parse_refused(OPENAI_COMPLETIONS, b, strlen(b));
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "prompt");
    assert_string_equal(e.code, "context_length_exceeded");
    free(b);
    /* Over OPENAI_BODY_MAX: 413 before any parsing. */
    size_t n = OPENAI_BODY_MAX + 1;
    char *huge = calloc(1, n);
    assert_non_null(huge);
    e = parse_refused(OPENAI_COMPLETIONS, huge, n);
    assert_int_equal(e.status, 413);
    free(huge);
}

static void test_a_decoded_request_round_trips_through_the_codec(void **state)
{
    (void)state;
    /* The largest prompt allowed, with every other field at its bound. */
    char extra[6000];
    int at = snprintf(extra, sizeof extra, "\"user\":\"u\",\"seed\":9007199254740992,\"stop\":[");
    for (int i = 0; i < CODEC_MAX_STOP; i++) {
        extra[at++] = '"';
        memset(extra + at, 's', CODEC_MAX_STOP_LEN);
        at += CODEC_MAX_STOP_LEN;
        at += snprintf(extra + at, sizeof extra - (size_t)at, "\"%s",
                       i + 1 < CODEC_MAX_STOP ? "," : "],");
    }
    char *b = big_body(CODEC_MAX_PROMPT_BYTES, extra);
    openai_request r = parse_ok(OPENAI_COMPLETIONS, b);
    free(b);
    assert_int_equal(r.request->n_stop, CODEC_MAX_STOP);
    Edgefleet__Envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = r.request;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(codec_encode(&env, CODEC_MAX_FRAME_DEFAULT, &buf, &len), 0);
    envelope *back = NULL;
    assert_int_equal(codec_decode(buf, len, CODEC_MAX_FRAME_DEFAULT, &back), 0);
    assert_int_equal(back->body_case, EDGEFLEET__ENVELOPE__BODY_REQUEST);
    assert_string_equal(back->request->prompt, r.request->prompt);
    assert_string_equal(back->request->session_id, r.request->session_id);
    assert_int_equal(back->request->sampling->seed, 9007199254740992ull);
    assert_memory_equal(back->request->request_id.data, r.request->request_id.data, 16);
    codec_free(&back);
    free(buf);
    openai_request_clear(&r);
}

/* ---- replies ------------------------------------------------------------------------------- */

static cJSON *parsed(char *json)
{
    assert_non_null(json);
    assert_true(openai_utf8_valid(json, strlen(json)));
    cJSON *doc = cJSON_Parse(json);
    free(json);
    assert_non_null(doc);
    return doc;
}

static const cJSON *at(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it)
        fail_msg("no \"%s\"", name);
    return it;
}

static const char *str_at(const cJSON *obj, const char *name)
{
    const cJSON *it = at(obj, name);
    assert_true(cJSON_IsString(it));
    return it->valuestring;
}

static double num_at(const cJSON *obj, const char *name)
{
    const cJSON *it = at(obj, name);
    assert_true(cJSON_IsNumber(it));
    return it->valuedouble;
}

static void test_a_whole_response_parses_back_field_by_field(void **state)
{
    (void)state;
    uint8_t idb[16] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xff};
    char id[48];
    openai_meta m = {OPENAI_COMPLETIONS,
                     openai_response_id(OPENAI_COMPLETIONS, (ProtobufCBinaryData){16, idb}, id),
                     1700000000, "tiny"};
    assert_string_equal(id, "cmpl-deadbeef000102030405060708090aff");
    Edgefleet__Usage u = EDGEFLEET__USAGE__INIT;
    u.prompt_tokens = 10, u.prompt_evaluated = 4, u.completion_tokens = 5;
    cJSON *doc = parsed(openai_response_json(&m, "Hello \"there\"\n", 14, "length", &u));
    assert_string_equal(str_at(doc, "id"), id);
    assert_string_equal(str_at(doc, "object"), "text_completion");
    assert_true(num_at(doc, "created") == 1700000000.0);
    assert_string_equal(str_at(doc, "model"), "tiny");
    const cJSON *choices = at(doc, "choices");
    assert_int_equal(cJSON_GetArraySize(choices), 1);
    const cJSON *c = cJSON_GetArrayItem(choices, 0);
    assert_true(num_at(c, "index") == 0);
    assert_string_equal(str_at(c, "text"), "Hello \"there\"\n");
    assert_true(cJSON_IsNull(at(c, "logprobs")));
    assert_string_equal(str_at(c, "finish_reason"), "length");
    const cJSON *usage = at(doc, "usage");
    assert_true(num_at(usage, "prompt_tokens") == 10);
    assert_true(num_at(usage, "completion_tokens") == 5);
    assert_true(num_at(usage, "total_tokens") == 15);
    assert_true(num_at(at(usage, "prompt_tokens_details"), "cached_tokens") == 6);
    cJSON_Delete(doc);

    m.ep = OPENAI_CHAT;
    m.id = openai_response_id(OPENAI_CHAT, (ProtobufCBinaryData){16, idb}, id);
    assert_string_equal(id, "chatcmpl-deadbeef000102030405060708090aff");
    doc = parsed(openai_response_json(&m, "Hi", 2, NULL, NULL));
    assert_string_equal(str_at(doc, "object"), "chat.completion");
    c = cJSON_GetArrayItem(at(doc, "choices"), 0);
    const cJSON *msg = at(c, "message");
    assert_string_equal(str_at(msg, "role"), "assistant");
    assert_string_equal(str_at(msg, "content"), "Hi");
    assert_true(cJSON_IsNull(at(c, "finish_reason")));
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "usage"));
    cJSON_Delete(doc);
}

static void test_stream_chunks_carry_role_first_then_deltas_then_usage(void **state)
{
    (void)state;
    openai_meta m = {OPENAI_CHAT, "chatcmpl-1", 5, "tiny"};
    cJSON *doc = parsed(openai_chunk_json(&m, "", 0, 1, NULL, NULL));
    assert_string_equal(str_at(doc, "object"), "chat.completion.chunk");
    const cJSON *c = cJSON_GetArrayItem(at(doc, "choices"), 0);
    const cJSON *delta = at(c, "delta");
    assert_string_equal(str_at(delta, "role"), "assistant");
    assert_string_equal(str_at(delta, "content"), "");
    assert_true(cJSON_IsNull(at(c, "finish_reason")));
    cJSON_Delete(doc);

    doc = parsed(openai_chunk_json(&m, "tok", 3, 0, NULL, NULL));
    delta = at(cJSON_GetArrayItem(at(doc, "choices"), 0), "delta");
    assert_null(cJSON_GetObjectItemCaseSensitive(delta, "role"));
    assert_string_equal(str_at(delta, "content"), "tok");
    cJSON_Delete(doc);

    doc = parsed(openai_chunk_json(&m, NULL, 0, 0, "stop", NULL));
    c = cJSON_GetArrayItem(at(doc, "choices"), 0);
    assert_null(at(c, "delta")->child); /* {} */
    assert_string_equal(str_at(c, "finish_reason"), "stop");
    cJSON_Delete(doc);

    Edgefleet__Usage u = EDGEFLEET__USAGE__INIT;
    u.prompt_tokens = 3, u.prompt_evaluated = 3, u.completion_tokens = 4000000000u;
    doc = parsed(openai_chunk_json(&m, "ignored", 7, 0, NULL, &u));
    assert_int_equal(cJSON_GetArraySize(at(doc, "choices")), 0);
    assert_true(num_at(at(doc, "usage"), "total_tokens") == 4000000003.0);
    cJSON_Delete(doc);

    m.ep = OPENAI_COMPLETIONS;
    doc = parsed(openai_chunk_json(&m, "abc", 3, 1, NULL, NULL));
    assert_string_equal(str_at(doc, "object"), "text_completion");
    assert_string_equal(str_at(cJSON_GetArrayItem(at(doc, "choices"), 0), "text"), "abc");
    cJSON_Delete(doc);
}

static void test_invalid_utf8_from_an_agent_becomes_replacement_characters(void **state)
{
    (void)state;
    /* A stray continuation, an overlong '/', a surrogate, a truncated 3-byte sequence before
     * ASCII, 0xFF, a NUL, then a good emoji. */
    static const char text[] = "a\x80"
                               "b\xc0\xaf"
                               "c\xed\xa0\x80"
                               "d\xe2\x82"
                               "e\xff"
                               "f\0g\xf0\x9f\x98\x80";
    openai_meta m = {OPENAI_COMPLETIONS, "cmpl-x", 1, "m\xfe"};
    cJSON *doc = parsed(openai_response_json(&m, text, sizeof text - 1, "stop", NULL));
    assert_string_equal(str_at(doc, "model"), "m\xef\xbf\xbd");
    const char *got = str_at(cJSON_GetArrayItem(at(doc, "choices"), 0), "text");
#define R "\xef\xbf\xbd"
    assert_string_equal(got, "a" R "b" R R "c" R R R "d" R "e" R "f" R "g\xf0\x9f\x98\x80");
#undef R
    cJSON_Delete(doc);
    assert_false(openai_utf8_valid(text, sizeof text - 1));
    assert_true(openai_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    assert_false(openai_utf8_valid("\xf4\x90\x80\x80", 4));
}

static void test_utf8_complete_holds_back_only_a_split_last_character(void **state)
{
    (void)state;
    static const char emoji[] = "ab\xf0\x9f\x98\x80"; /* 2 + 4 bytes */
    assert_int_equal(openai_utf8_complete(emoji, 6), 6);
    assert_int_equal(openai_utf8_complete(emoji, 5), 2);
    assert_int_equal(openai_utf8_complete(emoji, 4), 2);
    assert_int_equal(openai_utf8_complete(emoji, 3), 2);
    assert_int_equal(openai_utf8_complete(emoji, 2), 2);
    assert_int_equal(openai_utf8_complete("\xc3", 1), 0);
    assert_int_equal(openai_utf8_complete("x\xe2\x82", 3), 1);
    assert_int_equal(openai_utf8_complete("", 0), 0);
    /* Bytes that can never complete go out (to be replaced), not held back forever. */
    assert_int_equal(openai_utf8_complete("x\xe0\x80", 3), 3);
    assert_int_equal(openai_utf8_complete("x\x80\x80\x80", 4), 4);
    assert_int_equal(openai_utf8_complete("x\xff", 2), 2);
    /* Split at every point, the pieces rejoin to the same text. */
    static const char mixed[] = "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80!";
    size_t n = sizeof mixed - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        size_t out = openai_utf8_complete(mixed, cut);
        assert_true(out <= cut && cut - out <= 3);
        assert_true(openai_utf8_valid(mixed, out));
    }
}

static void test_fleet_errors_map_to_openai_status_type_and_code(void **state)
{
    (void)state;
    static const struct {
        int code, status;
        const char *type, *name;
    } map[] = {
        {EF_EUNKNOWNMODEL, 404, "not_found_error", "model_not_found"},
        {EF_EBUSY, 429, "rate_limit_error", "ef_ebusy"},
        {EF_ECONTEXT, 400, "invalid_request_error", "context_length_exceeded"},
        {EF_EINVAL, 400, "invalid_request_error", "ef_einval"},
        {EF_ETOOBIG, 400, "invalid_request_error", "ef_etoobig"},
        {EF_ETOKENIZE, 400, "invalid_request_error", "ef_etokenize"},
        {EF_EDENIED, 403, "permission_error", "ef_edenied"},
        {EF_EDEADLINE, 408, "timeout_error", "ef_edeadline"},
        {EF_EAGENTLOST, 503, "service_unavailable", "ef_eagentlost"},
        {EF_ENOTCONN, 503, "service_unavailable", "ef_enotconn"},
        {EF_EDRAINING, 503, "service_unavailable", "ef_edraining"},
        {EF_ESTALLED, 500, "server_error", "ef_estalled"},
        {EF_EINTERNAL, 500, "server_error", "ef_einternal"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        openai_error e;
        assert_int_equal(openai_error_from_fleet(map[i].code, NULL, &e), map[i].status);
        assert_int_equal(e.status, map[i].status);
        assert_string_equal(e.type, map[i].type);
        assert_string_equal(e.code, map[i].name);
        assert_string_equal(e.message, ef_strerror(map[i].code));
        assert_string_equal(e.param, "");
    }
    /* An agent's message, long and with bad bytes: bounded, cut on a character, printable. */
    char msg[600];
    memset(msg, 'x', sizeof msg);
    memcpy(msg + 250, "\xe2\x82\xac\xe2\x82\xac\xff", 7);
    msg[sizeof msg - 1] = '\0';
    openai_error e;
    openai_error_from_fleet(EF_EBUSY, msg, &e);
    assert_true(strlen(e.message) < sizeof e.message);
    assert_true(openai_utf8_valid(e.message, strlen(e.message)));
    cJSON *doc = parsed(openai_error_json(&e));
    const cJSON *err = at(doc, "error");
    assert_string_equal(str_at(err, "type"), "rate_limit_error");
    assert_string_equal(str_at(err, "code"), "ef_ebusy");
    assert_true(cJSON_IsNull(at(err, "param")));
    cJSON_Delete(doc);
}

static void test_the_models_list_has_one_row_per_model(void **state)
{
    (void)state;
    openai_model_row rows[2] = {{"tiny", 2, 8, 3, 1}, {"big\xff", 1, 1, 1, 0}};
    cJSON *doc = parsed(openai_models_json(rows, 2, 42));
    assert_string_equal(str_at(doc, "object"), "list");
    const cJSON *data = at(doc, "data");
    assert_int_equal(cJSON_GetArraySize(data), 2);
    const cJSON *r = cJSON_GetArrayItem(data, 0);
    assert_string_equal(str_at(r, "id"), "tiny");
    assert_string_equal(str_at(r, "object"), "model");
    assert_string_equal(str_at(r, "owned_by"), "edgefleet");
    assert_true(num_at(r, "created") == 42);
    assert_true(num_at(r, "boards") == 2 && num_at(r, "slots") == 8);
    assert_true(num_at(r, "busy_slots") == 3 && num_at(r, "queued") == 1);
    assert_string_equal(str_at(cJSON_GetArrayItem(data, 1), "id"), "big\xef\xbf\xbd");
    cJSON_Delete(doc);
    doc = parsed(openai_models_json(NULL, 0, 42));
    assert_int_equal(cJSON_GetArraySize(at(doc, "data")), 0);
    cJSON_Delete(doc);
}

static void test_finish_reasons_are_openai_words(void **state)
{
    (void)state;
    assert_string_equal(openai_finish_reason(EDGEFLEET__FINISH_REASON__FINISH_STOP), "stop");
    assert_string_equal(openai_finish_reason(EDGEFLEET__FINISH_REASON__FINISH_LENGTH), "length");
    assert_string_equal(openai_finish_reason(EDGEFLEET__FINISH_REASON__FINISH_CONTEXT), "length");
    assert_null(openai_finish_reason(EDGEFLEET__FINISH_REASON__FINISH_CANCELLED));
    assert_null(openai_finish_reason(EDGEFLEET__FINISH_REASON__FINISH_UNSPECIFIED));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_completion_body_decodes_every_honoured_field),
        cmocka_unit_test(test_a_chat_body_maps_roles_and_joins_text_parts),
        cmocka_unit_test(test_absent_and_null_fields_take_llama_server_defaults),
        cmocka_unit_test(test_unknown_fields_are_ignored),
        cmocka_unit_test(test_each_refusal_names_its_field),
        cmocka_unit_test(test_a_raw_nul_byte_in_the_body_is_refused),
        cmocka_unit_test(test_a_prompt_over_the_fleet_bound_is_context_length_exceeded),
        cmocka_unit_test(test_a_decoded_request_round_trips_through_the_codec),
        cmocka_unit_test(test_a_whole_response_parses_back_field_by_field),
        cmocka_unit_test(test_stream_chunks_carry_role_first_then_deltas_then_usage),
        cmocka_unit_test(test_invalid_utf8_from_an_agent_becomes_replacement_characters),
        cmocka_unit_test(test_utf8_complete_holds_back_only_a_split_last_character),
        cmocka_unit_test(test_fleet_errors_map_to_openai_status_type_and_code),
        cmocka_unit_test(test_the_models_list_has_one_row_per_model),
        cmocka_unit_test(test_finish_reasons_are_openai_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
