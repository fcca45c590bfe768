/* Per-core peaks of the AVX2 instructions saemon's AVX2 kernels use, and a
 * ymm streaming read: the roofline of an AVX2-only CPU (or of the AVX2
 * family when SAEMON_ISA forces it). Compiled with -mavx2 -mfma; only
 * called when the CPU reports AVX2 and FMA. Same 12-chain scheme as
 * roofline_avx512.c. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "roofline_peak.h"

double bench_peak_fma_f32_avx2(double seconds)
{
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
#define DECL(c) __m256 acc##c = _mm256_set1_ps((float)(c));
#define STEP(c) acc##c = _mm256_fmadd_ps(acc##c, a, b);
    PEAK_LOOP()
#undef DECL
#undef STEP
    /* 8 lanes x (mul + add) per instruction. */
    return (double)iters * CHAINS * 8 * 2 / t * 1e-9;
}

double bench_peak_i8_avx2(double seconds)
{
    /* The int8 kernel's inner step: vpmaddwd on int16-widened int8 (16
     * products summed in pairs) and vpaddd into the int32 accumulator. */
    __m256i a = _mm256_set1_epi16(3), b = _mm256_set1_epi16(5);
#define DECL(c) __m256i acc##c = _mm256_set1_epi32(c);
#define STEP(c) acc##c = _mm256_add_epi32(acc##c, _mm256_madd_epi16(a, b));
    PEAK_LOOP()
#undef DECL
#undef STEP
    /* 16 products x (mul + add) per vpmaddwd. */
    return (double)iters * CHAINS * 16 * 2 / t * 1e-9;
}

uint64_t bench_read_avx2(const void *buf, size_t bytes)
{
    const char *p = buf;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    __m256i s = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(s, 0) ^ (uint64_t)_mm256_extract_epi64(s, 3);
}
