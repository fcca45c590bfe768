/* Layout, packing and x quantisation of the vpdpbusd int8 screens
 * (i8-screen-8x32-avx512vnni, i8-screen-6x16-avxvnni), written once against
 * PANEL (simd-<isa>.h) and included by both after screen-common.h.
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

#endif
