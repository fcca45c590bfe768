/* Screen-then-recompute machinery shared by every screened x86 kernel
 * (int8 AVX512-VNNI, int8 AVX2, bf16 AVX512-BF16), written once against
 * simd-<isa>.h and compiled per ISA. Each variant computes, per latent j, an
 * approximate dot product D~_j from small copies x^ (per token) and W^_j
 * (packed); this file turns D~_j into a rigorous interval for the fp32
 * result, keeps the latents that COULD pass the epilogue, recomputes exactly
 * those in fp32 from the fp32 copy of their rows, and emits them through the
 * normal epilogue.
 *
 * The bound, its constants and the slack for their fp32 evaluation are
 * derived once for every ISA in kernels/screen-bound.h; this file evaluates
 * them with the vector vocabulary:
 *   E' = (c1_j X2 + c2_j R2 + e_abs)(1 + 2^-12) + 2^-20 (|D~| + |b| + |t| + E) + 1e-30
 *
 * The bound mutants (SAEMON_TEST_MUTATE_BOUND) live in kernels/screen-bound.h. */
#ifndef SAEMON_X86_SCREEN_COMMON_H
#define SAEMON_X86_SCREEN_COMMON_H

#include <math.h>
#include <string.h>

#include "kernels/screen-bound.h"
#include "kernels/x86/x86-epilogue.h"

/* Packed buffer: everything 64-byte aligned.
 *   rows   fp32 [d_sae][row_stride]   the recompute copy, zero padded
 *   c1, c2 fp32 [n_panels*PANEL]      bound constants (see above)
 *   scale  fp32 [n_panels*PANEL]      int8 only: per-latent weight scale
 *   colsum int32 [n_panels*PANEL]     int8 VNNI only: 128 * sum_i w_ji
 *   panels the variant's small copy, panel p at panels + p*panel_bytes */
typedef struct screen_layout {
    size_t row_stride; /* floats per fp32 row */
    size_t lanes;      /* n_panels * PANEL */
    size_t rows, c1, c2, scale, colsum, panels;
    size_t panel_bytes;
    size_t total;
} screen_layout;

static inline screen_layout screen_layout_of(const saemon_kernel_plan *plan, size_t panel_bytes)
{
    screen_layout L;
    L.row_stride = round_up(plan->d_in, VL);
    L.lanes = n_panels(plan->d_sae) * PANEL;
    L.rows = 0;
    L.c1 = round_up(L.rows + plan->d_sae * L.row_stride * sizeof(float), 64);
    L.c2 = round_up(L.c1 + L.lanes * sizeof(float), 64);
    L.scale = round_up(L.c2 + L.lanes * sizeof(float), 64);
    L.colsum = round_up(L.scale + L.lanes * sizeof(float), 64);
    L.panels = round_up(L.colsum + L.lanes * sizeof(int32_t), 64);
    L.panel_bytes = panel_bytes;
    L.total = L.panels + n_panels(plan->d_sae) * panel_bytes;
    return L;
}

/* Copy W into the fp32 rows section (zero padded to row_stride). */
static inline void screen_pack_rows(const saemon_kernel_plan *plan, const float *w_rows, char *packed,
                                    const screen_layout *L)
{
    float *rows = (float *)(packed + L->rows);
    if (rows == w_rows && L->row_stride == plan->d_in)
        return; /* packed in place: the rows are already there (kernel.h packed_rows_align) */
    for (size_t j = 0; j < plan->d_sae; j++) {
        memcpy(rows + j * L->row_stride, w_rows + j * plan->d_in, plan->d_in * sizeof(float));
        memset(rows + j * L->row_stride + plan->d_in, 0, (L->row_stride - plan->d_in) * sizeof(float));
    }
}

/* Latents screened between two flushes: candidates per row fit in one chunk. */
#define SCREEN_CHUNK 1024

/* Per-row state kept in scratch. */
typedef struct screen_row {
    float x2, r2, sx; /* ||x||2, ||x - x^||2, int8 activation scale */
    int fallback;     /* non-finite or out-of-range x, or screening off: fp32 path */
    uint32_t n_cand;
    uint32_t *cand; /* [SCREEN_CHUNK] latents to recompute */
} screen_row;

