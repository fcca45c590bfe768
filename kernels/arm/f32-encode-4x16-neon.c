/* NEON fp32 encode kernel over 16-latent panels (layout in f32-panel-neon.h).
 *
 * Batches of 4+ rows go in blocks of up to 64 rows: panels outer, tiles of
 * 4 rows inner (16 accumulators: 4 rows x 4 vectors, each weight load feeds
 * 4 FMAs), so a block reads W once. Fewer than 4 rows take the batch-1 path
 * (two panels at a time: 8 accumulators). Every path gives the same bits for
 * a row (see f32-panel-neon.h). */
#include "kernels/arm/f32-panel-neon.h"

static size_t packed_size(const saemon_kernel_plan *plan)
{
    return f32_panels_size(plan);
}

/* Rows encoded together against each panel: W is streamed from memory once
 * per block (a panel, 16 x d_in floats, stays in cache while the block's
 * rows pass over it), and per-row state stays small however large the batch. */
#define ROW_BLOCK 64

static size_t block_rows(size_t max_batch)
{
    return max_batch == 0 ? 1 : max_batch < ROW_BLOCK ? max_batch : ROW_BLOCK;
}

/* Scratch: [row_state x block][TopK heap of topk_cap entries x block]. */
static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    const size_t rows = block_rows(max_batch);
    size_t bytes = rows * sizeof(row_state);
    if (plan->epilogue == SAEMON_EPI_TOPK)
        bytes += rows * topk_cap(plan) * sizeof(saemon_topk_entry);
    return bytes;
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed)
{
    f32_panels_pack(plan, w_rows, packed);
}

/* Fewer rows than a tile: each row streams W alone, two panels at a time. */
static void encode_rows_1(const saemon_kernel_plan *plan, const float *w, const float *x, size_t r0,
                          size_t n, const saemon_kernel_out *out, row_state *rs)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae, panels = n_panels(plan);
    for (size_t r = r0; r < r0 + n; r++, rs++) {
        size_t p = 0;
        for (; p + 2 <= panels; p += 2) { /* two panels: latents j0 .. j0+31 */
            const size_t j0 = p * PANEL, nl2 = d_sae - j0 - PANEL < PANEL ? d_sae - j0 - PANEL : PANEL;
            float32x4_t d[4], d2[4];
            dot_panel_2x1(w + p * PANEL * d_in, w + (p + 1) * PANEL * d_in, x + r * d_in, d_in, d, d2);
            epilogue(plan, d, j0, PANEL, rs);
            epilogue(plan, d2, j0 + PANEL, nl2, rs);
        }
        if (p < panels) {
            float32x4_t d[4];
            dot_panel_1(w + p * PANEL * d_in, x + r * d_in, d_in, d);
            epilogue(plan, d, p * PANEL, d_sae - p * PANEL, rs);
        }
        out->count[r] = row_end(plan, rs);
    }
}

/* A block of >= TILE rows: panels outer, 4-row tiles inner (leftover rows
 * of the block take the 1-row dot product for the same panel). */
static void encode_block(const saemon_kernel_plan *plan, const float *w, const float *x, size_t r0,
                         size_t n, const saemon_kernel_out *out, row_state *rs)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae, panels = n_panels(plan);
    for (size_t p = 0; p < panels; p++) {
        const size_t j0 = p * PANEL, nl = d_sae - j0 < PANEL ? d_sae - j0 : PANEL;
        const float *wp = w + p * PANEL * d_in;
        size_t t = 0;
        for (; t + TILE <= n; t += TILE) {
            float32x4_t d[TILE][4];
            dot_panel_4(wp, x + (r0 + t) * d_in, d_in, d);
            for (size_t u = 0; u < TILE; u++)
                epilogue(plan, d[u], j0, nl, &rs[t + u]);
        }
        for (; t < n; t++) {
            float32x4_t d[4];
            dot_panel_1(wp, x + (r0 + t) * d_in, d_in, d);
            epilogue(plan, d, j0, nl, &rs[t]);
        }
    }
    for (size_t t = 0; t < n; t++)
        out->count[r0 + t] = row_end(plan, &rs[t]);
}

static void encode(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    const size_t block = block_rows(n), cap = topk_cap(plan);
    row_state *rs = scratch;
    saemon_topk_entry *heaps = plan->epilogue == SAEMON_EPI_TOPK ? (saemon_topk_entry *)(rs + block)
                                                                 : NULL;
    for (size_t r0 = 0; r0 < n; r0 += block) {
        const size_t rows = n - r0 < block ? n - r0 : block;
        for (size_t t = 0; t < rows; t++)
            row_begin(&rs[t], out, r0 + t, heaps ? heaps + t * cap : NULL);
        if (rows < TILE)
            encode_rows_1(plan, packed, x, r0, rows, out, rs);
        else
            encode_block(plan, packed, x, r0, rows, out, rs);
    }
}

const saemon_kernel saemon_kernel_f32_encode_4x16_neon = {
    .name = "f32-encode-4x16-neon",
    .packed_layout = 1,
    .family = "neon",
    .cpu_features = SAEMON_CPU_NEON,
    .priority = 10,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
