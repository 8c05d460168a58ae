/* Private to ctl_top.c and ctl_top_screen.c: the options of top and telemetry, and top's
 * screen model (one row per device with its sparkline history). */
#ifndef EF_CTL_TOP_H
#define EF_CTL_TOP_H

#include "codec.h"
#include "ctl_connect.h"

#define TOP_SPARK   40  /* samples in a sparkline */
#define TOP_DEVICES 256 /* rows kept */

typedef struct {
    ctl_connect_opts co;
    const char *sort;  /* tps, name, ttft, queue, temp */
    const char *agent; /* telemetry --agent */
    unsigned long count;
} ctl_top_opts;

typedef struct {
    char name[80];
    Edgefleet__TelemetrySample *latest; /* owned (protobuf-c unpacked copy) */
    double spark[TOP_SPARK];            /* gen_tps, oldest first */
    size_t n_spark;
    uint64_t seen_ms; /* mono ms of the latest */
} top_device;

typedef struct {
    top_device dev[TOP_DEVICES];
    size_t n;
    top_device fleet;
} top_screen;

/* Parse top/telemetry options (argv[0] is the command): -1 to go on, else the exit code. */
int ctl_top_parse(int argc, char **argv, ctl_top_opts *o);
/* Keep a sample (copied) in its device's row, or the fleet's. */
void top_screen_add(top_screen *s, const Edgefleet__TelemetrySample *sample, uint64_t now_ms);
/* Draw the screen on out (ANSI: home and clear when ansi), rows ordered by sort. */
void top_screen_draw(top_screen *s, FILE *out, const char *sort, int ansi, uint64_t now_ms);
/* The screen as one JSON document (caller frees with cJSON_Delete). */
void *top_screen_json(const top_screen *s);
void top_screen_free(top_screen *s);
/* A sparkline of v[0..n) scaled to max into out (UTF-8, 3 bytes per cell). */
void top_sparkline(const double *v, size_t n, double max, char *out, size_t cap);

#endif
