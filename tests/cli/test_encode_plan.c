/* `saemon run --encode auto|rules|all` on real trained dictionaries
 * (../shared/data/sae: listcomp-toy JumpReLU, villes-transformer standard):
 * the subset plan's alerts are identical to the full encode's; the plan and
 * its reason are logged; `rules` refuses what cannot be exact; `every:`
 * samples the full encode. */
#include <cJSON.h>
#include <math.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cli/cli_run.h"
#include "tests/support/support.h"

/* Thresholds times `s` (the dictionaries' activations differ in scale). */
static const char *PACK = "version: 1\n"
                          "rules:\n"
                          "  - {name: f3, condition: {feature: 3, above: %g}}\n"
                          "  - {name: any, condition: {any: [{feature: 10, above: %g}, {feature: 50, above: %g},"
                          " {feature: 90, above: %g}]}, for: 2}\n"
                          "  - {name: mean, condition: {feature: 7, mean_over: 3, above: %g}}\n"
                          "  - {name: probe, condition: {probe: {weights: {20: %g, 21: %g, 22: %g}, bias: -1.0,"
                          " above: 0.6}}}\n";

/* The alerts file without timestamps (one canonical JSON per line). */
static char *alerts_without_time(const char *path, size_t *n)
{
    char *text = slurp(path);
    cr_assert_not_null(text, "no alerts file %s", path);
    size_t cap = strlen(text) + 1, at = 0;
    char *out = calloc(cap, 1);
    *n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *a = cJSON_Parse(line);
        cr_assert_not_null(a, "not JSON: %s", line);
        cJSON_DeleteItemFromObject(a, "timestamp");
        char *s = cJSON_PrintUnformatted(a);
        at += (size_t)snprintf(out + at, cap - at, "%s\n", s);
        free(s);
        cJSON_Delete(a);
        (*n)++;
    }
    free(text);
    return out;
}

static void run_mode(const char *sae, const char *acts, const char *rules, const char *mode, const char *alerts,
                     const char *expect_in_log)
{
    const char *args[] = {"run", "--sae", sae, "--rules", rules, "--input", acts, "--encode", mode,
                          "--alerts", alerts, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "run --encode %s failed: %s", mode, r.err);
    cr_assert(strstr(r.err, expect_in_log), "expected '%s' in the log:\n%s", expect_in_log, r.err);
    cli_result_free(&r);
}

static void same_alerts(const char *sae_rel, const char *acts_rel, const char *plan_line, double k)
{
    char *sae = test_shared_path(sae_rel), *acts = test_shared_path(acts_rel);
    if (!sae || !acts)
        cr_skip_test("needs ../shared/%s; skipped", sae_rel);
    char *dir = test_tmpdir();
    char pack[1024];
    snprintf(pack, sizeof pack, PACK, 0.5 * k, 1.0 * k, 1.0 * k, 0.3 * k, 0.2 * k, 1.0 / k, -0.5 / k, 0.7 / k);
    char *rules = test_write_file(dir, "rules.yaml", pack, strlen(pack));
    char a_auto[4096], a_all[4096], a_rules[4096];
    snprintf(a_auto, sizeof a_auto, "%s/auto.jsonl", dir);
    snprintf(a_all, sizeof a_all, "%s/all.jsonl", dir);
    snprintf(a_rules, sizeof a_rules, "%s/rules.jsonl", dir);
    run_mode(sae, acts, rules, "auto", a_auto, plan_line);
    /* plan before load: the subset run read only the rules' rows, the full one all of them */
    run_mode(sae, acts, rules, "rules", a_rules, "encoder rows (the rules' latents), W_dec not read");
    run_mode(sae, acts, rules, "all", a_all, "encoder rows (encode mode 'all'), W_dec not read");
    size_t n_auto, n_all, n_rules;
    char *x = alerts_without_time(a_auto, &n_auto), *y = alerts_without_time(a_all, &n_all),
         *z = alerts_without_time(a_rules, &n_rules);
    cr_assert_gt(n_all, 10, "the pack should fire on real data");
    cr_assert_eq(n_auto, n_all);
    cr_assert_str_eq(x, y, "alerts of the subset plan differ from --encode all");
    cr_assert_str_eq(z, y);
    free(x), free(y), free(z), free(rules), free(sae), free(acts);
    test_rmtree(dir);
    free(dir);
}

Test(encode_plan, jumprelu_subset_alerts_equal_full_encode, .timeout = 120)
{
    same_alerts("data/sae/listcomp-toy/saelens", "data/sae/listcomp-toy/acts.npy",
                "encoder plan: subset of 8 of 100 latents (exact for jumprelu)", 1.0);
}

Test(encode_plan, standard_subset_alerts_equal_full_encode, .timeout = 120)
{
    same_alerts("data/sae/villes-transformer/saelens", "data/sae/villes-transformer/acts.npy",
                "encoder plan: subset of 8 of 256 latents (exact for standard)", 0.1);
}

