/* Implementation of agent_config.h on libinih: the handler checks each key as it comes and
 * keeps the first error; ini_parse reports that error's line. The reader follows inih's view of
 * each line (section header, continuation of a value) so that duplicates can be told apart. */
#include "agent_config.h"
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bounds that catch typos (a context of 2048000) without limiting real boards. */
#define MAX_CTX      (1u << 20)
#define MAX_THREADS  256u
#define MAX_BATCH    8192u
#define MAX_HB_MS    600000u
#define MAX_DRAIN_MS 86400000u

/* Keys one section may hold: more than [agent] or [model] know, so a full section fits. */
#define SECTION_MAX_KEYS 16
#define KEY_NAME_CAP     32

typedef struct {
    agent_config *c;
    FILE *f;
    int line;          /* lines read so far, counted as inih counts them */
    int section_start; /* a "[section]" line was read since the last key */
    int section_line;  /* line of the last "[section]" */
    int agent_line;    /* line of the first [agent] with a key, 0 = none yet */
    int leading_space; /* the current line starts with white space */
    int after_key;     /* a key was read since the last section header (inih's prev_name) */
    int error_line;    /* line of the first error (the handler's line), 0 = none */
    int error_at;      /* the line that first error is about (a duplicate section's header) */
    int about;         /* set by a handler: its error is about this line, 0 = the current one */
    char error[EF_ERRMSG_MAX]; /* first error, without file:line */
    /* keys read in the current section, with their lines, to refuse a second "name =" */
    char seen[SECTION_MAX_KEYS][KEY_NAME_CAP];
    int seen_line[SECTION_MAX_KEYS];
    size_t n_seen;
} parse_state;

/* inih's reader: fgets, noting lines and section headers so the handler knows where it is.
 * inih treats an indented line after a key as that key's continued value, even when it looks
 * like "[section]"; only then is a '[' line not a header. */
static char *read_line(char *buf, int size, void *stream)
{
    parse_state *ps = stream;
    if (!fgets(buf, size, ps->f))
        return NULL;
    ps->line++;
    const char *p = ps->line == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0 ? buf + 3 : buf;
    ps->leading_space = *p == ' ' || *p == '\t';
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[' && !(ps->leading_space && ps->after_key)) {
        ps->section_start = 1;
        ps->section_line = ps->line;
        ps->after_key = 0;
    }
    return buf;
}

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || n < lo || n > hi)
        return -1;
    *out = (uint32_t)n;
    return 0;
}

/* A path, name or endpoint: an empty one is a mistake (a value left out), never "default". */
static int set_string(parse_state *ps, char **dst, const char *name, const char *v)
{
    if (!*v) {
        snprintf(ps->error, sizeof ps->error, "empty value for \"%s\"", name);
        return -1;
    }
    free(*dst);
    *dst = strdup(v);
    return *dst ? 0 : -1;
}

static int agent_key(parse_state *ps, const char *name, const char *value)
{
    agent_config *c = ps->c;
    if (strcmp(name, "name") == 0)
        return set_string(ps, &c->name, name, value);
    if (strcmp(name, "coordinator") == 0) {
        ef_errmsg why;
        if (*value && config_check_endpoint(value, &why) != 0) {
            snprintf(ps->error, sizeof ps->error, "bad value for \"coordinator\": %.400s", why.msg);
            return -1;
        }
        return set_string(ps, &c->coordinator, name, value);
    }
    if (strcmp(name, "server_key") == 0)
        return set_string(ps, &c->server_key, name, value);
    if (strcmp(name, "key") == 0)
        return set_string(ps, &c->key, name, value);
    if (strcmp(name, "heartbeat_ms") == 0) {
        if (parse_u32(value, 10, MAX_HB_MS, &c->heartbeat_ms) == 0)
            return 0;
        snprintf(ps->error, sizeof ps->error, "bad value \"%.64s\" for \"heartbeat_ms\" (10..%u)",
                 value, MAX_HB_MS);
        return -1;
    }
    if (strcmp(name, "telemetry_ms") == 0) {
        if (parse_u32(value, 100, MAX_HB_MS, &c->telemetry_ms) == 0)
            return 0;
        snprintf(ps->error, sizeof ps->error, "bad value \"%.64s\" for \"telemetry_ms\" (100..%u)",
                 value, MAX_HB_MS);
        return -1;
    }
    if (strcmp(name, "drain_timeout_ms") == 0) {
        if (parse_u32(value, 0, MAX_DRAIN_MS, &c->drain_timeout_ms) == 0)
            return 0;
        snprintf(ps->error, sizeof ps->error,
                 "bad value \"%.64s\" for \"drain_timeout_ms\" (0..%u)", value, MAX_DRAIN_MS);
        return -1;
    }
    if (strcmp(name, "log_level") == 0) {
        c->has_log_level = 1;
        if (log_parse_level(value, &c->level) == 0)
            return 0;
        snprintf(ps->error, sizeof ps->error,
                 "bad value \"%.64s\" for \"log_level\" (debug|info|warn|error|off)", value);
        return -1;
    }
    snprintf(ps->error, sizeof ps->error, "unknown key \"%.64s\" in [agent]", name);
    return -1;
}

