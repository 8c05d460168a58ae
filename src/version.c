/* ef_version(): the version this library was built as, from the header's EF_VERSION_*. */
#include "edgefleet.h"

#define EF_STR2(x) #x
#define EF_STR(x)  EF_STR2(x)

const char *ef_version(void)
{
    return EF_STR(EF_VERSION_MAJOR) "." EF_STR(EF_VERSION_MINOR) "." EF_STR(EF_VERSION_PATCH);
}
