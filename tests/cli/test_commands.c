/* saemon run / encode / inspect / check end to end on a real trained SAE
 * (../shared/data/sae/pasttense-mlp, TopK k=10, with the real activations of
 * its model). Expected alerts are derived from the independent numpy
 * reference (tests/golden/make_golden.py), not from saemon. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/saemon.h"
#include "tests/cli/cli_run.h"
#include "tests/support/support.h"

#define SAE "data/sae/pasttense-mlp/saelens"
#define ACTS "data/sae/pasttense-mlp/acts.npy"

typedef struct fixture {
    char *sae, *acts, *tmp;
    saemon_npy expected, margin; /* [n, d_sae] from numpy */
} fixture;

static int fixture_open(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->sae = test_shared_path(SAE);
    fx->acts = test_shared_path(ACTS);
    if (!fx->sae || !fx->acts)
        return 0;
    fx->tmp = test_tmpdir();
    char *cmd = NULL;
    const char *py = getenv("SAEMON_PYTHON"), *src = getenv("SAEMON_SOURCE_DIR");
    cr_assert(asprintf(&cmd, "'%s' '%s/tests/golden/make_golden.py' reference '%s' '%s' '%s'",
                       py ? py : "/usr/bin/python3", src ? src : ".", fx->sae, fx->acts, fx->tmp) > 0);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0)
        return 0;
    char path[4096];
    saemon_error err = {0};
    snprintf(path, sizeof path, "%s/expected.npy", fx->tmp);
    cr_assert_eq(saemon_npy_open(path, &fx->expected, &err), SAEMON_OK, "%s", err.message);
    snprintf(path, sizeof path, "%s/margin.npy", fx->tmp);
    cr_assert_eq(saemon_npy_open(path, &fx->margin, &err), SAEMON_OK, "%s", err.message);
    return 1;
}

static void fixture_close(fixture *fx)
{
    saemon_npy_close(&fx->expected);
    saemon_npy_close(&fx->margin);
    test_rmtree(fx->tmp);
    free(fx->tmp), free(fx->sae), free(fx->acts);
}

#define NEED_FIXTURE(fx)                                                                                   \
    if (!fixture_open(&fx))                                                                                \
    cr_skip_test("needs ../shared/" SAE " and numpy (python3-numpy); skipped")

static char *write_text(const char *dir, const char *name, const char *text)
{
    char *p = test_write_file(dir, name, text, strlen(text));
    cr_assert_not_null(p);
    return p;
}

/* The feature active on the most tokens, and a threshold that no reference
 * value comes within 1e-3 of (so float rounding cannot move an alert). */
static void pick_feature(const fixture *fx, size_t *feature, double *threshold)
{
    const size_t n = fx->expected.shape[0], d = fx->expected.shape[1];
    size_t best = 0, best_count = 0;
    for (size_t j = 0; j < d; j++) {
        size_t c = 0;
        for (size_t t = 0; t < n; t++)
            c += fx->expected.data[t * d + j] > 0;
        if (c > best_count)
            best_count = c, best = j;
    }
    double sum = 0;
    for (size_t t = 0; t < n; t++)
        sum += fx->expected.data[t * d + best];
    double thr = sum / (double)best_count; /* mean active value */
    for (int tries = 0; tries < 100; tries++) {
        int clear = 1;
        for (size_t t = 0; t < n && clear; t++)
            clear = fabs(fx->expected.data[t * d + best] - thr) > 1e-3;
        if (clear)
            break;
        thr += 0.0037;
    }
    *feature = best;
    *threshold = thr;
}

