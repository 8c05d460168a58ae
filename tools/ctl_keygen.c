/* edgefleetctl keygen NAME [--dir DIR]: make a CURVE key pair for an agent, client, operator or
 * the coordinator. Prints the two paths and the public key (to copy into an allowlist). */
#include "ctl.h"
#include "ctl_args.h"
#include "keys.h"

#include <sodium.h>
#include <string.h>

static int keygen_usage(void)
{
    fprintf(stderr, "usage: edgefleetctl keygen NAME [--dir DIR]\n"
                    "  writes DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub; DIR defaults "
                    "to \".\"\n");
    return CTL_BAD_ARG;
}

int ctl_keygen_parse(int argc, char **argv, const char **name_out, const char **dir_out)
{
    const char *name = NULL, *dir = ".";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strncmp(argv[i], "--dir=", 6) == 0) {
            dir = argv[i] + 6;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            keygen_usage();
            return CTL_OK;
        } else if (argv[i][0] == '-' || name) {
            fprintf(stderr, "edgefleetctl keygen: unexpected argument \"%s\"\n", argv[i]);
            return keygen_usage();
        } else {
            name = argv[i];
        }
    }
    if (!name || !*dir)
        return keygen_usage();
    *name_out = name;
    *dir_out = dir;
    return -1;
}

int ctl_keygen(int argc, char **argv)
{
    const char *name = NULL, *dir = NULL;
    int rc = ctl_keygen_parse(argc, argv, &name, &dir);
    if (rc >= 0)
        return rc;
    keys_pair kp;
    ef_errmsg em = {{0}};
    rc = keys_generate(dir, name, &kp, &em);
    if (rc == EF_EINVAL) {
        fprintf(stderr, "edgefleetctl keygen: %s\n", em.msg);
        return CTL_BAD_ARG;
    }
    if (rc != 0) {
        fprintf(stderr, "edgefleetctl keygen: %s\n", em.msg);
        return CTL_FAILED;
    }
    printf("secret key: %s/%s.key (keep it on this machine, mode 0600)\n", dir, name);
    printf("public key: %s/%s.pub\n", dir, name);
    printf("%s\n", kp.public_z85);
    sodium_memzero(&kp, sizeof kp);
    return CTL_OK;
}
