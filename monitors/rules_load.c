/* saemon_rules_open, saemon_rules_from_string: YAML text -> validated saemon_ruleset. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "monitors/feature_labels.h"
#include "base/read_file.h"
#include "monitors/rules_canon.h"
#include "monitors/rules_condition.h"
#include "monitors/rules_internal.h"
#include "monitors/rules_needs.h"
#include "monitors/rules_template.h"
#include "base/yaml_walk.h"

static const char *const top_keys[] = {"version", "dictionary", "feature_labels", "lists", "macros",
                                       "rules", "groups", NULL};
static const char *const group_keys[] = {"name", "interval", "rules", NULL};
static const char *const window_keys[] = {"count_at_least", "tokens", NULL};
static const char *const pin_keys[] = {"name", "d_sae", "sha256", NULL};
static const char *const rule_keys[] = {"name",     "description", "enabled",         "severity",
                                        "condition", "health",     "for",             "window",
                                        "cooldown", "keep_firing_for", "labels",      "annotations",
                                        "action",   "every",    "capture",    NULL};
static const char *const capture_keys[] = {"features", "count", "window", NULL};
/* Falco priorities, most to least severe. */
static const char *const severities[] = {"emergency", "alert",         "critical", "error",
                                         "warning",   "notice",        "informational",
                                         "debug",     NULL};

static saemon_status nomem(walk *w)
{
    return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
}

