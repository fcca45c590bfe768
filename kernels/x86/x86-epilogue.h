/* Generic body shared by every x86 encode kernel (AVX-512 and AVX2 alike):
 * panel geometry, the fused sparsify epilogue on one panel of VL latents,
 * the per-row output sink, and the fp32 dot product the screened kernels
 * recompute candidates with.
 *
 * Written once against the vector vocabulary of simd-<isa>.h, which the
 * including file selects; compiled once per ISA. Operation order: the
 * epilogues round every multiply and add separately, as the scalar reference
 * does (all kernels are built with -ffp-contract=off, see kernels/meson.build);
 * only the dot products use FMA, through explicit intrinsics. */
#ifndef SAEMON_X86_EPILOGUE_H
#define SAEMON_X86_EPILOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

#ifndef SAEMON_X86_SIMD_H
#error "include kernels/x86/simd-<isa>.h first"
#endif

#define PANEL VL /* latents per panel: one vector of fp32 lanes */

/* switch (rows) { CASE(1) ... CASE(8) }: each register-tile height gets its
 * own instantiation, so the row count is a compile-time constant and the
 * accumulators stay in registers. CASE(R) must guard with R <= TILE_ROWS
 * (a constant, so the other cases compile to nothing). */
#define TILE_SWITCH(rows, CASE)                                                                            \
    switch (rows) {                                                                                        \
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) default : break;                   \
    }
/* R clamped to TILE_ROWS: the value used in a case that its guard never runs. */
#define TILE_R(R) ((R) <= TILE_ROWS ? (R) : TILE_ROWS)

static inline size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }
static inline size_t n_panels(size_t d_sae) { return (d_sae + PANEL - 1) / PANEL; }

/* Lanes of the panel (or row chunk) starting at j0 of n that are real. */
static inline vmask valid_lanes(size_t n, size_t j0)
{
    size_t left = n - j0;
    return left >= PANEL ? (vmask)((1u << PANEL) - 1) : (vmask)((1u << left) - 1);
}

/* Where one input row's features go. THRESHOLD/GATED append (index, value)
 * in ascending index order; TOPK feeds a min-heap whose smallest kept value
 * (or 0 before it is full: ReLU drops non-positive values anyway) is the bar
 * a new latent must clear, so most panels are rejected with one compare. */
typedef struct x86_sink {
    uint32_t *index;
    float *value;
    uint32_t count;
    saemon_topk_entry *heap;
    size_t heap_size;
    float topk_bar;
} x86_sink;

static inline void sink_init(x86_sink *s, const saemon_kernel_plan *plan, const saemon_kernel_out *out, size_t row,
                             saemon_topk_entry *heap)
{
    s->index = out->index + row * out->row_capacity;
    s->value = out->value + row * out->row_capacity;
    s->count = 0;
    s->heap = heap;
    s->heap_size = 0;
    s->topk_bar = plan->k == 0 ? __builtin_inff() : 0.0f;
}

static inline void topk_offer(x86_sink *s, const saemon_kernel_plan *plan, float v, uint32_t ix)
{
    if (!(v > s->topk_bar))
        return;
    saemon_topk_push(s->heap, &s->heap_size, plan->k, v, ix);
    if (s->heap_size == plan->k)
        s->topk_bar = s->heap[0].value;
}

static inline uint32_t sink_finish(x86_sink *s, const saemon_kernel_plan *plan)
{
    if (plan->epilogue == SAEMON_EPI_TOPK)
        return saemon_topk_emit(s->heap, s->heap_size, s->index, s->value);
    return s->count;
}

/* Bias + ReLU/JumpReLU threshold / gate / TopK bar on the VL dot products
 * d of the panel starting at latent j0, all in registers; only the active
 * lanes reach memory. Same fp32 operations as the scalar reference. */
static inline void epilogue_panel(const saemon_kernel_plan *plan, size_t j0, vf d, x86_sink *s)
{
    const vmask valid = valid_lanes(plan->d_sae, j0);
    vf pre = v_add(d, v_load_mask(valid, plan->bias + j0));
    vmask m;
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD:
        m = v_gt(valid, pre, v_load_mask(valid, plan->threshold + j0));
        break;
    case SAEMON_EPI_GATED: {
        vf mag = v_add(v_mul(v_load_mask(valid, plan->mag_scale + j0), d), v_load_mask(valid, plan->mag_bias + j0));
        m = v_gt(valid, pre, v_zero());
        m = v_gt(m, mag, v_zero());
        pre = mag;
        break;
    }
    default: /* TOPK */
        if (plan->mag_scale)
            pre = v_mul(pre, v_load_mask(valid, plan->mag_scale + j0));
        m = v_gt(valid, pre, v_set1(s->topk_bar));
        if (m) {
            float v[VL];
            v_storeu(v, pre);
            for (; m; m &= m - 1) {
                unsigned l = (unsigned)__builtin_ctz(m);
                topk_offer(s, plan, v[l], plan->index_base + (uint32_t)(j0 + l));
            }
        }
        return;
    }
    if (m) {
        v_compress_store(m, pre, s->value + s->count, plan->index_base + (uint32_t)j0, s->index + s->count);
        s->count += (uint32_t)__builtin_popcount(m);
    }
}

/* The same epilogue for one latent j with dot product d (screened kernels'
 * recompute and their fp32 path). */
static inline void epilogue_one(const saemon_kernel_plan *plan, size_t j, float d, x86_sink *s)
{
    const uint32_t ix = plan->index_base + (uint32_t)j;
    float pre = d + plan->bias[j];
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD:
        if (pre > plan->threshold[j]) {
            s->index[s->count] = ix;
            s->value[s->count++] = pre;
        }
        break;
    case SAEMON_EPI_GATED: {
        float mag = plan->mag_scale[j] * d + plan->mag_bias[j];
        if (pre > 0.0f && mag > 0.0f) {
            s->index[s->count] = ix;
            s->value[s->count++] = mag;
        }
        break;
    }
    default:
        if (plan->mag_scale)
            pre *= plan->mag_scale[j];
        topk_offer(s, plan, pre, ix);
        break;
    }
}

/* fp32 dot of a zero-padded 64-byte-aligned row w (length round_up(n,VL))
 * with x[0..n): four accumulators, masked tail load of x. */
static inline float dot_row(const float *w, const float *x, size_t n)
{
    vf a0 = v_zero(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
        a0 = v_fmadd(v_loadu(x + i), v_load(w + i), a0);
        a1 = v_fmadd(v_loadu(x + i + VL), v_load(w + i + VL), a1);
        a2 = v_fmadd(v_loadu(x + i + 2 * VL), v_load(w + i + 2 * VL), a2);
        a3 = v_fmadd(v_loadu(x + i + 3 * VL), v_load(w + i + 3 * VL), a3);
    }
    for (; i < n; i += VL)
        a0 = v_fmadd(v_load_mask(valid_lanes(n, i), x + i), v_load(w + i), a0);
    return v_reduce_add(v_add(v_add(a0, a1), v_add(a2, a3)));
}

#endif
