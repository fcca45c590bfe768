/* The rule unit test file: rule_files + tests[{name, input, expect}]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "monitors/rule_tests.h"
#include "base/yaml_walk.h"

static const char *const top_keys[] = {"rule_files", "tests", NULL};
static const char *const test_keys[] = {"name", "input", "expect", NULL};
static const char *const input_keys[] = {"stream", "token", "features", "recon_error", "input_norm",
                                         "input_nonfinite", "repeat", NULL};
static const char *const expect_keys[] = {"token", "stream", "alerts", NULL};
static const char *const alert_keys[] = {"rule", "status", "labels", "annotations", NULL};

static saemon_status nomem(walk *w)
{
    return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
}

static saemon_status list_of(walk *w, const yaml_node_t *node, const char *what, bool may_be_empty)
{
    char desc[96];
    if (node->type != YAML_SEQUENCE_NODE)
        return walk_fail(w, node, "%s is %s; expected a list", what, walk_describe(node, desc, sizeof desc));
    if (!may_be_empty && walk_seq_len(node) == 0)
        return walk_fail(w, node, "%s is an empty list; expected at least one item", what);
    return SAEMON_OK;
}

static saemon_status parse_kv(walk *w, const yaml_node_t *node, const char *what, saemon_kv **out, size_t *n_out)
{
    saemon_status s = walk_check_map(w, node, what, NULL);
    if (s != SAEMON_OK)
        return s;
    size_t n = walk_map_len(node);
    if (!(*out = arena_calloc(w->mem, n ? n : 1, sizeof **out)))
        return nomem(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k, *v;
        walk_map_pair(w, node, i, &k, &v);
        if ((s = walk_string(w, k, "a key", &(*out)[i].key)) != SAEMON_OK ||
            (s = walk_string(w, v, "a value", &(*out)[i].value)) != SAEMON_OK)
            return s;
    }
    *n_out = n;
    return SAEMON_OK;
}

static saemon_status parse_features(walk *w, const yaml_node_t *node, rt_input *in)
{
    saemon_status s = walk_check_map(w, node, "'features'", NULL);
    if (s != SAEMON_OK)
        return s;
    size_t n = walk_map_len(node);
    in->index = arena_calloc(w->mem, n ? n : 1, sizeof *in->index);
    in->value = arena_calloc(w->mem, n ? n : 1, sizeof *in->value);
    if (!in->index || !in->value)
        return nomem(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k, *v;
        walk_map_pair(w, node, i, &k, &v);
        uint64_t index;
        float value;
        if ((s = walk_uint(w, k, "a feature index", UINT32_MAX, &index)) != SAEMON_OK ||
            (s = walk_float_any(w, v, "a feature value", &value)) != SAEMON_OK)
            return s;
        size_t j = in->nnz; /* insertion sort: the token view wants ascending indices */
        while (j > 0 && in->index[j - 1] > index) {
            in->index[j] = in->index[j - 1];
            in->value[j] = in->value[j - 1];
            j--;
        }
        if (j > 0 && in->index[j - 1] == index)
            return walk_fail(w, k, "feature %llu is given twice; expected each feature once",
                             (unsigned long long)index);
        in->index[j] = (uint32_t)index;
        in->value[j] = value;
        in->nnz++;
    }
    return SAEMON_OK;
}

static saemon_status parse_input(walk *w, const yaml_node_t *node, rt_input *in, uint64_t *total)
{
    saemon_status s = walk_check_map(w, node, "an input token", input_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *v;
    in->recon_error = NAN;
    in->input_norm = 1.0f;
    in->repeat = 1;
    if ((v = walk_get(w, node, "stream", NULL))) {
        if ((s = walk_uint(w, v, "'stream'", UINT64_MAX, &in->stream)) != SAEMON_OK)
            return s;
        in->has_stream = true;
    }
    if ((v = walk_get(w, node, "token", NULL))) {
        if ((s = walk_uint(w, v, "'token'", UINT64_MAX, &in->token)) != SAEMON_OK)
            return s;
        in->has_token = true;
    }
    if ((v = walk_get(w, node, "features", NULL)) && (s = parse_features(w, v, in)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "recon_error", NULL)) &&
        (s = walk_float_any(w, v, "'recon_error'", &in->recon_error)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "input_norm", NULL)) &&
        (s = walk_float_any(w, v, "'input_norm'", &in->input_norm)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "input_nonfinite", NULL)) &&
        (s = walk_bool(w, v, "'input_nonfinite'", &in->nonfinite)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "repeat", NULL))) {
        if ((s = walk_uint(w, v, "'repeat'", RULE_TESTS_MAX_TOKENS, &in->repeat)) != SAEMON_OK)
            return s;
        if (in->repeat == 0)
            return walk_fail(w, v, "'repeat' is 0; expected a positive count");
        if (in->has_token && in->repeat - 1 > UINT64_MAX - in->token)
            return walk_fail(w, v, "'repeat' runs past token 18446744073709551615; expected fewer tokens");
    }
    *total += in->repeat;
    if (*total > RULE_TESTS_MAX_TOKENS)
        return walk_fail(w, node, "the test feeds more than %d tokens; expected a shorter input",
                         RULE_TESTS_MAX_TOKENS);
    return SAEMON_OK;
}

