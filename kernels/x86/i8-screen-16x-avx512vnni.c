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
 * accumulators each. 2+ rows: 8 rows x 2 panels of int32 accumulators,
 * panels outer so each panel pair is read from memory once per call. */
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 8
#define TILE_PREFETCH 4096 /* bytes ahead in the panel-pair stream (measured: 2048 and 8192 slower) */
#define I8_MAX_D_IN 65536 /* 255 * 127 * 65536 < 2^31 */

typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

static size_t d_in4(const saemon_kernel_plan *plan) { return avx512_round_up(plan->d_in, 4); }

static screen_layout layout(const saemon_kernel_plan *plan)
{
    screen_layout L = screen_layout_of(plan, d_in4(plan) * AVX512_PANEL);
    L.total = L.panels + avx512_round_up(avx512_panels(plan->d_sae), 2) * L.panel_bytes; /* whole pairs */
    return L;
}

/* Panels are stored in pairs, interleaved per block of 4 inputs: block k of
 * panel p is at pair_base(p/2) + k*128 + (p%2)*64, so a 2-panel tile (and
 * each half of the 1-row loop) reads one sequential stream. */
#define PAIR_STRIDE 128
static inline const char *panel_base(const char *packed, const screen_layout *L, size_t p)
{
    return packed + L->panels + (p / 2) * 2 * L->panel_bytes + (p % 2) * 64;
}

static size_t packed_size(const saemon_kernel_plan *plan) { return layout(plan).total; }

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    return screen_scratch_size(plan, max_batch, d_in4(plan));
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed_v)
{
    char *packed = packed_v;
    const screen_layout L = layout(plan);
    const size_t d_in = plan->d_in;
    const double gamma = screen_gamma(d_in);
    float *c1 = (float *)(packed + L.c1), *c2 = (float *)(packed + L.c2), *scale = (float *)(packed + L.scale);
    int32_t *colsum = (int32_t *)(packed + L.colsum);
    int8_t *panels = (int8_t *)(packed + L.panels);
    screen_pack_rows(plan, w_rows, packed, &L);
    memset(panels, 0, L.total - L.panels);
    memset(c1, 0, L.panels - L.c1);
    for (size_t j = 0; j < plan->d_sae; j++) {
        const float *w = w_rows + j * d_in;
        double m = 0, nw = 0;
        for (size_t i = 0; i < d_in; i++) {
            m = fabs((double)w[i]) > m ? fabs((double)w[i]) : m;
            nw += (double)w[i] * w[i];
        }
        if (m == 0)
            continue; /* exact zero row: D~ = 0, bound 0 */
        if (!(m >= SCREEN_TINY && m <= SCREEN_HUGE)) {
            c1[j] = __builtin_inff(); /* always recompute */
            continue;
        }
        const float s = (float)(m / 127.0);
        double resid = 0, nq = 0;
        int32_t sum = 0;
        int8_t *dst = (int8_t *)panel_base(packed, &L, j / AVX512_PANEL) + (j % AVX512_PANEL) * 4;
        for (size_t i = 0; i < d_in; i++) {
            long q = lrint((double)w[i] / s);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            double wh = (double)s * (double)q;
            resid += (w[i] - wh) * (w[i] - wh);
            nq += wh * wh;
            sum += (int32_t)q;
            dst[(i / 4) * PAIR_STRIDE + i % 4] = (int8_t)q;
        }
        scale[j] = s;
        colsum[j] = 128 * sum;
        c1[j] = screen_round_up(sqrt(resid) + gamma * sqrt(nw) * SCREEN_ROUND_UP);
        c2[j] = screen_round_up(sqrt(nq));
    }
}

/* Quantise one row of x; rows that cannot be screened are marked fallback. */
static void prep_row(const saemon_kernel_plan *plan, const float *x, screen_row *row, unsigned char *xq)
{
    const size_t d_in = plan->d_in, n4 = d_in4(plan);
    double m;
    memset(xq, 128, n4);
    row->fallback = plan->d_in > I8_MAX_D_IN || !screen_row_screenable(x, d_in, &m);
    if (row->fallback)
        return;
    const float sx = (float)(m / 127.0);
    double xx = 0, rr = 0;
    for (size_t i = 0; i < d_in; i++) {
        long q = lrint((double)x[i] / sx);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        double r = (double)x[i] - (double)sx * (double)q;
        xx += (double)x[i] * x[i];
        rr += r * r;
        xq[i] = (unsigned char)(q + 128);
    }
    row->sx = sx;
    row->x2 = screen_round_up(sqrt(xx));
    row->r2 = screen_round_up(sqrt(rr));
}

