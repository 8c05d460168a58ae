/* Pacing of a batch within the fleet's capacity: which items libedgefleet may send now. Pure
 * logic on plain arrays with a clock argument (tests/unit/test_client_pace.c drives it);
 * client_batch.c does the sending. An item is waiting (not sent yet, or held after the fleet
 * refused it as busy), in flight, or ended. The window is how many items the fleet is believed to
 * take at once: it starts at one BatchRequest's worth, drops to what was in flight when the
 * fleet says busy, and grows by one after each window's worth of items ends (additive increase),
 * so a fleet that frees up is used again. Not thread-safe; one pace per call. */
#ifndef EF_CLIENT_PACE_H
#define EF_CLIENT_PACE_H

#include <stddef.h>
#include <stdint.h>

/* pace_next's answer when nothing may be sent now. */
#define PACE_NONE SIZE_MAX

typedef struct {
    size_t n;
    uint8_t *state;       /* per item: PACE_WAITING, PACE_IN_FLIGHT or PACE_ENDED (pace.c) */
    uint64_t *not_before; /* per item: a waiting item is not sent before this (monotonic ms) */
    size_t *heap;         /* waiting items, earliest not_before first, then lowest index; ended
                             items are dropped lazily when they reach the top */
    size_t heap_len;
    size_t window;          /* items the fleet is believed to take at once (>= 1) */
    size_t in_flight;       /* items sent and not ended or refused yet */
    size_t ended_in_window; /* items ended since the window last changed */
} pace;

/* All n_items waiting and due at once; window starts at first_window (>= 1). 0 or EF_ENOMEM
 * (nothing allocated). */
int pace_init(pace *p, size_t n_items, size_t first_window);
/* Free the arrays. NULL-safe, and safe on a pace whose pace_init failed. */
void pace_free(pace *p);

/* The waiting item that may be sent at now_ms (its time has come and the window has room), or
 * PACE_NONE. It stays waiting until pace_sent. */
size_t pace_next(pace *p, uint64_t now_ms);
/* Item i, pace_next's last answer, is on the wire: in flight. Any other i is ignored. */
void pace_sent(pace *p, size_t i);
/* The fleet refused in-flight item i as busy: it waits again, until retry_at_ms, and the window
 * shrinks to what the fleet still holds. */
void pace_busy(pace *p, size_t i, uint64_t retry_at_ms);
/* Item i ended (answered, failed, or given up while waiting). Ending an in-flight item frees one
 * place in the window. Ending an ended item does nothing. */
void pace_end(pace *p, size_t i);

/* When pace_next may next answer something: the earliest not_before of a waiting item while the
 * window has room; UINT64_MAX when nothing waits or the window is full (a reply will change it). */
uint64_t pace_wake_ms(pace *p);

#endif
