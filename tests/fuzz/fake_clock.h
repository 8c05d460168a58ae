/* A clock the fuzz targets drive: they link this instead of src/clock.c (ef_core's clock.o is
 * then never pulled from the archive), so timeouts, deadlines and liveness windows pass when
 * the input says, not when the machine is slow, and a run is a function of its input. */
#ifndef EF_FUZZ_FAKE_CLOCK_H
#define EF_FUZZ_FAKE_CLOCK_H

#include <stdint.h>

/* Unix time the clock starts at on each reset (2027-01-15): inputs write deadlines near it. */
#define FAKE_CLOCK_UNIX_START_MS 1800000000000ull

/* Back to the start: call at the beginning of every input. */
void fake_clock_reset(void);
void fake_clock_advance_ms(uint64_t ms);
void fake_clock_advance_ns(uint64_t ns);

#endif
