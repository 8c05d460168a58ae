/* libFuzzer target for key files and allowlist directories: what an operator (or anyone who can
 * write there) puts on disk. First byte: mode (bits 0-1) and 0600 or 0644 (bit 2). Mode 0: the
 * rest is a secret NAME.key for keys_load_pair; mode 1: a NAME.pub for keys_load_public; mode 2
 * swaps the extensions, which both loaders must refuse. Mode 3: the rest is entries (name length,
 * name, content length, content) written as files of one allowlist directory, names from the
 * input ('/' and NUL made '_'), then read by keys_allowlist_each / _find and zap_allow_add +
 * zap_allow_lookup, which must agree. Everything lives under $TMPDIR and is removed after each
 * input. Invariants: a loaded key is canonical Z85 of KEYS_Z85_LEN, names and User-Ids are
 * NUL-terminated within their buffers and valid key names. */
#include "fuzz_check.h"
#include "keys.h"
#include "log.h"
#include "zap.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Few files and few find calls (each reads the whole directory): the disk is the cost here. */
#define MAX_ENTRIES 6
#define MAX_FINDS   2
static char base[400];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/fuzz_keys.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(base) != NULL);
    log_set_level(LOG_OFF);
}

static void write_file(const char *path, const uint8_t *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(fchmod(fd, mode) == 0); /* the umask must not decide what is tested */
    CHECK(write(fd, p, n) == (ssize_t)n);
    close(fd);
}

static int key_name_ok(const char *name)
{
    size_t n = strnlen(name, 65);
    if (n == 0 || n > 64 || name[0] == '.')
        return 0;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* A file holding the input, named NAME.key or NAME.pub, loaded as a secret or as a public key. */
static void load_as(const char *ext, int as_secret, mode_t fmode, const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/peer%s", base, ext);
    write_file(path, data, size, fmode);
    int right_ext = strcmp(ext, as_secret ? KEYS_SECRET_EXT : KEYS_PUBLIC_EXT) == 0;
    ef_errmsg em = {{0}};
    int rc;
    if (as_secret) {
        keys_pair kp;
        rc = keys_load_pair(path, &kp, &em);
        if (rc == 0) {
            CHECK(right_ext && (fmode & 077) == 0);
            CHECK(strlen(kp.secret_z85) == KEYS_Z85_LEN && keys_z85_valid(kp.secret_z85));
            CHECK(strlen(kp.public_z85) == KEYS_Z85_LEN && keys_z85_valid(kp.public_z85));
        }
    } else {
        char z85[KEYS_Z85_LEN + 1];
        rc = keys_load_public(path, z85, &em);
        if (rc == 0) {
            CHECK(right_ext);
            CHECK(strlen(z85) == KEYS_Z85_LEN && keys_z85_valid(z85));
        }
    }
    if (rc != 0)
        CHECK(memchr(em.msg, '\0', sizeof em.msg) != NULL && em.msg[0] != '\0');
    CHECK(unlink(path) == 0);
}

typedef struct {
    int n;
    uint8_t keys[64][32];
} seen;

static int on_key(const char *name, const unsigned char key[32], void *user)
{
    seen *s = user;
    CHECK(key_name_ok(name));
    if (s->n < 64)
        memcpy(s->keys[s->n], key, 32);
    s->n++;
    return 0;
}

static void allowlist(const uint8_t *data, size_t size, mode_t fmode)
{
    char dir[512], paths[MAX_ENTRIES][512];
    int n_paths = 0;
    snprintf(dir, sizeof dir, "%s/agents", base);
    CHECK(mkdir(dir, 0700) == 0);
    while (size >= 2 && n_paths < MAX_ENTRIES) {
        size_t nl = data[0] < size - 1 ? data[0] : size - 1;
        char name[256];
        for (size_t i = 0; i < nl; i++)
            name[i] = data[1 + i] == '/' || data[1 + i] == '\0' ? '_' : (char)data[1 + i];
        name[nl] = '\0';
        data += 1 + nl;
        size -= 1 + nl;
        size_t cl = 0;
        if (size > 0) {
            cl = data[0] < size - 1 ? data[0] : size - 1;
            data++;
            size--;
        }
        int dup = 0;
        for (int i = 0; i < n_paths; i++)
            dup |= strcmp(strrchr(paths[i], '/') + 1, name) == 0;
        if (nl > 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !dup) {
            snprintf(paths[n_paths], sizeof paths[n_paths], "%s/%s", dir, name);
            write_file(paths[n_paths++], data, cl, fmode);
        }
        data += cl;
        size -= cl;
    }
    seen s = {0};
    int n = keys_allowlist_each(dir, on_key, &s);
    CHECK(n == s.n && n <= n_paths);
    zap_allow *a = zap_allow_new();
    CHECK(a != NULL);
    CHECK(zap_allow_add(a, "agents", dir) == 0);
    for (int i = 0; i < s.n && i < 64; i++) {
        char name[8]; /* shorter than most names: must be cut, and terminated */
        memset(name, 'x', sizeof name);
        if (i < MAX_FINDS) {
            CHECK(keys_allowlist_find(dir, s.keys[i], name, sizeof name) == 1);
            CHECK(memchr(name, '\0', sizeof name) != NULL);
        }
        char uid[ZAP_USER_ID_MAX];
        CHECK(zap_allow_lookup(a, "agents", s.keys[i], uid, sizeof uid, 0) == 1);
        CHECK(strncmp(uid, "agents/", 7) == 0 && key_name_ok(uid + 7));
        CHECK(zap_allow_lookup(a, "clients", s.keys[i], uid, sizeof uid, 0) == 0);
    }
    uint8_t stranger[32];
    memset(stranger, 0xa5, sizeof stranger);
    int known = 0;
    for (int i = 0; i < s.n && i < 64; i++)
        known |= memcmp(s.keys[i], stranger, 32) == 0;
    CHECK(keys_allowlist_find(dir, stranger, NULL, 0) == known);
    CHECK(zap_allow_lookup(a, "agents", stranger, NULL, 0, 0) == known);
    zap_allow_destroy(&a);
    for (int i = 0; i < n_paths; i++)
        CHECK(unlink(paths[i]) == 0);
    CHECK(rmdir(dir) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base[0])
        setup();
    if (size < 1)
        return 0;
    mode_t fmode = data[0] & 4 ? 0644 : 0600;
    switch (data[0] & 3) {
    case 0:
        load_as(KEYS_SECRET_EXT, 1, fmode, data + 1, size - 1);
        break;
    case 1:
        load_as(KEYS_PUBLIC_EXT, 0, fmode, data + 1, size - 1);
        break;
    case 2: /* the wrong half: both must be refused whatever they hold */
        load_as(KEYS_PUBLIC_EXT, 1, fmode, data + 1, size - 1);
        load_as(KEYS_SECRET_EXT, 0, fmode, data + 1, size - 1);
        break;
    default:
        allowlist(data + 1, size - 1, fmode);
        break;
    }
    return 0;
}
