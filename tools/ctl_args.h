/* The argument parsing of each edgefleetctl command, apart from what the command then does, so
 * tests and fuzz_args can call it without a coordinator. Each takes the command's argv (argv[0]
 * is the command name), prints its usage or error as the command would and never exits. A
 * caller parsing twice in one process resets getopt first (optind = 0 on glibc). */
#ifndef EF_CTL_ARGS_H
#define EF_CTL_ARGS_H

#include "ctl_connect.h"

/* keygen NAME [--dir DIR]: -1 to go on with *name and *dir set, else the exit code. */
int ctl_keygen_parse(int argc, char **argv, const char **name, const char **dir);

/* generate: CTL_OK to go on (model, prompt argv[argc - 1]), CTL_BAD_ARG, or -1 after --help.
 * co starts from ctl_connect_defaults, *model from "", gp from ef_gen_default_params. */
int ctl_generate_parse(int argc, char **argv, ctl_connect_opts *co, const char **model,
                       ef_gen_params *gp);

/* status / drain AGENT / undrain AGENT (enable: 1 drain, 0 undrain): -1 to go on (drain's AGENT
 * is argv[optind]), else the exit code (as ctl_connect_parse). */
int ctl_status_parse(int argc, char **argv, ctl_connect_opts *co);
int ctl_drain_parse(int argc, char **argv, int enable, ctl_connect_opts *co);

#endif
