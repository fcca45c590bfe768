/* The vector vocabulary of the generic x86 kernel bodies (x86-epilogue.h,
 * screen-common.h, screen-encode.h, f32-encode.h), AVX-512 instantiation:
 * one vector = 16 fp32 lanes, masks as plain bit sets. Include exactly one
 * simd-<isa>.h first, in a translation unit compiled with that ISA's flags
 * (the simdjson pattern: one body, one copy per ISA). */
#ifndef SAEMON_X86_SIMD_H
#define SAEMON_X86_SIMD_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define VL 16 /* fp32 lanes per vector = latents per panel */
typedef __m512 vf;
typedef __m512i vi;
typedef uint32_t vmask;

static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_set1(float a) { return _mm512_set1_ps(a); }
static inline vf v_load(const float *p) { return _mm512_load_ps(p); }
static inline vf v_loadu(const float *p) { return _mm512_loadu_ps(p); }
/* Lanes outside m read as 0 (no access). */
static inline vf v_load_mask(vmask m, const float *p) { return _mm512_maskz_loadu_ps((__mmask16)m, p); }
static inline void v_storeu(float *p, vf a) { _mm512_storeu_ps(p, a); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline float v_reduce_add(vf a) { return _mm512_reduce_add_ps(a); }
/* Compares restricted to the lanes of m. */
static inline vmask v_gt(vmask m, vf a, vf b) { return _mm512_mask_cmp_ps_mask((__mmask16)m, a, b, _CMP_GT_OQ); }
static inline vmask v_nlt(vmask m, vf a, vf b) { return _mm512_mask_cmp_ps_mask((__mmask16)m, a, b, _CMP_NLT_UQ); }
static inline vmask v_nle(vmask m, vf a, vf b) { return _mm512_mask_cmp_ps_mask((__mmask16)m, a, b, _CMP_NLE_UQ); }
static inline vmask v_unord(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q); }

/* Store the lanes of m of v, then of base + lane, packed at val/ix.
 * Compress in a register and masked-store: on Zen 4 the memory form of
 * vcompressps is microcoded and far slower. val may be NULL. */
static inline void v_compress_store(vmask m, vf v, float *val, uint32_t base, uint32_t *ix)
{
    const __mmask16 first = (__mmask16)((1u << __builtin_popcount(m)) - 1);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    if (val)
        _mm512_mask_storeu_ps(val, first, _mm512_maskz_compress_ps((__mmask16)m, v));
    _mm512_mask_storeu_epi32(ix, first,
                             _mm512_maskz_compress_epi32((__mmask16)m, _mm512_add_epi32(_mm512_set1_epi32((int)base), iota)));
}

#endif
