/* Implementation of http_keys.h. The file is small and read whole; each key is kept as its
 * BLAKE2b hash (libsodium's crypto_generichash) so that a key found in the coordinator's
 * memory is not the key, and the comparison (sodium_memcmp) takes the same time whatever the
 * key. A change on disk is seen by stat() on every check: one syscall, far cheaper than the
 * request it guards. Loop thread. */
#include "http_keys.h"

#include "log.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HASH_LEN 32

typedef struct {
    char name[HTTP_KEY_NAME_MAX];
    unsigned char hash[HASH_LEN];
} key_entry;

struct http_keys {
    char *path;
    key_entry *keys;
    size_t n;
    struct stat seen; /* the file as last read */
};

static void hash_key(const char *key, size_t len, unsigned char out[HASH_LEN])
{
    crypto_generichash(out, HASH_LEN, (const unsigned char *)key, len, NULL, 0);
}

static int name_ok(const char *s, size_t len)
{
    if (len == 0 || len >= HTTP_KEY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/* One line into *e. 1 taken, 0 blank or comment, -1 bad (why filled). */
static int parse_line(char *line, key_entry *e, char *why, size_t cap)
{
    char *p = line + strspn(line, " \t");
    p[strcspn(p, "\r\n")] = '\0';
    if (!*p || *p == '#')
        return 0;
    size_t nl = strcspn(p, " \t");
    char *key = p + nl;
    key += strspn(key, " \t");
    size_t kl = strcspn(key, " \t");
    if (!name_ok(p, nl))
        return snprintf(why, cap, "name must be 1 to 64 of A-Z a-z 0-9 . _ -"), -1;
    if (kl < HTTP_KEY_MIN || kl > HTTP_KEY_MAX)
        return snprintf(why, cap, "expected NAME KEY, the key %d to %d characters", HTTP_KEY_MIN,
                        HTTP_KEY_MAX),
               -1;
    if (key[kl + strspn(key + kl, " \t")] != '\0')
        return snprintf(why, cap, "expected NAME KEY, found more after the key"), -1;
    for (size_t i = 0; i < kl; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
            return snprintf(why, cap, "the key must be printable ASCII"), -1;
    memcpy(e->name, p, nl);
    e->name[nl] = '\0';
    hash_key(key, kl, e->hash);
    sodium_memzero(key, kl);
    return 1;
}

static int is_dup(const key_entry *keys, size_t n, const key_entry *e, char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].name, e->name) == 0)
            return snprintf(why, cap, "name %s given twice", e->name), 1;
        if (sodium_memcmp(keys[i].hash, e->hash, HASH_LEN) == 0)
            return snprintf(why, cap, "the key of %s is also %s's", e->name, keys[i].name), 1;
    }
    return 0;
}

/* Read the file into a new table. strict: the first bad line fails it (EF_ECONFIG); else bad
 * lines are logged and skipped. Returns 0 with *out, *n_out set, or an EF_E* code. */
static int load(const char *path, int strict, key_entry **out, size_t *n_out, struct stat *st,
                ef_errmsg *em)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errmsg_set(em, EF_EIO, "--http-api-keys %s: %s", path, strerror(errno));
    if (fstat(fileno(f), st) != 0) {
        fclose(f);
        return errmsg_set(em, EF_EIO, "--http-api-keys %s: %s", path, strerror(errno));
    }
    key_entry *keys = calloc(HTTP_KEYS_MAX, sizeof *keys);
    char line[1024], why[128];
    size_t n = 0, lineno = 0;
    int rc = keys ? 0 : errmsg_set(em, EF_ENOMEM, "out of memory reading %s", path);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        key_entry e;
        int whole = strchr(line, '\n') || feof(f); /* before parse_line cuts the newline */
        int got = whole ? parse_line(line, &e, why, sizeof why)
                        : (snprintf(why, sizeof why, "line too long"), -1);
        if (got == 1 && (n == HTTP_KEYS_MAX || is_dup(keys, n, &e, why, sizeof why)))
            got = n == HTTP_KEYS_MAX ? (snprintf(why, sizeof why, "too many keys"), -1) : -1;
        if (got == 1)
            keys[n++] = e;
        else if (got < 0 && strict)
            rc = errmsg_set(em, EF_ECONFIG, "%s:%zu: %s", path, lineno, why);
        else if (got < 0)
            log_warn("http api keys %s:%zu: %s; line skipped", path, lineno, why);
        if (!whole)
            for (int ch; (ch = fgetc(f)) != EOF && ch != '\n';)
                ; /* the rest of a long line */
        sodium_memzero(line, sizeof line);
    }
    fclose(f);
    if (rc) {
        free(keys);
        return rc;
    }
    *out = keys;
    *n_out = n;
    return 0;
}

http_keys *http_keys_new(const char *path, ef_errmsg *em)
{
    http_keys *k = calloc(1, sizeof *k);
    if (!k || !(k->path = strdup(path))) {
        free(k);
        errmsg_set(em, EF_ENOMEM, "out of memory");
        return NULL;
    }
    if (load(path, 1, &k->keys, &k->n, &k->seen, em) != 0) {
        http_keys_destroy(&k);
        return NULL;
    }
    return k;
}

void http_keys_destroy(http_keys **self_p)
{
    http_keys *k = *self_p;
    if (!k)
        return;
    *self_p = NULL;
    if (k->keys)
        sodium_memzero(k->keys, HTTP_KEYS_MAX * sizeof *k->keys);
    free(k->keys);
    free(k->path);
    free(k);
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Re-read the file if it changed. A file that vanished or cannot be read leaves no key: a
 * removed file must not keep the keys it held. */
static void refresh(http_keys *k)
{
    struct stat st;
    if (stat(k->path, &st) == 0 && same_file(&st, &k->seen))
        return;
    key_entry *keys = NULL;
    size_t n = 0;
    ef_errmsg em = {{0}};
    if (load(k->path, 0, &keys, &n, &st, &em) != 0) {
        if (k->n || k->seen.st_ino)
            log_warn("http api keys: %s; every key refused until it can be read", em.msg);
        memset(&k->seen, 0, sizeof k->seen);
        n = 0;
    } else {
        k->seen = st;
        log_info("http api keys %s: %zu keys (was %zu)", k->path, n, k->n);
    }
    free(k->keys);
    k->keys = keys;
    k->n = n;
}

int http_keys_check(http_keys *k, const char *key, size_t len, char name[HTTP_KEY_NAME_MAX])
{
    refresh(k);
    if (len < HTTP_KEY_MIN || len > HTTP_KEY_MAX)
        return EF_EDENIED;
    unsigned char h[HASH_LEN];
    hash_key(key, len, h);
    int found = -1;
    for (size_t i = 0; i < k->n; i++) /* no early exit: the time says nothing of which key */
        if (sodium_memcmp(k->keys[i].hash, h, HASH_LEN) == 0)
            found = (int)i;
    if (found < 0)
        return EF_EDENIED;
    memcpy(name, k->keys[found].name, HTTP_KEY_NAME_MAX);
    return 0;
}

size_t http_keys_count(const http_keys *k) { return k ? k->n : 0; }
