/* Rule unit tests (promtool-style): a YAML file of token sequences and the
 * alerts each should raise. Parsed strictly like rule files. */
#ifndef SAEMON_MONITORS_RULE_TESTS_H
#define SAEMON_MONITORS_RULE_TESTS_H

#include "base/arena.h"
#include "monitors/rules_internal.h"

#define RULE_TESTS_MAX_TOKENS 1000000 /* tokens per test after repeat */

typedef struct rt_input {
    bool has_stream, has_token;
    uint64_t stream, token;
    uint32_t *index;       /* ascending */
    float *value;
    size_t nnz;
    float recon_error, input_norm;
    bool nonfinite;
    uint64_t repeat;       /* >= 1 */
} rt_input;

typedef struct rt_expect_alert {
    const char *rule;
    const char *status;    /* "firing" or "resolved" */
    bool has_labels, has_annotations;
    saemon_kv *labels, *annotations;
    size_t n_labels, n_annotations;
    walk_pos rule_mark;
} rt_expect_alert;

typedef struct rt_expect {
    uint64_t token;
    bool has_stream;
    uint64_t stream;
    rt_expect_alert *alerts;
    size_t n;
} rt_expect;

typedef struct rt_test {
    const char *name;
    rt_input *input;
    size_t n_input;
    rt_expect *expect;
    size_t n_expect;
} rt_test;

typedef struct rule_test_file {
    arena mem;
    const char *filename;
    const char **rule_files;   /* as written */
    walk_pos *rule_file_marks;
    size_t n_rule_files;
    rt_test *tests;
    size_t n_tests;
} rule_test_file;

/* Parse (no rule file is read yet). On failure *out is NULL. */
saemon_status rule_tests_parse_string(const char *yaml, size_t len, const char *filename,
                                      rule_test_file **out, saemon_error *err);
void rule_tests_free(rule_test_file *tf);

#endif