/* ---- int8 quantisation, shared by the VNNI and AVX2 int8 variants ------- */

/* screen_row_max (kernels/screen-bound.h), eight floats at a time: the same
 * answer (a float is <= 3.5e38 exactly when it is finite, and the largest
 * |x| is exact in float). Every screened x86 variant has AVX2. */
static inline int screen_row_max_avx2(const float *x, size_t d_in, double *max_abs)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(3.40282347e38f);
    __m256 m = _mm256_setzero_ps();
    int bad = 0;
    size_t i = 0;
    for (; i + 8 <= d_in; i += 8) {
        const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        bad |= _mm256_movemask_ps(_mm256_cmp_ps(a, lim, _CMP_NLE_UQ)); /* > FLT_MAX (Inf) or NaN */
        m = _mm256_max_ps(m, a);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float mf = 0.0f;
    for (int k = 0; k < 8; k++)
        mf = lanes[k] > mf ? lanes[k] : mf;
    for (; i < d_in; i++) {
        const float a = fabsf(x[i]);
        if (!(a <= 3.40282347e38f))
            bad = 1;
        mf = a > mf ? a : mf;
    }
    if (bad)
        return 0;
    *max_abs = (double)mf;
    return screen_in_range(*max_abs);
}

/* screen_i8_quantise_x, four inputs at a time: the same q (x / s_x in
 * double, rounded to nearest even by vcvtpd2dq as lrint does under the
 * round-to-nearest mode the encoder requires, clamped to +-127). ||x|| and
 * ||x - x^|| are summed four lanes wide instead of in one chain: another
 * rounding order of nonnegative terms, within d_in * 2^-53 of the exact sum,
 * far inside the 2^-20 round-up, so they stay upper bounds. */
static inline screen_i8_row screen_i8_quantise_x_avx2(const float *x, size_t d_in, double max_abs, int8_t *q)
{
    screen_i8_row r;
    r.sx = (float)(max_abs / 127.0);
    const __m256d s = _mm256_set1_pd((double)r.sx);
    const __m128i lo = _mm_set1_epi32(-127), hi = _mm_set1_epi32(127);
    __m256d xx = _mm256_setzero_pd(), rr = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 4 <= d_in; i += 4) {
        const __m256d xd = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        const __m128i v = _mm_min_epi32(_mm_max_epi32(_mm256_cvtpd_epi32(_mm256_div_pd(xd, s)), lo), hi);
        const __m256d e = _mm256_sub_pd(xd, _mm256_mul_pd(s, _mm256_cvtepi32_pd(v)));
        xx = _mm256_add_pd(xx, _mm256_mul_pd(xd, xd));
        rr = _mm256_add_pd(rr, _mm256_mul_pd(e, e));
        const int32_t b4 = _mm_cvtsi128_si32(_mm_packs_epi16(_mm_packs_epi32(v, v), _mm_setzero_si128()));
        memcpy(q + i, &b4, 4);
    }
    double xs[4], rs[4];
    _mm256_storeu_pd(xs, xx);
    _mm256_storeu_pd(rs, rr);
    double xsum = (xs[0] + xs[1]) + (xs[2] + xs[3]), rsum = (rs[0] + rs[1]) + (rs[2] + rs[3]);
    for (; i < d_in; i++) {
        const long v = screen_i8_round(x[i], r.sx);
        const double e = (double)x[i] - (double)r.sx * (double)v;
        xsum += (double)x[i] * x[i];
        rsum += e * e;
        q[i] = (int8_t)v;
    }
    r.x2 = screen_round_up(sqrt(xsum));
    r.r2 = screen_round_up(sqrt(rsum));
    return r;
}

/* Quantise one row of x (kernels/screen-bound.h) into q[0..d_in); rows that
 * cannot be screened (or every row when the plan turns screening off) are
 * marked fallback and q is left alone. */