Test(commands, run_alerts_match_numpy_reference, .timeout = 300)
{
    fixture fx;
    NEED_FIXTURE(fx);
    size_t feat;
    double thr;
    pick_feature(&fx, &feat, &thr);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "version: 1\n"
             "dictionary: {d_sae: 512}\n"
             "rules:\n"
             "  - name: busy-feature\n"
             "    severity: warning\n"
             "    condition: {feature: %zu, above: %.6f}\n"
             "    for: 2\n"
             "    cooldown: 3\n"
             "    labels: {team: test}\n",
             feat, thr);
    char *rules = write_text(fx.tmp, "rules.yaml", yaml);
    char alerts[4096];
    snprintf(alerts, sizeof alerts, "%s/alerts.jsonl", fx.tmp);
    const char *args[] = {"run", "--sae", fx.sae, "--rules", rules, "--input", fx.acts, "--alerts", alerts, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "run failed: %s", r.err);

    const size_t n = fx.expected.shape[0], d = fx.expected.shape[1];
    rule_oracle o = {.for_tokens = 2, .cooldown = 3, .armed = 1, .last_fire = -1};
    char *expect = calloc(n, 1);
    size_t n_expect = 0;
    for (size_t t = 0; t < n; t++)
        n_expect += expect[t] = (char)rule_oracle_step(&o, fx.expected.data[t * d + feat] > thr, (long)t);
    cr_assert_gt(n_expect, 0, "the chosen rule should fire on real data");

    char *jsonl = slurp(alerts);
    size_t got = 0;
    for (char *line = strtok(jsonl, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *a = cJSON_Parse(line);
        cr_assert_not_null(a, "not JSON: %s", line);
        long t = (long)cJSON_GetObjectItem(a, "token")->valuedouble;
        cr_assert(t >= 0 && (size_t)t < n && expect[t], "alert at token %ld not expected by the reference", t);
        cJSON *f0 = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "features"), 0);
        cr_assert_eq((size_t)cJSON_GetObjectItem(f0, "index")->valueint, feat);
        double v = cJSON_GetObjectItem(f0, "value")->valuedouble;
        cr_assert(fabs(v - fx.expected.data[t * d + feat]) <= 1e-5 * fabs(v) + 1e-6, "value %g vs reference %g", v,
                  fx.expected.data[t * d + feat]);
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "labels"), "team")), "test");
        got++;
        cJSON_Delete(a);
    }
    cr_assert_eq(got, n_expect, "got %zu alerts, the reference calls for %zu", got, n_expect);
    free(jsonl), free(expect), free(rules);
    cli_result_free(&r);
    fixture_close(&fx);
}

Test(commands, encode_writes_dense_and_sparse_features, .timeout = 300)
{
    fixture fx;
    NEED_FIXTURE(fx);
    char out[4096], sparse[4096];
    snprintf(out, sizeof out, "%s/features.npy", fx.tmp);
    snprintf(sparse, sizeof sparse, "%s/features.jsonl", fx.tmp);
    const char *args[] = {"encode", "--sae", fx.sae, "--input", fx.acts, "--output", out, "--sparse", sparse, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "encode failed: %s", r.err);
    saemon_npy f = {0};
    saemon_error err = {0};
    cr_assert_eq(saemon_npy_open(out, &f, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(f.ndim, 2);
    cr_assert_eq(f.shape[0], fx.expected.shape[0]);
    cr_assert_eq(f.shape[1], fx.expected.shape[1]);
    size_t cells = f.shape[0] * f.shape[1], flips = 0;
    for (size_t i = 0; i < cells; i++) {
        double a = f.data[i], b = fx.expected.data[i];
        if ((a > 0) != (b > 0)) {
            cr_assert_lt(fx.margin.data[i], 1e-5, "cell %zu: saemon %g, reference %g", i, a, b);
            flips++;
            continue;
        }
        cr_assert(fabs(a - b) <= 1e-5 * fabs(b) + 1e-6, "cell %zu: saemon %.9g, reference %.9g", i, a, b);
    }
    char *jsonl = slurp(sparse);
    size_t lines = 0;
    for (char *line = strtok(jsonl, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o);
        cr_assert_eq((size_t)cJSON_GetObjectItem(o, "token")->valuedouble, lines);
        cr_assert_leq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "index")), 10, "TopK k=10 emits at most 10");
        cJSON_Delete(o);
        lines++;
    }
    cr_assert_eq(lines, f.shape[0]);
    free(jsonl);
    saemon_npy_close(&f);
    cli_result_free(&r);
    fixture_close(&fx);
}

