/* Codec: every Envelope body round-trips; truncated, random, oversized, wrong-version and
 * semantically broken frames are rejected with the right code and never crash. */
#include "codec.h"
#include "edgefleet.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- reflective filler: sets every field of a message so a round trip exercises all of them */

static void *fill_message(const ProtobufCMessageDescriptor *d, int depth);

static void fill_value(const ProtobufCFieldDescriptor *f, void *dst, int depth, int k)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)dst = -7 - k;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)dst = 7u + (uint32_t)k;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)dst = -70000000000LL - k;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = 70000000000ULL + (uint64_t)k;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)dst = 0.5f + (float)k;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)dst = 1.25 + k;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *)dst = e->values[e->n_values - 1].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s = malloc(32);
        snprintf(s, 32, "%s-%d", f->name, k);
        *(char **)dst = s;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = dst;
        b->len = CODEC_REQUEST_ID_LEN; /* ids must be 16 bytes; other bytes fields accept any */
        b->data = malloc(b->len);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)(i * 31 + (size_t)k);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(void **)dst = fill_message(f->descriptor, depth + 1);
        break;
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static void *fill_message(const ProtobufCMessageDescriptor *d, int depth)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);
    d->message_init(m);
    if (depth > 3)
        return m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            continue; /* Envelope's oneof is set by the caller, one member at a time */
        char *field = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 2, sz = value_size(f);
            char *arr = calloc(n, sz);
            for (size_t k = 0; k < n; k++)
                fill_value(f, arr + k * sz, depth, (int)k);
            *(size_t *)((char *)m + f->quantifier_offset) = n;
            *(void **)field = arr;
        } else {
            fill_value(f, field, depth, 0);
        }
    }
    return m;
}

/* Every member of Envelope's oneof, filled, packed, decoded and packed again gives the same
 * bytes: nothing is lost or reinterpreted on the way. */
static void test_every_body_round_trips(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *ed = &edgefleet__envelope__descriptor;
    int bodies = 0;
    for (unsigned i = 0; i < ed->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &ed->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        envelope env = EDGEFLEET__ENVELOPE__INIT;
        ProtobufCMessage *body = fill_message(f->descriptor, 0);
        *(void **)((char *)&env + f->offset) = body;
        env.body_case = (Edgefleet__Envelope__BodyCase)f->id;

        uint8_t *buf1 = NULL, *buf2 = NULL;
        size_t len1 = 0, len2 = 0;
        assert_int_equal(codec_encode(&env, 0, &buf1, &len1), 0);
        envelope *got = NULL;
        int rc = codec_decode(buf1, len1, 0, &got);
        if (rc != 0)
            fail_msg("body %s: decode gave %s", f->name, ef_err_name(rc));
        assert_int_equal(got->body_case, f->id);
        assert_string_equal(codec_body_name(got), f->name);
        assert_int_equal(codec_encode(got, 0, &buf2, &len2), 0);
        assert_int_equal(len1, len2);
        assert_memory_equal(buf1, buf2, len1);
        free(buf1);
        free(buf2);
        codec_free(&got);
        assert_null(got);
        protobuf_c_message_free_unpacked(body, NULL);
        bodies++;
    }
    assert_true(bodies >= 15); /* the schema has at least this many message kinds */
}

static envelope *make_request(const char *prompt)
{
    static uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    envelope *env = malloc(sizeof *env);
    Edgefleet__Request *req = malloc(sizeof *req);
    edgefleet__envelope__init(env);
    edgefleet__request__init(req);
    req->request_id.data = id;
    req->request_id.len = sizeof id;
    req->model = "stories260K";
    req->prompt = (char *)prompt;
    req->max_tokens = 32;
    env->body_case = EDGEFLEET__ENVELOPE__BODY_REQUEST;
    env->request = req;
    return env;
}

static void free_request(envelope *env)
{
    free(env->request);
    free(env);
}

