/* f32 encode, AVX-512F: panels of 16 latents interleaved along d_in.
 *
 * Packed layout: panel p (latents 16p..16p+15) is d_in consecutive 64-byte
 * vectors, vector i = W[16p+l][i] for l = 0..15; latents past d_sae are zero.
 *
 * 1 row (memory-bound): four panels streamed side by side, eight
 * accumulators (two per panel, even/odd i) to cover FMA latency; every weight
 * byte is read once per token with sequential 64-byte loads.
 * 2+ rows (compute-bound): an 8-row x 32-latent register tile (16 zmm
 * accumulators); each weight vector loaded once feeds 8 rows. Latent panels
 * are the outer loop so a panel pair (d_in*128 bytes) stays in L1/L2 while
 * every row block passes over it: W comes from DRAM once per call.
 *
 * The epilogue (bias, threshold/gate, TopK bar) runs in registers as each
 * panel finishes (avx512-common.h). */
#include <string.h>

#include "kernels/x86/avx512-common.h"

#define TILE_ROWS 8
#define TILE_PREFETCH 4096 /* bytes ahead in each panel stream (1024, 2048 measured slower) */

static size_t packed_size(const saemon_kernel_plan *plan)
{
    return avx512_panels(plan->d_sae) * AVX512_PANEL * plan->d_in * sizeof(float);
}

/* Scratch: one sink per row, then (TOPK) one k-entry heap per row. */
static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    size_t heaps = plan->epilogue == SAEMON_EPI_TOPK ? plan->k * sizeof(saemon_topk_entry) : 0;
    return max_batch * (sizeof(avx512_sink) + heaps);
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae;
    float *dst = packed;
    for (size_t p = 0; p < avx512_panels(d_sae); p++)
        for (size_t i = 0; i < d_in; i++)
            for (size_t l = 0; l < AVX512_PANEL; l++) {
                size_t j = p * AVX512_PANEL + l;
                *dst++ = j < d_sae ? w_rows[j * d_in + i] : 0.0f;
            }
}

/* One row, panels [p0, p0+np) with np <= 4, accumulated side by side. */
static inline __attribute__((always_inline)) void row_panels(const saemon_kernel_plan *plan, const float *w,
                                                             const float *x, size_t p0, int np,
                                                             avx512_sink *s)
{
    const size_t d_in = plan->d_in, stride = d_in * AVX512_PANEL;
    const float *w0 = w + p0 * stride;
    __m512 a[4], b[4];
    for (int q = 0; q < 4; q++)
        a[q] = b[q] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 2 <= d_in; i += 2) {
        const __m512 x0 = _mm512_set1_ps(x[i]), x1 = _mm512_set1_ps(x[i + 1]);
#pragma GCC unroll 4
        for (int q = 0; q < np; q++) {
            a[q] = _mm512_fmadd_ps(x0, _mm512_load_ps(w0 + q * stride + i * AVX512_PANEL), a[q]);
            b[q] = _mm512_fmadd_ps(x1, _mm512_load_ps(w0 + q * stride + (i + 1) * AVX512_PANEL), b[q]);
        }
    }
    if (i < d_in) {
        const __m512 x0 = _mm512_set1_ps(x[i]);
#pragma GCC unroll 4
        for (int q = 0; q < np; q++)
            a[q] = _mm512_fmadd_ps(x0, _mm512_load_ps(w0 + q * stride + i * AVX512_PANEL), a[q]);
    }
#pragma GCC unroll 4
    for (int q = 0; q < np; q++)
        avx512_epilogue_panel(plan, (p0 + q) * AVX512_PANEL, _mm512_add_ps(a[q], b[q]), s);
}

static void encode_one_row(const saemon_kernel_plan *plan, const float *w, const float *x, avx512_sink *s)
{
    const size_t np = avx512_panels(plan->d_sae);
    size_t p = 0;
    for (; p + 4 <= np; p += 4)
        row_panels(plan, w, x, p, 4, s);
    for (; p < np; p++)
        row_panels(plan, w, x, p, 1, s);
}

/* R rows (x rows r0..r0+R) x NP panels (1 or 2) starting at panel p. */
static inline __attribute__((always_inline)) void tile(const saemon_kernel_plan *plan, const float *w,
                                                       const float *x, size_t p, int R, int NP,
                                                       avx512_sink *s)
{
    const size_t d_in = plan->d_in, stride = d_in * AVX512_PANEL;
    const float *w0 = w + p * stride, *w1 = w0 + stride;
    __m512 a[TILE_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (size_t i = 0; i < d_in; i++) {
        /* With few rows the tile is bandwidth-bound: help the prefetcher. */
        _mm_prefetch((const char *)(w0 + i * AVX512_PANEL) + TILE_PREFETCH, _MM_HINT_T0);
        if (NP > 1)
            _mm_prefetch((const char *)(w1 + i * AVX512_PANEL) + TILE_PREFETCH, _MM_HINT_T0);
        const __m512 v0 = _mm512_load_ps(w0 + i * AVX512_PANEL);
        const __m512 v1 = NP > 1 ? _mm512_load_ps(w1 + i * AVX512_PANEL) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 xb = _mm512_set1_ps(x[r * d_in + i]);
            a[r][0] = _mm512_fmadd_ps(xb, v0, a[r][0]);
            if (NP > 1)
                a[r][1] = _mm512_fmadd_ps(xb, v1, a[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        avx512_epilogue_panel(plan, p * AVX512_PANEL, a[r][0], &s[r]);
        if (NP > 1)
            avx512_epilogue_panel(plan, (p + 1) * AVX512_PANEL, a[r][1], &s[r]);
    }
}

/* Instantiate the tile for each row count so R is a compile-time constant. */
#define TILE_CASE(R)                                                                                  \
    case R:                                                                                           \
        if (np2 == 2)                                                                                 \
            tile(plan, w, x, p, R, 2, s);                                                             \
        else                                                                                          \
            tile(plan, w, x, p, R, 1, s);                                                             \
        break;

static void tile_dispatch(const saemon_kernel_plan *plan, const float *w, const float *x, size_t p, int rows,
                          int np2, avx512_sink *s)
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

static void encode(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    const float *w = packed;
    avx512_sink *sinks = scratch; /* one per row: rows keep appending across panels */
    saemon_topk_entry *heaps = (saemon_topk_entry *)(sinks + n);
    for (size_t r = 0; r < n; r++)
        avx512_sink_init(&sinks[r], plan, out, r, heaps + r * plan->k);
    if (n == 1) {
        encode_one_row(plan, w, x, &sinks[0]);
    } else {
        const size_t np = avx512_panels(plan->d_sae), d_in = plan->d_in;
        for (size_t p = 0; p < np; p += 2)
            for (size_t r0 = 0; r0 < n; r0 += TILE_ROWS)
                tile_dispatch(plan, w, x + r0 * d_in, p, (int)(n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS),
                              np - p >= 2 ? 2 : 1, sinks + r0);
    }
    for (size_t r = 0; r < n; r++)
        out->count[r] = avx512_sink_finish(&sinks[r], plan);
}

const saemon_kernel saemon_kernel_f32_encode_16x_avx512 = {
    .name = "f32-encode-16x-avx512",
    .isa = "avx512",
    .cpu_features = SAEMON_CPU_AVX512F,
    .priority = 10,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
