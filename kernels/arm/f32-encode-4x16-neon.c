/* NEON fp32 encode kernel over 16-latent panels (layout in f32-panel-neon.h).
 *
 * encode() walks rows in tiles of 4 (16 accumulators: 4 rows x 4 vectors,
 * each weight load feeds 4 FMAs) and finishes the 0-3 leftover rows with the
 * batch-1 path (two panels at a time: 8 accumulators). Both paths give the
 * same bits for a row (see f32-panel-neon.h). */
#include "kernels/arm/f32-panel-neon.h"

static size_t packed_size(const saemon_kernel_plan *plan)
{
    return f32_panels_size(plan);
}

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    (void)max_batch; /* one heap per row of a tile, reused tile after tile */
    return plan->epilogue == SAEMON_EPI_TOPK ? TILE * topk_cap(plan) * sizeof(saemon_topk_entry)
                                             : 0;
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed)
{
    f32_panels_pack(plan, w_rows, packed);
}

static void encode(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae, panels = n_panels(plan);
    const float *w = packed;
    saemon_topk_entry *heaps = scratch;
    const size_t cap = topk_cap(plan);
    size_t r = 0;
    for (; r + TILE <= n; r += TILE) {
        row_state rs[TILE];
        for (int t = 0; t < TILE; t++)
            row_begin(&rs[t], out, r + t, heaps ? heaps + t * cap : NULL);
        for (size_t p = 0; p < panels; p++) {
            const size_t j0 = p * PANEL, nl = d_sae - j0 < PANEL ? d_sae - j0 : PANEL;
            float32x4_t d[TILE][4];
            dot_panel_4(w + p * PANEL * d_in, x + r * d_in, d_in, d);
            for (int t = 0; t < TILE; t++)
                epilogue(plan, d[t], j0, nl, &rs[t]);
        }
        for (int t = 0; t < TILE; t++)
            out->count[r + t] = row_end(plan, &rs[t]);
    }
    for (; r < n; r++) {
        row_state rs;
        row_begin(&rs, out, r, heaps);
        size_t p = 0;
        for (; p + 2 <= panels; p += 2) { /* two full panels: latents j0 .. j0+31 */
            const size_t j0 = p * PANEL, nl2 = d_sae - j0 - PANEL < PANEL ? d_sae - j0 - PANEL : PANEL;
            float32x4_t d[4], d2[4];
            dot_panel_2x1(w + p * PANEL * d_in, w + (p + 1) * PANEL * d_in, x + r * d_in, d_in, d, d2);
            epilogue(plan, d, j0, PANEL, &rs);
            epilogue(plan, d2, j0 + PANEL, nl2, &rs);
        }
        if (p < panels) {
            const size_t j0 = p * PANEL, nl = d_sae - j0;
            float32x4_t d[4];
            dot_panel_1(w + p * PANEL * d_in, x + r * d_in, d_in, d);
            epilogue(plan, d, j0, nl, &rs);
        }
        out->count[r] = row_end(plan, &rs);
    }
}

const saemon_kernel saemon_kernel_f32_encode_4x16_neon = {
    .name = "f32-encode-4x16-neon",
    .isa = "neon",
    .cpu_features = SAEMON_CPU_NEON,
    .priority = 10,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
