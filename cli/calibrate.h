/* `saemon calibrate`: the threshold search (cli/calibrate.c). */
#ifndef SAEMON_CLI_CALIBRATE_H
#define SAEMON_CLI_CALIBRATE_H

#include "cli/auth_args.h"

typedef struct calib_opts {
    const char *sae, *rules_path, *output;
    double max_rate;       /* firing events per benign token */
    char **tune;           /* "RULE:PATH" */
    size_t n_tune;
    size_t threads;
} calib_opts;

int calibrate_run(const calib_opts *o, const auth_files *files);

#endif
