/* A batch: many prompts at once, sharded across the fleet's boards by the coordinator. Each item
 * is printed as it completes (in completion order), then a summary.
 *   batch MODEL
 * Environment as in stream.c: EDGEFLEET_COORDINATOR, EDGEFLEET_SERVER_KEY, EDGEFLEET_KEY. */
#include <edgefleet.h>
#include <stdio.h>
#include <stdlib.h>

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static int print_item(size_t index, const char *text, size_t len, const ef_result *r, void *user)
{
    (void)user;
    if (r->status)
        printf("item %zu: failed: %s (%s)\n", index, ef_strerror(r->status), r->message);
    else
        printf("item %zu: agent %s, %u tokens: %.*s\n", index, r->agent, r->completion_tokens,
               (int)len, text);
    return 0; /* nonzero cancels the items not yet done */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: batch MODEL\n");
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
    ef_gen_params g = ef_gen_default_params();
    g.max_tokens = 24;
    const char *prompts[] = {"Once upon a time",  "The little dog", "In the garden",
                             "A girl named Lily", "The sun was",    "One day, Tom"};
    enum { N = sizeof prompts / sizeof prompts[0] };
    ef_batch_item items[N];
    for (size_t i = 0; i < N; i++)
        items[i] = (ef_batch_item){prompts[i], &g};
    ef_batch_result br;
    int rc = ef_client_batch(c, argv[1], items, N, print_item, NULL, &br);
    fprintf(stderr, "[%zu of %zu items answered, %zu failed, %.0f ms]\n", br.n_ok, br.n_items,
            br.n_failed, br.elapsed_ms);
    if (rc && rc != EF_EPARTIAL)
        fprintf(stderr, "failed: %s (%s)\n", ef_strerror(rc), ef_client_last_error(c));
    ef_client_destroy(&c);
    return rc ? 1 : 0;
}
