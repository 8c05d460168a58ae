/* Implementation of zap.h: the allowlist registry, the decision for one ZAP request, and key
 * snapshots for revocation checks. Key files are read through keys.c, which only reads regular
 * files, so a hostile directory entry cannot block the caller's loop. */
#include "zap.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    char *domain;
    char *dir;
    char *label; /* basename of dir: the "operators" in User-Id "operators/alice" */
} allow_entry;

/* What one domain's directories held when last read, and how they looked then. */
typedef struct {
    char domain[64];
    zap_snapshot *snap;
    uint64_t built_ms;
    struct timespec *mtimes; /* per allow entry (only this domain's are compared) */
} domain_cache;

struct zap_allow {
    allow_entry *entries;
    size_t n;
    domain_cache *caches;
    size_t n_caches;
};

zap_allow *zap_allow_new(void) { return calloc(1, sizeof(zap_allow)); }

void zap_allow_destroy(zap_allow **a_p)
{
    if (!a_p || !*a_p)
        return;
    zap_allow *a = *a_p;
    for (size_t i = 0; i < a->n_caches; i++) {
        zap_snapshot_destroy(&a->caches[i].snap);
        free(a->caches[i].mtimes);
    }
    free(a->caches);
    for (size_t i = 0; i < a->n; i++) {
        free(a->entries[i].domain);
        free(a->entries[i].dir);
        free(a->entries[i].label);
    }
    free(a->entries);
    free(a);
    *a_p = NULL;
}

/* Last path component of dir, trailing slashes ignored ("allow/operators/" -> "operators"). */
static char *dir_label(const char *dir)
{
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    return strndup(dir + start, end - start);
}

int zap_allow_add(zap_allow *a, const char *domain, const char *dir)
{
    if (!a || !domain || !*domain || !dir || !*dir)
        return EF_EINVAL;
    allow_entry *grown = realloc(a->entries, (a->n + 1) * sizeof *grown);
    if (!grown)
        return EF_ENOMEM;
    a->entries = grown;
    allow_entry e = {strdup(domain), strdup(dir), dir_label(dir)};
    if (!e.domain || !e.dir || !e.label) {
        free(e.domain);
        free(e.dir);
        free(e.label);
        return EF_ENOMEM;
    }
    a->entries[a->n++] = e;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        log_warn("allowlist %s for domain \"%s\" is not a directory (yet): nobody is admitted "
                 "from it",
                 dir, domain);
    return 0;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t key[32];
    uint32_t order; /* position as read: of two entries with one key, the earlier wins */
    char user_id[ZAP_USER_ID_MAX];
} snap_entry;

struct zap_snapshot {
    snap_entry *entries;
    size_t n, cap;
    int failed;        /* ENOMEM while filling */
    const char *label; /* while filling: the dir being read */
};

static int snap_add(const char *name, const unsigned char key[32], void *user)
{
    zap_snapshot *s = user;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        snap_entry *grown = realloc(s->entries, cap * sizeof *grown);
        if (!grown) {
            s->failed = 1;
            return 1;
        }
        s->entries = grown;
        s->cap = cap;
    }
    memcpy(s->entries[s->n].key, key, 32);
    s->entries[s->n].order = (uint32_t)s->n;
    snprintf(s->entries[s->n].user_id, ZAP_USER_ID_MAX, "%s/%s", s->label, name);
    s->n++;
    return 0;
}

static int cmp_entry(const void *x, const void *y)
{
    const snap_entry *a = x, *b = y;
    int c = memcmp(a->key, b->key, 32);
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

/* The entry that decides for key (the earliest read among equal keys), or NULL. */
static const snap_entry *snapshot_find(const zap_snapshot *s, const uint8_t key[32])
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* the first entry whose key is not below `key` */
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(s->entries[mid].key, key, 32) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && memcmp(s->entries[lo].key, key, 32) == 0 ? &s->entries[lo] : NULL;
}

zap_snapshot *zap_snapshot_new(const zap_allow *a, const char *domain)
{
    zap_snapshot *s = calloc(1, sizeof *s);
    for (size_t i = 0; s && a && i < a->n && !s->failed; i++) {
        if (strcmp(a->entries[i].domain, domain) != 0)
            continue;
        s->label = a->entries[i].label;
        keys_allowlist_each(a->entries[i].dir, snap_add, s);
    }
    if (s && s->failed)
        zap_snapshot_destroy(&s);
    if (s && s->n > 1)
        qsort(s->entries, s->n, sizeof *s->entries, cmp_entry);
    return s;
}

void zap_snapshot_destroy(zap_snapshot **s_p)
{
    if (!s_p || !*s_p)
        return;
    free((*s_p)->entries);
    free(*s_p);
    *s_p = NULL;
}

int zap_snapshot_has(const zap_snapshot *s, const char *key_z85, const char *user_id)
{
    uint8_t key[32];
    if (!s || !key_z85 || strlen(key_z85) != KEYS_Z85_LEN || !zmq_z85_decode(key, key_z85))
        return 0;
    const snap_entry *e = snapshot_find(s, key);
    return e && user_id && strcmp(e->user_id, user_id) == 0;
}

static struct timespec dir_mtime(const char *dir);

uint64_t zap_allow_stamp(const zap_allow *a, int *recent)
{
    uint64_t stamp = 1469598103934665603ull; /* FNV-1a over the mtimes */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    *recent = 0;
    for (size_t i = 0; a && i < a->n; i++) {
        struct timespec m = dir_mtime(a->entries[i].dir);
        uint64_t v[2] = {(uint64_t)m.tv_sec, (uint64_t)m.tv_nsec};
        for (size_t k = 0; k < 2; k++)
            stamp = (stamp ^ v[k]) * 1099511628211ull;
        *recent |= (uint64_t)now.tv_sec <= (uint64_t)m.tv_sec + 1;
    }
    return stamp;
}

