/* Implementation of token_bucket.h. */
#include "token_bucket.h"

#define TB_MILLI 1000u /* thousandths of a token per token */

void token_bucket_init(token_bucket *b, uint32_t rate_per_s, uint32_t burst, uint64_t now_ms)
{
    b->rate_per_s = rate_per_s;
    b->burst = burst ? burst : rate_per_s ? rate_per_s : 1;
    b->milli = (uint64_t)b->burst * TB_MILLI;
    b->last_ms = now_ms;
}

/* A rate of r tokens/s adds exactly r thousandths per ms. */
static void refill(token_bucket *b, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)b->burst * TB_MILLI;
    if (now_ms <= b->last_ms)
        return; /* same ms, or the clock stepped back: wait for it to pass last_ms */
    uint64_t elapsed = now_ms - b->last_ms;
    b->last_ms = now_ms;
    if (elapsed >= cap / b->rate_per_s + 1) { /* full anyway; avoids overflow after long idle */
        b->milli = cap;
        return;
    }
    b->milli += elapsed * b->rate_per_s;
    if (b->milli > cap)
        b->milli = cap;
}

int token_bucket_take(token_bucket *b, uint64_t now_ms)
{
    if (!b->rate_per_s)
        return 1;
    refill(b, now_ms);
    if (b->milli < TB_MILLI)
        return 0;
    b->milli -= TB_MILLI;
    return 1;
}

uint32_t token_bucket_wait_ms(token_bucket *b, uint64_t now_ms)
{
    if (!b->rate_per_s)
        return 0;
    refill(b, now_ms);
    if (b->milli >= TB_MILLI)
        return 0;
    uint64_t need = TB_MILLI - b->milli;
    return (uint32_t)((need + b->rate_per_s - 1) / b->rate_per_s);
}
