/* libFuzzer target for zap_decide and zap_metadata: the ZAP request (RFC 27) libzmq hands us
 * for every connecting peer, whose address and credentials frames the peer controls. The input
 * is a list of frames, each one length byte then that many bytes; when the first byte is odd the
 * credentials frame is replaced by one of the known keys (input byte picks which), so the
 * accepting path is reached too. Invariants: "200" only for CURVE with exactly one 32-byte key
 * that is in the allowlist of exactly that domain, under the right User-Id; status one of
 * 200/400/500; every printable copy NUL-terminated; metadata only for "200" and well-formed. */
#include "fuzz_check.h"
#include "keys.h"
#include "log.h"
#include "zap.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_KEYS 3
/* Keys 0 and 1 are admitted on "agents", key 2 on a domain of 63 characters (the longest the
 * verdict's printable copy holds), so a longer domain that shares its prefix must not pass. */
static const char *const domain_of[N_KEYS] = {
    "agents", "agents", "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"};
static const char *const name_of[N_KEYS] = {"a0", "a1", "long"};
static uint8_t key_bin[N_KEYS][32];
static zap_allow *allow;
static char dirs[2][512];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char base[400];
    snprintf(base, sizeof base, "%s/fuzz_zap.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(base) != NULL);
    snprintf(dirs[0], sizeof dirs[0], "%s/agents", base);
    snprintf(dirs[1], sizeof dirs[1], "%s/long", base);
    CHECK(mkdir(dirs[0], 0700) == 0 && mkdir(dirs[1], 0700) == 0);
    log_set_level(LOG_OFF);
    allow = zap_allow_new();
    CHECK(allow != NULL);
    for (int i = 0; i < N_KEYS; i++) {
        keys_pair kp;
        ef_errmsg em = {{0}};
        CHECK(keys_generate(dirs[i < 2 ? 0 : 1], name_of[i], &kp, &em) == 0);
        CHECK(zmq_z85_decode(key_bin[i], kp.public_z85) != NULL);
    }
    CHECK(zap_allow_add(allow, domain_of[0], dirs[0]) == 0);
    CHECK(zap_allow_add(allow, domain_of[2], dirs[1]) == 0);
}

static int bounded(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!allow)
        setup();
    if (size < 2)
        return 0;
    int inject = data[0] & 1;
    unsigned pick = data[1] % N_KEYS;
    data += 2;
    size -= 2;
    zap_frame f[10];
    size_t n = 0;
    while (size > 0 && n < 10) {
        size_t len = data[0] < size - 1 ? data[0] : size - 1;
        f[n].data = data + 1;
        f[n].len = len;
        n++;
        data += 1 + len;
        size -= 1 + len;
    }
    if (inject && n >= 7)
        f[6] = (zap_frame){key_bin[pick], 32};
    zap_verdict v;
    /* The clock jumps past the cache's life now and then, so renewal runs too. */
    static uint64_t now;
    now += 7;
    zap_decide(allow, f, n, now, &v);

    CHECK(v.status && v.text);
    int ok = strcmp(v.status, "200") == 0, no = strcmp(v.status, "400") == 0;
    CHECK(ok || no || strcmp(v.status, "500") == 0);
    CHECK(bounded(v.user_id, sizeof v.user_id) && bounded(v.key_z85, sizeof v.key_z85));
    CHECK(bounded(v.domain, sizeof v.domain) && bounded(v.address, sizeof v.address));
    CHECK(bounded(v.mechanism, sizeof v.mechanism));
    CHECK(strlen(v.key_z85) == 0 || keys_z85_valid(v.key_z85));
    CHECK(v.refused == no);
    if (ok) {
        CHECK(n == 7 && f[5].len == 5 && memcmp(f[5].data, "CURVE", 5) == 0);
        CHECK(f[0].len == 3 && memcmp(f[0].data, "1.0", 3) == 0 && f[6].len == 32);
        int found = -1;
        for (int i = 0; i < N_KEYS; i++)
            if (memcmp(f[6].data, key_bin[i], 32) == 0)
                found = i;
        CHECK(found >= 0);
        const char *dom = domain_of[found];
        CHECK(f[2].len == strlen(dom) && memcmp(f[2].data, dom, f[2].len) == 0);
        char want[ZAP_USER_ID_MAX];
        snprintf(want, sizeof want, "%s/%s", found < 2 ? "agents" : "long", name_of[found]);
        CHECK(strcmp(v.user_id, want) == 0);
    } else {
        CHECK(v.user_id[0] == '\0');
    }
    uint8_t meta[128];
    size_t cap = size % 2 ? sizeof meta : 20; /* too small a buffer must give 0, not overflow */
    size_t m = zap_metadata(&v, meta, cap);
    if (ok && cap >= 1 + 3 + 4 + KEYS_Z85_LEN) {
        CHECK(m == 1 + 3 + 4 + KEYS_Z85_LEN && meta[0] == 3 && memcmp(meta + 1, "Key", 3) == 0);
        CHECK(meta[4] == 0 && meta[5] == 0 && meta[6] == 0 && meta[7] == KEYS_Z85_LEN);
        CHECK(memcmp(meta + 8, v.key_z85, KEYS_Z85_LEN) == 0);
    } else {
        CHECK(m == 0);
    }
    return 0;
}
