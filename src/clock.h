/* Clocks. Pure logic (scheduler, backoff, rate estimates) never calls these: it takes "now" as
 * an argument so unit tests can drive time. Only the loops that call into it read a clock. */
#ifndef EF_CLOCK_H
#define EF_CLOCK_H

#include <stdint.h>

uint64_t clock_mono_ns(void); /* CLOCK_MONOTONIC, for intervals */
uint64_t clock_mono_ms(void);
uint64_t clock_unix_ms(void); /* wall clock, for deadlines that cross machines */

#endif
