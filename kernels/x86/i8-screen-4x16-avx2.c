/* int8 screened encode, AVX2 (vpmaddwd on sign-extended int8): the exact
 * fp32 answer from a quarter of the weight bytes on CPUs without AVX-512.
 *
 * Same quantisation, bound and recompute as i8-screen-8x32-avx512vnni (the
 * shared body is screen-common.h / screen-encode.h): W_j per latent with
 * s_j = max|W_j|/127, x per token with s_x = max|x|/127, both signed int8,
 * D~_j = s_x s_j sum q_i w_ji exact in int32 (|sum| <= 127^2 d_in < 2^31 for
 * d_in <= I8_MAX_D_IN). The weights stay int8 in memory; vpmovsxbw widens 16
 * of them (8 latents x 2 inputs) to int16 and vpmaddwd multiplies them with
 * the broadcast int16 pair (x_2k, x_2k+1), summing each latent's pair into
 * one int32 lane. No u8 offset, so no column sums.
 *
 * Packed panel p (8 latents): per block of 2 inputs (d_in padded to even
 * with zero weights), 16 bytes = 8 latents x 2 int8; panels 2g and 2g+1 are
 * interleaved per block (32 bytes) so a panel pair is one sequential stream.
 * 1 row: four panels (two pair streams) side by side, two accumulators each.
 * 2+ rows: 4 rows x 2 panels (16 latents) of int32 accumulators, panels
 * outer so each panel pair is read from memory once per call. */
#include "kernels/x86/simd-avx2.h"
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 4
#define TILE_PREFETCH 1024 /* bytes ahead in the panel-pair stream */
#define PAIR_STRIDE 32     /* bytes per block of 2 inputs of a panel pair */
/* 1-row loop: bytes ahead in each pair stream, into L2. The loop spends ~3
 * instructions per 16 weight bytes, so the out-of-order window covers little
 * of the stream: without a far prefetch it reached about half the DRAM read
 * bandwidth (Zen 4, SAEMON_ISA=avx2, gpt2 768x24576: p50 1.44 ms at 2 KiB
 * ahead, 0.75-0.83 ms at 48 KiB; gemma 2304x16384: 2.9-3.6 ms -> 2.5-2.7 ms;
 * 8 KiB was slower than 2 KiB). 48 KiB per stream stays far inside L2. */
#define ROW_PREFETCH 49152

typedef __m256i tile_acc;
typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

static size_t d_in2(const saemon_kernel_plan *plan) { return round_up(plan->d_in, 2); }

static screen_layout layout(const saemon_kernel_plan *plan)
{
    const int small = plan->d_in <= I8_MAX_D_IN; /* past it: fp32 rows only */
    screen_layout L = screen_layout_of(plan, small ? d_in2(plan) * PANEL : 0);
    L.total = L.panels + round_up(n_panels(plan->d_sae), 2) * L.panel_bytes; /* whole pairs */
    return L;
}

/* Block k of panel p is at pair_base(p/2) + k*32 + (p%2)*16. */
static inline const char *panel_base(const char *packed, const screen_layout *L, size_t p)
{
    return packed + L->panels + (p / 2) * 2 * L->panel_bytes + (p % 2) * 16;
}

static size_t packed_size(const saemon_kernel_plan *plan) { return layout(plan).total; }

/* x is kept as int16 (vpmaddwd's operand width). */
static size_t screen_xq_bytes(const saemon_kernel_plan *plan) { return d_in2(plan) * 2; }

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    return screen_scratch_size(plan, max_batch, screen_xq_bytes(plan));
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed_v)
{
    char *packed = packed_v;
    const screen_layout L = layout(plan);
    const size_t d_in = plan->d_in;
    float *c1 = (float *)(packed + L.c1), *c2 = (float *)(packed + L.c2), *scale = (float *)(packed + L.scale);
    screen_pack_rows(plan, w_rows, packed, &L);
    memset(packed + L.c1, 0, L.total - L.c1);
    if (d_in > I8_MAX_D_IN)
        return; /* every row takes the fp32 path */
    for (size_t j = 0; j < plan->d_sae; j++) {
        int8_t *dst = (int8_t *)panel_base(packed, &L, j / PANEL) + (j % PANEL) * 2;
        int32_t sum;
        screen_i8_quantise_w(w_rows + j * d_in, d_in, dst, 2, PAIR_STRIDE, &scale[j], &c1[j], &c2[j], &sum);
    }
}

