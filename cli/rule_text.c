/* Editing a rule file's thresholds in its own text (calibrate): libyaml's
 * marks give each scalar's byte range, so only that scalar changes and keys,
 * order and comments stay as written. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cli/authoring.h"

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool parse_index(const char *s, uint32_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o'))
        base = s[1] == 'x' ? 16 : 8, s += 2;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end || end == s || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* A rule-language probe `{weights: {FEATURE: W...}, bias: B, above: P}`:
 * its weights, so calibrate can compute the probability on each token. */
static void probe_leaf(yaml_document_t *doc, yaml_node_t *map, const char *path, auth_tunable *t)
{
    yaml_node_t *w = map_get(doc, map, "weights");
    const char *bias = scalar(map_get(doc, map, "bias"));
    if (!w || w->type != YAML_MAPPING_NODE) {
        snprintf(t->why, sizeof t->why, "the probe at %s has no weights mapping", path);
        return;
    }
    size_t n = (size_t)(w->data.mapping.pairs.top - w->data.mapping.pairs.start);
    t->probe_feature = calloc(n ? n : 1, sizeof *t->probe_feature);
    t->probe_weight = calloc(n ? n : 1, sizeof *t->probe_weight);
    if (!t->probe_feature || !t->probe_weight) {
        snprintf(t->why, sizeof t->why, "out of memory");
        return;
    }
    char *end;
    t->probe_bias = bias ? strtod(bias, &end) : 0;
    for (yaml_node_pair_t *p = w->data.mapping.pairs.start; p < w->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(doc, p->key));
        const char *v = scalar(yaml_document_get_node(doc, p->value));
        if (!parse_index(k, &t->probe_feature[t->n_probe]) || !v) {
            snprintf(t->why, sizeof t->why, "the probe at %s names a feature by label (use indices to tune it)",
                     path);
            return;
        }
        t->probe_weight[t->n_probe++] = strtod(v, &end);
    }
    t->probe = true;
}

/* Follow "a.b.0.c" from `node`; the last step must be `above` or `below`. */
static void resolve(yaml_document_t *doc, yaml_node_t *rule, const char *path, auth_tunable *t)
{
    char *copy = strdup(path), *save = NULL;
    yaml_node_t *parent = NULL, *node = rule;
    const char *last = NULL;
    for (char *tok = copy ? strtok_r(copy, ".", &save) : NULL; tok && node; tok = strtok_r(NULL, ".", &save)) {
        parent = node;
        last = tok;
        if (node->type == YAML_SEQUENCE_NODE) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            yaml_node_item_t *items = node->data.sequence.items.start;
            size_t n = (size_t)(node->data.sequence.items.top - items);
            node = *end || end == tok || i >= n ? NULL : yaml_document_get_node(doc, items[i]);
        } else {
            node = map_get(doc, node, tok);
        }
    }
    if (!node || !last) {
        snprintf(t->why, sizeof t->why, "no %s in the rule", path);
    } else if (strcmp(last, "above") && strcmp(last, "below")) {
        snprintf(t->why, sizeof t->why, "%s is not an above/below threshold", path);
    } else if (node->type != YAML_SCALAR_NODE) {
        snprintf(t->why, sizeof t->why, "%s is not a number", path);
    } else if (map_get(doc, parent, "weights")) {
        if (strcmp(last, "above")) {
            snprintf(t->why, sizeof t->why, "%s: a probe's threshold is `above`", path);
        } else {
            probe_leaf(doc, parent, path, t);
            char *end;
            t->value = strtod(scalar(node), &end);
            t->above = true;
            t->start = node->start_mark.index;
            t->end = node->end_mark.index;
        }
    } else if (map_get(doc, parent, "mean_over")) {
        snprintf(t->why, sizeof t->why, "the leaf at %s has mean_over (not tunable)", path);
    } else if (map_get(doc, parent, "above") && map_get(doc, parent, "below")) {
        snprintf(t->why, sizeof t->why, "the leaf at %s has both above and below (a band: not tunable)", path);
    } else if (!parse_index(scalar(map_get(doc, parent, "feature")), &t->feature)) {
        snprintf(t->why, sizeof t->why, "the leaf at %s has no feature index (a label, list or probe)", path);
    } else {
        char *end;
        t->value = strtod(scalar(node), &end);
        if (*end || end == scalar(node))
            snprintf(t->why, sizeof t->why, "%s is not a number", path);
        t->above = !strcmp(last, "above");
        t->start = node->start_mark.index;
        t->end = node->end_mark.index;
    }
    free(copy);
}

/* The bound on the firing events a leaf gives (see auth_tunable.bound):
 * every firing event starts a run of evaluations on which the (windowed)
 * condition held, at most one firing per run (an alert stays firing while
 * the condition holds), and each run starts on an evaluation where the raw
 * condition held, so the leaf held: firings <= tokens where the leaf held.
 * When the leaf is the whole condition, a windowed run lies inside one run
 * of the leaf (within a run of true evaluations the window count cannot
 * fall), and without a window in a flat rule (interval 1: evaluations are
 * tokens) a firing needs `for` consecutive true tokens: firings <= runs of
 * at least `for` tokens. Cooldown and keep_firing_for only remove firings. */
