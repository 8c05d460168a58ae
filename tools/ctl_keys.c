/* edgefleetctl keys list|add|revoke: the coordinator's allowlists as files, run on the
 * coordinator's host. Each list is a directory of NAME.pub files under the allow dir (agents/,
 * clients/, operators/, and telemetry/ for dashboards that only subscribe). add copies a .pub in
 * after checking it holds one key; revoke removes it, and the coordinator's revocation sweep
 * (coordinator/peers.c, about a second) then cuts that key's live connections. */
#include "ctl.h"
#include "ctl_json.h"
#include "keys.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTL_DEFAULT_ALLOW "/etc/edgefleet/allow"

static const char *lists[] = {"agents", "clients", "operators", "telemetry"};

static int keys_usage(FILE *out)
{
    fprintf(out,
            "usage: edgefleetctl keys list [LIST] [--allow-dir DIR] [--json]\n"
            "       edgefleetctl keys add LIST NAME FILE.pub [--allow-dir DIR]\n"
            "       edgefleetctl keys revoke LIST NAME [--allow-dir DIR]\n"
            "  LIST is agents, clients, operators or telemetry; run on the coordinator's host\n"
            "  --allow-dir DIR   the coordinator's --allow-dir (default $EDGEFLEET_ALLOW_DIR,\n"
            "                    else " CTL_DEFAULT_ALLOW ")\n"
            "  revoke removes LIST/NAME.pub: the coordinator refuses the key's next connection\n"
            "  and cuts its live ones within about a second\n" CTL_EXIT_USAGE);
    return CTL_BAD_ARG;
}

static int list_valid(const char *l)
{
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (strcmp(l, lists[i]) == 0)
            return 1;
    fprintf(stderr,
            "edgefleetctl keys: unknown list \"%s\" (agents, clients, operators, "
            "telemetry)\n",
            l);
    return 0;
}

static int name_valid(const char *n)
{
    size_t len = strlen(n);
    int ok = len > 0 && len <= 64;
    for (size_t i = 0; ok && i < len; i++)
        ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", n[i]) != 0;
    if (!ok)
        fprintf(stderr, "edgefleetctl keys: bad key name \"%s\": use 1 to 64 of [A-Za-z0-9._-]\n",
                n);
    return ok;
}

typedef struct {
    const char *list;
    cJSON *arr;
    int json;
} list_ctx;

static int on_key(const char *name, const unsigned char key[32], void *user)
{
    list_ctx *c = user;
    char hex[65];
    ctl_hex(key, 32, hex, sizeof hex);
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "list", c->list);
            cJSON_AddStringToObject(o, "name", name);
            cJSON_AddStringToObject(o, "key_hex", hex);
            cJSON_AddItemToArray(c->arr, o);
        }
    } else {
        printf("%-10s %-32s %.16s\n", c->list, name, hex);
    }
    return 0;
}

static int do_list(const char *allow, const char *only, int json)
{
    list_ctx c = {.json = json, .arr = json ? cJSON_CreateArray() : NULL};
    if (json && !c.arr)
        return CTL_FAILED;
    if (!json)
        printf("%-10s %-32s %s\n", "LIST", "NAME", "KEY (hex, first 8 bytes)");
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (only && strcmp(only, lists[i]) != 0)
            continue;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", allow, lists[i]);
        c.list = lists[i];
        keys_allowlist_each(dir, on_key, &c);
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            cJSON_Delete(c.arr);
            return CTL_FAILED;
        }
        cJSON_AddItemToObject(o, "keys", c.arr);
        return ctl_json_print(o, 0) == 0 ? CTL_OK : CTL_FAILED;
    }
    return CTL_OK;
}

static int do_add(const char *allow, const char *list, const char *name, const char *file)
{
    char z85[KEYS_Z85_LEN + 1];
    ef_errmsg em = {{0}};
    if (keys_load_public(file, z85, &em) != 0) {
        fprintf(stderr, "edgefleetctl keys add: %s\n", em.msg);
        return CTL_BAD_ARG;
    }
    char dir[1024], path[1200], tmp[1300];
    snprintf(dir, sizeof dir, "%s/%s", allow, list);
    mkdir(dir, 0755); /* the telemetry list may not exist yet */
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.pub.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", z85) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "edgefleetctl keys add: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return CTL_FAILED;
    }
    printf("added %s to %s (%s)\n", name, list, path);
    return CTL_OK;
}

static int do_revoke(const char *allow, const char *list, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/%s.pub", allow, list, name);
    if (unlink(path) != 0) {
        fprintf(stderr, "edgefleetctl keys revoke: %s: %s\n", path, strerror(errno));
        return errno == ENOENT ? CTL_FAILED : CTL_BAD_ARG;
    }
    printf("revoked %s from %s: its next connection is refused and live ones are cut within "
           "about a second\n",
           name, list);
    return CTL_OK;
}

int ctl_keys(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'},
                                         {"allow-dir", required_argument, 0, 'd'},
                                         {"json", no_argument, 0, 'j'},
                                         {0, 0, 0, 0}};
    const char *env = getenv("EDGEFLEET_ALLOW_DIR");
    const char *allow = env && *env ? env : CTL_DEFAULT_ALLOW;
    int json = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            keys_usage(stdout);
            return CTL_OK;
        } else if (ch == 'd') {
            allow = optarg;
        } else if (ch == 'j') {
            json = 1;
        } else {
            return keys_usage(stderr);
        }
    }
    int n = argc - optind;
    char **a = argv + optind;
    if (n >= 1 && strcmp(a[0], "list") == 0 && n <= 2)
        return n == 2 && !list_valid(a[1]) ? CTL_BAD_ARG
                                           : do_list(allow, n == 2 ? a[1] : NULL, json);
    if (n == 4 && strcmp(a[0], "add") == 0)
        return list_valid(a[1]) && name_valid(a[2]) ? do_add(allow, a[1], a[2], a[3]) : CTL_BAD_ARG;
    if (n == 3 && strcmp(a[0], "revoke") == 0)
        return list_valid(a[1]) && name_valid(a[2]) ? do_revoke(allow, a[1], a[2]) : CTL_BAD_ARG;
    return keys_usage(stderr);
}
