/* fp32 16-latent panels shared by the NEON encode kernels: layout, packing,
 * the batch-1 and 4-row dot products and the fused epilogue.
 *
 * Packed layout: panel p holds latents [16p, 16p+16); for each input
 * position i its 16 weights are contiguous (64 bytes, one cache line):
 *     packed[p][i][l] = W[16p + l][i]
 * The last panel is zero-padded; padded lanes are computed and ignored.
 *
 * Dot products accumulate in fp32 (FMA), so they differ from the
 * double-accumulating scalar reference by at most the usual dot-product
 * rounding bound; the epilogue arithmetic is the same IEEE float operations
 * in the same order as the reference (mul and add kept separate: these files
 * are compiled with -ffp-contract=off). Each panel's 16 dot products go
 * straight into the epilogue, which tests all 16 lanes with vector compares
 * and only touches the lanes that pass. */
#ifndef SAEMON_F32_PANEL_NEON_H
#define SAEMON_F32_PANEL_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

#define PANEL 16 /* latents per panel */
#define TILE 4   /* rows per tile of the multi-row path */

static inline size_t n_panels(const saemon_kernel_plan *plan)
{
    return (plan->d_sae + PANEL - 1) / PANEL;
}

/* Heap capacity actually needed: never more than the latents this call sees. */
static inline size_t topk_cap(const saemon_kernel_plan *plan)
{
    return plan->k < plan->d_sae ? plan->k : plan->d_sae;
}

/* Bytes of the fp32 panels (a multiple of 64). */
static inline size_t f32_panels_size(const saemon_kernel_plan *plan)
{
    return n_panels(plan) * PANEL * plan->d_in * sizeof(float);
}

static inline void f32_panels_pack(const saemon_kernel_plan *plan, const float *w_rows, float *dst)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae;
    for (size_t p = 0; p < n_panels(plan); p++) {
        for (size_t i = 0; i < d_in; i++) {
            for (size_t l = 0; l < PANEL; l++) {
                size_t j = p * PANEL + l;
                *dst++ = j < d_sae ? w_rows[j * d_in + i] : 0.0f;
            }
        }
    }
}

/* Per-row output state while walking the panels. */
typedef struct row_state {
    uint32_t *index;
    float *value;
    uint32_t n;
    saemon_topk_entry *heap;
    size_t heap_size;
} row_state;

/* Load 4 per-latent parameters starting at j, zero beyond d_sae. */
static inline float32x4_t load_param(const float *a, size_t j, size_t nl, size_t q)
{
    if (nl == PANEL)
        return vld1q_f32(a + j + 4 * q);
    float t[4] = {0};
    for (size_t l = 0; l < 4; l++)
        if (4 * q + l < nl)
            t[l] = a[j + 4 * q + l];
    return vld1q_f32(t);
}

/* Only positive values can ever be emitted (ReLU after selection), and once
 * the heap is full only values above its minimum can enter: a later latent
 * equal to the minimum has a higher index and loses the tie. So a value
 * <= max(0, k-th best so far) can be skipped unread. */
static inline float topk_floor(const saemon_kernel_plan *plan, const row_state *rs)
{
    if (rs->heap_size > 0 && rs->heap_size == topk_cap(plan) && rs->heap[0].value > 0.0f)
        return rs->heap[0].value;
    return 0.0f;
}

/* Lanes of a 16-lane mask that are set, as a bit per lane. */
static inline uint32_t mask_bits(const uint32x4_t m[4])
{
    static const uint32_t weights[4] = {1, 2, 4, 8};
    const uint32x4_t w = vld1q_u32(weights);
    uint32_t bits = 0;
    for (int q = 0; q < 4; q++)
        bits |= vaddvq_u32(vandq_u32(m[q], w)) << (4 * q);
    return bits;
}

/* Fused epilogue for one row and one panel: d[q] holds the dot products of
 * latents j0 + 4q .. j0 + 4q + 3; only the first nl lanes are real. */
