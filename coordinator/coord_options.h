/* edgefleet-coordinator's command line: parsed into a coord_config without starting anything, so
 * tests and fuzz_args can call it. coordinator/coord_options.c */
#ifndef EF_COORD_OPTIONS_H
#define EF_COORD_OPTIONS_H

#include "coord.h"

/* Fill cfg (its defaults already set) from argv with getopt_long (a caller parsing twice resets
 * getopt first). Prints usage on stdout for --help and a message on stderr otherwise. Returns
 * 0, 1 after --help, or 2 (the exit code) for a bad argument. Never exits. Options set with
 * --log-level take effect at once (log_set_level). */
int coord_options_parse(int argc, char **argv, coord_config *cfg);

#endif
