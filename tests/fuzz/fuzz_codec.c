/* libFuzzer target for codec_decode, the first code every frame from the network reaches: any
 * input must decode or fail with an error code, never crash, leak or read out of bounds. A frame
 * that decodes must re-encode and decode again. Built only with clang and -DEF_FUZZ=ON:
 *   ./fuzz_codec -max_total_time=60 corpus/ */
#include "codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Stays on in release builds, unlike assert(): the fuzzer's findings must not depend on NDEBUG. */
#define CHECK(cond)                                       \
    do {                                                  \
        if (!(cond)) {                                    \
            fprintf(stderr, "check failed: %s\n", #cond); \
            abort();                                      \
        }                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envelope *env = NULL;
    /* A small limit too, so the size check runs on both sides of the boundary. */
    size_t limit = size > 0 && (data[0] & 1) ? 64 : 0;
    if (codec_decode(data, size, limit, &env) != 0) {
        CHECK(env == NULL);
        return 0;
    }
    uint8_t *again = NULL;
    size_t len = 0;
    if (codec_encode(env, 0, &again, &len) == 0) {
        envelope *round = NULL;
        int rc = codec_decode(again, len, 0, &round);
        CHECK(rc == 0);
        (void)rc;
        codec_free(&round);
    }
    free(again);
    codec_free(&env);
    return 0;
}
