/* saemon_rules_run_tests: passing and failing test files, diffs, errors. */
#include "rules_test.h"
#include "tests/support/support.h"

static const char rules_yaml[] =
    "rules:\n"
    "  - name: hot\n"
    "    condition: {feature: 1, above: 2}\n"
    "    labels: {team: red}\n"
    "    annotations: {s: \"v={{ .value }}\"}\n";

typedef struct run {
    saemon_status status;
    size_t n_tests, n_failed;
    char report[4096];
    saemon_error err;
} run;

static run run_tests(const char *tests_yaml)
{
    run r = {0};
    char *dir = test_tmpdir();
    free(test_write_file(dir, "r.yaml", rules_yaml, strlen(rules_yaml)));
    char *path = test_write_file(dir, "t.test.yaml", tests_yaml, strlen(tests_yaml));
    FILE *out = fmemopen(r.report, sizeof r.report - 1, "w");
    cr_assert_not_null(out);
    r.status = saemon_rules_run_tests(path, out, &r.n_tests, &r.n_failed, &r.err);
    fclose(out);
    free(path);
    test_rmtree(dir);
    free(dir);
    return r;
}

#define HEAD "rule_files: [r.yaml]\ntests:\n"

Test(rule_tests, passing_file)
{
    run r = run_tests(HEAD "  - name: ok\n    input:\n      - {features: {1: 3}, repeat: 2}\n      - {}\n"
                           "    expect:\n      - token: 0\n        alerts:\n"
                           "          - {rule: hot, labels: {team: red}, annotations: {s: v=3}}\n"
                           "      - {token: 2, stream: 0, alerts: [{rule: hot, status: resolved}]}\n");
    cr_assert_eq(r.status, SAEMON_OK, "%s", r.err.message);
    cr_expect_eq(r.n_tests, 1);
    cr_expect_eq(r.n_failed, 0, "%s", r.report);
    cr_expect_str_eq(r.report, "PASS  ok\n");
}

Test(rule_tests, failing_file_prints_a_diff)
{
    run r = run_tests(HEAD "  - name: bad\n    input: [{features: {1: 3}}, {token: 5, features: {1: 3}}]\n"
                           "    expect:\n      - {token: 0, alerts: [{rule: hot, labels: {team: blue}}]}\n"
                           "  - name: good\n    input: [{}]\n    expect: []\n");
    cr_assert_eq(r.status, SAEMON_OK, "%s", r.err.message);
    cr_expect_eq(r.n_tests, 2);
    cr_expect_eq(r.n_failed, 1);
    cr_expect(strstr(r.report, "FAIL  bad\n"), "%s", r.report);
    cr_expect(strstr(r.report, "- token 0: firing hot labels{team=\"blue\"}"), "%s", r.report);
    cr_expect(strstr(r.report, "+ token 0 stream 0: firing hot labels{team=\"red\"} annotations{s=\"v=3\"}"), "%s",
              r.report);
    /* the jump to token 5 restarts the sequence: resolved at 0, firing at 5 */
    cr_expect(strstr(r.report, "+ token 0 stream 0: resolved hot"), "%s", r.report);
    cr_expect(strstr(r.report, "+ token 5 stream 0: firing hot"), "%s", r.report);
    cr_expect(strstr(r.report, "PASS  good\n"), "%s", r.report);
}

Test(rule_tests, file_errors_name_line_and_column)
{
    run r = run_tests(HEAD "  - name: x\n    input: [{}]\n    expect: [{token: 0, alerts: [{rule: cold}]}]\n");
    cr_expect_eq(r.status, SAEMON_ERR_RULES);
    cr_expect(strstr(r.err.message, "t.test.yaml:5:41: unknown rule 'cold'"), "%s", r.err.message);
    r = run_tests(HEAD "  - name: x\n    input: [{features: {1: 3, 1: 4}}]\n    expect: []\n");
    cr_expect(strstr(r.err.message, "t.test.yaml:4:31: duplicate key '1'"), "%s", r.err.message);
    r = run_tests(HEAD "  - name: x\n    input: [{features: {1: 3}, 0x1: 2}]\n    expect: []\n");
    cr_expect(strstr(r.err.message, "t.test.yaml:4:32: unknown key '0x1' in an input token"), "%s", r.err.message);
    r = run_tests(HEAD "  - name: x\n    input: [{}]\n    expect: [{token: 0, alerts: [{rule: hot, status: on}]}]\n");
    cr_expect(strstr(r.err.message, "t.test.yaml:5:54: status \"on\" is unknown"), "%s", r.err.message);
    r = run_tests("rule_files: [missing.yaml]\ntests:\n  - {name: x, input: [{}], expect: []}\n");
    cr_expect_eq(r.status, SAEMON_ERR_IO);
    cr_expect(strstr(r.err.message, "missing.yaml: cannot open rule file"), "%s", r.err.message);
    r = run_tests(HEAD "  - name: x\n    input: []\n    expect: []\n");
    cr_expect(strstr(r.err.message, "t.test.yaml:4:12: 'input' is an empty list"), "%s", r.err.message);
}

Test(rule_tests, specific_expectations_match_first)
{
    /* Two rules' alerts on one token: the loose expectation is listed first
     * but must not take the alert the labelled one needs. */
    run r = run_tests("rule_files: [r.yaml]\ntests:\n  - name: order\n    input: [{stream: 1, features: {1: 3}}, "
                      "{stream: 2, features: {1: 5}}]\n    expect:\n"
                      "      - {token: 0, alerts: [{rule: hot}, {rule: hot, annotations: {s: v=3}}]}\n");
    cr_assert_eq(r.status, SAEMON_OK, "%s", r.err.message);
    cr_expect_eq(r.n_failed, 0, "%s", r.report);
}

/* issue 12: alerts carry unsigned 64-bit tokens and the encoder can produce
 * infinities; test inputs must be able to say both. */
Test(rule_tests, u64_tokens_and_infinite_values)
{
    run r = run_tests(HEAD "  - name: top\n    input:\n"
                           "      - {token: 18446744073709551614, features: {1: .inf}}\n"
                           "      - {features: {1: -.inf}}\n"
                           "    expect:\n"
                           "      - {token: 18446744073709551614, alerts: [{rule: hot, annotations: {s: v=inf}}]}\n"
                           "      - {token: 18446744073709551615, alerts: [{rule: hot, status: resolved}]}\n");
    cr_assert_eq(r.status, SAEMON_OK, "%s", r.err.message);
    cr_expect_eq(r.n_failed, 0, "%s", r.report);
    r = run_tests(HEAD "  - name: past\n    input: [{token: 18446744073709551615}, {}]\n    expect: []\n");
    cr_expect_eq(r.status, SAEMON_ERR_RULES);
    cr_expect(strstr(r.err.message, "no token after 18446744073709551615"), "%s", r.err.message);
    r = run_tests(HEAD "  - name: past\n    input: [{token: 18446744073709551615, repeat: 2}]\n    expect: []\n");
    cr_expect(strstr(r.err.message, "t.test.yaml:4:51: 'repeat' runs past token"), "%s", r.err.message);
}
