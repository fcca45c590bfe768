/* Every rule-file error path: status, exact "t.yaml:LINE:COLUMN:" and a key phrase. */
#include "rules_test.h"

#include <stdio.h>
#include <stdlib.h>

#define RULE_HEAD "rules:\n  - name: r\n"
/* The condition value starts at line 3, column 16. */
#define COND(c) RULE_HEAD "    condition: " c "\n"

Test(syntax, unterminated_flow_sequence)
{
    EXPECT_ERR("rules: [\n", SAEMON_ERR_RULES, "t.yaml:2:1:", "YAML syntax error");
}

/* issue 12: 100k levels of '[' (200 KB) took > 30 s inside libyaml; the
 * event-level pre-scan refuses level 257 before the document is built. */
Test(syntax, deep_flow_nesting_is_refused_early)
{
    size_t depth = 100000;
    char *yaml = malloc(2 * depth + 16);
    cr_assert_not_null(yaml);
    strcpy(yaml, "rules: ");
    memset(yaml + 7, '[', depth);
    memset(yaml + 7 + depth, ']', depth);
    strcpy(yaml + 7 + 2 * depth, "\n");
    EXPECT_ERR(yaml, SAEMON_ERR_RULES, "t.yaml:1:263:", "nested more than 256 deep");
    free(yaml);
    /* 256 levels is fine for YAML (the rule language then says what it expects) */
    EXPECT_ERR("rules: [[[1]]]\n", SAEMON_ERR_RULES, "t.yaml:1:9:", "rule");
}

Test(syntax, bad_indentation)
{
    EXPECT_ERR("rules:\n  - name: r\n   condition: x\n", SAEMON_ERR_RULES, "t.yaml:3:4:",
               "YAML syntax error");
}

Test(syntax, undefined_alias)
{
    EXPECT_ERR(COND("*nope"), SAEMON_ERR_RULES, "t.yaml:3:16:", "undefined alias");
}

Test(syntax, control_character_reports_line_and_column)
{
    EXPECT_ERR("rules:\n  - name: a\x01\n", SAEMON_ERR_RULES, "t.yaml:2:12:", "control characters");
}

Test(syntax, invalid_utf8)
{
    EXPECT_ERR("rules:\n  - name: \xff\n", SAEMON_ERR_RULES, "t.yaml:2:11:", "UTF-8");
}

Test(document, empty_file)
{
    EXPECT_ERR("", SAEMON_ERR_RULES, "t.yaml:1:1:", "empty");
    EXPECT_ERR("# only a comment\n", SAEMON_ERR_RULES, "t.yaml:1:1:", "empty");
}

Test(document, second_document)
{
    EXPECT_ERR(COND("{feature: 1, above: 0}") "---\nrules: []\n", SAEMON_ERR_RULES, "t.yaml:5:1:",
               "second YAML document");
}

Test(document, top_level_not_a_mapping)
{
    EXPECT_ERR("- a\n- b\n", SAEMON_ERR_RULES, "t.yaml:1:1:", "expected a mapping");
}

Test(document, unknown_top_level_key)
{
    EXPECT_ERR("rulez: []\n", SAEMON_ERR_RULES, "t.yaml:1:1:", "unknown key 'rulez'");
}

Test(document, groups_macros_lists_shapes)
{
    EXPECT_ERR("groups: []\n", SAEMON_ERR_RULES, "t.yaml:1:9:", "'groups' is an empty list");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "macros: []\n", SAEMON_ERR_RULES, "t.yaml:4:9:",
               "'macros' is a sequence; expected a mapping");
    EXPECT_ERR("lists: {a: 3}\n" COND("{feature: 1, above: 0}"), SAEMON_ERR_RULES, "t.yaml:1:12:",
               "list 'a' is the number 3");
}

Test(document, duplicate_top_level_key)
{
    EXPECT_ERR(COND("{feature: 1, above: 0}") "rules: []\n", SAEMON_ERR_RULES, "t.yaml:4:1:",
               "duplicate key 'rules' in the top level (first at 1:1)");
}

Test(document, missing_rules)
{
    EXPECT_ERR("version: 1\n", SAEMON_ERR_RULES, "t.yaml:1:1:", "no 'rules'");
}

