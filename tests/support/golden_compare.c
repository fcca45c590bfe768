/* Comparing saemon's encode with a numpy reference (expected.npy +
 * margin.npy, tests/golden/README.md): the rule both golden tests use. */
#include "tests/support/golden_compare.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/saemon.h"

#define REL_TOL 1e-5
#define ABS_FLOOR 1e-6
#define BOUNDARY_TOL 1e-5


int golden_run_python(const char *script, const char *args)
{
    const char *py = getenv("SAEMON_PYTHON");
    const char *src = getenv("SAEMON_SOURCE_DIR");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "'%s' '%s/tests/golden/%s' %s", py ? py : "/usr/bin/python3",
                       src ? src : ".", script, args) > 0);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

bool golden_have_numpy(void)
{
    const char *py = getenv("SAEMON_PYTHON");
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' -c 'import numpy' 2>/dev/null", py ? py : "/usr/bin/python3") < 0)
        return 0;
    int ok = system(cmd) == 0;
    free(cmd);
    return ok;
}

char *golden_join(const char *a, const char *b)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", a, b) > 0);
    return p;
}

/* Encode acts_path with the dictionary in sae_dir using `variant`, compare with
 * expected.npy / margin.npy in ref_dir. */
void golden_compare_case(const char *sae_dir, const char *acts_path, const char *ref_dir, const char *variant,
                         golden_stats *cs)
{
    const char *vname = variant ? variant : "default";
    saemon_error err = {0};
    saemon_dict *dict = NULL;
    cr_assert_eq(saemon_dict_open(sae_dir, &dict, &err), SAEMON_OK, "%s: %s", sae_dir, err.message);
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    saemon_npy acts = {0}, expected = {0}, margin = {0};
    char *exp_path = golden_join(ref_dir, "expected.npy"), *margin_path = golden_join(ref_dir, "margin.npy");
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
                              sae_dir, vname, row, j, ref, got, mg);
                    cs->excused++;
                    continue;
                }
                if (ref <= 0)
                    continue;
                const double diff = fabs(got - ref);
                cr_assert(diff <= REL_TOL * fabs(ref) + ABS_FLOOR,
                          "%s [%s] row %zu latent %zu: reference %.9g, saemon %.9g (rel %.3g)", sae_dir, vname,
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

void golden_report(const char *what, const char *variant, const golden_stats *cs)
{
    cr_log_info("%s [%s]: %zu tokens, %zu active values, max rel err %.3g (%.3g on values >= 1e-3), "
                "max abs err %.3g, %zu near-boundary flips",
                what, variant ? variant : "default", cs->tokens, cs->active, cs->max_rel, cs->max_rel_above_1e3, cs->max_abs, cs->excused);
}
