/* Feature explanations for `saemon features --feature-labels` (the
 * Neuronpedia-style JSON the rule files' `feature_labels:` reads). */
#ifndef SAEMON_CLI_FEATURE_NAMES_H
#define SAEMON_CLI_FEATURE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* names[i] = the explanation of feature i, or NULL; d_sae entries,
 * malloc'd. false after a message naming the file. */
bool feature_names_load(const char *what, const char *path, size_t d_sae, char ***names);
void feature_names_free(char **names, size_t d_sae);

#endif
