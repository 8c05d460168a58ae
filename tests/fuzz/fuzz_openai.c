/* libFuzzer target for the OpenAI JSON codec (coordinator/openai_*.c). The input is a request
 * body, decoded for both endpoints: a body that decodes must be a Request the fleet takes (a
 * 16-byte id, a model, a prompt or messages as the endpoint says, packing under the frame limit
 * and decoding back the same); one that is refused must carry a 4xx/5xx status and an error
 * object that parses. The same bytes, as an agent's text, must come out of every response
 * object as JSON that parses, in valid UTF-8, and unchanged when they were valid UTF-8 already.
 * Built only with clang and -DEF_FUZZ=ON; seeds in corpus/fuzz_openai/. */
#include "fuzz_check.h"
#include "openai.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* UTF-8 checked another way than openai_utf8_valid (by code point, not by table 3-7), so that
 * a mistake in the codec's own check cannot hide itself. */
static int utf8_ok(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char b = u[i++];
        uint32_t cp, min;
        int more;
        if (b == 0)
            return 0;
        if (b < 0x80)
            continue;
        if ((b & 0xE0) == 0xC0)
            cp = b & 0x1F, more = 1, min = 0x80;
        else if ((b & 0xF0) == 0xE0)
            cp = b & 0x0F, more = 2, min = 0x800;
        else if ((b & 0xF8) == 0xF0)
            cp = b & 0x07, more = 3, min = 0x10000;
        else
            return 0;
        for (; more > 0; more--, i++) {
            if (i >= len || (u[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (u[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
}

/* out parses as JSON and is valid UTF-8; returns the document (caller deletes). */
static cJSON *check_json(char *out)
{
    CHECK(out != NULL);
    CHECK(utf8_ok(out, strlen(out)));
    cJSON *doc = cJSON_Parse(out);
    CHECK(doc != NULL);
    free(out);
    return doc;
}

static void check_accepted(openai_endpoint ep, const openai_request *r)
{
    const Edgefleet__Request *q = r->request;
    CHECK(q != NULL);
    CHECK(q->request_id.len == CODEC_REQUEST_ID_LEN);
    CHECK(q->model && *q->model && utf8_ok(q->model, strlen(q->model)));
    if (ep == OPENAI_CHAT) {
        CHECK(q->n_messages > 0 && q->n_messages <= CODEC_MAX_MESSAGES && !*q->prompt);
        for (size_t i = 0; i < q->n_messages; i++)
            CHECK(*q->messages[i]->role && q->messages[i]->content);
    } else {
        CHECK(q->n_messages == 0 && *q->prompt);
    }
    CHECK(q->max_tokens >= 1 && q->max_tokens <= OPENAI_MAX_TOKENS_MAX);
    CHECK(q->sampling != NULL && q->n_stop <= CODEC_MAX_STOP);
    CHECK(strlen(q->session_id) == 0 || strlen(q->session_id) == 34);
    Edgefleet__Envelope env = EDGEFLEET__ENVELOPE__INIT;
    env.body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env.request = (Edgefleet__Request *)q;
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(codec_encode(&env, CODEC_MAX_FRAME_DEFAULT, &buf, &len) == 0);
    envelope *back = NULL;
    CHECK(codec_decode(buf, len, CODEC_MAX_FRAME_DEFAULT, &back) == 0);
    CHECK(back->body_case == EDGEFLEET__ENVELOPE__BODY_REQUEST);
    CHECK(strcmp(back->request->model, q->model) == 0);
    CHECK(strcmp(back->request->prompt, q->prompt) == 0);
    CHECK(back->request->n_messages == q->n_messages && back->request->n_stop == q->n_stop);
    codec_free(&back);
    free(buf);
}

static void check_refused(const openai_request *r, const openai_error *e)
{
    CHECK(r->request == NULL);
    CHECK(e->status >= 400 && e->status <= 599);
    CHECK(e->message[0] != '\0');
    cJSON *doc = check_json(openai_error_json(e));
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "error")));
    cJSON_Delete(doc);
}

static void decode(openai_endpoint ep, const uint8_t *data, size_t size)
{
    openai_request r;
    openai_error e;
    int rc = openai_request_parse(ep, (const char *)data, size, &r, &e);
    if (rc == 0)
        check_accepted(ep, &r);
    else
        check_refused(&r, &e);
    openai_request_clear(&r);
    openai_request_clear(&r);
}

/* The text member of choices[0] (text, message.content or delta.content). */
static const char *choice_text(const cJSON *doc, openai_endpoint ep, const char *inner)
{
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "choices"), 0);
    if (ep == OPENAI_CHAT)
        c = cJSON_GetObjectItemCaseSensitive(c, inner);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, ep == OPENAI_CHAT ? "content" : "text");
    CHECK(cJSON_IsString(t));
    return t->valuestring;
}

/* The bytes as an agent's text in every response object. */
static void reply(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int clean = utf8_ok(text, size);
    CHECK(clean == openai_utf8_valid(text, size));
    Edgefleet__Usage u = EDGEFLEET__USAGE__INIT;
    u.prompt_tokens = (uint32_t)size, u.completion_tokens = UINT32_MAX;
    for (int ep = OPENAI_COMPLETIONS; ep <= OPENAI_CHAT; ep++) {
        openai_meta m = {(openai_endpoint)ep, "cmpl-0", 1, text}; /* model: any bytes too */
        if (memchr(text, 0, size))                                /* the model is a C string */
            m.model = "m";
        char *model_copy = NULL;
        if (m.model == text) {
            model_copy = strndup(text, size);
            CHECK(model_copy != NULL);
            m.model = model_copy;
        }
        cJSON *doc = check_json(openai_response_json(&m, text, size, "stop", &u));
        const char *got = choice_text(doc, m.ep, "message");
        if (clean)
            CHECK(strlen(got) == size && memcmp(got, text, size) == 0);
        cJSON_Delete(doc);
        doc = check_json(openai_chunk_json(&m, text, size, (int)(size & 1), NULL, NULL));
        if (size > 0 || ep == OPENAI_COMPLETIONS) { /* a later chat delta may be {} */
            got = choice_text(doc, m.ep, "delta");
            if (clean)
                CHECK(strlen(got) == size && memcmp(got, text, size) == 0);
        }
        cJSON_Delete(doc);
        cJSON_Delete(check_json(openai_chunk_json(&m, text, size, 0, NULL, &u)));
        free(model_copy);
    }
    size_t keep = openai_utf8_complete(text, size);
    CHECK(keep <= size && size - keep <= 3);
    CHECK(!clean || keep == size);
    /* Valid text cut anywhere near its end: what may go out is valid, at most 3 bytes wait. */
    for (size_t back = 1; clean && back <= 3 && back <= size; back++) {
        keep = openai_utf8_complete(text, size - back);
        CHECK(size - back - keep <= 3 && utf8_ok(text, keep));
    }
}

static void fleet_error(const uint8_t *data, size_t size)
{
    char *message = strndup((const char *)data, size);
    CHECK(message != NULL);
    openai_error e;
    int code = size > 0 ? -(int)(data[0] % 32) : 0;
    int status = openai_error_from_fleet(code, message, &e);
    CHECK(status == e.status && status >= 400 && status <= 599);
    cJSON_Delete(check_json(openai_error_json(&e)));
    free(message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(OPENAI_COMPLETIONS, data, size);
    decode(OPENAI_CHAT, data, size);
    reply(data, size);
    fleet_error(data, size);
    return 0;
}