/* Quantise one row of x to int8, then widen in place to int16. */
static void prep_row(const saemon_kernel_plan *plan, const float *x, screen_row *row, unsigned char *xq)
{
    memset(xq, 0, screen_xq_bytes(plan));
    screen_i8_quantise_x(plan, x, row, (int8_t *)xq);
    if (row->fallback)
        return;
    for (size_t i = plan->d_in; i-- > 0;) { /* backwards: 2i >= i never overwrites an unread byte */
        int16_t v = (int8_t)xq[i];
        memcpy(xq + 2 * i, &v, 2);
    }
}

static float e_abs(const saemon_kernel_plan *plan)
{
    (void)plan;
    return 0.0f; /* the int32 sum is exact */
}

static inline vf tile_dots(const char *packed, const screen_layout *L, size_t j0, __m256i acc, const screen_row *row)
{
    const __m256 scale = _mm256_load_ps((const float *)(packed + L->scale) + j0);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(scale, _mm256_set1_ps(row->sx)));
}

/* 8 latents x 2 inputs of int8 weights, widened to int16. */
static inline __m256i load_w(const char *p) { return _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)p)); }

/* One row, panels [p0, p0+np), np <= 4, side by side. */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const char *packed,
                                                             const screen_layout *L, const unsigned char *xq,
                                                             screen_row *row, size_t p0, int np, const x86_sink *s)
{
    const size_t nblk = d_in2(plan) / 2;
    __m256i a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = _mm256_setzero_si256();
    size_t k = 0;
    for (; k + 2 <= nblk; k += 2) {
        const __m256i x0 = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
        const __m256i x1 = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k + 4));
        /* One prefetch per 64-byte line of each pair stream (2 blocks = 64 B). */
        _mm_prefetch(panel_base(packed, L, p0) + k * PAIR_STRIDE + ROW_PREFETCH, _MM_HINT_T1);
        if (np > 2)
            _mm_prefetch(panel_base(packed, L, p0 + 2) + k * PAIR_STRIDE + ROW_PREFETCH, _MM_HINT_T1);
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            const char *w = panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE;
            a[q] = _mm256_add_epi32(a[q], _mm256_madd_epi16(x0, load_w(w)));
            b[q] = _mm256_add_epi32(b[q], _mm256_madd_epi16(x1, load_w(w + PAIR_STRIDE)));
        }
    }
    if (k < nblk) {
        const __m256i x0 = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = _mm256_add_epi32(
                a[q], _mm256_madd_epi16(x0, load_w(panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE)));
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
static inline size_t tile_blocks(const saemon_kernel_plan *plan) { return d_in2(plan) / 2; }

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
        const __m256i v1 = NP > 1 ? load_w(w0 + k * PAIR_STRIDE + 16) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m256i xb = _mm256_set1_epi32(*(const unaligned_i32 *)(xq + r * xq_stride + 4 * k));
            a[r][0] = _mm256_add_epi32(a[r][0], _mm256_madd_epi16(xb, v0));
            if (NP > 1)
                a[r][1] = _mm256_add_epi32(a[r][1], _mm256_madd_epi16(xb, v1));
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        acc[r][0] = a[r][0];
        acc[r][1] = a[r][1];
    }
}

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_i8_screen_4x16_avx2 = {
    .name = "i8-screen-4x16-avx2",
    .isa = "avx2",
    .cpu_features = SAEMON_CPU_AVX2,
    .priority = 8,
    .screened = 1,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
