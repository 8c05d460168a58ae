/* What the agent tells the coordinator about its board: host name, CPU model and cores (from
 * /proc/cpuinfo), memory, and its own resident set size (from /proc/self/statm). Linux only;
 * fields that cannot be read stay empty or 0. Any thread. */
#ifndef EF_AGENT_SYSINFO_H
#define EF_AGENT_SYSINFO_H

#include <stdint.h>

typedef struct {
    char hostname[256];
    char cpu_model[256];
    uint32_t cpu_cores;
    uint64_t memory_bytes;
} sysinfo_board;

void sysinfo_read_board(sysinfo_board *out);
/* Resident set size of this process in bytes; 0 when unknown. */
uint64_t sysinfo_rss_bytes(void);
/* MemAvailable from /proc/meminfo in bytes (what can be allocated without swapping); 0 when
 * unknown. libuv has it as uv_get_available_memory only from 1.45. */
uint64_t sysinfo_available_bytes(void);
/* The hottest zone under /sys/class/thermal in degrees Celsius. Returns 0, or -1 when the
 * board has no zone we can read (the sample then says it has no temperature). */
int sysinfo_temperature_c(double *out);
/* CPU time since boot from /proc/stat's "cpu" line, in ticks: all of it and the part not idle
 * (idle and iowait excluded). Returns 0, or -1 when it cannot be read. */
int sysinfo_cpu_ticks(uint64_t *total, uint64_t *busy);

#endif
