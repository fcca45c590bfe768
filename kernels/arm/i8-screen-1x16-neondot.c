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
 * round to nearest); a_j = s_j t (q_j . p) exactly in int32. The bound on
 * |d_j - a_j|, its per-latent and per-token constants, the slack for its
 * float evaluation and the ranges that take the exact path are derived once
 * for every ISA in kernels/screen-bound.h (shared with the x86 screens);
 * this file only evaluates them in NEON. Comparisons that yield NaN also
 * fall back to the exact path.
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
#include "kernels/screen-bound.h"

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

static int screen_enabled(const saemon_kernel_plan *plan)
{
    return plan->d_in > 0 && plan->d_in <= I8_MAX_D_IN;
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

/* Quantise one latent row (kernels/screen-bound.h) into lane l of its panel:
 * group g = i / 4 holds 16 latents x 4 bytes. The panel is zeroed first, so
 * zero and out-of-range rows keep s = 0 and q = 0 (with c1 = +inf, the
 * latter are always recomputed). */
static void pack_latent(const float *w, size_t d_in, size_t l, float *params, int8_t *q8)
{
    int32_t sum;
    screen_i8_quantise_w(w, d_in, q8 + l * 4, 4, PANEL * 4, &params[P_SCALE * PANEL + l], &params[P_C1 * PANEL + l],
                         &params[P_C2 * PANEL + l], &sum);
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

/* The row's side of the bound; ok = 0 when the row takes the exact path. */
typedef struct row_quant {
    int ok;
    screen_i8_row q; /* x ~ q.sx p, ||x||_2, ||x - q.sx p||_2 */
} row_quant;

static row_quant quantise_row(const float *x, size_t d_in, int8_t *p8)
{
    row_quant rq = {0};
    double m;
    if (!screen_row_max(x, d_in, &m))
        return rq;
    rq.q = screen_i8_quantise_x(x, d_in, m, p8);
    memset(p8 + d_in, 0, pad16(d_in) - d_in);
    rq.ok = 1;
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
 * epilogue, given the approximate dots a and their bounds e = c1 X2 + c2 R2:
 * the exact fp32 dot product of lane l lies in [lo, hi] = a -+ E'
 * (kernels/screen-bound.h). The epilogue's float operations are monotone in
 * d (rounding is monotone), so evaluating them at the two ends is a rigorous
 * test. */
static uint32_t panel_candidates(const saemon_kernel_plan *plan, const row_state *rs, const float32x4_t a[4],
                                 const float32x4_t e[4], size_t j0, size_t nl)
{
    uint32x4_t may[4];
    float32x4_t lo[4], hi[4];
    for (int q = 0; q < 4; q++) {
        const float32x4_t b = load_param(plan->bias, j0, nl, q);
        const float32x4_t t = plan->epilogue == SAEMON_EPI_THRESHOLD ? load_param(plan->threshold, j0, nl, q)
                                                                     : vdupq_n_f32(0);
        const float32x4_t mag = vaddq_f32(vaddq_f32(vabsq_f32(a[q]), vabsq_f32(b)), vaddq_f32(vabsq_f32(t), e[q]));
        const float32x4_t e1 = vaddq_f32(vmulq_n_f32(e[q], SCREEN_SLACK_E),
                                         vaddq_f32(vmulq_n_f32(mag, SCREEN_SLACK_MAG), vdupq_n_f32(SCREEN_SLACK_ABS)));
        hi[q] = vaddq_f32(a[q], e1);
        lo[q] = vsubq_f32(a[q], e1);
        switch (plan->epilogue) {
        case SAEMON_EPI_THRESHOLD:
            may[q] = could_exceed(vaddq_f32(hi[q], b), t);
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
    const float32x4_t sx = vdupq_n_f32(rq->q.sx);
    const float32x4_t x2 = vdupq_n_f32(rq->q.x2), r2 = vdupq_n_f32(rq->q.r2);
    for (size_t p = 0; p < panels; p++) {
        const size_t j0 = p * PANEL, nl = d_sae - j0 < PANEL ? d_sae - j0 : PANEL;
        uint32_t bits = nl == PANEL ? 0xffffu : (1u << nl) - 1u;
        if (rq->ok) {
            const unsigned char *panel = i8 + p * i8_panel_bytes(plan);
            const float *params = (const float *)panel;
            int32x4_t acc[4];
            sdot_panel((const int8_t *)(panel + N_PARAMS * PANEL * sizeof(float)), p8, pad16(d_in),
                       acc);
            float32x4_t a[4], e[4];
            for (int q = 0; q < 4; q++) {
                const float32x4_t s = vld1q_f32(params + P_SCALE * PANEL + 4 * q);
                a[q] = vmulq_f32(vcvtq_f32_s32(acc[q]), vmulq_f32(s, sx));
                e[q] = vaddq_f32(vmulq_f32(x2, vld1q_f32(params + P_C1 * PANEL + 4 * q)),
                                 vmulq_f32(r2, vld1q_f32(params + P_C2 * PANEL + 4 * q)));
            }
            bits = panel_candidates(plan, rs, a, e, j0, nl);
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
    .packed_layout = 1,
    .family = "neon",
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