static inline void screen_i8_quantise_row(const saemon_kernel_plan *plan, const float *x, screen_row *row, int8_t *q)
{
    const size_t d_in = plan->d_in;
    double m;
    row->fallback = d_in > I8_MAX_D_IN || (plan->flags & SAEMON_PLAN_NO_SCREEN) || !screen_row_max_avx2(x, d_in, &m);
    if (row->fallback)
        return;
    const screen_i8_row r = screen_i8_quantise_x_avx2(x, d_in, m, q);
    row->sx = r.sx;
    row->x2 = r.x2;
    row->r2 = r.r2;
}

/* ---- the screen, the recompute and the fp32 path ------------------------ */

/* Screen one panel's approximate dots dt (latents j0..j0+PANEL-1) for one row
 * and append the latents that could pass to the row's candidate list. */
static inline void screen_panel(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L,
                                size_t j0, vf dt, screen_row *row, float e_abs, const x86_sink *s, int prefetch_rows)
{
    const vmask valid = valid_lanes(plan->d_sae, j0);
    const float *c1 = (const float *)(packed + L->c1), *c2 = (const float *)(packed + L->c2);
    const vf zero = v_zero();
    vf e = v_fmadd(v_load(c1 + j0), v_set1(row->x2), v_fmadd(v_load(c2 + j0), v_set1(row->r2), v_set1(e_abs)));
    const vf b = v_load_mask(valid, plan->bias + j0);
    vf t = plan->epilogue == SAEMON_EPI_THRESHOLD ? v_load_mask(valid, plan->threshold + j0) : zero;
    /* E' (kernels/screen-bound.h) */
    vf mag_terms = v_add(v_add(v_abs(dt), v_abs(b)), v_add(v_abs(t), e));
    e = v_fmadd(e, v_set1(SCREEN_SLACK_E), v_fmadd(mag_terms, v_set1(SCREEN_SLACK_MAG), v_set1(SCREEN_SLACK_ABS)));
    const vf hi = v_add(dt, e), lo = v_sub(dt, e);
    vmask m;
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD:
        m = v_nlt(valid, v_add(hi, b), t);
        break;
    case SAEMON_EPI_GATED: {
        const vf ms = v_load_mask(valid, plan->mag_scale + j0);
        const vf mb = v_load_mask(valid, plan->mag_bias + j0);
        const vf a = v_mul(ms, hi), c = v_mul(ms, lo);
        vf mag = v_add(v_max(a, c), mb);
        mag = v_add(mag, v_fmadd(v_abs(mag), v_set1(0x1p-20f), v_set1(1e-30f)));
        /* NaN-safe max: if either product is NaN, keep. */
        const vmask nan_ms = v_unord(a, c);
        m = v_nlt(valid, v_add(hi, b), zero);
        m &= v_nlt(valid, mag, zero) | nan_ms;
        break;
    }
    default: { /* TOPK */
        vf up = v_add(hi, b);
        vmask nan_ms = 0;
        if (plan->mag_scale) {
            const vf ms = v_load_mask(valid, plan->mag_scale + j0);
            const vf a = v_mul(up, ms), c = v_mul(v_add(lo, b), ms);
            nan_ms = v_unord(a, c);
            up = v_max(a, c);
        }
        up = v_add(up, v_fmadd(v_abs(up), v_set1(0x1p-20f), v_set1(1e-30f)));
        /* The bar only rises, so testing against the bar of the last
         * flush is conservative. */
        m = v_nle(valid, up, v_set1(s->topk_bar)) | (nan_ms & valid);
        break;
    }
    }
    if (m) {
        /* 1 row: start fetching the candidates' fp32 rows now, so they
         * arrive while the screen streams on (the chunk's recompute then
         * hits L2). Multi-row tiles already use most of the DRAM bandwidth;
         * there it measured slower, and screen_flush's prefetch does it. */
        const size_t row_bytes = L->row_stride * sizeof(float);
        for (vmask mm = prefetch_rows ? m : 0; mm; mm &= mm - 1) {
            const char *r = packed + L->rows + (j0 + (size_t)__builtin_ctz(mm)) * row_bytes;
            for (size_t o = 0; o < row_bytes; o += 64)
                _mm_prefetch(r + o, _MM_HINT_T1);
        }
        v_compress_store(m, zero, NULL, (uint32_t)j0, row->cand + row->n_cand);
        row->n_cand += (uint32_t)__builtin_popcount(m);
    }
}

