/* The condition grammar: leaf {feature, above?, below?}, {any: [...]}, {all: [...]}. */
#ifndef SAEMON_MONITORS_RULES_CONDITION_H
#define SAEMON_MONITORS_RULES_CONDITION_H

#include "monitors/rules_internal.h"
#include "monitors/yaml_walk.h"

/* Parse the condition at node (depth 1 = a rule's condition) into out,
 * adding the number of leaves to *n_leaves. */
saemon_status rules_parse_condition(walk *w, const yaml_node_t *node, int depth, rules_cond *out,
                                    size_t *n_leaves);

#endif
