/* Stream one completion from the fleet: text goes to stdout as it arrives, a summary to stderr.
 *   stream MODEL PROMPT
 * Where and who from the environment, as edgefleetctl: EDGEFLEET_COORDINATOR (client endpoint),
 * EDGEFLEET_SERVER_KEY (the coordinator's .pub), EDGEFLEET_KEY (this program's .key, 0600). */
#include <edgefleet.h>
#include <stdio.h>
#include <stdlib.h>

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static int print_piece(const char *text, size_t len, void *user)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0; /* nonzero cancels */
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: stream MODEL PROMPT\n");
        return 2;
    }
    ef_client_params p = ef_client_default_params();
    p.endpoint = env_or("EDGEFLEET_COORDINATOR", "tcp://127.0.0.1:7702");
    p.server_key_file = env_or("EDGEFLEET_SERVER_KEY", "/etc/edgefleet/keys/coordinator.pub");
    p.key_file = env_or("EDGEFLEET_KEY", "client.key");
    char why[256];
    ef_client_t *c = NULL;
    if (ef_client_open(&p, &c, why, sizeof why) != 0) { /* keys, endpoint, handshake */
        fprintf(stderr, "cannot connect: %s\n", why);
        return 1;
    }
    ef_gen_params g = ef_gen_default_params();
    g.max_tokens = 48;
    ef_result r;
    int rc = ef_client_generate(c, argv[1], argv[2], &g, print_piece, NULL, &r);
    if (rc)
        fprintf(stderr, "failed: %s (%s)\n", ef_strerror(rc), ef_client_last_error(c));
    else
        fprintf(stderr, "\n[agent %s, %u tokens, finish %s]\n", r.agent, r.completion_tokens,
                r.finish == EF_FINISH_LENGTH ? "length" : "stop");
    ef_client_destroy(&c);
    return rc ? 1 : 0;
}
