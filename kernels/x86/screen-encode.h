/* The driver shared by the screened AVX-512 kernels (int8 VNNI, bf16):
 * prepare every row (quantise, or fall back to fp32 for non-finite rows),
 * then per chunk of latents screen them (1-row stream or register tile) and
 * recompute the chunk's candidates exactly in fp32.
 *
 * Included, after its definitions, by each screened kernel file, which
 * provides: layout(), prep_row(), row_panels(), tile(), screen_xq_bytes()
 * and TILE_ROWS. (The simdjson pattern: one generic body, one copy per ISA.) */
#ifndef SAEMON_X86_SCREEN_ENCODE_H
#define SAEMON_X86_SCREEN_ENCODE_H

static void encode(const saemon_kernel_plan *plan, const void *packed_v, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    const char *packed = packed_v;
    const screen_layout L = layout(plan);
    const screen_scratch S = screen_scratch_of(scratch, n, screen_xq_bytes(plan));
    const size_t d_in = plan->d_in, np = avx512_panels(plan->d_sae);
    int screened = 0;
    for (size_t r = 0; r < n; r++) {
        avx512_sink_init(&S.sinks[r], plan, out, r, S.heaps + r * plan->k);
        prep_row(plan, x + r * d_in, &S.rows[r], S.xq + r * S.xq_stride);
        if (S.rows[r].fallback)
            screen_fallback_row(plan, packed, &L, x + r * d_in, &S.sinks[r]);
        else
            screened++;
    }
    /* Screen a chunk of latents, then recompute that chunk's candidates. */
    const size_t chunk_panels = SCREEN_CHUNK / AVX512_PANEL;
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
        out->count[r] = avx512_sink_finish(&S.sinks[r], plan);
}

#endif
