/* The vpdpbusd int8 screens (i8-screen-8x32-avx512vnni on zmm,
 * i8-screen-6x16-avxvnni on ymm), written once: layout, packing, x
 * quantisation and the loops. Included after screen-common.h by a file that
 * defines TILE_ROWS, TILE_PREFETCH (bytes ahead in the tile's panel-pair
 * stream), ROW_PREFETCH (bytes ahead in the 1-row loop's streams, into L2;
 * 0 = none), the accumulator type tile_acc and, for it, VNNI_ZERO(),
 * VNNI_LOAD(p) (aligned), VNNI_SET1(int32), VNNI_DP(acc, u8, s8) (vpdpbusd),
 * VNNI_ADD, VNNI_SUB and VNNI_TO_PS (int32 -> fp32 lanes).
 *
 * Packed panel p (PANEL latents): per group of 4 inputs (d_in padded to a
 * multiple of 4 with zero weights), PANEL x 4 int8 in vpdpbusd order; panels
 * 2g and 2g+1 are interleaved per group (PAIR_STRIDE bytes), so a 2-panel
 * tile (and each half of the 1-row loop) reads one sequential stream.
 * x is stored as u8 q + 128 (zero padding = 128); the +128 is taken back
 * with colsum_j = 128 * sum_i w_ji. */
#ifndef SAEMON_X86_SCREEN_I8_VNNI_H
#define SAEMON_X86_SCREEN_I8_VNNI_H

#define GROUP_BYTES (PANEL * 4)      /* one panel, one group of 4 inputs */
#define PAIR_STRIDE (2 * GROUP_BYTES) /* a panel pair, one group */

static size_t d_in4(const saemon_kernel_plan *plan) { return round_up(plan->d_in, 4); }

static screen_layout layout(const saemon_kernel_plan *plan)
{
    const int small = plan->d_in <= I8_MAX_D_IN; /* past it: fp32 rows only */
    screen_layout L = screen_layout_of(plan, small ? d_in4(plan) * PANEL : 0);
    L.total = L.panels + round_up(n_panels(plan->d_sae), 2) * L.panel_bytes; /* whole pairs */
    return L;
}

/* Group k of panel p is at pair_base(p/2) + k*PAIR_STRIDE + (p%2)*GROUP_BYTES. */
static inline const char *panel_base(const char *packed, const screen_layout *L, size_t p)
{
    return packed + L->panels + (p / 2) * 2 * L->panel_bytes + (p % 2) * GROUP_BYTES;
}

static size_t packed_size(const saemon_kernel_plan *plan) { return layout(plan).total; }

/* Bytes of one quantised input row (the shared driver sizes its scratch with it). */
static size_t screen_xq_bytes(const saemon_kernel_plan *plan) { return d_in4(plan); }

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
    int32_t *colsum = (int32_t *)(packed + L.colsum);
    screen_pack_rows(plan, w_rows, packed, &L);
    memset(packed + L.c1, 0, L.total - L.c1);
    if (d_in > I8_MAX_D_IN)
        return; /* every row takes the fp32 path */
    for (size_t j = 0; j < plan->d_sae; j++) {
        int8_t *dst = (int8_t *)panel_base(packed, &L, j / PANEL) + (j % PANEL) * 4;
        int32_t sum;
        if (screen_i8_quantise_w(w_rows + j * d_in, d_in, dst, 4, PAIR_STRIDE, &scale[j], &c1[j], &c2[j], &sum) > 0)
            colsum[j] = 128 * sum; /* |sum| <= 127 * 65536: no overflow */
    }
}

/* Quantise one row of x, stored as u8 q + 128 (zero padding = 128). */
static void prep_row(const saemon_kernel_plan *plan, const float *x, screen_row *row, unsigned char *xq)
{
    memset(xq, 128, d_in4(plan));
    screen_i8_quantise_x(plan, x, row, (int8_t *)xq);
    if (!row->fallback)
        for (size_t i = 0; i < plan->d_in; i++)
            xq[i] = (unsigned char)(xq[i] ^ 0x80); /* two's complement q + 128 */
}

