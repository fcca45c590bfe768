#include "monitors/rules_condition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "monitors/feature_labels.h"

static const char *const cond_keys[] = {"feature", "above", "below", "between", "mean_over", "any", "all",
                                        "at_least", "macro", "any_of_list", "all_of_list", "probe",
                                        "health", NULL};
/* The keys that decide what a condition mapping is; exactly one per mapping. */
static const char *const kind_keys[] = {"feature", "any", "all", "at_least", "macro", "any_of_list",
                                        "all_of_list", "probe", "health", NULL};
static const char *const at_least_keys[] = {"count", "of", NULL};
static const char *const probe_keys[] = {"weights", "bias", "above", NULL};
static const char *const health_keys[] = {"reconstruction_error_above", "l0_outside", "input_nonfinite",
                                          "input_norm_outside", NULL};

static saemon_status nomem(walk *w)
{
    return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
}

saemon_status rules_parse_feature(rules_parser *p, const yaml_node_t *node, const char *what, uint32_t *out)
{
    walk *w = p->w;
    const saemon_ruleset *rs = p->rs;
    saemon_status s;
    if (node->type == YAML_SCALAR_NODE && walk_scalar_type(node) == SCALAR_STRING) {
        const char *text = (const char *)node->data.scalar.value;
        if (!rs->labels_path)
            return walk_fail(w, node, "%s is the label \"%.60s\" but the rule file has no 'feature_labels'; "
                                      "expected a feature index, or 'feature_labels: FILE.json'", what, text);
        uint32_t other = 0;
        int found = rules_label_find(rs, text, out, &other);
        if (found == 0)
            return walk_fail(w, node, "unknown feature label \"%.60s\" (not in %s); expected an "
                                      "explanation from the label file or a feature index", text, rs->labels_path);
        if (found < 0)
            return walk_fail(w, node, "feature label \"%.60s\" is ambiguous (features %u and %u); "
                                      "expected a unique label or a feature index", text, *out, other);
    } else {
        uint64_t index;
        if ((s = walk_uint(w, node, what, UINT32_MAX, &index)) != SAEMON_OK)
            return s;
        *out = (uint32_t)index;
    }
    if (rs->pin.has_d_sae && *out >= rs->pin.d_sae)
        return walk_fail(w, node, "feature %u is out of range for the pinned d_sae %llu; expected an "
                                  "index < %llu", *out, (unsigned long long)rs->pin.d_sae,
                         (unsigned long long)rs->pin.d_sae);
    return SAEMON_OK;
}

static saemon_status tracker_for(rules_parser *p, uint32_t feature, uint32_t tokens, int32_t *out)
{
    saemon_ruleset *rs = p->rs;
    for (size_t i = 0; i < rs->n_trackers; i++) {
        if (rs->trackers[i].feature == feature && rs->trackers[i].tokens == tokens) {
            *out = (int32_t)i;
            return SAEMON_OK;
        }
    }
    if (rs->n_trackers >= INT32_MAX)
        return nomem(p->w);
    if (rs->n_trackers == rs->cap_trackers) {
        size_t cap = rs->cap_trackers ? rs->cap_trackers * 2 : 8;
        rules_tracker *t = realloc(rs->trackers, cap * sizeof *t);
        if (!t)
            return nomem(p->w);
        rs->trackers = t;
        rs->cap_trackers = cap;
    }
    rs->trackers[rs->n_trackers] = (rules_tracker){feature, tokens};
    *out = (int32_t)rs->n_trackers++;
    return SAEMON_OK;
}

