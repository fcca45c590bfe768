/* The condition grammar (docs/rules.md "Conditions"): feature leaves with
 * above/below/between/mean_over, any/all/at_least, {macro: name},
 * {any_of_list|all_of_list: name, ...}, probe and health. */
#ifndef SAEMON_MONITORS_RULES_CONDITION_H
#define SAEMON_MONITORS_RULES_CONDITION_H

#include "monitors/rules_internal.h"
#include "base/yaml_walk.h"

typedef struct rules_parser {
    walk *w;
    saemon_ruleset *rs;
    int deepest;          /* deepest nesting reached by the condition being parsed */
    size_t expanded;      /* nodes of that condition with every macro copied in */
} rules_parser;

/* Parse the condition at node (depth 1 = a rule's or macro's condition). */
saemon_status rules_parse_condition(rules_parser *p, const yaml_node_t *node, int depth, rules_cond *out);

/* Health check mapping (exactly one key), as used by rule-level `health:`. */
saemon_status rules_parse_health(rules_parser *p, const yaml_node_t *node, rules_cond *out);

/* A feature given as an index or as its label (a string); checked against
 * the pinned d_sae when there is one. */
saemon_status rules_parse_feature(rules_parser *p, const yaml_node_t *node, const char *what,
                                  uint32_t *out);

/* Top-level `macros: {name: condition}` and `lists: {name: [feature, ...]}`.
 * A macro may use the macros defined before it. */
saemon_status rules_parse_macros(rules_parser *p, const yaml_node_t *node);
saemon_status rules_parse_lists(rules_parser *p, const yaml_node_t *node);

/* Most (feature, value) pairs an alert of this condition can carry. */
size_t rules_cond_max_features(const rules_cond *c);
bool rules_cond_uses_reconstruction(const rules_cond *c);

#endif