static saemon_status parse_alert(walk *w, const yaml_node_t *node, rt_expect_alert *a)
{
    saemon_status s = walk_check_map(w, node, "an expected alert", alert_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *v = walk_get(w, node, "rule", NULL);
    if (!v)
        return walk_fail(w, node, "expected alert has no 'rule'; expected {rule: NAME, status: firing|resolved}");
    if ((s = walk_string(w, v, "'rule'", &a->rule)) != SAEMON_OK)
        return s;
    a->rule_mark = walk_mark(v);
    a->status = "firing";
    if ((v = walk_get(w, node, "status", NULL))) {
        if ((s = walk_string(w, v, "'status'", &a->status)) != SAEMON_OK)
            return s;
        if (strcmp(a->status, "firing") && strcmp(a->status, "resolved"))
            return walk_fail(w, v, "status \"%.40s\" is unknown; expected firing or resolved", a->status);
    }
    if ((v = walk_get(w, node, "labels", NULL))) {
        if ((s = parse_kv(w, v, "'labels'", &a->labels, &a->n_labels)) != SAEMON_OK)
            return s;
        a->has_labels = true;
    }
    if ((v = walk_get(w, node, "annotations", NULL))) {
        if ((s = parse_kv(w, v, "'annotations'", &a->annotations, &a->n_annotations)) != SAEMON_OK)
            return s;
        a->has_annotations = true;
    }
    return SAEMON_OK;
}

static saemon_status parse_expect(walk *w, const yaml_node_t *node, rt_expect *e)
{
    saemon_status s = walk_check_map(w, node, "an expectation", expect_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *v = walk_get(w, node, "token", NULL), *alerts = walk_get(w, node, "alerts", NULL);
    if (!v || !alerts)
        return walk_fail(w, node, "expectation needs 'token' and 'alerts'; expected {token: T, alerts: [...]}");
    if ((s = walk_uint(w, v, "'token'", UINT64_MAX, &e->token)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, node, "stream", NULL))) {
        if ((s = walk_uint(w, v, "'stream'", UINT64_MAX, &e->stream)) != SAEMON_OK)
            return s;
        e->has_stream = true;
    }
    if ((s = list_of(w, alerts, "'alerts'", true)) != SAEMON_OK)
        return s;
    e->n = walk_seq_len(alerts);
    if (!(e->alerts = arena_calloc(w->mem, e->n ? e->n : 1, sizeof *e->alerts)))
        return nomem(w);
    for (size_t i = 0; i < e->n; i++) {
        yaml_node_t *item = walk_seq_item(w, alerts, i);
        if ((s = walk_visit(w, item)) != SAEMON_OK || (s = parse_alert(w, item, &e->alerts[i])) != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

static saemon_status parse_test(walk *w, const yaml_node_t *node, rt_test *t)
{
    saemon_status s = walk_check_map(w, node, "a test", test_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *name = walk_get(w, node, "name", NULL), *input = walk_get(w, node, "input", NULL);
    yaml_node_t *expect = walk_get(w, node, "expect", NULL);
    if (!name || !input || !expect)
        return walk_fail(w, node, "test needs 'name', 'input' and 'expect'; expected {name, input: [...], expect: [...]}");
    if ((s = walk_string(w, name, "the test's 'name'", &t->name)) != SAEMON_OK ||
        (s = list_of(w, input, "'input'", false)) != SAEMON_OK || (s = list_of(w, expect, "'expect'", true)) != SAEMON_OK)
        return s;
    t->n_input = walk_seq_len(input);
    t->n_expect = walk_seq_len(expect);
    t->input = arena_calloc(w->mem, t->n_input, sizeof *t->input);
    t->expect = arena_calloc(w->mem, t->n_expect ? t->n_expect : 1, sizeof *t->expect);
    if (!t->input || !t->expect)
        return nomem(w);
    uint64_t total = 0;
    for (size_t i = 0; i < t->n_input; i++) {
        yaml_node_t *item = walk_seq_item(w, input, i);
        if ((s = walk_visit(w, item)) != SAEMON_OK || (s = parse_input(w, item, &t->input[i], &total)) != SAEMON_OK)
            return s;
    }
    for (size_t i = 0; i < t->n_expect; i++) {
        yaml_node_t *item = walk_seq_item(w, expect, i);
        if ((s = walk_visit(w, item)) != SAEMON_OK || (s = parse_expect(w, item, &t->expect[i])) != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

static saemon_status parse_root(walk *w, const yaml_node_t *root, rule_test_file *tf)
{
    saemon_status s = walk_visit(w, root);
    if (s == SAEMON_OK)
        s = walk_check_map(w, root, "the top level", top_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *files = walk_get(w, root, "rule_files", NULL), *tests = walk_get(w, root, "tests", NULL);
    if (!files || !tests)
        return walk_fail(w, root, "test file needs 'rule_files' and 'tests'; expected rule_files: [...] and tests: [...]");
    if ((s = list_of(w, files, "'rule_files'", false)) != SAEMON_OK || (s = list_of(w, tests, "'tests'", false)) != SAEMON_OK)
        return s;
    tf->n_rule_files = walk_seq_len(files);
    tf->rule_files = arena_calloc(w->mem, tf->n_rule_files, sizeof *tf->rule_files);
    tf->rule_file_marks = arena_calloc(w->mem, tf->n_rule_files, sizeof *tf->rule_file_marks);
    tf->n_tests = walk_seq_len(tests);
    tf->tests = arena_calloc(w->mem, tf->n_tests, sizeof *tf->tests);
    if (!tf->rule_files || !tf->rule_file_marks || !tf->tests)
        return nomem(w);
    for (size_t i = 0; i < tf->n_rule_files; i++) {
        yaml_node_t *item = walk_seq_item(w, files, i);
        if ((s = walk_visit(w, item)) != SAEMON_OK || (s = walk_string(w, item, "a rule file", &tf->rule_files[i])) != SAEMON_OK)
            return s;
        tf->rule_file_marks[i] = walk_mark(item);
    }
    for (size_t i = 0; i < tf->n_tests; i++) {
        yaml_node_t *item = walk_seq_item(w, tests, i);
        if ((s = walk_visit(w, item)) != SAEMON_OK || (s = parse_test(w, item, &tf->tests[i])) != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

void rule_tests_free(rule_test_file *tf)
{
    if (!tf)
        return;
    arena mem = tf->mem;
    arena_free(&mem);
    free(tf);
}

saemon_status rule_tests_parse_string(const char *yaml, size_t len, const char *filename, rule_test_file **out,
                                      saemon_error *err)
{
    *out = NULL;
    rule_test_file *tf = calloc(1, sizeof *tf);
    yaml_parser_t parser;
    if (!tf || !(tf->filename = arena_strndup(&tf->mem, filename, strlen(filename)))) {
        rule_tests_free(tf);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", filename);
    }
    if (len > RULES_MAX_FILE_BYTES) {
        rule_tests_free(tf);
        return saemon_error_set(err, SAEMON_ERR_RULES, "%s: test file is %zu bytes; expected at most %u", filename,
                                len, RULES_MAX_FILE_BYTES);
    }
    saemon_status depth_ok = walk_check_depth(tf->filename, yaml ? yaml : "", len, SAEMON_ERR_RULES, err);
    if (depth_ok != SAEMON_OK) {
        rule_tests_free(tf);
        return depth_ok;
    }
    if (!yaml_parser_initialize(&parser)) {
        rule_tests_free(tf);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", filename);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(yaml ? yaml : ""), len);
    yaml_document_t doc;
    saemon_status s;
    if (!yaml_parser_load(&parser, &doc)) {
        s = walk_syntax_error(&parser, tf->filename, yaml ? yaml : "", len, err);
    } else {
        walk w = {.file = tf->filename, .doc = &doc, .mem = &tf->mem, .err = err};
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        s = root ? parse_root(&w, root, tf)
                 : saemon_error_set(err, SAEMON_ERR_RULES, "%s:1:1: test file is empty; expected rule_files and tests",
                                    tf->filename);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (s != SAEMON_OK) {
        rule_tests_free(tf);
        return s;
    }
    *out = tf;
    return SAEMON_OK;
}
