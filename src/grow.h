/* The one buffer-growth helper of the tree: appending an element at a time costs amortised
 * O(1). Pure; any thread. */
#ifndef EF_GROW_H
#define EF_GROW_H

#include <stddef.h>

/* Make *buf hold at least need elements of elem bytes, doubling its capacity *cap (64 at
 * first). Returns 0 or EF_ENOMEM (buffer unchanged). */
int grow_array(void **buf, size_t *cap, size_t need, size_t elem);

#endif
