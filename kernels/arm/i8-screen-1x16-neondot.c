/* NEON int8 screened encode kernel (SDOT, +dotprod), one row at a time.
 *
 * Batch-1 encoding is bound by weight bytes. This variant first computes
 * every latent's dot product from int8 copies of W and x (a quarter of the
 * bytes), together with a rigorous bound on how far the exact fp32 result
 * can be from it. Only latents that could pass the epilogue are recomputed,
 * from a row-major fp32 copy of W, with the same single FMA chain as the
 * fp32 panel kernels (dot_row_exact), and go through the same epilogue
 * arithmetic: the output is bit-identical to f32-encode-4x16-neon.
 *
 * Quantisation: W_j ~ s_j q_j, x ~ t p (q, p in [-127, 127], symmetric,
 * round to nearest); a_j = s_j t (q_j . p) exactly in int32. Writing
 * x.W - t p.s q = x.(W - s q) + (x - t p).s q, Cauchy-Schwarz gives
 *   |x.W_j - a_j| <= ||x||_2 ||W_j - s_j q_j||_2 + ||x - t p||_2 ||s_j q_j||_2,
 * and the fp32 recompute's rounding adds at most gamma_(d_in+4) ||x||_2 ||W_j||_2
 * (one FMA chain of d_in steps). So |d_j - a_j| <= c1_j ||x||_2 + c2_j r with
 * c1_j = ||W_j - s_j q_j||_2 + gamma ||W_j||_2 and c2_j = ||s_j q_j||_2 made at
 * pack time, ||x||_2 and r = ||x - t p||_2 per row (all from the values
 * actually used, in double, rounded up to float).
 * The float evaluation of a_j and of the bound is covered by 16u|a_j|, a
 * 2^-10 relative slack, 4u|a_j| for the final a +- bound and an absolute
 * slack for underflow; every quantity from double is rounded up. Rows with a
 * non-finite x, latents with non-finite W, d_in > 65536 (int32 headroom) and
 * every comparison that yields NaN all fall back to the exact path.
 *
 * Packed layout: [fp32 W, row-major as given][per panel of 16 latents: s, c1,
 * c2 (16 floats each), then int8 weights: for each group of 4 inputs,
 * 16 latents x 4 bytes, so one SDOT lane sees 4 inputs of one latent].
 * d_in is zero-padded to a multiple of 16 in the int8 part. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/arm/f32-panel-neon.h"

/* GCC exposes the SDOT intrinsics to functions compiled for +dotprod, so the
 * file needs no special -march; clang's arm_neon.h only defines them when the
 * whole TU is built with the feature. */
#if defined(__clang__)
#if !defined(__ARM_FEATURE_DOTPROD)
#error "clang: compile i8-screen-1x16-neondot.c with -march=armv8.2-a+dotprod"
#endif
#else
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif

#define MAX_SCREEN_D_IN 65536 /* 65536 * 127 * 127 < 2^31 */
#define U32F 0x1p-24f         /* unit roundoff of fp32 */

#ifdef SAEMON_SCREEN_STATS
unsigned long saemon_screen_stats[2]; /* latents seen, latents recomputed */
#endif

enum { P_SCALE, P_C1, P_C2, N_PARAMS }; /* per-panel float arrays */

static size_t pad16(size_t d_in)
{
    return (d_in + 15) & ~(size_t)15;
}

static size_t i8_panel_bytes(const saemon_kernel_plan *plan)
{
    return N_PARAMS * PANEL * sizeof(float) + PANEL * pad16(plan->d_in);
}

/* The smallest float >= v (v >= 0): bounds must never round down. */
static float round_up(double v)
{
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

static int screen_enabled(const saemon_kernel_plan *plan)
{
    return plan->d_in > 0 && plan->d_in <= MAX_SCREEN_D_IN;
}

/* Bytes of the row-major fp32 copy, rounded up to 64. */
static size_t f32_rows_size(const saemon_kernel_plan *plan)
{
    return (plan->d_sae * plan->d_in * sizeof(float) + 63) & ~(size_t)63;
}

static size_t packed_size(const saemon_kernel_plan *plan)
{
    size_t n = f32_rows_size(plan);
    if (screen_enabled(plan))
        n += n_panels(plan) * i8_panel_bytes(plan);
    return n;
}

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    (void)max_batch;
    size_t heap = plan->epilogue == SAEMON_EPI_TOPK ? topk_cap(plan) * sizeof(saemon_topk_entry) : 0;
    return heap + pad16(plan->d_in); /* then the quantised row */
}

