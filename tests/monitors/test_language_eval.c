/* Evaluation of the full rule language on hand-made token sequences: every
 * operator, windows, means, keep_firing_for, resolved events, groups and
 * intervals, health rules, probes, labels and templates. */
#include <math.h>
#include <unistd.h>

#include "rules_test.h"
#include "tests/support/support.h"

static saemon_monitor *make(const char *yaml, bool resolved, saemon_ruleset **rs_out)
{
    saemon_ruleset *rs = load_ok(yaml);
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    saemon_monitor_options opts = {.resolved = resolved};
    cr_assert_eq(saemon_monitor_create(rs, NULL, &opts, &mon, &err), SAEMON_OK, "%s", err.message);
    *rs_out = rs;
    return mon;
}

/* One token of stream 0 with feature f at value v (v == 0: absent). */
static void feed1(saemon_monitor *mon, uint64_t t, uint32_t f, float v, capture *c)
{
    feed(mon, 0, t, &f, &v, v != 0.0f, c);
}

/* "alert list" as text: "2:firing 4:resolved" */
static void expect_events(const capture *c, const char *want)
{
    char got[1024] = "";
    size_t o = 0;
    for (size_t i = 0; i < c->n; i++)
        o += (size_t)snprintf(got + o, sizeof got - o, "%s%llu:%s", i ? " " : "", (unsigned long long)c->a[i].token,
                              c->a[i].status);
    cr_assert_str_eq(got, want);
}

static void done(saemon_monitor *mon, saemon_ruleset *rs)
{
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

Test(operators, between_is_inclusive)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: r\n    condition: {feature: 3, between: [1, 2]}\n", true, &rs);
    capture c = {0};
    const float v[] = {0.99f, 1.0f, 0.5f, 2.0f, 2.01f};
    for (uint64_t t = 0; t < 5; t++)
        feed1(mon, t, 3, v[t], &c);
    expect_events(&c, "1:firing 2:resolved 3:firing 4:resolved");
    done(mon, rs);
}

Test(operators, at_least_k_of_n)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: r\n    condition:\n      at_least:\n        count: 2\n"
                               "        of: [{feature: 1, above: 0}, {feature: 2, above: 0}, {feature: 3, above: 0}]\n",
                               false, &rs);
    capture c = {0};
    const uint32_t idx[] = {1, 2, 3};
    const float val[] = {1, 1, 1};
    feed(mon, 0, 0, idx, val, 1, &c);       /* 1 of 3 */
    feed(mon, 0, 1, idx + 1, val, 2, &c);   /* 2 of 3 */
    feed(mon, 0, 2, idx, val, 0, &c);       /* 0 */
    feed(mon, 0, 3, idx, val, 3, &c);       /* 3 of 3 */
    expect_events(&c, "1:firing 3:firing");
    cr_expect_eq(c.a[0].n_features, 2);
    done(mon, rs);
}

Test(operators, macros_and_lists_expand)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("lists: {l: [4, 5]}\n"
                               "macros:\n  m: {any_of_list: l, above: 1}\n  n: {all: [{macro: m}, {feature: 9, below: 1}]}\n"
                               "rules:\n  - name: r\n    condition: {macro: n}\n"
                               "  - name: s\n    condition: {all_of_list: l, above: 1}\n",
                               false, &rs);
    capture c = {0};
    const uint32_t idx[] = {4, 5, 9};
    const float val[] = {2, 2, 2};
    feed(mon, 0, 0, idx + 1, val, 1, &c);   /* 5 only: r */
    feed(mon, 0, 1, idx, val, 3, &c);       /* 9 present: r false; s true */
    cr_assert_eq(c.n, 2);
    cr_expect_str_eq(c.a[0].rule, "r");
    cr_expect_eq(c.a[0].token, 0);
    cr_expect_str_eq(c.a[1].rule, "s");
    cr_expect_eq(c.a[1].n_features, 2);
    done(mon, rs);
}

