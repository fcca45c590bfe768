/* Command-line pieces shared by features, calibrate and backtest. */
#ifndef SAEMON_CLI_AUTH_ARGS_H
#define SAEMON_CLI_AUTH_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/authoring.h"

/* The recordings named on the command line, before the dictionary is known. */
typedef struct auth_files {
    const char **path;
    auth_role *role;
    size_t n;
    const char **labels; /* --labels, paired in order with the --input files */
    size_t n_labels;
} auth_files;

bool auth_files_push(auth_files *f, const char *path, auth_role role);
bool auth_files_push_labels(auth_files *f, const char *path);
/* Open them all into `set` (labels paired with --input files in order). */
bool auth_files_open(const auth_files *f, const char *what, size_t d_in, bool hook_z, auth_set *set);
void auth_files_free(auth_files *f);

/* A probability-like option in (0, 1]; `zero_ok` also accepts 0. */
bool auth_parse_fraction(const char *opt, const char *text, bool zero_ok, double *out);

#endif