/* gamma_(d_in+4): relative error bound of a d_in-step fp32 FMA chain. */
static double chain_gamma(size_t d_in)
{
    const double nu = (double)(d_in + 4) * 0x1p-24;
    return nu / (1.0 - nu) * (1.0 + 0x1p-40);
}

/* Quantise one latent row; fills its parameters and int8 lanes. Squares
 * and sums of floats are exact enough in double (no under/overflow). */
static void pack_latent(const float *w, size_t d_in, size_t l, float *params, int8_t *q8)
{
    double m = 0.0, w2 = 0.0;
    int finite = 1;
    for (size_t i = 0; i < d_in; i++) {
        if (!isfinite(w[i]))
            finite = 0;
        m = fmax(m, fabs((double)w[i]));
        w2 += (double)w[i] * (double)w[i];
    }
    float s = finite ? (float)(m / 127.0) : 0.0f;
    double err2 = 0.0, sq2 = 0.0;
    for (size_t i = 0; i < d_in; i++) {
        long q = 0;
        if (s > 0.0f) {
            q = lrint((double)w[i] / (double)s);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
        }
        /* lanes: group g = i / 4 holds 16 latents x 4 bytes */
        q8[(i / 4) * PANEL * 4 + l * 4 + i % 4] = (int8_t)q;
        const double sq = (double)s * (double)q, e = (double)w[i] - sq;
        sq2 += sq * sq;
        err2 += e * e;
    }
    params[P_SCALE * PANEL + l] = s;
    params[P_C1 * PANEL + l] =
        finite ? round_up((sqrt(err2) + chain_gamma(d_in) * sqrt(w2)) * (1.0 + 0x1p-40)) : INFINITY;
    params[P_C2 * PANEL + l] = round_up(sqrt(sq2) * (1.0 + 0x1p-40));
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed)
{
    const size_t d_in = plan->d_in;
    memcpy(packed, w_rows, plan->d_sae * d_in * sizeof(float));
    if (!screen_enabled(plan))
        return;
    unsigned char *base = (unsigned char *)packed + f32_rows_size(plan);
    for (size_t p = 0; p < n_panels(plan); p++) {
        unsigned char *panel = base + p * i8_panel_bytes(plan);
        float *params = (float *)panel;
        int8_t *q8 = (int8_t *)(panel + N_PARAMS * PANEL * sizeof(float));
        memset(panel, 0, i8_panel_bytes(plan)); /* padded latents: all zero */
        for (size_t l = 0; l < PANEL && p * PANEL + l < plan->d_sae; l++)
            pack_latent(w_rows + (p * PANEL + l) * d_in, d_in, l, params, q8);
    }
}

/* The row's side of the bound; ok = 0 when x is not finite (no screening). */
typedef struct row_quant {
    int ok;
    float t;     /* x ~ t p */
    float norm2; /* ||x||_2 */
    float resid; /* ||x - t p||_2 */
} row_quant;

static row_quant quantise_row(const float *x, size_t d_in, int8_t *p8)
{
    row_quant rq = {0};
    double m = 0.0, x2 = 0.0;
    for (size_t i = 0; i < d_in; i++) {
        if (!isfinite(x[i]))
            return rq;
        m = fmax(m, fabs((double)x[i]));
        x2 += (double)x[i] * (double)x[i];
    }
    /* Magnitude range, as on x86: outside [2^-50, 2^50] the scale products
     * and the fp32 epilogue can under/overflow (x = [1e20, 1e20] with
     * W = [1e19, -1e19] makes the fp32 dot +inf while the bound stays
     * finite), so such rows take the fp32 path. Zero rows screen fine. */
    if (m > 0x1p50 || (m > 0.0 && m < 0x1p-50))
        return rq;
    const float t = (float)(m / 127.0);
    double r2 = 0.0;
    for (size_t i = 0; i < d_in; i++) {
        long p = 0;
        if (t > 0.0f) {
            p = lrint((double)x[i] / (double)t);
            p = p > 127 ? 127 : p < -127 ? -127 : p;
        }
        p8[i] = (int8_t)p;
        const double e = (double)x[i] - (double)t * (double)p;
        r2 += e * e;
    }
    memset(p8 + d_in, 0, pad16(d_in) - d_in);
    rq.ok = 1;
    rq.t = t;
    rq.norm2 = round_up(sqrt(x2) * (1.0 + 0x1p-40));
    rq.resid = round_up(sqrt(r2) * (1.0 + 0x1p-40));
    return rq;
}

