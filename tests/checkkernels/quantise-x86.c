/* kernels/x86/screen-common.h quantises x for the int8 screens with AVX2
 * (screen_row_max_avx2, screen_i8_quantise_x_avx2). Against the plain C of
 * kernels/screen-bound.h (screen_row_max, screen_i8_quantise_x) on random
 * rows of every length up to 70 and of 768 / 2304, with ties at half an
 * integer, subnormals, the range limits, Inf and NaN: the same verdict, the
 * same max|x|, the same q and s_x, and norms that stay upper bounds (within
 * 2^-40 of the plain sums, which the 2^-20 round-up covers). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/x86/simd-avx2.h"
#include "kernels/x86/screen-common.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int failures;

static void check(const float *x, size_t n, const char *what)
{
    double m1 = -1, m2 = -1;
    const int ok1 = screen_row_max(x, n, &m1), ok2 = screen_row_max_avx2(x, n, &m2);
    if (ok1 != ok2 || (ok1 && m1 != m2)) {
        printf("FAIL %s n=%zu: row max %d %.17g vs %d %.17g\n", what, n, ok1, m1, ok2, m2);
        failures++;
        return;
    }
    if (!ok1)
        return;
    int8_t q1[2400], q2[2400];
    const screen_i8_row a = screen_i8_quantise_x(x, n, m1, q1), b = screen_i8_quantise_x_avx2(x, n, m2, q2);
    if (memcmp(q1, q2, n) || a.sx != b.sx) {
        printf("FAIL %s n=%zu: q or s_x differ\n", what, n);
        failures++;
    }
    if (fabs((double)a.x2 - (double)b.x2) > 0x1p-40 * a.x2 + 1e-300 ||
        fabs((double)a.r2 - (double)b.r2) > 0x1p-40 * a.r2 + 1e-300) {
        printf("FAIL %s n=%zu: norms %a %a vs %a %a\n", what, n, (double)a.x2, (double)a.r2, (double)b.x2,
               (double)b.r2);
        failures++;
    }
}

int main(void)
{
    if (!__builtin_cpu_supports("avx2")) {
        printf("SKIP: no AVX2\n");
        return 77;
    }
    float x[2400];
    for (size_t n = 1; n <= 70; n++)
        for (int rep = 0; rep < 30; rep++) {
            for (size_t i = 0; i < n; i++)
                x[i] = (float)((uniform() * 2 - 1) * ldexp(1.0, (int)(uniform() * 20) - 10));
            check(x, n, "random");
        }
    const size_t sizes[] = {768, 2304};
    for (size_t s = 0; s < 2; s++) {
        const size_t n = sizes[s];
        for (int rep = 0; rep < 200; rep++) {
            for (size_t i = 0; i < n; i++)
                x[i] = (float)((uniform() * 2 - 1) * 3.0);
            check(x, n, "random");
        }
        /* ties: x / s_x a half integer (s_x = 1 with max|x| = 127) */
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((double)((long)(uniform() * 254) - 127) + 0.5);
        x[0] = 127.0f;
        check(x, n, "ties");
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(uniform() * 1e-38); /* subnormal and tiny: out of range, fp32 path */
        check(x, n, "tiny");
        x[n / 3] = 1.0f;
        check(x, n, "tiny with one");
        x[n - 1] = 0x1p49f;
        check(x, n, "near the top of the range");
        x[n - 1] = 0x1p51f;
        check(x, n, "above the range");
        x[n - 1] = INFINITY;
        check(x, n, "inf");
        x[n - 1] = 1.0f, x[n / 2] = NAN;
        check(x, n, "nan");
        memset(x, 0, n * sizeof *x);
        check(x, n, "zero row");
    }
    if (failures)
        return 1;
    printf("quantise-x86: AVX2 quantisation equals screen-bound.h's\n");
    return 0;
}
