/* edgefleetctl: the operator's CLI. One sub-command per fleet task. */
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: edgefleetctl COMMAND [ARGS]\n"
                 "commands:\n"
                 "  help                 this text\n"
                 "exit codes: 0 ok, 1 failure, 2 bad arguments\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "edgefleetctl: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
