/* What the rules need the encoder to compute: saemon_rules_needed_latents,
 * `every: N` on health rules, and subset tokens skipping L0 rules. */
#include <unistd.h>

#include "tests/monitors/rules_test.h"

static const char *PACK =
    "version: 1\n"
    "lists: {watched: [12, 173]}\n"
    "macros: {m: {feature: 5, above: 1}}\n"
    "rules:\n"
    "  - {name: leaf, condition: {feature: 7, above: 1}}\n"
    "  - {name: list, condition: {any_of_list: watched, above: 1}}\n"
    "  - {name: macro, condition: {macro: m}}\n"
    "  - {name: mean, condition: {feature: 41, mean_over: 4, above: 2}}\n"
    "  - {name: probe, condition: {probe: {weights: {300: 0.5, 301: 0.0, 7: 1}, above: 0.5}}}\n"
    "  - {name: off, enabled: false, condition: {feature: 999, above: 1}}\n"
    "  - {name: norm, health: {input_norm_outside: [0.1, 100]}}\n";

Test(needs, latents_of_every_construct_ascending_without_disabled_or_zero_weights)
{
    saemon_ruleset *rs = load_ok(PACK);
    saemon_rules_needs nd;
    uint32_t out[16];
    size_t n = saemon_rules_needed_latents(rs, out, 16, &nd);
    const uint32_t want[] = {5, 7, 12, 41, 173, 300};
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    cr_assert_eq(nd.n_latents, n);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(out[i], want[i], "latent %zu: %u", i, out[i]);
    cr_expect_str_empty(nd.full_reason, "an input-norm check needs no latent");
    cr_expect_eq(nd.full_every, 0);
    /* counting only, and a short buffer */
    cr_expect_eq(saemon_rules_needed_latents(rs, NULL, 0, NULL), n);
    cr_expect_eq(saemon_rules_needed_latents(rs, out, 2, NULL), n);
    cr_expect(out[0] == 5 && out[1] == 7);
    saemon_rules_close(rs);
}

Test(needs, l0_and_reconstruction_need_the_full_encode_unless_sampled)
{
    saemon_ruleset *rs = load_ok("version: 1\nrules:\n"
                                 "  - {name: a, condition: {feature: 3, above: 1}}\n"
                                 "  - {name: l0, health: {l0_outside: [1, 64]}}\n");
    saemon_rules_needs nd;
    saemon_rules_needed_latents(rs, NULL, 0, &nd);
    cr_assert_str_not_empty(nd.full_reason);
    cr_expect(strstr(nd.full_reason, "rule 'l0' reads L0"), "%s", nd.full_reason);
    saemon_rules_close(rs);

    rs = load_ok("version: 1\nrules:\n"
                 "  - {name: a, condition: {feature: 3, above: 1}}\n"
                 "  - {name: l0, health: {l0_outside: [1, 64]}, every: 100}\n"
                 "  - {name: recon, condition: {all: [{feature: 3, above: 0}, {health: {reconstruction_error_above: 0.5}}]}, every: 40}\n");
    saemon_rules_needed_latents(rs, NULL, 0, &nd);
    cr_expect_str_empty(nd.full_reason);
    cr_expect_eq(nd.full_every, 40, "the smallest every");
    cr_expect(nd.reconstruction);
    cr_expect_eq(nd.n_latents, 1);
    saemon_rules_close(rs);
}

Test(needs, every_errors)
{
    EXPECT_ERR("version: 1\nrules:\n  - {name: a, condition: {feature: 3, above: 1}, every: 10}\n", SAEMON_ERR_RULES,
               "t.yaml:3:", "has 'every' but no health check");
    EXPECT_ERR("version: 1\nrules:\n  - {name: a, health: {l0_outside: [1, 5]}, every: 0}\n", SAEMON_ERR_RULES,
               "t.yaml:3:", "'every' is 0");
    EXPECT_ERR("version: 1\nrules:\n  - {name: a, health: {l0_outside: [1, 5]}, every: -3}\n", SAEMON_ERR_RULES,
               "t.yaml:3:", "'every'");
}

static int fired;
static void count_alert(const saemon_alert *a, void *user)
{
    (void)a;
    (void)user;
    fired++;
}