Test(document, rules_wrong_type_or_empty)
{
    EXPECT_ERR("rules: 3\n", SAEMON_ERR_RULES, "t.yaml:1:8:", "expected a list of rules");
    EXPECT_ERR("rules: []\n", SAEMON_ERR_RULES, "t.yaml:1:8:", "empty list");
    EXPECT_ERR("rules:\n", SAEMON_ERR_RULES, "t.yaml:1:7:", "null");
}

Test(version, unsupported_and_wrong_type)
{
    EXPECT_ERR("version: 2\n" COND("{feature: 1, above: 0}"), SAEMON_ERR_UNSUPPORTED, "t.yaml:1:10:",
               "version 2 is not supported");
    EXPECT_ERR("version: \"1\"\n", SAEMON_ERR_RULES, "t.yaml:1:10:", "expected a non-negative integer");
    EXPECT_ERR("version: 1.0\n", SAEMON_ERR_RULES, "t.yaml:1:10:", "expected a non-negative integer");
}

Test(explicit_tags, rejected)
{
    EXPECT_ERR(COND("{feature: !!int 7, above: 0}"), SAEMON_ERR_RULES, "t.yaml:3:26:",
               "explicit YAML tag");
    EXPECT_ERR(COND("!cond {feature: 7, above: 0}"), SAEMON_ERR_RULES, "t.yaml:3:16:", "'!cond'");
}

Test(dictionary, errors)
{
    EXPECT_ERR("dictionary: x\n", SAEMON_ERR_RULES, "t.yaml:1:13:", "'dictionary' is the string \"x\"");
    EXPECT_ERR("dictionary:\n  nmae: x\n", SAEMON_ERR_RULES, "t.yaml:2:3:", "unknown key 'nmae'");
    EXPECT_ERR("dictionary:\n  d_sae: 0\n", SAEMON_ERR_RULES, "t.yaml:2:10:", "positive integer");
    EXPECT_ERR("dictionary:\n  d_sae: -5\n", SAEMON_ERR_RULES, "t.yaml:2:10:", "negative");
    EXPECT_ERR("dictionary:\n  d_sae: 512.5\n", SAEMON_ERR_RULES, "t.yaml:2:10:", "non-negative integer");
    EXPECT_ERR("dictionary:\n  name: ~\n", SAEMON_ERR_RULES, "t.yaml:2:9:", "expected a string");
    EXPECT_ERR("dictionary:\n  sha256: abc\n", SAEMON_ERR_RULES, "t.yaml:2:11:", "64 hex digits");
    EXPECT_ERR("dictionary:\n  sha256: \"zz00000000000000000000000000000000000000000000000000000000000000\"\n",
               SAEMON_ERR_RULES, "t.yaml:2:11:", "64 hex digits");
}

Test(rule, not_a_mapping)
{
    EXPECT_ERR("rules:\n  - just-a-name\n", SAEMON_ERR_RULES, "t.yaml:2:5:", "rule is the string");
}

Test(rule, missing_name)
{
    EXPECT_ERR("rules:\n  - condition: {feature: 1, above: 0}\n", SAEMON_ERR_RULES, "t.yaml:2:5:",
               "rule has no 'name'");
}

Test(rule, bad_names)
{
    EXPECT_ERR("rules:\n  - name: has space\n", SAEMON_ERR_RULES, "t.yaml:2:11:", "[A-Za-z0-9_.:-]");
    EXPECT_ERR("rules:\n  - name: \"\"\n", SAEMON_ERR_RULES, "t.yaml:2:11:", "[A-Za-z0-9_.:-]");
    EXPECT_ERR("rules:\n  - name:\n", SAEMON_ERR_RULES, "t.yaml:2:10:", "'name' is null");
    EXPECT_ERR("rules:\n  - name: [a]\n", SAEMON_ERR_RULES, "t.yaml:2:11:", "'name' is a sequence");
    EXPECT_ERR("rules:\n  - name: \"a\\0b\"\n", SAEMON_ERR_RULES, "t.yaml:2:11:", "NUL");
}

Test(rule, duplicate_names_point_at_the_second)
{
    EXPECT_ERR("rules:\n"
               "  - name: a\n    condition: {feature: 1, above: 0}\n"
               "  - name: b\n    condition: {feature: 1, above: 0}\n"
               "  - name: a\n    condition: {feature: 1, above: 0}\n",
               SAEMON_ERR_RULES, "t.yaml:6:11:", "duplicate rule name 'a' (first at 2:11)");
}

