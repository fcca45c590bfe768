/* bf16 screened encode, AVX512-BF16 (vdpbf16ps): exact fp32 answer from half
 * of the weight bytes, with a tighter screen than int8 (fewer recomputes).
 *
 * Screen: W_j and x rounded to bf16 (round to nearest even; subnormals
 * flushed to zero here, as vdpbf16ps would); D~_j = sum x^_i W^_ji accumulated
 * by vdpbf16ps in fp32. The rigorous bound
 *   |fp32 dot - D~_j| <= c1_j ||x||2 + c2_j ||x - x^||2 + e_abs,
 *   c1_j = ||W_j - W^_j||2 + gamma (||W_j||2 + ||W^_j||2),  c2_j = (1 + gamma) ||W^_j||2,
 *   e_abs = (2 d_in + 64) 2^-126 (products/sums flushed to zero by vdpbf16ps)
 * (derivation and the per-epilogue tests: screen-common.h, docs/kernels.md)
 * decides which latents are recomputed in fp32 from the fp32 rows.
 *
 * Packed panel p: for each pair of inputs (d_in padded to even with zero
 * weights), 64 bytes = 16 latents x 2 bf16. Loops as in the int8 variant. */
#include "kernels/x86/simd-avx512.h"
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 8
#define TILE_PREFETCH 1024 /* bytes ahead in each panel stream */
/* gamma = (d_in+16)u/(1-(d_in+16)u) grows without bound as d_in nears 2^24;
 * past 2^20 rows take the fp32 path and pack() writes no bf16 copy. */
#define BF16_MAX_D_IN (1u << 20)

typedef __m512 tile_acc;

typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

static size_t d_in2(const saemon_kernel_plan *plan) { return round_up(plan->d_in, 2); }

static screen_layout layout(const saemon_kernel_plan *plan)
{
    return screen_layout_of(plan, plan->d_in <= BF16_MAX_D_IN ? d_in2(plan) * PANEL * 2 : 0);
}

static size_t packed_size(const saemon_kernel_plan *plan) { return layout(plan).total; }

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    return screen_scratch_size(plan, max_batch, d_in2(plan) * 2);
}

/* x rounded to bf16 (nearest even), subnormals flushed to zero; *back is
 * the bf16 value as a double. */
static uint16_t to_bf16(float f, double *back)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (fabsf(f) < 0x1p-126f) {
        *back = 0;
        return (uint16_t)((u >> 16) & 0x8000);
    }
    u += 0x7fff + ((u >> 16) & 1);
    u &= 0xffff0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    *back = r;
    return (uint16_t)(u >> 16);
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed_v)
{
    char *packed = packed_v;
    const screen_layout L = layout(plan);
    const size_t d_in = plan->d_in;
    const double gamma = screen_gamma(d_in);
    float *c1 = (float *)(packed + L.c1), *c2 = (float *)(packed + L.c2);
    uint16_t *panels = (uint16_t *)(packed + L.panels);
    screen_pack_rows(plan, w_rows, packed, &L);
    memset(packed + L.c1, 0, L.total - L.c1);
    if (d_in > BF16_MAX_D_IN)
        return; /* every row takes the fp32 path */
    for (size_t j = 0; j < plan->d_sae; j++) {
        const float *w = w_rows + j * d_in;
        double m = 0, nw = 0;
        for (size_t i = 0; i < d_in; i++) {
            m = fabs((double)w[i]) > m ? fabs((double)w[i]) : m;
            nw += (double)w[i] * w[i];
        }
        if (m == 0)
            continue; /* exact zero row: D~ = 0, bound 0 */
        if (!screen_in_range(m)) {
            c1[j] = __builtin_inff(); /* always recompute */
            continue;
        }
        double resid = 0, nh = 0;
        uint16_t *dst = panels + ((j / PANEL) * L.panel_bytes + (j % PANEL) * 4) / 2;
        for (size_t i = 0; i < d_in; i++) {
            double wh;
            dst[(i / 2) * 32 + i % 2] = to_bf16(w[i], &wh);
            resid += (w[i] - wh) * (w[i] - wh);
            nh += wh * wh;
        }
        c1[j] = screen_bound_const(sqrt(resid) + gamma * (sqrt(nw) + sqrt(nh)) * SCREEN_ROUND_UP);
        c2[j] = screen_bound_const((1.0 + gamma) * sqrt(nh));
    }
}

/* Round one row of x to bf16; rows that cannot be screened are marked fallback. */
static void prep_row(const saemon_kernel_plan *plan, const float *x, screen_row *row, unsigned char *xq_bytes)
{
    const size_t d_in = plan->d_in;
    uint16_t *xq = (uint16_t *)xq_bytes;
    double m;
    memset(xq, 0, d_in2(plan) * 2);
    row->fallback = d_in > BF16_MAX_D_IN || (plan->flags & SAEMON_PLAN_NO_SCREEN) || !screen_row_max(x, d_in, &m);
    if (row->fallback)
        return;
    double xx = 0, rr = 0;
    for (size_t i = 0; i < d_in; i++) {
        double xh;
        xq[i] = to_bf16(x[i], &xh);
        double r = (double)x[i] - xh;
        xx += (double)x[i] * x[i];
        rr += r * r;
    }
    row->sx = 1.0f;
    row->x2 = screen_round_up(sqrt(xx));
    row->r2 = screen_round_up(sqrt(rr));
}