static void test_request_fields_survive(void **state)
{
    (void)state;
    envelope *env = make_request("Once upon a time");
    uint8_t *buf;
    size_t len;
    assert_int_equal(codec_encode(env, 0, &buf, &len), 0);
    envelope *got;
    assert_int_equal(codec_decode(buf, len, 0, &got), 0);
    assert_int_equal(got->version, CODEC_PROTOCOL_VERSION);
    assert_string_equal(got->request->prompt, "Once upon a time");
    assert_string_equal(got->request->model, "stories260K");
    assert_int_equal(got->request->max_tokens, 32);
    assert_memory_equal(got->request->request_id.data, env->request->request_id.data, 16);
    codec_free(&got);
    free(buf);
    free_request(env);
}

/* Every prefix of a valid frame either decodes (a cut on a field boundary is a valid shorter
 * message) or is rejected as malformed; a cut inside the prompt is always malformed. */
static void test_truncated_frames_are_rejected(void **state)
{
    (void)state;
    envelope *env = make_request("Once upon a time there was a little robot who liked to count.");
    uint8_t *buf;
    size_t len;
    assert_int_equal(codec_encode(env, 0, &buf, &len), 0);
    int rejected = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size so ASan sees any overread */
        memcpy(copy, buf, cut);
        envelope *got = NULL;
        int rc = codec_decode(copy, cut, 0, &got);
        assert_true(rc == 0 || rc == EF_EPROTO || rc == EF_EVERSION);
        if (rc != 0) {
            assert_null(got);
            rejected++;
        }
        codec_free(&got);
        free(copy);
    }
    assert_true(rejected > (int)len / 2);
    envelope *got = NULL;
    assert_int_equal(codec_decode(buf, len - 10, 0, &got), EF_EPROTO);
    free(buf);
    free_request(env);
}

static void test_random_frames_never_crash(void **state)
{
    (void)state;
    srand(12345);
    int rejected = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len = 1 + (size_t)(rand() % 200);
        uint8_t *b = malloc(len);
        for (size_t k = 0; k < len; k++)
            b[k] = (uint8_t)rand();
        envelope *got = NULL;
        int rc = codec_decode(b, len, 0, &got);
        assert_true(rc == 0 || rc == EF_EPROTO || rc == EF_EVERSION);
        rejected += rc != 0;
        codec_free(&got);
        free(b);
    }
    assert_true(rejected > 19000);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff};
    envelope *got = NULL;
    assert_int_equal(codec_decode(garbage, sizeof garbage, 0, &got), EF_EPROTO);
    assert_int_equal(codec_decode(garbage, 0, 0, &got), EF_EPROTO);
    assert_null(got);
}

static void test_oversized_frames_are_rejected(void **state)
{
    (void)state;
    size_t big = CODEC_MAX_FRAME_DEFAULT + 1;
    char *prompt = malloc(big);
    memset(prompt, 'a', big - 1);
    prompt[big - 1] = '\0';
    envelope *env = make_request(prompt);
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 1;
    assert_int_equal(codec_encode(env, 0, &buf, &len), EF_ETOOBIG);
    assert_null(buf);
    /* With a raised limit it encodes; the default decoder refuses it before unpacking. */
    assert_int_equal(codec_encode(env, 2 * big, &buf, &len), 0);
    envelope *got = NULL;
    assert_int_equal(codec_decode(buf, len, 0, &got), EF_ETOOBIG);
    assert_null(got);
    assert_int_equal(codec_decode(buf, len, 1024, &got), EF_ETOOBIG);
    free(buf);
    free(prompt);
    free_request(env);
}

static void test_wrong_version_is_rejected(void **state)
{
    (void)state;
    envelope *env = make_request("hi");
    uint8_t *buf;
    size_t len;
    assert_int_equal(codec_encode(env, 0, &buf, &len), 0);
    /* Field 1 (version) is encoded first as tag 0x08 then the varint. */
    assert_int_equal(buf[0], 0x08);
    assert_int_equal(buf[1], CODEC_PROTOCOL_VERSION);
    buf[1] = CODEC_PROTOCOL_VERSION + 1;
    envelope *got = NULL;
    assert_int_equal(codec_decode(buf, len, 0, &got), EF_EVERSION);
    assert_null(got);
    free(buf);
    free_request(env);
}

