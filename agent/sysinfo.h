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

#endif