/* issue 12: 2 * 3e38 overflows float; in float32 the score was inf - inf = NaN. */
Test(operators, probe_sum_of_huge_features_does_not_overflow)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: p\n    condition:\n      probe: {weights: {1: 2.0, 2: -2.0}, "
                               "above: 0.4}\n", false, &rs);
    capture c = {0};
    const uint32_t idx[] = {1, 2};
    const float v[] = {3e38f, 3e38f};
    feed(mon, 0, 0, idx, v, 2, &c);
    expect_events(&c, "0:firing");
    cr_expect_eq(c.a[0].value, 0.5, "score %.9g", c.a[0].value); /* sigmoid(6e38 - 6e38) */
    done(mon, rs);
}

Test(operators, probe_is_sigmoid_of_linear_score)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: p\n    condition:\n      probe: {weights: {1: 2.0, 2: -1.0}, "
                               "bias: -1.0, above: 0.8}\n", false, &rs);
    capture c = {0};
    const uint32_t idx[] = {1, 2};
    const float lo[] = {1.0f, 0.0f};        /* 2 - 1 = 1: 0.731, below 0.8 */
    const float hi[] = {1.5f, 0.25f};       /* 3 - 0.25 - 1 = 1.75: 0.852 */
    feed(mon, 0, 0, idx, lo, 1, &c);
    feed(mon, 0, 1, idx, hi, 2, &c);
    expect_events(&c, "1:firing");
    cr_expect(fabs(c.a[0].value - 1.0 / (1.0 + exp(-1.75))) < 1e-6, "score %.9g", c.a[0].value);
    cr_expect_eq(c.a[0].n_features, 2, "the probe's present features are reported");
    done(mon, rs);
}

Test(temporal, mean_over_needs_a_full_window)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: m\n    condition: {feature: 2, mean_over: 3, above: 2}\n", true, &rs);
    capture c = {0};
    const float v[] = {9, 0, 0, 3, 3, 3, 0, 0};  /* means from t=2: 3, 1, 2, 3, 2, 1 */
    for (uint64_t t = 0; t < 8; t++)
        feed1(mon, t, 2, v[t], &c);
    expect_events(&c, "2:firing 3:resolved 5:firing 6:resolved");
    cr_expect(fabs(c.a[0].value - 3.0) < 1e-6, "mean %.9g", c.a[0].value);
    done(mon, rs);
}

/* issue 12: a running double sum kept the loss of the 1s added next to 1e16
 * (mean 0.5 instead of 1 for the rest of the sequence). */
Test(temporal, mean_over_does_not_drift_after_an_outlier)
{
    saemon_ruleset *rs;
    saemon_monitor *mon =
        make("rules:\n  - name: m\n    condition: {feature: 0, mean_over: 2, between: [0.9, 1.1]}\n", true, &rs);
    capture c = {0};
    const float v[] = {1, 1e16f, 1, 1, 1, 1, -3e38f, 3e38f, 1, 1, 1};
    for (uint64_t t = 0; t < sizeof v / sizeof v[0]; t++)
        feed1(mon, t, 0, v[t], &c);
    /* means: t1 5e15, t2 5e15, t3 1 (fires), t4 1, t5 1, t6 -1.5e38 (resolves), t7 0, t8 1.5e38, t9 1 (fires) */
    expect_events(&c, "3:firing 6:resolved 9:firing");
    cr_expect_eq(c.a[0].value, 1.0, "mean %.17g", c.a[0].value);
    cr_expect_eq(c.a[2].value, 1.0, "mean %.17g", c.a[2].value);
    done(mon, rs);
}

Test(temporal, mean_over_of_tiny_values_is_exact)
{
    saemon_ruleset *rs;
    /* 1e-45 is the smallest subnormal; the mean of 3 of them is below it: 0, not above 0 */
    saemon_monitor *mon = make("rules:\n  - name: m\n    condition: {feature: 0, mean_over: 3, above: 1e-45}\n",
                               true, &rs);
    capture c = {0};
    const float ulp = 1e-45f; /* rounds to 2^-149 */
    const float v[] = {ulp, ulp, 2 * ulp, ulp, 2 * ulp, 2 * ulp};
    for (uint64_t t = 0; t < 6; t++)
        feed1(mon, t, 0, v[t], &c);
    /* means in ulps: t2 4/3 -> 1 (not above), t3 4/3 -> 1, t4 5/3 -> 2 (above) */
    expect_events(&c, "4:firing");
    done(mon, rs);
}

