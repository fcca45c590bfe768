/* Screen-then-recompute machinery shared by the int8 (VNNI) and bf16
 * AVX-512 kernels. Each variant computes, per latent j, an approximate dot
 * product D~_j from small copies x^ (per token) and W^_j (packed); this file
 * turns D~_j into a rigorous interval for the fp32 result, keeps the latents
 * that COULD pass the epilogue, recomputes exactly those in fp32 from the
 * fp32 copy of their rows, and emits them through the normal epilogue.
 *
 * The bound. Let d^r_j be the fp32 dot the recompute produces (any order,
 * FMA, <= d_in + 16 roundings deep), d_j the exact dot, u = 2^-24,
 * gamma = (d_in+16)u / (1 - (d_in+16)u). Then by Cauchy-Schwarz
 *   |d^r_j - d_j|               <= gamma * ||x||2 * ||W_j||2
 *   |d_j - sum x^ W^_j|         <= ||x||2 * ||W_j - W^_j||2 + ||x - x^||2 * ||W^_j||2
 *   |sum x^ W^_j - D~_j|        <= int8: 0 (exact int32) ; bf16: gamma*||x^||2*||W^_j||2
 *                                  + (2 d_in + 64) 2^-126 (vdpbf16ps flushes denormals)
 * so |d^r_j - D~_j| <= E_j = c1_j * X2 + c2_j * R2 + e_abs with the per-latent
 * constants c1_j, c2_j computed at pack time (rounded up) and the per-token
 * X2 = ||x||2, R2 = ||x - x^||2 (computed in double, rounded up). A further
 * relative 2^-12 on E and 2^-20 on |D~|, |b|, |threshold| absorbs the fp32
 * rounding of D~ itself and of evaluating the test below.
 *
 * The tests (the epilogue is monotone in d, and rounding is monotone):
 *   THRESHOLD  keep if  D~ + E + b >= threshold     (fl(d+b) > t implies d+b > t)
 *   GATED      keep if  D~ + E + b_gate >= 0  and  max(ms(D~-E), ms(D~+E)) + mb >= 0
 *   TOPK       keep if  upper bound of (d+b)*ms  >  the row's current k-th kept
 *              exact value (0 until k are kept: ReLU drops the rest). Kept
 *              values are exact fp32 results, so this bar is never below the
 *              true k-th value among latents seen so far, and a latent at or
 *              under it cannot enter (equal values lose: higher index).
 * NaN in a test counts as "keep". Rows whose x is not finite, or whose max|x|
 * is outside [2^-50, 2^50], take the fp32 path for every latent; latents whose
 * max|W_j| is outside that range get c1 = +inf (always recomputed). */
#ifndef SAEMON_X86_SCREEN_COMMON_H
#define SAEMON_X86_SCREEN_COMMON_H

#include <math.h>
#include <string.h>

#include "kernels/x86/avx512-common.h"

#define SCREEN_TINY 0x1p-50
#define SCREEN_HUGE 0x1p50
#define SCREEN_ROUND_UP (1.0 + 0x1p-20)

/* Packed buffer: everything 64-byte aligned.
 *   rows   fp32 [d_sae][row_stride]   the recompute copy, zero padded
 *   c1, c2 fp32 [n_panels*16]         bound constants (see above)
 *   scale  fp32 [n_panels*16]         int8 only: per-latent weight scale
 *   colsum int32 [n_panels*16]        int8 only: 128 * sum_i w_ji
 *   panels the variant's small copy, panel p at panels + p*panel_bytes */
typedef struct screen_layout {
    size_t row_stride; /* floats per fp32 row */
    size_t lanes;      /* n_panels * 16 */
    size_t rows, c1, c2, scale, colsum, panels;
    size_t panel_bytes;
    size_t total;
} screen_layout;

static inline screen_layout screen_layout_of(const saemon_kernel_plan *plan, size_t panel_bytes)
{
    screen_layout L;
    L.row_stride = avx512_round_up(plan->d_in, 16);
    L.lanes = avx512_panels(plan->d_sae) * AVX512_PANEL;
    L.rows = 0;
    L.c1 = avx512_round_up(L.rows + plan->d_sae * L.row_stride * sizeof(float), 64);
    L.c2 = L.c1 + L.lanes * sizeof(float);
    L.scale = L.c2 + L.lanes * sizeof(float);
    L.colsum = L.scale + L.lanes * sizeof(float);
    L.panels = L.colsum + L.lanes * sizeof(int32_t);
    L.panel_bytes = panel_bytes;
    L.total = L.panels + avx512_panels(plan->d_sae) * panel_bytes;
    return L;
}

static inline double screen_gamma(size_t d_in)
{
    double nu = (double)(d_in + 16) * 0x1p-24;
    return nu / (1.0 - nu);
}

static inline float screen_round_up(double v) { return (float)(v * SCREEN_ROUND_UP); }