/* ---- cached lookups ------------------------------------------------------------------------ */

static struct timespec dir_mtime(const char *dir)
{
    struct stat st;
    struct timespec none = {0, 0};
    return stat(dir, &st) == 0 ? st.st_mtim : none;
}

/* The domain's cache, read again when ZAP_CACHE_MS passed or a directory changed (a file added
 * or removed changes its directory's mtime). NULL when the domain has no cache and none can
 * be made. */
static domain_cache *cache_for(zap_allow *a, const char *domain, uint64_t now_ms)
{
    domain_cache *c = NULL;
    for (size_t i = 0; i < a->n_caches && !c; i++)
        if (strcmp(a->caches[i].domain, domain) == 0)
            c = &a->caches[i];
    if (!c) {
        domain_cache *grown = realloc(a->caches, (a->n_caches + 1) * sizeof *grown);
        if (!grown)
            return NULL;
        a->caches = grown;
        c = &a->caches[a->n_caches++];
        memset(c, 0, sizeof *c);
        snprintf(c->domain, sizeof c->domain, "%s", domain);
    }
    if (!c->mtimes && !(c->mtimes = calloc(a->n ? a->n : 1, sizeof *c->mtimes)))
        return NULL;
    int stale = !c->snap || now_ms - c->built_ms >= ZAP_CACHE_MS;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->entries[i].domain, domain) != 0)
            continue;
        struct timespec m = dir_mtime(a->entries[i].dir);
        stale |= m.tv_sec != c->mtimes[i].tv_sec || m.tv_nsec != c->mtimes[i].tv_nsec;
        /* File times are coarse (a kernel tick): a change made within a tick of the last read
         * may leave the same mtime. While a directory changed this recently, read it every
         * time. */
        stale |= (uint64_t)now.tv_sec <= (uint64_t)m.tv_sec + 1;
        c->mtimes[i] = m;
    }
    if (stale) {
        zap_snapshot *fresh = zap_snapshot_new(a, domain);
        if (fresh) { /* out of memory: the old snapshot serves on */
            zap_snapshot_destroy(&c->snap);
            c->snap = fresh;
            c->built_ms = now_ms;
        }
    }
    return c->snap ? c : NULL;
}

int zap_allow_lookup(zap_allow *a, const char *domain, const uint8_t key[32], char *user_id,
                     size_t cap, uint64_t now_ms)
{
    domain_cache *c = a && domain ? cache_for(a, domain, now_ms) : NULL;
    const snap_entry *e = c ? snapshot_find(c->snap, key) : NULL;
    if (e && user_id && cap)
        snprintf(user_id, cap, "%s", e->user_id);
    return e != NULL;
}

/* ---- one request ---------------------------------------------------------------------------- */

/* Frame as a printable C string for logs and comparisons (non-printables become '?'). */
static void frame_text(const zap_frame *f, char *out, size_t cap)
{
    size_t n = f->len > cap - 1 ? cap - 1 : f->len;
    for (size_t i = 0; i < n; i++)
        out[i] = f->data[i] >= 0x20 && f->data[i] < 0x7f ? (char)f->data[i] : '?';
    out[n] = '\0';
}

void zap_decide(zap_allow *a, const zap_frame *f, size_t n, uint64_t now_ms, zap_verdict *out)
{
    memset(out, 0, sizeof *out);
    out->status = "500";
    out->text = "malformed ZAP request";
    char version[8] = "";
    if (n < 6)
        return;
    frame_text(&f[0], version, sizeof version);
    frame_text(&f[2], out->domain, sizeof out->domain);
    frame_text(&f[3], out->address, sizeof out->address);
    frame_text(&f[5], out->mechanism, sizeof out->mechanism);
    if (strcmp(version, "1.0") != 0)
        return;
    /* The allowlist is looked up by the printable copy, which truncates at 63 bytes and turns
     * non-printables into '?': a domain it does not hold exactly would be looked up as another
     * one (fuzz_zap: a 64-char domain was admitted on the 63-char domain it starts with). */
    if (f[2].len != strlen(out->domain) ||
        (f[2].len && memcmp(f[2].data, out->domain, f[2].len) != 0))
        return;
    int curve = strcmp(out->mechanism, "CURVE") == 0 && n == 7 && f[6].len == 32;
    if (curve) /* a public key: fine to log, and it helps provisioning */
        zmq_z85_encode(out->key_z85, f[6].data, 32);
    if (curve &&
        zap_allow_lookup(a, out->domain, f[6].data, out->user_id, sizeof out->user_id, now_ms)) {
        out->status = "200";
        out->text = "OK";
        return;
    }
    out->status = "400";
    out->text = curve ? "key not in allowlist" : "CURVE required";
    out->user_id[0] = '\0';
    out->refused = 1;
}

size_t zap_metadata(const zap_verdict *v, uint8_t *out, size_t cap)
{
    size_t name_len = strlen(ZAP_PROPERTY_KEY), value_len = strlen(v->key_z85);
    size_t total = 1 + name_len + 4 + value_len;
    if (value_len == 0 || strcmp(v->status, "200") != 0 || total > cap)
        return 0;
    uint8_t *p = out;
    *p++ = (uint8_t)name_len;
    memcpy(p, ZAP_PROPERTY_KEY, name_len);
    p += name_len;
    *p++ = (uint8_t)(value_len >> 24);
    *p++ = (uint8_t)(value_len >> 16);
    *p++ = (uint8_t)(value_len >> 8);
    *p++ = (uint8_t)value_len;
    memcpy(p, v->key_z85, value_len);
    return total;
}
