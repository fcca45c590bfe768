#include "runtime/preprocess.h"

#include <math.h>
#include <string.h>

#include "kernels/kernel.h"

/* torch.Tensor.std default: unbiased (N − 1); SAELens adds eps to the std. */
#define LAYER_NORM_EPS 1e-5

/* The row's sums in double: four accumulators, lane k taking elements
 * k, k+4, k+8, … in order, the remainder going to lane 0, combined as
 * (l0 + l1) + (l2 + l3). The AVX2 path below keeps exactly this order (its
 * four double lanes are the four accumulators), so both give the same bits.
 * A float squared is exact in double, and cannot overflow it, so the sum of
 * squares is finite exactly when every element is. `sum` only when asked. */
typedef struct row_sums {
    double sum, sumsq;
} row_sums;

static row_sums sums_scalar(const float *in, size_t d_in, int want_sum)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    size_t i = 0;
    for (; i + 4 <= d_in; i += 4) {
        double a = in[i], b = in[i + 1], c = in[i + 2], d = in[i + 3];
        if (want_sum)
            s0 += a, s1 += b, s2 += c, s3 += d;
        q0 += a * a, q1 += b * b, q2 += c * c, q3 += d * d;
    }
    for (; i < d_in; i++) {
        double v = in[i];
        s0 += v;
        q0 += v * v;
    }
    return (row_sums){(s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)};
}

/* out[j] = (float)((in[j] − shift) · scale), each element on its own. */
static void apply_scalar(const float *in, float *out, size_t d_in, double shift, double scale)
{
    for (size_t j = 0; j < d_in; j++)
        out[j] = (float)(((double)in[j] - shift) * scale);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* "avx2" without "fma": the product and the add stay two roundings' worth
 * of instructions, as in the scalar code (a float squared is exact in
 * double, so an FMA would give the same bits, but the add alone is the
 * shorter chain). */
#define AVX2 __attribute__((target("avx2")))

AVX2 static row_sums sums_avx2(const float *in, size_t d_in, int want_sum)
{
    __m256d s = _mm256_setzero_pd(), q = _mm256_setzero_pd();
    size_t i = 0;
    if (want_sum) {
        for (; i + 4 <= d_in; i += 4) {
            const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(in + i));
            s = _mm256_add_pd(s, v);
            q = _mm256_add_pd(q, _mm256_mul_pd(v, v));
        }
    } else {
        for (; i + 4 <= d_in; i += 4) {
            const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(in + i));
            q = _mm256_add_pd(q, _mm256_mul_pd(v, v));
        }
    }
    double sl[4], ql[4];
    _mm256_storeu_pd(sl, s);
    _mm256_storeu_pd(ql, q);
    for (; i < d_in; i++) {
        double v = in[i];
        sl[0] += v;
        ql[0] += v * v;
    }
    return (row_sums){(sl[0] + sl[1]) + (sl[2] + sl[3]), (ql[0] + ql[1]) + (ql[2] + ql[3])};
}

AVX2 static void apply_avx2(const float *in, float *out, size_t d_in, double shift, double scale)
{
    const __m256d sh = _mm256_set1_pd(shift), sc = _mm256_set1_pd(scale);
    size_t j = 0;
    for (; j + 4 <= d_in; j += 4) {
        const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(in + j));
        _mm_storeu_ps(out + j, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(v, sh), sc)));
    }
    for (; j < d_in; j++)
        out[j] = (float)(((double)in[j] - shift) * scale);
}
#define HAVE_AVX2_PATH 1
#endif

saemon_row_stats saemon_preprocess_row(const float *in, float *out, size_t d_in, saemon_norm norm, uint32_t cpu)
{
    saemon_row_stats st = {0};
    const int want_sum = norm == SAEMON_NORM_LAYER_NORM;
    row_sums rs;
#ifdef HAVE_AVX2_PATH
    const int avx2 = (cpu & (SAEMON_CPU_AVX2 | SAEMON_CPU_AVX512F)) != 0;
    rs = avx2 ? sums_avx2(in, d_in, want_sum) : sums_scalar(in, d_in, want_sum);
#else
    (void)cpu;
    rs = sums_scalar(in, d_in, want_sum);
#endif
    const double sum = rs.sum, sumsq = rs.sumsq;
    st.nonfinite = !isfinite(sumsq);
    st.input_norm = (float)sqrt(sumsq);

    double shift = 0.0, scale = 1.0;
    if (norm == SAEMON_NORM_CONSTANT_NORM_RESCALE) {
        scale = sqrt((double)d_in) / sqrt(sumsq);
    } else if (norm == SAEMON_NORM_LAYER_NORM) {
        shift = sum / (double)d_in;
        double var = 0.0; /* one chain, in order: (c·c rounded) added */
        for (size_t i = 0; i < d_in; i++) {
            double c = in[i] - shift;
            var += c * c;
        }
        var /= (double)d_in - 1.0;
        scale = 1.0 / (sqrt(var) + LAYER_NORM_EPS);
    }
    st.shift = shift;
    st.scale = scale;
    if (norm == SAEMON_NORM_NONE) { /* (x − 0)·1 in double rounds back to x */
        memcpy(out, in, d_in * sizeof *out);
        return st;
    }
#ifdef HAVE_AVX2_PATH
    if (avx2) {
        apply_avx2(in, out, d_in, shift, scale);
        return st;
    }
#endif
    apply_scalar(in, out, d_in, shift, scale);
    return st;
}
