/* `saemon check` errors for the full rule language: each names file:line:col. */
#include "rules_test.h"
#include "tests/support/support.h"

/* A rule whose condition starts at 3:16. */
#define COND(c) "rules:\n  - name: r\n    condition: " c "\n"

Test(between, shapes)
{
    EXPECT_ERR(COND("{feature: 1, between: 3}"), SAEMON_ERR_RULES, "t.yaml:3:38:", "expected a list of two numbers");
    EXPECT_ERR(COND("{feature: 1, between: [3, 2]}"), SAEMON_ERR_RULES, "t.yaml:3:38:", "low <= high");
    EXPECT_ERR(COND("{feature: 1, between: [1, 2], above: 0}"), SAEMON_ERR_RULES, "t.yaml:3:38:",
               "cannot be combined");
    EXPECT_ERR(COND("{feature: 1, between: [1, x]}"), SAEMON_ERR_RULES, "t.yaml:3:42:", "expected a number");
}

Test(at_least, shapes)
{
    EXPECT_ERR(COND("{at_least: {count: 0, of: [{feature: 1, above: 0}]}}"), SAEMON_ERR_RULES, "t.yaml:3:35:",
               "expected 1 to 1");
    EXPECT_ERR(COND("{at_least: {count: 3, of: [{feature: 1, above: 0}, {feature: 2, above: 0}]}}"), SAEMON_ERR_RULES,
               "t.yaml:3:35:", "is 3 for 2 conditions");
    EXPECT_ERR(COND("{at_least: {count: 1}}"), SAEMON_ERR_RULES, "t.yaml:3:27:", "needs 'count' and 'of'");
    EXPECT_ERR(COND("{at_least: {count: 1, of: [], k: 2}}"), SAEMON_ERR_RULES, "t.yaml:3:46:", "unknown key 'k'");
}

Test(macros, unknown_and_order)
{
    EXPECT_ERR(COND("{macro: nope}"), SAEMON_ERR_RULES, "t.yaml:3:24:", "unknown macro 'nope'");
    EXPECT_ERR("macros:\n  a: {macro: b}\n  b: {feature: 1, above: 0}\n" COND("{macro: a}"), SAEMON_ERR_RULES,
               "t.yaml:2:14:", "unknown macro 'b'");
    EXPECT_ERR("macros:\n  a: {macro: a}\n" COND("{macro: a}"), SAEMON_ERR_RULES, "t.yaml:2:14:", "unknown macro 'a'");
    EXPECT_ERR("macros:\n  a: {feature: 1, above: 0}\n" COND("{macro: a, above: 1}"), SAEMON_ERR_RULES,
               "t.yaml:5:17:", "'macro' takes no other keys");
    EXPECT_ERR("macros:\n  a: {feature: 1, above: 0}\n  a: {feature: 2, above: 0}\n" COND("{macro: a}"),
               SAEMON_ERR_RULES, "t.yaml:3:3:", "duplicate key 'a'");
}

Test(macros, depth_counts_through_macros)
{
    /* A macro 31 levels deep used at depth 3 reaches 33. */
    char yaml[4096] = "macros:\n  deep: ";
    for (int i = 0; i < 30; i++)
        strcat(yaml, "{any: [");
    strcat(yaml, "{feature: 1, above: 0}");
    for (int i = 0; i < 30; i++)
        strcat(yaml, "]}");
    strcat(yaml, "\n" COND("{any: [{all: [{macro: deep}]}]}"));
    EXPECT_ERR(yaml, SAEMON_ERR_RULES, "t.yaml:5:38:", "nests conditions 33 deep");
}

/* issue 12: each macro uses the previous one twice, 30 levels: 2^31 nodes
 * once expanded (> 1 GB and 46 s before "out of memory"). Refused at the
 * first use that crosses the bound, with its position. */
Test(macros, expanded_size_is_bounded)
{
    char yaml[8192] = "macros:\n  m0: {feature: 1, above: 0}\n";
    for (int i = 1; i <= 30; i++) {
        char line[96];
        snprintf(line, sizeof line, "  m%d: {any: [{macro: m%d}, {macro: m%d}]}\n", i, i - 1, i - 1);
        strcat(yaml, line);
    }
    strcat(yaml, COND("{macro: m30}"));
    /* m16 = 2^17 - 1 nodes: its second use of m15 crosses 65536 (line 18) */
    EXPECT_ERR(yaml, SAEMON_ERR_RULES, "t.yaml:18:37:", "more than 65536 nodes once macros are expanded");
}

