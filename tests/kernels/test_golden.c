/* Golden tests: saemon's encode against an independent numpy reference
 * (tests/golden/make_golden.py, float64), for every kernel variant that runs
 * on this CPU:
 *   - generated dictionaries covering every architecture, storage dtype,
 *     normalisation, b_dec option, hook_z, old cfg layout and folded scaling;
 *   - the real trained SAEs in ../shared/data/sae with their real activations.
 * Active sets must be identical except for latents whose pre-activation lies
 * within BOUNDARY_TOL of the decision boundary (threshold or k-th value);
 * active values must agree to a relative 1e-5 (plus a 1e-6 absolute floor for
 * values that are themselves near zero). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/kernel.h"
#include "saemon/saemon.h"
#include "tests/support/support.h"

#define REL_TOL 1e-5
#define ABS_FLOOR 1e-6
#define BOUNDARY_TOL 1e-5

typedef struct compare_stats {
    size_t tokens, active, excused;
    double max_rel, max_abs;
    double max_rel_above_1e3; /* relative error on values >= 1e-3 */
} compare_stats;

static int run_python(const char *args)
{
    const char *py = getenv("SAEMON_PYTHON");
    const char *src = getenv("SAEMON_SOURCE_DIR");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "'%s' '%s/tests/golden/make_golden.py' %s", py ? py : "/usr/bin/python3",
                       src ? src : ".", args) > 0);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static int have_numpy(void)
{
    const char *py = getenv("SAEMON_PYTHON");
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' -c 'import numpy' 2>/dev/null", py ? py : "/usr/bin/python3") < 0)
        return 0;
    int ok = system(cmd) == 0;
    free(cmd);
    return ok;
}

static char *join(const char *a, const char *b)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", a, b) > 0);
    return p;
}

/* Encode acts_path with the dictionary in sae_dir using `variant`, compare with
 * expected.npy / margin.npy in ref_dir. */