static void leaf_bound(yaml_document_t *doc, yaml_node_t *rule, bool flat, auth_tunable *t)
{
    const char *p = t->path;
    if (t->why[0] || t->probe || strncmp(p, "condition.", 10))
        return;
    p += 10;
    if (!strcmp(p, "above") || !strcmp(p, "below")) {
        t->bound = AUTH_BOUND_RUNS;
        t->run_min = 1;
        const char *f = scalar(map_get(doc, rule, "for"));
        char *end;
        unsigned long long n = f ? strtoull(f, &end, 10) : 1;
        if (flat && !map_get(doc, rule, "window") && f && !*end && n > 1)
            t->run_min = n;
        return;
    }
    while (!strncmp(p, "all.", 4)) { /* all.<index>. ... */
        p += 4;
        if (*p < '0' || *p > '9')
            return;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p++ != '.')
            return;
    }
    if (!strcmp(p, "above") || !strcmp(p, "below"))
        t->bound = AUTH_BOUND_TOKENS;
}

static bool add_rule(yaml_document_t *doc, yaml_node_t *rule, bool flat, char *const *tune, size_t n_tune,
                     auth_tunable **v, size_t *n)
{
    const char *name = scalar(map_get(doc, rule, "name"));
    const char *enabled = scalar(map_get(doc, rule, "enabled"));
    if (!name || (enabled && !strcmp(enabled, "false")))
        return true;
    auth_tunable *g = realloc(*v, (*n + 1) * sizeof *g);
    if (!g)
        return false;
    *v = g;
    auth_tunable *t = &g[*n];
    memset(t, 0, sizeof *t);
    t->rule = strdup(name);
    const char *path = NULL;
    size_t nl = strlen(name);
    for (size_t i = 0; i < n_tune; i++)
        if (!strncmp(tune[i], name, nl) && tune[i][nl] == ':')
            path = tune[i] + nl + 1;
    if (!path) {
        yaml_node_t *cond = map_get(doc, rule, "condition");
        path = map_get(doc, cond, "above") ? "condition.above" : "condition.below";
        if (!map_get(doc, cond, "feature") || (!map_get(doc, cond, "above") && !map_get(doc, cond, "below")))
            path = NULL;
        if (!path && map_get(doc, map_get(doc, cond, "probe"), "above"))
            path = "condition.probe.above";
    }
    t->path = strdup(path ? path : "-");
    if (!t->rule || !t->path)
        return false;
    (*n)++;
    if (!path)
        snprintf(t->why, sizeof t->why, "no single feature leaf with above/below (name one with --tune %s:PATH)",
                 name);
    else
        resolve(doc, rule, path, t);
    leaf_bound(doc, rule, flat, t);
    return true;
}

static bool add_rules(yaml_document_t *doc, yaml_node_t *seq, bool flat, char *const *tune, size_t n_tune,
                      auth_tunable **v, size_t *n)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return true;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++)
        if (!add_rule(doc, yaml_document_get_node(doc, *it), flat, tune, n_tune, v, n))
            return false;
    return true;
}

bool auth_find_tunables(const char *what, const char *file, const char *text, size_t len, char *const *tune, size_t n_tune,
                        auth_tunable **out, size_t *n_out)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    *out = NULL;
    *n_out = 0;
    if (!yaml_parser_initialize(&parser))
        return false;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    bool ok = yaml_parser_load(&parser, &doc);
    if (!ok) {
        fprintf(stderr, "saemon %s: %s:%zu:%zu: %s\n", what, file, parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
        yaml_parser_delete(&parser);
        return false;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    ok = add_rules(&doc, map_get(&doc, root, "rules"), true, tune, n_tune, out, n_out);
    yaml_node_t *groups = map_get(&doc, root, "groups");
    if (ok && groups && groups->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = groups->data.sequence.items.start; ok && it < groups->data.sequence.items.top;
             it++)
            ok = add_rules(&doc, map_get(&doc, yaml_document_get_node(&doc, *it), "rules"), false, tune, n_tune,
                           out, n_out);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!ok)
        fprintf(stderr, "saemon %s: out of memory\n", what);
    for (size_t i = 0; ok && i < n_tune; i++) {
        bool found = false;
        for (size_t k = 0; k < *n_out; k++) {
            size_t nl = strlen((*out)[k].rule);
            found |= !strncmp(tune[i], (*out)[k].rule, nl) && tune[i][nl] == ':';
        }
        if (!found) {
            fprintf(stderr, "saemon calibrate: --tune %s: no enabled rule of that name in %s (expected RULE:PATH)\n",
                    tune[i], file);
            ok = false;
        }
    }
    return ok;
}

void auth_tunables_free(auth_tunable *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].rule);
        free(t[i].path);
        free(t[i].probe_feature);
        free(t[i].probe_weight);
    }
    free(t);
}

char *auth_text_replace(const char *text, size_t len, size_t start, size_t end, const char *repl, size_t *out_len)
{
    size_t rl = strlen(repl), n = len - (end - start) + rl;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, text, start);
    memcpy(s + start, repl, rl);
    memcpy(s + start + rl, text + end, len - end);
    s[n] = 0;
    *out_len = n;
    return s;
}

void auth_format_threshold(char *buf, size_t len, float v)
{
    /* %.9g round-trips a float32; a plain integer gets ".0" so it stays a YAML float */
    snprintf(buf, len, "%.9g", (double)v);
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", len - strlen(buf) - 1);
}

bool auth_write_atomic(const char *what, const char *path, const char *text, size_t len)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) {
        fprintf(stderr, "saemon %s: out of memory\n", what);
        return false;
    }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "saemon %s: %s: cannot create a temporary file: %s\n", what, tmp, strerror(errno));
        free(tmp);
        return false;
    }
    bool ok = true;
    for (size_t done = 0; ok && done < len;) {
        ssize_t k = write(fd, text + done, len - done);
        if (k < 0 && errno == EINTR)
            continue;
        ok = k > 0;
        done += ok ? (size_t)k : 0;
    }
    ok = ok && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        fprintf(stderr, "saemon %s: %s: write failed: %s\n", what, path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}