/* [lo, hi] of two numbers with lo <= hi. */
static saemon_status parse_pair(walk *w, const yaml_node_t *node, const char *what, float *lo, float *hi)
{
    char desc[96];
    if (node->type != YAML_SEQUENCE_NODE || walk_seq_len(node) != 2)
        return walk_fail(w, node, "%s is %s; expected a list of two numbers [low, high]", what,
                         walk_describe(node, desc, sizeof desc));
    yaml_node_t *a = walk_seq_item(w, node, 0), *b = walk_seq_item(w, node, 1);
    saemon_status s;
    if ((s = walk_visit(w, a)) != SAEMON_OK || (s = walk_visit(w, b)) != SAEMON_OK ||
        (s = walk_float(w, a, what, lo)) != SAEMON_OK || (s = walk_float(w, b, what, hi)) != SAEMON_OK)
        return s;
    if (*lo > *hi)
        return walk_fail(w, node, "%s has low %.9g above high %.9g; expected [low, high] with low <= high",
                         what, (double)*lo, (double)*hi);
    return SAEMON_OK;
}

/* above / below / between / mean_over into a leaf (feature set by the caller). */
static saemon_status parse_thresholds(rules_parser *p, const yaml_node_t *node, const char *subject,
                                      rules_cond *leaf, uint32_t *mean_over)
{
    walk *w = p->w;
    yaml_node_t *above = walk_get(w, node, "above", NULL);
    yaml_node_t *below = walk_get(w, node, "below", NULL);
    yaml_node_t *between = walk_get(w, node, "between", NULL);
    yaml_node_t *mean = walk_get(w, node, "mean_over", NULL);
    saemon_status s;
    leaf->kind = RULES_COND_LEAF;
    leaf->tracker = -1;
    if (!above && !below && !between)
        return walk_fail(w, node, "condition on %s has no threshold; expected 'above: X', 'below: X' "
                                  "(or both) or 'between: [LO, HI]'", subject);
    if (between && (above || below))
        return walk_fail(w, between, "'between' cannot be combined with 'above'/'below'; expected "
                                     "either 'between: [LO, HI]' or above/below");
    if (above && (s = walk_float(w, above, "'above'", &leaf->above)) != SAEMON_OK)
        return s;
    if (below && (s = walk_float(w, below, "'below'", &leaf->below)) != SAEMON_OK)
        return s;
    if (between && (s = parse_pair(w, between, "'between'", &leaf->lo, &leaf->hi)) != SAEMON_OK)
        return s;
    leaf->has_above = above != NULL;
    leaf->has_below = below != NULL;
    leaf->has_between = between != NULL;
    if (above && below && !(leaf->above < leaf->below))
        return walk_fail(w, above, "'above' (%.9g) is not less than 'below' (%.9g), so the "
                                   "condition can never hold; expected above < below",
                         (double)leaf->above, (double)leaf->below);
    *mean_over = 0;
    if (mean) {
        uint64_t n;
        if ((s = walk_uint(w, mean, "'mean_over'", RULES_MAX_WINDOW, &n)) != SAEMON_OK)
            return s;
        if (n == 0)
            return walk_fail(w, mean, "'mean_over' is 0; expected a number of tokens from 1 to %d",
                             RULES_MAX_WINDOW);
        *mean_over = (uint32_t)n;
    }
    return SAEMON_OK;
}

static saemon_status parse_leaf(rules_parser *p, const yaml_node_t *node, yaml_node_t *feature, rules_cond *out)
{
    uint32_t mean_over;
    saemon_status s = rules_parse_feature(p, feature, "'feature'", &out->feature);
    if (s != SAEMON_OK)
        return s;
    out->feature_mark = walk_mark(feature);
    char subject[32];
    snprintf(subject, sizeof subject, "feature %u", out->feature);
    if ((s = parse_thresholds(p, node, subject, out, &mean_over)) != SAEMON_OK)
        return s;
    return mean_over ? tracker_for(p, out->feature, mean_over, &out->tracker) : SAEMON_OK;
}

