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
#include "tests/support/golden_compare.h"
#include "tests/support/support.h"

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

Test(golden, generated_dictionaries_match_numpy, .timeout = 600)
{
    if (!golden_have_numpy())
        cr_skip_test("numpy not importable by $SAEMON_PYTHON (install python3-numpy)");
    char *tmp = test_tmpdir();
    char *args = NULL;
    cr_assert(asprintf(&args, "generate '%s'", tmp) > 0);
    cr_assert_eq(golden_run_python("make_golden.py", args), 0, "make_golden.py generate failed");
    const char *variants[16];
    size_t nv = runnable_variants(variants, 16);
    DIR *d = opendir(tmp);
    cr_assert_not_null(d);
    struct dirent *de;
    size_t cases = 0;
    golden_stats total[16] = {0};
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *dir = golden_join(tmp, de->d_name), *acts = golden_join(dir, "acts.npy");
        for (size_t v = 0; v < nv; v++)
            golden_compare_case(dir, acts, dir, variants[v], &total[v]);
        free(dir);
        free(acts);
        cases++;
    }
    closedir(d);
    cr_assert_geq(cases, 20, "expected the generator to write at least 20 cases, got %zu", cases);
    for (size_t v = 0; v < nv; v++)
        golden_report("generated", variants[v], &total[v]);
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
    if (!golden_have_numpy())
        cr_skip_test("numpy not importable by $SAEMON_PYTHON (install python3-numpy)");
    const char *variants[16];
    size_t nv = runnable_variants(variants, 16);
    for (size_t c = 0; c < sizeof real_cases / sizeof real_cases[0]; c++) {
        char *sae = test_shared_path(real_cases[c].sae), *acts = test_shared_path(real_cases[c].acts);
        if (!sae || !acts) {
            cr_log_info("%s missing, skipped", real_cases[c].sae);
            free(sae), free(acts);
            continue;
        }
        char *tmp = test_tmpdir(), *args = NULL;
        cr_assert(asprintf(&args, "reference '%s' '%s' '%s'", sae, acts, tmp) > 0);
        cr_assert_eq(golden_run_python("make_golden.py", args), 0, "make_golden.py reference failed for %s", sae);
        for (size_t v = 0; v < nv; v++) {
            golden_stats cs = {0};
            golden_compare_case(sae, acts, tmp, variants[v], &cs);
            cr_assert_gt(cs.active, 0, "%s: no active features at all", sae);
            golden_report(real_cases[c].sae, variants[v], &cs);
        }
        test_rmtree(tmp);
        free(tmp), free(args), free(sae), free(acts);
    }
    free(root);
}