static inline __m512 approx_dot(const char *packed, const screen_layout *L, size_t j0, __m512i acc, float sx)
{
    const __m512i colsum = _mm512_load_si512((const void *)(packed + L->colsum + j0 * 4));
    const __m512 scale = _mm512_load_ps((const float *)(packed + L->scale) + j0);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, colsum)), _mm512_mul_ps(scale, _mm512_set1_ps(sx)));
}

/* One row, panels [p0, p0+np), np <= 4, side by side. */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const char *packed,
                                                             const screen_layout *L, const unsigned char *xq,
                                                             screen_row *row, size_t p0, int np,
                                                             const avx512_sink *s)
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
        size_t j0 = (p0 + q) * AVX512_PANEL;
        screen_panel(plan, packed, L, j0, approx_dot(packed, L, j0, _mm512_add_epi32(a[q], b[q]), row->sx), row,
                     0.0f, s, 1);
    }
}

/* Accumulate R rows x NP panels (1 or 2) from panel p into acc. Kept apart
 * from the screening epilogue: inlined together, GCC 12 splits the
 * accumulators' live ranges and adds two zmm copies per vpdpbusd. */
static inline __attribute__((always_inline)) void tile_accumulate(const char *w0, size_t nblk,
                                                                  const unsigned char *xq, size_t xq_stride, int R,
                                                                  int NP, __m512i acc[TILE_ROWS][2])
{
    const char *w1 = w0 + 64;
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

#define TILE_CASE(R)                                                                                  \
    case R:                                                                                           \
        if (NP == 2)                                                                                  \
            tile_accumulate(w0, nblk, xq, xq_stride, R, 2, acc);                         \
        else                                                                                          \
            tile_accumulate(w0, nblk, xq, xq_stride, R, 1, acc);                         \
        break;

static __attribute__((noinline)) void tile_dispatch(const char *w0, size_t nblk,
                                                    const unsigned char *xq, size_t xq_stride, int rows, int NP,
                                                    __m512i acc[TILE_ROWS][2])
{
    switch (rows) {
        TILE_CASE(1)
        TILE_CASE(2)
        TILE_CASE(3)
        TILE_CASE(4)
        TILE_CASE(5)
        TILE_CASE(6)
        TILE_CASE(7)
        TILE_CASE(8)
    default: break;
    }
}

/* Rows r0..r0+rows x panels p..p+NP: accumulate, then screen each panel. */
static void tile(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L, const screen_scratch *S,
                 size_t r0, size_t p, int rows, int NP)
{
    __m512i acc[TILE_ROWS][2];
    tile_dispatch(panel_base(packed, L, p), d_in4(plan) / 4,
                  S->xq + r0 * S->xq_stride, S->xq_stride, rows, NP, acc);
    for (int r = 0; r < rows; r++) {
        screen_row *row = &S->rows[r0 + (size_t)r];
        if (row->fallback)
            continue;
        for (int q = 0; q < NP; q++) {
            size_t j0 = (p + (size_t)q) * AVX512_PANEL;
            screen_panel(plan, packed, L, j0, approx_dot(packed, L, j0, acc[r][q], row->sx), row, 0.0f,
                         &S->sinks[r0 + (size_t)r], 0);
        }
    }
}

/* Bytes of one quantised input row (the shared driver sizes its scratch with it). */
static size_t screen_xq_bytes(const saemon_kernel_plan *plan) { return d_in4(plan); }

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_i8_screen_16x_avx512vnni = {
    .name = "i8-screen-16x-avx512vnni",
    .isa = "avx512",
    .cpu_features = SAEMON_CPU_AVX512F | SAEMON_CPU_AVX512VNNI,
    .priority = 30,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
