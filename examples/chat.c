/* Two chat turns in one session: the second sends the whole conversation again with the same
 * session_id, so the coordinator routes it to the agent that kept the first turn's KV cache and
 * only the new messages are evaluated (prompt_evaluated < prompt_tokens).
 *   chat MODEL
 * Environment as in stream.c: EDGEFLEET_COORDINATOR, EDGEFLEET_SERVER_KEY, EDGEFLEET_KEY. */
#include <edgefleet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char text[4096];
    size_t len;
} reply;

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Keep the reply (the next turn sends it back as the assistant's message) and show it. */
static int keep_piece(const char *text, size_t len, void *user)
{
    reply *r = user;
    size_t room = sizeof r->text - 1 - r->len;
    size_t n = len < room ? len : room;
    memcpy(r->text + r->len, text, n);
    r->len += n;
    r->text[r->len] = '\0';
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int turn(ef_client_t *c, const char *model, const ef_chat_message *msgs, size_t n,
                reply *out)
{
    ef_gen_params g = ef_gen_default_params();
    g.max_tokens = 32;
    g.session_id = "example-chat-1"; /* any string naming this conversation */
    ef_result r;
    out->len = 0;
    out->text[0] = '\0';
    int rc = ef_client_chat(c, model, msgs, n, &g, keep_piece, out, &r);
    if (rc) {
        fprintf(stderr, "failed: %s (%s)\n", ef_strerror(rc), ef_client_last_error(c));
        return rc;
    }
    fprintf(stderr, "\n[turn %zu: agent %s, %u tokens, prompt %u evaluated of %u]\n", (n + 1) / 2,
            r.agent, r.completion_tokens, r.prompt_evaluated, r.prompt_tokens);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: chat MODEL\n");
        return 2;
    }
    ef_client_params p = ef_client_default_params();
    p.endpoint = env_or("EDGEFLEET_COORDINATOR", "tcp://127.0.0.1:7702");
    p.server_key_file = env_or("EDGEFLEET_SERVER_KEY", "/etc/edgefleet/keys/coordinator.pub");
    p.key_file = env_or("EDGEFLEET_KEY", "client.key");
    char why[256];
    ef_client_t *c = NULL;
    if (ef_client_open(&p, &c, why, sizeof why) != 0) {
        fprintf(stderr, "cannot connect: %s\n", why);
        return 1;
    }
    static reply first, second;
    ef_chat_message msgs[3] = {
        {"user", "Tell me a short story about a cat."},
        {"assistant", first.text},
        {"user", "And what did the cat do next?"},
    };
    int rc = turn(c, argv[1], msgs, 1, &first);
    if (rc == 0)
        rc = turn(c, argv[1], msgs, 3, &second);
    ef_client_destroy(&c);
    return rc ? 1 : 0;
}