Test(rule, unknown_key_is_a_typo_not_a_silent_default)
{
    EXPECT_ERR(RULE_HEAD "    conditon: {feature: 1, above: 0}\n", SAEMON_ERR_RULES, "t.yaml:3:5:",
               "unknown key 'conditon' in rule");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    sevrity: info\n", SAEMON_ERR_RULES, "t.yaml:4:5:",
               "unknown key 'sevrity'");
}

Test(rule, temporal_key_types)
{
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    keep_firing_for: -3\n", SAEMON_ERR_RULES,
               "t.yaml:4:22:", "'keep_firing_for' is negative");
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    window: 3\n", SAEMON_ERR_RULES, "t.yaml:4:13:",
               "'window' is the number 3; expected a mapping");
}

Test(rule, duplicate_key)
{
    EXPECT_ERR(COND("{feature: 1, above: 0}") "    name: s\n", SAEMON_ERR_RULES, "t.yaml:4:5:",
               "duplicate key 'name' in rule (first at 2:5)");
}

Test(rule, missing_condition)
{
    EXPECT_ERR(RULE_HEAD "    severity: info\n", SAEMON_ERR_RULES, "t.yaml:2:5:", "has no 'condition'");
}

Test(rule, field_types)
{
    const char *c = COND("{feature: 1, above: 0}");
    char buf[512];
#define FIELD(line, pos, code, phrase)                                                 \
    do {                                                                               \
        snprintf(buf, sizeof buf, "%s%s\n", c, line);                                  \
        EXPECT_ERR(buf, code, pos, phrase);                                            \
    } while (0)
    FIELD("    enabled: yes", "t.yaml:4:14:", SAEMON_ERR_RULES, "expected true or false");
    FIELD("    enabled: \"true\"", "t.yaml:4:14:", SAEMON_ERR_RULES, "expected true or false");
    FIELD("    severity: bogus", "t.yaml:4:15:", SAEMON_ERR_RULES, "unknown severity \"bogus\"");
    FIELD("    severity: 3", "t.yaml:4:15:", SAEMON_ERR_RULES, "unknown severity");
    FIELD("    severity: {a: b}", "t.yaml:4:15:", SAEMON_ERR_RULES, "'severity' is a mapping");
    FIELD("    description: [x]", "t.yaml:4:18:", SAEMON_ERR_RULES, "'description' is a sequence");
    FIELD("    for: -1", "t.yaml:4:10:", SAEMON_ERR_RULES, "'for' is negative");
    FIELD("    for: 1.5", "t.yaml:4:10:", SAEMON_ERR_RULES, "non-negative integer");
    FIELD("    for: 99999999999999999999999", "t.yaml:4:10:", SAEMON_ERR_RULES, "too large");
    FIELD("    cooldown: \"3\"", "t.yaml:4:15:", SAEMON_ERR_RULES, "'cooldown' is the string \"3\"");
    FIELD("    cooldown: ~", "t.yaml:4:15:", SAEMON_ERR_RULES, "non-negative integer");
    FIELD("    labels: [a, b]", "t.yaml:4:13:", SAEMON_ERR_RULES, "'labels' is a sequence; expected a mapping");
    FIELD("    labels: {team: [a]}", "t.yaml:4:20:", SAEMON_ERR_RULES, "'labels'.team is a sequence");
    FIELD("    labels: {team: }", "t.yaml:4:20:", SAEMON_ERR_RULES, "'labels'.team is null");
    FIELD("    labels: {a: 1, a: 2}", "t.yaml:4:20:", SAEMON_ERR_RULES, "duplicate key 'a' in 'labels'");
    FIELD("    annotations: {summary: {x: y}}", "t.yaml:4:28:", SAEMON_ERR_RULES, "'annotations'.summary is a mapping");
    FIELD("    annotations: {[k]: v}", "t.yaml:4:19:", SAEMON_ERR_RULES, "a key that is a sequence");
#undef FIELD
}

