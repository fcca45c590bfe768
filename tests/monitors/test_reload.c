/* saemon_monitor_reload: unchanged rules keep their per-stream state (for,
 * cooldown, firing, window, running means), changed and new rules start
 * fresh, removed or changed firing rules resolve. Every test frees the old
 * ruleset right after the reload, so ASan catches any pointer left into it. */
#include "rules_test.h"

static saemon_dict_info toy_dict(void)
{
    saemon_dict_info info = {0};
    info.name = "toy";
    info.d_sae = 16;
    return info;
}

static saemon_ruleset *bound(const char *yaml)
{
    saemon_ruleset *rs = load_ok(yaml);
    saemon_dict_info info = toy_dict();
    saemon_error err = {0};
    cr_assert_eq(saemon_rules_bind(rs, &info, &err), SAEMON_OK, "%s", err.message);
    return rs;
}

static saemon_monitor *monitor_for(saemon_ruleset *rs, bool resolved)
{
    saemon_dict_info info = toy_dict();
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_create(rs, &info, &(saemon_monitor_options){.resolved = resolved}, &mon, &err),
                 SAEMON_OK, "%s", err.message);
    return mon;
}

/* Swap *rs for the rules in `yaml`; frees the old set. */
static saemon_reload_stats reload(saemon_monitor *mon, saemon_ruleset **rs, const char *yaml, capture *c)
{
    saemon_ruleset *next = bound(yaml);
    saemon_reload_stats st = {0};
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_reload(mon, next, capture_alert, c, &st, &err), SAEMON_OK, "%s", err.message);
    saemon_rules_close(*rs);
    *rs = next;
    return st;
}

/* Feature 7 at value 5 when pattern[i] == '1'; tokens first, first+1, ... on stream 1. */
static void feed_pattern(saemon_monitor *mon, uint64_t first, const char *pattern, capture *c)
{
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    for (uint64_t i = 0; pattern[i]; i++)
        feed(mon, 1, first + i, idx, val, pattern[i] == '1' ? 1 : 0, c);
}

#define RULE_R(threshold, extra) "rules:\n  - name: r\n    condition: {feature: 7, above: " threshold "}\n" extra
#define RULE_OTHER "  - name: other\n    condition: {feature: 3, above: 1}\n"

