/* int8 screened encode, AVX512-VNNI (vpdpbusd): exact fp32 answer from a
 * quarter of the weight bytes.
 *
 * Screen: W_j quantised per latent (scale s_j = max|W_j|/127, w_ji int8),
 * x per token (s_x = max|x|/127, q_i int8 stored as u8 q_i+128 for vpdpbusd;
 * the +128 is taken back with 128*sum_i w_ji). D~_j = s_x s_j sum q_i w_ji is
 * exact in int32 (d_in <= I8_MAX_D_IN keeps |sum| < 2^31). The rigorous bound
 * |fp32 dot - D~_j| <= c1_j ||x||2 + c2_j ||x - x^||2 with
 *   c1_j = ||W_j - s_j w_j||2 + gamma ||W_j||2,   c2_j = ||s_j w_j||2
 * (derivation and the per-epilogue tests: screen-common.h, docs/kernels.md)
 * decides which latents are recomputed in fp32 from the fp32 rows.
 *
 * Packed panel p: for each group of 4 inputs (d_in padded to a multiple of
 * 4 with zero weights), 64 bytes = 16 latents x 4 int8; panels 2g and 2g+1
 * are interleaved per group (128 bytes), so a panel pair is one sequential
 * stream. 1 row: four panels (two pair streams) side by side with two
 * accumulators each. 2+ rows: 8 rows x 2 panels (32 latents) of int32
 * accumulators, panels outer so each panel pair is read from memory once per call. */
#include "kernels/x86/simd-avx512.h"
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 8
#define TILE_PREFETCH 4096 /* bytes ahead in the panel-pair stream (measured: 2048 and 8192 slower) */

typedef __m512i tile_acc;
typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

#include "kernels/x86/screen-i8-vnni.h"

static inline vf tile_dots(const char *packed, const screen_layout *L, size_t j0, __m512i acc, const screen_row *row)
{
    const __m512i colsum = _mm512_load_si512((const void *)(packed + L->colsum + j0 * 4));
    const __m512 scale = _mm512_load_ps((const float *)(packed + L->scale) + j0);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, colsum)), _mm512_mul_ps(scale, _mm512_set1_ps(row->sx)));
}

/* One row, panels [p0, p0+np), np <= 4, side by side. */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const char *packed,
                                                             const screen_layout *L, const unsigned char *xq,
                                                             screen_row *row, size_t p0, int np, const x86_sink *s)
{
    const size_t nblk = d_in4(plan) / 4;
    __m512i a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = _mm512_setzero_si512();
    size_t k = 0;
    for (; k + 2 <= nblk; k += 2) {
        const __m512i x0 = _mm512_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
        const __m512i x1 = _mm512_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k + 4));
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            const char *w = panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE;
            a[q] = _mm512_dpbusd_epi32(a[q], x0, _mm512_load_si512((const void *)w));
            b[q] = _mm512_dpbusd_epi32(b[q], x1, _mm512_load_si512((const void *)(w + PAIR_STRIDE)));
        }
    }
    if (k < nblk) {
        const __m512i x0 = _mm512_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = _mm512_dpbusd_epi32(
                a[q], x0, _mm512_load_si512((const void *)(panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE)));
    }
#pragma GCC unroll 4
    for (int q = 0; q < np; q++) {
        size_t j0 = (p0 + q) * PANEL;
        screen_panel(plan, packed, L, j0, tile_dots(packed, L, j0, _mm512_add_epi32(a[q], b[q]), row), row, 0.0f,
                     s, 1);
    }
}

static inline const char *tile_weights(const char *packed, const screen_layout *L, size_t p)
{
    return panel_base(packed, L, p);
}
static inline size_t tile_blocks(const saemon_kernel_plan *plan) { return d_in4(plan) / 4; }

/* Accumulate R rows x NP panels (1 or 2) from panel pair stream w0. */
static inline __attribute__((always_inline)) void tile_accumulate(const char *w0, const screen_layout *L,
                                                                  size_t nblk, const unsigned char *xq,
                                                                  size_t xq_stride, int R, int NP,
                                                                  __m512i acc[TILE_ROWS][2])
{
    (void)L;
    const char *w1 = w0 + GROUP_BYTES;
    __m512i a[TILE_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = _mm512_setzero_si512();
    for (size_t k = 0; k < nblk; k++) {
        /* With few rows the tile is bandwidth-bound: help the prefetcher,
         * which does not run far enough ahead on two interleaved streams. */
        _mm_prefetch(w0 + k * PAIR_STRIDE + TILE_PREFETCH, _MM_HINT_T0);
        _mm_prefetch(w1 + k * PAIR_STRIDE + TILE_PREFETCH, _MM_HINT_T0);
        __m512i v0 = _mm512_load_si512((const void *)(w0 + k * PAIR_STRIDE));
        __m512i v1 = NP > 1 ? _mm512_load_si512((const void *)(w1 + k * PAIR_STRIDE)) : v0;
        /* Keep the weights in registers: GCC otherwise folds the load into
         * every vpdpbusd (R loads per vector), and Zen 4 retires one zmm
         * load per cycle, so the tile became load-bound. */
        __asm__("" : "+v"(v0));
        if (NP > 1)
            __asm__("" : "+v"(v1));
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512i xb = _mm512_set1_epi32(*(const unaligned_i32 *)(xq + r * xq_stride + 4 * k));
            a[r][0] = _mm512_dpbusd_epi32(a[r][0], xb, v0);
            if (NP > 1)
                a[r][1] = _mm512_dpbusd_epi32(a[r][1], xb, v1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        acc[r][0] = a[r][0];
        acc[r][1] = a[r][1];
    }
}

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_i8_screen_8x32_avx512vnni = {
    .name = "i8-screen-8x32-avx512vnni",
    .isa = "avx512",
    .cpu_features = SAEMON_CPU_AVX512F | SAEMON_CPU_AVX512VNNI,
    .priority = 30,
    .screened = 1,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
