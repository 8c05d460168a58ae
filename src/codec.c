/* Implementation of codec.h. protobuf-c skips unknown fields, bounds every nested length by the
 * buffer, and returns NULL on malformed input; the checks here add the size limit, the version
 * and the semantic rules a decoder cannot know (a body must be set, ids are 16 bytes). */
#include "codec.h"

#include "edgefleet.h"

#include <stdio.h>
#include <stdlib.h>

int codec_encode(envelope *env, size_t max_len, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (max_len == 0)
        max_len = CODEC_MAX_FRAME_DEFAULT;
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY__NOT_SET)
        return EF_EINVAL;
    env->version = CODEC_PROTOCOL_VERSION;
    size_t n = edgefleet__envelope__get_packed_size(env);
    if (n > max_len)
        return EF_ETOOBIG;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return EF_ENOMEM;
    *len = edgefleet__envelope__pack(env, buf);
    *out = buf;
    return 0;
}

static int id_ok(ProtobufCBinaryData id) { return id.len == CODEC_REQUEST_ID_LEN; }

/* Rules the schema cannot state: which ids must be present and well formed. */
static int validate(const envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY__NOT_SET:
        return EF_EPROTO;
    case EDGEFLEET__ENVELOPE__BODY_REQUEST:
        return id_ok(env->request->request_id) ? 0 : EF_EPROTO;
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        return id_ok(env->token_chunk->request_id) ? 0 : EF_EPROTO;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        return id_ok(env->done->request_id) ? 0 : EF_EPROTO;
    case EDGEFLEET__ENVELOPE__BODY_CANCEL:
        return id_ok(env->cancel->request_id) ? 0 : EF_EPROTO;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        /* An error about no particular request carries an empty id. */
        return env->error->request_id.len == 0 || id_ok(env->error->request_id) ? 0 : EF_EPROTO;
    case EDGEFLEET__ENVELOPE__BODY_BATCH:
        for (size_t i = 0; i < env->batch->n_items; i++)
            if (!id_ok(env->batch->items[i]->request_id))
                return EF_EPROTO;
        return 0;
    default:
        return 0;
    }
}

/* Drop the unknown fields protobuf-c kept, in m and every message below it. Unknown fields are
 * ignored by definition; keeping them would forward a peer's bytes we never checked when an
 * envelope is re-encoded and relayed (protobuf-c even keeps a non-canonical field-0 tag that it
 * then cannot decode again: found by tests/fuzz/fuzz_codec.c). */
static void strip_unknown(ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        free(m->unknown_fields[i].data);
    free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        char *field = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)((char *)m + f->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)field;
            for (size_t k = 0; k < n; k++)
                strip_unknown(arr[k]);
        } else if (*(ProtobufCMessage **)field &&
                   (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                    *(uint32_t *)((char *)m + f->quantifier_offset) == f->id)) {
            strip_unknown(*(ProtobufCMessage **)field);
        }
    }
}

int codec_decode(const uint8_t *buf, size_t len, size_t max_len, envelope **out)
{
    *out = NULL;
    if (max_len == 0)
        max_len = CODEC_MAX_FRAME_DEFAULT;
    if (len > max_len)
        return EF_ETOOBIG;
    if (len == 0 || !buf)
        return EF_EPROTO;
    envelope *env = edgefleet__envelope__unpack(NULL, len, buf);
    if (!env)
        return EF_EPROTO;
    if (env->version != CODEC_PROTOCOL_VERSION) {
        edgefleet__envelope__free_unpacked(env, NULL);
        return EF_EVERSION;
    }
    strip_unknown(&env->base);
    int rc = validate(env);
    if (rc) {
        edgefleet__envelope__free_unpacked(env, NULL);
        return rc;
    }
    *out = env;
    return 0;
}

void codec_free(envelope **env_p)
{
    if (env_p && *env_p) {
        edgefleet__envelope__free_unpacked(*env_p, NULL);
        *env_p = NULL;
    }
}

const char *codec_body_name(const envelope *env)
{
    if (env->body_case == EDGEFLEET__ENVELOPE__BODY__NOT_SET)
        return "empty";
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &edgefleet__envelope__descriptor, (unsigned)env->body_case);
    return f ? f->name : "unknown";
}

const char *codec_id_hex(ProtobufCBinaryData id, char out[33])
{
    if (id.len == 0) {
        out[0] = '-';
        out[1] = '\0';
        return out;
    }
    size_t n = id.len > 16 ? 16 : id.len;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", id.data[i]);
    out[2 * n] = '\0';
    return out;
}
