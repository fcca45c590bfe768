/* Feature labels: a Neuronpedia-style JSON file of index -> explanation. */
#ifndef SAEMON_MONITORS_FEATURE_LABELS_H
#define SAEMON_MONITORS_FEATURE_LABELS_H

#include "monitors/rules_internal.h"

/* Load `path` into rs->labels (sorted by index, texts in the ruleset arena).
 * Accepted shapes:
 *   {"12": "explanation", ...}
 *   [{"index": 12 or "12", "description" or "explanation": "..."}, ...]
 * An index labelled twice is an error. Errors name the file and, for JSON syntax, line:column. */
saemon_status rules_labels_load(saemon_ruleset *rs, const char *path, saemon_error *err);

/* Index of the feature whose explanation is exactly `text`: 1 found, 0 none,
 * -1 ambiguous (*index and *other are two candidates). */
int rules_label_find(const saemon_ruleset *rs, const char *text, uint32_t *index, uint32_t *other);

#endif
