/* int8 screened encode, AVX-VNNI (VEX vpdpbusd on ymm: Alder Lake and later
 * Intel client cores, Sapphire Rapids, Zen 5): the AVX512-VNNI variant's
 * quantisation and bound on 256-bit vectors, for CPUs that have VNNI but no
 * AVX-512 (or where it is off). One vpdpbusd does 32 multiply-adds, twice a
 * vpmaddwd, so at batch >= 8 it needs half the instructions of
 * i8-screen-4x16-avx2.
 *
 * Screen: W_j quantised per latent (s_j = max|W_j|/127, int8), x per token
 * (s_x = max|x|/127, q_i int8 stored as u8 q_i + 128 for vpdpbusd, the +128
 * taken back with 128 * sum_i w_ji). D~_j = s_x s_j sum q_i w_ji is exact in
 * int32 (d_in <= I8_MAX_D_IN); the bound, the tests and the fp32 recompute
 * are screen-common.h's, shared with every screened x86 variant.
 *
 * Packed panel p (8 latents): per group of 4 inputs (d_in padded to a
 * multiple of 4 with zero weights), 32 bytes = 8 latents x 4 int8 in
 * vpdpbusd order; panels 2g and 2g+1 are interleaved per group (64 bytes), so
 * a panel pair is one sequential stream. 1 row: four panels (two pair
 * streams) side by side, two accumulators each. 2+ rows: 6 rows x 2 panels
 * (12 of the 16 ymm accumulate), panels outer so each panel pair is read from
 * memory once per call.
 *
 * SAEMON_TEST_EMULATE_AVXVNNI (tests only, never in the library): vpdpbusd
 * is computed exactly with AVX2 instructions and the variant asks only for
 * AVX2, so the whole variant is checked on hosts without AVX-VNNI (QEMU 7.2's
 * TCG lacks it too); see tests/checkkernels/meson.build. */
#include "kernels/x86/simd-avx2.h"
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 6
#define TILE_PREFETCH 1024 /* bytes ahead in the panel-pair stream */
#define ROW_PREFETCH 49152 /* 1-row loop: bytes ahead in each pair stream, into L2 (as i8-screen-4x16-avx2) */

typedef __m256i tile_acc;
typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

#ifdef SAEMON_TEST_EMULATE_AVXVNNI
/* acc + per 32-bit lane the sum of 4 u8 x s8 products, exactly. */
static inline __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8)
{
    const __m256i lo = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(u8)),
                                         _mm256_cvtepi8_epi16(_mm256_castsi256_si128(s8)));
    const __m256i hi = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(u8, 1)),
                                         _mm256_cvtepi8_epi16(_mm256_extracti128_si256(s8, 1)));
    /* hadd pairs within 128-bit halves: quads 0,1,4,5 | 2,3,6,7 */
    const __m256i q = _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xd8);
    return _mm256_add_epi32(acc, q);
}
#define VARIANT_CPU_FEATURES SAEMON_CPU_AVX2
#else
static inline __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return _mm256_dpbusd_avx_epi32(acc, u8, s8); }
#define VARIANT_CPU_FEATURES (SAEMON_CPU_AVX2 | SAEMON_CPU_AVX_VNNI)
#endif

#include "kernels/x86/screen-i8-vnni.h"

static inline vf tile_dots(const char *packed, const screen_layout *L, size_t j0, __m256i acc, const screen_row *row)
{
    const __m256i colsum = _mm256_load_si256((const __m256i *)(packed + L->colsum + j0 * 4));
    const __m256 scale = _mm256_load_ps((const float *)(packed + L->scale) + j0);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc, colsum)),
                         _mm256_mul_ps(scale, _mm256_set1_ps(row->sx)));
}

static inline __m256i load_w(const char *p) { return _mm256_load_si256((const __m256i *)p); }

/* One row, panels [p0, p0+np), np <= 4, side by side. */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const char *packed,
                                                             const screen_layout *L, const unsigned char *xq,
                                                             screen_row *row, size_t p0, int np, const x86_sink *s)
{
    const size_t nblk = d_in4(plan) / 4;
    __m256i a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = _mm256_setzero_si256();
    size_t k = 0;
    for (; k + 2 <= nblk; k += 2) {
        const __m256i x0 = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
        const __m256i x1 = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k + 4));
        /* Two 64-byte lines of each pair stream per step. */
        for (int o = 0; o < 2 * PAIR_STRIDE; o += 64) {
            _mm_prefetch(panel_base(packed, L, p0) + k * PAIR_STRIDE + ROW_PREFETCH + o, _MM_HINT_T1);
            if (np > 2)
                _mm_prefetch(panel_base(packed, L, p0 + 2) + k * PAIR_STRIDE + ROW_PREFETCH + o, _MM_HINT_T1);
        }
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            const char *w = panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE;
            a[q] = dpbusd(a[q], x0, load_w(w));
            b[q] = dpbusd(b[q], x1, load_w(w + PAIR_STRIDE));
        }
    }
    if (k < nblk) {
        const __m256i x0 = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = dpbusd(a[q], x0, load_w(panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE));
    }
#pragma GCC unroll 4
    for (int q = 0; q < np; q++) {
        size_t j0 = (p0 + q) * PANEL;
        screen_panel(plan, packed, L, j0, tile_dots(packed, L, j0, _mm256_add_epi32(a[q], b[q]), row), row, 0.0f,
                     s, 1);
    }
}

static inline const char *tile_weights(const char *packed, const screen_layout *L, size_t p)
{
    return panel_base(packed, L, p);
}
static inline size_t tile_blocks(const saemon_kernel_plan *plan) { return d_in4(plan) / 4; }

/* Accumulate R rows x NP panels (1 or 2) from the panel-pair stream w0. */
static inline __attribute__((always_inline)) void tile_accumulate(const char *w0, const screen_layout *L,
                                                                  size_t nblk, const unsigned char *xq,
                                                                  size_t xq_stride, int R, int NP,
                                                                  __m256i acc[TILE_ROWS][2])
{
    (void)L;
    __m256i a[TILE_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = _mm256_setzero_si256();
    for (size_t k = 0; k < nblk; k++) {
        _mm_prefetch(w0 + k * PAIR_STRIDE + TILE_PREFETCH, _MM_HINT_T0);
        const __m256i v0 = load_w(w0 + k * PAIR_STRIDE);
        const __m256i v1 = NP > 1 ? load_w(w0 + k * PAIR_STRIDE + GROUP_BYTES) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m256i xb = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + r * xq_stride + 4 * k));
            a[r][0] = dpbusd(a[r][0], xb, v0);
            if (NP > 1)
                a[r][1] = dpbusd(a[r][1], xb, v1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        acc[r][0] = a[r][0];
        acc[r][1] = a[r][1];
    }
}

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_i8_screen_6x16_avxvnni = {
    .name = "i8-screen-6x16-avxvnni",
    .isa = "avx2",
    .cpu_features = VARIANT_CPU_FEATURES,
    .priority = 9,
    .screened = 1,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
