/* edgefleetctl provision BOARD... [--out DIR] [--etc DIR] [--coordinator EP] [--model PATH]...:
 * run on the coordinator host. For each board, a bundle DIR/BOARD/ with the board's key pair
 * (BOARD.key 0600, BOARD.pub), the coordinator's coordinator.pub and an agent.ini naming them
 * where the packages put them on the board (/etc/edgefleet), then the board's public key admitted
 * in ETC/allow/agents/BOARD.pub. Nothing is overwritten: a bundle directory or an allowlist
 * entry that exists already stops that board before anything of it is written. */
#include "ctl.h"
#include "config.h"
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROVISION_MAX_MODELS 16
/* Where the board's packages keep keys and config; agent.ini names files there. */
#define BOARD_ETC "/etc/edgefleet"

typedef struct {
    const char *out, *etc;
    char coordinator[256]; /* the agents' endpoint, tcp://HOST:7701 */
    const char *models[PROVISION_MAX_MODELS];
    int n_models;
} provision_opts;

static int provision_usage(void)
{
    fprintf(stderr,
            "usage: edgefleetctl provision BOARD... [--out DIR] [--etc DIR] "
            "[--coordinator tcp://HOST:PORT] [--model PATH]...\n"
            "  per board: DIR/BOARD/ with BOARD.key (0600), BOARD.pub, coordinator.pub and\n"
            "  agent.ini, and ETC/allow/agents/BOARD.pub (admits the board)\n"
            "  --out DIR          where bundles go (default .)\n"
            "  --etc DIR          the coordinator's config (default $EDGEFLEET_ETC, else "
            "/etc/edgefleet):\n"
            "                     reads ETC/keys/coordinator.pub, writes ETC/allow/agents/\n"
            "  --coordinator EP   agent.ini's coordinator (default tcp://THIS-HOST:7701)\n"
            "  --model PATH       a [model] section for a GGUF path on the board (repeatable)\n");
    return CTL_BAD_ARG;
}

/* Options in any order among the board names; board names are left in argv[1..*n_boards]. */
static int provision_parse(int argc, char **argv, provision_opts *o, int *n_boards)
{
    const char *env = getenv("EDGEFLEET_ETC");
    o->out = ".";
    o->etc = env && *env ? env : "/etc/edgefleet";
    char host[200] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(o->coordinator, sizeof o->coordinator, "tcp://%s:7701", host);
    *n_boards = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            provision_usage();
            return CTL_OK;
        } else if (strcmp(a, "--out") == 0 && has_value) {
            o->out = argv[++i];
        } else if (strcmp(a, "--etc") == 0 && has_value) {
            o->etc = argv[++i];
        } else if (strcmp(a, "--coordinator") == 0 && has_value) {
            snprintf(o->coordinator, sizeof o->coordinator, "%s", argv[++i]);
        } else if (strcmp(a, "--model") == 0 && has_value) {
            if (o->n_models == PROVISION_MAX_MODELS) {
                fprintf(stderr, "edgefleetctl provision: at most %d --model\n",
                        PROVISION_MAX_MODELS);
                return CTL_BAD_ARG;
            }
            o->models[o->n_models++] = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "edgefleetctl provision: unexpected argument \"%s\"\n", a);
            return provision_usage();
        } else {
            argv[++*n_boards] = argv[i];
        }
    }
    ef_errmsg em = {{0}};
    if (config_check_endpoint(o->coordinator, &em) != 0) {
        fprintf(stderr, "edgefleetctl provision: --coordinator: %s\n", em.msg);
        return CTL_BAD_ARG;
    }
    return *n_boards == 0 || !*o->out ? provision_usage() : -1;
}

/* Create path (O_EXCL) holding text. 0, or -1 with a message printed. */
static int write_new(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    size_t len = strlen(text);
    int ok = fd >= 0 && fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len;
    int saved = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok)
        return 0;
    fprintf(stderr, "edgefleetctl provision: %s: %s\n", path, strerror(saved));
    if (fd >= 0)
        unlink(path);
    return -1;
}

