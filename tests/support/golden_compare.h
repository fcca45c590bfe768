/* Comparing saemon's encode with a numpy golden reference (expected.npy,
 * margin.npy written by the tests/golden scripts). Active sets must be identical
 * except for latents within GOLDEN_BOUNDARY_TOL of their decision boundary;
 * active values agree to a relative 1e-5 plus a 1e-6 absolute floor. */
#ifndef SAEMON_TEST_GOLDEN_COMPARE_H
#define SAEMON_TEST_GOLDEN_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct golden_stats {
    size_t tokens, active, excused;
    double max_rel, max_abs;
    double max_rel_above_1e3; /* relative error on values >= 1e-3 */
} golden_stats;

/* Run tests/golden/<script> with `args` under $SAEMON_PYTHON; returns system()'s status. */
int golden_run_python(const char *script, const char *args);
bool golden_have_numpy(void);
char *golden_join(const char *a, const char *b);

/* Encode acts_path with the dictionary in sae_dir (kernel `variant`, NULL for
 * the default) and compare with ref_dir/expected.npy and margin.npy. */
void golden_compare_case(const char *sae_dir, const char *acts_path, const char *ref_dir,
                         const char *variant, golden_stats *cs);
void golden_report(const char *what, const char *variant, const golden_stats *cs);

#endif
