/* What `saemon features` prints and the starter rule file it writes. */
#ifndef SAEMON_CLI_FEATURES_OUT_H
#define SAEMON_CLI_FEATURES_OUT_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/auroc.h"
#include "cli/authoring.h"

typedef struct features_opts {
    size_t top;
    const char *format;  /* table, json, csv */
    double max_fpr;      /* < 0: Youden's J */
    bool per_stream;
    uint64_t n_pos, n_neg;
    char **labels;       /* [d_sae] explanations (--feature-labels), or NULL */
} features_opts;

bool features_print(FILE *f, const features_opts *o, const saemon_dict_info *info, const auroc_stat *s);
/* Through a temporary file and a rename; nothing is left on failure. */
bool features_write_rules(const char *path, const features_opts *o, const saemon_dict_info *info,
                          const auroc_stat *s, const auth_set *set);

/* --plot: the ROC curves of the top latents (at most 8). */
bool features_plot(const char *png, const features_opts *o, const auroc_acc *acc, const auroc_stat *s);

#endif
