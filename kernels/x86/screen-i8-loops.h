/* The int8 screens' layout, packing and loops, written once for vpdpbusd (screen-i8-vnni.h:
 * AVX512-VNNI on zmm, AVX-VNNI on ymm) and vpmaddwd (i8-screen-4x16-avx2):
 * the 1-row loop (row_panels) and the register tile (tile_accumulate) of
 * screen-encode.h. The including file defines tile_acc, I8_BLOCK (inputs per
 * 32-bit lane: 4 for vpdpbusd, 2 for vpmaddwd), GROUP_BYTES (one panel, one
 * block) and PAIR_STRIDE (a panel pair, one block), TILE_ROWS, TILE_PREFETCH,
 * ROW_PREFETCH (0 = none), tile_dots() and, for tile_acc,
 * I8_ZERO(), I8_LOAD(p) (one block of one panel's weights, as the dot
 * instruction's operand), I8_SET1(int32), I8_DP(acc, x, w) and I8_ADD. */
#ifndef SAEMON_X86_SCREEN_I8_LOOPS_H
#define SAEMON_X86_SCREEN_I8_LOOPS_H

typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

static screen_layout layout(const saemon_kernel_plan *plan)
{
    const int small = plan->d_in <= I8_MAX_D_IN; /* past it: fp32 rows only */
    screen_layout L = screen_layout_of(plan, small ? round_up(plan->d_in, I8_BLOCK) * PANEL : 0);
    L.total = L.panels + round_up(n_panels(plan->d_sae), 2) * L.panel_bytes; /* whole pairs */
    return L;
}

/* Block k of panel p is at pair_base(p/2) + k*PAIR_STRIDE + (p%2)*GROUP_BYTES. */
static inline const char *panel_base(const char *packed, const screen_layout *L, size_t p)
{
    return packed + L->panels + (p / 2) * 2 * L->panel_bytes + (p % 2) * GROUP_BYTES;
}

static size_t packed_size(const saemon_kernel_plan *plan) { return layout(plan).total; }

/* fp32 rows, then per latent its int8 row (kernels/screen-bound.h), bound
 * constants, scale and colsum = 128 sum_i w_ji (read by the u8-offset
 * vpdpbusd form only). */
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
        int8_t *dst = (int8_t *)panel_base(packed, &L, j / PANEL) + (j % PANEL) * I8_BLOCK;
        int32_t sum;
        if (screen_i8_quantise_w(w_rows + j * d_in, d_in, dst, I8_BLOCK, PAIR_STRIDE, &scale[j], &c1[j], &c2[j],
                                 &sum) > 0)
            colsum[j] = 128 * sum; /* |sum| <= 127 * 65536: no overflow */
    }
}

static float e_abs(const saemon_kernel_plan *plan)
{
    (void)plan;
    return 0.0f; /* the int32 sum is exact */
}

/* Block k of a quantised row, broadcast: 4 bytes (vpdpbusd: 4 u8 inputs;
 * vpmaddwd: 2 int16 inputs). */
static inline tile_acc x_block(const unsigned char *xq, size_t k)
{
    return I8_SET1(*(const unaligned_i32 *)(xq + 4 * k));
}

/* One row, panels [p0, p0+np), np <= 4, side by side (two pair streams). */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const char *packed,
                                                             const screen_layout *L, const unsigned char *xq,
                                                             screen_row *row, size_t p0, int np, const x86_sink *s)
{
    const size_t nblk = round_up(plan->d_in, I8_BLOCK) / I8_BLOCK;
    tile_acc a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = I8_ZERO();
    size_t k = 0;
    for (; k + 2 <= nblk; k += 2) {
        const tile_acc x0 = x_block(xq, k), x1 = x_block(xq, k + 1);
        for (int o = 0; ROW_PREFETCH && o < 2 * PAIR_STRIDE; o += 64) {
            _mm_prefetch(panel_base(packed, L, p0) + k * PAIR_STRIDE + ROW_PREFETCH + o, _MM_HINT_T1);
            if (np > 2)
                _mm_prefetch(panel_base(packed, L, p0 + 2) + k * PAIR_STRIDE + ROW_PREFETCH + o, _MM_HINT_T1);
        }
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            const char *w = panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE;
            a[q] = I8_DP(a[q], x0, I8_LOAD(w));
            b[q] = I8_DP(b[q], x1, I8_LOAD(w + PAIR_STRIDE));
        }
    }
    if (k < nblk) {
        const tile_acc x0 = x_block(xq, k);
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = I8_DP(a[q], x0, I8_LOAD(panel_base(packed, L, p0 + (size_t)q) + k * PAIR_STRIDE));
    }
#pragma GCC unroll 4
    for (int q = 0; q < np; q++) {
        size_t j0 = (p0 + q) * PANEL;
        screen_panel(plan, packed, L, j0, tile_dots(packed, L, j0, I8_ADD(a[q], b[q]), row), row, 0.0f, s, 1);
    }
}

static inline const char *tile_weights(const char *packed, const screen_layout *L, size_t p)
{
    return panel_base(packed, L, p);
}
static inline size_t tile_blocks(const saemon_kernel_plan *plan) { return round_up(plan->d_in, I8_BLOCK) / I8_BLOCK; }

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
        a[r][0] = a[r][1] = I8_ZERO();
    for (size_t k = 0; k < nblk; k++) {
        /* With few rows the tile is bandwidth-bound: help the prefetcher,
         * which does not run far enough ahead on two interleaved streams. */
        for (int o = 0; o < PAIR_STRIDE; o += 64)
            _mm_prefetch(w0 + k * PAIR_STRIDE + TILE_PREFETCH + o, _MM_HINT_T0);
        tile_acc v0 = I8_LOAD(w0 + k * PAIR_STRIDE);
        tile_acc v1 = NP > 1 ? I8_LOAD(w0 + k * PAIR_STRIDE + GROUP_BYTES) : v0;
        /* Keep the weights in registers: GCC otherwise folds the load into
         * every vpdpbusd (R loads per vector), and Zen 4 retires one zmm
         * load per cycle, so the tile became load-bound. */
        __asm__("" : "+v"(v0));
        if (NP > 1)
            __asm__("" : "+v"(v1));
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const tile_acc xb = x_block(xq + r * xq_stride, k);
            a[r][0] = I8_DP(a[r][0], xb, v0);
            if (NP > 1)
                a[r][1] = I8_DP(a[r][1], xb, v1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        acc[r][0] = a[r][0];
        acc[r][1] = a[r][1];
    }
}

#endif