Test(encode_plan, l0_rules_need_every_or_the_full_encode, .timeout = 120)
{
    char *sae = test_shared_path("data/sae/listcomp-toy/saelens"), *acts = test_shared_path("data/sae/listcomp-toy/acts.npy");
    if (!sae || !acts)
        cr_skip_test("needs ../shared/data/sae/listcomp-toy; skipped");
    char *dir = test_tmpdir();
    const char *l0 = "version: 1\nrules:\n  - {name: f3, condition: {feature: 3, above: 0.5}}\n"
                     "  - {name: l0, health: {l0_outside: [1, 2]}}\n";
    char *rules = test_write_file(dir, "l0.yaml", l0, strlen(l0));
    char alerts[4096];
    snprintf(alerts, sizeof alerts, "%s/a.jsonl", dir);
    run_mode(sae, acts, rules, "auto", alerts, "encoder plan: every latent (100): rule 'l0' reads L0");
    const char *args[] = {"run", "--sae", sae, "--rules", rules, "--input", acts, "--encode", "rules", NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 1);
    cr_assert(strstr(r.err, "encode mode 'rules' asks for a subset plan but rule 'l0' reads L0"), "%s", r.err);
    cli_result_free(&r);

    const char *sampled = "version: 1\nrules:\n  - {name: f3, condition: {feature: 3, above: 0.5}}\n"
                          "  - {name: l0, health: {l0_outside: [1, 2]}, every: 7}\n";
    free(rules);
    rules = test_write_file(dir, "sampled.yaml", sampled, strlen(sampled));
    snprintf(alerts, sizeof alerts, "%s/sampled.jsonl", dir); /* --alerts appends */
    run_mode(sae, acts, rules, "auto", alerts,
             "encoder plan: subset of 1 of 100 latents (exact for jumprelu); every latent on 1 row in 7");
    /* the L0 rule was evaluated on sampled tokens only: positions 0, 7, 14, ... (one stream) */
    char *text = slurp(alerts);
    size_t l0_alerts = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *a = cJSON_Parse(line);
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(a, "rule")), "l0")) {
            l0_alerts++;
            cr_expect_eq((long)cJSON_GetObjectItem(a, "token")->valuedouble % 7, 0);
        }
        cJSON_Delete(a);
    }
    cr_expect_gt(l0_alerts, 0, "the sampled L0 rule should fire on this data");
    free(text), free(rules), free(sae), free(acts);
    test_rmtree(dir);
    free(dir);
}

/* Capture on demand: the alert's captured features are the strongest of the
 * window's tokens in a full encode (`saemon encode --sparse`, every latent),
 * while the run itself encodes one latent. */
Test(encode_plan, capture_attaches_the_windows_top_features, .timeout = 120)
{
    char *sae = test_shared_path("data/sae/listcomp-toy/saelens"), *acts = test_shared_path("data/sae/listcomp-toy/acts.npy");
    if (!sae || !acts)
        cr_skip_test("needs ../shared/data/sae/listcomp-toy; skipped");
    char *dir = test_tmpdir();
    const char *y = "version: 1\nrules:\n"
                    "  - {name: c, condition: {feature: 3, above: 0.5}, cooldown: 50,"
                    " capture: {features: top, count: 5, window: 4}}\n";
    char *rules = test_write_file(dir, "c.yaml", y, strlen(y));
    char alerts[4096], sparse[4096];
    snprintf(alerts, sizeof alerts, "%s/a.jsonl", dir);
    snprintf(sparse, sizeof sparse, "%s/f.jsonl", dir);
    run_mode(sae, acts, rules, "auto", alerts, "encoder plan: subset of 1 of 100 latents");
    const char *enc_args[] = {"encode", "--sae", sae, "--input", acts, "--sparse", sparse, NULL};
    cli_result r = cli_run(enc_args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    /* dense copy of the full features: [tokens][100] */
    enum { D = 100, MAXT = 4096 };
    static float full[MAXT][D];
    memset(full, 0, sizeof full);
    char *text = slurp(sparse);
    size_t n_tok = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *t = cJSON_Parse(line);
        long tok = (long)cJSON_GetObjectItem(t, "token")->valuedouble;
        cr_assert(tok >= 0 && tok < MAXT);
        cJSON *ix = cJSON_GetObjectItem(t, "index"), *v = cJSON_GetObjectItem(t, "value");
        for (int i = 0; i < cJSON_GetArraySize(ix); i++)
            full[tok][cJSON_GetArrayItem(ix, i)->valueint] = (float)cJSON_GetArrayItem(v, i)->valuedouble;
        n_tok = (size_t)tok + 1 > n_tok ? (size_t)tok + 1 : n_tok;
        cJSON_Delete(t);
    }
    free(text);
    text = slurp(alerts);
    size_t checked = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *a = cJSON_Parse(line);
        long tok = (long)cJSON_GetObjectItem(a, "token")->valuedouble;
        cJSON *cap = cJSON_GetObjectItem(a, "captured");
        cr_assert_not_null(cap, "%s", line);
        cr_assert_eq(cJSON_GetObjectItem(cap, "window")->valueint, 4);
        float best[D] = {0};
        for (long t = tok - 3 < 0 ? 0 : tok - 3; t <= tok; t++)
            for (int j = 0; j < D; j++)
                best[j] = full[t][j] > best[j] ? full[t][j] : best[j];
        cJSON *fs = cJSON_GetObjectItem(cap, "features");
        int got = cJSON_GetArraySize(fs);
        int active = 0;
        for (int j = 0; j < D; j++)
            active += best[j] > 0;
        cr_assert_eq(got, active < 5 ? active : 5, "%s", line);
        float prev = INFINITY;
        for (int i = 0; i < got; i++) {
            cJSON *f = cJSON_GetArrayItem(fs, i);
            int j = cJSON_GetObjectItem(f, "index")->valueint;
            float v = (float)cJSON_GetObjectItem(f, "value")->valuedouble;
            cr_assert_float_eq(v, best[j], 1e-6f * best[j], "token %ld feature %d", tok, j);
            cr_assert(v <= prev);
            prev = v;
            int stronger = 0; /* features above it in the full encode: exactly the ones listed before it */
            for (int k = 0; k < D; k++)
                stronger += best[k] > best[j];
            cr_assert_eq(stronger, i, "token %ld: feature %d is not the %d-th strongest", tok, j, i);
        }
        checked++;
        cJSON_Delete(a);
    }
    cr_assert_gt(checked, 3);
    free(text), free(rules), free(sae), free(acts);
    test_rmtree(dir);
    free(dir);
}