Test(lists, unknown_and_shapes)
{
    EXPECT_ERR(COND("{any_of_list: nope, above: 1}"), SAEMON_ERR_RULES, "t.yaml:3:30:", "unknown list 'nope'");
    EXPECT_ERR("lists: {l: []}\n" COND("{any_of_list: l, above: 1}"), SAEMON_ERR_RULES, "t.yaml:1:12:", "is empty");
    EXPECT_ERR("lists: {l: [1, -2]}\n" COND("{any_of_list: l, above: 1}"), SAEMON_ERR_RULES, "t.yaml:1:16:", "negative");
    EXPECT_ERR("lists: {l: [1]}\n" COND("{all_of_list: l}"), SAEMON_ERR_RULES, "t.yaml:4:16:", "no threshold");
}

Test(features, out_of_range_of_the_pin)
{
    EXPECT_ERR("dictionary: {d_sae: 10}\n" COND("{feature: 10, above: 0}"), SAEMON_ERR_RULES, "t.yaml:4:26:",
               "feature 10 is out of range for the pinned d_sae 10");
    EXPECT_ERR("dictionary: {d_sae: 10}\nlists: {l: [3, 12]}\n" COND("{any_of_list: l, above: 0}"), SAEMON_ERR_RULES,
               "t.yaml:2:16:", "feature 12 is out of range");
    EXPECT_ERR("dictionary: {d_sae: 10}\n" COND("{probe: {weights: {11: 1}, above: 0.5}}"), SAEMON_ERR_RULES,
               "t.yaml:4:35:", "feature 11 is out of range");
}

Test(features, labels_unknown_ambiguous_and_missing_file)
{
    char *dir = test_tmpdir();
    const char *json = "{\"1\": \"cats\", \"2\": \"cats\", \"3\": \"dogs\"}";
    char *labels = test_write_file(dir, "l.json", json, strlen(json));
    char yaml[512];
    snprintf(yaml, sizeof yaml, "feature_labels: %s\n" COND("{feature: birds, above: 0}"), labels);
    EXPECT_ERR(yaml, SAEMON_ERR_RULES, "t.yaml:4:26:", "unknown feature label \"birds\"");
    snprintf(yaml, sizeof yaml, "feature_labels: %s\n" COND("{feature: cats, above: 0}"), labels);
    EXPECT_ERR(yaml, SAEMON_ERR_RULES, "t.yaml:4:26:", "ambiguous (features 1 and 2)");
    snprintf(yaml, sizeof yaml, "feature_labels: %s/none.json\n" COND("{feature: 1, above: 0}"), dir);
    EXPECT_ERR(yaml, SAEMON_ERR_IO, "t.yaml:1:17:", "cannot open feature label file");
    const char *bad = "{\"1\": \"a\",\n \"2\": }";
    free(test_write_file(dir, "bad.json", bad, strlen(bad)));
    snprintf(yaml, sizeof yaml, "feature_labels: %s/bad.json\n" COND("{feature: 1, above: 0}"), dir);
    EXPECT_ERR(yaml, SAEMON_ERR_FORMAT, "t.yaml:1:17:", "bad.json:2:7: feature labels are not valid JSON");
    const char *twice = "[{\"index\": 1, \"description\": \"a\"}, {\"index\": \"1\", \"description\": \"b\"}]";
    free(test_write_file(dir, "twice.json", twice, strlen(twice)));
    snprintf(yaml, sizeof yaml, "feature_labels: %s/twice.json\n" COND("{feature: 1, above: 0}"), dir);
    EXPECT_ERR(yaml, SAEMON_ERR_FORMAT, "t.yaml:1:17:", "feature 1 is labelled twice");
    free(labels);
    test_rmtree(dir);
    free(dir);
}

Test(probe, shapes)
{
    EXPECT_ERR(COND("{probe: {weights: {}, above: 0.5}}"), SAEMON_ERR_RULES, "t.yaml:3:34:", "'probe.weights' is empty");
    EXPECT_ERR(COND("{probe: {weights: {1: 1, 0x1: 2}, above: 0.5}}"), SAEMON_ERR_RULES, "t.yaml:3:41:",
               "feature 1 has two probe weights (first at 3:35)");
    EXPECT_ERR(COND("{probe: {weights: {1: 1}, above: 1.0}}"), SAEMON_ERR_RULES, "t.yaml:3:49:",
               "strictly between 0 and 1");
    EXPECT_ERR(COND("{probe: {weights: {1: 1}}}"), SAEMON_ERR_RULES, "t.yaml:3:24:", "needs 'weights' and 'above'");
    EXPECT_ERR(COND("{probe: {weights: {1: x}, above: 0.5}}"), SAEMON_ERR_RULES, "t.yaml:3:38:", "a probe weight");
}

