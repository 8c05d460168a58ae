/* CURVE key files: generate, load and check a key pair, and look a public key up in an allowlist
 * directory. All cryptography is libzmq's (zmq_curve_keypair, zmq_curve_public, Z85); secret
 * bytes on our stack are wiped with libsodium's sodium_memzero. Pure file work: any thread. */
#include "keys.h"
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* A key file is one Z85 key and a newline; anything much longer is not a key file, so reading
 * stops here instead of trusting the file's size. */
#define KEY_FILE_MAX 128
#define KEY_NAME_MAX 64

/* Peer names are [A-Za-z0-9._-]{1,64}: safe in a path, a log line and a ZAP User-Id. */
static int name_is_valid(const char *name, size_t n)
{
    if (n == 0 || n > KEY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

int keys_z85_valid(const char *text)
{
    if (!text || strlen(text) != KEYS_Z85_LEN)
        return 0;
    uint8_t bin[32];
    char again[KEYS_Z85_LEN + 1];
    int ok = zmq_z85_decode(bin, text) != NULL && zmq_z85_encode(again, bin, sizeof bin) != NULL &&
             memcmp(again, text, KEYS_Z85_LEN) == 0;
    sodium_memzero(bin, sizeof bin);
    sodium_memzero(again, sizeof again);
    return ok;
}

/* Read the open key file fd (named path, for messages) into out: one Z85 key, surrounding
 * whitespace ignored. Returns 0, EF_EIO or EF_EKEY. */
static int read_key_fd(int fd, const char *path, char out[KEYS_Z85_LEN + 1], ef_errmsg *em)
{
    char buf[KEY_FILE_MAX + 1];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errmsg_set(em, EF_EIO, "%s: read: %s", path, strerror(errno));
        if (r == 0 || (len += (size_t)r) == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    size_t start = 0;
    while (start < len && strchr(" \t\r\n", buf[start]))
        start++;
    while (len > start && strchr(" \t\r\n", buf[len - 1]))
        buf[--len] = '\0';
    int ok = len - start == KEYS_Z85_LEN && keys_z85_valid(buf + start);
    if (ok)
        memcpy(out, buf + start, KEYS_Z85_LEN + 1);
    sodium_memzero(buf, sizeof buf);
    if (!ok)
        return errmsg_set(em, EF_EKEY, "%s: not a key file (expected one %d-character Z85 key)",
                          path, KEYS_Z85_LEN);
    return 0;
}

/* 1 if path's file name ends in ext (".key", ".pub"). */
static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcmp(path + n - e, ext) == 0;
}

int keys_load_public(const char *path, char out[KEYS_Z85_LEN + 1], ef_errmsg *em)
{
    if (!path || !out)
        return errmsg_set(em, EF_EINVAL, "keys_load_public: NULL argument");
    /* A secret key reads as a valid Z85 key too, so only its name can tell the mistake apart;
     * caught here, it is refused instead of becoming a handshake that never succeeds. */
    if (has_ext(path, KEYS_SECRET_EXT))
        return errmsg_set(em, EF_EKEY,
                          "%s: this is a secret key file; --server-key needs the coordinator's "
                          "public key %.*s" KEYS_PUBLIC_EXT,
                          path, (int)(strlen(path) - strlen(KEYS_SECRET_EXT)), path);
    int fd = config_open_regular(path, EF_EKEY, NULL, em);
    if (fd < 0)
        return fd;
    int rc = read_key_fd(fd, path, out, em);
    close(fd);
    return rc;
}

/* Open a secret key file: a regular file that only its owner can read. Returns the fd or EF_E*. */
static int open_secret_file(const char *path, ef_errmsg *em)
{
    if (has_ext(path, KEYS_PUBLIC_EXT))
        return errmsg_set(
            em, EF_EKEY,
            "%s: this is a public key file; --key needs the secret key %.*s" KEYS_SECRET_EXT, path,
            (int)(strlen(path) - strlen(KEYS_PUBLIC_EXT)), path);
    struct stat st;
    int fd = config_open_regular(path, EF_EKEY, &st, em);
    if (fd < 0 || !(st.st_mode & (S_IRWXG | S_IRWXO)))
        return fd;
    close(fd);
    return errmsg_set(em, EF_EKEYPERM,
                      "%s: secret key file is accessible by group/others (mode %04o); "
                      "run: chmod 600 %s",
                      path, (unsigned)(st.st_mode & 07777), path);
}

int keys_load_pair(const char *secret_path, keys_pair *out, ef_errmsg *em)
{
    if (!secret_path || !out)
        return errmsg_set(em, EF_EINVAL, "keys_load_pair: NULL argument");
    int fd = open_secret_file(secret_path, em);
    if (fd < 0) {
        sodium_memzero(out, sizeof *out);
        return fd;
    }
    int rc = read_key_fd(fd, secret_path, out->secret_z85, em);
    close(fd);
    if (rc == 0 && zmq_curve_public(out->public_z85, out->secret_z85) != 0)
        rc = errmsg_set(em, EF_ECRYPTO, "%s: cannot derive the public key: %s", secret_path,
                        zmq_strerror(zmq_errno()));
    if (rc != 0)
        sodium_memzero(out, sizeof *out);
    return rc;
}

/* Create path with O_EXCL and write line + "\n" to it. Returns 0, EF_EEXIST or EF_EIO. */
static int write_new_file(const char *path, mode_t mode, const char *line, ef_errmsg *em)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            return errmsg_set(em, EF_EEXIST, "%s: already exists; refusing to overwrite", path);
        return errmsg_set(em, EF_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    char buf[KEYS_Z85_LEN + 2];
    size_t len = (size_t)snprintf(buf, sizeof buf, "%s\n", line);
    /* The umask can only remove bits, but set the mode explicitly so the file is exactly it. */
    int ok = fchmod(fd, mode) == 0 && write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    sodium_memzero(buf, sizeof buf);
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        unlink(path);
        return errmsg_set(em, EF_EIO, "%s: write: %s", path, strerror(saved));
    }
    return 0;
}

int keys_generate(const char *dir, const char *name, keys_pair *out, ef_errmsg *em)
{
    if (!dir || !name || !out)
        return errmsg_set(em, EF_EINVAL, "keys_generate: NULL argument");
    if (!name_is_valid(name, strlen(name)))
        return errmsg_set(em, EF_EINVAL, "bad key name \"%s\": use 1 to %d of [A-Za-z0-9._-]", name,
                          KEY_NAME_MAX);
    char key_path[4096], pub_path[4096];
    if ((size_t)snprintf(key_path, sizeof key_path, "%s/%s" KEYS_SECRET_EXT, dir, name) >=
            sizeof key_path ||
        (size_t)snprintf(pub_path, sizeof pub_path, "%s/%s" KEYS_PUBLIC_EXT, dir, name) >=
            sizeof pub_path)
        return errmsg_set(em, EF_EINVAL, "%s: directory path too long", dir);
    /* Check the .pub first so an existing pair is left exactly as it was (the .key is then
     * created with O_EXCL, which also refuses to replace an existing secret). */
    struct stat st;
    if (lstat(pub_path, &st) == 0)
        return errmsg_set(em, EF_EEXIST, "%s: already exists; refusing to overwrite", pub_path);
    if (zmq_curve_keypair(out->public_z85, out->secret_z85) != 0)
        return errmsg_set(em, EF_ECRYPTO, "zmq_curve_keypair: %s (libzmq built without CURVE?)",
                          zmq_strerror(zmq_errno()));
    int rc = write_new_file(key_path, 0600, out->secret_z85, em);
    if (rc == 0) {
        rc = write_new_file(pub_path, 0644, out->public_z85, em);
        if (rc != 0)
            unlink(key_path); /* never leave half a pair */
    }
    if (rc != 0)
        sodium_memzero(out, sizeof *out);
    return rc;
}

int keys_allowlist_each(const char *dir, keys_allowlist_fn fn, void *user)
{
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return 0;
    int n_keys = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
#ifdef _DIRENT_HAVE_D_TYPE
        /* A FIFO or device is skipped without opening it; symlinks and filesystems that do
         * not report a type (DT_UNKNOWN) go on to keys_load_public, whose fstat decides. */
        if (e->d_type != DT_REG && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN)
            continue;
#endif
        size_t n = strlen(e->d_name);
        /* Only NAME.pub with a valid NAME counts, so the name is safe to put in a User-Id. */
        if (n <= 4 || !has_ext(e->d_name, KEYS_PUBLIC_EXT) || e->d_name[0] == '.' ||
            !name_is_valid(e->d_name, n - 4))
            continue;
        char path[4096], z85[KEYS_Z85_LEN + 1], name[KEY_NAME_MAX + 1];
        uint8_t bin[32];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
            keys_load_public(path, z85, NULL) != 0 || !zmq_z85_decode(bin, z85))
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(n - 4), e->d_name);
        n_keys++;
        if (fn(name, bin, user) != 0)
            break;
    }
    closedir(d);
    return n_keys;
}

typedef struct {
    const unsigned char *key;
    char *name_out;
    size_t name_cap;
    int found;
} find_state;

static int find_one(const char *name, const unsigned char key[32], void *user)
{
    find_state *fs = user;
    if (memcmp(key, fs->key, 32) != 0)
        return 0;
    fs->found = 1;
    if (fs->name_out && fs->name_cap > 0)
        snprintf(fs->name_out, fs->name_cap, "%s", name);
    return 1;
}

int keys_allowlist_find(const char *dir, const unsigned char key[32], char *name_out,
                        size_t name_cap)
{
    find_state fs = {key, name_out, name_cap, 0};
    if (dir && key)
        keys_allowlist_each(dir, find_one, &fs);
    return fs.found;
}