static saemon_status parse_pin(walk *w, const yaml_node_t *node, rules_pin *pin)
{
    saemon_status s = walk_check_map(w, node, "'dictionary'", pin_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *v;
    if ((v = walk_get(w, node, "name", NULL))) {
        if ((s = walk_string(w, v, "'dictionary.name'", &pin->name)) != SAEMON_OK)
            return s;
        pin->name_mark = walk_mark(v);
    }
    if ((v = walk_get(w, node, "d_sae", NULL))) {
        if ((s = walk_uint(w, v, "'dictionary.d_sae'", UINT64_MAX, &pin->d_sae)) != SAEMON_OK)
            return s;
        if (pin->d_sae == 0)
            return walk_fail(w, v, "'dictionary.d_sae' is 0; expected a positive integer");
        pin->has_d_sae = true;
        pin->d_sae_mark = walk_mark(v);
    }
    if ((v = walk_get(w, node, "sha256", NULL))) {
        const char *hex;
        if ((s = walk_string(w, v, "'dictionary.sha256'", &hex)) != SAEMON_OK)
            return s;
        size_t len = strlen(hex);
        bool ok = len == 64;
        for (size_t i = 0; ok && i < len; i++)
            ok = isxdigit((unsigned char)hex[i]);
        if (!ok)
            return walk_fail(w, v, "'dictionary.sha256' is not 64 hex digits; "
                                   "expected the SHA-256 of the weights file in hex");
        char *lower = (char *)hex;
        for (size_t i = 0; i < len; i++)
            lower[i] = (char)tolower((unsigned char)lower[i]);
        pin->sha256 = lower;
        pin->sha256_mark = walk_mark(v);
    }
    return SAEMON_OK;
}

static saemon_status parse_kv(walk *w, const yaml_node_t *node, const char *what, saemon_kv **out,
                              size_t *n_out)
{
    saemon_status s = walk_check_map(w, node, what, NULL);
    if (s != SAEMON_OK)
        return s;
    size_t n = walk_map_len(node);
    saemon_kv *kv = arena_calloc(w->mem, n ? n : 1, sizeof *kv);
    if (!kv)
        return nomem(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *key, *value;
        walk_map_pair(w, node, i, &key, &value);
        if ((s = walk_string(w, key, "a key", &kv[i].key)) != SAEMON_OK)
            return s;
        char what_value[128];
        snprintf(what_value, sizeof what_value, "the value of %s.%.40s", what, kv[i].key);
        if ((s = walk_string(w, value, what_value, &kv[i].value)) != SAEMON_OK)
            return s;
    }
    *out = kv;
    *n_out = n;
    return SAEMON_OK;
}

static bool valid_rule_name(const char *name)
{
    if (!*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.:-", *p))
            return false;
    return true;
}

static saemon_status parse_severity(walk *w, const yaml_node_t *node, const char **out)
{
    const char *text;
    saemon_status s = walk_string(w, node, "'severity'", &text);
    if (s != SAEMON_OK)
        return s;
    if (strcasecmp(text, "info") == 0)
        text = "informational";
    for (const char *const *p = severities; *p; p++) {
        if (strcasecmp(text, *p) == 0) {
            *out = *p;
            return SAEMON_OK;
        }
    }
    return walk_fail(w, node, "unknown severity \"%.40s\"; expected one of: emergency, alert, critical, "
                              "error, warning, notice, informational (or info), debug",
                     text);
}

static saemon_status parse_window(walk *w, const yaml_node_t *node, rules_rule *r)
{
    saemon_status s = walk_check_map(w, node, "'window'", window_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *count = walk_get(w, node, "count_at_least", NULL), *tokens = walk_get(w, node, "tokens", NULL);
    if (!count || !tokens)
        return walk_fail(w, node, "'window' needs 'count_at_least' and 'tokens'; expected "
                                  "{count_at_least: M, tokens: N}");
    uint64_t m, n;
    if ((s = walk_uint(w, tokens, "'window.tokens'", RULES_MAX_WINDOW, &n)) != SAEMON_OK ||
        (s = walk_uint(w, count, "'window.count_at_least'", RULES_MAX_WINDOW, &m)) != SAEMON_OK)
        return s;
    if (n == 0)
        return walk_fail(w, tokens, "'window.tokens' is 0; expected 1 to %d", RULES_MAX_WINDOW);
    if (m == 0 || m > n)
        return walk_fail(w, count, "'window.count_at_least' is %llu for a window of %llu tokens; expected 1 to %llu",
                         (unsigned long long)m, (unsigned long long)n, (unsigned long long)n);
    r->window_count = (uint32_t)m;
    r->window_tokens = (uint32_t)n;
    return SAEMON_OK;
}

/* capture: {features: top, count: C, window: W} */
static saemon_status parse_capture(walk *w, const yaml_node_t *node, rules_rule *r)
{
    saemon_status s = walk_check_map(w, node, "'capture'", capture_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *features = walk_get(w, node, "features", NULL), *count = walk_get(w, node, "count", NULL),
                *window = walk_get(w, node, "window", NULL);
    const char *what = NULL;
    if (!features || !count || !window)
        return walk_fail(w, node, "'capture' needs 'features', 'count' and 'window'; expected "
                                  "{features: top, count: 32, window: 16}");
    if ((s = walk_string(w, features, "'capture.features'", &what)) != SAEMON_OK)
        return s;
    if (strcmp(what, "top") != 0)
        return walk_fail(w, features, "'capture.features' is '%.40s'; expected top", what);
    uint64_t c, n;
    if ((s = walk_uint(w, count, "'capture.count'", RULES_MAX_CAPTURE, &c)) != SAEMON_OK ||
        (s = walk_uint(w, window, "'capture.window'", RULES_MAX_CAPTURE_WINDOW, &n)) != SAEMON_OK)
        return s;
    if (c == 0)
        return walk_fail(w, count, "'capture.count' is 0; expected 1 to %d", RULES_MAX_CAPTURE);
    if (n == 0)
        return walk_fail(w, window, "'capture.window' is 0; expected 1 to %d tokens", RULES_MAX_CAPTURE_WINDOW);
    r->capture_count = (uint32_t)c;
    r->capture_window = (uint32_t)n;
    return SAEMON_OK;
}

static saemon_status parse_templates(walk *w, const yaml_node_t *node, rules_rule *r, const saemon_ruleset *rs)
{
    if (!(r->templates = arena_calloc(w->mem, r->n_annotations ? r->n_annotations : 1, sizeof *r->templates)))
        return nomem(w);
    for (size_t i = 0; i < r->n_annotations; i++) {
        yaml_node_t *key, *value;
        walk_map_pair(w, node, i, &key, &value);
        saemon_status s = rules_template_parse(w, value, r->annotations[i].value, r, rs, &r->templates[i]);
        if (s != SAEMON_OK)
            return s;
        r->annotations_len += r->templates[i].max_len + 1;
    }
    return SAEMON_OK;
}

static saemon_status parse_rule(rules_parser *p, const yaml_node_t *node, rules_rule *r)
{
    walk *w = p->w;
    saemon_status s = walk_check_map(w, node, "rule", rule_keys);
    if (s != SAEMON_OK)
        return s;
    r->mark = walk_mark(node);
    r->description = "";
    r->severity = "warning";
    r->enabled = true;
    r->for_tokens = 1;
    r->interval = 1;
    r->group = "";

    yaml_node_t *v = walk_get(w, node, "name", NULL);
    if (!v)
        return walk_fail(w, node, "rule has no 'name'; expected 'name: <identifier>'");
    if ((s = walk_string(w, v, "'name'", &r->name)) != SAEMON_OK)
        return s;
    if (!valid_rule_name(r->name))
        return walk_fail(w, v, "rule name \"%.40s\" has characters outside [A-Za-z0-9_.:-]; "
                               "expected a non-empty identifier of those characters",
                         r->name);
    r->name_mark = walk_mark(v);

    if ((v = walk_get(w, node, "description", NULL)) &&
        (s = walk_string(w, v, "'description'", &r->description)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "enabled", NULL)) &&
        (s = walk_bool(w, v, "'enabled'", &r->enabled)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "severity", NULL)) && (s = parse_severity(w, v, &r->severity)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "action", NULL))) {
        const char *action;
        if ((s = walk_string(w, v, "'action'", &action)) != SAEMON_OK)
            return s;
        if (strcmp(action, "block") == 0)
            r->block = true;
        else if (strcmp(action, "notify") != 0)
            return walk_fail(w, v, "unknown action \"%.40s\"; expected notify (the default) or block", action);
    }
    if ((v = walk_get(w, node, "for", NULL))) {
        if ((s = walk_uint(w, v, "'for'", UINT64_MAX, &r->for_tokens)) != SAEMON_OK)
            return s;
        if (r->for_tokens == 0)
            r->for_tokens = 1;
    }
    if ((v = walk_get(w, node, "cooldown", NULL)) &&
        (s = walk_uint(w, v, "'cooldown'", UINT64_MAX, &r->cooldown)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "keep_firing_for", NULL)) &&
        (s = walk_uint(w, v, "'keep_firing_for'", UINT64_MAX - 1, &r->keep_firing_for)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "window", NULL)) && (s = parse_window(w, v, r)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "capture", NULL)) && (s = parse_capture(w, v, r)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "labels", NULL)) &&
        (s = parse_kv(w, v, "'labels'", &r->labels, &r->n_labels)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "annotations", NULL)) &&
        ((s = parse_kv(w, v, "'annotations'", &r->annotations, &r->n_annotations)) != SAEMON_OK ||
         (s = parse_templates(w, v, r, p->rs)) != SAEMON_OK))
        return s;

    yaml_node_t *cond_key = NULL, *health_key = NULL;
    yaml_node_t *cond = walk_get(w, node, "condition", &cond_key);
    yaml_node_t *health = walk_get(w, node, "health", &health_key);
    if (!cond && !health)
        return walk_fail(w, node, "rule '%s' has no 'condition'; expected 'condition: {feature: N, "
                                  "above: X}' (or another condition) or 'health: {...}'",
                         r->name);
    if (cond && health)
        return walk_fail(w, health_key, "rule '%s' has both 'condition' and 'health'; expected one "
                                        "(use {health: ...} inside the condition to combine them)", r->name);
    if (!(r->cond = arena_calloc(w->mem, 1, sizeof *r->cond)))
        return nomem(w);
    p->deepest = 0;
    p->expanded = 0;
    s = cond ? rules_parse_condition(p, cond, 1, r->cond) : rules_parse_health(p, health, r->cond);
    if (s != SAEMON_OK)
        return s;
    r->max_features = rules_cond_max_features(r->cond);
    if ((v = walk_get(w, node, "every", NULL))) {
        if ((s = walk_uint(w, v, "'every'", UINT32_MAX, &r->every)) != SAEMON_OK)
            return s;
        if (r->every == 0)
            return walk_fail(w, v, "'every' is 0; expected a positive number of tokens");
        if (!rules_cond_has_health(r->cond))
            return walk_fail(w, v, "rule '%s' has 'every' but no health check; expected 'every' on a rule "
                                   "with a health check (it samples the full encode)", r->name);
    }
    r->needs_full = r->every || rules_cond_full_measure(r->cond);
    return SAEMON_OK;
}