/* Recompute the row's candidates in fp32 (ascending j) and emit them. The
 * rows are scattered through a large buffer: prefetch (into L2) a few rows
 * ahead so DRAM latency overlaps the dot products; 8 ahead measured best. */
#define SCREEN_PREFETCH_AHEAD 8
static inline void screen_flush(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L,
                                const float *x, screen_row *row, x86_sink *s)
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
        epilogue_one(plan, j, dot_row(rows + j * L->row_stride, x, plan->d_in), s);
    }
    row->n_cand = 0;
}

/* FALLBACK_GROUP latents' dot_row at once, each with exactly dot_row's
 * arithmetic (its four accumulators, the same order, the same reduction), so
 * each result is bit for bit dot_row's: the chains of several latents
 * interleave and the FMA units stay busy (one dot_row alone waits on its
 * accumulators' latency). 4 on zmm (16 accumulators of 32 registers), 2 on
 * ymm (8 of 16). */
#define FALLBACK_GROUP (VL == 16 ? 4 : 2)
static inline __attribute__((always_inline)) void dot_rows_group(const float *w, size_t stride, const float *x,
                                                                 size_t n, float out[FALLBACK_GROUP])
{
    vf a[FALLBACK_GROUP][4];
#pragma GCC unroll 4
    for (int g = 0; g < FALLBACK_GROUP; g++)
        a[g][0] = a[g][1] = a[g][2] = a[g][3] = v_zero();
    size_t i = 0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
        const vf x0 = v_loadu(x + i), x1 = v_loadu(x + i + VL), x2 = v_loadu(x + i + 2 * VL),
                 x3 = v_loadu(x + i + 3 * VL);
#pragma GCC unroll 4
        for (int g = 0; g < FALLBACK_GROUP; g++) {
            const float *wg = w + (size_t)g * stride + i;
            a[g][0] = v_fmadd(x0, v_load(wg), a[g][0]);
            a[g][1] = v_fmadd(x1, v_load(wg + VL), a[g][1]);
            a[g][2] = v_fmadd(x2, v_load(wg + 2 * VL), a[g][2]);
            a[g][3] = v_fmadd(x3, v_load(wg + 3 * VL), a[g][3]);
        }
    }
    for (; i < n; i += VL) {
        const vf xt = v_load_mask(valid_lanes(n, i), x + i);
#pragma GCC unroll 4
        for (int g = 0; g < FALLBACK_GROUP; g++)
            a[g][0] = v_fmadd(xt, v_load(w + (size_t)g * stride + i), a[g][0]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < FALLBACK_GROUP; g++)
        out[g] = v_reduce_add(v_add(v_add(a[g][0], a[g][1]), v_add(a[g][2], a[g][3])));
}

/* Every latent in fp32 (the family's fp32 path): rows that cannot be
 * screened, and every row under SAEMON_PLAN_NO_SCREEN (small subset plans,
 * runtime/encoder_plan.c). The screen must give exactly this output
 * (tests/checkkernels/screen-bitexact.c). Latents go out in ascending j. */
static inline void screen_fallback_row(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L,
                                       const float *x, x86_sink *s)
{
    const float *rows = (const float *)(packed + L->rows);
    size_t j = 0;
    for (; j + FALLBACK_GROUP <= plan->d_sae; j += FALLBACK_GROUP) {
        float d[FALLBACK_GROUP];
        dot_rows_group(rows + j * L->row_stride, L->row_stride, x, plan->d_in, d);
        for (int g = 0; g < FALLBACK_GROUP; g++)
            epilogue_one(plan, j + (size_t)g, d[g], s);
    }
    for (; j < plan->d_sae; j++)
        epilogue_one(plan, j, dot_row(rows + j * L->row_stride, x, plan->d_in), s);
}

/* dot_row of one latent's row w with FALLBACK_GROUP rows of x (row stride
 * n), each with exactly dot_row's arithmetic: one weight read serves them
 * all (batches under SAEMON_PLAN_NO_SCREEN). */