/* issue 12: an alert still firing when its stream ends is resolved by
 * saemon_monitor_end_stream (what `run` calls at every sequence end). */
Test(temporal, end_stream_resolves_what_still_fires)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: r\n    condition: {feature: 1, above: 0}\n", true, &rs);
    capture c = {0};
    feed1(mon, 0, 1, 1.0f, &c);
    feed1(mon, 1, 1, 1.0f, &c);
    cr_assert_eq(saemon_monitor_get_stream_count(mon), 1);
    saemon_monitor_end_stream(mon, 0, capture_alert, &c);
    expect_events(&c, "0:firing 1:resolved");
    cr_expect_eq(c.a[1].fired_token, 0);
    cr_expect_eq(saemon_monitor_get_stream_count(mon), 0, "the stream's state is freed");
    saemon_monitor_end_stream(mon, 0, capture_alert, &c); /* unknown stream: nothing */
    cr_expect_eq(c.n, 2);
    done(mon, rs);
}

Test(temporal, window_count_at_least)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: w\n    condition: {feature: 1, above: 0}\n"
                               "    window: {count_at_least: 2, tokens: 3}\n", true, &rs);
    capture c = {0};
    const char *p = "1010001100";
    for (uint64_t t = 0; p[t]; t++)
        feed1(mon, t, 1, p[t] == '1' ? 1.0f : 0.0f, &c);
    /* windows ending at t: 2 -> {1,0,1}: fire; 3 {0,1,0}: resolve; 7 {0,1,1}: fire; 9 {1,0,0}: resolve */
    expect_events(&c, "2:firing 3:resolved 7:firing 9:resolved");
    done(mon, rs);
}

Test(temporal, keep_firing_for_bridges_gaps)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: k\n    condition: {feature: 1, above: 0}\n    keep_firing_for: 2\n",
                               true, &rs);
    capture c = {0};
    const char *p = "1001000";
    for (uint64_t t = 0; p[t]; t++)
        feed1(mon, t, 1, p[t] == '1' ? 1.0f : 0.0f, &c);
    /* gap 1-2 is bridged; false from 4: resolved at 6 (3rd false token) */
    expect_events(&c, "0:firing 6:resolved");
    cr_expect_eq(c.a[1].fired_token, 0);
    cr_expect(isnan(c.a[1].value));
    cr_expect(strstr(c.a[1].json, "\"status\":\"resolved\"") && strstr(c.a[1].json, "\"fired_token\":0"), "%s",
              c.a[1].json);
    done(mon, rs);
}

Test(temporal, resolved_events_are_opt_in)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: k\n    condition: {feature: 1, above: 0}\n", false, &rs);
    capture c = {0};
    const char *p = "1010";
    for (uint64_t t = 0; p[t]; t++)
        feed1(mon, t, 1, p[t] == '1' ? 1.0f : 0.0f, &c);
    expect_events(&c, "0:firing 2:firing");
    done(mon, rs);
}

Test(temporal, new_sequence_resolves_at_the_old_last_token)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: k\n    condition: {feature: 1, above: 0}\n", true, &rs);
    capture c = {0};
    const uint32_t f = 1;
    const float v = 1;
    feed(mon, 3, 0, &f, &v, 1, &c);
    feed(mon, 3, 1, &f, &v, 1, &c);
    feed(mon, 4, 0, &f, &v, 0, &c);  /* another stream: no effect on 3 */
    feed(mon, 3, 7, &f, &v, 0, &c);  /* a jump: stream 3 starts over */
    expect_events(&c, "0:firing 1:resolved");
    cr_expect_eq(c.a[1].stream, 3);
    done(mon, rs);
}