static int by_name_then_position(const void *a, const void *b)
{
    const rules_rule *ra = *(const rules_rule *const *)a, *rb = *(const rules_rule *const *)b;
    int c = strcmp(ra->name, rb->name);
    return c ? c : (ra < rb ? -1 : ra > rb);
}

/* Blame the earliest (in file order) rule whose name was already used. */
static saemon_status check_unique_names(walk *w, saemon_ruleset *rs)
{
    const rules_rule **sorted = malloc(rs->n_rules * sizeof *sorted);
    if (!sorted)
        return nomem(w);
    for (size_t i = 0; i < rs->n_rules; i++)
        sorted[i] = &rs->rules[i];
    qsort(sorted, rs->n_rules, sizeof *sorted, by_name_then_position);
    const rules_rule *dup = NULL, *first = NULL;
    for (size_t i = 1; i < rs->n_rules; i++) {
        if (strcmp(sorted[i]->name, sorted[i - 1]->name) == 0 && (i < 2 || strcmp(sorted[i]->name, sorted[i - 2]->name) != 0) &&
            (!dup || sorted[i] < dup)) {
            dup = sorted[i];
            first = sorted[i - 1];
        }
    }
    free(sorted);
    if (!dup)
        return SAEMON_OK;
    return saemon_error_set(w->err, SAEMON_ERR_RULES,
                            "%s:%zu:%zu: duplicate rule name '%s' (first at %zu:%zu); "
                            "expected every rule name once per file",
                            w->file, dup->name_mark.line, dup->name_mark.column, dup->name,
                            first->name_mark.line, first->name_mark.column);
}