/* The board's agent.ini: its own key and the coordinator's, where the board keeps them. */
static void agent_ini(const provision_opts *o, const char *board, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(
        out, cap,
        "; agent.ini for board %s, made by edgefleetctl provision. On the board:\n"
        ";   install -o edgefleet -g edgefleet -m 0600 %s.key " BOARD_ETC "/keys/\n"
        ";   install -m 0644 coordinator.pub " BOARD_ETC "/keys/\n"
        ";   install -g edgefleet -m 0640 agent.ini " BOARD_ETC "/\n"
        "[agent]\ncoordinator = %s\nserver_key = " BOARD_ETC "/keys/coordinator.pub\n"
        "key = " BOARD_ETC "/keys/%s.key\n",
        board, board, o->coordinator, board);
    for (int i = 0; i < o->n_models && n < cap; i++) {
        const char *base = strrchr(o->models[i], '/');
        base = base ? base + 1 : o->models[i];
        size_t stem = strlen(base);
        if (stem > 5 && strcmp(base + stem - 5, ".gguf") == 0)
            stem -= 5;
        n += (size_t)snprintf(out + n, cap - n, "\n[model %.*s]\npath = %s\n", (int)stem, base,
                              o->models[i]);
    }
    if (o->n_models == 0 && n < cap)
        snprintf(out + n, cap - n,
                 "\n; the agent needs at least one model (see the example agent.ini):\n"
                 ";[model NAME]\n;path = /var/lib/edgefleet/models/NAME.gguf\n");
}

/* One board: check, then bundle, then admit. CTL_OK, CTL_BAD_ARG or CTL_FAILED. */
static int provision_one(const provision_opts *o, const char *board, const char *coord_pub)
{
    char dir[2048], allow[2048], path[2200], ini[8192];
    snprintf(dir, sizeof dir, "%s/%s", o->out, board);
    snprintf(allow, sizeof allow, "%s/allow/agents/%s" KEYS_PUBLIC_EXT, o->etc, board);
    size_t len = strlen(board);
    if (len == 0 || len > 64 || board[0] == '.' ||
        strspn(board, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len) {
        fprintf(stderr,
                "edgefleetctl provision: bad board name \"%s\": use 1 to 64 of [A-Za-z0-9._-], "
                "not starting with '.'\n",
                board);
        return CTL_BAD_ARG;
    }
    struct stat st;
    if (lstat(allow, &st) == 0) {
        fprintf(stderr, "edgefleetctl provision: %s: board already admitted; revoke it first\n",
                allow);
        return CTL_FAILED;
    }
    if (mkdir(dir, 0700) != 0) {
        fprintf(stderr, "edgefleetctl provision: %s: %s\n", dir, strerror(errno));
        return errno == EEXIST ? CTL_FAILED : CTL_BAD_ARG;
    }
    keys_pair kp;
    ef_errmsg em = {{0}};
    int rc = keys_generate(dir, board, &kp, &em);
    if (rc != 0) {
        fprintf(stderr, "edgefleetctl provision: %s\n", em.msg);
        rmdir(dir);
        return rc == EF_EINVAL ? CTL_BAD_ARG : CTL_FAILED;
    }
    char pub_line[KEYS_Z85_LEN + 2];
    snprintf(pub_line, sizeof pub_line, "%s\n", kp.public_z85);
    sodium_memzero(&kp, sizeof kp);
    agent_ini(o, board, ini, sizeof ini);
    snprintf(path, sizeof path, "%s/coordinator" KEYS_PUBLIC_EXT, dir);
    if (write_new(path, 0644, coord_pub) != 0)
        return CTL_FAILED;
    snprintf(path, sizeof path, "%s/agent.ini", dir);
    if (write_new(path, 0644, ini) != 0 || write_new(allow, 0644, pub_line) != 0)
        return CTL_FAILED;
    printf("provisioned %s: bundle %s/ (%s.key, coordinator.pub, agent.ini); admitted %s\n", board,
           dir, board, allow);
    return CTL_OK;
}

int ctl_provision(int argc, char **argv)
{
    provision_opts o = {0};
    int n_boards = 0;
    int rc = provision_parse(argc, argv, &o, &n_boards);
    if (rc >= 0)
        return rc;
    char path[2048], z85[KEYS_Z85_LEN + 1], coord_pub[KEYS_Z85_LEN + 2];
    snprintf(path, sizeof path, "%s/keys/coordinator" KEYS_PUBLIC_EXT, o.etc);
    ef_errmsg em = {{0}};
    if (keys_load_public(path, z85, &em) != 0) {
        fprintf(stderr,
                "edgefleetctl provision: %s\n  (the coordinator's key: made when "
                "edgefleet-coordinator is installed, or edgefleetctl keygen coordinator --dir "
                "%s/keys)\n",
                em.msg, o.etc);
        return CTL_BAD_ARG;
    }
    snprintf(coord_pub, sizeof coord_pub, "%s\n", z85);
    /* The bundles hold secret keys: a new --out directory is the operator's alone. */
    if (mkdir(o.out, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "edgefleetctl provision: %s: %s\n", o.out, strerror(errno));
        return CTL_BAD_ARG;
    }
    int worst = CTL_OK;
    for (int i = 1; i <= n_boards; i++) {
        rc = provision_one(&o, argv[i], coord_pub);
        if (rc > worst)
            worst = rc;
    }
    return worst;
}