static inline void epilogue(const saemon_kernel_plan *plan, const float32x4_t d[4], size_t j0,
                            size_t nl, row_state *rs)
{
    float32x4_t val[4];
    uint32x4_t keep[4];
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD:
        for (int q = 0; q < 4; q++) {
            val[q] = vaddq_f32(d[q], load_param(plan->bias, j0, nl, q));
            keep[q] = vcgtq_f32(val[q], load_param(plan->threshold, j0, nl, q));
        }
        break;
    case SAEMON_EPI_GATED:
        for (int q = 0; q < 4; q++) {
            float32x4_t gate = vaddq_f32(d[q], load_param(plan->bias, j0, nl, q));
            val[q] = vaddq_f32(vmulq_f32(load_param(plan->mag_scale, j0, nl, q), d[q]),
                               load_param(plan->mag_bias, j0, nl, q));
            keep[q] = vandq_u32(vcgtzq_f32(gate), vcgtzq_f32(val[q]));
        }
        break;
    case SAEMON_EPI_TOPK: {
        if (topk_cap(plan) == 0)
            return;
        const float32x4_t vfloor = vdupq_n_f32(topk_floor(plan, rs));
        for (int q = 0; q < 4; q++) {
            val[q] = vaddq_f32(d[q], load_param(plan->bias, j0, nl, q));
            if (plan->mag_scale)
                val[q] = vmulq_f32(val[q], load_param(plan->mag_scale, j0, nl, q));
            keep[q] = vcgtq_f32(val[q], vfloor);
        }
        break;
    }
    }
    uint32_t bits = mask_bits(keep);
    if (nl < PANEL)
        bits &= (1u << nl) - 1u;
    if (!bits)
        return;
    float v[PANEL];
    for (int q = 0; q < 4; q++)
        vst1q_f32(v + 4 * q, val[q]);
    const size_t k = topk_cap(plan);
    while (bits) {
        unsigned l = (unsigned)__builtin_ctz(bits);
        bits &= bits - 1u;
        uint32_t ix = plan->index_base + (uint32_t)(j0 + l);
        if (plan->epilogue == SAEMON_EPI_TOPK) {
            /* The floor rises as the heap fills: recheck lane by lane. */
            if (rs->heap_size == k && !(v[l] > rs->heap[0].value))
                continue;
            saemon_topk_push(rs->heap, &rs->heap_size, k, v[l], ix);
        } else {
            rs->index[rs->n] = ix;
            rs->value[rs->n++] = v[l];
        }
    }
}

/* Every path computes each latent's dot product the same way: one fused
 * multiply-add chain over i = 0, 1, ..., d_in-1 starting from +0. So a row
 * gets bit-identical values whether it is encoded alone or in a batch, and
 * dot_row_exact() reproduces any single latent from a row-major copy of W. */

/* The epilogue for a single latent j (dot product d): the same float
 * operations as epilogue() lane by lane, for kernels that recompute only
 * some latents. */
static inline void epilogue_one(const saemon_kernel_plan *plan, float d, size_t j, row_state *rs)
{
    const uint32_t ix = plan->index_base + (uint32_t)j;
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD: {
        const float pre = d + plan->bias[j];
        if (pre > plan->threshold[j]) {
            rs->index[rs->n] = ix;
            rs->value[rs->n++] = pre;
        }
        break;
    }
    case SAEMON_EPI_GATED: {
        const float gate = d + plan->bias[j];
        const float mag = plan->mag_scale[j] * d + plan->mag_bias[j];
        if (gate > 0.0f && mag > 0.0f) {
            rs->index[rs->n] = ix;
            rs->value[rs->n++] = mag;
        }
        break;
    }
    case SAEMON_EPI_TOPK: {
        float pre = d + plan->bias[j];
        if (plan->mag_scale)
            pre *= plan->mag_scale[j];
        if (pre > topk_floor(plan, rs))
            saemon_topk_push(rs->heap, &rs->heap_size, topk_cap(plan), pre, ix);
        break;
    }
    }
}

