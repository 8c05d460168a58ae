/* top's screen model (ctl_top.h): rows per device, sparklines, sorting, drawing. */
#include "ctl_json.h"
#include "ctl_top.h"

#include <stdlib.h>
#include <string.h>

static Edgefleet__TelemetrySample *copy_sample(const Edgefleet__TelemetrySample *s)
{
    size_t len = edgefleet__telemetry_sample__get_packed_size(s);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    edgefleet__telemetry_sample__pack(s, buf);
    Edgefleet__TelemetrySample *c = edgefleet__telemetry_sample__unpack(NULL, len, buf);
    free(buf);
    return c;
}

static void keep(top_device *d, const Edgefleet__TelemetrySample *s, uint64_t now_ms)
{
    Edgefleet__TelemetrySample *c = copy_sample(s);
    if (!c)
        return;
    if (d->latest)
        edgefleet__telemetry_sample__free_unpacked(d->latest, NULL);
    d->latest = c;
    d->seen_ms = now_ms;
    if (d->n_spark == TOP_SPARK) {
        memmove(d->spark, d->spark + 1, (TOP_SPARK - 1) * sizeof d->spark[0]);
        d->n_spark--;
    }
    d->spark[d->n_spark++] = s->gen_tps;
}

void top_screen_add(top_screen *s, const Edgefleet__TelemetrySample *sample, uint64_t now_ms)
{
    const char *name = sample->agent_name ? sample->agent_name : "";
    if (sample->agents || strcmp(name, "fleet") == 0) {
        keep(&s->fleet, sample, now_ms);
        return;
    }
    size_t i = 0;
    while (i < s->n && strcmp(s->dev[i].name, name) != 0)
        i++;
    if (i == s->n) {
        if (s->n == TOP_DEVICES)
            return;
        memset(&s->dev[i], 0, sizeof s->dev[i]);
        snprintf(s->dev[i].name, sizeof s->dev[i].name, "%s", name);
        s->n++;
    }
    keep(&s->dev[i], sample, now_ms);
}

void top_sparkline(const double *v, size_t n, double max, char *out, size_t cap)
{
    static const char *bars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                 "\u2585", "\u2586", "\u2587", "\u2588"};
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 <= cap; i++) {
        int level = max > 0 ? (int)(v[i] / max * 7.0 + 0.5) : 0;
        level = level < 0 ? 0 : level > 7 ? 7 : level;
        memcpy(out + k, bars[level], 3);
        k += 3;
    }
    if (cap)
        out[k < cap ? k : cap - 1] = '\0';
}

static const char *g_sort;

static double key_of(const top_device *d)
{
    const Edgefleet__TelemetrySample *s = d->latest;
    if (strcmp(g_sort, "ttft") == 0)
        return s->ttft_p95_ms;
    if (strcmp(g_sort, "queue") == 0)
        return s->queued;
    if (strcmp(g_sort, "temp") == 0)
        return s->has_temperature ? s->temperature_c : -1000;
    return s->gen_tps;
}

static int cmp_rows(const void *a, const void *b)
{
    const top_device *x = a, *y = b;
    if (strcmp(g_sort, "name") != 0) {
        double kx = key_of(x), ky = key_of(y);
        if (kx != ky)
            return kx < ky ? 1 : -1; /* highest first */
    }
    return strcmp(x->name, y->name);
}

static void draw_row(FILE *out, const char *name, const Edgefleet__TelemetrySample *s,
                     const char *spark, uint64_t age_ms)
{
    char slots[24], ttft[24] = "-", temp[12] = "-", mem[16] = "-";
    snprintf(slots, sizeof slots, "%u/%u", s->busy_slots, s->total_slots);
    if (s->ttft_count)
        snprintf(ttft, sizeof ttft, "%.0f/%.0f", s->ttft_p50_ms, s->ttft_p95_ms);
    if (s->has_temperature)
        snprintf(temp, sizeof temp, "%.0fC", s->temperature_c);
    if (s->rss_bytes)
        snprintf(mem, sizeof mem, "%.0fM", (double)s->rss_bytes / (1024.0 * 1024.0));
    fprintf(out, "%-16.16s %7s %8.1f %8.1f %11s %5u %5u %5s %6s %5.1fs %s\n", name, slots,
            s->gen_tps, s->prompt_tps, ttft, s->queued, s->finished, temp, mem, age_ms / 1000.0,
            spark);
}