Test(needs, subset_tokens_skip_rules_reading_l0_and_sampled_rules)
{
    saemon_ruleset *rs = load_ok("version: 1\nrules:\n"
                                 "  - {name: l0, health: {l0_outside: [2, 64]}}\n"
                                 "  - {name: norm, health: {input_norm_outside: [0.1, 100]}, every: 10}\n");
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_create(rs, NULL, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
    const uint32_t idx[1] = {3};
    const float val[1] = {1.0f};
    /* one active feature (L0 1 < 2) and a norm of 500: both would fire */
    saemon_token_view tok = {.stream = 1, .token = 0, .index = idx, .value = val, .nnz = 1, .input_norm = 500,
                             .subset = true};
    saemon_monitor_observe(mon, &tok, count_alert, NULL);
    cr_expect_eq(fired, 0, "a subset token tells nothing about L0, and `every` rules wait for a full one");
    tok.token = 1;
    tok.subset = false;
    saemon_monitor_observe(mon, &tok, count_alert, NULL);
    cr_expect_eq(fired, 2);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}

static uint64_t cap_stream, cap_token;
static uint32_t cap_window;
static size_t fake_capture(uint64_t stream, uint64_t token, uint32_t window, saemon_alert_feature *out, size_t cap,
                           void *user)
{
    (void)user;
    cap_stream = stream, cap_token = token, cap_window = window;
    size_t n = 0;
    for (uint32_t j = 0; j < 5 && n < cap; j++)
        out[n++] = (saemon_alert_feature){.index = 10 - j, .value = 5.0f - (float)j};
    return n;
}

static char last_json[4096];
static void keep_json(const saemon_alert *a, void *user)
{
    (void)user;
    char *j = saemon_alert_to_json(a);
    snprintf(last_json, sizeof last_json, "%s", j ? j : "");
    free(j);
}

Test(needs, capture_asks_the_caller_and_attaches_top_features_with_labels)
{
    const char *labels = "{\"9\": \"ninth\"}";
    char dir[] = "/tmp/saemon-capture-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256], yaml[512];
    snprintf(path, sizeof path, "%s/labels.json", dir);
    FILE *f = fopen(path, "w");
    fputs(labels, f);
    fclose(f);
    snprintf(yaml, sizeof yaml,
             "version: 1\nfeature_labels: %s\nrules:\n"
             "  - {name: c, condition: {feature: 3, above: 0.5}, capture: {features: top, count: 3, window: 16}}\n",
             path);
    saemon_ruleset *rs = load_ok(yaml);
    saemon_rules_needs nd;
    saemon_rules_needed_latents(rs, NULL, 0, &nd);
    cr_expect_eq(nd.capture_window, 16);
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_create(rs, NULL, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
    saemon_monitor_set_capture(mon, fake_capture, NULL);
    const uint32_t idx[1] = {3};
    const float val[1] = {1.0f};
    saemon_token_view tok = {.stream = 7, .token = 0, .index = idx, .value = val, .nnz = 1, .input_norm = 1};
    saemon_monitor_observe(mon, &tok, keep_json, NULL);
    cr_expect_eq(cap_stream, 7);
    cr_expect_eq(cap_token, 0);
    cr_expect_eq(cap_window, 16);
    cr_expect(strstr(last_json, "\"captured\":{\"window\":16,\"features\":[{\"index\":10,\"value\":5},"
                                "{\"index\":9,\"value\":4,\"label\":\"ninth\"},{\"index\":8,\"value\":3}]}"),
              "%s", last_json);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
    unlink(path);
    rmdir(dir);
}

Test(needs, capture_errors)
{
    EXPECT_ERR("version: 1\nrules:\n  - {name: a, condition: {feature: 3, above: 1}, capture: {features: all, count: 3, window: 4}}\n",
               SAEMON_ERR_RULES, "t.yaml:3:", "expected top");
    EXPECT_ERR("version: 1\nrules:\n  - {name: a, condition: {feature: 3, above: 1}, capture: {features: top, count: 0, window: 4}}\n",
               SAEMON_ERR_RULES, "t.yaml:3:", "'capture.count' is 0");
    EXPECT_ERR("version: 1\nrules:\n  - {name: a, condition: {feature: 3, above: 1}, capture: {features: top, count: 3}}\n",
               SAEMON_ERR_RULES, "t.yaml:3:", "needs 'features', 'count' and 'window'");
    EXPECT_ERR("version: 1\nrules:\n  - {name: a, condition: {feature: 3, above: 1}, capture: {features: top, count: 3, window: 5000}}\n",
               SAEMON_ERR_RULES, "t.yaml:3:", "capture.window");
}