static void compare_case(const char *sae_dir, const char *acts_path, const char *ref_dir, const char *variant,
                         compare_stats *cs)
{
    saemon_error err = {0};
    saemon_dict *dict = NULL;
    cr_assert_eq(saemon_dict_open(sae_dir, &dict, &err), SAEMON_OK, "%s: %s", sae_dir, err.message);
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    saemon_npy acts = {0}, expected = {0}, margin = {0};
    char *exp_path = join(ref_dir, "expected.npy"), *margin_path = join(ref_dir, "margin.npy");
    cr_assert_eq(saemon_npy_open(acts_path, &acts, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_npy_open(exp_path, &expected, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_npy_open(margin_path, &margin, &err), SAEMON_OK, "%s", err.message);
    size_t n_rows, n_streams, tps;
    cr_assert_eq(saemon_npy_as_rows(&acts, info->d_in, info->reshape_hook_z, &n_rows, &n_streams, &tps, &err),
                 SAEMON_OK, "%s", err.message);
    const size_t d_sae = info->d_sae;
    cr_assert_eq(expected.ndim, 2);
    cr_assert_eq(expected.shape[0], n_rows, "%s: expected.npy has %zu rows, acts %zu", sae_dir,
                 expected.shape[0], n_rows);
    cr_assert_eq(expected.shape[1], d_sae);
    cr_assert_eq(margin.shape[0] * margin.shape[1], n_rows * d_sae);

    saemon_encoder *enc = NULL;
    saemon_encoder_options eo = {.variant = variant, .max_batch = 64};
    cr_assert_eq(saemon_encoder_create(dict, &eo, &enc, &err), SAEMON_OK, "%s", err.message);
    float *dense = malloc(d_sae * sizeof(float));
    for (size_t done = 0; done < n_rows;) {
        size_t m = n_rows - done < 64 ? n_rows - done : 64;
        const saemon_features *f;
        cr_assert_eq(saemon_encoder_encode(enc, acts.data + done * info->d_in, m, &f, &err), SAEMON_OK);
        for (size_t t = 0; t < m; t++) {
            const size_t row = done + t;
            memset(dense, 0, d_sae * sizeof(float));
            for (size_t e = f->offsets[t]; e < f->offsets[t + 1]; e++) {
                cr_assert_lt(f->index[e], d_sae);
                if (e > f->offsets[t])
                    cr_assert_gt(f->index[e], f->index[e - 1], "indices must ascend");
                cr_assert_gt(f->value[e], 0.0f);
                dense[f->index[e]] = f->value[e];
            }
            for (size_t j = 0; j < d_sae; j++) {
                const double ref = expected.data[row * d_sae + j], got = dense[j];
                const double mg = margin.data[row * d_sae + j];
                if ((ref > 0) != (got > 0)) {
                    cr_assert(mg < BOUNDARY_TOL,
                              "%s [%s] row %zu latent %zu: reference %.9g, saemon %.9g, margin %.3g",
                              sae_dir, variant, row, j, ref, got, mg);
                    cs->excused++;
                    continue;
                }
                if (ref <= 0)
                    continue;
                const double diff = fabs(got - ref);
                cr_assert(diff <= REL_TOL * fabs(ref) + ABS_FLOOR,
                          "%s [%s] row %zu latent %zu: reference %.9g, saemon %.9g (rel %.3g)", sae_dir, variant,
                          row, j, ref, got, diff / fabs(ref));
                cs->active++;
                if (diff / fabs(ref) > cs->max_rel)
                    cs->max_rel = diff / fabs(ref);
                if (diff > cs->max_abs)
                    cs->max_abs = diff;
                if (fabs(ref) >= 1e-3 && diff / fabs(ref) > cs->max_rel_above_1e3)
                    cs->max_rel_above_1e3 = diff / fabs(ref);
            }
            cs->tokens++;
        }
        done += m;
    }
    free(dense);
    saemon_encoder_destroy(enc);
    saemon_npy_close(&acts);
    saemon_npy_close(&expected);
    saemon_npy_close(&margin);
    free(exp_path);
    free(margin_path);
    saemon_dict_close(dict);
}

/* Every variant that runs here; scalar first. */
static size_t runnable_variants(const char **names, size_t max)
{
    size_t n, k = 0;
    const saemon_kernel *const *all = saemon_kernels_all(&n);
    for (size_t i = 0; i < n && k < max; i++)
        if ((all[i]->cpu_features & ~saemon_cpu_features()) == 0)
            names[k++] = all[i]->name;
    return k;
}

static void report(const char *what, const char *variant, const compare_stats *cs)
{
    cr_log_info("%s [%s]: %zu tokens, %zu active values, max rel err %.3g (%.3g on values >= 1e-3), "
                "max abs err %.3g, %zu near-boundary flips",
                what, variant, cs->tokens, cs->active, cs->max_rel, cs->max_rel_above_1e3, cs->max_abs, cs->excused);
}

Test(golden, generated_dictionaries_match_numpy, .timeout = 600)
{
    if (!have_numpy())
        cr_skip_test("numpy not importable by $SAEMON_PYTHON (install python3-numpy)");
    char *tmp = test_tmpdir();
    char *args = NULL;
    cr_assert(asprintf(&args, "generate '%s'", tmp) > 0);
    cr_assert_eq(run_python(args), 0, "make_golden.py generate failed");
    const char *variants[16];
    size_t nv = runnable_variants(variants, 16);
    DIR *d = opendir(tmp);
    cr_assert_not_null(d);
    struct dirent *de;
    size_t cases = 0;
    compare_stats total[16] = {0};
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *dir = join(tmp, de->d_name), *acts = join(dir, "acts.npy");
        for (size_t v = 0; v < nv; v++)
            compare_case(dir, acts, dir, variants[v], &total[v]);
        free(dir);
        free(acts);
        cases++;
    }
    closedir(d);
    cr_assert_geq(cases, 20, "expected the generator to write at least 20 cases, got %zu", cases);
    for (size_t v = 0; v < nv; v++)
        report("generated", variants[v], &total[v]);
    test_rmtree(tmp);
    free(tmp);
    free(args);
}

/* Real SAELens dictionaries that come with recorded activations. */
static const struct { const char *sae, *acts; } real_cases[] = {
    {"data/sae/villes-transformer/saelens", "data/sae/villes-transformer/acts.npy"},
    {"data/sae/villes-transformer/saelens-d_model64", "data/sae/villes-transformer/acts_d_model64.npy"},
    {"data/sae/resid-verif-shakespeare/saelens", "data/sae/resid-verif-shakespeare/acts.npy"},
    {"data/sae/listcomp-toy/saelens", "data/sae/listcomp-toy/acts.npy"},
    {"data/sae/listcomp-toy/saelens-k4", "data/sae/listcomp-toy/acts.npy"},
    {"data/sae/pasttense-mlp/saelens", "data/sae/pasttense-mlp/acts.npy"},
};

Test(golden, real_saes_match_numpy, .timeout = 600)
{
    char *root = test_shared_path("data/sae");
    if (!root)
        cr_skip_test("../shared/data/sae not present (set SAEMON_SHARED_DIR): real-SAE golden test skipped");
    if (!have_numpy())
        cr_skip_test("numpy not importable by $SAEMON_PYTHON (install python3-numpy)");
    const char *variants[16];
    size_t nv = runnable_variants(variants, 16);
    for (size_t c = 0; c < sizeof real_cases / sizeof real_cases[0]; c++) {
        char *sae = test_shared_path(real_cases[c].sae), *acts = test_shared_path(real_cases[c].acts);
        if (!sae || !acts) {
            cr_log_warn("%s missing, skipped", real_cases[c].sae);
            free(sae), free(acts);
            continue;
        }
        char *tmp = test_tmpdir(), *args = NULL;
        cr_assert(asprintf(&args, "reference '%s' '%s' '%s'", sae, acts, tmp) > 0);
        cr_assert_eq(run_python(args), 0, "make_golden.py reference failed for %s", sae);
        for (size_t v = 0; v < nv; v++) {
            compare_stats cs = {0};
            compare_case(sae, acts, tmp, variants[v], &cs);
            cr_assert_gt(cs.active, 0, "%s: no active features at all", sae);
            report(real_cases[c].sae, variants[v], &cs);
        }
        test_rmtree(tmp);
        free(tmp), free(args), free(sae), free(acts);
    }
    free(root);
}