Test(condition, wrong_shapes)
{
    EXPECT_ERR(RULE_HEAD "    condition:\n", SAEMON_ERR_RULES, "t.yaml:3:15:", "condition is null");
    EXPECT_ERR(COND("[1, 2]"), SAEMON_ERR_RULES, "t.yaml:3:16:", "condition is a sequence; expected a mapping");
    EXPECT_ERR(COND("{}"), SAEMON_ERR_RULES, "t.yaml:3:16:", "empty condition");
}

Test(condition, unknown_and_reserved_keys)
{
    EXPECT_ERR(COND("{feature: 7, abvoe: 4}"), SAEMON_ERR_RULES, "t.yaml:3:29:", "unknown key 'abvoe' in condition");
    EXPECT_ERR(COND("{at_least: 2}"), SAEMON_ERR_RULES, "t.yaml:3:27:", "'at_least' is the number 2; expected a mapping");
    EXPECT_ERR(COND("{feature: 7, above: 1, window: 8}"), SAEMON_ERR_RULES, "t.yaml:3:39:", "unknown key 'window'");
}

Test(condition, duplicate_key)
{
    EXPECT_ERR(COND("{feature: 7, above: 1, above: 2}"), SAEMON_ERR_RULES, "t.yaml:3:39:",
               "duplicate key 'above' in condition (first at 3:29)");
}

Test(condition, feature_index)
{
    EXPECT_ERR(COND("{above: 1}"), SAEMON_ERR_RULES, "t.yaml:3:16:", "no 'feature'");
    EXPECT_ERR(COND("{feature: -1, above: 1}"), SAEMON_ERR_RULES, "t.yaml:3:26:", "'feature' is negative");
    EXPECT_ERR(COND("{feature: 4294967296, above: 1}"), SAEMON_ERR_RULES, "t.yaml:3:26:", "<= 4294967295");
    EXPECT_ERR(COND("{feature: 1.5, above: 1}"), SAEMON_ERR_RULES, "t.yaml:3:26:", "the number 1.5");
    EXPECT_ERR(COND("{feature: \"7\", above: 1}"), SAEMON_ERR_RULES, "t.yaml:3:26:", "the label \"7\" but the rule file has no 'feature_labels'");
    EXPECT_ERR(COND("{feature: , above: 1}"), SAEMON_ERR_RULES, "t.yaml:3:26:", "null");
}

Test(condition, thresholds)
{
    EXPECT_ERR(COND("{feature: 7}"), SAEMON_ERR_RULES, "t.yaml:3:16:", "no threshold");
    EXPECT_ERR(COND("{feature: 7, above: 2, below: 2}"), SAEMON_ERR_RULES, "t.yaml:3:36:", "above < below");
    EXPECT_ERR(COND("{feature: 7, above: 3, below: 2}"), SAEMON_ERR_RULES, "t.yaml:3:36:", "never hold");
    EXPECT_ERR(COND("{feature: 7, above: .inf}"), SAEMON_ERR_RULES, "t.yaml:3:36:", "finite number");
    EXPECT_ERR(COND("{feature: 7, below: .nan}"), SAEMON_ERR_RULES, "t.yaml:3:36:", "finite number");
    EXPECT_ERR(COND("{feature: 7, above: 1e39}"), SAEMON_ERR_RULES, "t.yaml:3:36:", "float range");
    EXPECT_ERR(COND("{feature: 7, above: high}"), SAEMON_ERR_RULES, "t.yaml:3:36:", "expected a number");
    EXPECT_ERR(COND("{feature: 7, above: \"4\"}"), SAEMON_ERR_RULES, "t.yaml:3:36:", "expected a number");
}

Test(condition, any_all_shapes)
{
    EXPECT_ERR(COND("{any: []}"), SAEMON_ERR_RULES, "t.yaml:3:22:", "'any' is an empty list");
    EXPECT_ERR(COND("{all: []}"), SAEMON_ERR_RULES, "t.yaml:3:22:", "'all' is an empty list");
    EXPECT_ERR(COND("{any: {feature: 1, above: 0}}"), SAEMON_ERR_RULES, "t.yaml:3:22:", "expected a list of conditions");
    EXPECT_ERR(COND("{any: [{feature: 1, above: 0}], all: [{feature: 1, above: 0}]}"), SAEMON_ERR_RULES,
               "t.yaml:3:48:", "mixes 'any' and 'all'");
    EXPECT_ERR(COND("{feature: 1, above: 0, all: [{feature: 1, above: 0}]}"), SAEMON_ERR_RULES,
               "t.yaml:3:39:", "mixes 'feature' and 'all'");
    EXPECT_ERR(COND("{any: [{feature: 1, above: 0}, {feature: 2, abov: 1}]}"), SAEMON_ERR_RULES,
               "t.yaml:3:60:", "unknown key 'abov'");
    EXPECT_ERR(COND("{all: [3]}"), SAEMON_ERR_RULES, "t.yaml:3:23:", "condition is the number 3");
}

