/* Per-core peak throughput of the AVX-512 instructions saemon's kernels use,
 * and a zmm streaming read. Compiled with -mavx512f -mavx512bf16
 * -mavx512vnni; only called after the CPU reported those features.
 *
 * Each loop keeps 12 independent accumulator chains so that the FMA/dot
 * latency (4-6 cycles) is hidden behind 2 issue ports. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "roofline_peak.h"

double bench_peak_fma_f32(double seconds)
{
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
#define DECL(c) __m512 acc##c = _mm512_set1_ps((float)(c));
#define STEP(c) acc##c = _mm512_fmadd_ps(acc##c, a, b);
    PEAK_LOOP()
#undef DECL
#undef STEP
    /* 16 lanes x (mul + add) per instruction. */
    return (double)iters * CHAINS * 16 * 2 / t * 1e-9;
}

double bench_peak_dpbf16(double seconds)
{
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
#define DECL(c) __m512 acc##c = _mm512_set1_ps((float)(c));
#define STEP(c) acc##c = _mm512_dpbf16_ps(acc##c, a, b);
    PEAK_LOOP()
#undef DECL
#undef STEP
    /* 16 lanes x 2 bf16 pairs x (mul + add). */
    return (double)iters * CHAINS * 16 * 2 * 2 / t * 1e-9;
}

double bench_peak_vnni(double seconds)
{
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
#define DECL(c) __m512i acc##c = _mm512_set1_epi32(c);
#define STEP(c) acc##c = _mm512_dpbusd_epi32(acc##c, a, b);
    PEAK_LOOP()
#undef DECL
#undef STEP
    /* 16 lanes x 4 byte products x (mul + add). */
    return (double)iters * CHAINS * 16 * 4 * 2 / t * 1e-9;
}

uint64_t bench_read_avx512(const void *buf, size_t bytes)
{
    const char *p = buf;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
    }
    __m512i s = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(s);
}