static int model_number(parse_state *ps, backend_params *m, const char *name, const char *value)
{
    static const struct {
        const char *key;
        uint32_t lo, hi;
        size_t off;
    } keys[] = {
        {"ctx", 16, MAX_CTX, offsetof(backend_params, n_ctx)},
        {"slots", 1, BACKEND_MAX_SLOTS, offsetof(backend_params, n_slots)},
        {"threads", 0, MAX_THREADS, offsetof(backend_params, n_threads)}, /* 0 = all CPUs */
        {"batch", 1, MAX_BATCH, offsetof(backend_params, n_batch)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcmp(name, keys[i].key) != 0)
            continue;
        if (parse_u32(value, keys[i].lo, keys[i].hi, (uint32_t *)((char *)m + keys[i].off)) == 0)
            return 0;
        snprintf(ps->error, sizeof ps->error, "bad value \"%.64s\" for \"%s\" (an integer %u..%u)",
                 value, name, keys[i].lo, keys[i].hi);
        return -1;
    }
    return 1; /* not a number key */
}

static int model_key(parse_state *ps, backend_params *m, const char *name, const char *value)
{
    agent_model_origin *origin = &ps->c->origins[m - ps->c->models];
    int rc = model_number(ps, m, name, value);
    if (rc == 0 && strcmp(name, "threads") == 0)
        origin->threads_set = 1;
    if (rc <= 0)
        return rc;
    if (strcmp(name, "path") == 0)
        return set_string(ps, (char **)&m->path, name, value);
    if (strcmp(name, "chat_template") == 0) {
        origin->chat_template_line = ps->line;
        return set_string(ps, (char **)&m->chat_template, name, value);
    }
    if (strcmp(name, "backend") == 0) {
        if (strcmp(value, "llama") == 0 || strcmp(value, "simulated") == 0) {
            m->kind = value[0] == 's' ? BACKEND_SIMULATED : BACKEND_LLAMA;
            return 0;
        }
        snprintf(ps->error, sizeof ps->error,
                 "bad value \"%.64s\" for \"backend\" (llama|simulated)", value);
        return -1;
    }
    if (strcmp(name, "deterministic") == 0) {
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
            m->deterministic = value[0] == 't';
            return 0;
        }
        snprintf(ps->error, sizeof ps->error,
                 "bad value \"%.64s\" for \"deterministic\" (true|false)", value);
        return -1;
    }
    if (strcmp(name, "tokens_per_s") == 0) {
        char *end;
        double v = strtod(value, &end);
        if (end != value && !*end && v > 0 && v <= 1e6) {
            m->sim_tokens_per_s = v;
            return 0;
        }
        snprintf(ps->error, sizeof ps->error, "bad value \"%.64s\" for \"tokens_per_s\"", value);
        return -1;
    }
    snprintf(ps->error, sizeof ps->error, "unknown key \"%.64s\" in [model %s]", name, m->name);
    return -1;
}

/* The model of section "model NAME", created on its first key; a second section of that name
 * is an error, not merged into the first. */
static backend_params *section_model(parse_state *ps, const char *section, int first_key)
{
    const char *name = section + 6;
    agent_config *c = ps->c;
    for (size_t i = 0; i < c->n_models; i++) {
        if (strcmp(c->models[i].name, name) != 0)
            continue;
        if (!first_key)
            return &c->models[i];
        snprintf(ps->error, sizeof ps->error, "duplicate section [model %.64s] (first at line %d)",
                 name, c->origins[i].section_line);
        ps->about = ps->section_line;
        return NULL;
    }
    if (c->n_models == AGENT_MAX_MODELS) {
        snprintf(ps->error, sizeof ps->error, "more than %d models", AGENT_MAX_MODELS);
        return NULL;
    }
    backend_params *m = &c->models[c->n_models];
    memset(m, 0, sizeof *m);
    memset(&c->origins[c->n_models], 0, sizeof c->origins[0]);
    c->origins[c->n_models].section_line = ps->section_line;
    if (!(m->name = strdup(name)))
        return NULL;
    c->n_models++;
    return m;
}

/* A key given twice in one section, or a second [agent]: refused, since the later value would
 * silently win. Returns 0, or -1 with ps->error set. */
