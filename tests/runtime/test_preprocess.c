/* runtime/preprocess.c: the AVX2 path (sums and scaling four doubles at a
 * time) gives bit for bit the scalar path's row statistics and output, for
 * every normalisation, row lengths with every remainder, and rows with NaN,
 * Inf, subnormals, zeros and huge values; and the scalar path still gives
 * the sums of its documented order (checked against an independent copy). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernel.h"
#include "runtime/preprocess.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float next_float(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 8.0 - 4.0);
}

static void expect_same_bits(const void *a, const void *b, size_t n, const char *what, size_t d_in, int norm)
{
    cr_expect(memcmp(a, b, n) == 0, "%s differs (d_in %zu, norm %d)", what, d_in, norm);
}

/* The order the scalar code documents, written out independently. */
static double sumsq_reference(const float *x, size_t n)
{
    double q[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            q[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++)
        q[0] += (double)x[i] * (double)x[i];
    return (q[0] + q[1]) + (q[2] + q[3]);
}

static void check_row(const float *x, size_t d_in, uint32_t vec)
{
    static const saemon_norm norms[] = {SAEMON_NORM_NONE, SAEMON_NORM_CONSTANT_NORM_RESCALE, SAEMON_NORM_LAYER_NORM};
    float a[2400], b[2400];
    for (size_t k = 0; k < sizeof norms / sizeof *norms; k++) {
        memset(a, 0x55, sizeof a), memset(b, 0x55, sizeof b);
        saemon_row_stats s = saemon_preprocess_row(x, a, d_in, norms[k], 0);
        saemon_row_stats v = saemon_preprocess_row(x, b, d_in, norms[k], vec);
        expect_same_bits(&s.input_norm, &v.input_norm, sizeof s.input_norm, "input_norm", d_in, (int)norms[k]);
        cr_expect_eq(s.nonfinite, v.nonfinite);
        expect_same_bits(&s.shift, &v.shift, sizeof s.shift, "shift", d_in, (int)norms[k]);
        expect_same_bits(&s.scale, &v.scale, sizeof s.scale, "scale", d_in, (int)norms[k]);
        expect_same_bits(a, b, d_in * sizeof *a, "output", d_in, (int)norms[k]);
        float ref = (float)sqrt(sumsq_reference(x, d_in));
        expect_same_bits(&s.input_norm, &ref, sizeof ref, "input_norm vs reference order", d_in, (int)norms[k]);
    }
}

Test(preprocess, vector_path_bit_identical)
{
    const uint32_t have = saemon_cpu_features();
    if (!(have & SAEMON_CPU_AVX2))
        cr_skip_test("no AVX2 on this CPU: only the scalar path runs");
    float x[2400];
    for (size_t d_in = 1; d_in <= 40; d_in++)
        for (int rep = 0; rep < 20; rep++) {
            for (size_t i = 0; i < d_in; i++)
                x[i] = next_float() * (rep % 3 ? 1.0f : 1e-3f);
            check_row(x, d_in, SAEMON_CPU_AVX2);
        }
    const size_t sizes[] = {768, 769, 771, 2304, 2399};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const size_t n = sizes[s];
        for (int rep = 0; rep < 50; rep++) {
            /* wide dynamic range: sums that round differently in another order */
            for (size_t i = 0; i < n; i++)
                x[i] = next_float() * ldexpf(1.0f, (int)(rng % 40) - 20);
            check_row(x, n, SAEMON_CPU_AVX2);
        }
        for (size_t i = 0; i < n; i++)
            x[i] = 0.0f;
        check_row(x, n, SAEMON_CPU_AVX2); /* zero row: NaN under constant_norm_rescale */
        x[n / 2] = 1e-45f, x[n - 1] = -1e-44f;
        check_row(x, n, SAEMON_CPU_AVX2); /* subnormals */
        x[1] = 3e38f, x[n - 2] = -3e38f;
        check_row(x, n, SAEMON_CPU_AVX2); /* huge: squares beyond float range, finite in double */
        x[n - 1] = INFINITY;
        check_row(x, n, SAEMON_CPU_AVX2);
        x[n - 1] = NAN;
        check_row(x, n, SAEMON_CPU_AVX2);
        x[0] = NAN, x[n - 1] = 1.0f;
        check_row(x, n, SAEMON_CPU_AVX2);
    }
    /* the AVX-512 kernels' bit selects the same path */
    for (size_t i = 0; i < 768; i++)
        x[i] = next_float();
    check_row(x, 768, SAEMON_CPU_AVX512F);
}