static float e_abs(const saemon_kernel_plan *plan)
{
    (void)plan;
    return 0.0f; /* the int32 sum is exact */
}

typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

/* The accumulators as approximate fp32 dots: s_x s_j (acc - 128 sum_i w_ji). */
static inline vf tile_dots(const char *packed, const screen_layout *L, size_t j0, tile_acc acc, const screen_row *row)
{
    const tile_acc colsum = VNNI_LOAD(packed + L->colsum + j0 * 4);
    const vf scale = v_load((const float *)(packed + L->scale) + j0);
    return v_mul(VNNI_TO_PS(VNNI_SUB(acc, colsum)), v_mul(scale, v_set1(row->sx)));
}

static inline tile_acc x_quad(const unsigned char *xq, size_t k)
{
    return VNNI_SET1(*(const unaligned_i32 *)(xq + 4 * k));
}

/* One row, panels [p0, p0+np), np <= 4, side by side (two pair streams). */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const char *packed,
                                                             const screen_layout *L, const unsigned char *xq,
                                                             screen_row *row, size_t p0, int np, const x86_sink *s)
{
    const size_t nblk = d_in4(plan) / 4;
    tile_acc a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = VNNI_ZERO();
    size_t k = 0;
    for (; k + 2 <= nblk; k += 2) {
        const tile_acc x0 = x_quad(xq, k), x1 = x_quad(xq, k + 1);
        for (int o = 0; ROW_PREFETCH && o < 2 * PAIR_STRIDE; o += 64) {
            _mm_prefetch(panel_base(packed, L, p0) + k * PAIR_STRIDE + ROW_PREFETCH + o, _MM_HINT_T1);
            if (np > 2)
                _mm_prefetch(panel_base(packed, L, p0 + 2) + k * PAIR_STRIDE + ROW_PREFETCH + o, _MM_HINT_T1);
        }
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            const char *w = panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE;
            a[q] = VNNI_DP(a[q], x0, VNNI_LOAD(w));
            b[q] = VNNI_DP(b[q], x1, VNNI_LOAD(w + PAIR_STRIDE));
        }
    }
    if (k < nblk) {
        const tile_acc x0 = x_quad(xq, k);
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = VNNI_DP(a[q], x0, VNNI_LOAD(panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE));
    }
#pragma GCC unroll 4
    for (int q = 0; q < np; q++) {
        size_t j0 = (p0 + q) * PANEL;
        screen_panel(plan, packed, L, j0, tile_dots(packed, L, j0, VNNI_ADD(a[q], b[q]), row), row, 0.0f, s, 1);
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
                                                                  tile_acc acc[TILE_ROWS][2])
{
    (void)L;
    tile_acc a[TILE_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = VNNI_ZERO();
    for (size_t k = 0; k < nblk; k++) {
        /* With few rows the tile is bandwidth-bound: help the prefetcher,
         * which does not run far enough ahead on two interleaved streams. */
        for (int o = 0; o < PAIR_STRIDE; o += 64)
            _mm_prefetch(w0 + k * PAIR_STRIDE + TILE_PREFETCH + o, _MM_HINT_T0);
        tile_acc v0 = VNNI_LOAD(w0 + k * PAIR_STRIDE);
        tile_acc v1 = NP > 1 ? VNNI_LOAD(w0 + k * PAIR_STRIDE + GROUP_BYTES) : v0;
        /* Keep the weights in registers: GCC otherwise folds the load into
         * every vpdpbusd (R loads per vector), and Zen 4 retires one zmm
         * load per cycle, so the tile became load-bound. */
        __asm__("" : "+v"(v0));
        if (NP > 1)
            __asm__("" : "+v"(v1));
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const tile_acc xb = x_quad(xq + r * xq_stride, k);
            a[r][0] = VNNI_DP(a[r][0], xb, v0);
            if (NP > 1)
                a[r][1] = VNNI_DP(a[r][1], xb, v1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        acc[r][0] = a[r][0];
        acc[r][1] = a[r][1];
    }
}

#endif