static saemon_status parse_children(rules_parser *p, const yaml_node_t *list, const char *op, int depth,
                                    rules_cond *out)
{
    walk *w = p->w;
    char desc[96];
    if (list->type != YAML_SEQUENCE_NODE)
        return walk_fail(w, list, "'%s' is %s; expected a list of conditions", op,
                         walk_describe(list, desc, sizeof desc));
    size_t n = walk_seq_len(list);
    if (n == 0)
        return walk_fail(w, list, "'%s' is an empty list; expected at least one condition", op);
    if (!(out->children = arena_calloc(w->mem, n, sizeof *out->children)))
        return nomem(w);
    out->n_children = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = walk_seq_item(w, list, i);
        saemon_status s = walk_visit(w, item);
        if (s == SAEMON_OK)
            s = rules_parse_condition(p, item, depth + 1, &out->children[i]);
        if (s != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

static saemon_status parse_at_least(rules_parser *p, const yaml_node_t *node, int depth, rules_cond *out)
{
    walk *w = p->w;
    saemon_status s = walk_check_map(w, node, "'at_least'", at_least_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *count = walk_get(w, node, "count", NULL), *of = walk_get(w, node, "of", NULL);
    if (!count || !of)
        return walk_fail(w, node, "'at_least' needs 'count' and 'of'; expected {count: K, of: [conditions]}");
    uint64_t k;
    if ((s = walk_uint(w, count, "'at_least.count'", UINT32_MAX, &k)) != SAEMON_OK)
        return s;
    out->kind = RULES_COND_AT_LEAST;
    if ((s = parse_children(p, of, "of", depth, out)) != SAEMON_OK)
        return s;
    if (k == 0 || k > out->n_children)
        return walk_fail(w, count, "'at_least.count' is %llu for %zu conditions; expected 1 to %zu",
                         (unsigned long long)k, out->n_children, out->n_children);
    out->count = (size_t)k;
    return SAEMON_OK;
}

static const rules_macro *find_macro(const saemon_ruleset *rs, const char *name)
{
    for (size_t i = 0; i < rs->n_macros; i++)
        if (strcmp(rs->macros[i].name, name) == 0)
            return &rs->macros[i];
    return NULL;
}

static const rules_list *find_list(const saemon_ruleset *rs, const char *name)
{
    for (size_t i = 0; i < rs->n_lists; i++)
        if (strcmp(rs->lists[i].name, name) == 0)
            return &rs->lists[i];
    return NULL;
}

static saemon_status parse_macro_ref(rules_parser *p, const yaml_node_t *node, int depth, rules_cond *out)
{
    const char *name;
    saemon_status s = walk_string(p->w, node, "'macro'", &name);
    if (s != SAEMON_OK)
        return s;
    const rules_macro *m = find_macro(p->rs, name);
    if (!m)
        return walk_fail(p->w, node, "unknown macro '%.60s'; expected a name defined under 'macros:' "
                                     "(a macro may only use macros defined above it)", name);
    int reached = depth - 1 + m->depth;
    if (reached > RULES_MAX_DEPTH)
        return walk_fail(p->w, node, "macro '%s' nests conditions %d deep here; expected at most %d",
                         name, reached, RULES_MAX_DEPTH);
    if (reached > p->deepest)
        p->deepest = reached;
    p->expanded += m->expanded - 1; /* this reference node stands for the macro's whole tree */
    if (p->expanded > RULES_MAX_EXPANDED)
        return walk_fail(p->w, node, "macro '%s' makes this condition more than %d nodes once macros are "
                                     "expanded (every use is a copy); expected a smaller condition",
                         name, RULES_MAX_EXPANDED);
    *out = *m->cond; /* shares the (immutable) subtree */
    return SAEMON_OK;
}

static saemon_status parse_list_ref(rules_parser *p, const yaml_node_t *node, const yaml_node_t *ref,
                                    rules_cond_kind kind, rules_cond *out)
{
    walk *w = p->w;
    const char *name;
    saemon_status s = walk_string(w, ref, kind == RULES_COND_ANY ? "'any_of_list'" : "'all_of_list'", &name);
    if (s != SAEMON_OK)
        return s;
    const rules_list *l = find_list(p->rs, name);
    if (!l)
        return walk_fail(w, ref, "unknown list '%.60s'; expected a name defined under 'lists:'", name);
    rules_cond tmpl = {0};
    uint32_t mean_over;
    char subject[96];
    snprintf(subject, sizeof subject, "list '%.60s'", name);
    if ((s = parse_thresholds(p, node, subject, &tmpl, &mean_over)) != SAEMON_OK)
        return s;
    p->expanded += l->n; /* one leaf per list feature */
    out->kind = kind;
    out->n_children = l->n;
    if (!(out->children = arena_calloc(w->mem, l->n, sizeof *out->children)))
        return nomem(w);
    for (size_t i = 0; i < l->n; i++) {
        rules_cond *c = &out->children[i];
        *c = tmpl;
        c->feature = l->features[i];
        c->feature_mark = l->marks[i];
        if (mean_over && (s = tracker_for(p, c->feature, mean_over, &c->tracker)) != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

static saemon_status parse_probe(rules_parser *p, const yaml_node_t *node, rules_cond *out)
{
    walk *w = p->w;
    saemon_status s = walk_check_map(w, node, "'probe'", probe_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *weights = walk_get(w, node, "weights", NULL);
    yaml_node_t *bias = walk_get(w, node, "bias", NULL);
    yaml_node_t *above = walk_get(w, node, "above", NULL);
    if (!weights || !above)
        return walk_fail(w, node, "probe needs 'weights' and 'above'; expected {weights: {FEATURE: W, ...}, "
                                  "bias: B, above: P}");
    if ((s = walk_check_map(w, weights, "'probe.weights'", NULL)) != SAEMON_OK)
        return s;
    size_t n = walk_map_len(weights);
    if (n == 0)
        return walk_fail(w, weights, "'probe.weights' is empty; expected at least one FEATURE: WEIGHT");
    out->kind = RULES_COND_PROBE;
    out->n_weights = n;
    out->probe_features = arena_calloc(w->mem, n, sizeof *out->probe_features);
    out->probe_weights = arena_calloc(w->mem, n, sizeof *out->probe_weights);
    out->probe_marks = arena_calloc(w->mem, n, sizeof *out->probe_marks);
    if (!out->probe_features || !out->probe_weights || !out->probe_marks)
        return nomem(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *key, *value;
        walk_map_pair(w, weights, i, &key, &value);
        if ((s = rules_parse_feature(p, key, "a probe weight's feature", &out->probe_features[i])) != SAEMON_OK ||
            (s = walk_float(w, value, "a probe weight", &out->probe_weights[i])) != SAEMON_OK)
            return s;
        out->probe_marks[i] = walk_mark(key);
        for (size_t j = 0; j < i; j++)
            if (out->probe_features[j] == out->probe_features[i])
                return walk_fail(w, key, "feature %u has two probe weights (first at %zu:%zu); expected "
                                         "one weight per feature", out->probe_features[i],
                                 out->probe_marks[j].line, out->probe_marks[j].column);
    }
    if (bias && (s = walk_float(w, bias, "'probe.bias'", &out->bias)) != SAEMON_OK)
        return s;
    if ((s = walk_float(w, above, "'probe.above'", &out->above)) != SAEMON_OK)
        return s;
    if (!(out->above > 0.0f && out->above < 1.0f))
        return walk_fail(w, above, "'probe.above' is %.9g; expected a probability strictly between 0 and 1",
                         (double)out->above);
    out->has_above = true;
    return SAEMON_OK;
}

saemon_status rules_parse_health(rules_parser *p, const yaml_node_t *node, rules_cond *out)
{
    walk *w = p->w;
    saemon_status s = walk_check_map(w, node, "'health'", health_keys);
    if (s != SAEMON_OK)
        return s;
    if (walk_map_len(node) != 1)
        return walk_fail(w, node, "'health' has %zu checks; expected exactly one of: "
                                  "reconstruction_error_above, l0_outside, input_nonfinite, input_norm_outside",
                         walk_map_len(node));
    yaml_node_t *key, *v;
    walk_map_pair(w, node, 0, &key, &v);
    const char *k = (const char *)key->data.scalar.value;
    out->kind = RULES_COND_HEALTH;
    if (!strcmp(k, "reconstruction_error_above")) {
        out->health = RULES_HEALTH_RECON_ABOVE;
        if ((s = walk_float(w, v, "'reconstruction_error_above'", &out->lo)) != SAEMON_OK)
            return s;
        if (out->lo < 0)
            return walk_fail(w, v, "'reconstruction_error_above' is negative; expected a relative error >= 0");
    } else if (!strcmp(k, "l0_outside")) {
        out->health = RULES_HEALTH_L0_OUTSIDE;
        if ((s = parse_pair(w, v, "'l0_outside'", &out->lo, &out->hi)) != SAEMON_OK)
            return s;
        if (out->lo < 0)
            return walk_fail(w, v, "'l0_outside' has a negative bound; expected [LO, HI] with 0 <= LO <= HI");
    } else if (!strcmp(k, "input_nonfinite")) {
        bool on;
        out->health = RULES_HEALTH_NONFINITE;
        if ((s = walk_bool(w, v, "'input_nonfinite'", &on)) != SAEMON_OK)
            return s;
        if (!on)
            return walk_fail(w, v, "'input_nonfinite: false' never fires; expected true");
    } else {
        out->health = RULES_HEALTH_NORM_OUTSIDE;
        if ((s = parse_pair(w, v, "'input_norm_outside'", &out->lo, &out->hi)) != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

saemon_status rules_parse_condition(rules_parser *p, const yaml_node_t *node, int depth, rules_cond *out)
{
    walk *w = p->w;
    if (depth > RULES_MAX_DEPTH)
        return walk_fail(w, node, "conditions are nested more than %d deep; "
                                  "expected a shallower any/all tree", RULES_MAX_DEPTH);
    if (depth > p->deepest)
        p->deepest = depth;
    p->expanded++;
    saemon_status s = walk_check_map(w, node, "condition", cond_keys);
    if (s != SAEMON_OK)
        return s;
    out->tracker = -1;
    yaml_node_t *kind_key = NULL, *kind_value = NULL, *first_key = NULL;
    const char *kind = NULL;
    for (const char *const *k = kind_keys; *k; k++) {
        yaml_node_t *key, *v = walk_get(w, node, *k, &key);
        if (!v)
            continue;
        if (kind)
            return walk_fail(w, key, "condition mixes '%s' and '%s'; expected exactly one of feature, any, "
                                     "all, at_least, macro, any_of_list, all_of_list, probe, health per "
                                     "mapping (nest them instead)", kind, *k);
        kind = *k, kind_key = key, kind_value = v;
    }
    if (!kind) {
        if (walk_map_len(node) == 0)
            return walk_fail(w, node, "empty condition; expected {feature: N, above/below: X}, {any: [...]}, "
                                      "{all: [...]} or another condition form");
        yaml_node_t *v;
        walk_map_pair(w, node, 0, &first_key, &v);
        return walk_fail(w, node, "condition has a threshold but no 'feature'; "
                                  "expected 'feature: <index or label>' (or a list) next to '%s'",
                         (const char *)first_key->data.scalar.value);
    }
    bool takes_thresholds = !strcmp(kind, "feature") || !strcmp(kind, "any_of_list") || !strcmp(kind, "all_of_list");
    if (!takes_thresholds && walk_map_len(node) > 1)
        return walk_fail(w, kind_key, "'%s' takes no other keys in its mapping; expected {%s: ...} alone "
                                      "(thresholds belong to feature or list conditions)", kind, kind);
    if (!strcmp(kind, "feature"))
        return parse_leaf(p, node, kind_value, out);
    if (!strcmp(kind, "any") || !strcmp(kind, "all")) {
        out->kind = kind[1] == 'n' ? RULES_COND_ANY : RULES_COND_ALL;
        return parse_children(p, kind_value, kind, depth, out);
    }
    if (!strcmp(kind, "at_least"))
        return parse_at_least(p, kind_value, depth, out);
    if (!strcmp(kind, "macro"))
        return parse_macro_ref(p, kind_value, depth, out);
    if (!strcmp(kind, "any_of_list") || !strcmp(kind, "all_of_list"))
        return parse_list_ref(p, node, kind_value, kind[1] == 'n' ? RULES_COND_ANY : RULES_COND_ALL, out);
    if (!strcmp(kind, "probe"))
        return parse_probe(p, kind_value, out);
    return rules_parse_health(p, kind_value, out);
}

static saemon_status check_new_name(walk *w, const yaml_node_t *key, const char *what, const char *name)
{
    if (!*name)
        return walk_fail(w, key, "%s name is empty; expected a non-empty name", what);
    return SAEMON_OK;
}

saemon_status rules_parse_macros(rules_parser *p, const yaml_node_t *node)
{
    walk *w = p->w;
    saemon_status s = walk_check_map(w, node, "'macros'", NULL);
    if (s != SAEMON_OK)
        return s;
    size_t n = walk_map_len(node);
    if (!(p->rs->macros = arena_calloc(w->mem, n ? n : 1, sizeof *p->rs->macros)))
        return nomem(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *key, *value;
        walk_map_pair(w, node, i, &key, &value);
        rules_macro *m = &p->rs->macros[i];
        if ((s = walk_string(w, key, "a macro name", &m->name)) != SAEMON_OK ||
            (s = check_new_name(w, key, "a macro", m->name)) != SAEMON_OK)
            return s;
        if (!(m->cond = arena_calloc(w->mem, 1, sizeof *m->cond)))
            return nomem(w);
        p->deepest = 0;
        p->expanded = 0;
        if ((s = rules_parse_condition(p, value, 1, m->cond)) != SAEMON_OK)
            return s;
        m->depth = p->deepest;
        m->expanded = p->expanded;
        p->rs->n_macros++; /* visible to the macros after it, not to itself */
    }
    return SAEMON_OK;
}

saemon_status rules_parse_lists(rules_parser *p, const yaml_node_t *node)
{
    walk *w = p->w;
    char desc[96];
    saemon_status s = walk_check_map(w, node, "'lists'", NULL);
    if (s != SAEMON_OK)
        return s;
    size_t n = walk_map_len(node);
    if (!(p->rs->lists = arena_calloc(w->mem, n ? n : 1, sizeof *p->rs->lists)))
        return nomem(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *key, *value;
        walk_map_pair(w, node, i, &key, &value);
        rules_list *l = &p->rs->lists[i];
        if ((s = walk_string(w, key, "a list name", &l->name)) != SAEMON_OK ||
            (s = check_new_name(w, key, "a list", l->name)) != SAEMON_OK)
            return s;
        if (value->type != YAML_SEQUENCE_NODE || walk_seq_len(value) == 0)
            return walk_fail(w, value, "list '%.60s' is %s; expected a non-empty list of features", l->name,
                             value->type == YAML_SEQUENCE_NODE ? "empty" : walk_describe(value, desc, sizeof desc));
        l->n = walk_seq_len(value);
        l->features = arena_calloc(w->mem, l->n, sizeof *l->features);
        l->marks = arena_calloc(w->mem, l->n, sizeof *l->marks);
        if (!l->features || !l->marks)
            return nomem(w);
        for (size_t j = 0; j < l->n; j++) {
            yaml_node_t *item = walk_seq_item(w, value, j);
            if ((s = walk_visit(w, item)) != SAEMON_OK ||
                (s = rules_parse_feature(p, item, "a list item", &l->features[j])) != SAEMON_OK)
                return s;
            l->marks[j] = walk_mark(item);
        }
        p->rs->n_lists++;
    }
    return SAEMON_OK;
}

size_t rules_cond_max_features(const rules_cond *c)
{
    switch (c->kind) {
    case RULES_COND_LEAF: return 1;
    case RULES_COND_PROBE: return c->n_weights;
    case RULES_COND_HEALTH: return 0;
    default: break;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->n_children; i++)
        n += rules_cond_max_features(&c->children[i]);
    return n;
}

bool rules_cond_uses_reconstruction(const rules_cond *c)
{
    if (c->kind == RULES_COND_HEALTH)
        return c->health == RULES_HEALTH_RECON_ABOVE;
    for (size_t i = 0; i < c->n_children; i++)
        if (rules_cond_uses_reconstruction(&c->children[i]))
            return true;
    return false;
}