/* q_j . p for the 16 latents of one panel, exact in int32. */
static void sdot_panel(const int8_t *q8, const int8_t *p8, size_t d_pad, int32x4_t acc[4])
{
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < d_pad; i += 16, q8 += 16 * PANEL) {
        const int8x16_t pv = vld1q_s8(p8 + i);
        a0 = vdotq_laneq_s32(a0, vld1q_s8(q8 + 0), pv, 0);
        a1 = vdotq_laneq_s32(a1, vld1q_s8(q8 + 16), pv, 0);
        a2 = vdotq_laneq_s32(a2, vld1q_s8(q8 + 32), pv, 0);
        a3 = vdotq_laneq_s32(a3, vld1q_s8(q8 + 48), pv, 0);
        a0 = vdotq_laneq_s32(a0, vld1q_s8(q8 + 64), pv, 1);
        a1 = vdotq_laneq_s32(a1, vld1q_s8(q8 + 80), pv, 1);
        a2 = vdotq_laneq_s32(a2, vld1q_s8(q8 + 96), pv, 1);
        a3 = vdotq_laneq_s32(a3, vld1q_s8(q8 + 112), pv, 1);
        a0 = vdotq_laneq_s32(a0, vld1q_s8(q8 + 128), pv, 2);
        a1 = vdotq_laneq_s32(a1, vld1q_s8(q8 + 144), pv, 2);
        a2 = vdotq_laneq_s32(a2, vld1q_s8(q8 + 160), pv, 2);
        a3 = vdotq_laneq_s32(a3, vld1q_s8(q8 + 176), pv, 2);
        a0 = vdotq_laneq_s32(a0, vld1q_s8(q8 + 192), pv, 3);
        a1 = vdotq_laneq_s32(a1, vld1q_s8(q8 + 208), pv, 3);
        a2 = vdotq_laneq_s32(a2, vld1q_s8(q8 + 224), pv, 3);
        a3 = vdotq_laneq_s32(a3, vld1q_s8(q8 + 240), pv, 3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* NaN-safe "could pass": true unless v <= limit holds. */
static inline uint32x4_t could_exceed(float32x4_t v, float32x4_t limit)
{
    return vmvnq_u32(vcleq_f32(v, limit));
}

/* The lanes of this panel (bit l = latent j0 + l) that could pass the
 * epilogue, given that the exact fp32 dot product of lane l lies in
 * [lo, hi]. The epilogue's float operations are monotone in d (rounding is
 * monotone), so evaluating them at the two ends is a rigorous test. */
static uint32_t panel_candidates(const saemon_kernel_plan *plan, const row_state *rs,
                          const float32x4_t lo[4], const float32x4_t hi[4], size_t j0, size_t nl)
{
    uint32x4_t may[4];
    for (int q = 0; q < 4; q++) {
        const float32x4_t b = load_param(plan->bias, j0, nl, q);
        switch (plan->epilogue) {
        case SAEMON_EPI_THRESHOLD:
            may[q] = could_exceed(vaddq_f32(hi[q], b), load_param(plan->threshold, j0, nl, q));
            break;
        case SAEMON_EPI_GATED: {
            const float32x4_t sc = load_param(plan->mag_scale, j0, nl, q);
            const float32x4_t mb = load_param(plan->mag_bias, j0, nl, q);
            const float32x4_t zero = vdupq_n_f32(0);
            /* mag is monotone in d either way round, depending on sc's sign */
            const uint32x4_t mag_hi = could_exceed(vaddq_f32(vmulq_f32(sc, hi[q]), mb), zero);
            const uint32x4_t mag_lo = could_exceed(vaddq_f32(vmulq_f32(sc, lo[q]), mb), zero);
            may[q] = vandq_u32(could_exceed(vaddq_f32(hi[q], b), zero), vorrq_u32(mag_hi, mag_lo));
            break;
        }
        case SAEMON_EPI_TOPK: {
            const float32x4_t floor = vdupq_n_f32(topk_floor(plan, rs));
            float32x4_t phi = vaddq_f32(hi[q], b), plo = vaddq_f32(lo[q], b);
            if (plan->mag_scale) {
                const float32x4_t sc = load_param(plan->mag_scale, j0, nl, q);
                phi = vmulq_f32(phi, sc);
                plo = vmulq_f32(plo, sc);
            }
            may[q] = vorrq_u32(could_exceed(phi, floor), could_exceed(plo, floor));
            break;
        }
        }
    }
    uint32_t bits = mask_bits(may);
    if (nl < PANEL)
        bits &= (1u << nl) - 1u;
    return bits;
}

static void encode_row(const saemon_kernel_plan *plan, const unsigned char *packed, const float *x,
                       const row_quant *rq, const int8_t *p8, row_state *rs)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae, panels = n_panels(plan);
    const float *w32 = (const float *)packed;
    const unsigned char *i8 = packed + f32_rows_size(plan);
    if (plan->epilogue == SAEMON_EPI_TOPK && topk_cap(plan) == 0)
        return;
    const float32x4_t t = vdupq_n_f32(rq->t);
    const float32x4_t norm2 = vdupq_n_f32(rq->norm2), resid = vdupq_n_f32(rq->resid);
    const float32x4_t abs_slack = vdupq_n_f32((float)(d_in + 8) * 0x1p-120f);
    for (size_t p = 0; p < panels; p++) {
        const size_t j0 = p * PANEL, nl = d_sae - j0 < PANEL ? d_sae - j0 : PANEL;
        uint32_t bits = nl == PANEL ? 0xffffu : (1u << nl) - 1u;
        if (rq->ok) {
            const unsigned char *panel = i8 + p * i8_panel_bytes(plan);
            const float *params = (const float *)panel;
            int32x4_t acc[4];
            sdot_panel((const int8_t *)(panel + N_PARAMS * PANEL * sizeof(float)), p8, pad16(d_in),
                       acc);
            float32x4_t lo[4], hi[4];
            for (int q = 0; q < 4; q++) {
                const float32x4_t s = vld1q_f32(params + P_SCALE * PANEL + 4 * q);
                const float32x4_t a = vmulq_f32(vcvtq_f32_s32(acc[q]), vmulq_f32(s, t));
                float32x4_t bound = vmulq_f32(norm2, vld1q_f32(params + P_C1 * PANEL + 4 * q));
                bound = vaddq_f32(bound, vmulq_f32(resid, vld1q_f32(params + P_C2 * PANEL + 4 * q)));
                bound = vaddq_f32(bound, vmulq_n_f32(vabsq_f32(a), 16.0f * U32F));
                /* covers the float rounding of everything above ... */
                bound = vmulq_n_f32(bound, 1.0f + 0x1p-10f);
                /* ... and of hi = a + bound, lo = a - bound themselves */
                bound = vaddq_f32(bound, vmulq_n_f32(vabsq_f32(a), 4.0f * U32F));
                bound = vaddq_f32(bound, abs_slack);
                hi[q] = vaddq_f32(a, bound);
                lo[q] = vsubq_f32(a, bound);
            }
            bits = panel_candidates(plan, rs, lo, hi, j0, nl);
        }
#ifdef SAEMON_SCREEN_STATS /* dev builds: how much the screen keeps */
        saemon_screen_stats[0] += nl;
        saemon_screen_stats[1] += (unsigned long)__builtin_popcount(bits);
#endif
        while (bits) { /* ascending j: THRESHOLD output stays sorted */
            const size_t j = j0 + (size_t)__builtin_ctz(bits);
            bits &= bits - 1u;
            epilogue_one(plan, dot_row_exact(w32 + j * d_in, x, d_in), j, rs);
        }
    }
}

static void encode(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    saemon_topk_entry *heap = scratch;
    int8_t *p8 = (int8_t *)scratch;
    if (plan->epilogue == SAEMON_EPI_TOPK)
        p8 = (int8_t *)(heap + topk_cap(plan));
    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * plan->d_in;
        row_quant rq = {0};
        if (screen_enabled(plan) && !(plan->flags & SAEMON_PLAN_NO_SCREEN))
            rq = quantise_row(xr, plan->d_in, p8);
        row_state rs;
        row_begin(&rs, out, r, plan->epilogue == SAEMON_EPI_TOPK ? heap : NULL);
        encode_row(plan, packed, xr, &rq, p8, &rs);
        out->count[r] = row_end(plan, &rs);
    }
}

const saemon_kernel saemon_kernel_i8_screen_1x16_neondot = {
    .name = "i8-screen-1x16-neondot",
    .isa = "neon",
    .cpu_features = SAEMON_CPU_NEON | SAEMON_CPU_NEON_DOTPROD,
    /* Below the fp32 kernel until measured on real hardware (qemu timings
     * mean nothing); select it by name. */
    .priority = 5,
    .screened = 1,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