static saemon_status check_rule_list(walk *w, const yaml_node_t *list, const char *what)
{
    char desc[96];
    if (list->type != YAML_SEQUENCE_NODE)
        return walk_fail(w, list, "%s is %s; expected a list of rules", what, walk_describe(list, desc, sizeof desc));
    if (walk_seq_len(list) == 0)
        return walk_fail(w, list, "%s is an empty list; expected at least one rule", what);
    return SAEMON_OK;
}

/* Append the rules of `list` (already checked) to rs->rules. */
static saemon_status parse_rules(rules_parser *p, const yaml_node_t *list, const char *group, uint64_t interval)
{
    walk *w = p->w;
    saemon_ruleset *rs = p->rs;
    for (size_t i = 0, n = walk_seq_len(list); i < n; i++) {
        yaml_node_t *item = walk_seq_item(w, list, i);
        rules_rule *r = &rs->rules[rs->n_rules];
        saemon_status s = walk_visit(w, item);
        if (s == SAEMON_OK)
            s = parse_rule(p, item, r);
        if (s != SAEMON_OK)
            return s;
        r->group = group;
        r->interval = interval;
        if (!rules_canon_build(w->mem, rs, r))
            return nomem(w);
        rs->n_rules++;
        if (!r->enabled)
            continue;
        rs->n_enabled++;
        if (r->max_features > rs->max_features)
            rs->max_features = r->max_features;
        if (r->n_annotations > rs->max_annotations)
            rs->max_annotations = r->n_annotations;
        if (r->annotations_len > rs->max_annotations_len)
            rs->max_annotations_len = r->annotations_len;
        if (rules_cond_uses_reconstruction(r->cond))
            rs->needs_reconstruction = true;
    }
    return SAEMON_OK;
}

/* groups: [{name, interval, rules}]; returns the number of rules in *n_rules. */
static saemon_status check_groups(walk *w, const yaml_node_t *groups, size_t *n_rules)
{
    char desc[96];
    if (groups->type != YAML_SEQUENCE_NODE || walk_seq_len(groups) == 0)
        return walk_fail(w, groups, "'groups' is %s; expected a non-empty list of {name, interval, rules}",
                         groups->type == YAML_SEQUENCE_NODE ? "an empty list" : walk_describe(groups, desc, sizeof desc));
    for (size_t i = 0, n = walk_seq_len(groups); i < n; i++) {
        yaml_node_t *g = walk_seq_item(w, groups, i), *name, *list;
        saemon_status s = walk_visit(w, g);
        if (s == SAEMON_OK)
            s = walk_check_map(w, g, "group", group_keys);
        if (s != SAEMON_OK)
            return s;
        if (!(name = walk_get(w, g, "name", NULL)))
            return walk_fail(w, g, "group has no 'name'; expected {name: N, interval: K, rules: [...]}");
        if (!(list = walk_get(w, g, "rules", NULL)))
            return walk_fail(w, g, "group has no 'rules'; expected {name: N, interval: K, rules: [...]}");
        if ((s = check_rule_list(w, list, "the group's 'rules'")) != SAEMON_OK)
            return s;
        *n_rules += walk_seq_len(list);
    }
    return SAEMON_OK;
}