Test(groups, interval_evaluates_every_nth_token)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: flat\n    condition: {feature: 1, above: 0}\n"
                               "groups:\n  - name: slow\n    interval: 3\n    rules:\n"
                               "      - name: g\n        condition: {feature: 1, above: 0}\n        for: 2\n",
                               false, &rs);
    capture c = {0};
    for (uint64_t t = 0; t < 7; t++)
        feed1(mon, t, 1, t == 2 ? 0.0f : 1.0f, &c);
    /* flat: fires at 0, re-fires at 3 after the false token 2. g: evaluated at 0, 3, 6: 2 evaluations -> 3 */
    cr_assert_eq(c.n, 3);
    cr_expect_str_eq(c.a[0].rule, "flat");
    cr_expect_str_eq(c.a[0].group, "");
    cr_expect_eq(c.a[1].token, 3);
    cr_expect_str_eq(c.a[1].rule, "flat");
    cr_expect_str_eq(c.a[2].rule, "g");
    cr_expect_eq(c.a[2].token, 3);
    cr_expect_str_eq(c.a[2].group, "slow");
    cr_expect(strstr(c.a[2].json, "\"group\":\"slow\""), "%s", c.a[2].json);
    done(mon, rs);
}

static void feed_health(saemon_monitor *mon, uint64_t t, size_t nnz, float norm, bool nonfinite, float recon,
                        capture *c)
{
    static const uint32_t idx[] = {0, 1, 2, 3};
    static const float val[] = {1, 1, 1, 1};
    saemon_token_view tok = {.stream = 0, .token = t, .index = idx, .value = val, .nnz = nnz,
                             .input_norm = norm, .input_nonfinite = nonfinite, .recon_error = recon};
    saemon_monitor_observe(mon, &tok, capture_alert, c);
}

Test(health, every_check)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n"
                               "  - {name: recon, health: {reconstruction_error_above: 0.5}}\n"
                               "  - {name: l0, health: {l0_outside: [1, 3]}}\n"
                               "  - {name: nonfinite, health: {input_nonfinite: true}}\n"
                               "  - {name: norm, health: {input_norm_outside: [0.5, 10]}}\n",
                               false, &rs);
    cr_expect(saemon_rules_needs_reconstruction(rs));
    capture c = {0};
    feed_health(mon, 0, 2, 1.0f, false, NAN, &c);     /* healthy; recon not computed */
    feed_health(mon, 1, 2, 1.0f, false, 0.75f, &c);   /* recon */
    feed_health(mon, 2, 4, 1.0f, false, 0.1f, &c);    /* l0 4 > 3 */
    feed_health(mon, 3, 2, NAN, true, 0.1f, &c);      /* nonfinite, and a NaN norm is outside */
    feed_health(mon, 4, 0, 1.0f, false, 0.1f, &c);    /* l0 0 */
    feed_health(mon, 5, 2, 20.0f, false, 0.1f, &c);   /* norm 20 */
    cr_assert_eq(c.n, 6, "got %zu alerts", c.n);
    const char *rule[] = {"recon", "l0", "nonfinite", "norm", "l0", "norm"};
    const uint64_t tok[] = {1, 2, 3, 3, 4, 5};
    for (size_t i = 0; i < 6; i++) {
        cr_expect_str_eq(c.a[i].rule, rule[i]);
        cr_expect_eq(c.a[i].token, tok[i], "%s at %llu", rule[i], (unsigned long long)c.a[i].token);
    }
    cr_expect(fabs(c.a[0].value - 0.75) < 1e-6);
    cr_expect(fabs(c.a[1].value - 4.0) < 1e-6);
    cr_expect(fabs(c.a[5].value - 20.0) < 1e-6);
    done(mon, rs);
}

Test(health, no_recon_rule_means_no_reconstruction)
{
    saemon_ruleset *rs = load_ok("rules:\n  - {name: n, health: {input_norm_outside: [0, 1]}}\n"
                                 "  - {name: r, enabled: false, health: {reconstruction_error_above: 0.1}}\n");
    cr_expect_not(saemon_rules_needs_reconstruction(rs), "disabled rules do not count");
    saemon_rules_close(rs);
}

