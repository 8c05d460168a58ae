/* The HTTP gateway's bearer API keys: a file of `NAME KEY` lines (# comments, blank lines),
 * read at start and again whenever it changes on disk, so a key whose line is removed is
 * refused on its very next request without a restart. Only a hash of each key is kept; a
 * presented key is compared in constant time. The name is what logs and the fleet see
 * ("http/NAME"); the key itself is never logged. Loop thread only. */
#ifndef EF_COORD_HTTP_KEYS_H
#define EF_COORD_HTTP_KEYS_H

#include "errors.h"

#include <stddef.h>

#define HTTP_KEY_NAME_MAX 65 /* [A-Za-z0-9._-]{1,64} */
#define HTTP_KEY_MIN      16 /* shorter keys are refused: they could be guessed */
#define HTTP_KEY_MAX      512
#define HTTP_KEYS_MAX     4096 /* lines with a key */

typedef struct http_keys http_keys;

/* Read `path`. A line that is not NAME KEY (with a valid name, a key of HTTP_KEY_MIN to
 * HTTP_KEY_MAX printable characters, no name or key twice) fails the whole file here:
 * returns NULL with em saying "file:line: why" (EF_ECONFIG) or why the file could not be read
 * (EF_EIO). */
http_keys *http_keys_new(const char *path, ef_errmsg *em);
void http_keys_destroy(http_keys **self_p);

/* Check a presented key (not NUL-terminated), re-reading the file first if it changed since
 * (size, mtime or inode). A file that changed into a bad one keeps its good lines, and the
 * bad ones are logged once per change with file:line. Returns 0 and copies the key's name
 * into name[HTTP_KEY_NAME_MAX], or EF_EDENIED. */
int http_keys_check(http_keys *self, const char *key, size_t len, char name[HTTP_KEY_NAME_MAX]);

/* Keys loaded now. */
size_t http_keys_count(const http_keys *self);

#endif