Test(health, shapes)
{
    EXPECT_ERR("rules:\n  - name: h\n    health: {l0_outside: [1, 2], input_nonfinite: true}\n", SAEMON_ERR_RULES,
               "t.yaml:3:13:", "has 2 checks");
    EXPECT_ERR("rules:\n  - name: h\n    health: {recon: 1}\n", SAEMON_ERR_RULES, "t.yaml:3:14:", "unknown key 'recon'");
    EXPECT_ERR("rules:\n  - name: h\n    health: {input_nonfinite: false}\n", SAEMON_ERR_RULES, "t.yaml:3:31:",
               "never fires");
    EXPECT_ERR("rules:\n  - name: h\n    health: {reconstruction_error_above: -1}\n", SAEMON_ERR_RULES,
               "t.yaml:3:42:", "negative");
    EXPECT_ERR("rules:\n  - name: h\n    health: {input_norm_outside: [5, 1]}\n", SAEMON_ERR_RULES, "t.yaml:3:34:",
               "low <= high");
    EXPECT_ERR("rules:\n  - name: h\n    health: {input_nonfinite: true}\n    condition: {feature: 1, above: 0}\n",
               SAEMON_ERR_RULES, "t.yaml:3:5:", "both 'condition' and 'health'");
}

Test(temporal, window_mean_keep)
{
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    window: {count_at_least: 4, tokens: 3}\n", SAEMON_ERR_RULES,
               "t.yaml:4:30:", "expected 1 to 3");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    window: {count_at_least: 1, tokens: 0}\n", SAEMON_ERR_RULES,
               "t.yaml:4:41:", "'window.tokens' is 0");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    window: {tokens: 3}\n", SAEMON_ERR_RULES, "t.yaml:4:13:",
               "needs 'count_at_least' and 'tokens'");
    EXPECT_ERR(COND("{feature: 1, above: 0, mean_over: 0}"), SAEMON_ERR_RULES, "t.yaml:3:50:", "'mean_over' is 0");
    EXPECT_ERR(COND("{feature: 1, above: 0, mean_over: 70000}"), SAEMON_ERR_RULES, "t.yaml:3:50:", "too large");
}

Test(groups, shapes)
{
    EXPECT_ERR("groups:\n  - {name: g, interval: 0, rules: [{name: r, condition: {feature: 1, above: 0}}]}\n",
               SAEMON_ERR_RULES, "t.yaml:2:25:", "'interval' is 0");
    EXPECT_ERR("groups:\n  - {name: g, rules: [{name: r, condition: {feature: 1, above: 0}}]}\n"
               "  - {name: g, rules: [{name: s, condition: {feature: 1, above: 0}}]}\n",
               SAEMON_ERR_RULES, "t.yaml:3:12:", "duplicate group name 'g'");
    EXPECT_ERR("groups:\n  - {name: g}\n", SAEMON_ERR_RULES, "t.yaml:2:5:", "group has no 'rules'");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "groups:\n  - {name: g, rules: [{name: r, condition: {feature: 1, above: 0}}]}\n",
               SAEMON_ERR_RULES, "t.yaml:5:30:", "duplicate rule name 'r' (first at 2:11)");
    EXPECT_ERR("groups:\n  - {name: g, rules: [{name: r, condition: {feature: 1, above: 0}}], every: 2}\n",
               SAEMON_ERR_RULES, "t.yaml:2:70:", "unknown key 'every' in group");
}

Test(templates, unknown_names_with_columns)
{
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    annotations: {s: \"x {{ .tokn }}\"}\n", SAEMON_ERR_RULES,
               "t.yaml:4:28:", "unknown template name '.tokn'");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    annotations: {s: \"at {{ .labels.team }}\"}\n", SAEMON_ERR_RULES,
               "t.yaml:4:29:", "label 'team', which this rule does not have");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    annotations: {s: \"{{ .rule \"}\n", SAEMON_ERR_RULES,
               "t.yaml:4:23:", "'{{' is not closed");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    annotations: {s: \"{{ range .x }}\"}\n", SAEMON_ERR_RULES,
               "t.yaml:4:26:", "unknown template name 'range .x'");
}