/* One row against panels w and w2 (2 x 16 latents): 8 independent chains. */
static inline void dot_panel_2x1(const float *w, const float *w2, const float *x, size_t d_in,
                                 float32x4_t d[4], float32x4_t d2[4])
{
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (size_t i = 0; i < d_in; i++, w += PANEL, w2 += PANEL) {
        const float xi = x[i];
        a0 = vfmaq_n_f32(a0, vld1q_f32(w + 0), xi);
        a1 = vfmaq_n_f32(a1, vld1q_f32(w + 4), xi);
        a2 = vfmaq_n_f32(a2, vld1q_f32(w + 8), xi);
        a3 = vfmaq_n_f32(a3, vld1q_f32(w + 12), xi);
        b0 = vfmaq_n_f32(b0, vld1q_f32(w2 + 0), xi);
        b1 = vfmaq_n_f32(b1, vld1q_f32(w2 + 4), xi);
        b2 = vfmaq_n_f32(b2, vld1q_f32(w2 + 8), xi);
        b3 = vfmaq_n_f32(b3, vld1q_f32(w2 + 12), xi);
    }
    d[0] = a0, d[1] = a1, d[2] = a2, d[3] = a3;
    d2[0] = b0, d2[1] = b1, d2[2] = b2, d2[3] = b3;
}

/* One row against one panel (the odd last one): 4 chains. */
static inline void dot_panel_1(const float *w, const float *x, size_t d_in, float32x4_t d[4])
{
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < d_in; i++, w += PANEL) {
        const float xi = x[i];
        a0 = vfmaq_n_f32(a0, vld1q_f32(w + 0), xi);
        a1 = vfmaq_n_f32(a1, vld1q_f32(w + 4), xi);
        a2 = vfmaq_n_f32(a2, vld1q_f32(w + 8), xi);
        a3 = vfmaq_n_f32(a3, vld1q_f32(w + 12), xi);
    }
    d[0] = a0, d[1] = a1, d[2] = a2, d[3] = a3;
}

/* One latent from its row-major weights, in the same order as the panels. */
static inline float dot_row_exact(const float *w_row, const float *x, size_t d_in)
{
    float acc = 0.0f;
    for (size_t i = 0; i < d_in; i++)
        acc = __builtin_fmaf(w_row[i], x[i], acc);
    return acc;
}

/* TILE rows against one panel: 16 accumulators, each weight vector loaded
 * once and used by all four rows. */
static inline void dot_panel_4(const float *w, const float *x, size_t d_in, float32x4_t d[TILE][4])
{
    float32x4_t acc[TILE][4];
    for (int r = 0; r < TILE; r++)
        for (int q = 0; q < 4; q++)
            acc[r][q] = vdupq_n_f32(0);
    const float *x0 = x, *x1 = x + d_in, *x2 = x + 2 * d_in, *x3 = x + 3 * d_in;
    for (size_t i = 0; i < d_in; i++, w += PANEL) {
        const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4);
        const float32x4_t w2 = vld1q_f32(w + 8), w3 = vld1q_f32(w + 12);
        const float xs[TILE] = {x0[i], x1[i], x2[i], x3[i]};
        for (int r = 0; r < TILE; r++) {
            acc[r][0] = vfmaq_n_f32(acc[r][0], w0, xs[r]);
            acc[r][1] = vfmaq_n_f32(acc[r][1], w1, xs[r]);
            acc[r][2] = vfmaq_n_f32(acc[r][2], w2, xs[r]);
            acc[r][3] = vfmaq_n_f32(acc[r][3], w3, xs[r]);
        }
    }
    for (int r = 0; r < TILE; r++)
        for (int q = 0; q < 4; q++)
            d[r][q] = acc[r][q];
}

static inline void row_begin(row_state *rs, const saemon_kernel_out *out, size_t row, saemon_topk_entry *heap)
{
    rs->index = out->index + row * out->row_capacity;
    rs->value = out->value + row * out->row_capacity;
    rs->n = 0;
    rs->heap = heap;
    rs->heap_size = 0;
}

static inline uint32_t row_end(const saemon_kernel_plan *plan, row_state *rs)
{
    if (plan->epilogue == SAEMON_EPI_TOPK)
        return saemon_topk_emit(rs->heap, rs->heap_size, rs->index, rs->value);
    return rs->n;
}

#endif
