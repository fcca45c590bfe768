/* The driver shared by every screened x86 kernel (int8 VNNI, int8 AVX2,
 * bf16): prepare every row (quantise, or fall back to fp32 for rows that
 * cannot be screened), then per chunk of latents screen them (1-row stream or
 * register tile) and recompute the chunk's candidates exactly in fp32.
 *
 * Included, after its definitions, by each screened kernel file, which
 * provides: TILE_ROWS, tile_acc (the accumulator vector type), layout(),
 * prep_row(), row_panels(), screen_xq_bytes(), e_abs(), and for the tile
 * tile_weights() (where panel p's stream starts), tile_blocks() (how many
 * weight blocks a panel has), tile_accumulate() and tile_dots() (the
 * accumulators as approximate fp32 dots). (The simdjson pattern: one generic
 * body, one copy per ISA.) */
#ifndef SAEMON_X86_SCREEN_ENCODE_H
#define SAEMON_X86_SCREEN_ENCODE_H

/* One instantiation of the accumulation per row count (TILE_SWITCH,
 * x86-epilogue.h). Kept out of line, apart from the screening epilogue:
 * inlined together, GCC 12 splits the accumulators' live ranges and adds two
 * register copies per dot instruction. */
#define TILE_CASE(R)                                                                                       \
    case R:                                                                                                \
        if ((R) <= TILE_ROWS) {                                                                            \
            if (NP == 2)                                                                                   \
                tile_accumulate(w0, L, nblk, xq, xq_stride, TILE_R(R), 2, acc);                            \
            else                                                                                           \
                tile_accumulate(w0, L, nblk, xq, xq_stride, TILE_R(R), 1, acc);                            \
        }                                                                                                  \
        break;

static __attribute__((noinline)) void tile_dispatch(const char *w0, const screen_layout *L, size_t nblk,
                                                    const unsigned char *xq, size_t xq_stride, int rows, int NP,
                                                    tile_acc acc[TILE_ROWS][2])
{
    _Static_assert(TILE_ROWS <= 8, "TILE_SWITCH instantiates up to 8 rows");
    TILE_SWITCH(rows, TILE_CASE)
}
#undef TILE_CASE

/* Rows r0..r0+rows x panels p..p+NP: accumulate, then screen each panel. */
static void tile(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L, const screen_scratch *S,
                 size_t r0, size_t p, int rows, int NP)
{
    tile_acc acc[TILE_ROWS][2];
    tile_dispatch(tile_weights(packed, L, p), L, tile_blocks(plan), S->xq + r0 * S->xq_stride, S->xq_stride, rows,
                  NP, acc);
    for (int r = 0; r < rows; r++) {
        screen_row *row = &S->rows[r0 + (size_t)r];
        if (row->fallback)
            continue;
        for (int q = 0; q < NP; q++) {
            size_t j0 = (p + (size_t)q) * PANEL;
            screen_panel(plan, packed, L, j0, tile_dots(packed, L, j0, acc[r][q], row), row, e_abs(plan),
                         &S->sinks[r0 + (size_t)r], 0);
        }
    }
}

static void encode(const saemon_kernel_plan *plan, const void *packed_v, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    const char *packed = packed_v;
    const screen_layout L = layout(plan);
    const screen_scratch S = screen_scratch_of(scratch, n, screen_xq_bytes(plan));
    const size_t d_in = plan->d_in, np = n_panels(plan->d_sae);
    int screened = 0;
    if ((plan->flags & SAEMON_PLAN_NO_SCREEN) && n > 1) {
        /* Every row on the fp32 path: FALLBACK_GROUP rows per weight read. */
        for (size_t r = 0; r < n; r++)
            sink_init(&S.sinks[r], plan, out, r, S.heaps + r * plan->k);
        for (size_t r = 0; r < n; r += FALLBACK_GROUP)
            screen_fallback_rows(plan, packed, &L, x + r * d_in, n - r < FALLBACK_GROUP ? n - r : FALLBACK_GROUP,
                                 &S.sinks[r]);
        for (size_t r = 0; r < n; r++)
            out->count[r] = sink_finish(&S.sinks[r], plan);
        return;
    }
    for (size_t r = 0; r < n; r++) {
        sink_init(&S.sinks[r], plan, out, r, S.heaps + r * plan->k);
        prep_row(plan, x + r * d_in, &S.rows[r], S.xq + r * S.xq_stride);
        if (S.rows[r].fallback)
            screen_fallback_row(plan, packed, &L, x + r * d_in, &S.sinks[r]);
        else
            screened++;
    }
    /* Screen a chunk of latents, then recompute that chunk's candidates. */
    const size_t chunk_panels = SCREEN_CHUNK / PANEL;
    for (size_t c0 = 0; screened && c0 < np; c0 += chunk_panels) {
        const size_t c1 = np - c0 < chunk_panels ? np : c0 + chunk_panels;
        if (n == 1) {
            size_t p = c0;
            for (; p + 4 <= c1; p += 4)
                row_panels(plan, packed, &L, S.xq, &S.rows[0], p, 4, &S.sinks[0]);
            for (; p < c1; p++)
                row_panels(plan, packed, &L, S.xq, &S.rows[0], p, 1, &S.sinks[0]);
        } else {
            for (size_t p = c0; p < c1; p += 2)
                for (size_t r0 = 0; r0 < n; r0 += TILE_ROWS)
                    tile(plan, packed, &L, &S, r0, p, (int)(n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS),
                         c1 - p >= 2 ? 2 : 1);
        }
        for (size_t r = 0; r < n; r++)
            if (!S.rows[r].fallback)
                screen_flush(plan, packed, &L, x + r * d_in, &S.rows[r], &S.sinks[r]);
    }
    for (size_t r = 0; r < n; r++)
        out->count[r] = sink_finish(&S.sinks[r], plan);
}

#endif
