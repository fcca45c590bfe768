/* Valid rule files: every construct parses, defaults apply, YAML styles agree. */
#include "rules_test.h"

#include <glob.h>

#include "tests/support/support.h"

static saemon_monitor *monitor(saemon_ruleset *rs)
{
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_create(rs, NULL, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
    return mon;
}

Test(parse, minimal_rule_gets_defaults)
{
    saemon_ruleset *rs = load_ok("rules:\n  - name: r\n    condition: {feature: 7, above: 4.0}\n");
    cr_expect_eq(saemon_rules_get_count(rs), 1);
    cr_expect_eq(saemon_rules_get_enabled_count(rs), 1);
    saemon_monitor *mon = monitor(rs);
    capture c = {0};
    const uint32_t idx[] = {7};
    const float val[] = {4.5f};
    feed(mon, 0, 0, idx, val, 1, &c);
    cr_assert_eq(c.n, 1, "default for is 1");
    cr_expect_str_eq(c.a[0].severity, "warning");
    cr_expect_str_eq(c.a[0].description, "");
    cr_expect_eq(c.a[0].n_labels, 0);
    cr_expect_eq(c.a[0].n_annotations, 0);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(parse, every_key_block_style)
{
    saemon_ruleset *rs = load_ok("version: 1\n"
                                 "dictionary:\n  name: pasttense-mlp/saelens\n  d_sae: 512\n"
                                 "  sha256: \"" "0123456789abcdef0123456789abcdef0123456789ABCDEF0123456789abcdef" "\"\n"
                                 "rules:\n"
                                 "  - name: alarm-direction.v1:x_y\n"
                                 "    description: \"the planted alarm direction is active\"\n"
                                 "    enabled: true\n"
                                 "    severity: CRITICAL\n"
                                 "    condition:\n      feature: 7\n      above: 4.0\n"
                                 "    for: 3\n    cooldown: 20\n"
                                 "    labels: {team: safety, tier: 1, on: true}\n"
                                 "    annotations: {summary: \"alarm feature active\"}\n");
    saemon_monitor *mon = monitor(rs);
    capture c = {0};
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    for (uint64_t t = 0; t < 3; t++)
        feed(mon, 0, t, idx, val, 1, &c);
    cr_assert_eq(c.n, 1);
    cr_expect_eq(c.a[0].token, 2);
    cr_expect_str_eq(c.a[0].rule, "alarm-direction.v1:x_y");
    cr_expect_str_eq(c.a[0].severity, "critical");
    cr_expect_str_eq(c.a[0].description, "the planted alarm direction is active");
    cr_expect_eq(c.a[0].n_labels, 3);
    cr_expect(strstr(c.a[0].json, "\"labels\":{\"team\":\"safety\",\"tier\":\"1\",\"on\":\"true\"}"), "%s",
              c.a[0].json);
    cr_expect(strstr(c.a[0].json, "\"annotations\":{\"summary\":\"alarm feature active\"}"), "%s", c.a[0].json);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(parse, severities_case_insensitive_with_info_alias)
{
    const char *in[] = {"emergency", "Alert", "CRITICAL", "error", "warning", "notice", "informational", "info", "Info", "debug"};
    const char *out[] = {"emergency", "alert", "critical", "error", "warning", "notice", "informational",
                         "informational", "informational", "debug"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "rules:\n  - name: r\n    severity: %s\n    condition: {feature: 1, above: 0}\n", in[i]);
        saemon_ruleset *rs = load_ok(yaml);
        saemon_monitor *mon = monitor(rs);
        capture c = {0};
        const uint32_t idx[] = {1};
        const float val[] = {1.0f};
        feed(mon, 0, 0, idx, val, 1, &c);
        cr_assert_eq(c.n, 1);
        cr_expect_str_eq(c.a[0].severity, out[i]);
        saemon_monitor_destroy(mon);
        saemon_rules_close(rs);
    }
}

Test(parse, number_spellings)
{
    /* hex/octal feature index, +sign, exponent, integer threshold, -0 */
    saemon_ruleset *rs = load_ok("rules:\n"
                                 "  - name: a\n    condition: {feature: 0x10, above: 1e0}\n"
                                 "  - name: b\n    condition: {feature: 0o20, above: +.5, below: 2}\n"
                                 "  - name: c\n    condition: {feature: +16, above: -0}\n"
                                 "  - name: d\n    for: 0\n    cooldown: 0\n    condition: {feature: 16, below: -1.5e+3}\n");
    saemon_monitor *mon = monitor(rs);
    capture c = {0};
    const uint32_t idx[] = {16};
    const float val[] = {1.5f};
    feed(mon, 0, 0, idx, val, 1, &c);
    cr_assert_eq(c.n, 3);
    cr_expect_str_eq(c.a[0].rule, "a");
    cr_expect_str_eq(c.a[1].rule, "b");
    cr_expect_str_eq(c.a[2].rule, "c");
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(parse, anchors_aliases_and_comments)
{
    saemon_ruleset *rs = load_ok("# shared pieces\n"
                                 "rules:\n"
                                 "  - name: a   # trailing comment\n"
                                 "    labels: &common {team: safety}\n"
                                 "    condition: &hot {feature: 5, above: 1}\n"
                                 "  - name: b\n    labels: *common\n    condition: {all: [*hot, {feature: 6, below: 1}]}\n");
    cr_expect_eq(saemon_rules_get_count(rs), 2);
    saemon_monitor *mon = monitor(rs);
    capture c = {0};
    const uint32_t idx[] = {5};
    const float val[] = {2.0f};
    feed(mon, 0, 0, idx, val, 1, &c);
    cr_assert_eq(c.n, 2);
    cr_expect_eq(c.a[1].n_labels, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(parse, explicit_document_markers_and_unicode_text)
{
    saemon_ruleset *rs = load_ok("%YAML 1.1\n---\nrules:\n  - name: r\n    description: \"caf\xc3\xa9 \\u2603\"\n"
                                 "    condition: {feature: 1, above: 0}\n...\n");
    saemon_monitor *mon = monitor(rs);
    capture c = {0};
    const uint32_t idx[] = {1};
    const float val[] = {1.0f};
    feed(mon, 0, 0, idx, val, 1, &c);
    cr_assert_eq(c.n, 1);
    cr_expect_str_eq(c.a[0].description, "caf\xc3\xa9 \xe2\x98\x83");
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(parse, example_file_in_the_repository)
{
    const char *src = getenv("SAEMON_SOURCE_DIR");
    cr_assert_not_null(src, "SAEMON_SOURCE_DIR is set by tests/meson.build");
    char path[4096];
    snprintf(path, sizeof path, "%s/monitors/examples/every-construct.yaml", src);
    saemon_ruleset *rs = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_rules_open(path, NULL, &rs, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(saemon_rules_get_count(rs), 15);
    cr_expect_eq(saemon_rules_get_enabled_count(rs), 14);
    saemon_dict_info info = {0};
    info.name = "every-construct-256";
    info.d_sae = 256;
    memset(info.sha256, '0', 64);
    cr_expect_eq(saemon_rules_bind(rs, &info, &err), SAEMON_OK, "%s", err.message);
    saemon_rules_close(rs);
}

Test(parse, every_shipped_example_loads)
{
    const char *src = getenv("SAEMON_SOURCE_DIR");
    cr_assert_not_null(src, "SAEMON_SOURCE_DIR is set by tests/meson.build");
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s/monitors/examples/*.yaml", src);
    glob_t g;
    cr_assert_eq(glob(pattern, 0, NULL, &g), 0, "no examples under %s", pattern);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        saemon_ruleset *rs = NULL;
        saemon_error err = {0};
        size_t len = strlen(g.gl_pathv[i]);
        if (len > 10 && !strcmp(g.gl_pathv[i] + len - 10, ".test.yaml")) {
            size_t n = 0, failed = 0; /* rule unit tests: run them */
            FILE *sink = fopen("/dev/null", "w");
            cr_expect_eq(saemon_rules_run_tests(g.gl_pathv[i], sink, &n, &failed, &err), SAEMON_OK, "%s", err.message);
            fclose(sink);
            cr_expect(n > 0 && failed == 0, "%s: %zu of %zu tests failed", g.gl_pathv[i], failed, n);
            continue;
        }
        cr_expect_eq(saemon_rules_open(g.gl_pathv[i], NULL, &rs, &err), SAEMON_OK, "%s", err.message);
        cr_expect_gt(saemon_rules_get_count(rs), 0, "%s", g.gl_pathv[i]);
        saemon_rules_close(rs);
    }
    globfree(&g);
}

Test(parse, load_from_file_names_the_file_in_errors)
{
    char *dir = test_tmpdir();
    cr_assert_not_null(dir);
    const char *bad = "rules:\n  - name: r\n    condition: {feature: 1, abvoe: 2}\n";
    char *path = test_write_file(dir, "bad.yaml", bad, strlen(bad));
    saemon_ruleset *rs = NULL;
    saemon_error err = {0};
    cr_expect_eq(saemon_rules_open(path, NULL, &rs, &err), SAEMON_ERR_RULES);
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s:3:29: unknown key 'abvoe'", path);
    cr_expect(strncmp(err.message, prefix, strlen(prefix)) == 0, "%s", err.message);
    free(path);
    test_rmtree(dir);
    free(dir);
}