Test(reload, unchanged_rule_mid_for_keeps_its_count)
{
    saemon_ruleset *rs = bound(RULE_R("4", "    for: 3\n"));
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "11", &c);
    /* Same rule written differently (4.0 vs 4, flow vs block, a comment), one rule added. */
    saemon_reload_stats st = reload(mon, &rs,
                                    "rules:\n  # the same rule\n  - name: r\n    condition:\n      feature: 7\n"
                                    "      above: 4.0\n    for: 3\n" RULE_OTHER,
                                    &c);
    cr_expect_eq(st.rules, 2);
    cr_expect_eq(st.kept, 1);
    cr_expect_eq(st.added, 1);
    cr_expect_eq(st.changed + st.removed, 0);
    feed_pattern(mon, 2, "1", &c);
    cr_assert_eq(c.n, 1, "the third token in a row must fire: the count carried over");
    cr_expect_eq(c.a[0].token, 2);
    cr_expect_str_eq(c.a[0].rule, "r");
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, changed_threshold_restarts_the_count)
{
    saemon_ruleset *rs = bound(RULE_R("4", "    for: 3\n"));
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "11", &c);
    saemon_reload_stats st = reload(mon, &rs, RULE_R("4.5", "    for: 3\n"), &c);
    cr_expect_eq(st.changed, 1);
    cr_expect_eq(st.kept + st.added + st.removed, 0);
    feed_pattern(mon, 2, "111", &c);
    cr_assert_eq(c.n, 1, "the count restarts at the reload: fires on the third token after it");
    cr_expect_eq(c.a[0].token, 4);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, unchanged_rule_stays_in_cooldown)
{
    saemon_ruleset *rs = bound(RULE_R("4", "    cooldown: 5\n"));
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "10", &c);
    cr_assert_eq(c.n, 1);
    reload(mon, &rs, RULE_R("4", "    cooldown: 5\n"), &c);
    feed_pattern(mon, 2, "1010", &c);
    cr_expect_eq(c.n, 1, "tokens 2 and 4 are within the cooldown carried over");
    feed_pattern(mon, 6, "1", &c);
    cr_assert_eq(c.n, 2);
    cr_expect_eq(c.a[1].token, 6);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, changed_cooldown_starts_fresh)
{
    saemon_ruleset *rs = bound(RULE_R("4", "    cooldown: 5\n"));
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "10", &c);
    reload(mon, &rs, RULE_R("4", "    cooldown: 6\n"), &c);
    feed_pattern(mon, 2, "1", &c);
    cr_assert_eq(c.n, 2, "a changed rule has no cooldown to respect");
    cr_expect_eq(c.a[1].token, 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, firing_unchanged_rule_neither_refires_nor_resolves)
{
    saemon_ruleset *rs = bound(RULE_R("4", ""));
    saemon_monitor *mon = monitor_for(rs, true);
    capture c = {0};
    feed_pattern(mon, 0, "11", &c);
    cr_assert_eq(c.n, 1);
    reload(mon, &rs, RULE_R("4", RULE_OTHER), &c);
    feed_pattern(mon, 2, "11", &c);
    cr_expect_eq(c.n, 1, "still the same firing alert");
    feed_pattern(mon, 4, "0", &c);
    cr_assert_eq(c.n, 2);
    cr_expect_str_eq(c.a[1].status, "resolved");
    cr_expect_eq(c.a[1].fired_token, 0, "the firing token carried over");
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, removed_firing_rule_resolves)
{
    saemon_ruleset *rs = bound(RULE_R("4", RULE_OTHER));
    saemon_monitor *mon = monitor_for(rs, true);
    capture c = {0};
    feed_pattern(mon, 0, "111", &c);
    cr_assert_eq(c.n, 1);
    saemon_reload_stats st = reload(mon, &rs, "rules:\n" RULE_OTHER, &c);
    cr_expect_eq(st.removed, 1);
    cr_expect_eq(st.kept, 1);
    cr_assert_eq(c.n, 2, "the removed rule's alert must end");
    cr_expect_str_eq(c.a[1].rule, "r");
    cr_expect_str_eq(c.a[1].status, "resolved");
    cr_expect_eq(c.a[1].token, 2, "resolved where the stream was");
    cr_expect_eq(c.a[1].fired_token, 0);
    feed_pattern(mon, 3, "11", &c);
    cr_expect_eq(c.n, 2, "the removed rule no longer fires");
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, changed_firing_rule_resolves_then_fires_anew)
{
    saemon_ruleset *rs = bound(RULE_R("4", ""));
    saemon_monitor *mon = monitor_for(rs, true);
    capture c = {0};
    feed_pattern(mon, 0, "1", &c);
    reload(mon, &rs, RULE_R("3", ""), &c);
    cr_assert_eq(c.n, 2);
    cr_expect_str_eq(c.a[1].status, "resolved");
    feed_pattern(mon, 1, "1", &c);
    cr_assert_eq(c.n, 3);
    cr_expect_str_eq(c.a[2].status, "firing");
    cr_expect_eq(c.a[2].token, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, removed_firing_rule_is_silent_without_resolved)
{
    saemon_ruleset *rs = bound(RULE_R("4", RULE_OTHER));
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "1", &c);
    reload(mon, &rs, "rules:\n" RULE_OTHER, &c);
    cr_expect_eq(c.n, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, added_rule_starts_fresh_and_fires)
{
    saemon_ruleset *rs = bound("rules:\n" RULE_OTHER);
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "11", &c);
    cr_assert_eq(c.n, 0);
    saemon_reload_stats st = reload(mon, &rs, RULE_R("4", "    for: 2\n" RULE_OTHER), &c);
    cr_expect_eq(st.added, 1);
    cr_expect_eq(st.kept, 1);
    feed_pattern(mon, 2, "11", &c);
    cr_assert_eq(c.n, 1, "an added rule counts from the reload on");
    cr_expect_eq(c.a[0].token, 3);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, window_state_carries_over)
{
    const char *yaml = RULE_R("4", "    window: {count_at_least: 3, tokens: 4}\n");
    saemon_ruleset *rs = bound(yaml);
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "101", &c);
    reload(mon, &rs, yaml, &c);
    feed_pattern(mon, 3, "1", &c);
    cr_assert_eq(c.n, 1, "3 of the last 4 held, two of them before the reload");
    cr_expect_eq(c.a[0].token, 3);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, running_mean_carries_over_to_a_new_rule)
{
    saemon_ruleset *rs = bound("rules:\n  - name: m\n    condition: {feature: 7, mean_over: 4, above: 100}\n");
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    feed_pattern(mon, 0, "111", &c);
    saemon_reload_stats st =
        reload(mon, &rs, "rules:\n  - name: m2\n    condition: {feature: 7, mean_over: 4, above: 4}\n", &c);
    cr_expect_eq(st.added, 1);
    cr_expect_eq(st.removed, 1);
    feed_pattern(mon, 3, "1", &c);
    cr_assert_eq(c.n, 1, "the mean over (feature 7, 4 tokens) is a property of the stream: it carried over");
    cr_expect_eq(c.a[0].token, 3);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, many_streams_keep_their_own_state)
{
    saemon_ruleset *rs = bound(RULE_R("4", "    for: 2\n"));
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    for (uint64_t s = 0; s < 40; s++) /* grows the stream map past its first size */
        feed(mon, s, 0, idx, val, s % 2, &c);
    reload(mon, &rs, RULE_R("4", "    for: 2\n" RULE_OTHER), &c);
    cr_expect_eq(saemon_monitor_get_stream_count(mon), 40);
    for (uint64_t s = 0; s < 40; s++)
        feed(mon, s, 1, idx, val, 1, &c);
    cr_assert_eq(c.n, 20, "only the streams that held before the reload fire on their second token");
    for (size_t i = 0; i < c.n; i++)
        cr_expect_eq(c.a[i].stream % 2, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, disabled_counts_as_removed_and_enabled_as_added)
{
    saemon_ruleset *rs = bound(RULE_R("4", RULE_OTHER));
    saemon_monitor *mon = monitor_for(rs, false);
    capture c = {0};
    saemon_reload_stats st = reload(mon, &rs, RULE_R("4", "    enabled: false\n" RULE_OTHER), &c);
    cr_expect_eq(st.rules, 1);
    cr_expect_eq(st.removed, 1);
    cr_expect_eq(st.kept, 1);
    st = reload(mon, &rs, RULE_R("4", RULE_OTHER), &c);
    cr_expect_eq(st.added, 1);
    cr_expect_eq(st.rules, 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(reload, null_arguments_are_refused)
{
    saemon_error err = {0};
    cr_expect_eq(saemon_monitor_reload(NULL, NULL, NULL, NULL, NULL, &err), SAEMON_ERR_ARG);
}