static int check_duplicate(parse_state *ps, const char *section, const char *name, int first_key)
{
    if (first_key)
        ps->n_seen = 0;
    if (first_key && strcmp(section, "agent") == 0) {
        if (ps->agent_line) {
            snprintf(ps->error, sizeof ps->error, "duplicate section [agent] (first at line %d)",
                     ps->agent_line);
            ps->about = ps->section_line;
            return -1;
        }
        ps->agent_line = ps->section_line;
    }
    for (size_t i = 0; i < ps->n_seen; i++) {
        if (strcmp(ps->seen[i], name) == 0) {
            snprintf(ps->error, sizeof ps->error,
                     "duplicate key \"%.64s\" in [%.64s] (first at line %d)", name, section,
                     ps->seen_line[i]);
            return -1;
        }
    }
    /* A name too long to note is no key we know: the handler refuses it. */
    if (ps->n_seen < SECTION_MAX_KEYS && strlen(name) < KEY_NAME_CAP) {
        snprintf(ps->seen[ps->n_seen], KEY_NAME_CAP, "%s", name);
        ps->seen_line[ps->n_seen++] = ps->line;
    }
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    parse_state *ps = user;
    char *first = ps->error[0] ? strdup(ps->error) : NULL; /* keep the first error only */
    int first_key = ps->section_start;
    /* inih hands an indented line after a key to us as that key again: not a duplicate. */
    int continued = ps->leading_space && ps->after_key;
    ps->section_start = 0;
    ps->after_key = 1;
    ps->about = 0;
    int rc;
    if (!continued && check_duplicate(ps, section, name, first_key) != 0) {
        rc = -1;
    } else if (strcmp(section, "agent") == 0) {
        rc = agent_key(ps, name, value);
    } else if (strncmp(section, "model ", 6) == 0 && section[6]) {
        backend_params *m = section_model(ps, section, first_key);
        rc = m ? model_key(ps, m, name, value) : -1;
    } else {
        snprintf(ps->error, sizeof ps->error, "unknown section [%.64s]", section);
        rc = -1;
    }
    if (rc != 0 && !ps->error[0])
        snprintf(ps->error, sizeof ps->error, "out of memory");
    if (rc != 0 && !ps->error_line) {
        ps->error_line = ps->line;
        ps->error_at = ps->about ? ps->about : ps->line;
    }
    if (first) {
        snprintf(ps->error, sizeof ps->error, "%s", first);
        free(first);
    }
    return rc == 0;
}

static int check_models(const agent_config *c, const char *path, ef_errmsg *em)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (c->models[i].kind == BACKEND_LLAMA && !c->models[i].path)
            return errmsg_set(em, EF_ECONFIG, "%s: [model %s] has no \"path\"", path,
                              c->models[i].name);
    return 0;
}

/* Open path as a stream, refusing a FIFO or device at once instead of blocking on it. */
static FILE *open_config(const char *path, ef_errmsg *em, int *rc)
{
    int fd = config_open_regular(path, EF_ECONFIG, NULL, em);
    if (fd < 0) {
        /* A file we may not read is a configuration mistake, like a bad line in it. */
        *rc = fd == EF_ENOENT ? EF_ENOENT : EF_ECONFIG;
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        *rc = errmsg_set(em, EF_ENOMEM, "%s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

int agent_config_load(agent_config *c, const char *path, ef_errmsg *em)
{
    int rc = 0;
    parse_state ps = {.c = c, .f = open_config(path, em, &rc)};
    if (!ps.f)
        return rc;
    int line = ini_parse_stream(read_line, &ps, on_key, &ps);
    fclose(ps.f);
    /* inih reports the first bad line; ours may come after a line inih could not parse. */
    if (line != 0)
        return line == ps.error_line
                   ? errmsg_set(em, EF_ECONFIG, "%s:%d: %s", path, ps.error_at, ps.error)
                   : errmsg_set(em, EF_ECONFIG, "%s:%d: syntax error", path, line);
    return check_models(c, path, em);
}

int agent_config_add_model(agent_config *c, const char *path, backend_kind kind, ef_errmsg *em)
{
    if (c->n_models == AGENT_MAX_MODELS)
        return errmsg_set(em, EF_ECONFIG, "more than %d models", AGENT_MAX_MODELS);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (len == 0)
        return errmsg_set(em, EF_ECONFIG, "--model %s: no file name", path);
    backend_params *m = &c->models[c->n_models];
    memset(m, 0, sizeof *m);
    memset(&c->origins[c->n_models], 0, sizeof c->origins[0]);
    m->kind = kind;
    m->name = strndup(base, len);
    m->path = strdup(path);
    if (!m->name || !m->path) {
        free((char *)m->name);
        free((char *)m->path);
        return errmsg_set(em, EF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->n_models; i++) {
        if (strcmp(c->models[i].name, m->name) == 0) {
            int rc = errmsg_set(em, EF_ECONFIG, "--model %s: a model named \"%s\" exists", path,
                                m->name);
            free((char *)m->name);
            free((char *)m->path);
            return rc;
        }
    }
    c->n_models++;
    return 0;
}

void agent_config_defaults(agent_config *c, uint32_t ctx, uint32_t slots, uint32_t threads)
{
    for (size_t i = 0; i < c->n_models; i++) {
        backend_params *m = &c->models[i];
        if (!m->n_ctx)
            m->n_ctx = ctx;
        if (!m->n_slots)
            m->n_slots = slots;
        if (!m->n_threads && !c->origins[i].threads_set)
            m->n_threads = threads;
    }
}

void agent_config_free(agent_config *c)
{
    free(c->name);
    free(c->coordinator);
    free(c->server_key);
    free(c->key);
    for (size_t i = 0; i < c->n_models; i++) {
        free((char *)c->models[i].name);
        free((char *)c->models[i].path);
        free((char *)c->models[i].chat_template);
    }
    memset(c, 0, sizeof *c);
}
