/* CHECK for the fuzz targets: stays on in release builds, unlike assert(), so what the fuzzer
 * finds does not depend on NDEBUG. */
#ifndef EF_FUZZ_CHECK_H
#define EF_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif
