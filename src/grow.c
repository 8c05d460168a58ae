/* Implementation of grow.h. */
#include "grow.h"

#include "errors.h"

#include <stdint.h>
#include <stdlib.h>

int grow_array(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    if (elem && n > SIZE_MAX / elem)
        return EF_ENOMEM;
    void *p = realloc(*buf, n * elem);
    if (!p)
        return EF_ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}