static saemon_status parse_groups(rules_parser *p, const yaml_node_t *groups)
{
    walk *w = p->w;
    size_t n = walk_seq_len(groups);
    const char **names = arena_calloc(w->mem, n, sizeof *names);
    if (!names)
        return nomem(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *g = walk_seq_item(w, groups, i), *v;
        saemon_status s = walk_string(w, walk_get(w, g, "name", NULL), "the group's 'name'", &names[i]);
        if (s != SAEMON_OK)
            return s;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[j], names[i]))
                return walk_fail(w, walk_get(w, g, "name", NULL), "duplicate group name '%.60s'; expected "
                                 "every group name once per file", names[i]);
        uint64_t interval = 1;
        if ((v = walk_get(w, g, "interval", NULL))) {
            if ((s = walk_uint(w, v, "'interval'", UINT64_MAX, &interval)) != SAEMON_OK)
                return s;
            if (interval == 0)
                return walk_fail(w, v, "'interval' is 0; expected a positive number of tokens");
        }
        if ((s = parse_rules(p, walk_get(w, g, "rules", NULL), names[i], interval)) != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

static saemon_status parse_feature_labels(walk *w, const yaml_node_t *node, saemon_ruleset *rs,
                                          const saemon_rules_options *opts)
{
    const char *rel = opts ? opts->feature_labels : NULL;
    saemon_status s;
    if (!rel && node && (s = walk_string(w, node, "'feature_labels'", &rel)) != SAEMON_OK)
        return s;
    if (!rel)
        return SAEMON_OK;
    char *path = opts && opts->feature_labels ? strdup(rel) : path_relative_to(rs->filename, rel);
    if (!path)
        return nomem(w);
    s = rules_labels_load(rs, path, w->err);
    free(path);
    if (s != SAEMON_OK && node && !(opts && opts->feature_labels)) {
        /* Say which line of the rule file pointed at the label file. */
        char inner[SAEMON_ERROR_MESSAGE_MAX];
        snprintf(inner, sizeof inner, "%s", w->err->message);
        walk_pos m = walk_mark(node);
        saemon_error_set(w->err, s, "%s:%zu:%zu: cannot use 'feature_labels': %s", w->file, m.line, m.column,
                         inner);
    }
    return s;
}

static saemon_status parse_document(walk *w, const yaml_node_t *root, saemon_ruleset *rs,
                                    const saemon_rules_options *opts)
{
    saemon_status s = walk_visit(w, root);
    if (s == SAEMON_OK)
        s = walk_check_map(w, root, "the top level", top_keys);
    if (s != SAEMON_OK)
        return s;
    rs->version = 1;
    yaml_node_t *v;
    if ((v = walk_get(w, root, "version", NULL))) {
        if ((s = walk_uint(w, v, "'version'", UINT64_MAX, &rs->version)) != SAEMON_OK)
            return s;
        if (rs->version != 1)
            return walk_fail_code(w, SAEMON_ERR_UNSUPPORTED, v,
                                  "rule file version %llu is not supported by this saemon; expected 1",
                                  (unsigned long long)rs->version);
    }
    if ((v = walk_get(w, root, "dictionary", NULL)) && (s = parse_pin(w, v, &rs->pin)) != SAEMON_OK)
        return s;
    if ((s = parse_feature_labels(w, walk_get(w, root, "feature_labels", NULL), rs, opts)) != SAEMON_OK)
        return s;
    rules_parser p = {.w = w, .rs = rs};
    if ((v = walk_get(w, root, "lists", NULL)) && (s = rules_parse_lists(&p, v)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, root, "macros", NULL)) && (s = rules_parse_macros(&p, v)) != SAEMON_OK)
        return s;
    yaml_node_t *flat = walk_get(w, root, "rules", NULL), *groups = walk_get(w, root, "groups", NULL);
    if (!flat && !groups)
        return walk_fail(w, root, "rule file has no 'rules'; expected a top-level 'rules:' list (or 'groups:')");
    size_t n = 0;
    if (flat && (s = check_rule_list(w, flat, "'rules'")) != SAEMON_OK)
        return s;
    n += flat ? walk_seq_len(flat) : 0;
    if (groups && (s = check_groups(w, groups, &n)) != SAEMON_OK)
        return s;
    if (!(rs->rules = arena_calloc(w->mem, n, sizeof *rs->rules)))
        return nomem(w);
    if (flat && (s = parse_rules(&p, flat, "", 1)) != SAEMON_OK)
        return s;
    if (groups && (s = parse_groups(&p, groups)) != SAEMON_OK)
        return s;
    return check_unique_names(w, rs);
}
void saemon_rules_close(saemon_ruleset *rules)
{
    if (!rules)
        return;
    arena mem = rules->mem;
    free(rules->trackers);
    arena_free(&mem);
    free(rules);
}