/* A newer peer's extra field is skipped, not an error. */
static void test_unknown_fields_are_ignored(void **state)
{
    (void)state;
    envelope *env = make_request("hi");
    uint8_t *buf;
    size_t len;
    assert_int_equal(codec_encode(env, 0, &buf, &len), 0);
    uint8_t *ext = malloc(len + 3);
    memcpy(ext, buf, len);
    /* field 999, wire type 0 (varint), value 5: tag = 999<<3 = 7992 = 0xb8 0x3e */
    ext[len] = 0xb8;
    ext[len + 1] = 0x3e;
    ext[len + 2] = 0x05;
    envelope *got = NULL;
    assert_int_equal(codec_decode(ext, len + 3, 0, &got), 0);
    assert_string_equal(got->request->prompt, "hi");
    codec_free(&got);
    free(ext);
    free(buf);
    free_request(env);
}

/* Found by fuzz_codec: protobuf-c keeps a non-canonical field-0 tag (80 00) as an unknown field
 * and re-encodes it as a tag it then rejects. Unknown fields are dropped at decode, so whatever
 * decodes re-encodes to something that decodes, and a relay never forwards unchecked bytes. */
static void test_unknown_fields_are_not_forwarded(void **state)
{
    (void)state;
    static const uint8_t frame[] = {0x52, 0x00, 0x80, 0x00, 0xed, 0x01, 0x08, 0x01};
    envelope *got = NULL;
    assert_int_equal(codec_decode(frame, sizeof frame, 0, &got), 0);
    assert_int_equal(got->body_case, EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER);
    assert_int_equal(got->base.n_unknown_fields, 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(codec_encode(got, 0, &buf, &len), 0);
    envelope *again = NULL;
    assert_int_equal(codec_decode(buf, len, 0, &again), 0);
    assert_int_equal(len, 4); /* version + empty register: nothing of the junk survived */
    codec_free(&again);
    codec_free(&got);
    free(buf);
}

static void test_bad_request_id_and_empty_body_are_rejected(void **state)
{
    (void)state;
    envelope *env = make_request("hi");
    env->request->request_id.len = 5;
    uint8_t *buf;
    size_t len;
    assert_int_equal(codec_encode(env, 0, &buf, &len), 0);
    envelope *got = NULL;
    assert_int_equal(codec_decode(buf, len, 0, &got), EF_EPROTO);
    free(buf);
    free_request(env);

    envelope empty = EDGEFLEET__ENVELOPE__INIT;
    assert_int_equal(codec_encode(&empty, 0, &buf, &len), EF_EINVAL);
    static const uint8_t version_only[] = {0x08, CODEC_PROTOCOL_VERSION};
    assert_int_equal(codec_decode(version_only, sizeof version_only, 0, &got), EF_EPROTO);
}

static void test_error_names_and_messages_agree(void **state)
{
    (void)state;
    assert_string_equal(ef_strerror(EF_EBUSY), "fleet busy");
    assert_string_equal(ef_err_name(EF_EBUSY), "EF_EBUSY");
    assert_string_equal(ef_strerror(0), "success");
    assert_string_equal(ef_strerror(-9999), "unknown error");
    assert_string_equal(ef_err_name(-9999), "EF_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_body_round_trips),
        cmocka_unit_test(test_request_fields_survive),
        cmocka_unit_test(test_truncated_frames_are_rejected),
        cmocka_unit_test(test_random_frames_never_crash),
        cmocka_unit_test(test_oversized_frames_are_rejected),
        cmocka_unit_test(test_wrong_version_is_rejected),
        cmocka_unit_test(test_unknown_fields_are_ignored),
        cmocka_unit_test(test_unknown_fields_are_not_forwarded),
        cmocka_unit_test(test_bad_request_id_and_empty_body_are_rejected),
        cmocka_unit_test(test_error_names_and_messages_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