static inline __attribute__((always_inline)) void dot_row_rows(const float *w, const float *x, size_t n,
                                                               float out[FALLBACK_GROUP])
{
    vf a[FALLBACK_GROUP][4];
#pragma GCC unroll 4
    for (int g = 0; g < FALLBACK_GROUP; g++)
        a[g][0] = a[g][1] = a[g][2] = a[g][3] = v_zero();
    size_t i = 0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
        const vf w0 = v_load(w + i), w1 = v_load(w + i + VL), w2 = v_load(w + i + 2 * VL), w3 = v_load(w + i + 3 * VL);
#pragma GCC unroll 4
        for (int g = 0; g < FALLBACK_GROUP; g++) {
            const float *xg = x + (size_t)g * n + i;
            a[g][0] = v_fmadd(v_loadu(xg), w0, a[g][0]);
            a[g][1] = v_fmadd(v_loadu(xg + VL), w1, a[g][1]);
            a[g][2] = v_fmadd(v_loadu(xg + 2 * VL), w2, a[g][2]);
            a[g][3] = v_fmadd(v_loadu(xg + 3 * VL), w3, a[g][3]);
        }
    }
    for (; i < n; i += VL) {
        const vf wt = v_load(w + i);
#pragma GCC unroll 4
        for (int g = 0; g < FALLBACK_GROUP; g++)
            a[g][0] = v_fmadd(v_load_mask(valid_lanes(n, i), x + (size_t)g * n + i), wt, a[g][0]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < FALLBACK_GROUP; g++)
        out[g] = v_reduce_add(v_add(v_add(a[g][0], a[g][1]), v_add(a[g][2], a[g][3])));
}

/* Rows x[0..nr) (nr <= FALLBACK_GROUP, row stride d_in) on the fp32 path,
 * every latent, ascending j per row: as screen_fallback_row on each. */
static inline void screen_fallback_rows(const saemon_kernel_plan *plan, const char *packed, const screen_layout *L,
                                        const float *x, size_t nr, x86_sink *s)
{
    if (nr < FALLBACK_GROUP) {
        for (size_t r = 0; r < nr; r++)
            screen_fallback_row(plan, packed, L, x + r * plan->d_in, &s[r]);
        return;
    }
    const float *rows = (const float *)(packed + L->rows);
    for (size_t j = 0; j < plan->d_sae; j++) {
        float d[FALLBACK_GROUP];
        dot_row_rows(rows + j * L->row_stride, x, plan->d_in, d);
        for (int g = 0; g < FALLBACK_GROUP; g++)
            epilogue_one(plan, j, d[g], &s[g]);
    }
}

/* Scratch: sinks[n], rows[n], quantised x [n][xq_stride bytes],
 * candidate lists [n][SCREEN_CHUNK], heaps[n][k]. */
typedef struct screen_scratch {
    x86_sink *sinks;
    screen_row *rows;
    unsigned char *xq;
    size_t xq_stride;
    saemon_topk_entry *heaps;
} screen_scratch;

static inline size_t screen_scratch_size(const saemon_kernel_plan *plan, size_t max_batch, size_t xq_bytes)
{
    size_t heaps = plan->epilogue == SAEMON_EPI_TOPK ? plan->k * sizeof(saemon_topk_entry) : 0;
    return round_up(max_batch * sizeof(x86_sink), 64) + round_up(max_batch * sizeof(screen_row), 64) +
           max_batch * round_up(xq_bytes, 64) + max_batch * SCREEN_CHUNK * sizeof(uint32_t) + max_batch * heaps;
}

static inline screen_scratch screen_scratch_of(void *scratch, size_t n, size_t xq_bytes)
{
    screen_scratch S;
    char *p = scratch;
    S.sinks = (x86_sink *)p;
    p += round_up(n * sizeof(x86_sink), 64);
    S.rows = (screen_row *)p;
    p += round_up(n * sizeof(screen_row), 64);
    S.xq = (unsigned char *)p;
    S.xq_stride = round_up(xq_bytes, 64);
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