void top_screen_draw(top_screen *s, FILE *out, const char *sort, int ansi, uint64_t now_ms)
{
    g_sort = sort;
    top_device *rows[TOP_DEVICES];
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->dev[i].latest)
            rows[n++] = &s->dev[i];
    top_device sorted[TOP_DEVICES];
    for (size_t i = 0; i < n; i++)
        sorted[i] = *rows[i];
    qsort(sorted, n, sizeof sorted[0], cmp_rows);
    double max = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sorted[i].n_spark; k++)
            max = sorted[i].spark[k] > max ? sorted[i].spark[k] : max;
    if (ansi)
        fputs("\033[H\033[2J", out);
    fprintf(out, "edgefleet top - %zu device(s), sorted by %s, tokens/s scale 0..%.1f\n\n", n, sort,
            max);
    fprintf(out, "%-16s %7s %8s %8s %11s %5s %5s %5s %6s %6s %s\n", "DEVICE", "SLOTS", "GEN t/s",
            "PROMPT", "TTFT p50/95", "QUEUE", "DONE", "TEMP", "RSS", "SEEN", "GEN t/s HISTORY");
    char spark[TOP_SPARK * 3 + 1];
    for (size_t i = 0; i < n; i++) {
        top_sparkline(sorted[i].spark, sorted[i].n_spark, max, spark, sizeof spark);
        draw_row(out, sorted[i].name, sorted[i].latest, spark, now_ms - sorted[i].seen_ms);
    }
    if (n == 0)
        fprintf(out, "(no samples yet)\n");
    /* The total of the rows shown, summed here (the coordinator's telemetry.fleet may not have
     * come yet), and the devices' histories added up, aligned at their newest sample. */
    Edgefleet__TelemetrySample total = EDGEFLEET__TELEMETRY_SAMPLE__INIT;
    double fspark[TOP_SPARK] = {0}, fmax = 0, ttft_w = 0;
    for (size_t i = 0; i < n; i++) {
        const Edgefleet__TelemetrySample *x = sorted[i].latest;
        total.busy_slots += x->busy_slots;
        total.total_slots += x->total_slots;
        total.gen_tps += x->gen_tps;
        total.prompt_tps += x->prompt_tps;
        total.queued += x->queued;
        total.finished += x->finished;
        total.rss_bytes += x->rss_bytes;
        total.ttft_count += x->ttft_count;
        total.ttft_p50_ms += x->ttft_p50_ms * x->ttft_count;
        total.ttft_p95_ms += x->ttft_p95_ms * x->ttft_count;
        ttft_w += x->ttft_count;
        if (x->has_temperature &&
            (!total.has_temperature || x->temperature_c > total.temperature_c))
            total.has_temperature = 1, total.temperature_c = x->temperature_c;
        for (size_t k = 0; k < sorted[i].n_spark; k++)
            fspark[TOP_SPARK - sorted[i].n_spark + k] += sorted[i].spark[k];
    }
    if (ttft_w > 0)
        total.ttft_p50_ms /= ttft_w, total.ttft_p95_ms /= ttft_w;
    for (size_t k = 0; k < TOP_SPARK; k++)
        fmax = fspark[k] > fmax ? fspark[k] : fmax;
    top_sparkline(fspark, TOP_SPARK, fmax, spark, sizeof spark);
    fprintf(out, "%s\n",
            "----------------------------------------------------------------"
            "------------------------");
    draw_row(out, "FLEET", &total, spark, 0);
    fflush(out);
}

void *top_screen_json(const top_screen *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *devs = o ? cJSON_AddArrayToObject(o, "devices") : NULL;
    if (!devs) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->dev[i].latest)
            cJSON_AddItemToArray(devs, ctl_json_sample(s->dev[i].latest));
    cJSON_AddItemToObject(o, "fleet",
                          s->fleet.latest ? ctl_json_sample(s->fleet.latest) : cJSON_CreateNull());
    return o;
}

void top_screen_free(top_screen *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->dev[i].latest)
            edgefleet__telemetry_sample__free_unpacked(s->dev[i].latest, NULL);
    if (s->fleet.latest)
        edgefleet__telemetry_sample__free_unpacked(s->fleet.latest, NULL);
    memset(s, 0, sizeof *s);
}
