/* libFuzzer target for agent_config_load, the agent's reader of an operator's INI file: any bytes
 * must parse or fail with EF_ECONFIG and a message naming the file, never crash, leak or read out
 * of bounds; a config that loads must respect the documented bounds. The input reaches the parser
 * through a memfd (no temp files to clean up). Built only with clang and -DEF_FUZZ=ON:
 *   ./fuzz_agent_config -max_total_time=60 corpus/ */
#include "agent_config.h"
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Like assert, but also in release builds (the default build type defines NDEBUG). */
#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static int config_fd = -1;
static char config_path[64];

static void check_loaded(const agent_config *c)
{
    CHECK(c->n_models <= AGENT_MAX_MODELS);
    CHECK(c->heartbeat_ms == 0 || (c->heartbeat_ms >= 10 && c->heartbeat_ms <= 600000));
    /* Strings are never empty, and a coordinator is always a tcp://HOST:PORT. */
    CHECK(!c->name || c->name[0]);
    CHECK(!c->key || c->key[0]);
    CHECK(!c->server_key || c->server_key[0]);
    CHECK(!c->coordinator || config_check_endpoint(c->coordinator, NULL) == 0);
    for (size_t i = 0; i < c->n_models; i++) {
        const backend_params *m = &c->models[i];
        CHECK(m->name && m->name[0]);
        CHECK(m->kind == BACKEND_SIMULATED || m->path);
        CHECK(m->n_slots <= BACKEND_MAX_SLOTS);
        CHECK(m->n_ctx == 0 || m->n_ctx >= 16);
        CHECK(!m->chat_template || (m->chat_template[0] && c->origins[i].chat_template_line > 0));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(m->name, c->models[j].name) != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (config_fd < 0) {
        config_fd = memfd_create("agent.ini", 0);
        CHECK(config_fd >= 0);
        snprintf(config_path, sizeof config_path, "/proc/self/fd/%d", config_fd);
    }
    if (ftruncate(config_fd, 0) != 0 || pwrite(config_fd, data, size, 0) != (ssize_t)size)
        return 0;
    agent_config c = {0};
    ef_errmsg em = {{0}};
    int rc = agent_config_load(&c, config_path, &em);
    if (rc == 0) {
        check_loaded(&c);
        /* --model after the file: a name the file used must be refused. */
        if (c.n_models && c.n_models < AGENT_MAX_MODELS) {
            char path[300];
            snprintf(path, sizeof path, "/m/%s.gguf", c.models[0].name);
            if (!strchr(c.models[0].name, '/') && !strchr(c.models[0].name, '.'))
                CHECK(agent_config_add_model(&c, path, BACKEND_LLAMA, &em) == EF_ECONFIG);
        }
    } else {
        CHECK(rc == EF_ECONFIG);
        CHECK(strncmp(em.msg, config_path, strlen(config_path)) == 0);
    }
    agent_config_free(&c);
    return 0;
}