static void sha256_file_hex(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[65536], md[32];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, got);
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

Test(commands, inspect_reports_shapes_and_checksum)
{
    char *sae = test_shared_path(SAE);
    if (!sae)
        cr_skip_test("needs ../shared/" SAE);
    const char *args[] = {"inspect", sae, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "topk"), "%s", r.out);
    cr_assert(strstr(r.out, "d_in           256"), "%s", r.out);
    cr_assert(strstr(r.out, "d_sae          512"), "%s", r.out);
    char weights[4096], hex[65];
    snprintf(weights, sizeof weights, "%s/sae_weights.safetensors", sae);
    sha256_file_hex(weights, hex);
    cr_assert(strstr(r.out, hex), "inspect must print the weights' SHA-256 %s:\n%s", hex, r.out);
    cli_result_free(&r);
    free(sae);
}

Test(commands, check_reports_line_and_column)
{
    char *dir = test_tmpdir();
    char *bad = write_text(dir, "bad.yaml",
                           "version: 1\n"
                           "rules:\n"
                           "  - name: typo\n"
                           "    condition: {feature: 3, abvoe: 1.0}\n");
    const char *args[] = {"check", bad, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 1);
    char where[4200];
    snprintf(where, sizeof where, "%s:4:", bad);
    cr_assert(strstr(r.err, where), "error must point at line 4: %s", r.err);
    cr_assert(strstr(r.err, "abvoe"), "error must name the unknown key: %s", r.err);
    cli_result_free(&r);

    char *good = write_text(dir, "good.yaml",
                            "rules:\n"
                            "  - name: ok\n"
                            "    condition: {feature: 511, above: 1.0}\n");
    const char *args2[] = {"check", good, NULL};
    r = cli_run(args2);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);

    char *sae = test_shared_path(SAE);
    if (sae) {
        char *oob = write_text(dir, "oob.yaml",
                               "rules:\n"
                               "  - name: out-of-range\n"
                               "    condition: {feature: 512, above: 1.0}\n");
        const char *args3[] = {"check", oob, "--sae", sae, NULL};
        r = cli_run(args3);
        cr_assert_eq(r.exit_code, 1, "feature 512 of a 512-latent dictionary must be refused");
        cr_assert(strstr(r.err, ":3:"), "error must point at line 3: %s", r.err);
        cli_result_free(&r);
        const char *args4[] = {"check", good, "--sae", sae, NULL};
        r = cli_run(args4);
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cli_result_free(&r);
        free(oob);
        free(sae);
    }
    free(bad), free(good);
    test_rmtree(dir);
    free(dir);
}

Test(commands, run_refuses_wrong_d_in_and_wrong_pin)
{
    char *sae = test_shared_path(SAE);
    char *other = test_shared_path("data/sae/villes-transformer/acts.npy");
    if (!sae || !other)
        cr_skip_test("needs ../shared/data/sae");
    char *dir = test_tmpdir();
    char *rules = write_text(dir, "r.yaml", "rules:\n  - name: r\n    condition: {feature: 1, above: 1.0}\n");
    const char *args[] = {"run", "--sae", sae, "--rules", rules, "--input", other, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 1);
    cr_assert(strstr(r.err, "256"), "message must name the dictionary's d_in: %s", r.err);
    cli_result_free(&r);
    char *pinned = write_text(dir, "p.yaml",
                              "dictionary: {d_sae: 1024}\nrules:\n  - name: r\n    condition: {feature: 1, above: 1.0}\n");
    char *acts = test_shared_path(ACTS);
    const char *args2[] = {"run", "--sae", sae, "--rules", pinned, "--input", acts, NULL};
    r = cli_run(args2);
    cr_assert_eq(r.exit_code, 1, "a rule file pinned to another dictionary must refuse to start");
    cr_assert(strstr(r.err, "1024"), "%s", r.err);
    cli_result_free(&r);
    free(rules), free(pinned), free(acts), free(sae), free(other);
    test_rmtree(dir);
    free(dir);
}
