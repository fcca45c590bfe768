/* A sigmoid probe's scores with SLEEF's vector exp. The exp and the sigmoid
 * are computed in double and rounded once to float32: the scores then equal
 * scikit-learn's predict_proba (double) to float32 accuracy on every path,
 * which a float32 exp (1 ulp) followed by a float32 division would not
 * guarantee near 1. The vector path follows the encoder's kernel, so
 * forcing a scalar kernel (SAEMON_ISA=scalar) runs the scalar fallback. */
#include "runtime/probe_sigmoid.h"

#include <sleef.h>

#include "kernels/kernel.h"

static void sigmoid_scalar(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(1.0 / (1.0 + Sleef_exp_u10(-(double)v[i])));
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* sleef.h declares them only when the whole file is built for the ISA; the
 * functions using them are compiled for it through target attributes (GCC
 * and clang), the rest of the file stays baseline. */
#define AVX512 __attribute__((target("avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))
extern AVX512 __m512d Sleef_expd8_u10avx512f(__m512d);
extern AVX2 __m256d Sleef_expd4_u10avx2(__m256d);

AVX512 static void sigmoid_avx512(float *v, size_t n)
{
    const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d z = _mm512_cvtps_pd(_mm256_loadu_ps(v + i));
        __m512d e = Sleef_expd8_u10avx512f(_mm512_sub_pd(zero, z));
        _mm256_storeu_ps(v + i, _mm512_cvtpd_ps(_mm512_div_pd(one, _mm512_add_pd(one, e))));
    }
    if (i < n) { /* the tail through the same vector exp */
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t k = i; k < n; k++)
            buf[k - i] = v[k];
        __m512d z = _mm512_cvtps_pd(_mm256_loadu_ps(buf));
        __m512d e = Sleef_expd8_u10avx512f(_mm512_sub_pd(zero, z));
        _mm256_storeu_ps(buf, _mm512_cvtpd_ps(_mm512_div_pd(one, _mm512_add_pd(one, e))));
        for (size_t k = i; k < n; k++)
            v[k] = buf[k - i];
    }
}

AVX2 static void sigmoid_avx2(float *v, size_t n)
{
    const __m256d one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d z = _mm256_cvtps_pd(_mm_loadu_ps(v + i));
        __m256d e = Sleef_expd4_u10avx2(_mm256_sub_pd(zero, z));
        _mm_storeu_ps(v + i, _mm256_cvtpd_ps(_mm256_div_pd(one, _mm256_add_pd(one, e))));
    }
    if (i < n) { /* the tail through the same vector exp */
        float buf[4] = {0, 0, 0, 0};
        for (size_t k = i; k < n; k++)
            buf[k - i] = v[k];
        __m256d z = _mm256_cvtps_pd(_mm_loadu_ps(buf));
        __m256d e = Sleef_expd4_u10avx2(_mm256_sub_pd(zero, z));
        _mm_storeu_ps(buf, _mm256_cvtpd_ps(_mm256_div_pd(one, _mm256_add_pd(one, e))));
        for (size_t k = i; k < n; k++)
            v[k] = buf[k - i];
    }
}
#endif

void saemon_probe_sigmoid(float *v, size_t n, uint32_t cpu_features)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (cpu_features & SAEMON_CPU_AVX512F) {
        sigmoid_avx512(v, n);
        return;
    }
    if (cpu_features & SAEMON_CPU_AVX2) {
        sigmoid_avx2(v, n);
        return;
    }
#else
    (void)cpu_features;
#endif
    sigmoid_scalar(v, n);
}
