/* CURVE key files. A peer NAME has NAME.key (its Z85 secret key, one line, mode 0600) and
 * NAME.pub (its Z85 public key, one line). An allowlist is a directory of .pub files, one per
 * admitted peer, named after it. A secret key file that group or others can read is refused.
 * Only regular files are read, and opening one never blocks (see config_open_regular): a FIFO
 * or a device named as a key, or lying in an allowlist, is refused or skipped at once. */
#ifndef EF_KEYS_H
#define EF_KEYS_H

#include "errors.h"

#define KEYS_Z85_LEN 40 /* a 32-byte key in Z85 */
/* The file names say which half of a pair a file holds; the loaders refuse the wrong one. */
#define KEYS_SECRET_EXT ".key"
#define KEYS_PUBLIC_EXT ".pub"

typedef struct {
    char public_z85[KEYS_Z85_LEN + 1];
    char secret_z85[KEYS_Z85_LEN + 1];
} keys_pair;

/* 1 if text is exactly one canonical Z85-encoded 32-byte key (decodes, and re-encodes to the
 * same text, which rejects out-of-range groups that a lenient decoder might accept); 0 for NULL
 * or anything else. Wipes its scratch copies: text may be a secret key. */
int keys_z85_valid(const char *text);

/* Write DIR/NAME.key (0600) and DIR/NAME.pub. NAME is [A-Za-z0-9._-]{1,64}. Refuses to
 * overwrite either file (EF_EEXIST, nothing written). Returns 0 or EF_E*, with em filled. */
int keys_generate(const char *dir, const char *name, keys_pair *out, ef_errmsg *em);

/* Load a secret key file and derive its public key. EF_EKEY for a NAME.pub (a public key file:
 * the message names NAME.key instead), a file that is not regular (FIFO, device, directory) or
 * not one Z85 key; EF_EKEYPERM if the file is readable by group or others; EF_ENOENT. */
int keys_load_pair(const char *secret_path, keys_pair *out, ef_errmsg *em);

/* Load a peer's public key file (one Z85 key): the coordinator's key given as --server-key,
 * server_key or server_key_file, or an allowlist entry. EF_EKEY for a NAME.key (a secret key
 * file: the message names NAME.pub instead; a secret key reads as a valid key, so the name is
 * the one thing that tells), a file that is not regular, or not one Z85 key; EF_ENOENT. */
int keys_load_public(const char *path, char out[KEYS_Z85_LEN + 1], ef_errmsg *em);

/* 1 if DIR holds a .pub file whose key equals the 32-byte binary key `key`; its name (file name
 * without .pub) goes into name_out when it is not NULL. Reads the directory on every call, so a
 * removed file revokes at once; entries that are not regular files (after following a
 * symlink) are skipped without blocking. 0 when absent or the directory is unreadable. */
int keys_allowlist_find(const char *dir, const unsigned char key[32], char *name_out,
                        size_t name_cap);

/* Call fn(name, key, user) for every NAME.pub in dir that holds one valid key (the same files
 * keys_allowlist_find admits), until fn returns nonzero. Returns how many keys were passed;
 * 0 when the directory is unreadable. */
typedef int (*keys_allowlist_fn)(const char *name, const unsigned char key[32], void *user);
int keys_allowlist_each(const char *dir, keys_allowlist_fn fn, void *user);

#endif
