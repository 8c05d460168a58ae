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

uint64_t sysinfo_available_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

int sysinfo_temperature_c(double *out)
{
    int found = 0;
    double best = 0;
    /* Zones are numbered from 0; boards have a handful. Gaps end nothing: keep looking a bit. */
    for (int i = 0; i < 32; i++) {
        char path[64];
        snprintf(path, sizeof path, "/sys/class/thermal/thermal_zone%d/temp", i);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long milli = 0;
        int ok = fscanf(f, "%ld", &milli) == 1;
        fclose(f);
        /* A zone reads in millidegrees; absurd values are a driver's "not available". */
        if (!ok || milli <= -50000 || milli >= 200000)
            continue;
        double c = (double)milli / 1000.0;
        if (!found || c > best)
            best = c;
        found = 1;
    }
    if (!found)
        return -1;
    *out = best;
    return 0;
}

int sysinfo_cpu_ticks(uint64_t *total, uint64_t *busy)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return -1;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t += v[i];
    *total = t;
    *busy = t - v[3] - v[4]; /* idle, iowait */
    return 0;
}
