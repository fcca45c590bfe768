/* The vector vocabulary of the generic x86 kernel bodies, AVX2 + FMA
 * instantiation: one vector = 8 fp32 lanes; masks are bit sets, turned into
 * lane masks where an instruction needs one (see simd-avx512.h). */
#ifndef SAEMON_X86_SIMD_H
#define SAEMON_X86_SIMD_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define VL 8 /* fp32 lanes per vector = latents per panel */
typedef __m256 vf;
typedef __m256i vi;
typedef uint32_t vmask;

static inline __m256i v_lanes_of(vmask m)
{
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bits), bits);
}
static inline vmask v_bits_of(__m256 lanes) { return (vmask)_mm256_movemask_ps(lanes); }

static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_set1(float a) { return _mm256_set1_ps(a); }
static inline vf v_load(const float *p) { return _mm256_load_ps(p); }
static inline vf v_loadu(const float *p) { return _mm256_loadu_ps(p); }
/* Lanes outside m read as 0 (vmaskmovps does not touch them). */
static inline vf v_load_mask(vmask m, const float *p)
{
    return m == 0xff ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, v_lanes_of(m));
}
static inline void v_storeu(float *p, vf a) { _mm256_storeu_ps(p, a); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline float v_reduce_add(vf a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline vmask v_gt(vmask m, vf a, vf b) { return m & v_bits_of(_mm256_cmp_ps(a, b, _CMP_GT_OQ)); }
static inline vmask v_nlt(vmask m, vf a, vf b) { return m & v_bits_of(_mm256_cmp_ps(a, b, _CMP_NLT_UQ)); }
static inline vmask v_nle(vmask m, vf a, vf b) { return m & v_bits_of(_mm256_cmp_ps(a, b, _CMP_NLE_UQ)); }
static inline vmask v_unord(vf a, vf b) { return v_bits_of(_mm256_cmp_ps(a, b, _CMP_UNORD_Q)); }

/* Store the lanes of m of v, then of base + lane, packed at val/ix (few
 * lanes are ever active, so a bit loop beats a permute table). val may be NULL. */
static inline void v_compress_store(vmask m, vf v, float *val, uint32_t base, uint32_t *ix)
{
    float lane[VL];
    if (val)
        _mm256_storeu_ps(lane, v);
    for (unsigned n = 0; m; m &= m - 1, n++) {
        unsigned l = (unsigned)__builtin_ctz(m);
        if (val)
            val[n] = lane[l];
        ix[n] = base + l;
    }
}

#endif
