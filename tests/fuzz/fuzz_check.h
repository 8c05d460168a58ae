/* CHECK() for the fuzz targets of this block: stays on in release builds, unlike assert(), so a
 * finding never depends on NDEBUG. */
#ifndef EF_FUZZ_CHECK_H
#define EF_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                       \
    do {                                                  \
        if (!(cond)) {                                    \
            fprintf(stderr, "check failed: %s\n", #cond); \
            abort();                                      \
        }                                                 \
    } while (0)

#endif
