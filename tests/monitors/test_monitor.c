/* Monitor semantics on hand-made token sequences: for, cooldown, edge
 * triggering, stream resets, any/all/nesting/between, alert contents. */
#include "rules_test.h"

static saemon_dict_info toy_dict(void)
{
    saemon_dict_info info = {0};
    info.name = "toy";
    info.d_sae = 16;
    return info;
}

static saemon_monitor *monitor_for(const char *yaml, saemon_ruleset **rs_out)
{
    saemon_ruleset *rs = load_ok(yaml);
    saemon_dict_info info = toy_dict();
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_create(rs, &info, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
    *rs_out = rs;
    return mon;
}

/* Feature 7 at value 5 when pattern[t] == '1', absent otherwise; tokens 0.. on stream s. */
static void feed_pattern(saemon_monitor *mon, uint64_t s, const char *pattern, capture *c)
{
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    for (uint64_t t = 0; pattern[t]; t++)
        feed(mon, s, t, idx, val, pattern[t] == '1' ? 1 : 0, c);
}

static void expect_tokens(const capture *c, const uint64_t *tokens, size_t n)
{
    cr_assert_eq(c->n, n, "expected %zu alerts, got %zu", n, c->n);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(c->a[i].token, tokens[i], "alert %zu at token %llu, expected %llu", i,
                     (unsigned long long)c->a[i].token, (unsigned long long)tokens[i]);
}

#define RULE(extra) "rules:\n  - name: r\n    condition: {feature: 7, above: 4}\n" extra

Test(for_, three_consecutive_fires_once_at_token_2)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    for: 3\n"), &rs);
    capture c = {0};
    feed_pattern(mon, 1, "1111111111", &c);
    expect_tokens(&c, (uint64_t[]){2}, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(for_, interrupted_run_restarts_count)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    for: 2\n"), &rs);
    capture c = {0};
    feed_pattern(mon, 1, "1011011", &c);
    expect_tokens(&c, (uint64_t[]){3, 6}, 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(for_, zero_means_one)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    for: 0\n"), &rs);
    capture c = {0};
    feed_pattern(mon, 1, "0100", &c);
    expect_tokens(&c, (uint64_t[]){1}, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(edge, stays_true_fires_once_and_rearms_after_false)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE(""), &rs);
    capture c = {0};
    feed_pattern(mon, 1, "11111011", &c);
    expect_tokens(&c, (uint64_t[]){0, 6}, 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(cooldown, blocks_refiring_within_window)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    cooldown: 3\n"), &rs);
    capture c = {0};
    feed_pattern(mon, 1, "10101010101", &c); /* true on even tokens */
    expect_tokens(&c, (uint64_t[]){0, 4, 8}, 3);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(cooldown, fires_when_it_expires_if_still_armed_and_true)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    cooldown: 4\n"), &rs);
    capture c = {0};
    feed_pattern(mon, 1, "1011111111", &c);
    expect_tokens(&c, (uint64_t[]){0, 5}, 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(stream, token_gap_resets_state)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    for: 3\n"), &rs);
    capture c = {0};
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    feed(mon, 1, 0, idx, val, 1, &c);
    feed(mon, 1, 1, idx, val, 1, &c);
    feed(mon, 1, 5, idx, val, 1, &c); /* gap: new sequence, held restarts at 1 */
    feed(mon, 1, 6, idx, val, 1, &c);
    cr_expect_eq(c.n, 0);
    feed(mon, 1, 7, idx, val, 1, &c);
    expect_tokens(&c, (uint64_t[]){7}, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(stream, token_zero_starts_a_new_sequence_and_rearms)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    cooldown: 100\n"), &rs);
    capture c = {0};
    feed_pattern(mon, 1, "111", &c);
    feed_pattern(mon, 1, "111", &c); /* tokens 0,1,2 again: new sequence, cooldown forgotten */
    expect_tokens(&c, (uint64_t[]){0, 0}, 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(stream, repeated_token_resets)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    for: 2\n"), &rs);
    capture c = {0};
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    feed(mon, 1, 3, idx, val, 1, &c);
    feed(mon, 1, 3, idx, val, 1, &c); /* not last+1 */
    cr_expect_eq(c.n, 0);
    feed(mon, 1, 4, idx, val, 1, &c);
    expect_tokens(&c, (uint64_t[]){4}, 1);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(stream, interleaved_streams_are_independent)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    for: 2\n"), &rs);
    capture c = {0};
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    feed(mon, 10, 0, idx, val, 1, &c);
    feed(mon, 20, 0, idx, val, 1, &c);
    feed(mon, 10, 1, idx, val, 1, &c);
    feed(mon, 20, 1, idx, val, 0, &c);
    feed(mon, 20, 2, idx, val, 1, &c);
    feed(mon, 20, 3, idx, val, 1, &c);
    cr_assert_eq(c.n, 2);
    cr_expect_eq(c.a[0].stream, 10);
    cr_expect_eq(c.a[0].token, 1);
    cr_expect_eq(c.a[1].stream, 20);
    cr_expect_eq(c.a[1].token, 3);
    cr_expect_eq(saemon_monitor_get_stream_count(mon), 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(stream, many_streams_grow_the_map)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE("    for: 2\n"), &rs);
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    size_t fired = 0;
    capture c = {0};
    for (uint64_t t = 0; t < 2; t++) {
        for (uint64_t s = 0; s < 1000; s++) {
            feed(mon, s * 7919, t, idx, val, 1, &c);
            fired += c.n;
            c.n = 0;
        }
    }
    cr_expect_eq(fired, 1000);
    cr_expect_eq(saemon_monitor_get_stream_count(mon), 1000);
    cr_expect_eq(saemon_monitor_get_dropped(mon), 0);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(rules, disabled_rule_never_fires)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for("rules:\n"
                                      "  - name: off\n    enabled: false\n    condition: {feature: 7, above: 1}\n"
                                      "  - name: on\n    condition: {feature: 7, above: 1}\n",
                                      &rs);
    cr_expect_eq(saemon_rules_get_count(rs), 2);
    cr_expect_eq(saemon_rules_get_enabled_count(rs), 1);
    capture c = {0};
    feed_pattern(mon, 1, "1", &c);
    cr_assert_eq(c.n, 1);
    cr_expect_str_eq(c.a[0].rule, "on");
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(condition, between_is_strict_and_absent_is_zero)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for("rules:\n  - name: r\n    condition: {feature: 3, above: 1, below: 3}\n", &rs);
    capture c = {0};
    const uint32_t idx[] = {3};
    const float vals[] = {0.5f, 2.0f, 3.0f, 1.0f, 2.5f};
    /* token values 0.5 (no), 2 (yes), 3 (no: strict), 1 (no: strict), absent (0: no), 2.5 (yes) */
    feed(mon, 1, 0, idx, &vals[0], 1, &c);
    feed(mon, 1, 1, idx, &vals[1], 1, &c);
    feed(mon, 1, 2, idx, &vals[2], 1, &c);
    feed(mon, 1, 3, idx, &vals[3], 1, &c);
    feed(mon, 1, 4, idx, vals, 0, &c);
    feed(mon, 1, 5, idx, &vals[4], 1, &c);
    expect_tokens(&c, (uint64_t[]){1, 5}, 2);
    cr_expect_eq(c.a[1].n_features, 1);
    cr_expect_eq(c.a[1].features[0].index, 3);
    cr_expect_float_eq(c.a[1].features[0].value, 2.5f, 0);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(condition, below_holds_for_an_absent_feature)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for("rules:\n  - name: r\n    condition: {feature: 9, below: 0.5}\n", &rs);
    capture c = {0};
    const uint32_t idx[] = {2};
    const float val[] = {4.0f};
    feed(mon, 1, 0, idx, val, 1, &c);
    cr_assert_eq(c.n, 1);
    cr_expect_eq(c.a[0].n_features, 1);
    cr_expect_eq(c.a[0].features[0].index, 9);
    cr_expect_float_eq(c.a[0].features[0].value, 0.0f, 0);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(condition, any_all_and_nesting)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(
        "rules:\n"
        "  - name: either\n    condition: {any: [{feature: 1, above: 1}, {feature: 2, above: 1}]}\n"
        "  - name: both\n    condition: {all: [{feature: 1, above: 1}, {feature: 2, above: 1}]}\n"
        "  - name: nested\n    condition:\n      all:\n        - any: [{feature: 1, above: 1}, {feature: 2, above: 1}]\n"
        "        - {feature: 3, below: 5}\n",
        &rs);
    capture c = {0};
    /* each token starts a new sequence (token 0 on a fresh stream) so edges do not interfere */
    const uint32_t only1[] = {1}, both[] = {1, 2}, with3[] = {1, 3};
    const float v2[] = {2.0f, 2.0f}, v_big3[] = {2.0f, 9.0f};
    feed(mon, 1, 0, only1, v2, 1, &c);    /* either, nested (3 absent = 0 < 5) */
    feed(mon, 2, 0, both, v2, 2, &c);     /* either, both, nested */
    feed(mon, 3, 0, with3, v_big3, 2, &c); /* either only: 3 = 9 is not below 5 */
    feed(mon, 4, 0, NULL, NULL, 0, &c);   /* nothing */
    cr_assert_eq(c.n, 6);
    const char *expect[] = {"either", "nested", "either", "both", "nested", "either"};
    const uint64_t streams[] = {1, 1, 2, 2, 2, 3};
    for (size_t i = 0; i < 6; i++) {
        cr_expect_str_eq(c.a[i].rule, expect[i]);
        cr_expect_eq(c.a[i].stream, streams[i]);
    }
    /* "either" on stream 1 lists only the leaf that held */
    cr_expect_eq(c.a[0].n_features, 1);
    cr_expect_eq(c.a[0].features[0].index, 1);
    /* "nested" on stream 2 lists features 1, 2 and the absent 3 (value 0), ascending */
    cr_assert_eq(c.a[4].n_features, 3);
    cr_expect_eq(c.a[4].features[0].index, 1);
    cr_expect_eq(c.a[4].features[1].index, 2);
    cr_expect_eq(c.a[4].features[2].index, 3);
    cr_expect_float_eq(c.a[4].features[2].value, 0.0f, 0);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(condition, features_are_sorted_and_unique)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(
        "rules:\n  - name: r\n    condition: {any: [{feature: 9, above: 1}, {feature: 3, above: 1}, "
        "{feature: 9, above: 2}, {feature: 4, above: 1}]}\n",
        &rs);
    capture c = {0};
    const uint32_t idx[] = {3, 9};
    const float val[] = {5.0f, 6.0f};
    feed(mon, 1, 0, idx, val, 2, &c);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.a[0].n_features, 2);
    cr_expect_eq(c.a[0].features[0].index, 3);
    cr_expect_float_eq(c.a[0].features[0].value, 5.0f, 0);
    cr_expect_eq(c.a[0].features[1].index, 9);
    cr_expect_float_eq(c.a[0].features[1].value, 6.0f, 0);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(api, null_callback_still_tracks_state_and_bad_views_are_counted)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = monitor_for(RULE(""), &rs);
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    saemon_token_view t = {.stream = 1, .token = 0, .index = idx, .value = val, .nnz = 1};
    saemon_monitor_observe(mon, &t, NULL, NULL); /* fires silently, disarms */
    capture c = {0};
    feed(mon, 1, 1, idx, val, 1, &c);
    cr_expect_eq(c.n, 0, "the rule was already disarmed by the unobserved firing");
    saemon_token_view bad = {.stream = 1, .token = 2, .index = NULL, .value = val, .nnz = 1};
    saemon_monitor_observe(mon, &bad, capture_alert, &c);
    saemon_monitor_observe(mon, NULL, capture_alert, &c);
    cr_expect_eq(saemon_monitor_get_dropped(mon), 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(api, create_without_dictionary_has_null_dictionary_name)
{
    saemon_ruleset *rs = load_ok(RULE(""));
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_create(rs, NULL, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
    capture c = {0};
    feed_pattern(mon, 1, "1", &c);
    cr_assert_eq(c.n, 1);
    cr_expect(strstr(c.a[0].json, "\"dictionary\":null") != NULL, "%s", c.a[0].json);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(api, create_refuses_a_mismatched_dictionary)
{
    saemon_ruleset *rs = load_ok("rules:\n  - name: r\n    condition: {feature: 99, above: 1}\n");
    saemon_dict_info info = toy_dict();
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_expect_eq(saemon_monitor_create(rs, &info, NULL, &mon, &err), SAEMON_ERR_RULES);
    cr_expect_null(mon);
    cr_expect(strncmp(err.message, "t.yaml:3:26:", 12) == 0, "%s", err.message);
    saemon_rules_close(rs);
}

/* Feature indices past the dense-lookup range take the binary-search path;
 * both must agree on the same tokens. */
Test(condition, huge_feature_indices_evaluate_like_small_ones)
{
    const char *yaml[] = {
        "rules:\n  - name: r\n    condition: {all: [{feature: 7, above: 4}, {feature: 9, below: 1}]}\n"
        "  - name: s\n    condition: {feature: 3, above: 0.5, below: 2}\n",
        "rules:\n  - name: r\n    condition: {all: [{feature: 7, above: 4}, {feature: 9, below: 1}]}\n"
        "  - name: s\n    condition: {feature: 3, above: 0.5, below: 2}\n"
        "  - name: far\n    enabled: true\n    condition: {feature: 4000000000, above: 1}\n",
    };
    capture c[2] = {{0}};
    for (int k = 0; k < 2; k++) {
        saemon_ruleset *rs = load_ok(yaml[k]);
        saemon_monitor *mon = NULL;
        saemon_error err = {0};
        cr_assert_eq(saemon_monitor_create(rs, NULL, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
        const uint32_t idx[] = {3, 7, 9, 4000000000u};
        const float val[][4] = {{1, 5, 0.5f, 0}, {3, 5, 2, 0}, {1.5f, 4, 0, 0}, {0.6f, 4.5f, 0.1f, 2}};
        for (uint64_t t = 0; t < 4; t++)
            feed(mon, 0, 0, idx, val[t], 4, &c[k]); /* token 0 each time: fresh sequence */
        saemon_monitor_destroy(mon);
        saemon_rules_close(rs);
    }
    /* r: t0, t3; s: t0, t2, t3; far (second file only): t3 */
    cr_assert_eq(c[0].n, 5);
    cr_assert_eq(c[1].n, 6);
    for (size_t i = 0, j = 0; i < c[1].n; i++) {
        if (strcmp(c[1].a[i].rule, "far") == 0) {
            cr_expect_eq(c[1].a[i].features[0].index, 4000000000u);
            continue;
        }
        cr_expect_str_eq(c[1].a[i].rule, c[0].a[j].rule);
        cr_expect_eq(c[1].a[i].n_features, c[0].a[j].n_features);
        j++;
    }
}