/* Copy W into the fp32 rows section (zero padded to row_stride). */
static inline void screen_pack_rows(const saemon_kernel_plan *plan, const float *w_rows, char *packed,
                                    const screen_layout *L)
{
    float *rows = (float *)(packed + L->rows);
    for (size_t j = 0; j < plan->d_sae; j++) {
        memcpy(rows + j * L->row_stride, w_rows + j * plan->d_in, plan->d_in * sizeof(float));
        memset(rows + j * L->row_stride + plan->d_in, 0, (L->row_stride - plan->d_in) * sizeof(float));
    }
}

/* Per-row state kept in scratch. */
/* Latents screened between two flushes: candidates per row fit in one chunk. */
#define SCREEN_CHUNK 1024

typedef struct screen_row {
    float x2, r2, sx; /* ||x||2, ||x - x^||2, int8 activation scale */
    int fallback;     /* non-finite or out-of-range x: fp32 path */
    uint32_t n_cand;
    uint32_t *cand; /* [SCREEN_CHUNK] latents to recompute */
} screen_row;

/* max|x| and whether the row can be screened at all. */
static inline int screen_row_screenable(const float *x, size_t d_in, double *max_abs)
{
    double m = 0;
    for (size_t i = 0; i < d_in; i++) {
        double a = fabs((double)x[i]);
        if (!(a <= 3.5e38)) /* NaN or Inf */
            return 0;
        if (a > m)
            m = a;
    }
    *max_abs = m;
    return m >= SCREEN_TINY && m <= SCREEN_HUGE;
}

/* Screen one panel's approximate dots dt (latents j0..j0+15) for one row and
 * append the latents that could pass to the row's candidate list. */
static inline void screen_panel(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L,
                                size_t j0, __m512 dt, screen_row *row, float e_abs, const avx512_sink *s,
                                int prefetch_rows)
{
    const __mmask16 valid = avx512_valid_lanes(plan->d_sae, j0);
    const float *c1 = (const float *)(packed + L->c1), *c2 = (const float *)(packed + L->c2);
    const __m512 zero = _mm512_setzero_ps();
    __m512 e = _mm512_fmadd_ps(_mm512_load_ps(c1 + j0), _mm512_set1_ps(row->x2),
                               _mm512_fmadd_ps(_mm512_load_ps(c2 + j0), _mm512_set1_ps(row->r2),
                                               _mm512_set1_ps(e_abs)));
    const __m512 b = _mm512_maskz_loadu_ps(valid, plan->bias + j0);
    __m512 t = plan->epilogue == SAEMON_EPI_THRESHOLD ? _mm512_maskz_loadu_ps(valid, plan->threshold + j0) : zero;
    /* slack: 2^-12 E + 2^-20 (|D~| + |b| + |t| + E) + 1e-30 */
    __m512 mag_terms = _mm512_add_ps(_mm512_add_ps(_mm512_abs_ps(dt), _mm512_abs_ps(b)),
                                     _mm512_add_ps(_mm512_abs_ps(t), e));
    e = _mm512_fmadd_ps(e, _mm512_set1_ps(1.0f + 0x1p-12f),
                        _mm512_fmadd_ps(mag_terms, _mm512_set1_ps(0x1p-20f), _mm512_set1_ps(1e-30f)));
    const __m512 hi = _mm512_add_ps(dt, e), lo = _mm512_sub_ps(dt, e);
    __mmask16 m;
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD:
        m = _mm512_mask_cmp_ps_mask(valid, _mm512_add_ps(hi, b), t, _CMP_NLT_UQ);
        break;
    case SAEMON_EPI_GATED: {
        const __m512 ms = _mm512_maskz_loadu_ps(valid, plan->mag_scale + j0);
        const __m512 mb = _mm512_maskz_loadu_ps(valid, plan->mag_bias + j0);
        const __m512 a = _mm512_mul_ps(ms, hi), c = _mm512_mul_ps(ms, lo);
        __m512 mag = _mm512_add_ps(_mm512_max_ps(a, c), mb);
        mag = _mm512_add_ps(mag, _mm512_fmadd_ps(_mm512_abs_ps(mag), _mm512_set1_ps(0x1p-20f),
                                                 _mm512_set1_ps(1e-30f)));
        /* NaN-safe max: if either product is NaN, keep. */
        __mmask16 nan_ms = _mm512_cmp_ps_mask(a, c, _CMP_UNORD_Q);
        m = _mm512_mask_cmp_ps_mask(valid, _mm512_add_ps(hi, b), zero, _CMP_NLT_UQ);
        m &= (__mmask16)(_mm512_cmp_ps_mask(mag, zero, _CMP_NLT_UQ) | nan_ms);
        break;
    }
    default: { /* TOPK */
        __m512 up = _mm512_add_ps(hi, b);
        __mmask16 nan_ms = 0;
        if (plan->mag_scale) {
            const __m512 ms = _mm512_maskz_loadu_ps(valid, plan->mag_scale + j0);
            const __m512 a = _mm512_mul_ps(up, ms), c = _mm512_mul_ps(_mm512_add_ps(lo, b), ms);
            nan_ms = _mm512_cmp_ps_mask(a, c, _CMP_UNORD_Q);
            up = _mm512_max_ps(a, c);
        }
        up = _mm512_add_ps(up, _mm512_fmadd_ps(_mm512_abs_ps(up), _mm512_set1_ps(0x1p-20f), _mm512_set1_ps(1e-30f)));
        /* The bar only rises, so testing against the bar of the last
         * flush is conservative. */
        m = _mm512_mask_cmp_ps_mask(valid, up, _mm512_set1_ps(s->topk_bar), _CMP_NLE_UQ) | (nan_ms & valid);
        break;
    }
    }
    if (m) {
        /* 1 row: start fetching the candidates' fp32 rows now, so they
         * arrive while the screen streams on (the chunk's recompute then
         * hits L2). Multi-row tiles already use most of the DRAM bandwidth;
         * there it measured slower, and screen_flush's prefetch does it. */
        const size_t row_bytes = L->row_stride * sizeof(float);
        for (__mmask16 mm = prefetch_rows ? m : 0; mm; mm &= (__mmask16)(mm - 1)) {
            const char *r = packed + L->rows + (j0 + (size_t)__builtin_ctz(mm)) * row_bytes;
            for (size_t o = 0; o < row_bytes; o += 64)
                _mm_prefetch(r + o, _MM_HINT_T1);
        }
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)j0), iota);
        _mm512_mask_storeu_epi32(row->cand + row->n_cand, (__mmask16)((1u << __builtin_popcount(m)) - 1),
                                 _mm512_maskz_compress_epi32(m, idx));
        row->n_cand += (uint32_t)__builtin_popcount(m);
    }
}