Test(labels, alerts_carry_explanations_and_rules_use_them)
{
    char *dir = test_tmpdir();
    const char *json = "{\"3\": \"cats\", \"5\": \"dogs\"}";
    char *labels = test_write_file(dir, "labels.json", json, strlen(json));
    char yaml[512];
    snprintf(yaml, sizeof yaml, "feature_labels: %s\nrules:\n  - name: r\n    condition:\n"
                                "      any: [{feature: cats, above: 0}, {feature: 5, above: 0}, {feature: 9, above: 0}]\n"
                                "    annotations: {a: \"{{ .feature.label }}={{ .feature.value }} #{{ .feature.index }}\"}\n",
             labels);
    saemon_ruleset *rs;
    saemon_monitor *mon = make(yaml, false, &rs);
    capture c = {0};
    const uint32_t idx[] = {3, 5, 9};
    const float val[] = {1.5f, 2, 3};
    feed(mon, 0, 0, idx, val, 3, &c);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.a[0].n_features, 3);
    cr_expect_str_eq(c.a[0].feature_label[0], "cats");
    cr_expect_str_eq(c.a[0].feature_label[1], "dogs");
    cr_expect_str_eq(c.a[0].feature_label[2], "(null)");
    cr_expect_str_eq(c.a[0].annotation[0], "cats=1.5 #3");
    cr_expect(strstr(c.a[0].json, "\"label\":\"cats\""), "%s", c.a[0].json);
    done(mon, rs);
    /* The API option overrides the file's key; a label missing from it is an error. */
    const char *other = "[{\"index\": 3, \"description\": \"birds\"}]";
    char *other_path = test_write_file(dir, "other.json", other, strlen(other));
    saemon_rules_options opts = {.feature_labels = other_path};
    saemon_error err = {0};
    rs = NULL;
    cr_expect_eq(saemon_rules_from_string(yaml, strlen(yaml), "t.yaml", &opts, &rs, &err), SAEMON_ERR_RULES);
    cr_expect(strstr(err.message, "t.yaml:5:23: unknown feature label \"cats\""), "%s", err.message);
    free(other_path);
    free(labels);
    test_rmtree(dir);
    free(dir);
}

Test(templates, every_name)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - name: t\n    condition: {feature: 4, above: 1}\n"
                               "    labels: {team: blue}\n"
                               "    annotations:\n"
                               "      a: \"{{.rule}} {{ .token }} {{ .stream }} {{ .value }} {{ .labels.team }}\"\n"
                               "      b: \"{{ .feature.index }}:{{ .feature.value }}:{{ .feature.label }}.\"\n"
                               "      c: plain {not a template} }}\n",
                               false, &rs);
    capture c = {0};
    const uint32_t f = 4;
    const float v = 2.5f;
    feed(mon, 12345678901234ULL, 0, &f, &v, 1, &c);
    cr_assert_eq(c.n, 1);
    cr_expect_str_eq(c.a[0].annotation[0], "t 0 12345678901234 2.5 blue");
    cr_expect_str_eq(c.a[0].annotation[1], "4:2.5:.");
    cr_expect_str_eq(c.a[0].annotation[2], "plain {not a template} }}");
    done(mon, rs);
}

Test(monitor, no_enabled_rules_observes_quietly)
{
    saemon_ruleset *rs;
    saemon_monitor *mon = make("rules:\n  - {name: off, enabled: false, condition: {feature: 1, mean_over: 2, above: 0}}\n",
                               true, &rs);
    capture c = {0};
    for (uint64_t t = 0; t < 4; t++)
        feed1(mon, t % 2 ? t : 0, 1, 1.0f, &c); /* restarts too */
    cr_expect_eq(c.n, 0);
    cr_expect_eq(saemon_monitor_get_dropped(mon), 0);
    done(mon, rs);
}
