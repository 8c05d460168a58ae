/* The ZAP side of the transport (RFC 27): which allowlist directories admit peers on which
 * domain, and the decision for one ZAP request. A peer is admitted only if it speaks CURVE and
 * its public key is a .pub file in a directory registered for the socket's domain; its User-Id
 * becomes "<dir basename>/<key name>" and its Z85 key travels as connection metadata "Key", so
 * later checks (revocation) know which key a connection holds. Each domain's directories are
 * read into a sorted snapshot again when one of them changes (a file added or removed) and at
 * least every ZAP_CACHE_MS, so removing a .pub refuses that key's next connection with no
 * restart, and a flood of strangers costs a stat per directory and a binary search each, never
 * a read of every key file.
 * No sockets here: the transport feeds frames in and sends the reply. Any one thread. */
#ifndef EF_ZAP_H
#define EF_ZAP_H

#include "errors.h"
#include "keys.h"

#include <stddef.h>
#include <stdint.h>

/* Longest User-Id we hand out ("operators/" + a 64-char key name, with room to spare). */
#define ZAP_USER_ID_MAX 160
/* Longest a key file edited in place (its directory unchanged) may go unnoticed. Each renewal
 * reads every key file: with 10,000 boards that is ~10,000 file reads, which every second cost
 * a reconnect storm a tenth of the loop (bench_fleet_scale); a removal is seen at once anyway. */
#define ZAP_CACHE_MS 10000u
/* The metadata property that carries the peer's Z85 public key on every message. */
#define ZAP_PROPERTY_KEY "Key"

typedef struct zap_allow zap_allow;

zap_allow *zap_allow_new(void);
void zap_allow_destroy(zap_allow **a_p);
/* Admit keys in dir on domain (several dirs per domain are fine; earlier ones win when a key is
 * in two). Returns 0, EF_EINVAL, EF_ENOMEM. A dir that does not exist yet is accepted with a
 * warning in the log. */
int zap_allow_add(zap_allow *a, const char *domain, const char *dir);

/* 1 when the 32-byte key is admitted on domain at now_ms (a monotonic clock); user_id (cap
 * bytes, may be NULL) gets "<dir basename>/<key name>". Reads the directories only when the
 * cache must be renewed (see the top). */
int zap_allow_lookup(zap_allow *a, const char *domain, const uint8_t key[32], char *user_id,
                     size_t cap, uint64_t now_ms);

/* Every key admitted on a domain at one moment, read once: for checking many live connections
 * (revocation) without reading the directories once per connection. */
typedef struct zap_snapshot zap_snapshot;
/* NULL on ENOMEM. Unreadable directories contribute nothing. */
zap_snapshot *zap_snapshot_new(const zap_allow *a, const char *domain);
void zap_snapshot_destroy(zap_snapshot **s_p);
/* 1 when the Z85 key is in the snapshot under exactly user_id (a key moved to another name or
 * list counts as revoked for the old one). */
int zap_snapshot_has(const zap_snapshot *s, const char *key_z85, const char *user_id);

/* A fingerprint of how every allowlist directory looks now (their mtimes: adding, removing or
 * renaming a .pub changes its directory's), for a caller that reads the lists only when it
 * changed. *recent is set when a directory changed within the last two seconds, where an mtime
 * (a kernel tick) may not yet tell two changes apart: read every time then. */
uint64_t zap_allow_stamp(const zap_allow *a, int *recent);

/* One frame of a ZAP request as it arrived. */
typedef struct {
    const uint8_t *data;
    size_t len;
} zap_frame;

typedef struct {
    const char *status;             /* "200", "400" or "500" */
    const char *text;               /* status text for the reply */
    char user_id[ZAP_USER_ID_MAX];  /* "" unless admitted */
    char key_z85[KEYS_Z85_LEN + 1]; /* the peer's key, "" when it sent none */
    char domain[64], address[64];   /* printable copies, for a refusal's log line */
    char mechanism[16];
    int refused; /* 1: a peer was turned away (the caller logs it) */
} zap_verdict;

/* Decide a ZAP request: frames are version, request id, domain, address, routing id,
 * mechanism, credentials... A malformed request is "500" (the REP socket must still answer);
 * a peer without CURVE or whose key is not allowed on the domain is "400". Never fails. */
void zap_decide(zap_allow *a, const zap_frame *frames, size_t n, uint64_t now_ms, zap_verdict *out);

/* The metadata frame of a "200" reply (ZMTP property format: name length, name, 4-byte
 * big-endian value length, value) carrying ZAP_PROPERTY_KEY. Writes at most cap bytes; returns
 * the length, 0 when there is no key. */
size_t zap_metadata(const zap_verdict *v, uint8_t *out, size_t cap);

#endif