/* Bound on what vdpbf16ps flushes to zero (see the header comment). */
static float e_abs(const saemon_kernel_plan *plan) { return (float)(2 * plan->d_in + 64) * 0x1p-126f; }

/* One row, panels [p0, p0+np), np <= 4, side by side. */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const char *packed,
                                                             const screen_layout *L, const unsigned char *xq,
                                                             screen_row *row, size_t p0, int np,
                                                             const x86_sink *s)
{
    const size_t nblk = d_in2(plan) / 2;
    const char *w0 = packed + L->panels + p0 * L->panel_bytes;
    __m512 a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 2 <= nblk; k += 2) {
        const __m512bh x0 = (__m512bh)_mm512_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
        const __m512bh x1 = (__m512bh)_mm512_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k + 4));
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            const char *w = w0 + q * L->panel_bytes + k * 64;
            a[q] = _mm512_dpbf16_ps(a[q], x0, (__m512bh)_mm512_load_si512((const void *)w));
            b[q] = _mm512_dpbf16_ps(b[q], x1, (__m512bh)_mm512_load_si512((const void *)(w + 64)));
        }
    }
    if (k < nblk) {
        const __m512bh x0 = (__m512bh)_mm512_set1_epi32(*(const unaligned_i32 *)(xq + 4 * k));
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = _mm512_dpbf16_ps(a[q], x0, (__m512bh)_mm512_load_si512((const void *)(w0 + q * L->panel_bytes + k * 64)));
    }
#pragma GCC unroll 4
    for (int q = 0; q < np; q++) {
        size_t j0 = (p0 + q) * PANEL;
        screen_panel(plan, packed, L, j0, _mm512_add_ps(a[q], b[q]), row, e_abs(plan), s, 1);
    }
}

static inline vf tile_dots(const char *packed, const screen_layout *L, size_t j0, __m512 acc, const screen_row *row)
{
    (void)packed, (void)L, (void)j0, (void)row;
    return acc;
}

static inline const char *tile_weights(const char *packed, const screen_layout *L, size_t p)
{
    return packed + L->panels + p * L->panel_bytes;
}
static inline size_t tile_blocks(const saemon_kernel_plan *plan) { return d_in2(plan) / 2; }

/* Accumulate R rows x NP panels (1 or 2) from panel p (at w0) into acc. */
static inline __attribute__((always_inline)) void tile_accumulate(const char *w0, const screen_layout *L,
                                                                  size_t nblk, const unsigned char *xq,
                                                                  size_t xq_stride, int R, int NP,
                                                                  __m512 acc[TILE_ROWS][2])
{
    const char *w1 = w0 + L->panel_bytes;
    __m512 a[TILE_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (size_t k = 0; k < nblk; k++) {
        /* With few rows the tile is bandwidth-bound: help the prefetcher,
         * which does not run far enough ahead on two interleaved streams. */
        _mm_prefetch(w0 + k * 64 + TILE_PREFETCH, _MM_HINT_T0);
        if (NP > 1)
            _mm_prefetch(w1 + k * 64 + TILE_PREFETCH, _MM_HINT_T0);
        const __m512bh v0 = (__m512bh)_mm512_load_si512((const void *)(w0 + k * 64));
        const __m512bh v1 = NP > 1 ? (__m512bh)_mm512_load_si512((const void *)(w1 + k * 64)) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512bh xb = (__m512bh)_mm512_set1_epi32(*(const unaligned_i32 *)(xq + r * xq_stride + 4 * k));
            a[r][0] = _mm512_dpbf16_ps(a[r][0], xb, v0);
            if (NP > 1)
                a[r][1] = _mm512_dpbf16_ps(a[r][1], xb, v1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        acc[r][0] = a[r][0];
        acc[r][1] = a[r][1];
    }
}

/* Bytes of one quantised input row (the shared driver sizes its scratch with it). */
static size_t screen_xq_bytes(const saemon_kernel_plan *plan) { return d_in2(plan) * 2; }

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_bf16_screen_8x32_avx512bf16 = {
    .name = "bf16-screen-8x32-avx512bf16",
    .packed_layout = 1,
    .family = "avx512",
    .cpu_features = SAEMON_CPU_AVX512F | SAEMON_CPU_AVX512BF16,
    .priority = 20,
    .screened = 1,
    .packed_rows_align = VL, /* screen-common.h: the fp32 rows come first, row_stride = d_in when VL divides it */
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