static char *nested(int depth)
{
    size_t cap = (size_t)depth * 16 + 128;
    char *y = malloc(cap);
    size_t o = (size_t)snprintf(y, cap, COND(""));
    y[--o] = '\0'; /* drop the newline: the condition follows on line 3 */
    for (int i = 0; i < depth - 1; i++)
        o += (size_t)snprintf(y + o, cap - o, "{any: [");
    o += (size_t)snprintf(y + o, cap - o, "{feature: 1, above: 0}");
    for (int i = 0; i < depth - 1; i++)
        o += (size_t)snprintf(y + o, cap - o, "]}");
    snprintf(y + o, cap - o, "\n");
    return y;
}

Test(condition, depth_limit)
{
    char *ok = nested(32);
    saemon_rules_close(load_ok(ok));
    free(ok);
    char *deep = nested(33);
    /* the 33rd condition starts after 32 "{any: [" prefixes of 7 characters */
    EXPECT_ERR(deep, SAEMON_ERR_RULES, "t.yaml:3:240:", "nested more than 32 deep");
    free(deep);
}

Test(limits, alias_expansion_bomb)
{
    /* Each level references the previous one 10 times: 10^7 nodes once expanded. */
    const char *bomb = "rules:\n  - name: r\n    condition: &l0 {any: [{feature: 1, above: 0}]}\n"
                       "  - name: s\n    condition: &l1 {any: [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]}\n"
                       "  - name: t\n    condition: &l2 {any: [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]}\n"
                       "  - name: u\n    condition: &l3 {any: [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]}\n"
                       "  - name: v\n    condition: &l4 {any: [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]}\n"
                       "  - name: w\n    condition: &l5 {any: [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]}\n"
                       "  - name: x\n    condition: &l6 {any: [*l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5]}\n";
    saemon_ruleset *rs = NULL;
    saemon_error err = {0};
    saemon_status s = saemon_rules_from_string(bomb, strlen(bomb), "t.yaml", NULL, &rs, &err);
    cr_assert_eq(s, SAEMON_ERR_RULES, "%s", err.message);
    cr_assert(strstr(err.message, "more than 200000 YAML nodes"), "%s", err.message);
    cr_assert(strncmp(err.message, "t.yaml:", 7) == 0, "%s", err.message);
}

Test(limits, too_many_keys_in_one_mapping)
{
    size_t cap = 32 * 1100 + 256, o = 0;
    char *y = malloc(cap);
    o += (size_t)snprintf(y + o, cap - o, "rules:\n  - name: r\n    labels:\n");
    for (int i = 0; i < 1025; i++)
        o += (size_t)snprintf(y + o, cap - o, "      k%d: v\n", i);
    EXPECT_ERR(y, SAEMON_ERR_RULES, "t.yaml:4:7:", "'labels' has 1025 entries; expected at most 1024");
    free(y);
}

Test(limits, recursive_alias_is_caught_by_depth)
{
    EXPECT_ERR(COND("&c {any: [*c]}"), SAEMON_ERR_RULES, "t.yaml:3:16:", "nested more than 32 deep");
}

Test(api, bad_arguments_and_missing_file)
{
    saemon_ruleset *rs = (saemon_ruleset *)1;
    saemon_error err = {0};
    cr_expect_eq(saemon_rules_from_string(NULL, 5, "x", NULL, &rs, &err), SAEMON_ERR_ARG);
    cr_expect_eq(saemon_rules_open("/nonexistent/rules.yaml", NULL, &rs, &err), SAEMON_ERR_IO);
    cr_expect_null(rs);
    cr_expect(strstr(err.message, "/nonexistent/rules.yaml") != NULL, "%s", err.message);
}
