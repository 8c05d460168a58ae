/* Implementation of fake_clock.h and of clock.h's functions on it. */
#include "fake_clock.h"

#include "clock.h"

/* Monotonic time starts well above 0: the code under test uses 0 for "never". */
#define MONO_START_NS 1000000000000ull

static uint64_t g_ns; /* since reset */

void fake_clock_reset(void) { g_ns = 0; }
void fake_clock_advance_ms(uint64_t ms) { g_ns += ms * 1000000u; }
void fake_clock_advance_ns(uint64_t ns) { g_ns += ns; }

uint64_t clock_mono_ns(void) { return MONO_START_NS + g_ns; }
uint64_t clock_mono_ms(void) { return clock_mono_ns() / 1000000u; }
uint64_t clock_unix_ms(void) { return FAKE_CLOCK_UNIX_START_MS + g_ns / 1000000u; }