static saemon_status load_document(yaml_parser_t *parser, const char *yaml, size_t len,
                                   saemon_ruleset *rs, const saemon_rules_options *opts, saemon_error *err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc))
        return walk_syntax_error(parser, rs->filename, yaml, len, err);
    walk w = {.file = rs->filename, .doc = &doc, .mem = &rs->mem, .err = err};
    saemon_status s;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        s = saemon_error_set(err, SAEMON_ERR_RULES,
                             "%s:1:1: rule file is empty; expected a mapping with a 'rules' list",
                             rs->filename);
    else
        s = parse_document(&w, root, rs, opts);
    yaml_document_delete(&doc);
    if (s != SAEMON_OK)
        return s;

    /* Exactly one document: a second one would be silently ignored otherwise. */
    if (!yaml_parser_load(parser, &doc))
        return walk_syntax_error(parser, rs->filename, yaml, len, err);
    root = yaml_document_get_root_node(&doc);
    if (root) {
        walk_pos m = walk_mark(root);
        s = saemon_error_set(err, SAEMON_ERR_RULES,
                             "%s:%zu:%zu: a second YAML document; expected exactly one document per rule file",
                             rs->filename, m.line, m.column);
    }
    yaml_document_delete(&doc);
    return s;
}

saemon_status saemon_rules_from_string(const char *yaml, size_t len, const char *filename,
                                       const saemon_rules_options *opts, saemon_ruleset **out,
                                       saemon_error *err)
{
    if (!out || (!yaml && len))
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_rules_from_string: NULL argument");
    *out = NULL;
    if (!filename)
        filename = "(string)";
    if (len > RULES_MAX_FILE_BYTES)
        return saemon_error_set(err, SAEMON_ERR_RULES, "%s: rule file is %zu bytes; expected at most %u",
                                filename, len, RULES_MAX_FILE_BYTES);
    saemon_ruleset *rs = calloc(1, sizeof *rs);
    if (!rs)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", filename);
    rs->filename = arena_strndup(&rs->mem, filename, strlen(filename));
    if (!rs->filename) {
        saemon_rules_close(rs);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", filename);
    }
    saemon_status depth_ok = walk_check_depth(rs->filename, yaml ? yaml : "", len, SAEMON_ERR_RULES, err);
    if (depth_ok != SAEMON_OK) {
        saemon_rules_close(rs);
        return depth_ok;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        saemon_rules_close(rs);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", filename);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(yaml ? yaml : ""), len);
    saemon_status s = load_document(&parser, yaml ? yaml : "", len, rs, opts, err);
    yaml_parser_delete(&parser);
    if (s != SAEMON_OK) {
        saemon_rules_close(rs);
        return s;
    }
    *out = rs;
    return SAEMON_OK;
}

saemon_status saemon_rules_open(const char *path, const saemon_rules_options *opts, saemon_ruleset **out,
                                saemon_error *err)
{
    if (!path || !out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_rules_open: NULL argument");
    *out = NULL;
    char *text;
    size_t len;
    saemon_status s = read_whole_file(path, RULES_MAX_FILE_BYTES, "rule file", &text, &len, err);
    if (s != SAEMON_OK)
        return s;
    s = saemon_rules_from_string(text, len, path, opts, out, err);
    free(text);
    return s;
}

bool saemon_rules_needs_reconstruction(const saemon_ruleset *rules)
{
    return rules && rules->needs_reconstruction;
}
