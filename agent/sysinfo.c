/* Implementation of sysinfo.h on /proc and sysconf. */
#include "sysinfo.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The value after "key<spaces>:" on a /proc/cpuinfo line, trimmed; NULL if the key differs.
 * x86 says "model name", many ARM boards only "Hardware" or "Model". */
static const char *cpuinfo_value(char *line, const char *key)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0)
        return NULL;
    char *p = line + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    p[strcspn(p, "\n")] = '\0';
    return p;
}

static void read_cpu_model(sysinfo_board *out)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    char fallback[256] = "";
    while (fgets(line, sizeof line, f)) {
        const char *v = cpuinfo_value(line, "model name");
        if (v && *v) {
            snprintf(out->cpu_model, sizeof out->cpu_model, "%s", v);
            break;
        }
        if (!fallback[0] &&
            ((v = cpuinfo_value(line, "Hardware")) || (v = cpuinfo_value(line, "Model"))))
            snprintf(fallback, sizeof fallback, "%s", v);
    }
    fclose(f);
    if (!out->cpu_model[0])
        snprintf(out->cpu_model, sizeof out->cpu_model, "%s", fallback[0] ? fallback : "unknown");
}

void sysinfo_read_board(sysinfo_board *out)
{
    memset(out, 0, sizeof *out);
    if (gethostname(out->hostname, sizeof out->hostname - 1) != 0)
        snprintf(out->hostname, sizeof out->hostname, "unknown");
    read_cpu_model(out);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    out->cpu_cores = cores > 0 ? (uint32_t)cores : 0;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0)
        out->memory_bytes = (uint64_t)pages * (uint64_t)page;
}

uint64_t sysinfo_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}
