/* Generic body of the x86 fp32 encode kernels (f32-encode-8x32-avx512,
 * f32-encode-6x16-avx2): panels of PANEL latents interleaved along d_in.
 * The including file selects the ISA (simd-<isa>.h) and sets TILE_ROWS and
 * TILE_PREFETCH, then defines its saemon_kernel from the functions below.
 *
 * Packed layout: panel p (latents PANEL*p ...) is d_in consecutive vectors,
 * vector i = W[PANEL*p + l][i] for l < PANEL; latents past d_sae are zero.
 *
 * 1 row (memory-bound): four panels streamed side by side, eight
 * accumulators (two per panel, even/odd i) to cover FMA latency; every weight
 * byte is read once per token with sequential aligned loads.
 * 2+ rows (compute-bound): a TILE_ROWS x 2*PANEL register tile; each weight
 * vector loaded once feeds TILE_ROWS rows. Latent panels are the outer loop
 * so a panel pair stays in L1/L2 while every row block passes over it: W
 * comes from DRAM once per call.
 *
 * The epilogue (bias, threshold/gate, TopK bar) runs in registers as each
 * panel finishes (x86-epilogue.h). */
#ifndef SAEMON_X86_F32_ENCODE_H
#define SAEMON_X86_F32_ENCODE_H

#include "kernels/x86/x86-epilogue.h"

static size_t packed_size(const saemon_kernel_plan *plan)
{
    return n_panels(plan->d_sae) * PANEL * plan->d_in * sizeof(float);
}

/* Scratch: one sink per row, then (TOPK) one k-entry heap per row. */
static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    size_t heaps = plan->epilogue == SAEMON_EPI_TOPK ? plan->k * sizeof(saemon_topk_entry) : 0;
    return max_batch * (sizeof(x86_sink) + heaps);
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae;
    float *dst = packed;
    for (size_t p = 0; p < n_panels(d_sae); p++)
        for (size_t i = 0; i < d_in; i++)
            for (size_t l = 0; l < PANEL; l++) {
                size_t j = p * PANEL + l;
                *dst++ = j < d_sae ? w_rows[j * d_in + i] : 0.0f;
            }
}

/* One row, panels [p0, p0+np) with np <= 4, accumulated side by side. */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const float *w,
                                                             const float *x, size_t p0, int np, x86_sink *s)
{
    const size_t d_in = plan->d_in, stride = d_in * PANEL;
    const float *w0 = w + p0 * stride;
    vf a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = v_zero();
    size_t i = 0;
    for (; i + 2 <= d_in; i += 2) {
        const vf x0 = v_set1(x[i]), x1 = v_set1(x[i + 1]);
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            a[q] = v_fmadd(x0, v_load(w0 + q * stride + i * PANEL), a[q]);
            b[q] = v_fmadd(x1, v_load(w0 + q * stride + (i + 1) * PANEL), b[q]);
        }
    }
    if (i < d_in) {
        const vf x0 = v_set1(x[i]);
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = v_fmadd(x0, v_load(w0 + q * stride + i * PANEL), a[q]);
    }
#pragma GCC unroll 4
    for (int q = 0; q < np; q++)
        epilogue_panel(plan, (p0 + q) * PANEL, v_add(a[q], b[q]), s);
}

static void encode_one_row(const saemon_kernel_plan *plan, const float *w, const float *x, x86_sink *s)
{
    const size_t np = n_panels(plan->d_sae);
    size_t p = 0;
    for (; p + 4 <= np; p += 4)
        row_panels(plan, w, x, p, 4, s);
    for (; p < np; p++)
        row_panels(plan, w, x, p, 1, s);
}

/* R rows (x rows r0..r0+R) x NP panels (1 or 2) starting at panel p. */
static inline __attribute__((always_inline)) void tile(const saemon_kernel_plan *plan, const float *w, const float *x,
                                                       size_t p, int R, int NP, x86_sink *s)
{
    const size_t d_in = plan->d_in, stride = d_in * PANEL;
    const float *w0 = w + p * stride, *w1 = w0 + stride;
    vf a[TILE_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = v_zero();
    for (size_t i = 0; i < d_in; i++) {
        /* With few rows the tile is bandwidth-bound: help the prefetcher. */
        _mm_prefetch((const char *)(w0 + i * PANEL) + TILE_PREFETCH, _MM_HINT_T0);
        if (NP > 1)
            _mm_prefetch((const char *)(w1 + i * PANEL) + TILE_PREFETCH, _MM_HINT_T0);
        const vf v0 = v_load(w0 + i * PANEL);
        const vf v1 = NP > 1 ? v_load(w1 + i * PANEL) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const vf xb = v_set1(x[r * d_in + i]);
            a[r][0] = v_fmadd(xb, v0, a[r][0]);
            if (NP > 1)
                a[r][1] = v_fmadd(xb, v1, a[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        epilogue_panel(plan, p * PANEL, a[r][0], &s[r]);
        if (NP > 1)
            epilogue_panel(plan, (p + 1) * PANEL, a[r][1], &s[r]);
    }
}

/* One instantiation of the tile per row count (TILE_SWITCH, x86-epilogue.h). */
#define TILE_CASE(R)                                                                                       \
    case R:                                                                                                \
        if ((R) <= TILE_ROWS) {                                                                            \
            if (np2 == 2)                                                                                  \
                tile(plan, w, x, p, TILE_R(R), 2, s);                                                      \
            else                                                                                           \
                tile(plan, w, x, p, TILE_R(R), 1, s);                                                      \
        }                                                                                                  \
        break;

static void tile_dispatch(const saemon_kernel_plan *plan, const float *w, const float *x, size_t p, int rows, int np2,
                          x86_sink *s)
{
    _Static_assert(TILE_ROWS <= 8, "TILE_SWITCH instantiates up to 8 rows");
    TILE_SWITCH(rows, TILE_CASE)
}
#undef TILE_CASE

static void encode(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    const float *w = packed;
    x86_sink *sinks = scratch; /* one per row: rows keep appending across panels */
    saemon_topk_entry *heaps = (saemon_topk_entry *)(sinks + n);
    for (size_t r = 0; r < n; r++)
        sink_init(&sinks[r], plan, out, r, heaps + r * plan->k);
    if (n == 1) {
        encode_one_row(plan, w, x, &sinks[0]);
    } else {
        const size_t np = n_panels(plan->d_sae), d_in = plan->d_in;
        for (size_t p = 0; p < np; p += 2)
            for (size_t r0 = 0; r0 < n; r0 += TILE_ROWS)
                tile_dispatch(plan, w, x + r0 * d_in, p, (int)(n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS),
                              np - p >= 2 ? 2 : 1, sinks + r0);
    }
    for (size_t r = 0; r < n; r++)
        out->count[r] = sink_finish(&sinks[r], plan);
}

#endif
