/* Implementation of agent_link_stub.h, and of the tsock functions the uplink calls. */
#include "agent_link_stub.h"

#include "codec.h"
#include "fuzz_check.h"
#include "transport.h"

#include <stdio.h>
#include <string.h>

struct tsock {
    int open; /* a real allocation, so ASan sees a leak or a double destroy */
};

/* One request's stream as the coordinator would see it (id and attempt: replies of another
 * attempt are a different stream). */
typedef struct {
    uint8_t id[CODEC_REQUEST_ID_LEN];
    uint32_t attempt;
    uint32_t next_seq; /* one past the last token sent */
    int ended;         /* a Done or Error went out */
} stream;

#define MAX_STREAMS 256

static stream g_streams[MAX_STREAMS];
static size_t g_n_streams, g_frames, g_registers, g_ended;
static int g_open;

void agent_stub_reset(void)
{
    g_n_streams = g_frames = g_registers = g_ended = 0;
    CHECK(g_open == 0); /* the previous input's uplink closed its socket */
}

int agent_stub_open_sockets(void) { return g_open; }
size_t agent_stub_frames(void) { return g_frames; }
size_t agent_stub_registers(void) { return g_registers; }
size_t agent_stub_ended(void) { return g_ended; }

static stream *find_stream(ProtobufCBinaryData id, uint32_t attempt)
{
    CHECK(id.len == CODEC_REQUEST_ID_LEN); /* every reply names a request */
    for (size_t i = 0; i < g_n_streams; i++)
        if (g_streams[i].attempt == attempt && memcmp(g_streams[i].id, id.data, id.len) == 0)
            return &g_streams[i];
    if (g_n_streams == MAX_STREAMS)
        return NULL; /* more than an input can make useful; stop tracking */
    stream *s = &g_streams[g_n_streams++];
    memset(s, 0, sizeof *s);
    memcpy(s->id, id.data, id.len);
    s->attempt = attempt;
    return s;
}

void agent_stub_request(const uint8_t *id, uint32_t attempt, size_t n_resume)
{
    stream *s = find_stream((ProtobufCBinaryData){CODEC_REQUEST_ID_LEN, (uint8_t *)id}, attempt);
    /* A resumed stream goes on after the tokens an earlier agent sent: its first seq. */
    if (s && n_resume > s->next_seq)
        s->next_seq = (uint32_t)n_resume;
}

static void check_chunk(const Edgefleet__TokenChunk *tc)
{
    stream *s = find_stream(tc->request_id, tc->attempt);
    CHECK(tc->text != NULL);
    if (!s)
        return;
    uint32_t end = tc->seq + (uint32_t)tc->n_token_ids;
    /* A replay (after a rewind) may repeat what was sent; a chunk past the end is a gap. The
     * same id and attempt may run again after its Done or Error (a refusal, or a coordinator
     * sending it again): that run starts at its resume point, never past what was sent. */
    CHECK(tc->seq <= s->next_seq);
    if (end > s->next_seq)
        s->next_seq = end;
}

static void check_end(ProtobufCBinaryData id, uint32_t attempt)
{
    stream *s = find_stream(id, attempt);
    if (s && !s->ended) {
        s->ended = 1;
        g_ended++;
    }
}

/* Every frame the agent sends: decodes within the link's limit, and is an agent's message. */
static void check_frame(const void *buf, size_t len)
{
    CHECK(len <= CODEC_MAX_FRAME_DEFAULT);
    envelope *env = NULL;
    CHECK(codec_decode(buf, len, CODEC_MAX_FRAME_DEFAULT, &env) == 0);
    g_frames++;
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_AGENT_REGISTER:
        g_registers++;
        CHECK(env->agent_register->boot_id.len == 16);
        break;
    case EDGEFLEET__ENVELOPE__BODY_HEARTBEAT:
        break;
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        check_chunk(env->token_chunk);
        break;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        check_end(env->done->request_id, env->done->attempt);
        break;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        /* Refusals of a request whose id is not 16 bytes name no stream; the rest do. */
        if (env->error->request_id.len == CODEC_REQUEST_ID_LEN)
            check_end(env->error->request_id, env->error->attempt);
        CHECK(env->error->code < 0);
        break;
    default:
        CHECK(!"the agent sent a message only a coordinator or client sends");
    }
    codec_free(&env);
}

tsock *tsock_new(transport *t, const tsock_params *p, ef_errmsg *em)
{
    (void)t;
    (void)em;
    CHECK(p->type == ZMQ_DEALER && !p->bind && p->on_recv);
    CHECK(g_open == 0); /* one link at a time: a reconnect destroys the old socket first */
    tsock *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    s->open = 1;
    g_open++;
    return s;
}

void tsock_destroy(tsock **s_p)
{
    if (!s_p || !*s_p)
        return;
    CHECK((*s_p)->open);
    free(*s_p);
    *s_p = NULL;
    g_open--;
}

int tsock_send(tsock *s, const void *peer_id, size_t peer_len, const void *buf, size_t len)
{
    CHECK(s && s->open && !peer_id && peer_len == 0);
    check_frame(buf, len);
    return 0;
}

int tsock_send_env(tsock *s, const void *peer_id, size_t peer_len, envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = codec_encode(env, 0, &buf, &len);
    if (rc == 0)
        rc = tsock_send(s, peer_id, peer_len, buf, len);
    free(buf);
    return rc;
}

const char *tsock_event_text(uint16_t event, uint32_t value, char *buf, size_t cap)
{
    snprintf(buf, cap, "event %u (%u)", event, value);
    return buf;
}
