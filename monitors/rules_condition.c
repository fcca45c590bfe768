#include "monitors/rules_condition.h"

#include <stdio.h>

static const char *const cond_keys[] = {"feature", "above", "below", "any", "all", NULL};

static saemon_status parse_leaf(walk *w, const yaml_node_t *node, rules_cond *out)
{
    yaml_node_t *feature = walk_get(w, node, "feature", NULL);
    yaml_node_t *above = walk_get(w, node, "above", NULL);
    yaml_node_t *below = walk_get(w, node, "below", NULL);
    if (!feature)
        return walk_fail(w, node, "condition has a threshold but no 'feature'; "
                                  "expected 'feature: <index>' next to 'above'/'below'");
    uint64_t index;
    saemon_status s = walk_uint(w, feature, "'feature'", UINT32_MAX, &index);
    if (s != SAEMON_OK)
        return s;
    out->kind = RULES_COND_LEAF;
    out->feature = (uint32_t)index;
    out->feature_mark = walk_mark(feature);
    if (!above && !below)
        return walk_fail(w, node, "condition on feature %u has no threshold; "
                                  "expected 'above: X', 'below: X' or both", out->feature);
    if (above && (s = walk_float(w, above, "'above'", &out->above)) != SAEMON_OK)
        return s;
    if (below && (s = walk_float(w, below, "'below'", &out->below)) != SAEMON_OK)
        return s;
    out->has_above = above != NULL;
    out->has_below = below != NULL;
    if (above && below && !(out->above < out->below))
        return walk_fail(w, above, "'above' (%.9g) is not less than 'below' (%.9g), so the "
                                   "condition can never hold; expected above < below",
                         (double)out->above, (double)out->below);
    return SAEMON_OK;
}

static saemon_status parse_list(walk *w, const yaml_node_t *list, const char *op, int depth,
                                rules_cond *out, size_t *n_leaves)
{
    char desc[96];
    if (list->type != YAML_SEQUENCE_NODE)
        return walk_fail(w, list, "'%s' is %s; expected a list of conditions", op,
                         walk_describe(list, desc, sizeof desc));
    size_t n = walk_seq_len(list);
    if (n == 0)
        return walk_fail(w, list, "'%s' is an empty list; expected at least one condition", op);
    out->children = arena_calloc(w->mem, n, sizeof *out->children);
    if (!out->children)
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    out->n_children = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = walk_seq_item(w, list, i);
        saemon_status s = walk_visit(w, item);
        if (s == SAEMON_OK)
            s = rules_parse_condition(w, item, depth + 1, &out->children[i], n_leaves);
        if (s != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

saemon_status rules_parse_condition(walk *w, const yaml_node_t *node, int depth, rules_cond *out,
                                    size_t *n_leaves)
{
    if (depth > RULES_MAX_DEPTH)
        return walk_fail(w, node, "conditions are nested more than %d deep; "
                                  "expected a shallower any/all tree", RULES_MAX_DEPTH);
    saemon_status s = walk_check_map(w, node, "condition", cond_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *any_key = NULL, *all_key = NULL;
    yaml_node_t *any = walk_get(w, node, "any", &any_key);
    yaml_node_t *all = walk_get(w, node, "all", &all_key);
    bool leafy = walk_get(w, node, "feature", NULL) || walk_get(w, node, "above", NULL) ||
                 walk_get(w, node, "below", NULL);
    if (walk_map_len(node) == 0)
        return walk_fail(w, node, "empty condition; expected {feature: N, above/below: X}, "
                                  "{any: [...]} or {all: [...]}");
    if ((any && all) || ((any || all) && leafy))
        return walk_fail(w, any ? any_key : all_key,
                         "condition mixes %s; expected exactly one of a feature leaf, 'any' or 'all' "
                         "per mapping (nest them instead)",
                         any && all ? "'any' and 'all'" : "'any'/'all' with feature keys");
    if (any) {
        out->kind = RULES_COND_ANY;
        return parse_list(w, any, "any", depth, out, n_leaves);
    }
    if (all) {
        out->kind = RULES_COND_ALL;
        return parse_list(w, all, "all", depth, out, n_leaves);
    }
    ++*n_leaves;
    return parse_leaf(w, node, out);
}