/* Recompute the row's candidates in fp32 (ascending j) and emit them. The
 * rows are scattered through a large buffer: prefetch (into L2) a few rows
 * ahead so DRAM latency overlaps the dot products; 8 ahead measured best. */
#define SCREEN_PREFETCH_AHEAD 8
static inline void screen_flush(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L,
                                const float *x, screen_row *row, avx512_sink *s)
{
    const float *rows = (const float *)(packed + L->rows);
    const size_t row_bytes = L->row_stride * sizeof(float);
    for (uint32_t c = 0; c < row->n_cand && c < SCREEN_PREFETCH_AHEAD; c++)
        for (size_t o = 0; o < row_bytes; o += 64)
            _mm_prefetch((const char *)(rows + row->cand[c] * L->row_stride) + o, _MM_HINT_T1);
    for (uint32_t c = 0; c < row->n_cand; c++) {
        if (c + SCREEN_PREFETCH_AHEAD < row->n_cand) {
            const char *ahead = (const char *)(rows + row->cand[c + SCREEN_PREFETCH_AHEAD] * L->row_stride);
            for (size_t o = 0; o < row_bytes; o += 64)
                _mm_prefetch(ahead + o, _MM_HINT_T1);
        }
        size_t j = row->cand[c];
        avx512_epilogue_one(plan, j, avx512_dot_row(rows + j * L->row_stride, x, plan->d_in), s);
    }
    row->n_cand = 0;
}

/* Every latent in fp32: rows that cannot be screened. */
static inline void screen_fallback_row(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L,
                                       const float *x, avx512_sink *s)
{
    const float *rows = (const float *)(packed + L->rows);
    for (size_t j = 0; j < plan->d_sae; j++)
        avx512_epilogue_one(plan, j, avx512_dot_row(rows + j * L->row_stride, x, plan->d_in), s);
}

/* Scratch: sinks[n], rows[n], quantised x [n][xq_stride bytes],
 * candidate lists [n][SCREEN_CHUNK], heaps[n][k]. */
typedef struct screen_scratch {
    avx512_sink *sinks;
    screen_row *rows;
    unsigned char *xq;
    size_t xq_stride;
    saemon_topk_entry *heaps;
} screen_scratch;

static inline size_t screen_scratch_size(const saemon_kernel_plan *plan, size_t max_batch, size_t xq_bytes)
{
    size_t heaps = plan->epilogue == SAEMON_EPI_TOPK ? plan->k * sizeof(saemon_topk_entry) : 0;
    return avx512_round_up(max_batch * sizeof(avx512_sink), 64) + avx512_round_up(max_batch * sizeof(screen_row), 64) +
           max_batch * avx512_round_up(xq_bytes, 64) + max_batch * SCREEN_CHUNK * sizeof(uint32_t) +
           max_batch * heaps;
}

static inline screen_scratch screen_scratch_of(void *scratch, size_t n, size_t xq_bytes)
{
    screen_scratch S;
    char *p = scratch;
    S.sinks = (avx512_sink *)p;
    p += avx512_round_up(n * sizeof(avx512_sink), 64);
    S.rows = (screen_row *)p;
    p += avx512_round_up(n * sizeof(screen_row), 64);
    S.xq = (unsigned char *)p;
    S.xq_stride = avx512_round_up(xq_bytes, 64);
    p += n * S.xq_stride;
    for (size_t r = 0; r < n; r++) {
        S.rows[r].cand = (uint32_t *)p + r * SCREEN_CHUNK;
        S.rows[r].n_cand = 0;
    }
    p += n * SCREEN_CHUNK * sizeof(uint32_t);
    S.heaps = (saemon_topk_entry *)p;
    return S;
}

#endif
